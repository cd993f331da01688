//! Training throughput of the workshop network on the shared sample and on a ~1.1M-row input
//! (the sample repeated, about the size of the upstream `song_rankings.parquet`), beside Keras,
//! with the process's peak memory.
//!
//! Run: `cargo bench --workspace --bench train_shared_data` (after `source kernel/env.sh`; set
//! `JUKEBOX_TEST_DATA` if the shared data is not at `../shared/data`). `BENCH_EPOCHS` (default
//! 30) sets the epochs on the sample; the large input always trains one epoch.
//!
//! Keras runs in the same run on the same split (`train_keras.py` beside this file, the upstream
//! recipe) when a Python with tensorflow is found: `JUKEBOX_KERAS_PYTHON`, else `.venv-keras`
//! in the workspace (`python3 -m venv .venv-keras && .venv-keras/bin/pip install tensorflow-cpu`;
//! 1.8 GB, so not part of the test venv). Without it, the figures recorded on this kind of
//! machine are printed instead, and said to be.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use jukebox::data::{ChartData, Dataset};
use jukebox::prepare::{PreparedData, SplitOptions};
use jukebox::train::{Classifier, Learner, NeuralNetwork, Progress};
use jukebox_testkit::{sample_data_dir as sample_dir, status_mib};
use polars::prelude::*;

/// Keras/TF-CPU 2.21 on this kind of machine, shared sample, batch 32, 30 epochs
/// (../shared/TOOLCHAIN.md).
const KERAS_SAMPLES_PER_SECOND: f64 = 9_300.0;
const KERAS_ACCURACY_30_EPOCHS: f64 = 0.342;

#[path = "common/split_files.rs"]
mod split_files;

/// A Python that imports tensorflow, if there is one.
fn keras_python() -> Option<PathBuf> {
    let python = std::env::var_os("JUKEBOX_KERAS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| jukebox_testkit::workspace_root().join(".venv-keras/bin/python"));
    let works = Command::new(&python).args(["-c", "import tensorflow"]).output().is_ok_and(|o| o.status.success());
    works.then_some(python)
}

/// Keras' figures on `data`'s split: (training samples/s, test accuracy, fit seconds, version).
fn keras_on(python: &std::path::Path, data: &PreparedData, epochs: usize) -> Result<(f64, f64, f64, String), String> {
    let folder = tempfile::tempdir().map_err(|e| e.to_string())?;
    split_files::write_split(folder.path(), data, serde_json::json!({}));
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/train_keras.py");
    let out = Command::new(python)
        .arg(&script)
        .arg(folder.path())
        .arg(epochs.to_string())
        .output()
        .map_err(|e| format!("{}: {e}", python.display()))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(line).map_err(|e| format!("{line}: {e}"))?;
    let number = |key: &str| v[key].as_f64().ok_or_else(|| format!("no {key} in {line}"));
    Ok((number("samples_per_second")?, number("accuracy")?, number("fit_seconds")?, v["keras"].to_string()))
}

/// Trains and reports samples/s and test accuracy; returns (samples/s, test accuracy).
fn run(label: &str, data: &PreparedData, epochs: usize) -> (f64, f64) {
    let learner = NeuralNetwork { epochs, batch_size: 32, seed: 42, progress: Progress::Silent, ..Default::default() };
    let started = Instant::now();
    let model = learner.fit(data).expect("training");
    let wall = started.elapsed().as_secs_f64();
    let accuracy = model.test_report(data).expect("scoring").accuracy();
    let rate = model.history.samples_per_second;
    println!(
        "{label}: {} train rows x {epochs} epochs in {wall:.1} s: {rate:.0} samples/s, test accuracy {accuracy:.3}, {}",
        data.n_train(),
        model.name()
    );
    (rate, accuracy)
}

fn main() {
    let epochs: usize = std::env::var("BENCH_EPOCHS").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
    let chart = Dataset::from_dir(&sample_dir()).expect("loading the sample").merge().expect("merging");

    let started = Instant::now();
    let data = PreparedData::new(&chart, &jukebox::data::FEATURES, &SplitOptions::default()).expect("preparing");
    println!("shared sample: {} rows prepared in {:.3} s", chart.rows(), started.elapsed().as_secs_f64());
    let (rate, accuracy) = run("shared sample", &data, epochs);
    let (keras_rate, keras_accuracy, source) = match keras_python().map(|python| keras_on(&python, &data, epochs)) {
        Some(Ok((keras_rate, keras_accuracy, fit_seconds, version))) => {
            println!(
                "Keras {version} (same split, same run): {} train rows x {epochs} epochs in {fit_seconds:.1} s: {keras_rate:.0} samples/s, test accuracy {keras_accuracy:.3}",
                data.n_train()
            );
            (keras_rate, keras_accuracy, "measured in this run")
        }
        other => {
            if let Some(Err(e)) = other {
                println!("  Keras failed: {e}");
            }
            println!(
                "  no Python with tensorflow (JUKEBOX_KERAS_PYTHON or .venv-keras): Keras figures are the recorded reference (30 epochs)"
            );
            (KERAS_SAMPLES_PER_SECOND, KERAS_ACCURACY_30_EPOCHS, "recorded reference")
        }
    };
    println!(
        "  ours vs Keras ({source}): {:.1}x the samples/s, test accuracy {accuracy:.3} vs {keras_accuracy:.3}; goal >= 15x at equal accuracy: {}",
        rate / keras_rate,
        if rate >= 15.0 * keras_rate && accuracy >= keras_accuracy - 0.01 { "met" } else { "NOT met" }
    );
    println!("  peak memory so far: {:.0} MiB", status_mib("VmHWM"));

    // ~1.1M rows: the merged sample repeated 56 times (19,699 x 56 = 1,103,144).
    let repeats = 56;
    let started = Instant::now();
    let frames: Vec<LazyFrame> = (0..repeats).map(|_| chart.frame.clone().lazy()).collect();
    let big = concat(frames, UnionArgs::default()).and_then(|lf| lf.collect()).expect("repeating the sample");
    let big = ChartData { frame: big, countries: chart.countries.clone() };
    let big_data =
        PreparedData::new(&big, &jukebox::data::FEATURES, &SplitOptions::default()).expect("preparing the large input");
    println!("large input: {} rows built and prepared in {:.2} s", big.rows(), started.elapsed().as_secs_f64());
    run("large input", &big_data, 1);
    println!("peak memory: {:.0} MiB", status_mib("VmHWM"));
}
