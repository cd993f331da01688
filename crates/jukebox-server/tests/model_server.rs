//! The model server started for real on 127.0.0.1:0 and judged by real KServe v2 clients
//! (`tritonclient[http]`, plain `requests`) in `tests/peers/model_server_peer.py`, against the
//! Python onnxruntime on the same model files.

use std::path::{Path, PathBuf};
use std::process::Command;

use jukebox_server::model_server::{serve, ModelServerConfig};

fn python() -> PathBuf {
    let python = std::env::var_os("JUKEBOX_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python"));
    assert!(
        python.exists(),
        "Python interpreter {} not found: create the venv (python3 -m venv .venv && .venv/bin/pip install -r kernel/requirements-test.txt) or set JUKEBOX_PYTHON",
        python.display()
    );
    python
}

/// Writes jukebox/1 and jukebox/2 (different weights) with the runtime crate's model maker.
fn model_repository() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let maker = Path::new(env!("CARGO_MANIFEST_DIR")).join("../jukebox-runtime/tests/peers/make_model.py");
    for (version, seed) in [("1", "1"), ("2", "2")] {
        let out = Command::new(python())
            .arg(&maker)
            .arg(dir.path())
            .args(["--version", version, "--seed", seed])
            .output()
            .unwrap();
        assert!(out.status.success(), "make_model.py failed (pip install onnx numpy?): {}", String::from_utf8_lossy(&out.stderr));
    }
    dir
}

/// Starts the server, runs the peer script against it, then shuts the server down cleanly.
async fn judge(token: Option<&str>) {
    let repository = model_repository();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let mut config = ModelServerConfig::new(repository.path());
    config.token = token.map(str::to_string);
    config.max_body_bytes = 1024 * 1024;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, config, async {
        stopped.await.ok();
    }));

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/model_server_peer.py");
    let mut command = Command::new(python());
    command.arg(script).env("JUKEBOX_MODEL_URL", &url).env("MODEL_DIR", repository.path());
    match token {
        Some(token) => command.env("JUKEBOX_MODEL_TOKEN", token),
        None => command.env_remove("JUKEBOX_MODEL_TOKEN"),
    };
    // The peer blocks while the server answers on this runtime's other workers.
    let out = tokio::task::spawn_blocking(move || command.output()).await.unwrap().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    assert!(
        out.status.success(),
        "peer failed (missing package? pip install -r kernel/requirements-test.txt):\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("ok tritonclient binary"), "{stdout}");
    assert!(stdout.contains("ok tritonclient json"), "{stdout}");
    assert!(stdout.contains("ok requests workshop body"), "{stdout}");
    assert!(stdout.contains("error cases answered, server still serving"), "{stdout}");
    assert_eq!(stdout.contains("ok token enforced"), token.is_some(), "{stdout}");
    assert!(stdout.trim_end().ends_with("ALL OK"), "{stdout}");

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kserve_clients_agree_with_onnxruntime() {
    judge(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_is_enforced() {
    judge(Some("s3cret-token")).await;
}

#[tokio::test]
async fn missing_repository_is_named() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = serve(listener, ModelServerConfig::new("/nonexistent/models"), async {}).await.unwrap_err();
    assert!(err.to_string().contains("/nonexistent/models"), "{err}");
}
