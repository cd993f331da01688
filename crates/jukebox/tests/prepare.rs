//! Preparing the shared sample: split sizes, stratification, determinism, the scaler fitted on
//! the training rows only, the label encoder, the date hold-out and the saved artifacts.

mod common;

use std::collections::BTreeMap;

use jukebox::data::{ChartData, FEATURES};
use jukebox::prepare::{LabelEncoder, PrepareError, PreparedData, SplitOptions, SplitStrategy};
use polars::prelude::*;

fn counts(labels: &[u32]) -> BTreeMap<u32, usize> {
    let mut counts = BTreeMap::new();
    for &l in labels {
        *counts.entry(l).or_insert(0) += 1;
    }
    counts
}

#[test]
fn split_sizes_and_stratification() {
    let chart = common::chart();
    let data = PreparedData::new(&chart, &jukebox::data::FEATURES, &SplitOptions::default()).unwrap();
    assert_eq!(data.n_rows(), 19_699, "every row lands in exactly one split");
    assert_eq!(data.n_classes(), 72);
    // 20 % test, then 20 % of the rest validation: 64 / 16 / 20 (per-class rounding moves a few rows).
    let share = |n: usize| n as f64 / 19_699.0;
    assert!((share(data.n_test()) - 0.20).abs() < 0.005, "test share {}", share(data.n_test()));
    assert!((share(data.n_val()) - 0.16).abs() < 0.005, "validation share {}", share(data.n_val()));
    assert!((share(data.n_train()) - 0.64).abs() < 0.005, "train share {}", share(data.n_train()));
    assert_eq!(data.x_train.len(), data.n_train() * 13);
    assert_eq!(data.x_test.len(), data.n_test() * 13);

    // Per class, the test split holds round(20 %) of its rows.
    let (train, val, test) = (counts(&data.y_train), counts(&data.y_val), counts(&data.y_test));
    for class in 0..72u32 {
        let total = train.get(&class).unwrap_or(&0) + val.get(&class).unwrap_or(&0) + test.get(&class).unwrap_or(&0);
        let in_test = *test.get(&class).unwrap_or(&0);
        let expected = ((total as f64 * 0.2).round() as usize).min(total - 1);
        assert_eq!(in_test, expected, "class {class} ({}) has {total} rows", data.encoder.classes()[class as usize]);
        assert!(train.get(&class).copied().unwrap_or(0) > 0, "class {class} keeps training rows");
    }
    // The split frames carry the original rows in matrix order.
    assert_eq!(data.splits.test.height(), data.n_test());
    let first_country = data.splits.test.column("country").unwrap().str().unwrap().get(0).unwrap().to_string();
    assert_eq!(data.encoder.classes()[data.y_test[0] as usize], first_country);
}

#[test]
fn same_seed_same_split_other_seed_other_split() {
    let chart = common::chart();
    let a = PreparedData::new(&chart, &jukebox::data::FEATURES, &SplitOptions::with_seed(7)).unwrap();
    let b = PreparedData::new(&chart, &jukebox::data::FEATURES, &SplitOptions::with_seed(7)).unwrap();
    let c = PreparedData::new(&chart, &jukebox::data::FEATURES, &SplitOptions::with_seed(8)).unwrap();
    assert_eq!(a.x_train, b.x_train);
    assert_eq!(a.y_train, b.y_train);
    assert_eq!(a.x_test, b.x_test);
    assert_eq!(a.y_val, b.y_val);
    assert_ne!(a.y_train, c.y_train, "another seed shuffles differently");
}

#[test]
fn scaler_is_fitted_on_the_training_rows_only() {
    let chart = common::chart();
    let data = PreparedData::new(&chart, &jukebox::data::FEATURES, &SplitOptions::default()).unwrap();
    // Raw min/max of the training rows, computed independently of the scaler.
    let raw = data
        .splits
        .train
        .clone()
        .lazy()
        .select(
            FEATURES
                .iter()
                .flat_map(|f| [col(*f).min().alias(format!("min:{f}")), col(*f).max().alias(format!("max:{f}"))])
                .collect::<Vec<_>>(),
        )
        .collect()
        .unwrap();
    for (j, f) in FEATURES.iter().enumerate() {
        // The splits keep the raw features as f32 (what the model reads); the scaler was fitted
        // on the values as they were, so they agree at f32 precision.
        let get = |name: String| raw.column(&name).unwrap().get(0).unwrap().extract::<f32>().unwrap();
        assert_eq!(data.scaler.min[j] as f32, get(format!("min:{f}")), "{f} min");
        assert_eq!(data.scaler.max[j] as f32, get(format!("max:{f}")), "{f} max");
        let column: Vec<f32> = data.x_train.iter().skip(j).step_by(13).copied().collect();
        let (lo, hi) = column.iter().fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        assert_eq!((lo, hi), (0.0, 1.0), "{f}: scaled training values span exactly [0, 1]");
    }
    // Validation and test rows are scaled with the training min/max, not their own.
    let first_test_duration = data
        .splits
        .test
        .column("duration_ms")
        .unwrap()
        .cast(&DataType::Float64)
        .unwrap()
        .f64()
        .unwrap()
        .get(0)
        .unwrap();
    let expected = (first_test_duration - data.scaler.min[1]) / (data.scaler.max[1] - data.scaler.min[1]);
    assert!((data.x_test[1] as f64 - expected).abs() < 1e-6, "test row scaled with the training range");
    assert!(data.scaler.features.iter().map(String::as_str).eq(FEATURES));
}

#[test]
fn label_encoder_sorts_and_round_trips() {
    let chart = common::chart();
    let encoder = LabelEncoder::fit(&chart.frame, "country").unwrap();
    assert_eq!(encoder.len(), 72);
    let mut sorted = encoder.classes().to_vec();
    sorted.sort();
    assert_eq!(encoder.classes(), &sorted[..], "classes sorted as scikit-learn's LabelEncoder");
    assert_eq!(encoder.classes()[0], "AE");
    let codes: Vec<&str> = chart.frame.column("country").unwrap().str().unwrap().iter().flatten().collect();
    let encoded = encoder.transform(&codes).unwrap();
    assert_eq!(encoder.inverse_transform(&encoded).unwrap(), codes);
    assert!(matches!(encoder.transform(&["XX"]), Err(PrepareError::UnknownLabel { .. })));
    assert_eq!(
        encoder.inverse_transform(&[72]).unwrap_err().to_string(),
        "class index 72 is out of range: there are 72 classes"
    );
}

#[test]
fn latest_dates_are_held_out_when_the_data_has_dates() {
    let chart = common::chart();
    let err = PreparedData::new(
        &chart,
        &jukebox::data::FEATURES,
        &SplitOptions { strategy: SplitStrategy::LatestDates, ..Default::default() },
    )
    .err()
    .unwrap();
    assert!(matches!(err, PrepareError::NoDates), "{err}");

    // Give the sample ten chart days: row i gets day i % 10 after 2024-01-01.
    let with_dates = chart
        .frame
        .clone()
        .lazy()
        .with_row_index("i", None)
        .with_column(
            ((col("i") % lit(10u32)).cast(DataType::Int32) + lit(19_723)).cast(DataType::Date).alias("snapshot_date"),
        )
        .drop(cols(["i"]))
        .collect()
        .unwrap();
    let dated = ChartData { frame: with_dates, countries: chart.countries.clone() };
    let data = PreparedData::new(
        &dated,
        &jukebox::data::FEATURES,
        &SplitOptions { strategy: SplitStrategy::LatestDates, ..Default::default() },
    )
    .unwrap();
    let day = |frame: &DataFrame| -> Vec<i32> {
        frame
            .column("snapshot_date")
            .unwrap()
            .cast(&DataType::Int32)
            .unwrap()
            .i32()
            .unwrap()
            .into_no_null_iter()
            .collect()
    };
    let test_days = day(&data.splits.test);
    let earlier_days: Vec<i32> = day(&data.splits.train).into_iter().chain(day(&data.splits.validation)).collect();
    let first_test_day = *test_days.iter().min().unwrap();
    assert_eq!(*test_days.iter().max().unwrap(), 19_732, "the latest day is in test");
    assert!(earlier_days.iter().all(|&d| d < first_test_day), "training and validation never see a test day");
    // Whole days: at least 20 % of the rows, at most 20 % plus one day (~10 %).
    let share = data.n_test() as f64 / 19_699.0;
    assert!((0.2..0.3).contains(&share), "test share {share}");
    assert_eq!(data.n_rows(), 19_699);
}

#[test]
fn ordered_split_holds_out_the_last_rows_like_the_python_workshop() {
    let chart = common::chart();
    let options = SplitOptions { strategy: "ordered".parse().unwrap(), ..Default::default() };
    let data = PreparedData::new(&chart, &jukebox::data::FEATURES, &options).unwrap();
    // train_test_split(test_size=0.2, shuffle=False): the last ceil(0.2 * 19,699) = 3,940 rows.
    assert_eq!(data.n_test(), 3_940);
    assert_eq!(data.n_rows(), 19_699);
    let key = |frame: &DataFrame| -> Vec<String> {
        let names = frame.column("spotify_id").unwrap().str().unwrap();
        let countries = frame.column("country").unwrap().str().unwrap();
        names.iter().zip(countries.iter()).map(|(n, c)| format!("{}|{}", n.unwrap_or(""), c.unwrap_or(""))).collect()
    };
    let mut last_rows = key(&chart.frame.slice(19_699 - 3_940, 3_940));
    let mut test_rows = key(&data.splits.test);
    last_rows.sort();
    test_rows.sort();
    assert_eq!(test_rows, last_rows, "the test rows are the data's last rows");
    // Validation stays stratified over the remaining rows: every class keeps training rows.
    assert!(counts(&data.y_train).len() >= counts(&data.y_val).len());
    let err = "shuffled".parse::<SplitStrategy>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid split option `split`: 'shuffled' is not a split; use stratified, ordered, latest-dates or grouped"
    );
}

#[test]
fn bad_options_and_columns_are_named() {
    let chart = common::chart();
    let err =
        PreparedData::new(&chart, &jukebox::data::FEATURES, &SplitOptions { test_fraction: 1.5, ..Default::default() })
            .err()
            .unwrap();
    assert_eq!(err.to_string(), "invalid split option `test_fraction`: 1.5 is not in [0, 1)");
    let frame = chart.frame.drop("energy").unwrap();
    let err = PreparedData::from_frame(&frame, &FEATURES, &SplitOptions::default()).err().unwrap();
    let message = err.to_string();
    assert!(message.starts_with("feature `energy` is not a column of the data; numeric columns are: "), "{message}");
    assert!(message.contains("danceability") && !message.contains("energy,"), "{message}");
}

#[test]
fn a_chosen_feature_list_is_what_the_model_reads() {
    let chart = common::chart();
    // The workshop's 13 without `loudness`, as a notebook cell writes it.
    let features: Vec<String> = FEATURES.iter().filter(|f| **f != "loudness").map(|f| f.to_string()).collect();
    let data = PreparedData::new(&chart, &features, &SplitOptions::default()).unwrap();
    assert_eq!(data.features, features);
    assert_eq!(data.n_features(), 12);
    assert_eq!(data.scaler.features, features);
    assert_eq!(data.x_train.len(), data.n_train() * 12);
    assert_eq!(data.x_test.len(), data.n_test() * 12);
    // The same split as with all 13: the feature list changes columns, never rows.
    let all = PreparedData::new(&chart, &FEATURES, &SplitOptions::default()).unwrap();
    assert_eq!(data.y_test, all.y_test);
    let tempo_12 = data.x_test[5 * 12 + 11];
    let tempo_13 = all.x_test[5 * 13 + 12];
    assert_eq!(tempo_12, tempo_13);
}

#[test]
fn a_bad_feature_list_is_refused_with_the_feature_named() {
    let chart = common::chart();
    let options = SplitOptions::default();
    let error = |features: &[&str]| PreparedData::new(&chart, features, &options).err().unwrap().to_string();
    assert!(error(&["danceability", "loudnes"]).starts_with("feature `loudnes` is not a column of the data"));
    assert_eq!(error(&["danceability", "name"]), "feature `name` holds str values; a feature must be numeric");
    assert_eq!(error(&[]), "the feature list is empty: name at least one column");
    assert_eq!(error(&["energy", "energy"]), "the feature list names `energy` twice");
    assert_eq!(error(&["energy", "country"]), "the feature list holds `country`, the column the model predicts");
}

#[test]
fn saved_artifacts_are_readable() {
    let chart = common::chart();
    let data = PreparedData::new(&chart, &jukebox::data::FEATURES, &SplitOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let artifacts = data.save(dir.path()).unwrap();
    assert_eq!(artifacts, dir.path().join("artifacts"));

    let scaler: serde_json::Value =
        serde_json::from_slice(&std::fs::read(artifacts.join("scaler.json")).unwrap()).unwrap();
    assert_eq!(scaler["features"].as_array().unwrap().len(), 13);
    assert_eq!(scaler["min"][1].as_f64().unwrap(), data.scaler.min[1]);
    assert_eq!(scaler["max"][12].as_f64().unwrap(), data.scaler.max[12]);
    let encoder: serde_json::Value =
        serde_json::from_slice(&std::fs::read(artifacts.join("label_encoder.json")).unwrap()).unwrap();
    assert_eq!(encoder["classes"].as_array().unwrap().len(), 72);
    let y_test: serde_json::Value =
        serde_json::from_slice(&std::fs::read(artifacts.join("y_test.json")).unwrap()).unwrap();
    assert_eq!(y_test["label"].as_array().unwrap().len(), data.n_test());
    assert_eq!(y_test["country"][0], data.encoder.classes()[data.y_test[0] as usize].as_str());

    let x_test = ParquetReader::new(std::fs::File::open(artifacts.join("X_test.parquet")).unwrap()).finish().unwrap();
    let names: Vec<String> = x_test.get_column_names().iter().map(|c| c.to_string()).collect();
    assert_eq!(names, FEATURES);
    assert_eq!(x_test.height(), data.n_test());
    let tempo: Vec<f32> = x_test.column("tempo").unwrap().f32().unwrap().into_no_null_iter().collect();
    assert_eq!(tempo[3], data.x_test[3 * 13 + 12]);
    let x_train = ParquetReader::new(std::fs::File::open(artifacts.join("X_train.parquet")).unwrap()).finish().unwrap();
    assert_eq!(x_train.height(), data.n_train());
}

/// One scaling rule for training and requests, judged by scikit-learn: a feature that was
/// constant in training is shifted by its minimum (not divided by zero, and not set to 0).
#[test]
fn training_and_request_scaling_match_scikit_learn_with_a_constant_feature() {
    let train = df!("a" => [1.0, 3.0, 5.0], "b" => [5.0, 5.0, 5.0], "c" => [-2.0, 0.0, 2.0]).unwrap();
    let new = df!("a" => [2.0, 7.0], "b" => [5.0, 7.5], "c" => [0.5, -4.0]).unwrap();
    let scaler = jukebox::prepare::MinMaxScaler::fit(&train, &["a", "b", "c"]).unwrap();

    let rows = |frame: &DataFrame| -> Vec<Vec<f64>> {
        (0..frame.height())
            .map(|i| ["a", "b", "c"].iter().map(|c| frame.column(c).unwrap().f64().unwrap().get(i).unwrap()).collect())
            .collect()
    };
    let input = serde_json::json!({ "train": rows(&train), "new": rows(&new) });
    let peer = std::process::Command::new(common::python())
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/minmax_peer.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    peer.stdin.as_ref().unwrap().write_all(input.to_string().as_bytes()).unwrap();
    let output = peer.wait_with_output().unwrap();
    assert!(output.status.success(), "minmax_peer.py failed");
    let sklearn: Vec<Vec<f64>> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(sklearn[1][1], 2.5, "scikit-learn shifts a constant feature: 7.5 - 5");

    // Training path: polars expressions over the frame.
    let training = rows(&scaler.transform_frame(&new).unwrap());
    // Request path: the model folder's scaler, as the request client and saved artifacts use it.
    let saved: jukebox::request::Scaler = serde_json::from_str(&serde_json::to_string(&scaler).unwrap()).unwrap();
    let requested: Vec<Vec<f32>> = rows(&new).iter().map(|row| saved.transform(row)).collect();
    for (i, expected) in sklearn.iter().enumerate() {
        for (j, &value) in expected.iter().enumerate() {
            assert!(
                (training[i][j] - value).abs() < 1e-12,
                "training path row {i} feature {j}: {} vs {value}",
                training[i][j]
            );
            assert!(
                (requested[i][j] as f64 - value).abs() < 1e-6,
                "request path row {i} feature {j}: {} vs {value}",
                requested[i][j]
            );
        }
    }
}
