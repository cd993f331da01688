//! Issue 23's S3 probes (items 4 and 6), judged by boto3 (`tests/peers/s3_integrity_peer.py`):
//! concurrent PUTs of one key while a reader GETs it with checksum validation, PUTs refused
//! over an existing object (wrong CRC32, wrong Content-MD5, body cut off), a multipart upload
//! over a PUT, keys up to 1,024 bytes and object/folder clashes (never a 5xx). Then the server is
//! stopped and started again on the same folder and every acknowledged object is read back: its
//! bytes, ETag and CRC32 must be the acknowledged ones.
//!
//! Runs on its own S3 server (so it can restart it), in a few seconds.

use std::path::Path;
use std::process::Command;

use jukebox_server::s3::S3Config;

use crate::common::Running;
use crate::Suite;

const KIND: &str = "s3 integrity";

pub fn run(suite: &Suite) {
    let root = suite.dir.join("s3-integrity");
    let manifest = suite.dir.join("s3-integrity-acknowledged.json");
    let config = || S3Config::new(&root, "jukebox", "jukebox-secret").with_bucket("models");

    let server = Running::s3(config());
    let Some(probed) = peer(suite, &server, "probe", &manifest) else { return };
    drop(server); // A stop and a start on the same folder: what a restart of `jukebox up` does.
    let server = Running::s3(config());
    let Some(verified) = peer(suite, &server, "verify", &manifest) else { return };

    let probes = probed["probes"].as_array().map_or(0, Vec::len);
    let acknowledged = probed["acknowledged"].as_u64().unwrap_or(0);
    let recovered = verified["recovered"].as_u64().unwrap_or(0);
    for failure in probed["failures"].as_array().into_iter().flatten() {
        suite.fail(format!("{KIND}: {}", failure.as_str().unwrap_or_default()));
    }
    for failure in verified["failures"].as_array().into_iter().flatten() {
        suite.crash(format!("{KIND}: after a restart: {}", failure.as_str().unwrap_or_default()));
    }
    if acknowledged == 0 || recovered != acknowledged {
        suite.crash(format!("{KIND}: {acknowledged} objects acknowledged, {recovered} recovered after a restart"));
    }
    suite.summary(format!(
        "{KIND}: {probes} probes (concurrent PUTs, refused PUTs, multipart over PUT, long keys, clashes); \
         acknowledged {acknowledged}, recovered {recovered} after a restart"
    ));
}

/// Runs one peer command; its last stdout line is a JSON summary whose statuses go to the tally.
fn peer(suite: &Suite, server: &Running, command: &str, manifest: &Path) -> Option<serde_json::Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/s3_integrity_peer.py");
    let output = Command::new(jukebox_testkit::python())
        .arg(&script)
        .arg(command)
        .arg(manifest)
        .env("AWS_S3_ENDPOINT", server.url())
        .env("AWS_ACCESS_KEY_ID", "jukebox")
        .env("AWS_SECRET_ACCESS_KEY", "jukebox-secret")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_S3_BUCKET", "models")
        .output();
    let output = match output {
        Ok(output) => output,
        Err(e) => {
            suite.fail(format!("{KIND}: cannot run {}: {e}", script.display()));
            return None;
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary = stdout.lines().last().and_then(|line| serde_json::from_str::<serde_json::Value>(line).ok());
    let Some(summary) = summary.filter(|_| output.status.success()) else {
        suite.fail(format!(
            "{KIND}: `s3_integrity_peer.py {command}` failed ({}):\n{stdout}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
        return None;
    };
    for (status, count) in summary["statuses"].as_object().into_iter().flatten() {
        let status: u16 = status.parse().unwrap_or(0);
        for _ in 0..count.as_u64().unwrap_or(0) {
            suite.status(KIND, status);
        }
    }
    Some(summary)
}
