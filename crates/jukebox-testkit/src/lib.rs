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
//! - [`registry_spec`]: the model version the registry tests register with either client, and
//!   [`run_registry_peer`], which runs a Kubeflow `model-registry` client against a registry;
//! - [`write_constant_bomb`]: a tiny ONNX graph that takes 1 GB if folded at load, and
//!   [`resident_mb`], this process's resident memory, to check that it was not;
//! - [`v2_binary_body`]: a KServe v2 request as `tritonclient` sends it by default;
//! - [`files_below`]: every file under a folder with its bytes (a model folder, or the bucket
//!   folder the S3 server stores it in), to compare what was saved with what was stored.
//!
//! It is a dev-dependency only; a missing piece fails the test with a message saying how to
//! provide it (`kernel/setup.sh --with-tests` creates the venvs).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every file under `dir` (recursively) and its bytes, keyed by its path below `dir` with `/`
/// separators (`artifacts/scaler.json`), as a bucket keys the objects below a prefix.
pub fn files_below(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).unwrap_or_else(|e| panic!("{}: {e}", folder.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let key = path.strip_prefix(dir).unwrap().to_string_lossy().replace('\\', "/");
                files.insert(key, std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())));
            }
        }
    }
    files
}

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

/// Runs `crates/jukebox-server/tests/peers/registry_peer.py` in `mode` (`register`, `verify`,
/// `errors`, `paging`) with `python` (a venv holding one version of the Kubeflow `model-registry`
/// client) against the registry at `url`, for the model version `spec` (see [`registry_spec`]).
/// Asserts it succeeded (exit 0 and `PEER OK <mode>`) and returns its stdout.
pub fn run_registry_peer(python: &Path, mode: &str, url: &str, spec: &serde_json::Value) -> String {
    let script = workspace_root().join("crates/jukebox-server/tests/peers/registry_peer.py");
    let output = Command::new(python)
        .arg(&script)
        .arg(mode)
        .env("JUKEBOX_REGISTRY_URL", url)
        .env("JUKEBOX_REGISTRY_SPEC", spec.to_string())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success() && stdout.contains(&format!("PEER OK {mode}")),
        "peer `{mode}` failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Writes to `path` (creating its folder) a ~200-byte ONNX graph, `y = x + ConstantOfShape([16384,
/// 16384])`, whose constant takes 1 GB once folded at load; returns the file's size. For the
/// model server's guard and the runtime's loading without constant folding.
pub fn write_constant_bomb(path: &Path) -> u64 {
    let script = r#"
import sys, onnx
from onnx import helper as h, TensorProto as T
shape = h.make_tensor("shape", T.INT64, [2], [16384, 16384])
node = h.make_node("ConstantOfShape", ["shape"], ["big"], value=h.make_tensor("v", T.FLOAT, [1], [1.0]))
add = h.make_node("Add", ["x", "big"], ["y"])
graph = h.make_graph([node, add], "bomb", [h.make_tensor_value_info("x", T.FLOAT, [1])],
                     [h.make_tensor_value_info("y", T.FLOAT, None)], initializer=[shape])
model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
model.ir_version = 8
onnx.save(model, sys.argv[1])
"#;
    write_with_python(script, path, &[], "the bomb")
}

/// Runs the Python `script` (the workspace venv's, with the `onnx` package) with `path` and then
/// `args` as its arguments, to write a model file to `path` (its folder is created first);
/// returns the file's size. `what` names the file in the failure message.
pub fn write_with_python(script: &str, path: &Path, args: &[&str], what: &str) -> u64 {
    std::fs::create_dir_all(path.parent().expect("a file path")).unwrap();
    let out = Command::new(python()).args(["-c", script]).arg(path).args(args).output().expect("cannot run Python");
    assert!(
        out.status.success(),
        "writing {what} failed (pip install onnx?): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::metadata(path).unwrap().len()
}

/// A memory figure of this process in MiB: the `field` line of `/proc/self/status` (`VmRSS`,
/// `VmHWM`, ...), NaN where there is none (not Linux).
pub fn status_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kib| kib.parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// This process's resident memory in MB (`VmRSS`; 0 where there is none).
pub fn resident_mb() -> f64 {
    let mib = status_mib("VmRSS");
    if mib.is_nan() {
        0.0
    } else {
        mib
    }
}

/// A KServe v2 inference request as `tritonclient` sends it by default: the JSON header (one
/// `[rows, 1]` FP32 input per name, with `binary_data_size`, and output `output` asked for as
/// binary) followed by each column's little-endian bytes. Returns the body and the JSON header's
/// length (the `Inference-Header-Content-Length` header).
pub fn v2_binary_body(names: &[&str], columns: &[Vec<f32>]) -> (Vec<u8>, usize) {
    let inputs: Vec<String> = names
        .iter()
        .zip(columns)
        .map(|(name, data)| {
            format!(
                r#"{{"name":"{name}","shape":[{},1],"datatype":"FP32","parameters":{{"binary_data_size":{}}}}}"#,
                data.len(),
                data.len() * 4
            )
        })
        .collect();
    let json = format!(
        r#"{{"inputs":[{}],"outputs":[{{"name":"output","parameters":{{"binary_data":true}}}}]}}"#,
        inputs.join(",")
    );
    let mut body = json.clone().into_bytes();
    for column in columns {
        body.extend(column.iter().flat_map(|v| v.to_le_bytes()));
    }
    (body, json.len())
}

/// The first output of a KServe v2 answer (`body`, whose JSON part is `json_length` bytes when the
/// server sent binary data after it): its shape and values, from the JSON `data` or from the
/// `binary_data_size` little-endian bytes after the JSON. `None` when the answer has neither.
pub fn v2_answer(body: &[u8], json_length: Option<usize>) -> Option<(Vec<i64>, Vec<f32>)> {
    let json_end = json_length.unwrap_or(body.len());
    let answer: serde_json::Value = serde_json::from_slice(body.get(..json_end)?).ok()?;
    let output = &answer["outputs"][0];
    let shape = output["shape"].as_array()?.iter().map(|d| d.as_i64()).collect::<Option<Vec<i64>>>()?;
    let values = match output["data"].as_array() {
        Some(values) => values.iter().map(|v| v.as_f64().map(|v| v as f32)).collect::<Option<Vec<f32>>>()?,
        None => {
            let size = output["parameters"]["binary_data_size"].as_u64()? as usize;
            let bytes = body.get(json_end..json_end + size)?;
            bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
        }
    };
    Some((shape, values))
}
