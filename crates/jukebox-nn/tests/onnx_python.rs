//! The exported ONNX model judged by the reference tools: `onnx.checker` (full check), ONNX
//! Runtime and OpenVINO must accept it and reproduce `predict_proba` within 1e-5.
//!
//! Runs `tests/check_onnx.py` with the interpreter in `JUKEBOX_PYTHON`, by default the
//! workspace's `.venv/bin/python`.

mod common;

use jukebox_testkit::python;
use std::path::PathBuf;
use std::process::Command;

use jukebox_nn::onnx::{to_onnx_bytes, OnnxSpec};
use jukebox_nn::{Activation, FitOptions, Network, Samples};
use jukebox_protocol::model_folder::WORKSHOP_FEATURES as FEATURES;

/// Writes model and case into a tempdir and runs the checker; panics with its stderr on failure.
fn check_with_python(network: &Network, spec: &OnnxSpec, x: &[f32], n_rows: usize) {
    let python = python();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("model.onnx"), to_onnx_bytes(network, spec).unwrap()).unwrap();
    let n_in = network.n_inputs();
    let inputs: serde_json::Map<String, serde_json::Value> = spec
        .input_names
        .iter()
        .enumerate()
        .map(|(f, name)| (name.clone(), serde_json::json!((0..n_rows).map(|r| x[r * n_in + f]).collect::<Vec<f32>>())))
        .collect();
    let case = serde_json::json!({
        // serde_json maps are sorted by key, so the graph's input order travels separately.
        "input_names": spec.input_names,
        "inputs": inputs,
        "n_rows": n_rows,
        "n_outputs": network.n_outputs(),
        "output_name": spec.output_name,
        "expected": network.predict_proba(x, n_rows),
        "metadata": spec.metadata.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect::<serde_json::Map<_, _>>(),
        "tolerance": 1e-5,
    });
    std::fs::write(dir.path().join("case.json"), serde_json::to_vec(&case).unwrap()).unwrap();

    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/check_onnx.py");
    let output = Command::new(&python).arg(&script).arg(dir.path()).output().expect("run check_onnx.py");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "check_onnx.py failed ({}):\n{stdout}\n{stderr}", output.status);
    println!("{}", stdout.trim());
}

#[test]
fn trained_workshop_model_runs_identically_in_onnxruntime_and_openvino() {
    let data = common::blobs(3000, 13, 72, 0.5, 3);
    let mut network = Network::workshop(13, 72, 17);
    let options = FitOptions { epochs: 2, ..FitOptions::default() };
    network.fit(Samples::new(&data.x, &data.y), &options, &mut |_| {}).unwrap();

    let mut spec = OnnxSpec::new("jukebox_country", FEATURES);
    spec.metadata = vec![
        ("features".into(), FEATURES.join(",")),
        ("classes".into(), (0..72).map(|c| format!("C{c:02}")).collect::<Vec<_>>().join(",")),
    ];
    let n_rows = 257;
    check_with_python(&network, &spec, &data.x[..n_rows * 13], n_rows);
}

#[test]
fn other_architectures_export_too() {
    // A linear-output layer in the middle and a single hidden layer: the exporter is general.
    let network = Network::new(3, &[(5, Activation::Identity), (4, Activation::Relu), (2, Activation::Softmax)], 9);
    let x: Vec<f32> = (0..30).map(|i| (i as f32 * 0.7).sin()).collect();
    check_with_python(&network, &OnnxSpec::new("small", ["a", "b", "c"]), &x, 10);
}
