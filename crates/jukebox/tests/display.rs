//! What the notebooks show, checked as a reader sees it (issue 21): every kind of table the stages
//! return writes its numbers between 1e-4 and 1e7 as plain decimals (never `1.9362e5`), and every
//! plot fits JupyterLab's output area (at most 960 px wide, scaled down with a viewBox when drawn
//! wider). Tables and plots are made from the shared sample data and small trained models.

mod common;

use jukebox::display::{
    svg_width, Plot, Table, ToHtml, FRAME_ROWS_SHOWN, MAX_PLOT_WIDTH, PLAIN_NUMBER_MAX, PLAIN_NUMBER_MIN,
};
use jukebox::evaluate::ClassificationReport;
use jukebox::explore;
use jukebox::prepare::{PreparedData, SplitOptions, SplitStrategy};
use jukebox::refine::{Grid, RunLog, SongOverlap, SplitComparison, SplitScores};
use jukebox::registry::{MetadataValue, ModelVersion, RegisteredModel, VersionRow, VersionTable};
use jukebox::request::{InferenceClient, LabelEncoder, ModelArtifacts, Prediction, Predictions, Scaler, Song};
use jukebox::train::{Classifier, Comparison, DecisionTree, Learner, NeuralNetwork, Progress};

/// The text a reader sees (tags and their attributes, such as colours, left out).
fn visible_text(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    text
}

/// Numbers written in scientific notation whose size is inside the plain range.
fn scientific_inside_the_plain_range(html: &str) -> Vec<String> {
    visible_text(html)
        .split(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-')))
        .filter(|token| token.contains(['e', 'E']) && token.starts_with(|c: char| c.is_ascii_digit() || c == '-'))
        .filter_map(|token| Some((token, token.parse::<f64>().ok()?)))
        .filter(|(_, value)| (PLAIN_NUMBER_MIN..PLAIN_NUMBER_MAX).contains(&value.abs()))
        .map(|(token, _)| token.to_string())
        .collect()
}

#[test]
fn the_checker_finds_what_it_must() {
    assert_eq!(scientific_inside_the_plain_range("<td>1.9362e5</td><td>7.2e-5</td>"), ["1.9362e5"]);
    assert_eq!(scientific_inside_the_plain_range("<td style=\"background:#4e5ba6\">1.2e8</td>"), Vec::<String>::new());
}

fn assert_plain(what: &str, html: &str) {
    let found = scientific_inside_the_plain_range(html);
    assert!(found.is_empty(), "{what}: scientific notation inside {PLAIN_NUMBER_MIN}..{PLAIN_NUMBER_MAX}: {found:?}");
}

fn assert_fits(what: &str, plot: &Plot) {
    let width = svg_width(&plot.svg).unwrap_or(u32::MAX);
    assert!(width <= MAX_PLOT_WIDTH, "{what}: {width} px wide");
    assert!(plot.svg.contains("viewBox=\"0 0 "), "{what}: no viewBox, so it cannot scale");
}

#[test]
fn every_table_writes_plain_decimals_and_every_plot_fits_the_output_area() {
    let dataset = jukebox::data::Dataset::from_dir(&common::sample_dir()).unwrap();
    let charts = dataset.merge().unwrap();
    let frame = &charts.frame;
    let prepare = |strategy| {
        PreparedData::new(&charts, &jukebox::data::FEATURES, &SplitOptions { strategy, ..SplitOptions::with_seed(42) })
            .unwrap()
    };
    let data = prepare(SplitStrategy::Stratified);
    let grouped = prepare(SplitStrategy::Grouped);
    let model = NeuralNetwork::new(2, 64, 42).with_progress(Progress::Silent).fit(&data).unwrap();
    let tree = DecisionTree { max_depth: Some(8), ..DecisionTree::default() }.fit(&data).unwrap();
    let report = model.test_report(&data).unwrap();
    let sweep = r#"{"epochs": [2, 3], "hidden_layers": [[16]], "learning_rate": [0.001], "batch_size": [256]}"#
        .parse::<Grid>()
        .unwrap()
        .sweep(&grouped, 42)
        .unwrap();
    let log_dir = tempfile::tempdir().unwrap();
    let log = RunLog::beside(log_dir.path());
    log.append(&sweep.records()).unwrap();

    // Registry versions with the metadata a training run records, as doubles of 17 digits.
    let accuracy = 2f64.sqrt() / 4.133;
    let version = |name: &str, seconds: f64| ModelVersion {
        id: name.into(),
        name: name.into(),
        registered_model_id: "1".into(),
        custom_properties: [
            ("accuracy", MetadataValue::from(accuracy)),
            ("f1_macro", MetadataValue::from(0.0000723456)),
            ("training_seconds", MetadataValue::from(seconds)),
            ("learning_rate", MetadataValue::from(0.001)),
            ("data_rows", MetadataValue::from(19699)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
        ..Default::default()
    };
    let versions = VersionTable {
        model: RegisteredModel { id: "1".into(), name: "jukebox".into(), ..Default::default() },
        rows: vec![
            VersionRow { version: version("0.0.1", 193620.35123), artifacts: vec![] },
            VersionRow { version: version("0.0.2", 12.000123456), artifacts: vec![] },
        ],
    };

    // Predictions with probabilities from tiny to large, as a softmax over 72 countries gives.
    let classes = data.encoder.classes().to_vec();
    let probabilities = |shift: usize| -> Vec<(String, f32)> {
        classes.iter().enumerate().map(|(i, c)| (c.clone(), 0.5f32.powi(((i + shift) % 20) as i32) / 2.0)).collect()
    };
    let prediction = |shift| Prediction {
        song: "Not Like Us".into(),
        artists: Some("Kendrick Lamar".into()),
        model: None,
        probabilities: probabilities(shift),
    };
    let artifacts = ModelArtifacts {
        scaler: Scaler { features: data.features.clone(), min: data.scaler.min.clone(), max: data.scaler.max.clone() },
        labels: LabelEncoder { classes: classes.clone() },
        version: Some(jukebox::request::ServedVersion { model: "jukebox".into(), folder: 1 }),
        dir: "models/jukebox/1".into(),
    };
    let song =
        Song::from_features("raw", &[1.0, 193620.0, 0.7, 0.6, 2.0, -5.0, 1.0, 0.1, 0.2, 0.00001, 0.1, 0.4, 128.0]);
    let body = InferenceClient::new("http://127.0.0.1:8000", "jukebox").request_body(&artifacts, &[song]).unwrap();

    let scores =
        |r: &ClassificationReport| SplitScores { model: "m".into(), random: r.clone(), grouped: Some(r.clone()) };
    let split_comparison =
        SplitComparison { random_split: "stratified".into(), models: vec![scores(&report)], planned_fits: 2 };

    let tables: Vec<(&str, Table)> = vec![
        ("about", jukebox::about()),
        ("properties head", dataset.properties_head(5)),
        ("rankings head", dataset.rankings_head(5)),
        ("country index", charts.countries.table()),
        ("describe", explore::describe(frame).unwrap()),
        ("countries", explore::countries(frame).unwrap()),
        ("correlations with popularity", explore::correlations_with(frame, "popularity").unwrap()),
        ("country means", explore::country_means(frame).unwrap()),
        ("top songs", explore::top_songs(frame, 10, "2023-12-20", "2024-01-01").unwrap()),
        ("prepared summary", data.summary()),
        ("scaler", data.scaler.table()),
        ("history", model.history_table()),
        ("comparison", Comparison::new(&[&model as &dyn Classifier, &tree], &data).unwrap().table()),
        ("summary", report.summary_table()),
        ("per class", report.per_class_table()),
        ("song overlap", SongOverlap::of(&grouped).unwrap().table()),
        ("grid", "class".parse::<Grid>().unwrap().table()),
        ("sweep", sweep.table()),
        ("run log", log.table().unwrap()),
        ("split comparison", split_comparison.table()),
        ("prediction", prediction(0).table(5)),
        ("predictions", Predictions(vec![prediction(0), prediction(7)]).table()),
        (
            "side by side",
            Prediction::side_by_side(&[("0.0.1".into(), prediction(0)), ("0.0.2".into(), prediction(7))], 5),
        ),
        ("request body", body.table()),
    ];
    for (what, table) in &tables {
        assert!(table.height() > 0, "{what} is empty");
        assert_plain(what, &table.to_html());
        assert_plain(what, &table.to_string());
    }
    let versions_html = versions.to_html();
    assert_plain("registry versions", &versions_html);
    assert!(versions_html.contains(">0.3422<") && versions_html.contains(">193620.35<"), "{versions_html}");
    assert!(!versions_html.contains(&accuracy.to_string()), "rounded, not 17 digits");

    let plots: Vec<(&str, Plot)> = vec![
        ("correlation heatmap", explore::correlation_heatmap(frame).unwrap()),
        ("histograms", explore::histograms(frame, &explore::AUDIO_FEATURES).unwrap()),
        ("confusion matrix", report.confusion_heatmap().unwrap()),
        ("training history", model.history_plot().unwrap()),
        ("sweep", sweep.validation_plot().unwrap()),
        ("prediction chart", prediction(0).chart().unwrap()),
    ];
    for (what, plot) in &plots {
        assert_fits(what, plot);
        // To look at them: JUKEBOX_PLOTS_DIR=/tmp/plots cargo test --release -p jukebox --test display
        if let Some(dir) = std::env::var_os("JUKEBOX_PLOTS_DIR") {
            plot.save(std::path::Path::new(&dir).join(format!("{}.svg", what.replace(' ', "-")))).unwrap();
        }
    }

    // Every rich output carries a text/plain alternative (a terminal, nbconvert to text, a screen
    // reader): the registry versions through the HTML's text, plots through their words.
    let versions_text = versions.to_text();
    assert!(
        versions_text.contains("0.0.1") && versions_text.contains("0.3422") && !versions_text.contains('<'),
        "{versions_text}"
    );
    // A line per version (the model's name first), each followed by its folded fields.
    let rows = versions_text.lines().filter(|l| l.starts_with("jukebox ")).count();
    assert_eq!(rows, 2, "a line per version:\n{versions_text}");
    for (what, plot) in &plots {
        let description = plot.description();
        assert!(description.starts_with("plot: ") && description.len() > 8, "{what}: {description:?}");
    }

    // Epoch axes are whole numbers: `1`, `2`, never `1.0` or `1.5`.
    for (what, svg) in [("training history", &plots[3].1.svg), ("sweep", &plots[4].1.svg)] {
        for epoch in ["1", "2"] {
            assert!(
                svg.contains(&format!(">\n{epoch}\n<")) || svg.contains(&format!(">{epoch}<")),
                "{what}: no {epoch}"
            );
        }
        for fraction in ["1.0", "1.5", "2.0"] {
            assert!(
                !svg.contains(&format!(">\n{fraction}\n<")) && !svg.contains(&format!(">{fraction}<")),
                "{what}: {fraction}"
            );
        }
    }
}

/// A polars frame ending a cell renders like the stages' tables: its shape in the caption, its
/// first rows only, and polars' own text layout as the plain alternative.
#[test]
fn a_data_frame_renders_as_a_table_with_its_shape_and_first_rows() {
    let charts = jukebox::data::Dataset::from_dir(&common::sample_dir()).unwrap().merge().unwrap();
    let (rows, columns) = charts.frame.shape();
    let html = charts.frame.to_html();
    assert!(html.contains(&format!("rows × {columns} columns (first {FRAME_ROWS_SHOWN} shown)")), "{html:.300}");
    assert_eq!(html.matches("<tr>").count(), FRAME_ROWS_SHOWN + 1, "header and {FRAME_ROWS_SHOWN} rows of {rows}");
    assert!(charts.frame.to_text().contains(&format!("shape: ({FRAME_ROWS_SHOWN}, {columns})")));

    let small = charts.frame.head(Some(3));
    let html = small.to_html();
    assert!(html.contains(&format!("data frame: 3 rows × {columns} columns<")), "{html:.300}");
    assert_eq!(html.matches("<tr>").count(), 4);
}

#[test]
fn the_text_of_a_table_has_a_line_per_row() {
    let table = Table::new(
        vec!["song".into(), "plays".into()],
        vec![vec!["Tom & Jerry".into(), 1.5.into()], vec!["<b>".into(), 2.0.into()]],
    )
    .with_caption("plays");
    assert_eq!(jukebox::display::text_of_html(&table.to_html()), "plays\nsong  plays\nTom & Jerry  1.5000\n<b>  2");
}
