//! `jukebox deploy` prints YAML that PyYAML parses and that carries every form field.

use jukebox_testkit::python;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

#[test]
fn deploy_yaml_carries_every_form_field() {
    let out = Command::new(env!("CARGO_BIN_EXE_jukebox"))
        .args([
            "deploy",
            "--name",
            "songs",
            "--namespace",
            "user1-jukebox",
            "--replicas",
            "3",
            "--size",
            "medium",
            "--external-route",
            "--token-auth",
            "--service-account",
            "reader",
            "--data-connection",
            "models",
            "--path",
            "models/songs",
            "--deployment-mode",
            "raw-deployment",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut checker = Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/check_deploy_yaml.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    checker.stdin.take().unwrap().write_all(&out.stdout).unwrap();
    let checked = checker.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "YAML check failed (pip install pyyaml?): {}\n{}",
        String::from_utf8_lossy(&checked.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&checked.stdout).starts_with("ok ServingRuntime InferenceService"));

    let refused = Command::new(env!("CARGO_BIN_EXE_jukebox")).args(["deploy", "--name", "Bad_Name"]).output().unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("Bad_Name"));
}
