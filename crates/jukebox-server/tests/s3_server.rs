//! The embedded S3 server judged by boto3 (the client OpenShift AI workbenches use): a real
//! server on 127.0.0.1:0 over a temporary folder, and `tests/peers/s3_peer.py` run with the
//! workspace venv's Python (override with `JUKEBOX_PYTHON`).

use std::path::{Path, PathBuf};
use std::process::Command;

use jukebox_server::s3::S3Config;
use jukebox_server::server_thread::ServerThread;

const ACCESS_KEY: &str = "jukebox";
const SECRET_KEY: &str = "jukebox-secret";
const BUCKET: &str = "models";

/// A server running on its own thread; dropped = shut down (and its result checked).
struct RunningS3 {
    endpoint: String,
    root: tempfile::TempDir,
    server: Option<ServerThread>,
}

impl RunningS3 {
    fn start() -> Self {
        Self::start_on(tempfile::tempdir().unwrap())
    }

    fn start_on(root: tempfile::TempDir) -> Self {
        let config = S3Config::new(root.path().join("s3"), ACCESS_KEY, SECRET_KEY).with_bucket(BUCKET);
        let server = ServerThread::s3(config).unwrap();
        Self { endpoint: server.url(), root, server: Some(server) }
    }

    /// Stops this server and starts another on the same data folder.
    fn restart(mut self) -> Self {
        self.server.take().unwrap().stop().expect("server returned an error");
        let root = std::mem::replace(&mut self.root, tempfile::tempdir().unwrap());
        Self::start_on(root)
    }

    fn data_dir(&self) -> PathBuf {
        self.root.path().join("s3")
    }

    /// Runs the boto3 peer `tests/peers/s3_peer.py` with this server's data-connection
    /// variables; returns its stdout after asserting that it succeeded.
    fn peer(&self, args: &[&str]) -> String {
        self.run_peer(&peer_script(), args)
    }

    /// Runs `tests/peers/s3_integrity_peer.py` (see [`RunningS3::peer`]).
    fn integrity_peer(&self, args: &[&str]) -> String {
        self.run_peer(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/s3_integrity_peer.py"), args)
    }

    fn run_peer(&self, script: &Path, args: &[&str]) -> String {
        let output = Command::new(python())
            .arg(script)
            .args(args)
            .env("AWS_S3_ENDPOINT", &self.endpoint)
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_S3_BUCKET", BUCKET)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", python().display()));
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "{} {args:?} failed ({})\nstdout:\n{stdout}\nstderr:\n{stderr}",
            script.display(),
            output.status
        );
        stdout
    }
}

impl Drop for RunningS3 {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            let result = server.stop();
            if !std::thread::panicking() {
                result.expect("server returned an error");
            }
        }
    }
}

/// Prints a peer's output `out` (shown when the test fails) and asserts that it says every
/// line of `expected`.
fn says(out: &str, expected: &[&str]) {
    print!("{out}");
    for line in expected {
        assert!(out.contains(line), "the peer did not say {line:?}:\n{out}");
    }
}

fn python() -> PathBuf {
    let python = jukebox_testkit::python();
    let probe = Command::new(&python).args(["-c", "import boto3"]).output().expect("cannot run Python");
    assert!(
        probe.status.success(),
        "{} cannot import boto3: `{} -m pip install boto3` (listed in kernel/requirements-test.txt)",
        python.display(),
        python.display()
    );
    python
}

fn peer_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/s3_peer.py")
}

/// A folder shaped like a trained model: model.onnx plus artifacts, one file big enough for
/// boto3 to upload in several parts. Returns (relative path, bytes) of every file.
fn write_model_folder(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let pseudo_random = |len: usize, seed: u64| -> Vec<u8> {
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..len)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (state >> 33) as u8
            })
            .collect()
    };
    let files = vec![
        ("model.onnx".to_string(), pseudo_random(300_000, 1)),
        ("artifacts/scaler.json".to_string(), br#"{"features":["tempo"],"min":[0.0],"max":[250.0]}"#.to_vec()),
        ("artifacts/label_encoder.json".to_string(), br#"{"classes":["AE","AR"]}"#.to_vec()),
        ("artifacts/metrics.json".to_string(), br#"{"accuracy":0.34}"#.to_vec()),
        ("artifacts/big/weights.bin".to_string(), pseudo_random(6 * 1024 * 1024 + 123, 2)),
        ("artifacts/empty.txt".to_string(), Vec::new()),
    ];
    for (relative, bytes) in &files {
        let path = dir.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    files
}

fn md5_hex(bytes: &[u8]) -> String {
    use s3s::crypto::{Checksum, Md5};
    Md5::checksum(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn boto3_uploads_lists_and_downloads_every_object_byte_for_byte() {
    let server = RunningS3::start();
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("jukebox/1");
    let files = write_model_folder(&source);

    let upload = server.peer(&["upload-tree", source.to_str().unwrap(), "models/jukebox/1/"]);
    assert!(upload.contains("ok: uploaded 6 files"), "{upload}");

    let fetched = work.path().join("fetched");
    let listing = server.peer(&["fetch-tree", "models/jukebox/1/", fetched.to_str().unwrap()]);
    assert!(listing.contains("ok: fetched 6 objects"), "{listing}");
    for (relative, bytes) in &files {
        let got = std::fs::read(fetched.join(relative)).unwrap_or_else(|e| panic!("{relative} not downloaded: {e}"));
        assert!(got == *bytes, "{relative}: downloaded bytes differ from the uploaded ones");
        // Single-part uploads carry the MD5 as ETag; the multipart one carries `<md5>-<parts>`.
        let line = listing.lines().find(|l| l.starts_with(&format!("object models/jukebox/1/{relative} "))).unwrap();
        let etag = line.rsplit(' ').next().unwrap();
        if bytes.len() < 1024 * 1024 {
            assert_eq!(etag, md5_hex(bytes), "{relative}: ETag is not the MD5 of the content");
        } else {
            assert!(etag.ends_with("-2"), "{relative}: expected a two-part ETag, got {etag}");
        }
    }
    // The objects are plain files under the data folder (what `jukebox up` users will look at).
    assert_eq!(std::fs::read(server.data_dir().join("models/models/jukebox/1/model.onnx")).unwrap(), files[0].1);
}

#[test]
fn wrong_credentials_are_refused_and_store_nothing() {
    let server = RunningS3::start();
    let out = server.peer(&["wrong-credentials"]);
    assert_eq!(out.matches("refused: 403").count(), 3, "{out}");
    assert!(!server.data_dir().join("models/intruder").exists(), "a refused upload reached the disk");
}

#[test]
fn a_cut_off_or_corrupted_upload_never_becomes_visible() {
    let server = RunningS3::start();
    let out = server.peer(&["truncated-put"]);
    says(
        &out,
        &[
            "ok: half/cut-off.bin is neither listed nor readable",
            "ok: half/bad-digest.bin is neither listed nor readable",
            "ok: the server still accepts whole uploads",
        ],
    );
    let objects: Vec<_> = std::fs::read_dir(server.data_dir().join("models/half"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(objects, vec!["whole.bin".to_string()]);
    // No temporary file is left behind by the failed uploads (s3s-fs's, or the store's).
    let leftovers: Vec<_> = std::fs::read_dir(server.data_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with(".tmp."))
        .chain(
            std::fs::read_dir(server.data_dir().join(".jukebox-tmp"))
                .unwrap()
                .map(|e| format!(".jukebox-tmp/{}", e.unwrap().file_name().into_string().unwrap())),
        )
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn a_bucket_name_that_s3_forbids_is_refused_at_start() {
    let root = tempfile::tempdir().unwrap();
    let config = S3Config::new(root.path(), ACCESS_KEY, SECRET_KEY).with_bucket("Not_A_Bucket");
    let Err(error) = jukebox_server::s3::service(&config) else { panic!("an invalid bucket name was accepted") };
    assert!(error.to_string().contains("Not_A_Bucket"), "{error}");
}

/// Issue 10: a non-empty DeleteBucket is 409 and deletes nothing; client mistakes (a body not
/// matching x-amz-content-sha256, keys leaving the bucket) are 4xx, never 500, and store nothing.
#[test]
fn client_mistakes_are_4xx_and_a_non_empty_bucket_survives_delete_bucket() {
    let server = RunningS3::start();
    let out = server.peer(&["hardening"]);
    says(
        &out,
        &[
            "ok: non-empty DeleteBucket refused: 409 BucketNotEmpty",
            "ok: x-amz-content-sha256 mismatch refused: 400",
            "ok: the server still accepts uploads",
        ],
    );
    assert_eq!(std::fs::read(server.data_dir().join("models/keep/model.onnx")).unwrap(), b"weights");
    assert!(!server.data_dir().join("models/sha/mismatch.bin").exists());
    assert!(!std::path::Path::new("/tmp/escape.bin").exists());
}

/// Issue 23 item 4: concurrent PUTs of one key (20 rounds of 2-4 writers with different bodies,
/// a reader GETting all along): boto3 with checksum validation never raises and every body's MD5
/// is its ETag.
#[test]
fn concurrent_puts_of_one_key_serve_each_body_with_its_own_etag_and_crc32() {
    let server = RunningS3::start();
    let out = server.integrity_peer(&["concurrent-puts", "20"]);
    says(&out, &["ok: 20 rounds, 59 concurrent PUTs", "every ETag and CRC32 matched its body"]);
}

/// Issue 23 item 4: a PUT refused for a wrong CRC32 or Content-MD5, or cut off, over an existing
/// object leaves it byte-identical (with its ETag and CRC32) and leaves no temporary file.
#[test]
fn a_refused_put_leaves_the_previous_object_byte_identical() {
    let server = RunningS3::start();
    let out = server.integrity_peer(&["refused-put"]);
    assert_eq!(out.matches("the previous object is byte-identical, same ETag and CRC32").count(), 3, "{out}");
    says(&out, &["PUT with a wrong x-amz-checksum-crc32 refused (400)"]);
    let tmp = server.data_dir().join(".jukebox-tmp");
    let leftovers: Vec<_> = std::fs::read_dir(&tmp).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(leftovers.is_empty(), "temporary files left in {}: {leftovers:?}", tmp.display());
}

/// Issue 23 item 4: a multipart upload over a PUT replaces the checksums (no stale CRC32).
#[test]
fn a_multipart_upload_over_a_put_replaces_its_checksums() {
    let server = RunningS3::start();
    let out = server.integrity_peer(&["put-then-multipart"]);
    says(&out, &["ok: a multipart upload over a PUT replaced bytes, ETag and checksums"]);
}

/// Issue 23 item 6: keys up to 1,024 bytes round-trip; a key part no file system can name, a key
/// over 1,024 bytes and an object/folder clash are 4xx naming the problem, never 500 (boto3
/// judges; the peer fails on any 5xx).
#[test]
fn long_keys_and_object_folder_clashes_never_answer_500() {
    let server = RunningS3::start();
    let out = server.integrity_peer(&["long-keys"]);
    says(
        &out,
        &[
            "ok: a 1024-byte key round-trips",
            "ok: a key with a 256-byte part: 4xx 400 KeyTooLongError",
            "ok: a 1,025-byte key is refused: 400 KeyTooLongError",
        ],
    );
    let out = server.integrity_peer(&["clashes"]);
    says(
        &out,
        &[
            "ok: PUT f while f/g exists: 409 ObjectFolderConflict",
            "ok: PUT h/i while h exists: 409 ObjectFolderConflict",
            "ok: GET f: 404 NoSuchKey",
            "ok: no clash answered 5xx",
        ],
    );
    // Metadata file names are bounded whatever the key's length.
    for entry in std::fs::read_dir(server.data_dir().join(".jukebox-meta")).unwrap() {
        let name = entry.unwrap().file_name();
        assert!(name.len() <= 80, "metadata file name of {} bytes: {name:?}", name.len());
    }
}

/// Metadata is durable with its data: after a restart on the same folder every acknowledged
/// object still has its bytes, ETag and CRC32.
#[test]
fn acknowledged_objects_keep_their_etag_and_crc32_across_a_restart() {
    let server = RunningS3::start();
    let manifest = server.root.path().join("acknowledged.json");
    let manifest = manifest.to_str().unwrap();
    let probed = server.integrity_peer(&["probe", manifest]);
    let probed: serde_json::Value = serde_json::from_str(probed.lines().last().unwrap()).unwrap();
    assert_eq!(probed["failures"], serde_json::json!([]), "{probed}");
    let acknowledged = probed["acknowledged"].as_u64().unwrap();
    assert!(acknowledged >= 8, "{probed}");
    let server = server.restart();
    let verified = server.integrity_peer(&["verify", manifest]);
    let verified: serde_json::Value = serde_json::from_str(verified.lines().last().unwrap()).unwrap();
    assert_eq!(verified["failures"], serde_json::json!([]), "{verified}");
    assert_eq!(verified["recovered"].as_u64().unwrap(), acknowledged, "{verified}");
}

/// The object operations the store took over from s3s-fs keep their S3 meaning: CopyObject
/// carries bytes, ETag, CRC32 and content type (REPLACE changes the type), DeleteObjects deletes.
#[test]
fn copy_object_keeps_metadata_and_delete_objects_deletes() {
    let server = RunningS3::start();
    let out = server.integrity_peer(&["copy-delete"]);
    says(
        &out,
        &[
            "ok: CopyObject copies bytes, ETag, CRC32 and content type",
            "ok: a self-copy with MetadataDirective=REPLACE changes the content type",
            "ok: a copy of a missing source: 404 NoSuchKey",
            "ok: DeleteObjects deletes both objects",
        ],
    );
}
