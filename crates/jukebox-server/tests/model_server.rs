//! The model server started for real on 127.0.0.1:0 and judged by real KServe v2 clients
//! (`tritonclient[http]`, plain `requests`) in `tests/peers/model_server_peer.py`, against the
//! Python onnxruntime on the same model files.

use std::path::Path;
use std::process::Command;

use jukebox_server::model_server::{serve, ModelServerConfig};
use jukebox_testkit::{make_model, python};

/// Writes jukebox/1 and jukebox/2 (different weights).
fn model_repository() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    make_model(dir.path(), "1", "1");
    make_model(dir.path(), "2", "2");
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

/// GET `url`: (status, body); error statuses are answers here, not failures.
fn get(url: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut response = agent.get(url).call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    (response.status().as_u16(), response.body_mut().read_to_string().unwrap())
}

/// Polls `url` until it answers `status` (the watcher looks every 100 ms here).
fn wait_for(url: &str, status: u16) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (got, body) = get(url);
        if got == status {
            return body;
        }
        assert!(std::time::Instant::now() < deadline, "GET {url} still answers {got} ({body}), expected {status}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Versions copied into a watched folder are served without a restart; a broken file is left out
/// while the other versions keep serving; a removed version is unloaded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watched_repository_serves_versions_as_they_arrive() {
    let root = tempfile::tempdir().unwrap();
    let repository = root.path().join("models"); // does not exist yet: an empty bucket
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let mut config = ModelServerConfig::new(&repository);
    config.poll_interval = Some(std::time::Duration::from_millis(100));
    config.token = None;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::fs::create_dir_all(&repository).unwrap();
    let server = tokio::spawn(serve(listener, config, async {
        stopped.await.ok();
    }));

    let checks = tokio::task::spawn_blocking(move || {
        wait_for(&format!("{url}/v2/health/ready"), 200);
        let (status, body) = get(&format!("{url}/v2/models/jukebox/ready"));
        assert_eq!(status, 404, "{body}");

        make_model(&repository, "1", "1");
        wait_for(&format!("{url}/v2/models/jukebox/ready"), 200);

        // A broken version 2 is reported and skipped; version 1 keeps serving as the latest.
        std::fs::create_dir_all(repository.join("jukebox/2")).unwrap();
        std::fs::write(repository.join("jukebox/2/model.onnx"), b"not an onnx file").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(400));
        let body = wait_for(&format!("{url}/v2/models/jukebox"), 200);
        let metadata: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(metadata["versions"], serde_json::json!(["1"]), "{body}");

        // Fixed: version 2 arrives and becomes the default.
        std::fs::remove_dir_all(repository.join("jukebox/2")).unwrap();
        make_model(&repository, "2", "2");
        wait_for(&format!("{url}/v2/models/jukebox/versions/2/ready"), 200);
        let (_, body) = get(&format!("{url}/v2/models/jukebox/ready"));
        assert!(body.contains(r#""version":"2""#), "{body}");

        std::fs::remove_dir_all(repository.join("jukebox/1")).unwrap();
        wait_for(&format!("{url}/v2/models/jukebox/versions/1/ready"), 404);
    });
    checks.await.unwrap();
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
