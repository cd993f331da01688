//! The exploration tables and plots on the shared sample.

use jukebox::display::ToHtml;
use jukebox::explore;

mod common;
use common::chart as charts;

#[test]
fn describe_has_one_row_per_numeric_column_with_pandas_statistics() {
    let data = charts();
    let table = explore::describe(&data.frame).unwrap();
    assert_eq!(table.columns, ["column", "count", "mean", "std", "min", "25%", "50%", "75%", "max"]);
    let row = table.rows.iter().position(|r| r[0] == "daily_rank".into()).expect("daily_rank row");
    assert_eq!(table.number(row, "count"), Some(19_699.0));
    assert_eq!(table.number(row, "min"), Some(1.0));
    assert_eq!(table.number(row, "max"), Some(50.0));
    let (q1, median, q3) =
        (table.number(row, "25%").unwrap(), table.number(row, "50%").unwrap(), table.number(row, "75%").unwrap());
    assert!(1.0 <= q1 && q1 <= median && median <= q3 && q3 <= 50.0);
    assert!(table.to_html().contains("<td"));
}

#[test]
fn correlations_are_sorted_coloured_and_bounded() {
    let data = charts();
    let table = explore::correlations_with(&data.frame, "popularity").unwrap();
    let values: Vec<f64> =
        (0..table.height()).map(|i| table.number(i, "correlation with popularity").unwrap()).collect();
    assert!(values.windows(2).all(|w| w[0] >= w[1]), "sorted strongest positive first: {values:?}");
    assert!(values.iter().all(|r| (-1.0..=1.0).contains(r)));
    assert!(!table.rows.iter().any(|r| r[0] == "popularity".into()), "the target is not correlated with itself");
    assert!(table.backgrounds.is_some());
    let err = explore::correlations_with(&data.frame, "nope").unwrap_err();
    assert_eq!(err.to_string(), "column `nope` is not in the data");
    let err = explore::correlations_with(&data.frame, "country").unwrap_err();
    assert!(err.to_string().contains("is not numeric"), "{err}");
}

#[test]
#[allow(clippy::needless_range_loop)] // symmetry compares [i][j] with [j][i]: indices read best
fn heatmap_is_a_symmetric_matrix_drawn_with_values() {
    let data = charts();
    let (columns, matrix) = explore::correlation_matrix(&data.frame).unwrap();
    assert!(columns.contains(&"danceability".to_string()) && columns.contains(&"country_index".to_string()));
    for i in 0..columns.len() {
        assert!((matrix[i][i] - 1.0).abs() < 1e-9 || matrix[i][i].is_nan(), "{} diagonal {}", columns[i], matrix[i][i]);
        for j in 0..columns.len() {
            assert!(matrix[i][j] == matrix[j][i] || (matrix[i][j].is_nan() && matrix[j][i].is_nan()));
        }
    }
    let plot = explore::correlation_heatmap(&data.frame).unwrap();
    assert!(plot.svg.starts_with("<svg") && plot.svg.contains("\n1.00\n") && plot.svg.contains("danceability"));
}

#[test]
fn country_means_top_songs_and_histograms() {
    let data = charts();
    let means = explore::country_means(&data.frame).unwrap();
    assert_eq!(means.height(), 72);
    let top = explore::top_songs(&data.frame, 5, "2024-01-01", "2024-12-31").unwrap();
    assert_eq!(top.height(), 5);
    assert!(top.caption.as_ref().unwrap().contains("no chart dates"), "{:?}", top.caption);
    let first = top.number(0, "mean popularity").unwrap();
    let last = top.number(4, "mean popularity").unwrap();
    assert!(first >= last);
    let plot = explore::histograms(&data.frame, &explore::AUDIO_FEATURES).unwrap();
    assert!(plot.svg.contains("danceability") && plot.svg.contains("tempo"));
    assert!(plot.svg.matches("<rect").count() > 9 * 10, "bars for every feature");
    let countries = explore::countries(&data.frame).unwrap();
    assert_eq!(countries.height(), 72);
}

#[test]
fn describe_equals_pandas_describe_of_the_same_merge() {
    // pandas reads, merges, drops nulls and describes the sample (benches/data_pipeline.py).
    let sample = jukebox_testkit::sample_data_dir();
    let peer = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/data_pipeline.py");
    let out = std::process::Command::new(jukebox_testkit::python())
        .arg(peer)
        .arg("describe")
        .arg(sample.join(jukebox::data::PROPERTIES_FILE))
        .arg(jukebox::data::rankings_path(&sample))
        .output()
        .expect("cannot run Python");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let pandas: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let table = explore::describe(&charts().frame).unwrap();
    let mut compared = 0;
    for (row, cells) in table.rows.iter().enumerate() {
        let jukebox::display::Cell::Text(column) = &cells[0] else { panic!("row {row} has no name") };
        // pandas leaves booleans out; our merge made is_explicit a number.
        let Some(stats) = pandas.get(column) else { continue };
        for stat in &table.columns[1..] {
            let (ours, theirs) = (table.number(row, stat).unwrap(), stats[stat].as_f64().unwrap());
            assert!(
                (ours - theirs).abs() <= 1e-9 * theirs.abs().max(1.0),
                "{column} {stat}: {ours} vs pandas {theirs}"
            );
        }
        compared += 1;
    }
    assert_eq!(compared, pandas.as_object().unwrap().len(), "every column pandas describes is described");
}
