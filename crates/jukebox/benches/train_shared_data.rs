//! Training throughput of the workshop network on the shared sample and on a ~1.1M-row input
//! (the sample repeated, about the size of the upstream `song_rankings.parquet`), beside the
//! Keras reference, with the process's peak memory.
//!
//! Run: `cargo bench --release -p jukebox --bench train_shared_data` (set `JUKEBOX_TEST_DATA`
//! if the shared data is not at `../shared/data`). `BENCH_EPOCHS` (default 30) sets the epochs
//! on the sample; the large input always trains one epoch. Keras is not run here (tensorflow is
//! not in the workspace venv); its figures measured on this kind of machine are printed beside.

use std::time::Instant;

use jukebox::data::{ChartData, Dataset, PROPERTIES_FILE, RANKINGS_FILE};
use jukebox::prepare::{PreparedData, SplitOptions};
use jukebox::train::{Classifier, Learner, NeuralNetwork, Progress};
use jukebox_testkit::sample_data_dir as sample_dir;
use polars::prelude::*;

/// Keras/TF-CPU 2.21 on this kind of machine, shared sample, batch 32, 30 epochs
/// (../shared/TOOLCHAIN.md).
const KERAS_SAMPLES_PER_SECOND: f64 = 9_300.0;
const KERAS_ACCURACY_30_EPOCHS: f64 = 0.342;

/// Peak resident memory of this process so far, in MiB (Linux `VmHWM`).
fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn keras_available() -> bool {
    std::process::Command::new(jukebox_testkit::python_path())
        .args(["-c", "import tensorflow"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Trains and reports samples/s and test accuracy.
fn run(label: &str, data: &PreparedData, epochs: usize) -> f64 {
    let learner = NeuralNetwork { epochs, batch_size: 32, seed: 42, progress: Progress::Silent, ..Default::default() };
    let started = Instant::now();
    let model = learner.fit(data).expect("training");
    let wall = started.elapsed().as_secs_f64();
    let accuracy = model.test_report(data).expect("scoring").accuracy();
    let rate = model.history.samples_per_second;
    println!(
        "{label}: {} train rows x {epochs} epochs in {wall:.1} s: {rate:.0} samples/s ({:.1}x Keras's {KERAS_SAMPLES_PER_SECOND:.0}), test accuracy {accuracy:.3}, {}",
        data.n_train(),
        rate / KERAS_SAMPLES_PER_SECOND,
        model.name()
    );
    rate
}

fn main() {
    let epochs: usize = std::env::var("BENCH_EPOCHS").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
    let dir = sample_dir();
    // The shared folder names the rankings `song_rankings_sample.parquet`.
    let rankings = [RANKINGS_FILE, "song_rankings_sample.parquet"]
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file())
        .expect("no rankings file");
    let dataset = Dataset::from_files(&dir.join(PROPERTIES_FILE), &rankings).expect("loading the sample");
    let chart = dataset.merge().expect("merging");

    let started = Instant::now();
    let data = PreparedData::new(&chart, &SplitOptions::default()).expect("preparing");
    println!("shared sample: {} rows prepared in {:.3} s", chart.rows(), started.elapsed().as_secs_f64());
    let rate = run("shared sample", &data, epochs);
    println!(
        "  Keras reference at 30 epochs: accuracy {KERAS_ACCURACY_30_EPOCHS}, {KERAS_SAMPLES_PER_SECOND:.0} samples/s; goal >= 5x: {}",
        if rate >= 5.0 * KERAS_SAMPLES_PER_SECOND { "met" } else { "NOT met" }
    );
    if keras_available() {
        println!(
            "  tensorflow is importable, but this bench does not run Keras itself: compare with the reference above"
        );
    } else {
        println!("  tensorflow is not installed in the venv: Keras figures above are the recorded reference");
    }
    println!("  peak memory so far: {:.0} MiB", peak_memory_mib().unwrap_or(f64::NAN));

    // ~1.1M rows: the merged sample repeated 56 times (19,699 x 56 = 1,103,144).
    let repeats = 56;
    let started = Instant::now();
    let frames: Vec<LazyFrame> = (0..repeats).map(|_| chart.frame.clone().lazy()).collect();
    let big = concat(frames, UnionArgs::default()).and_then(|lf| lf.collect()).expect("repeating the sample");
    let big = ChartData { frame: big, countries: chart.countries.clone() };
    let big_data = PreparedData::new(&big, &SplitOptions::default()).expect("preparing the large input");
    println!("large input: {} rows built and prepared in {:.2} s", big.rows(), started.elapsed().as_secs_f64());
    run("large input", &big_data, 1);
    println!("peak memory: {:.0} MiB", peak_memory_mib().unwrap_or(f64::NAN));
}
