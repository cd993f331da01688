//! What an operator of `jukebox up` sees, with the real binary: the log file under the state
//! folder (with `RUST_LOG=debug`, the libraries' own events; one access line per request), a 5xx
//! whose cause is in the log and not in the answer, `--log-format json`, and the three servers'
//! Prometheus metrics judged by Prometheus's Python parser (`tests/peers/metrics_peer.py`).

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const JUKEBOX: &str = env!("CARGO_BIN_EXE_jukebox");

use jukebox_protocol::model_folder::WORKSHOP_FEATURES as FEATURES;

/// `jukebox up` on free ports with its state in `state`, serving `repository`; killed on drop.
struct Up {
    child: Child,
    env: BTreeMap<String, String>,
    state: PathBuf,
    stderr: PathBuf,
}

impl Up {
    fn start(state: &Path, repository: &Path, rust_log: Option<&str>, extra: &[&str]) -> Self {
        std::fs::create_dir_all(state).unwrap();
        let stderr = state.with_extension("stderr");
        let mut command = Command::new(JUKEBOX);
        command
            .args(["up", "--s3-port", "0", "--registry-port", "0", "--model-port", "0", "--state-dir"])
            .arg(state)
            .arg("--model-repository")
            .arg(repository)
            .args(extra)
            .env_remove("JUKEBOX_REGISTRY_TOKEN")
            .env_remove("JUKEBOX_MODEL_TOKEN")
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap());
        if let Some(filter) = rust_log {
            command.env("RUST_LOG", filter);
        }
        let mut child = command.spawn().expect("cannot start `jukebox up`");
        let env = common::read_exports(&mut child, 7);
        Self { child, env, state: state.to_path_buf(), stderr }
    }

    fn url(&self, name: &str) -> &str {
        &self.env[name]
    }

    /// SIGTERM, waits for the exit (so the log is complete), returns the log file's text.
    fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "`jukebox up` did not stop within 15 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
        let stderr = std::fs::read_to_string(&self.stderr).unwrap();
        let log = self.state.join("logs/jukebox-up.log");
        assert!(stderr.contains(&log.display().to_string()), "`jukebox up` did not say where its log goes:\n{stderr}");
        std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("no log file at {}: {e}", log.display()))
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// A repository holding the workshop-shaped model `jukebox` version 1.
fn repository(root: &Path) -> PathBuf {
    let repository = root.join("repository");
    jukebox_testkit::make_model(&repository, "1", "7");
    repository
}

/// Waits (up to 30 s) until the model server has loaded `jukebox` version 1: `jukebox up` prints
/// its environment once listening, and its repository watcher loads the model soon after.
fn wait_until_ready(agent: &ureq::Agent, model: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let ready =
        || agent.get(format!("{model}/v2/models/jukebox/versions/1/ready")).call().is_ok_and(|r| r.status() == 200);
    while !ready() {
        assert!(Instant::now() < deadline, "the model server did not load jukebox version 1 within 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn infer_body(rows: usize) -> String {
    let inputs: Vec<serde_json::Value> = FEATURES
        .iter()
        .map(|name| serde_json::json!({"name": name, "shape": [rows, 1], "datatype": "FP32", "data": vec![0.5f32; rows]}))
        .collect();
    serde_json::json!({ "inputs": inputs }).to_string()
}

#[test]
fn up_logs_library_events_at_debug_and_one_access_line_per_inference_under_the_state_folder() {
    let temp = tempfile::tempdir().unwrap();
    let up = Up::start(&temp.path().join("state"), &repository(temp.path()), Some("debug"), &[]);
    let agent = agent();
    let model = up.url("JUKEBOX_MODEL_URL").to_string();
    wait_until_ready(&agent, &model);

    let mut answer = agent
        .post(format!("{model}/v2/models/jukebox/versions/1/infer"))
        .content_type("application/json")
        .send(infer_body(3))
        .unwrap();
    assert_eq!(answer.status(), 200);
    let bytes = answer.body_mut().read_to_vec().unwrap().len();
    // An S3 request with a made-up signature: s3s refuses it, with its own debug events on the way.
    let s3 = agent
        .get(format!("{}/models?X-Amz-Signature=not-a-secret-but-hidden", up.url("AWS_S3_ENDPOINT")))
        .call()
        .unwrap();
    let s3_status = s3.status().as_u16();
    assert!((400..500).contains(&s3_status), "an unsigned S3 request answered {s3_status}");
    let registry = agent
        .get(format!("{}/api/model_registry/v1alpha3/registered_models", up.url("JUKEBOX_REGISTRY_URL")))
        .call()
        .unwrap();
    assert_eq!(registry.status(), 200);

    // Not HTTP at all: hyper refuses it, and its error reaches the log at debug.
    let registry_addr = up.url("JUKEBOX_REGISTRY_URL").trim_start_matches("http://").to_string();
    let mut socket = std::net::TcpStream::connect(&registry_addr).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    socket.write_all(b"NOT HTTP AT ALL\r\n\r\n").unwrap();
    let _ = std::io::Read::read_to_end(&mut socket, &mut Vec::new());

    let log = up.stop();
    assert!(
        log.lines().any(|l| l.contains("DEBUG") && l.contains("connection ended with an error")),
        "hyper's error for a malformed request is not in the debug log:\n{log}"
    );
    let s3s_events = log.lines().filter(|l| l.contains("DEBUG") && l.contains(" s3s::")).count();
    assert!(s3s_events > 0, "no s3s debug events in the log:\n{log}");
    let access: Vec<&str> = log.lines().filter(|l| l.contains("jukebox_server::access")).collect();
    let inferences: Vec<&&str> =
        access.iter().filter(|l| l.contains("path=/v2/models/jukebox/versions/1/infer ")).collect();
    assert_eq!(inferences.len(), 1, "one inference, one access line:\n{}", access.join("\n"));
    let line = inferences[0];
    for field in [
        "service=\"model server\"".to_string(),
        "method=POST".into(),
        "status=200".into(),
        format!("bytes={bytes}"),
        "model=\"jukebox\"".into(),
        "version=1".into(),
        "rows=3".into(),
    ] {
        assert!(line.contains(&field), "the access line lacks {field}: {line}");
    }
    let duration: u64 = line
        .split_whitespace()
        .find_map(|field| field.strip_prefix("duration_us="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no duration_us in {line}"));
    assert!(duration > 0 && duration < 30_000_000, "duration_us={duration}");
    let s3_line = access.iter().find(|l| l.contains("service=\"s3\"")).expect("no S3 access line");
    assert!(
        s3_line.contains(&format!("status={s3_status}")) && s3_line.contains("X-Amz-Signature=REDACTED"),
        "{s3_line}"
    );
    // Access lines never show it (s3s's own debug events print whole requests: see the README).
    assert!(
        !access.iter().any(|l| l.contains("not-a-secret-but-hidden")),
        "a signature from the query string reached an access line"
    );
    assert!(
        access.iter().any(|l| l.contains("service=\"registry\"") && l.contains("status=200")),
        "no registry access line:\n{}",
        access.join("\n")
    );
}

#[test]
fn a_database_locked_by_another_process_answers_a_short_500_and_the_json_log_says_why() {
    let temp = tempfile::tempdir().unwrap();
    let state = temp.path().join("state");
    let up = Up::start(&state, &repository(temp.path()), None, &["--log-format", "json"]);
    // Another program holds an exclusive lock on the registry's database, as a backup tool or a
    // stray `sqlite3` shell can: the registry cannot read it (after SQLite's 5 s busy wait).
    let mut locker = Command::new(jukebox_testkit::python())
        .arg("-c")
        .arg(
            "import sqlite3, sys\n\
             db = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
             db.execute('BEGIN EXCLUSIVE')\n\
             print('locked', flush=True)\n\
             sys.stdin.read()\n",
        )
        .arg(state.join("registry.db"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut said = String::new();
    BufReader::new(locker.stdout.take().unwrap()).read_line(&mut said).unwrap();
    assert_eq!(said.trim(), "locked");

    let mut answer = agent()
        .get(format!("{}/api/model_registry/v1alpha3/registered_models", up.url("JUKEBOX_REGISTRY_URL")))
        .call()
        .unwrap();
    let status = answer.status().as_u16();
    let body = answer.body_mut().read_to_string().unwrap();
    drop(locker.stdin.take());
    locker.wait().unwrap();
    assert_eq!(status, 500, "{body}");
    let lower = body.to_lowercase();
    assert!(
        !lower.contains("locked") && !lower.contains("sqlite") && !lower.contains("database"),
        "the client sees internal detail: {body}"
    );

    let log = up.stop();
    let events: Vec<serde_json::Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}")))
        .collect();
    let failed: Vec<&serde_json::Value> =
        events.iter().filter(|e| e["target"] == "jukebox_server::access" && e["status"] == 500).collect();
    assert_eq!(failed.len(), 1, "one failed request, one access line: {failed:?}");
    let failure = failed[0];
    assert_eq!(failure["level"], "ERROR");
    assert_eq!(failure["service"], "registry");
    let cause = failure["cause"].as_str().unwrap_or_default();
    assert!(cause.contains("database is locked"), "the log does not say why: {failure}");
    assert!(failure["duration_us"].as_u64().is_some(), "{failure}");
}

#[test]
fn metrics_of_the_three_servers_parse_with_prometheus_client_and_count_each_request() {
    let temp = tempfile::tempdir().unwrap();
    let up = Up::start(&temp.path().join("state"), &repository(temp.path()), None, &[]);
    wait_until_ready(&agent(), up.url("JUKEBOX_MODEL_URL"));
    let peer = jukebox_testkit::workspace_root().join("crates/jukebox-cli/tests/peers/metrics_peer.py");
    let output = Command::new(jukebox_testkit::python()).arg(&peer).envs(&up.env).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("PEER OK metrics"),
        "metrics peer failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let _ = std::io::stdout().write_all(stdout.as_bytes());
    up.stop();
}
