//! The embedded model registry against its real peers: the official `model-registry` Python
//! client (0.3.18 on `/api/model_registry/v1`, 0.3.7 on `/v1alpha3`), raw HTTP, and headless
//! Chromium for the web page. Each test starts the real server on 127.0.0.1:0 with its SQLite
//! database in a temporary folder.
//!
//! Interpreters: env `JUKEBOX_PYTHON` (default `<workspace>/.venv/bin/python`, packages in
//! `kernel/requirements-test.txt`) and `JUKEBOX_PYTHON_MR037` (default
//! `<workspace>/.venv-mr037/bin/python`, packages in `kernel/requirements-mr037.txt`).
//! Browser: env `JUKEBOX_CHROMIUM` or `chromium` on the PATH (`apt-get install -y chromium`).

use std::path::{Path, PathBuf};
use std::process::Command;

use jukebox_server::registry::RegistryConfig;
use jukebox_server::server_thread::ServerThread;
use jukebox_testkit::{registry_spec as spec, run_registry_peer};
use serde_json::json;

/// The registry on `database`, on its own thread until stopped (or dropped).
fn start_registry(database: &Path) -> ServerThread {
    ServerThread::registry(RegistryConfig::new(database)).expect("the registry server did not start")
}

/// Stops the server and waits until it has closed its database.
fn stop(registry: ServerThread) {
    registry.stop().expect("registry server failed");
}

/// A registry on a new database in a temporary folder, on its own thread until stopped.
struct Fresh {
    registry: ServerThread,
    _dir: tempfile::TempDir,
}

impl Fresh {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self { registry: start_registry(&dir.path().join("registry.db")), _dir: dir }
    }

    /// Runs the registry peer in `mode` with `python` for `model`; answers its output.
    fn peer(&self, python: &Path, mode: &str, model: &serde_json::Value) -> String {
        run_registry_peer(python, mode, &self.registry.url(), model)
    }

    fn stop(self) {
        stop(self.registry);
    }
}

/// Asserts that `out` (a peer's output) says every line of `expected`.
fn says(out: &str, expected: &[&str]) {
    for line in expected {
        assert!(out.contains(line), "the peer did not say {line:?}:\n{out}");
    }
}

fn python_main() -> PathBuf {
    jukebox_testkit::venv_python("JUKEBOX_PYTHON", ".venv", "kernel/requirements-test.txt")
}

fn python_mr037() -> PathBuf {
    jukebox_testkit::venv_python("JUKEBOX_PYTHON_MR037", ".venv-mr037", "kernel/requirements-mr037.txt")
}

/// The `IDS {...}` line the peer prints after reading a model back.
fn ids(stdout: &str) -> serde_json::Value {
    let line = stdout.lines().find_map(|l| l.strip_prefix("IDS ")).expect("peer printed no IDS line");
    serde_json::from_str(line).expect("IDS line is JSON")
}

#[test]
fn official_client_0_3_18_registers_reads_back_and_refuses_a_repeat() {
    let registry = Fresh::start();
    let out = registry.peer(&python_main(), "register", &spec("jukebox"));
    says(&out, &["model-registry 0.3.18, base path /api/model_registry/v1,", "ok repeat registration refused"]);
    registry.stop();
}

#[test]
fn official_client_0_3_7_works_on_the_v1alpha3_base_path() {
    let registry = Fresh::start();
    let out = registry.peer(&python_mr037(), "register", &spec("jukebox"));
    says(&out, &["model-registry 0.3.7, base path /api/model_registry/v1alpha3,"]);
    // Both API versions see the same records.
    let read_by_new_client = registry.peer(&python_main(), "verify", &spec("jukebox"));
    assert_eq!(ids(&out), ids(&read_by_new_client));
    registry.stop();
}

#[test]
fn records_survive_a_restart_on_the_same_database() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("state/registry.db");
    let first = start_registry(&database);
    let written = ids(&run_registry_peer(&python_main(), "register", &first.url(), &spec("jukebox")));
    run_registry_peer(&python_main(), "register", &first.url(), &spec("second-model"));
    stop(first);

    let second = start_registry(&database);
    let read = ids(&run_registry_peer(&python_main(), "verify", &second.url(), &spec("jukebox")));
    assert_eq!(written, read, "ids changed across the restart");
    run_registry_peer(&python_main(), "verify", &second.url(), &spec("second-model"));
    // New records continue the id sequence instead of reusing ids.
    let third = ids(&run_registry_peer(&python_main(), "register", &second.url(), &spec("third-model")));
    let first_id: i64 = written["model"].as_str().unwrap().parse().unwrap();
    let third_id: i64 = third["model"].as_str().unwrap().parse().unwrap();
    assert!(third_id > first_id + 1, "third model got id {third_id} after {first_id}");
    stop(second);
}

#[test]
fn bad_requests_answer_json_errors_and_change_nothing_on_both_base_paths() {
    let registry = Fresh::start();
    registry.peer(&python_main(), "register", &spec("jukebox"));
    let v1 = registry.peer(&python_main(), "errors", &spec("jukebox"));
    says(&v1, &["ok malformed JSON: 400", "ok duplicate version: 409"]);
    let v1alpha3 = registry.peer(&python_mr037(), "errors", &spec("jukebox"));
    says(&v1alpha3, &["base path /api/model_registry/v1alpha3,"]);
    registry.stop();
}

#[test]
fn lists_page_with_the_official_pager_and_sort_by_time() {
    let registry = Fresh::start();
    let out = registry.peer(&python_main(), "paging", &json!({}));
    says(&out, &["ok pager (pageSize 2) saw each of 5 models once"]);
    registry.stop();
}

fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("JUKEBOX_CHROMIUM") {
        return PathBuf::from(path);
    }
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for folder in std::env::split_paths(&path_var) {
            let candidate = folder.join(name);
            if candidate.exists() {
                return candidate;
            }
        }
    }
    panic!("no Chromium found: install it (`apt-get install -y chromium`) or point JUKEBOX_CHROMIUM at one");
}

#[test]
fn web_page_renders_in_headless_chromium_with_user_text_escaped() {
    let browser = chromium();
    let registry = Fresh::start();
    let model = spec("jukebox");
    registry.peer(&python_main(), "register", &model);
    let mut hostile = spec("mixtape <i>deluxe</i> & co");
    hostile["metadata"] = json!({"note": "<script>document.title='owned'</script>"});
    registry.peer(&python_main(), "register", &hostile);

    let profile = tempfile::tempdir().unwrap();
    let output = Command::new(&browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--dump-dom"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("{}/", registry.registry.url()))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", browser.display()));
    let dom = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "chromium failed: {}", String::from_utf8_lossy(&output.stderr));

    assert!(dom.contains("<h2>jukebox</h2>"), "model name missing:\n{dom}");
    assert!(dom.contains("<tr class=\"version\" id=\"version-"), "version row (with its anchor) missing:\n{dom}");
    assert!(dom.contains("\"><td>1</td><td>LIVE</td>"), "version 1 and its state missing:\n{dom}");
    // The version table's columns are the protocol's, as in a notebook, then the page's own.
    let headings = "<th>version</th><th>state</th><th>accuracy</th><th>F1 (macro)</th><th>author</th>\
                    <th>created</th><th>format</th><th>uri</th><th>metadata</th>";
    assert!(dom.contains(headings), "version table headings missing:\n{dom}");
    let uri = model["uri"].as_str().unwrap().replace('&', "&amp;");
    assert!(dom.contains(&uri), "artifact URI {uri} missing:\n{dom}");
    assert!(dom.contains("<code>accuracy</code> = 0.342"), "metric missing:\n{dom}");
    assert!(dom.contains("onnx 1"), "model format missing:\n{dom}");
    // User text arrives as text, never as markup: no element was created from it.
    assert!(dom.contains("mixtape &lt;i&gt;deluxe&lt;/i&gt; &amp; co"), "escaped name missing:\n{dom}");
    assert!(!dom.contains("<i>deluxe</i>"), "model name became markup:\n{dom}");
    assert!(!dom.contains("<script>"), "metadata became a script:\n{dom}");
    assert!(dom.contains("<title>Model registry</title>"), "the page title changed:\n{dom}");
    registry.stop();
}
