//! # jukebox-testkit: what every integration test and benchmark needs to find
//!
//! The tests start real servers and judge them with real Python peers (boto3, the Kubeflow
//! `model-registry` client, tritonclient, onnxruntime, OpenVINO), and read the shared sample data
//! by path. This crate says, once, where those are:
//!
//! - [`python`]: the workspace venv's interpreter (`.venv`, or `JUKEBOX_PYTHON`);
//! - [`venv_python`]: another venv's (e.g. `.venv-mr037` for the 0.3.7 registry client);
//! - [`sample_data_dir`]: the shared sample data (`JUKEBOX_TEST_DATA`, or `../shared/data`
//!   beside the workspace), never copied into the repo;
//! - [`make_model`]: a workshop-shaped ONNX model folder written by a Python script;
//! - [`registry_spec`]: the model version the registry tests register with either client.
//!
//! It is a dev-dependency only; a missing piece fails the test with a message saying how to
//! provide it (`kernel/setup.sh --with-tests` creates the venvs).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace folder (the one with the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/jukebox-testkit sits two levels down")
        .to_path_buf()
}

/// The Python interpreter of venv `venv` (a folder in the workspace), or the one `env_var`
/// names. Panics with the commands that create it when it does not exist.
pub fn venv_python(env_var: &str, venv: &str, requirements: &str) -> PathBuf {
    let python =
        std::env::var_os(env_var).map(PathBuf::from).unwrap_or_else(|| workspace_root().join(venv).join("bin/python"));
    assert!(
        python.exists(),
        "no Python interpreter at {}: run `kernel/setup.sh --with-tests` (or `python3 -m venv {venv} && \
         {venv}/bin/pip install -r {requirements}`) in the workspace, or point {env_var} at one",
        python.display()
    );
    python
}

/// The workspace venv's Python, with the test peers' packages (`kernel/requirements-test.txt`).
pub fn python() -> PathBuf {
    venv_python("JUKEBOX_PYTHON", ".venv", "kernel/requirements-test.txt")
}

/// Where [`python`] would be, without checking that it exists (for optional peers in benches).
pub fn python_path() -> PathBuf {
    std::env::var_os("JUKEBOX_PYTHON").map(PathBuf::from).unwrap_or_else(|| workspace_root().join(".venv/bin/python"))
}

/// A program installed next to [`python`] in its venv (e.g. `moto_server`).
pub fn venv_program(name: &str) -> PathBuf {
    python().with_file_name(name)
}

/// The shared sample data: `JUKEBOX_TEST_DATA`, else `../shared/data` beside the workspace.
pub fn sample_data_dir() -> PathBuf {
    let dir = std::env::var_os("JUKEBOX_TEST_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/data"));
    assert!(
        dir.join("song_properties.parquet").is_file(),
        "sample data not found in {}: set JUKEBOX_TEST_DATA to the folder holding song_properties.parquet",
        dir.display()
    );
    dir
}

/// Writes `<root>/jukebox/<version>/model.onnx` (13 named FP32 inputs, softmax `output`, seeded
/// weights) plus its artifacts, with `crates/jukebox-runtime/tests/peers/make_model.py`.
pub fn make_model(root: &Path, version: &str, seed: &str) {
    let maker = workspace_root().join("crates/jukebox-runtime/tests/peers/make_model.py");
    let out = Command::new(python())
        .arg(&maker)
        .arg(root)
        .args(["--version", version, "--seed", seed])
        .output()
        .expect("cannot run Python");
    assert!(
        out.status.success(),
        "make_model.py failed (pip install onnx numpy?): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The model version both registry test suites register (with the Python clients and ours):
/// name `name`, version 1, every artifact field and typed metadata set.
pub fn registry_spec(name: &str) -> serde_json::Value {
    serde_json::json!({
        "name": name,
        "version": "1",
        "uri": format!("s3://models/models/{name}/1?endpoint=http://127.0.0.1:9000&defaultRegion=us-east-1"),
        "model_format_name": "onnx",
        "model_format_version": "1",
        "storage_key": "workshop-models",
        "storage_path": format!("models/{name}/1"),
        "author": "ada",
        "owner": "team-jukebox",
        "description": "dense net, 30 epochs",
        "metadata": {"accuracy": 0.342, "epochs": 30, "converged": true, "framework": "jukebox-nn"},
    })
}
