//! `jukebox up` and `jukebox save` as a user runs them: the real binary starts the servers on
//! free ports, `save` uploads and registers a model folder using the printed environment, boto3
//! and the official `model-registry` client (`tests/peers/save_peer.py`, venv Python or
//! `JUKEBOX_PYTHON`) check the result, a repeat is refused, the model server of `up` and a
//! separate `jukebox serve` (from the registry entry, and from the s3:// prefix) serve the
//! uploaded model, and SIGTERM stops everything.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const JUKEBOX: &str = env!("CARGO_BIN_EXE_jukebox");

use jukebox_testkit::{files_below, python};

/// `jukebox up` running in the background; killed on drop if a test fails midway.
struct Up {
    child: Child,
    env: BTreeMap<String, String>,
}

impl Up {
    fn start(data_dir: &Path, env_file: &Path) -> Self {
        Self::start_with(data_dir, env_file, &[])
    }

    /// `jukebox up` with `extra` flags (`--registry-token T`, `--model-token T`, ...).
    fn start_with(data_dir: &Path, env_file: &Path, extra: &[&str]) -> Self {
        let mut child = Command::new(JUKEBOX)
            .args(["up", "--s3-port", "0", "--registry-port", "0", "--model-port", "0", "--state-dir"])
            .arg(data_dir)
            .arg("--env-file")
            .arg(env_file)
            .args(extra)
            .env_remove("JUKEBOX_REGISTRY_TOKEN")
            .env_remove("JUKEBOX_MODEL_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot start `jukebox up`");
        // The export lines arrive once the three servers listen: seven, and one per token.
        let tokens = extra.iter().filter(|a| matches!(**a, "--registry-token" | "--model-token")).count();
        let env = common::read_exports(&mut child, 7 + tokens);
        Self { child, env }
    }

    /// SIGTERM, then the exit status (within 15 s).
    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().expect("cannot run kill");
        assert!(sent.success());
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "`jukebox up` did not stop within 15 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn save(env: &BTreeMap<String, String>, model_dir: &Path, version: &str) -> Output {
    Command::new(JUKEBOX)
        .args([
            "save",
            "--name",
            "jukebox",
            "--version",
            version,
            "--description",
            "dense net, 30 epochs",
            "--author",
            "ada",
        ])
        .arg("--version-dir")
        .arg(model_dir)
        .envs(env)
        .env("JUKEBOX_STORAGE_KEY", "workshop-models")
        .output()
        .expect("cannot run `jukebox save`")
}

/// `jukebox serve ARGS` on a free port with `env`: the child (killed on drop) and its URL.
struct Serve {
    child: Child,
    url: String,
}

impl Serve {
    fn start(args: &[&str], env: &BTreeMap<String, String>) -> Self {
        let mut command = Command::new(JUKEBOX);
        command.args(["serve", "--port", "0"]).args(args).envs(env);
        if !env.contains_key("JUKEBOX_REGISTRY_URL") {
            // `--registry` takes its default from there and conflicts with --model-repository.
            command.env_remove("JUKEBOX_REGISTRY_URL");
        }
        let mut child =
            command.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("cannot start `jukebox serve`");
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let url = lines
            .map_while(Result::ok)
            .find_map(|line| line.strip_prefix("export JUKEBOX_MODEL_URL=").map(str::to_string))
            .unwrap_or_else(|| panic!("`jukebox serve {}` ended without printing its URL", args.join(" ")));
        Self { child, url }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET `url`, waiting up to 20 s for a 200: its body.
fn wait_until_ok(url: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match ureq::get(url).call() {
            Ok(mut response) => return response.body_mut().read_to_string().unwrap(),
            Err(e) => assert!(Instant::now() < deadline, "GET {url} still fails after 20 s: {e}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn up_serves_save_uploads_and_registers_and_a_repeat_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let model_dir = work.path().join("models/jukebox/1");
    let maker = Path::new(env!("CARGO_MANIFEST_DIR")).join("../jukebox-runtime/tests/peers/make_model.py");
    let made =
        Command::new(python()).arg(&maker).arg(work.path().join("models")).args(["--version", "1"]).output().unwrap();
    assert!(made.status.success(), "make_model.py failed: {}", text(&made.stderr));
    let onnx = std::fs::read(model_dir.join("model.onnx")).unwrap();
    std::fs::write(
        model_dir.join("artifacts/metrics.json"),
        r#"{"accuracy":0.342,"precision_macro":0.3,"recall_macro":0.31,"f1_macro":0.332,"f1_weighted":0.34,
            "epochs":30,"batch_size":32,"seed":42,"data_rows":19699,"training_seconds":12.5}"#,
    )
    .unwrap();

    let data_dir = work.path().join("state");
    let env_file = work.path().join("jukebox.env");
    let up = Up::start(&data_dir, &env_file);
    let endpoint = up.env["AWS_S3_ENDPOINT"].clone();
    assert!(endpoint.starts_with("http://127.0.0.1:") && !endpoint.ends_with(":0"), "{endpoint}");
    assert_eq!(up.env["AWS_S3_BUCKET"], "models");
    assert_eq!(up.env["AWS_DEFAULT_REGION"], "us-east-1");
    assert!(up.env["JUKEBOX_REGISTRY_URL"].starts_with("http://127.0.0.1:"));
    let written = std::fs::read_to_string(&env_file).unwrap();
    assert!(written.contains(&format!("export AWS_S3_ENDPOINT={endpoint}\n")), "{written}");

    let first = save(&up.env, &model_dir, "0.0.1");
    assert!(first.status.success(), "save failed:\n{}\n{}", text(&first.stdout), text(&first.stderr));
    let stdout = text(&first.stdout);
    assert!(stdout.contains("4 objects") && stdout.contains("s3://models/models/jukebox/1/"), "{stdout}");

    // The model server of `up` serves what was just uploaded, without a restart.
    let ready = wait_until_ok(&format!("{}/v2/models/jukebox/ready", up.env["JUKEBOX_MODEL_URL"]));
    assert!(ready.contains(r#""version":"1""#), "{ready}");

    // `jukebox serve` fetches the same model as KServe's storage initializer would: through the
    // registry entry (its artifact URI), or straight from the s3:// prefix.
    let mut storage_env = up.env.clone();
    storage_env.remove("JUKEBOX_REGISTRY_URL");
    let registry_url = up.env["JUKEBOX_REGISTRY_URL"].clone();
    for (how, args) in [
        ("registry", vec!["--registry", registry_url.as_str(), "--model", "jukebox", "--version", "0.0.1"]),
        ("s3", vec!["--model-repository", "s3://models/models/jukebox/1"]),
    ] {
        let server = Serve::start(&args, &storage_env);
        let metadata = wait_until_ok(&format!("{}/v2/models/jukebox", server.url));
        assert!(metadata.contains(r#""versions":["1"]"#) && metadata.contains("danceability"), "{how}: {metadata}");
    }

    let seen = save_peer(&up.env, "0.0.1", "models/jukebox/1/");
    assert!(seen.contains(&format!("object models/jukebox/1/model.onnx {}", onnx.len())), "{seen}");
    assert!(seen.contains("object models/jukebox/1/artifacts/metrics.json"), "{seen}");
    let uri = format!("s3://models/models/jukebox/1?endpoint={endpoint}&defaultRegion=us-east-1");
    for expected in [
        format!("field uri {uri}"),
        "field model_format_name onnx".into(),
        "field model_format_version 1".into(),
        "field storage_key workshop-models".into(),
        "field storage_path models/jukebox/1".into(),
        "field author ada".into(),
        "field description dense net, 30 epochs".into(),
        "field meta.accuracy 0.342".into(),
        "field meta.epochs 30".into(),
        "field meta.data_rows 19699".into(),
        "field meta.license 'Apache-2.0'".into(),
    ] {
        assert!(seen.contains(&expected), "missing `{expected}` in:\n{seen}");
    }
    assert!(!seen.contains("meta.precision_macro"), "only the chosen metrics are recorded:\n{seen}");

    // A repeat of the same version is refused before uploading anything.
    let stored = data_dir.join("s3/models/models/jukebox/1/model.onnx");
    let before = std::fs::metadata(&stored).unwrap().modified().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let second = save(&up.env, &model_dir, "0.0.1");
    assert!(!second.status.success(), "a duplicate version was accepted");
    let message = text(&second.stderr);
    assert!(message.contains("already registered") && message.contains("nothing was uploaded"), "{message}");
    assert_eq!(std::fs::metadata(&stored).unwrap().modified().unwrap(), before, "the model was uploaded again");

    let status = up.terminate();
    assert!(status.success(), "`jukebox up` exited with {status} on SIGTERM");
    assert!(!env_file.exists(), "the env file outlived the servers");
    assert!(data_dir.join("registry.db").is_file());
}

/// Runs `tests/peers/save_peer.py` (the official clients reading back what `jukebox save` wrote:
/// boto3 lists the version's objects under `prefix`, the Kubeflow client reads model `jukebox`
/// version `version`) with the data connection `env`; asserts it succeeded, returns its stdout.
fn save_peer(env: &BTreeMap<String, String>, version: &str, prefix: &str) -> String {
    let peer = Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/save_peer.py"))
        .args(["jukebox", version, prefix])
        .envs(env)
        .output()
        .unwrap();
    let seen = text(&peer.stdout);
    assert!(peer.status.success(), "peer failed:\n{seen}\n{}", text(&peer.stderr));
    seen
}

/// `field meta.KEY VALUE` lines of save_peer.py's output, by key (values as Python's repr).
fn peer_metadata(seen: &str) -> BTreeMap<String, String> {
    seen.lines()
        .filter_map(|line| line.strip_prefix("field meta.")?.split_once(' '))
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

#[test]
fn refine_registers_the_run_chosen_by_validation_score_with_its_settings() {
    let work = tempfile::tempdir().unwrap();
    let up = Up::start(&work.path().join("state"), &work.path().join("jukebox.env"));
    let models = work.path().join("models");
    let grid = r#"{"epochs":[2, 4],"hidden_layers":[[16],[32, 32]],"learning_rate":[0.003],"batch_size":[64]}"#;
    let refine = Command::new(JUKEBOX)
        .args(["refine", "--no-comparison", "--grid", grid, "--register", "0.0.2", "--data-dir"])
        .arg(jukebox_testkit::sample_data_dir())
        .arg("--model-repository")
        .arg(&models)
        .envs(&up.env)
        .output()
        .expect("cannot run `jukebox refine`");
    let stdout = text(&refine.stdout);
    assert!(refine.status.success(), "refine failed:\n{stdout}\n{}", text(&refine.stderr));
    assert!(stdout.contains("sweep: 4 runs on the grouped split, seed 42"), "{stdout}");

    // The run log holds every run; the chosen one has the best validation accuracy.
    let records: Vec<serde_json::Value> = std::fs::read_to_string(models.join("runs.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(records.len(), 4);
    let chosen: Vec<&serde_json::Value> = records.iter().filter(|r| r["chosen"] == true).collect();
    assert_eq!(chosen.len(), 1, "exactly one run is chosen");
    let chosen = chosen[0];
    let best_validation = records.iter().map(|r| r["val_accuracy"].as_f64().unwrap()).fold(f64::MIN, f64::max);
    assert_eq!(chosen["val_accuracy"].as_f64().unwrap(), best_validation);
    assert!(stdout.contains(&format!("chosen: run {} ", chosen["run"])), "{stdout}");

    // The official Kubeflow client reads 0.0.2 back with the chosen run's settings and scores.
    let seen = save_peer(&up.env, "0.0.2", "models/jukebox/2/");
    assert!(seen.contains("object models/jukebox/2/model.onnx"), "{seen}");
    let meta = peer_metadata(&seen);
    let number =
        |key: &str| meta.get(key).unwrap_or_else(|| panic!("no meta.{key} in:\n{seen}")).parse::<f64>().unwrap();
    assert_eq!(meta["split"], "'grouped'");
    assert_eq!(meta["hidden_layers"], format!("'{}'", chosen["hidden_layers"].as_str().unwrap()));
    assert_eq!(number("val_accuracy"), chosen["val_accuracy"].as_f64().unwrap());
    assert_eq!(number("accuracy"), chosen["test_accuracy"].as_f64().unwrap());
    assert_eq!(number("learning_rate"), 0.003);
    assert_eq!(number("batch_size"), 64.0);
    assert_eq!(number("epochs"), chosen["epochs"].as_f64().unwrap());
    assert_eq!(number("seed"), 42.0);

    // The model server of `up` serves version 2 next to nothing else.
    let ready = wait_until_ok(&format!("{}/v2/models/jukebox/versions/2/ready", up.env["JUKEBOX_MODEL_URL"]));
    assert!(ready.contains("true"), "{ready}");
    assert!(up.terminate().success());
}

/// The reliability suite's crash check: S3 uploads and registry writes from four threads while
/// `jukebox up` is killed with SIGKILL, then a restart on the same folder. Every write that was
/// acknowledged must be there, complete; the figures are printed.
#[test]
fn acknowledged_writes_survive_kill_9() {
    use jukebox::registry::{ModelRegistry, RegisterModel};
    use jukebox::storage::{Storage, StorageConfig};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    let work = tempfile::tempdir().unwrap();
    let (state, env_file) = (work.path().join("state"), work.path().join("jukebox.env"));
    let mut up = Up::start(&state, &env_file);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for file in [env_file.clone(), state.join("credentials")] {
            let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{} holds the S3 secret but is mode {mode:o}", file.display());
        }
    }
    assert_ne!(up.env["AWS_SECRET_ACCESS_KEY"], "jukebox-secret", "the secret is made up per state folder");

    let storage_config =
        |env: &BTreeMap<String, String>| StorageConfig::from_lookup(|key| env.get(key).cloned()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let objects = Arc::new(Mutex::new(Vec::<(String, u64)>::new()));
    let versions = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let mut writers = Vec::new();
    for writer in 0..2 {
        let (stop_s3, objects, config) = (stop.clone(), objects.clone(), storage_config(&up.env));
        let file = work.path().join(format!("payload-{writer}"));
        std::fs::write(&file, vec![writer as u8; 256 * 1024 + writer]).unwrap();
        writers.push(std::thread::spawn(move || {
            let Ok(storage) = Storage::connect(config) else { return };
            for i in 0.. {
                if stop_s3.load(Ordering::SeqCst) {
                    break;
                }
                let key = format!("reliability/writer-{writer}/{i}");
                if let Ok(sent) = storage.upload_file(&file, &key) {
                    objects.lock().unwrap().push((key, sent.size));
                }
            }
        }));
        let (stop, versions, url) = (stop.clone(), versions.clone(), up.env["JUKEBOX_REGISTRY_URL"].clone());
        writers.push(std::thread::spawn(move || {
            let registry = ModelRegistry::new(&url);
            for i in 0.. {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let (model, version) = (format!("model-{writer}"), format!("0.0.{i}"));
                if registry
                    .register_model(&RegisterModel::new(&model, &version, format!("s3://models/{model}/{i}")))
                    .is_ok()
                {
                    versions.lock().unwrap().push((model, version));
                }
            }
        }));
    }
    std::thread::sleep(Duration::from_millis(1500));
    up.child.kill().unwrap(); // SIGKILL: no shutdown, no flush
    up.child.wait().unwrap();
    stop.store(true, Ordering::SeqCst);
    for writer in writers {
        writer.join().unwrap();
    }
    let (objects, versions) = (objects.lock().unwrap().clone(), versions.lock().unwrap().clone());
    assert!(!objects.is_empty() && !versions.is_empty(), "no write was acknowledged before the kill");

    let up = Up::start(&state, &env_file);
    let storage = Storage::connect(storage_config(&up.env)).unwrap();
    let stored: BTreeMap<String, u64> =
        storage.list("reliability/").unwrap().into_iter().map(|o| (o.key, o.size)).collect();
    let recovered_objects = objects.iter().filter(|(key, size)| stored.get(key) == Some(size)).count();
    let registry = ModelRegistry::new(&up.env["JUKEBOX_REGISTRY_URL"]);
    let recovered_versions =
        versions.iter().filter(|(model, version)| registry.get_model_version(model, version).is_ok()).count();
    println!(
        "kill -9 during parallel writes: S3 objects acknowledged {} recovered {}; registry versions acknowledged {} recovered {}",
        objects.len(),
        recovered_objects,
        versions.len(),
        recovered_versions
    );
    assert_eq!(recovered_objects, objects.len(), "acknowledged uploads were lost or cut short");
    assert_eq!(recovered_versions, versions.len(), "acknowledged registrations were lost");
    assert!(up.terminate().success());
}

#[test]
fn up_refuses_a_busy_port_with_a_hint() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let work = tempfile::tempdir().unwrap();
    let output = Command::new(JUKEBOX)
        .args(["up", "--registry-port", "0", "--s3-port", &port, "--state-dir"])
        .arg(work.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let message = text(&output.stderr);
    assert!(
        message.contains(&format!("port {port} on 127.0.0.1 is in use")) && message.contains("--s3-port 0"),
        "{message}"
    );
}

#[test]
fn save_names_the_missing_variable() {
    let work = tempfile::tempdir().unwrap();
    let model_dir = work.path().join("jukebox/1");
    std::fs::create_dir_all(model_dir.join("artifacts")).unwrap();
    std::fs::write(model_dir.join("model.onnx"), b"onnx").unwrap();
    std::fs::write(model_dir.join("artifacts/metrics.json"), r#"{"accuracy":0.5}"#).unwrap();
    let output = Command::new(JUKEBOX)
        .args(["save", "--version", "1"])
        .arg("--version-dir")
        .arg(&model_dir)
        .env_remove("JUKEBOX_REGISTRY_URL")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("JUKEBOX_REGISTRY_URL is not set"), "{}", text(&output.stderr));
}

// --- issue 23: a registered version is immutable and published whole -----------------------

/// Every object under `prefix` of the bucket `up` serves, with its bytes, read with the S3 client.
fn bucket_objects(env: &BTreeMap<String, String>, prefix: &str) -> BTreeMap<String, Vec<u8>> {
    use jukebox::storage::{Storage, StorageConfig};
    let storage = Storage::connect(StorageConfig::from_lookup(|key| env.get(key).cloned()).unwrap()).unwrap();
    let keys: Vec<String> = storage.list(prefix).unwrap().into_iter().map(|o| o.key).collect();
    if keys.is_empty() {
        return BTreeMap::new();
    }
    let into = tempfile::tempdir().unwrap();
    let report = storage.download_prefix(prefix, into.path()).unwrap();
    report.objects.into_iter().map(|o| (o.key, std::fs::read(&o.local_path).unwrap())).collect()
}

/// The objects of `prefix` keyed below it, as [`files_below`] keys a folder.
fn below(objects: &BTreeMap<String, Vec<u8>>, prefix: &str) -> BTreeMap<String, Vec<u8>> {
    objects.iter().map(|(key, bytes)| (key.trim_start_matches(prefix).to_string(), bytes.clone())).collect()
}

/// The probabilities version `version` of `jukebox` answers for one song of mid-range features.
fn infer(model_url: &str, version: u64) -> Vec<f64> {
    let inputs: Vec<serde_json::Value> = jukebox_protocol::model_folder::WORKSHOP_FEATURES
        .iter()
        .map(|name| serde_json::json!({"name": name, "shape": [1, 1], "datatype": "FP32", "data": [0.5]}))
        .collect();
    let url = format!("{model_url}/v2/models/jukebox/versions/{version}/infer");
    let mut answer = ureq::post(&url).send_json(serde_json::json!({ "inputs": inputs })).unwrap();
    let body: serde_json::Value = answer.body_mut().read_json().unwrap();
    body["outputs"][0]["data"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect()
}

fn save_as(env: &BTreeMap<String, String>, dir: &Path, version: &str, extra: &[&str]) -> Output {
    Command::new(JUKEBOX)
        .args(["save", "--version", version])
        .arg("--version-dir")
        .arg(dir)
        .args(extra)
        .envs(env)
        .output()
        .expect("cannot run `jukebox save`")
}

#[test]
fn retraining_into_the_same_folder_and_saving_a_new_version_leaves_the_first_as_it_was() {
    let work = tempfile::tempdir().unwrap();
    let repository = work.path().join("R");
    let folder = repository.join("jukebox/1");
    jukebox_testkit::make_model(&repository, "1", "7");
    let up = Up::start(&work.path().join("state"), &work.path().join("jukebox.env"));

    let first = save_as(&up.env, &folder, "0.0.1", &[]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let model_url = &up.env["JUKEBOX_MODEL_URL"];
    wait_until_ok(&format!("{model_url}/v2/models/jukebox/versions/1/ready"));
    let stored_first = bucket_objects(&up.env, "models/jukebox/1/");
    assert_eq!(below(&stored_first, "models/jukebox/1/"), files_below(&folder));
    let answer_first = infer(model_url, 1);

    // Train again, another seed, into the same folder; save it as 0.0.2.
    jukebox_testkit::make_model(&repository, "1", "8");
    assert_ne!(files_below(&folder)["model.onnx"], stored_first["models/jukebox/1/model.onnx"]);
    let second = save_as(&up.env, &folder, "0.0.2", &[]);
    let (stdout, stderr) = (text(&second.stdout), text(&second.stderr));
    assert!(second.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("s3://models/models/jukebox/2/"), "{stdout}");
    assert!(stderr.contains("next free folder, models/jukebox/2/"), "{stderr}");

    // 0.0.1's objects are byte for byte as they were, and both versions serve.
    assert_eq!(bucket_objects(&up.env, "models/jukebox/1/"), stored_first, "0.0.1's objects changed");
    assert_eq!(below(&bucket_objects(&up.env, "models/jukebox/2/"), "models/jukebox/2/"), files_below(&folder));
    wait_until_ok(&format!("{model_url}/v2/models/jukebox/versions/2/ready"));
    assert_eq!(infer(model_url, 1), answer_first, "version 1 answers as before");
    assert_ne!(infer(model_url, 2), answer_first, "version 2 is the retrained model");
    let registry = jukebox::registry::ModelRegistry::new(&up.env["JUKEBOX_REGISTRY_URL"]);
    for (version, path) in [("0.0.1", "models/jukebox/1"), ("0.0.2", "models/jukebox/2")] {
        let artifact = registry.get_model_artifact("jukebox", version).unwrap();
        assert_eq!(artifact.fields.storage_path.as_deref(), Some(path), "{version}");
    }

    // A name that would climb out of its folder: refused before anything is written.
    let climbing = save_as(&up.env, &folder, "0.0.4", &["--name", "x/../jukebox"]);
    let message = text(&climbing.stderr);
    assert!(!climbing.status.success(), "--name 'x/../jukebox' was accepted");
    assert!(message.contains("model name \"x/../jukebox\" cannot be used: it contains '/'"), "{message}");
    assert!(message.contains("lowercase letters, digits and '-'"), "{message}");
    let everything = bucket_objects(&up.env, "");
    assert_eq!(everything.len(), stored_first.len() * 2, "{:?}", everything.keys().collect::<Vec<_>>());
    assert_eq!(bucket_objects(&up.env, "models/jukebox/1/"), stored_first);
    assert!(registry.get_model_version("jukebox", "0.0.4").unwrap_err().is_not_found());

    // `jukebox serve --model-repository` with `up`'s environment exported (JUKEBOX_REGISTRY_URL too).
    assert!(up.env.contains_key("JUKEBOX_REGISTRY_URL"));
    let served = Serve::start(&["--model-repository", repository.to_str().unwrap()], &up.env);
    let metadata = wait_until_ok(&format!("{}/v2/models/jukebox", served.url));
    assert!(metadata.contains(r#""versions":["1"]"#), "{metadata}");
    drop(served);
    assert!(up.terminate().success());
}

#[test]
fn of_two_concurrent_saves_of_one_version_exactly_one_wins_with_its_bytes() {
    const ROUNDS: usize = 20;
    let work = tempfile::tempdir().unwrap();
    let up = Up::start(&work.path().join("state"), &work.path().join("jukebox.env"));
    let registry = jukebox::registry::ModelRegistry::new(&up.env["JUKEBOX_REGISTRY_URL"]);
    let mut raced = 0;
    for round in 0..ROUNDS {
        let version = format!("0.1.{round}");
        let folders: Vec<std::path::PathBuf> = ["a", "b"]
            .iter()
            .enumerate()
            .map(|(i, side)| {
                let root = work.path().join(format!("race-{round}-{side}"));
                jukebox_testkit::make_model(&root, "1", &(100 + 2 * round + i).to_string());
                root.join("jukebox/1")
            })
            .collect();
        let saves: Vec<Child> = folders
            .iter()
            .map(|folder| {
                Command::new(JUKEBOX)
                    .args(["save", "--version", &version, "--version-dir"])
                    .arg(folder)
                    .envs(&up.env)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let outputs: Vec<Output> = saves.into_iter().map(|save| save.wait_with_output().unwrap()).collect();
        let winners: Vec<usize> = (0..2).filter(|&i| outputs[i].status.success()).collect();
        let report = || outputs.iter().map(|o| text(&o.stderr)).collect::<Vec<_>>().join("\n---\n");
        assert_eq!(winners.len(), 1, "round {round}: {} saves succeeded:\n{}", winners.len(), report());
        let loser = text(&outputs[1 - winners[0]].stderr);
        assert!(loser.contains("registered by another save") || loser.contains("already registered"), "{loser}");
        raced += usize::from(loser.contains("registered by another save"));

        // The registered folder holds the winner's bytes, every one.
        let artifact = registry.get_model_artifact("jukebox", &version).unwrap();
        let prefix = format!("{}/", artifact.fields.storage_path.unwrap());
        let stored = below(&bucket_objects(&up.env, &prefix), &prefix);
        assert_eq!(
            stored,
            files_below(&folders[winners[0]]),
            "round {round}: {prefix} does not hold the winner's bytes"
        );
        assert!(bucket_objects(&up.env, ".jukebox-staging/").is_empty(), "round {round}: a staged upload is left");
    }
    println!(
        "concurrent saves of one version: {ROUNDS} rounds, {ROUNDS} single winners, {raced} decided at registration"
    );
    assert!(up.terminate().success());
}

#[test]
fn a_save_without_the_registry_token_uploads_nothing() {
    let work = tempfile::tempdir().unwrap();
    let env_file = work.path().join("jukebox.env");
    let up = Up::start_with(
        &work.path().join("state"),
        &env_file,
        &["--registry-token", "registry-secret", "--model-token", "model-secret"],
    );
    // The env file carries both tokens, so a shell that sources it can use every service.
    let written = std::fs::read_to_string(&env_file).unwrap();
    for line in ["export JUKEBOX_REGISTRY_TOKEN=registry-secret\n", "export JUKEBOX_MODEL_TOKEN=model-secret\n"] {
        assert!(written.contains(line), "{written}");
    }
    jukebox_testkit::make_model(work.path(), "1", "7");
    let folder = work.path().join("jukebox/1");

    let mut without = up.env.clone();
    without.remove("JUKEBOX_REGISTRY_TOKEN");
    let refused = save_as(&without, &folder, "0.0.1", &[]);
    let message = text(&refused.stderr);
    assert!(!refused.status.success(), "saved without the registry token");
    assert!(message.contains("refuses writes") && message.contains("JUKEBOX_REGISTRY_TOKEN"), "{message}");
    assert!(message.contains("nothing was uploaded"), "{message}");
    let listed = bucket_objects(&up.env, "");
    assert!(listed.is_empty(), "uploaded without access to the registry: {:?}", listed.keys().collect::<Vec<_>>());

    let saved = save_as(&up.env, &folder, "0.0.1", &[]);
    assert!(saved.status.success(), "{}", text(&saved.stderr));
    assert_eq!(bucket_objects(&up.env, "").len(), files_below(&folder).len());
    assert!(up.terminate().success());
}

#[test]
fn a_broken_model_folder_is_refused_before_any_upload() {
    let work = tempfile::tempdir().unwrap();
    let up = Up::start(&work.path().join("state"), &work.path().join("jukebox.env"));
    let good = work.path().join("good");
    jukebox_testkit::make_model(&good, "1", "7");
    let model = std::fs::read(good.join("jukebox/1/model.onnx")).unwrap();
    type Break = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, Break, &str)> = vec![
        (
            "random model.onnx",
            Box::new(|d: &Path| std::fs::write(d.join("model.onnx"), [7u8; 4096]).unwrap()),
            "does not load in ONNX Runtime",
        ),
        (
            "truncated model.onnx",
            Box::new(move |d: &Path| std::fs::write(d.join("model.onnx"), &model[..model.len() / 2]).unwrap()),
            "does not load in ONNX Runtime",
        ),
        (
            "empty model.onnx",
            Box::new(|d: &Path| std::fs::write(d.join("model.onnx"), b"").unwrap()),
            "does not load in ONNX Runtime",
        ),
        (
            "no scaler.json",
            Box::new(|d: &Path| std::fs::remove_file(d.join("artifacts/scaler.json")).unwrap()),
            "scaler.json: it is missing",
        ),
        (
            "scaler.json of 12 features",
            Box::new(|d: &Path| {
                let path = d.join("artifacts/scaler.json");
                let mut scaler: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
                for field in ["features", "min", "max"] {
                    scaler[field].as_array_mut().unwrap().pop();
                }
                std::fs::write(&path, scaler.to_string()).unwrap();
            }),
            "scaler features the model lacks: []",
        ),
        (
            "label_encoder.json of 3 classes",
            Box::new(|d: &Path| {
                std::fs::write(d.join("artifacts/label_encoder.json"), r#"{"classes":["AR","BR","CL"]}"#).unwrap()
            }),
            "the label encoder names 3 classes",
        ),
    ];
    for (i, (case, break_it, says)) in cases.iter().enumerate() {
        let root = work.path().join(format!("case-{i}"));
        jukebox_testkit::make_model(&root, "1", "7");
        let folder = root.join("jukebox/1");
        break_it(&folder);
        let output = save_as(&up.env, &folder, "0.0.1", &[]);
        let message = text(&output.stderr);
        assert!(!output.status.success(), "{case}: saved");
        assert!(message.contains(says) && message.contains("nothing was uploaded"), "{case}: {message}");
        let listed = bucket_objects(&up.env, "");
        assert!(listed.is_empty(), "{case}: uploaded {:?}", listed.keys().collect::<Vec<_>>());
    }
    let registry = jukebox::registry::ModelRegistry::new(&up.env["JUKEBOX_REGISTRY_URL"]);
    assert!(registry.get_model_version("jukebox", "0.0.1").unwrap_err().is_not_found());
    assert!(up.terminate().success());
}
