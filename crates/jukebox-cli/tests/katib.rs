//! `jukebox refine --katib` writes a Katib Experiment that Katib's own API models accept, and the
//! trial it describes runs here and reports its score the way Katib's collector reads it.
//!
//! Judges: PyPI `kubeflow-katib-api` 0.19.0 (Katib's generated models, through
//! `tests/peers/check_katib_experiment.py`, which also checks the rules of Katib's validating
//! webhook that concern this Experiment and refuses five broken variants of it), and Katib's
//! stdout collector's filter, applied by the same script to the trial's output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use jukebox_testkit::{python, sample_data_dir};

fn jukebox(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_jukebox")).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "jukebox {}: {}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    out
}

fn checker() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/check_katib_experiment.py")
}

/// The checker's verdict on `yaml`: its stdout lines.
fn check(yaml: &[u8]) -> Vec<String> {
    use std::io::Write;
    let mut child = Command::new(python())
        .arg(checker())
        .arg("check")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(yaml).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "Katib's models refuse the Experiment (pip install -r kernel/requirements-test.txt for kubeflow-katib-api?):\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(yaml)
    );
    String::from_utf8_lossy(&out.stdout).lines().map(String::from).collect()
}

#[test]
fn the_experiment_passes_katibs_models_and_its_trial_reports_the_sweeps_score() {
    let data = sample_data_dir().canonicalize().unwrap();
    let data = data.to_str().unwrap();
    let out = jukebox(&[
        "refine",
        "--katib",
        "--grid",
        "quick",
        "--image",
        "quay.io/example/jukebox-workbench:1",
        "--namespace",
        "user1-jukebox",
        "--trial-data-dir",
        data,
    ]);
    let verdict = check(&out.stdout);
    assert_eq!(verdict[0], "ok Experiment jukebox-quick: 8 trials of 8 combinations", "{verdict:?}");
    // Every broken variant was refused, each for its own reason.
    let refused: Vec<&String> = verdict.iter().filter(|l| l.starts_with("refused ")).collect();
    assert_eq!(refused.len(), 5, "{verdict:?}");
    assert!(refused.iter().any(|l| l.contains("maxTrialCount as a string") && l.contains("valid integer")));
    assert!(refused.iter().any(|l| l.contains("parallelTrialCounts is not a field")));

    // The trial Katib would start for the first value of every parameter, run as Katib's stdout
    // collector runs it: the command's words joined by spaces under `sh -c`, output to a file.
    let trial: Vec<String> =
        serde_json::from_str(verdict.last().unwrap().strip_prefix("trial ").expect("a trial line")).unwrap();
    assert_eq!(trial[..2], ["jukebox", "train"]);
    assert!(trial.contains(&"--hidden-layers=32,64,128,256".to_string()), "{trial:?}");
    let folder = tempfile::tempdir().unwrap();
    let log = folder.path().join("metrics.log");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_jukebox")).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("{} 1>{} 2>&1", trial.join(" "), log.display()))
        .env("PATH", path)
        .current_dir(folder.path())
        .status()
        .unwrap();
    let output = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "the trial failed:\n{output}");
    let parsed =
        Command::new(python()).arg(checker()).arg("metrics").arg(&log).arg("validation-accuracy").output().unwrap();
    let parsed = String::from_utf8_lossy(&parsed.stdout);
    let metrics: Vec<&str> = parsed.lines().collect();
    assert_eq!(metrics.len(), 1, "one metric line in the trial's output, found {metrics:?} in:\n{output}");
    let accuracy: f64 = metrics[0].strip_prefix("validation-accuracy=").unwrap().parse().unwrap();
    assert!((0.0..=1.0).contains(&accuracy));

    // The same setting in the local sweep scores the same: the trial is the sweep's run (with the
    // quick grid's early stopping and row budget, which the trial's command carries).
    let flag = |name: &str| trial.iter().find_map(|w| w.strip_prefix(&format!("--{name}="))).expect(name).to_string();
    let setting = format!(
        r#"{{"epochs": [10], "hidden_layers": [[32, 64, 128, 256]], "learning_rate": [0.001], "batch_size": [64],
            "patience": {}, "max_train_rows": {}}}"#,
        flag("patience"),
        flag("max-train-rows")
    );
    let sweep = jukebox(&["refine", "--data-dir", data, "--no-comparison", "--grid", &setting]);
    let sweep = String::from_utf8_lossy(&sweep.stdout);
    let line = sweep.lines().find(|l| l.starts_with("run 1/1:")).expect("the sweep's run line");
    let local: f64 =
        line.split("validation accuracy ").nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap();
    assert!((local - accuracy).abs() < 5e-5, "sweep {local} vs trial {accuracy}\n{line}");
}

#[test]
fn katib_options_need_katib_and_a_bad_name_is_named() {
    let out = Command::new(env!("CARGO_BIN_EXE_jukebox")).args(["refine", "--image", "x"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--katib"));
    let out = Command::new(env!("CARGO_BIN_EXE_jukebox"))
        .args(["refine", "--katib", "--experiment-name", "Jukebox_Quick"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Jukebox_Quick"));
}
