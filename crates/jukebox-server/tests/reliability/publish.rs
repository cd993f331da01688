//! Issue 23 items 1 and 2: a saved version is immutable and published whole. With the suite's S3
//! server and registry, and the `jukebox` binary beside this test's (built by a workspace test run;
//! the probe says so and is skipped when it is absent):
//!
//! - the overwrite sequence: save 0.0.1 from `R/jukebox/1`, train again (another seed) into the
//!   same folder, save 0.0.2: 0.0.1's objects must stay byte-identical, 0.0.2 lands elsewhere;
//! - concurrent saves of one version (3 rounds short, 20 long): exactly one winner per round, and
//!   the registered folder holds the winner's bytes.
//!
//! Objects are read from the S3 server's folder (bucket `models` is `<suite>/s3/models`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use jukebox_testkit::files_below;

use crate::Suite;

/// The `jukebox` binary of the same build, if built (`target/<profile>/jukebox`).
fn jukebox_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let binary = exe.parent()?.parent()?.join("jukebox");
    binary.is_file().then_some(binary)
}

/// The stored objects of `prefix` (a folder of the bucket) that a local version folder also has:
/// the data files, whatever else the S3 server keeps beside them.
fn stored_like(bucket: &Path, prefix: &str, local: &BTreeMap<String, Vec<u8>>) -> BTreeMap<String, Vec<u8>> {
    let folder = bucket.join(prefix);
    if !folder.is_dir() {
        // Nothing was stored there: nothing matches, and the caller reports the difference.
        return BTreeMap::new();
    }
    files_below(&folder).into_iter().filter(|(key, _)| local.contains_key(key)).collect()
}

/// The storage path the registry records for `version` of `jukebox`.
fn storage_path(registry: &str, version: &str) -> Option<String> {
    let api = format!("{registry}/api/model_registry/v1");
    let get = |url: String| -> Option<serde_json::Value> { ureq::get(&url).call().ok()?.body_mut().read_json().ok() };
    let model = get(format!("{api}/registered_model?name=jukebox"))?;
    let found = get(format!("{api}/model_version?name={version}&parentResourceId={}", model["id"].as_str()?))?;
    let artifacts = get(format!("{api}/model_versions/{}/artifacts", found["id"].as_str()?))?;
    artifacts["items"][0]["storagePath"].as_str().map(String::from)
}

pub fn run(suite: &Suite) {
    let Some(jukebox) = jukebox_binary() else {
        suite.summary("publish: skipped (no `jukebox` binary beside this test; run the workspace's tests)");
        return;
    };
    let work = suite.dir.join("publish");
    let bucket = suite.dir.join("s3/models");
    let registry = suite.registry.url();
    let env = [
        ("AWS_S3_ENDPOINT", suite.s3.url()),
        ("AWS_ACCESS_KEY_ID", "jukebox".into()),
        ("AWS_SECRET_ACCESS_KEY", "jukebox-secret".into()),
        ("AWS_DEFAULT_REGION", "us-east-1".into()),
        ("AWS_S3_BUCKET", "models".into()),
        ("JUKEBOX_REGISTRY_URL", registry.clone()),
    ];
    let save = |folder: &Path, version: &str| {
        Command::new(&jukebox)
            .args(["save", "--version", version, "--version-dir"])
            .arg(folder)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env_remove("JUKEBOX_REGISTRY_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // The statuses table counts HTTP statuses: a save that exited 0 counts as 201 (created), a
    // refused one (exit 1) as 409 (conflict), a killed one as 0 (no answer).
    let exit = |output: &Output| match output.status.code() {
        Some(0) => 201,
        Some(_) => 409,
        None => 0,
    };

    // The overwrite sequence.
    let repository = work.join("R");
    let folder = repository.join("jukebox/1");
    jukebox_testkit::make_model(&repository, "1", "11");
    let first = save(&folder, "0.0.1").wait_with_output().unwrap();
    suite.status("publish save", exit(&first));
    let local_first = files_below(&folder);
    let stored_first = stored_like(&bucket, "models/jukebox/1", &local_first);
    if !first.status.success() || stored_first != local_first {
        suite.fail(format!(
            "publish: saving 0.0.1 failed or stored other bytes: {}",
            String::from_utf8_lossy(&first.stderr)
        ));
        return;
    }
    jukebox_testkit::make_model(&repository, "1", "12");
    let second = save(&folder, "0.0.2").wait_with_output().unwrap();
    suite.status("publish save", exit(&second));
    let kept = stored_like(&bucket, "models/jukebox/1", &local_first) == stored_first;
    let elsewhere = storage_path(&registry, "0.0.2");
    if !second.status.success() || !kept || elsewhere.as_deref() == Some("models/jukebox/1") {
        suite.fail(format!(
            "publish: retrain + save 0.0.2: status {}, 0.0.1's objects kept: {kept}, 0.0.2 at {elsewhere:?}",
            exit(&second)
        ));
    }
    suite.summary(format!(
        "publish: overwrite sequence: 0.0.1's {} objects byte-identical: {kept}; 0.0.2 stored at {}",
        stored_first.len(),
        elsewhere.unwrap_or_default()
    ));

    // Concurrent saves of one version.
    let rounds = if suite.short { 3 } else { 20 };
    let (mut single_winners, mut winner_bytes) = (0, 0);
    for round in 0..rounds {
        let version = format!("0.2.{round}");
        let folders: Vec<PathBuf> = (0..2)
            .map(|side| {
                let root = work.join(format!("race-{round}-{side}"));
                jukebox_testkit::make_model(&root, "1", &(200 + 2 * round + side).to_string());
                root.join("jukebox/1")
            })
            .collect();
        let children: Vec<_> = folders.iter().map(|f| save(f, &version)).collect();
        let outputs: Vec<Output> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
        for output in &outputs {
            suite.status("publish race", exit(output));
        }
        let winners: Vec<usize> = (0..2).filter(|&i| outputs[i].status.success()).collect();
        if winners.len() != 1 {
            suite.fail(format!("publish: round {round}: {} saves of {version} succeeded", winners.len()));
            continue;
        }
        single_winners += 1;
        let local = files_below(&folders[winners[0]]);
        match storage_path(&registry, &version) {
            Some(path) if stored_like(&bucket, &path, &local) == local => winner_bytes += 1,
            path => suite.fail(format!("publish: round {round}: {path:?} does not hold the winner's bytes")),
        }
    }
    suite.summary(format!(
        "publish: concurrent saves of one version: {rounds} rounds, {single_winners} with one winner, {winner_bytes} \
         with the winner's bytes registered"
    ));
}
