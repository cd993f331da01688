//! Exporting the trained network: layout, artifacts, parity through ONNX Runtime (Rust, via
//! jukebox-runtime), bit-identical files for the same seed, and the reference tools in Python
//! (`onnx.checker` full check, onnxruntime, OpenVINO) reading the model and the artifacts.

mod common;

use std::process::Command;

use jukebox::evaluate::Metrics;
use jukebox::export::{export, onnx_predict_proba_in_blocks, ExportedModel};
use jukebox::prepare::{PreparedData, SplitOptions};
use jukebox::train::{Learner, NeuralNetwork, Progress, TrainedModel};

fn train(data: &PreparedData, seed: u64) -> TrainedModel {
    NeuralNetwork { epochs: 1, batch_size: 32, seed, progress: Progress::Silent, ..Default::default() }
        .fit(data)
        .unwrap()
}

fn metrics(model: &TrainedModel, data: &PreparedData) -> Metrics {
    Metrics::new(&model.test_report(data).unwrap(), &model.training_info(data))
}

/// The workshop's data, a network trained on it with seed 42, and its export as version folder
/// `version` of a temporary repository (kept while the folder is held).
fn trained_and_exported(version: u64) -> (PreparedData, TrainedModel, tempfile::TempDir, ExportedModel) {
    let data = PreparedData::new(&common::chart(), &jukebox::data::FEATURES, &SplitOptions::default()).unwrap();
    let model = train(&data, 42);
    let dir = tempfile::tempdir().unwrap();
    let exported = export(&model, &data, &metrics(&model, &data), dir.path(), version).unwrap();
    (data, model, dir, exported)
}

#[test]
fn exported_model_matches_the_network_through_onnx_runtime() {
    let (data, model, dir, exported) = trained_and_exported(1);
    assert_eq!(exported.model_path, dir.path().join("jukebox/1/model.onnx"));
    for file in
        ["scaler.json", "label_encoder.json", "X_train.parquet", "X_test.parquet", "y_test.json", "metrics.json"]
    {
        assert!(exported.artifacts_dir.join(file).is_file(), "artifacts/{file} missing");
    }
    let saved = Metrics::load(exported.artifacts_dir.join("metrics.json")).unwrap();
    assert_eq!(saved.data_rows, 19_699);
    assert_eq!(saved.epochs, 1);

    let evaluation = exported.evaluate(&data).unwrap();
    let parity = evaluation.parity(&model, &data);
    println!("{}", parity.table());
    assert_eq!(parity.rows, data.n_test());
    assert!(parity.max_abs_diff < 1e-5, "max abs diff {}", parity.max_abs_diff);
    assert_eq!(parity.class_mismatches, 0);
    assert!(parity.holds(1e-5));
    assert_eq!(evaluation.report.accuracy(), saved.accuracy, "ONNX Runtime scores what metrics.json says");
}

#[test]
fn onnx_runtime_in_blocks_gives_the_probabilities_of_one_call() {
    let (data, _model, _dir, exported) = trained_and_exported(1);
    let whole = onnx_predict_proba_in_blocks(&exported.model_path, &data.features, &data.x_test, usize::MAX).unwrap();
    assert_eq!(whole.len(), data.n_test() * data.n_classes());
    // 1,000 rows per call: the last block is a partial one.
    let blocks = onnx_predict_proba_in_blocks(&exported.model_path, &data.features, &data.x_test, 1_000).unwrap();
    assert!(data.n_test() % 1_000 != 0);
    assert_eq!(blocks, whole);
}

#[test]
fn a_model_fitted_on_another_split_is_not_exported() {
    let chart = common::chart();
    let stratified = PreparedData::new(&chart, &jukebox::data::FEATURES, &SplitOptions::default()).unwrap();
    let other_seed = PreparedData::new(&chart, &jukebox::data::FEATURES, &SplitOptions::with_seed(7)).unwrap();
    let model = train(&stratified, 42);
    let dir = tempfile::tempdir().unwrap();
    let refused = export(&model, &other_seed, &metrics(&model, &stratified), dir.path(), 1).unwrap_err();
    assert!(refused.to_string().contains("not exported"), "{refused}");
    assert!(!dir.path().join("jukebox/1").exists(), "nothing may be written for a refused export");
}

#[test]
fn same_seed_gives_a_bit_identical_model_file() {
    let data = PreparedData::new(&common::chart(), &jukebox::data::FEATURES, &SplitOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<Vec<u8>> = [("a", 7), ("b", 7), ("c", 8)]
        .iter()
        .map(|(name, seed)| {
            let model = train(&data, *seed);
            let exported = export(&model, &data, &metrics(&model, &data), dir.path().join(name), 1).unwrap();
            std::fs::read(exported.model_path).unwrap()
        })
        .collect();
    assert!(files[0] == files[1], "same seed, different bytes");
    assert!(files[0] != files[2], "another seed should give other weights");
}

#[test]
fn reference_tools_accept_the_export() {
    let (data, model, dir, exported) = trained_and_exported(3);
    let rows = 500.min(data.n_test());
    let probabilities = model.predict_proba(&data.x_test[..rows * data.n_features()], rows);
    let expected = dir.path().join("expected.json");
    std::fs::write(
        &expected,
        serde_json::json!({"rows": rows, "probabilities": probabilities, "tolerance": 1e-5}).to_string(),
    )
    .unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/check_export.py");
    let output = Command::new(common::python()).arg(script).arg(&exported.version_dir).arg(&expected).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "check_export.py failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    println!("{stdout}");
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["onnxruntime_class_mismatches"], 0);
    assert_eq!(report["openvino_class_mismatches"], 0);
}
