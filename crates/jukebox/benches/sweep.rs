//! A sweep on every core beside one core, on the full-size data: the same grid, data and seed
//! run with one worker and with one worker per core, printed side by side (wall time, the chosen
//! run, whether the two tables agree), plus the random-vs-grouped comparison both ways.
//!
//! Run: `cargo bench --workspace --bench sweep` (after `source kernel/env.sh`). The data is
//! `JUKEBOX_BENCH_DATA` if set, else the full-size stand-in `kernel/make-full-size` builds (the
//! shared sample copied 55 times: 1,099,945 chart entries) in its temporary folder.
//!
//! `BENCH_GRID` (default `quick`) names the grid; `BENCH_SWEEP` chooses what runs:
//! - `scaling` (default): the grid with 1 worker, then with every core; the comparison likewise.
//! - `parallel`: the grid with every core only (e.g. `BENCH_GRID=class` for the class grid's time).
//! - `budget`: the grid on every core as named, then without its row budget (every training
//!   row): whether the budget changes the grid's answer (the chosen run).

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use jukebox::data::ChartData;
use jukebox::prepare::{PreparedData, SplitOptions, SplitStrategy};
use jukebox::refine::{Grid, SplitComparison, Sweep};
use jukebox::train::NeuralNetwork;
use jukebox_testkit::status_mib;

fn data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("JUKEBOX_BENCH_DATA") {
        return PathBuf::from(dir);
    }
    let script = jukebox_testkit::workspace_root().join("kernel/make-full-size");
    let out = Command::new(&script).output().unwrap_or_else(|e| panic!("{}: {e}", script.display()));
    assert!(out.status.success(), "{}: {}", script.display(), String::from_utf8_lossy(&out.stderr));
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// The run table without the seconds column (what must not differ between worker counts).
fn scores(sweep: &Sweep) -> Vec<Vec<String>> {
    let table = sweep.table();
    let seconds = table.columns.iter().position(|c| c == "seconds").expect("a seconds column");
    table
        .rows
        .into_iter()
        .map(|mut row| {
            row.remove(seconds);
            row.into_iter().map(|cell| cell.to_string()).collect()
        })
        .collect()
}

/// CPU seconds this process has used (user and system, all threads), from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command's closing parenthesis; utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// Runs `f`, printing its wall time and the cores it kept busy on average (CPU seconds over wall
/// seconds): on a machine where other work runs, fewer than the workers asked for.
fn timed<T>(what: &str, f: impl FnOnce() -> T) -> (T, f64) {
    let (started, cpu) = (Instant::now(), cpu_seconds());
    let value = f();
    let seconds = started.elapsed().as_secs_f64();
    let busy = (cpu_seconds() - cpu) / seconds;
    println!("[bench] {what}: {seconds:.1} s, {busy:.2} cores busy on average");
    (value, seconds)
}

fn main() {
    let mode = std::env::var("BENCH_SWEEP").unwrap_or_else(|_| "scaling".into());
    let grid_name = std::env::var("BENCH_GRID").unwrap_or_else(|_| "quick".into());
    let grid: Grid = grid_name.parse().expect("BENCH_GRID names a grid");
    let cores = jukebox::refine::workers();
    let dir = data_dir();
    let (charts, load) = timed("load", || ChartData::load_from(dir.to_str().expect("a UTF-8 path")).expect("loading"));
    println!("after load: {:.0} MiB (peak {:.0})", status_mib("VmRSS"), status_mib("VmHWM"));
    let prepare = |strategy| {
        let options = SplitOptions { strategy, ..SplitOptions::with_seed(42) };
        PreparedData::new(&charts, &jukebox::data::FEATURES, &options).expect("preparing")
    };
    let (grouped, _) = timed("prepare grouped", || prepare(SplitStrategy::Grouped));
    println!(
        "data: {} ({} rows, loaded in {load:.1} s); grouped split: {} training rows; grid `{grid_name}`: {} runs; {cores} cores",
        dir.display(),
        charts.rows(),
        grouped.n_train(),
        grid.len()
    );

    match mode.as_str() {
        "scaling" => {
            let (one, one_s) = timed("sweep, 1 worker", || grid.sweep_on(&grouped, 42, 1).expect("sweep"));
            let (all, all_s) =
                timed(&format!("sweep, {cores} workers"), || grid.sweep_on(&grouped, 42, cores).expect("sweep"));
            let (stratified, _) = timed("prepare stratified", || prepare(SplitStrategy::Stratified));
            let network = NeuralNetwork { epochs: 10, seed: 42, ..NeuralNetwork::default() }
                .with_patience(3)
                .with_max_train_rows(100_000);
            let (c1, c1_s) = timed("comparison, 1 worker", || {
                SplitComparison::new_on(&network, &stratified, &grouped, 1).expect("comparison")
            });
            let (c2, c2_s) = timed(&format!("comparison, {cores} workers"), || {
                SplitComparison::new_on(&network, &stratified, &grouped, cores).expect("comparison")
            });
            let same_comparison = c1.table().rows == c2.table().rows;
            println!("\n| | 1 worker | {cores} workers | ratio |\n|---|---|---|---|");
            println!(
                "| sweep `{grid_name}` ({} runs) | {one_s:.1} s | {all_s:.1} s | {:.2} |",
                grid.len(),
                all_s / one_s
            );
            println!("| random-vs-grouped comparison | {c1_s:.1} s | {c2_s:.1} s | {:.2} |", c2_s / c1_s);
            println!(
                "\nchosen run: {} ({}) with 1 worker, {} ({}) with {cores}; run tables equal (seconds aside): {}; \
                 comparison tables equal: {same_comparison}",
                one.best().number,
                one.best().settings(),
                all.best().number,
                all.best().settings(),
                scores(&one) == scores(&all)
            );
            println!(
                "expected before it started: {:.0} s (1 worker), {:.0} s ({cores})",
                one.expected_seconds, all.expected_seconds
            );
            assert_eq!(scores(&one), scores(&all), "the parallel sweep's table differs from the sequential one");
        }
        "parallel" => {
            let (sweep, seconds) =
                timed(&format!("sweep, {cores} workers"), || grid.sweep_on(&grouped, 42, cores).expect("sweep"));
            println!("{}", sweep.table());
            println!(
                "grid `{grid_name}`: {} runs in {seconds:.0} s on {cores} workers (expected at most {:.0} s); chosen run {} ({})",
                sweep.runs.len(),
                sweep.expected_seconds,
                sweep.best().number,
                sweep.best().settings()
            );
        }
        "budget" => {
            let (budget, budget_s) =
                timed("sweep with the grid's row budget", || grid.sweep_on(&grouped, 42, cores).expect("sweep"));
            let every_row = Grid { max_train_rows: None, ..grid.clone() };
            let (all, all_s) =
                timed("sweep on every training row", || every_row.sweep_on(&grouped, 42, cores).expect("sweep"));
            println!("{}\n{}", budget.table(), all.table());
            println!("\n| | training rows per run | wall time | chosen run | its val accuracy | its test accuracy |");
            println!("|---|---|---|---|---|---|");
            for (name, sweep, seconds) in [("row budget", &budget, budget_s), ("every row", &all, all_s)] {
                let best = sweep.best();
                println!(
                    "| {name} | {} | {seconds:.0} s | {} ({}) | {:.4} | {:.4} |",
                    sweep.train_rows,
                    best.number,
                    best.settings(),
                    best.validation.accuracy(),
                    best.test.accuracy()
                );
            }
            println!("same chosen run: {}", budget.best().number == all.best().number);
        }
        "memory" => {
            // Resident memory after each step of notebook 5 (what the kernel's cell process holds).
            let rss = || status_mib("VmRSS");
            println!("after load and grouped split: {:.0} MiB (peak {:.0})", rss(), status_mib("VmHWM"));
            let stratified = prepare(SplitStrategy::Stratified);
            println!("after the stratified split too: {:.0} MiB (peak {:.0})", rss(), status_mib("VmHWM"));
            let sweep = grid.sweep_on(&grouped, 42, cores).expect("sweep");
            println!("after the sweep: {:.0} MiB (peak {:.0})", rss(), status_mib("VmHWM"));
            drop((stratified, sweep));
        }
        other => panic!("BENCH_SWEEP={other}: expected scaling, parallel, budget or memory"),
    }
    println!("peak memory of the bench process: {:.0} MiB", status_mib("VmHWM"));
}
