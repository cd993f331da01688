//! `jukebox::storage` against real S3 servers: the embedded one (`jukebox_server::s3`, started
//! in-process on 127.0.0.1:0) and `moto_server` from the venv's `moto[server]` (a subprocess on a
//! free port). boto3 (`tests/peers/storage_peer.py`, run with `JUKEBOX_PYTHON` or the workspace
//! venv) reads what our client wrote and writes what it reads.

use jukebox_testkit::python;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jukebox::display::ToHtml;
use jukebox::storage::{Direction, Storage, StorageConfig, StorageError, Verification};
use jukebox_server::s3::S3Config;
use jukebox_server::server_thread::ServerThread;

const ACCESS_KEY: &str = "jukebox";
const SECRET_KEY: &str = "jukebox-secret";
const BUCKET: &str = "models";

/// The embedded server on its own thread; shut down on drop.
struct EmbeddedS3 {
    endpoint: String,
    root: tempfile::TempDir,
    _server: ServerThread,
}

impl EmbeddedS3 {
    /// `bucket`: pre-created at start when given.
    fn start(bucket: Option<&str>) -> Self {
        let root = tempfile::tempdir().unwrap();
        let mut config = S3Config::new(root.path().join("s3"), ACCESS_KEY, SECRET_KEY);
        if let Some(bucket) = bucket {
            config = config.with_bucket(bucket);
        }
        let server = ServerThread::s3(config).unwrap();
        Self { endpoint: server.url(), root, _server: server }
    }

    fn objects_dir(&self) -> PathBuf {
        self.root.path().join("s3").join(BUCKET)
    }
}

/// `moto_server` on a free loopback port; killed on drop.
struct Moto {
    endpoint: String,
    child: Child,
}

impl Moto {
    fn start() -> Self {
        let moto = jukebox_testkit::venv_program("moto_server");
        assert!(
            moto.exists(),
            "{} not found: install `moto[server]` into the venv (kernel/requirements-test.txt)",
            moto.display()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(&moto)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", moto.display()));
        let mut moto = Self { endpoint: format!("http://127.0.0.1:{port}"), child };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!("moto_server exited early: {status}");
            }
            assert!(Instant::now() < deadline, "moto_server did not listen on port {port} within 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(endpoint: &str) -> StorageConfig {
    StorageConfig::new(endpoint, ACCESS_KEY, SECRET_KEY, "us-east-1", BUCKET)
}

/// Runs the boto3 peer against `endpoint`; asserts success, returns stdout.
fn peer(endpoint: &str, args: &[&str]) -> String {
    let output = Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/storage_peer.py"))
        .args(args)
        .env("AWS_S3_ENDPOINT", endpoint)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_S3_BUCKET", BUCKET)
        .output()
        .expect("cannot run the boto3 peer");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "storage_peer.py {args:?} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) as u8
        })
        .collect()
}

/// `<root>/jukebox/1/`: model.onnx plus artifacts, as the training stage writes it, and one file
/// large enough (9 MiB) for a multipart upload. Returns the folder and (relative path, bytes).
fn model_folder(root: &Path) -> (PathBuf, Vec<(String, Vec<u8>)>) {
    let dir = root.join("jukebox/1");
    let files = vec![
        ("artifacts/big.bin".to_string(), pseudo_random(9 * 1024 * 1024 + 17, 3)),
        ("artifacts/label_encoder.json".to_string(), br#"{"classes":["AE","AR","AT"]}"#.to_vec()),
        ("artifacts/metrics.json".to_string(), br#"{"accuracy":0.342,"f1_macro":0.332,"epochs":30}"#.to_vec()),
        ("artifacts/scaler.json".to_string(), br#"{"features":["tempo"],"min":[0.0],"max":[250.0]}"#.to_vec()),
        ("model.onnx".to_string(), pseudo_random(180_000, 1)),
    ];
    for (relative, bytes) in &files {
        let path = dir.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    (dir, files)
}

/// Our client uploads a model folder to `endpoint` (default prefix), boto3 downloads every
/// object, the bytes must be identical; then our client downloads what boto3 uploaded.
fn round_trip(endpoint: &str) {
    let work = tempfile::tempdir().unwrap();
    let (dir, files) = model_folder(work.path());

    let storage = Storage::connect(config(endpoint)).unwrap();
    let report = storage.upload_dir(&dir, None).unwrap();
    assert_eq!(report.direction, Direction::Upload);
    assert_eq!(report.prefix, "models/jukebox/1/");
    assert_eq!(report.uri, "s3://models/models/jukebox/1/");
    let keys: Vec<_> = report.objects.iter().map(|o| o.key.clone()).collect();
    let expected: Vec<_> = files.iter().map(|(rel, _)| format!("models/jukebox/1/{rel}")).collect();
    assert_eq!(keys, expected);
    assert_eq!(report.total_bytes(), files.iter().map(|(_, b)| b.len() as u64).sum::<u64>());
    for object in &report.objects {
        // Single-part uploads are checked through the ETag, the multipart one by reading back.
        let want = if object.size >= 8 * 1024 * 1024 { Verification::ReadBack } else { Verification::EtagIsMd5 };
        assert_eq!(object.verification, want, "{}", object.key);
    }
    let html = report.to_html();
    assert!(
        html.contains(">models/jukebox/1/model.onnx</td>") && html.contains("s3://models/models/jukebox/1/"),
        "{html}"
    );

    let fetched = work.path().join("boto3");
    let out = peer(endpoint, &["fetch", "models/jukebox/1/", fetched.to_str().unwrap()]);
    assert!(out.contains(&format!("ok: boto3 fetched {} objects", files.len())), "{out}");
    for (relative, bytes) in &files {
        assert!(std::fs::read(fetched.join(relative)).unwrap() == *bytes, "{relative}: boto3 got different bytes");
    }

    let listed = storage.list("models/jukebox/1/").unwrap();
    assert_eq!(listed.iter().map(|o| &o.key).collect::<Vec<_>>(), expected.iter().collect::<Vec<_>>());

    // The other direction: boto3 uploads (multipart for big.bin), our client downloads.
    peer(endpoint, &["put", "models/from-boto3/7/", dir.to_str().unwrap()]);
    let downloaded = work.path().join("ours");
    let report = storage.download_prefix("models/from-boto3/7", &downloaded).unwrap();
    assert_eq!(report.objects.len(), files.len());
    for (relative, bytes) in &files {
        assert!(std::fs::read(downloaded.join(relative)).unwrap() == *bytes, "{relative}: our download differs");
    }
    let big = report.objects.iter().find(|o| o.key.ends_with("big.bin")).unwrap();
    assert_eq!(big.verification, Verification::SizeOnly, "a multipart ETag is not an MD5");
    let small = report.objects.iter().find(|o| o.key.ends_with("model.onnx")).unwrap();
    assert_eq!(small.verification, Verification::DownloadMatchesEtag);
    let leftovers: Vec<_> = walk(&downloaded).into_iter().filter(|p| p.contains(".jukebox-download-")).collect();
    assert!(leftovers.is_empty(), "temporary download files left: {leftovers:?}");
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path.display().to_string());
        }
    }
    out
}

#[test]
fn round_trip_with_boto3_on_the_embedded_server() {
    let server = EmbeddedS3::start(None); // the client must create the bucket
    round_trip(&server.endpoint);
    assert!(server.objects_dir().join("models/jukebox/1/model.onnx").is_file());
}

#[test]
fn round_trip_with_boto3_on_moto_server() {
    let moto = Moto::start();
    round_trip(&moto.endpoint);
}

#[test]
fn connecting_twice_to_an_existing_bucket_is_fine_on_both_servers() {
    let server = EmbeddedS3::start(Some(BUCKET));
    let moto = Moto::start();
    for endpoint in [&server.endpoint, &moto.endpoint] {
        let first = Storage::connect(config(endpoint)).unwrap();
        assert!(!first.ensure_bucket().unwrap(), "{endpoint}: an existing bucket was reported as created");
        Storage::connect(config(endpoint)).unwrap();
    }
}

#[test]
fn wrong_credentials_are_named_and_store_nothing() {
    let server = EmbeddedS3::start(Some(BUCKET));
    let work = tempfile::tempdir().unwrap();
    let (dir, _) = model_folder(work.path());
    for (access_key, secret_key) in [(ACCESS_KEY, "wrong-secret"), ("nobody", SECRET_KEY)] {
        let bad = StorageConfig::new(&server.endpoint, access_key, secret_key, "us-east-1", BUCKET);
        let error = Storage::connect(bad.clone()).unwrap_err();
        assert!(matches!(error, StorageError::WrongCredentials { .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.contains("refused the credentials") && message.contains(access_key), "{message}");
        // Without the connect-time check, the upload itself is refused the same way.
        let error = Storage::open(bad).unwrap().upload_dir(&dir, None).unwrap_err();
        assert!(matches!(error, StorageError::WrongCredentials { .. }), "{error:?}");
    }
    assert_eq!(std::fs::read_dir(server.objects_dir()).unwrap().count(), 0, "a refused upload was stored");
}

#[test]
fn an_unreachable_endpoint_says_so() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let error = Storage::connect(config(&format!("http://127.0.0.1:{port}"))).unwrap_err();
    assert!(matches!(error, StorageError::Unreachable { .. }), "{error:?}");
    assert!(error.to_string().contains(&format!("cannot reach the S3 endpoint http://127.0.0.1:{port}")), "{error}");
}

#[test]
fn a_folder_that_is_not_a_model_version_needs_an_explicit_prefix() {
    let server = EmbeddedS3::start(Some(BUCKET));
    let work = tempfile::tempdir().unwrap();
    let loose = work.path().join("notes");
    std::fs::create_dir_all(&loose).unwrap();
    std::fs::write(loose.join("readme.txt"), b"hello").unwrap();
    let storage = Storage::connect(config(&server.endpoint)).unwrap();
    let error = storage.upload_dir(&loose, None).unwrap_err();
    assert!(error.to_string().contains("holds no model.onnx"), "{error}");
    let report = storage.upload_dir(&loose, Some("/misc/notes")).unwrap();
    assert_eq!(report.objects[0].key, "misc/notes/readme.txt");
    let missing = storage.download_prefix("models/none/1/", work.path().join("x")).unwrap_err();
    assert!(missing.to_string().contains("nothing is stored under s3://models/models/none/1/"), "{missing}");
}
