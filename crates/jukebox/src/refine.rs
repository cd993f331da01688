//! Stage 5: refine the model. Try several settings, pick one honestly, and keep a record.
//!
//! A first model is rarely the best one. Refining means going round the loop again: change
//! how the network is built and trained, train again, compare. Done carelessly, it fools you
//! twice, and this module guards against both:
//!
//! 1. **Memorisation.** A song stays in a chart for many days, so the shared sample's 19,699
//!    rows hold only about 4,300 (song, country) pairs. A random split puts rows of the same
//!    song in train and test, and a model that *remembers* songs scores well without having
//!    learned anything about countries. [`SongOverlap`] counts how many test songs the model
//!    already saw in training, and [`SplitComparison`] scores the same learners on a random
//!    split and on a **grouped** split ([`SplitStrategy::Grouped`]: whole songs per split) side
//!    by side. The gap is what memory was worth.
//! 2. **Choosing by the test score.** Trying many settings and keeping the one with the best
//!    *test* score makes the test rows part of training: the score is then optimistic. A
//!    [`Sweep`] trains one run per setting of a [`Grid`] and picks by the **validation** score
//!    only ([`Sweep::SELECTION_RULE`]); the test score of the chosen run is reported once,
//!    afterwards.
//!
//! Every run is kept: [`Sweep::records`] gives one [`RunRecord`] per run (parameters, scores,
//! time), and [`RunLog`] appends them to `runs.jsonl` beside the model repository, so runs of
//! different days compare in one table. The chosen run is exported as the next version folder
//! and registered with its parameters and scores (see `notebooks/5-refine_model.ipynb`).
//!
//! Runs are seeded: the same grid, data and seed give the same scores (not the same seconds).
//!
//! **Every core.** The runs of a sweep are independent, so they train side by side, one per
//! core ([`workers`]; `JUKEBOX_SWEEP_WORKERS=1` trains them one after another). Each run is
//! single-threaded (the network's matrix products run on the calling thread) and seeded, and
//! the runs share nothing they write, so the table is the same whatever the number of workers
//! and whichever run finishes first: runs are numbered in grid order and listed in that order.
//! They share what they read: one prepared split, and one draw of the training rows.
//! [`SplitComparison`] likewise fits each learner on its two splits at once.
//!
//! **Budgets.** A grid can stop each run early (`patience`: epochs without a lower validation
//! loss, the best epoch's weights kept) and give it a row budget (`max_train_rows`: a stratified
//! subsample of the training rows, the same for every run; see [`crate::train::rows`]). Before the
//! first run starts, the sweep measures how fast each network of the grid trains here and prints
//! the time the whole grid takes at most (no run stopping early), so a participant knows whether
//! to wait or to pick a smaller grid.
//!
//! An interrupt (Ctrl-C, a notebook's stop button) keeps what finished: a sweep stops after the
//! run in progress is dropped and returns the finished runs, its table saying "stopped after 3 of
//! 8 runs" ([`Sweep::is_complete`]); [`SplitComparison`] likewise keeps the models it finished.
//! So `let sweep: Sweep = grid.sweep(&data, seed)?;` in a notebook holds the finished runs, and
//! only an interrupt before the first run finished is an error ([`RefineError::Interrupted`]).
//!
//! [`SplitStrategy::Grouped`]: crate::prepare::SplitStrategy::Grouped

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

use jukebox_nn::EpochProgress;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::display::{Cell, LiveDisplay, Plot, PlotError, Table, ToHtml};
use crate::evaluate::{ClassificationReport, EvaluateError, Metrics};
use crate::prepare::{PrepareError, PreparedData, SONG};
use crate::train::{
    Classifier, DecisionTree, InterruptWatch, Learner, LogisticRegression, NeuralNetwork, Progress, TrainError,
    TrainedModel, TrainingRows,
};

/// Why refining failed. Variants name the grid field, file and line at fault.
#[derive(Debug, thiserror::Error)]
pub enum RefineError {
    #[error("invalid grid: {0}. A grid is `quick`, `class` or JSON such as {QUICK_GRID}")]
    Grid(String),
    #[error(transparent)]
    Prepare(#[from] PrepareError),
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error(transparent)]
    Evaluate(#[from] EvaluateError),
    #[error(transparent)]
    Plot(#[from] PlotError),
    #[error("the data has no `{SONG}` column: {0}")]
    Songs(PolarsError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}, line {line}: {source}")]
    Json { path: PathBuf, line: usize, source: serde_json::Error },
    /// Interrupted before anything finished, so there is nothing to keep.
    #[error(
        "{what} was interrupted before its first of {planned} fits finished: nothing to keep (run the cell again)"
    )]
    Interrupted { what: &'static str, planned: usize },
}

pub type Result<T, E = RefineError> = std::result::Result<T, E>;

/// The grid `quick` names: 8 runs, seconds on the sample and about a minute on the full data
/// on 2 cores (CI, a first try).
pub const QUICK_GRID: &str = r#"{"epochs": [10, 25], "hidden_layers": [[32, 64, 128, 256], [128, 128]], "learning_rate": [0.001, 0.003], "batch_size": [64], "patience": 3, "max_train_rows": 100000}"#;

/// The grid `class` names: 54 runs, a few minutes on a laptop (in class, during the break).
pub const CLASS_GRID: &str = r#"{"epochs": [10, 30, 60], "hidden_layers": [[32, 64, 128, 256], [128, 128], [256, 256, 256]], "learning_rate": [0.0003, 0.001, 0.003], "batch_size": [32, 128], "patience": 3, "max_train_rows": 100000}"#;

/// Environment variable that sets how many runs of a sweep train at once ([`workers`]).
pub const WORKERS_ENV: &str = "JUKEBOX_SWEEP_WORKERS";

/// How many runs train at once: `JUKEBOX_SWEEP_WORKERS` if set to a positive number, else one per
/// core.
pub fn workers() -> usize {
    std::env::var(WORKERS_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The settings a sweep tries: every combination of the listed values. Written as data (JSON),
/// so a grid can come from a notebook parameter or a file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grid {
    pub epochs: Vec<usize>,
    /// Each entry is one network: the widths of its hidden layers.
    pub hidden_layers: Vec<Vec<usize>>,
    pub learning_rate: Vec<f32>,
    pub batch_size: Vec<usize>,
    /// Early stopping for every run: stop once the validation loss has not improved for this
    /// many epochs, and keep the best epoch. Absent: every run trains all its epochs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patience: Option<usize>,
    /// A row budget for every run: train on at most this many rows, one stratified subsample of
    /// the training rows shared by all runs. Absent: every training row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_train_rows: Option<usize>,
}

impl std::str::FromStr for Grid {
    type Err = RefineError;

    /// `quick`, `class`, or a JSON object with the four lists.
    fn from_str(text: &str) -> Result<Grid> {
        let json = match text.trim() {
            "quick" => QUICK_GRID,
            "class" => CLASS_GRID,
            other => other,
        };
        let grid: Grid = serde_json::from_str(json).map_err(|e| RefineError::Grid(e.to_string()))?;
        grid.check()?;
        Ok(grid)
    }
}

impl Grid {
    fn check(&self) -> Result<()> {
        let empty = [
            ("epochs", self.epochs.is_empty()),
            ("hidden_layers", self.hidden_layers.is_empty()),
            ("learning_rate", self.learning_rate.is_empty()),
            ("batch_size", self.batch_size.is_empty()),
        ];
        if let Some((field, _)) = empty.iter().find(|(_, empty)| *empty) {
            return Err(RefineError::Grid(format!("`{field}` lists no value")));
        }
        if self.epochs.contains(&0) || self.batch_size.contains(&0) {
            return Err(RefineError::Grid("`epochs` and `batch_size` must be at least 1".into()));
        }
        if self.hidden_layers.iter().any(|layers| layers.contains(&0)) {
            return Err(RefineError::Grid("a layer in `hidden_layers` has 0 units".into()));
        }
        if let Some(rate) = self.learning_rate.iter().find(|r| !(r.is_finite() && **r > 0.0)) {
            return Err(RefineError::Grid(format!("learning rate {rate} is not a positive number")));
        }
        if self.max_train_rows == Some(0) {
            return Err(RefineError::Grid("`max_train_rows` must be at least 1 (leave it out for every row)".into()));
        }
        Ok(())
    }

    /// Number of runs: the product of the list lengths.
    pub fn len(&self) -> usize {
        self.epochs.len() * self.hidden_layers.len() * self.learning_rate.len() * self.batch_size.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One learner per combination, all seeded with `seed` (so runs differ only by settings).
    pub fn learners(&self, seed: u64) -> Vec<NeuralNetwork> {
        let mut learners = Vec::with_capacity(self.len());
        for hidden_layers in &self.hidden_layers {
            for &learning_rate in &self.learning_rate {
                for &batch_size in &self.batch_size {
                    for &epochs in &self.epochs {
                        learners.push(NeuralNetwork {
                            epochs,
                            batch_size,
                            seed,
                            hidden_layers: hidden_layers.clone(),
                            learning_rate,
                            progress: Progress::Silent,
                            patience: self.patience,
                            max_train_rows: self.max_train_rows,
                            ..NeuralNetwork::default()
                        });
                    }
                }
            }
        }
        learners
    }

    /// Trains one run per setting on `data` (train rows), scoring each on the validation and
    /// test rows, [`workers`] runs at a time. Prints the expected time first, then shows the runs
    /// in flight and one line per run as it finishes.
    ///
    /// An interrupt stops the sweep and returns the runs finished so far (the runs in progress
    /// are dropped): [`Sweep::is_complete`] is then false and the table says where it stopped.
    pub fn sweep(&self, data: &PreparedData, seed: u64) -> Result<Sweep> {
        self.sweep_on(data, seed, workers())
    }

    /// [`Grid::sweep`] with `workers` runs at a time (1: one after another). The table is the
    /// same for any number of workers.
    pub fn sweep_on(&self, data: &PreparedData, seed: u64, workers: usize) -> Result<Sweep> {
        // Held across the runs, so that an interrupt while a run is scored (between two fits)
        // stops the sweep as well instead of ending the process.
        let interrupt = InterruptWatch::start();
        self.sweep_until(data, seed, workers, |_| interrupt.requested())
    }

    /// [`Grid::sweep_on`], starting no further run once `stop(runs started so far)` says so
    /// (an interrupt; tests stop after a given number of runs). Once it said so, it stays so.
    fn sweep_until(
        &self,
        data: &PreparedData,
        seed: u64,
        workers: usize,
        stop: impl Fn(usize) -> bool + Sync,
    ) -> Result<Sweep> {
        self.check()?;
        let learners = self.learners(seed);
        let planned = learners.len();
        let workers = workers.clamp(1, planned);
        // One draw of the training rows for every run (they share seed and budget).
        let rows = TrainingRows::new(data, self.max_train_rows, seed);
        let plan = SweepPlan::measure(&learners, data, &rows, workers);
        let mut display = SweepDisplay::new(planned, plan.describe(self, &rows));
        let started = std::time::Instant::now();

        let next = AtomicUsize::new(0);
        let stopping = AtomicBool::new(false);
        let (events, received) = mpsc::channel::<SweepEvent>();
        let mut runs: Vec<Run> = Vec::with_capacity(planned);
        let mut failures: Vec<(usize, RefineError)> = Vec::new();
        std::thread::scope(|scope| {
            for _ in 0..workers {
                let events = events.clone();
                let (learners, rows, next, stopping, stop) = (&learners, &rows, &next, &stopping, &stop);
                scope.spawn(move || loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= planned || stopping.load(Ordering::SeqCst) || stop(i) {
                        stopping.store(true, Ordering::SeqCst);
                        break;
                    }
                    let _ = events.send(SweepEvent::Started(i));
                    let mut observe = |p: &EpochProgress| {
                        let _ = events.send(SweepEvent::Progress(i, p.clone()));
                    };
                    let run = learners[i]
                        .fit_rows(data, rows, &mut observe)
                        .map_err(RefineError::from)
                        .and_then(|model| Run::score(i + 1, model, data));
                    match run {
                        Ok(run) => {
                            let _ = events.send(SweepEvent::Finished(Box::new(run)));
                        }
                        Err(error) => {
                            // Interrupted: the run is dropped and the sweep stops. Failed: the
                            // sweep stops and reports the error.
                            stopping.store(true, Ordering::SeqCst);
                            let _ = events.send(SweepEvent::Dropped(i, error));
                            break;
                        }
                    }
                });
            }
            drop(events);
            for event in received {
                match event {
                    SweepEvent::Started(i) => display.started(i, &learners[i]),
                    SweepEvent::Progress(i, p) => display.progress(i, &p),
                    SweepEvent::Finished(run) => {
                        display.finished(&run);
                        runs.push(*run);
                    }
                    SweepEvent::Dropped(i, RefineError::Train(TrainError::Interrupted { .. })) => display.dropped(i),
                    SweepEvent::Dropped(i, error) => {
                        display.dropped(i);
                        failures.push((i, error));
                    }
                }
            }
        });
        // The first failing run in grid order, whichever failed first in time.
        failures.sort_by_key(|(i, _)| *i);
        if let Some((_, error)) = failures.into_iter().next() {
            return Err(error);
        }
        if runs.is_empty() {
            return Err(RefineError::Interrupted { what: "the sweep", planned });
        }
        runs.sort_by_key(|run| run.number);
        let sweep = Sweep {
            runs,
            split: data.options.strategy.name().to_string(),
            seed,
            planned,
            workers,
            seconds: started.elapsed().as_secs_f64(),
            expected_seconds: plan.seconds,
            train_rows: rows.n_train(),
            of_train_rows: rows.of,
        };
        display.close(&sweep);
        Ok(sweep)
    }

    /// The grid as a table: one row per setting and the values tried.
    pub fn table(&self) -> Table {
        let list = |values: Vec<String>| Cell::Text(values.join(", "));
        let rows = vec![
            vec![Cell::from("epochs"), list(self.epochs.iter().map(usize::to_string).collect())],
            vec![
                Cell::from("hidden layers"),
                list(
                    self.hidden_layers
                        .iter()
                        .map(|l| l.iter().map(usize::to_string).collect::<Vec<_>>().join("-"))
                        .collect(),
                ),
            ],
            vec![Cell::from("learning rate"), list(self.learning_rate.iter().map(f32::to_string).collect())],
            vec![Cell::from("batch size"), list(self.batch_size.iter().map(usize::to_string).collect())],
        ]
        .into_iter()
        .chain(self.patience.map(|p| {
            vec![
                Cell::from("early stopping (every run)"),
                Cell::Text(format!("after {p} epochs without a lower validation loss; the best epoch is kept")),
            ]
        }))
        .chain(self.max_train_rows.map(|budget| {
            vec![
                Cell::from("training rows (every run)"),
                Cell::Text(format!("at most {}, a stratified subsample", thousands(budget as f64))),
            ]
        }))
        .collect();
        Table::new(vec!["setting".into(), "values tried".into()], rows)
            .with_caption(format!("grid: {} runs", self.len()))
    }
}

/// What a sweep's workers report to the thread that shows the progress and collects the runs.
enum SweepEvent {
    Started(usize),
    Progress(usize, EpochProgress),
    Finished(Box<Run>),
    /// Interrupted (dropped, the sweep stops) or failed (the sweep stops with the error).
    Dropped(usize, RefineError),
}

/// How long a grid takes at most, from the speed of its networks measured on this machine
/// before the first run starts.
struct SweepPlan {
    /// Wall time if every run trains all its epochs, `workers` at a time in grid order.
    seconds: f64,
    /// Slowest and fastest measured training speed (rows per second, one run on one core).
    speeds: (f64, f64),
    workers: usize,
    runs: usize,
}

impl SweepPlan {
    /// Seconds of measuring per distinct network (layers and batch size) of the grid.
    const MEASURE_SECONDS: f64 = 0.1;

    fn measure(learners: &[NeuralNetwork], data: &PreparedData, rows: &TrainingRows, workers: usize) -> SweepPlan {
        // Speed depends on the layers and the batch size, not on the learning rate or epochs.
        let mut speeds: BTreeMap<(Vec<usize>, usize), (f64, f64)> = BTreeMap::new();
        for learner in learners {
            speeds
                .entry((learner.hidden_layers.clone(), learner.batch_size))
                .or_insert_with(|| learner.measure_speed(data, rows, Self::MEASURE_SECONDS));
        }
        let (n_train, n_watched) = (rows.n_train() as f64, rows.y_val.len() as f64);
        let n_scored = (data.n_val() + data.n_test()) as f64;
        // Workers take the runs in grid order, each the next one when it is free.
        let mut free_at = vec![0.0f64; workers.max(1)];
        for learner in learners {
            let (train, score) = speeds[&(learner.hidden_layers.clone(), learner.batch_size)];
            let seconds = if train > 0.0 && score > 0.0 {
                learner.epochs as f64 * (n_train / train + n_watched / score) + n_scored / score
            } else {
                0.0
            };
            let earliest = free_at.iter_mut().min_by(|a, b| a.total_cmp(b)).expect("at least one worker");
            *earliest += seconds;
        }
        let trains = speeds.values().map(|(train, _)| *train);
        SweepPlan {
            seconds: free_at.iter().copied().fold(0.0, f64::max),
            speeds: (trains.clone().fold(f64::INFINITY, f64::min), trains.fold(0.0, f64::max)),
            workers: workers.max(1),
            runs: learners.len(),
        }
    }

    /// `expected: at most 1 min 10 s for 8 runs, 2 at a time (...)`.
    fn describe(&self, grid: &Grid, rows: &TrainingRows) -> String {
        let (slow, fast) = self.speeds;
        let speed = if (fast - slow) < 0.05 * fast {
            format!("{} rows/s", thousands(fast))
        } else {
            format!("{} to {} rows/s", thousands(slow), thousands(fast))
        };
        let rows = if rows.is_subsample() {
            format!(
                "{} of the {} training rows (a stratified subsample)",
                thousands(rows.n_train() as f64),
                thousands(rows.of as f64)
            )
        } else {
            format!("all {} training rows", thousands(rows.of as f64))
        };
        let stopping = match grid.patience {
            Some(p) => format!(", stopping after {p} epochs without a lower validation loss (so usually sooner)"),
            None => String::new(),
        };
        format!(
            "expected: at most {} for {} runs, {} at a time (training measured here at {speed} per run); \
             each run trains on {rows}{stopping}",
            duration(self.seconds),
            self.runs,
            self.workers
        )
    }
}

/// `704123` as `704,123`.
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `42 s`, `3 min 5 s`.
fn duration(seconds: f64) -> String {
    let whole = seconds.round() as u64;
    if whole < 60 {
        format!("{} s", seconds.ceil().max(1.0) as u64)
    } else {
        format!("{} min {} s", whole / 60, whole % 60)
    }
}

/// A sweep's progress: the expected time, a line per finished run, and the runs in flight. In
/// Jupyter (the kernel's relay) one output redrawn in place, left with the finished runs in grid
/// order; elsewhere lines, each run's as it finishes.
struct SweepDisplay {
    planned: usize,
    header: String,
    live: Option<LiveDisplay>,
    /// (run number, line) of the finished runs, in the order they finished.
    finished: Vec<(usize, String)>,
    /// Runs in flight: settings and the latest progress.
    in_flight: BTreeMap<usize, (String, Option<EpochProgress>)>,
}

impl SweepDisplay {
    fn new(planned: usize, header: String) -> SweepDisplay {
        let live = LiveDisplay::start();
        if live.is_none() {
            println!("{header}");
        }
        let mut display = SweepDisplay { planned, header, live, finished: Vec::new(), in_flight: BTreeMap::new() };
        display.draw(None);
        display
    }

    fn started(&mut self, i: usize, learner: &NeuralNetwork) {
        self.in_flight.insert(i + 1, (settings(learner), None));
        self.draw(None);
    }

    fn progress(&mut self, i: usize, p: &EpochProgress) {
        if let Some((_, latest)) = self.in_flight.get_mut(&(i + 1)) {
            // Keep the validation scores of the last finished epoch on the mid-epoch updates.
            let mut p = p.clone();
            if let (None, Some(previous)) = (p.val_accuracy, latest.as_ref()) {
                (p.val_loss, p.val_accuracy) = (previous.val_loss, previous.val_accuracy);
            }
            *latest = Some(p);
        }
        if self.live.as_ref().is_some_and(LiveDisplay::redraw_due) {
            self.draw(None);
        }
    }

    fn finished(&mut self, run: &Run) {
        self.in_flight.remove(&run.number);
        let stopped = if run.model.history.stopped_early {
            format!("stopped at epoch {}, kept epoch {}; ", run.epochs_run(), run.epoch_kept())
        } else if run.model.history.best_epoch.is_some() {
            format!("kept epoch {}; ", run.epoch_kept())
        } else {
            String::new()
        };
        let line = format!(
            "run {}/{}: {}, validation accuracy {:.4} ({stopped}{:.1} s)",
            run.number,
            self.planned,
            run.settings(),
            run.validation.accuracy(),
            run.model.training_seconds
        );
        if self.live.is_none() {
            println!("{line}");
        }
        self.finished.push((run.number, line));
        self.draw(None);
    }

    fn dropped(&mut self, i: usize) {
        self.in_flight.remove(&(i + 1));
        self.draw(None);
    }

    /// The last word: the finished runs in grid order and how long the sweep took.
    fn close(&mut self, sweep: &Sweep) {
        let mut summary = format!(
            "{} in {}, {} at a time (expected at most {})",
            sweep.status(),
            duration(sweep.seconds),
            sweep.workers,
            duration(sweep.expected_seconds)
        );
        if !sweep.is_complete() {
            summary = sweep.status();
        }
        if self.live.is_none() {
            println!("{summary}");
            return;
        }
        self.finished.sort_by_key(|(number, _)| *number);
        self.draw(Some(summary));
    }

    /// Redraws the live output (a no-op without one).
    fn draw(&mut self, closing: Option<String>) {
        let Some(live) = self.live.as_mut() else { return };
        let mut lines = vec![self.header.clone()];
        lines.extend(self.finished.iter().map(|(_, line)| line.clone()));
        lines.extend(closing);
        let done = lines.len();
        let mut bars = String::new();
        for (number, (settings, latest)) in &self.in_flight {
            let state = match latest {
                None => "starting".to_string(),
                Some(p) => {
                    let scores = match p.val_accuracy {
                        Some(accuracy) => format!(", val_accuracy {accuracy:.4}"),
                        None => String::new(),
                    };
                    format!("epoch {}/{}, batch {}/{}{scores}", p.epoch, p.epochs, p.batch, p.batches)
                }
            };
            let line = format!("run {number}/{}: {settings}: {state}", self.planned);
            let (value, max) =
                latest.as_ref().map_or((0, 1), |p| ((p.epoch - 1) * p.batches + p.batch, p.epochs * p.batches));
            bars.push_str(&format!(
                "<div style=\"display:flex;align-items:center;gap:8px\"><progress max=\"{max}\" value=\"{value}\" \
                 style=\"width:160px\"></progress><span>{}</span></div>",
                crate::display::escape(&line)
            ));
            lines.push(line);
        }
        let text = lines.join("\n");
        let html = format!(
            "<pre style=\"margin:0;font-size:12px;line-height:1.3\">{}</pre>{bars}",
            crate::display::escape(&lines[..done].join("\n"))
        );
        live.show(&text, &html);
    }
}

/// One trained setting of a sweep with its validation and test scores.
#[derive(Clone, Debug)]
pub struct Run {
    /// 1-based, in grid order.
    pub number: usize,
    pub model: TrainedModel,
    pub validation: ClassificationReport,
    /// Mean cross-entropy on every validation row (the tie-breaker of the selection rule).
    pub val_loss: f64,
    pub test: ClassificationReport,
}

impl Run {
    /// Scores a trained run on every validation and test row of `data`.
    fn score(number: usize, model: TrainedModel, data: &PreparedData) -> Result<Run> {
        let report = |y: &[u32], predicted: &[u32]| -> Result<ClassificationReport> {
            Ok(ClassificationReport::new(y, predicted, data.n_classes())?.with_class_names(data.encoder.classes())?)
        };
        let (predicted, val_loss) =
            model.network.predict_and_loss(&data.x_val, &data.y_val).map_err(TrainError::Network)?;
        let validation = report(&data.y_val, &predicted)?;
        let test = report(&data.y_test, &model.predict(&data.x_test, data.n_test()))?;
        Ok(Run { number, model, validation, val_loss: val_loss as f64, test })
    }

    pub fn learner(&self) -> &NeuralNetwork {
        &self.model.params
    }

    /// `32-64-128-256, lr 0.001, batch 64, 10 epochs`.
    pub fn settings(&self) -> String {
        settings(self.learner())
    }

    /// Validation loss of the network the run ended with, on every validation row (the
    /// tie-breaker of the selection rule); infinite when there are no validation rows.
    pub fn validation_loss(&self) -> f64 {
        if self.val_loss.is_nan() {
            f64::INFINITY
        } else {
            self.val_loss
        }
    }

    /// Epochs trained (fewer than asked when it stopped early).
    pub fn epochs_run(&self) -> usize {
        self.model.history.loss.len()
    }

    /// The epoch whose weights the run ended with: the best by validation loss with early
    /// stopping, else the last.
    pub fn epoch_kept(&self) -> usize {
        self.model.history.best_epoch.unwrap_or(self.epochs_run())
    }

    /// What `metrics.json` records for this run when it is exported: test scores, settings and
    /// the validation accuracy it was chosen by.
    pub fn metrics(&self, data: &PreparedData) -> Metrics {
        let mut info = self.model.training_info(data);
        info.val_accuracy = Some(self.validation.accuracy());
        Metrics::new(&self.test, &info)
    }
}

/// `32-64-128-256, lr 0.001, batch 64, 10 epochs`.
fn settings(l: &NeuralNetwork) -> String {
    format!("{}, lr {}, batch {}, {} epochs", l.hidden_layers_name(), l.learning_rate, l.batch_size, l.epochs)
}

/// The runs of a [`Grid`] on one split.
#[derive(Clone, Debug)]
pub struct Sweep {
    pub runs: Vec<Run>,
    /// The split the runs were trained and scored on (`grouped`, `stratified`, ...).
    pub split: String,
    pub seed: u64,
    /// Runs the grid asked for: more than `runs` when the sweep was interrupted.
    pub planned: usize,
    /// Runs that trained at once.
    pub workers: usize,
    /// Wall time of the whole sweep.
    pub seconds: f64,
    /// What the sweep expected before it started: the time if no run stopped early.
    pub expected_seconds: f64,
    /// Training rows each run trained on, of the split's `of_train_rows` (a row budget).
    pub train_rows: usize,
    pub of_train_rows: usize,
}

impl Sweep {
    /// How [`Sweep::best`] chooses, in words (shown in the notebook and the terminal).
    pub const SELECTION_RULE: &'static str =
        "the highest validation accuracy; a tie goes to the lower validation loss, \
        then to the earlier run. Test scores play no part in the choice.";

    /// Whether every run of the grid finished (false after an interrupt).
    pub fn is_complete(&self) -> bool {
        self.runs.len() >= self.planned
    }

    /// `8 runs`, or `stopped after 3 of 8 runs (interrupted)`.
    pub fn status(&self) -> String {
        if self.is_complete() {
            format!("{} runs", self.runs.len())
        } else {
            format!(
                "stopped after {} of {} runs (interrupted): the choice is the best of these {} only",
                self.runs.len(),
                self.planned,
                self.runs.len()
            )
        }
    }

    /// The run [`Sweep::SELECTION_RULE`] picks. Panics on an empty sweep (a grid is never empty).
    pub fn best(&self) -> &Run {
        self.runs
            .iter()
            .reduce(|best, run| {
                let better = run.validation.accuracy() > best.validation.accuracy()
                    || (run.validation.accuracy() == best.validation.accuracy()
                        && run.validation_loss() < best.validation_loss());
                if better {
                    run
                } else {
                    best
                }
            })
            .expect("a sweep has at least one run")
    }

    /// One row per run: settings, parameters, validation and test scores, seconds; the chosen
    /// run is marked.
    pub fn table(&self) -> Table {
        let best = self.best().number;
        let columns = [
            "run",
            "hidden layers",
            "learning rate",
            "batch size",
            "epochs",
            "epochs run",
            "epoch kept",
            "training rows",
            "parameters",
            "val accuracy",
            "val loss",
            "val f1 (macro)",
            "test accuracy",
            "test f1 (macro)",
            "seconds",
            "chosen",
        ];
        let rows = self
            .runs
            .iter()
            .map(|run| {
                let l = run.learner();
                vec![
                    Cell::Number(run.number as f64),
                    Cell::Text(l.hidden_layers_name()),
                    Cell::Number(l.learning_rate_f64()),
                    Cell::Number(l.batch_size as f64),
                    Cell::Number(l.epochs as f64),
                    Cell::Number(run.epochs_run() as f64),
                    Cell::Number(run.epoch_kept() as f64),
                    Cell::Number(run.model.train_rows as f64),
                    Cell::Number(run.model.network.parameter_count() as f64),
                    Cell::Number(run.validation.accuracy()),
                    Cell::Number(run.validation_loss()),
                    Cell::Number(run.validation.f1_macro()),
                    Cell::Number(run.test.accuracy()),
                    Cell::Number(run.test.f1_macro()),
                    Cell::Number(run.model.training_seconds),
                    Cell::Text(if run.number == best { "chosen".into() } else { String::new() }),
                ]
            })
            .collect();
        let what = if self.is_complete() {
            format!("sweep: {} runs on the {} split, seed {}", self.runs.len(), self.split, self.seed)
        } else {
            format!("sweep {} on the {} split, seed {}", self.status(), self.split, self.seed)
        };
        let training = if self.train_rows < self.of_train_rows {
            format!("{} of the {} training rows (a stratified subsample)", self.train_rows, self.of_train_rows)
        } else {
            format!("all {} training rows", self.of_train_rows)
        };
        let caption = format!("{what}; each run on {training}; {} at a time, {}", self.workers, duration(self.seconds));
        Table::new(columns.map(String::from).to_vec(), rows).with_caption(caption)
    }

    /// Validation accuracy per epoch, one line per run (whole epochs on the x axis); the chosen
    /// run is drawn thicker. The legend is to the right of the chart, one row per run.
    pub fn validation_plot(&self) -> Result<Plot> {
        use plotters::prelude::*;
        let best = self.best().number;
        let epochs = self.runs.iter().map(|r| r.model.history.val_accuracy.len()).max().unwrap_or(1).max(1) as i32;
        let values =
            self.runs.iter().flat_map(|r| r.model.history.val_accuracy.iter().copied()).filter(|v| v.is_finite());
        let (low, high) = values.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let (low, high) = if low.is_finite() { (low as f64, high as f64) } else { (0.0, 1.0) };
        let pad = ((high - low) * 0.1).max(1e-3);
        let entries: Vec<(String, RGBColor, u32)> = self
            .runs
            .iter()
            .map(|run| {
                let chosen = run.number == best;
                let label = format!("run {}: {}{}", run.number, run.settings(), if chosen { " (chosen)" } else { "" });
                (label, crate::display::series_colour(run.number - 1), if chosen { 4 } else { 2 })
            })
            .collect();
        // Room for `run 54: 256-256-256, lr 0.0003, batch 128, 60 epochs (chosen)` at 10 px.
        const LEGEND_WIDTH: u32 = 400;
        const LEGEND_FONT: u32 = 10;
        const LEGEND_ROW: u32 = LEGEND_FONT + 6;
        // Tall enough for one legend row per run (54 in the class grid).
        let height = 420.max(60 + LEGEND_ROW * entries.len() as u32);
        let caption = match self.is_complete() {
            true => format!("validation accuracy per epoch ({} split)", self.split),
            false => format!("validation accuracy per epoch ({} split, {})", self.split, self.status()),
        };
        Ok(Plot::draw(crate::display::MAX_PLOT_WIDTH, height, |root| -> Result<(), String> {
            let err = |e: &dyn std::fmt::Debug| format!("{e:?}");
            let (chart_area, legend) = root.split_horizontally(crate::display::MAX_PLOT_WIDTH - LEGEND_WIDTH);
            let chart_area = chart_area.shrink((0, 0), (crate::display::MAX_PLOT_WIDTH - LEGEND_WIDTH, 420));
            let mut chart = ChartBuilder::on(&chart_area)
                .caption(caption, ("sans-serif", 16))
                .margin(10)
                .x_label_area_size(35)
                .y_label_area_size(55)
                .build_cartesian_2d(0..epochs + 1, (low - pad)..(high + pad))
                .map_err(|e| err(&e))?;
            chart
                .configure_mesh()
                .x_desc("epoch")
                .y_desc("val accuracy")
                .x_labels((epochs + 2).min(12) as usize)
                .x_label_formatter(&|x| crate::train::epoch_label(*x, epochs))
                .draw()
                .map_err(|e| err(&e))?;
            // The chosen run last, so it is drawn over the others.
            let order =
                self.runs.iter().filter(|r| r.number != best).chain(self.runs.iter().filter(|r| r.number == best));
            for run in order {
                let (_, colour, width) = &entries[self.runs.iter().position(|r| r.number == run.number).unwrap_or(0)];
                let points = run.model.history.val_accuracy.iter().enumerate().map(|(i, &v)| (i as i32 + 1, v as f64));
                chart.draw_series(LineSeries::new(points, colour.stroke_width(*width))).map_err(|e| err(&e))?;
            }
            crate::display::draw_legend(&legend.margin(30, 0, 0, 0), &entries, LEGEND_FONT).map_err(|e| err(&e))
        })?)
    }

    /// One record per run, the chosen one marked, stamped with `recorded_at` (seconds since
    /// 1970) and a sweep id made of it, the split and the seed.
    pub fn records(&self) -> Vec<RunRecord> {
        let recorded_at =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let best = self.best().number;
        self.runs
            .iter()
            .map(|run| {
                let l = run.learner();
                RunRecord {
                    sweep: format!("{recorded_at}-{}-seed{}", self.split, self.seed),
                    recorded_at,
                    run: run.number,
                    split: self.split.clone(),
                    seed: self.seed,
                    epochs: l.epochs,
                    batch_size: l.batch_size,
                    learning_rate: l.learning_rate_f64(),
                    hidden_layers: l.hidden_layers_name(),
                    parameters: run.model.network.parameter_count(),
                    val_accuracy: run.validation.accuracy(),
                    val_loss: run.validation_loss(),
                    val_f1_macro: run.validation.f1_macro(),
                    test_accuracy: run.test.accuracy(),
                    test_f1_macro: run.test.f1_macro(),
                    training_seconds: run.model.training_seconds,
                    chosen: run.number == best,
                    interrupted: !self.is_complete(),
                    epochs_run: Some(run.epochs_run()),
                    epoch_kept: Some(run.epoch_kept()),
                    train_rows: Some(run.model.train_rows),
                }
            })
            .collect()
    }
}

impl ToHtml for Sweep {
    fn to_html(&self) -> String {
        self.table().to_html()
    }
}

/// One line of `runs.jsonl`: a run's settings and scores.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Which sweep the run belonged to: `<recorded_at>-<split>-seed<seed>`.
    pub sweep: String,
    /// Seconds since 1970 (UTC) when the sweep was recorded.
    pub recorded_at: u64,
    pub run: usize,
    pub split: String,
    pub seed: u64,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub hidden_layers: String,
    pub parameters: usize,
    pub val_accuracy: f64,
    pub val_loss: f64,
    pub val_f1_macro: f64,
    pub test_accuracy: f64,
    pub test_f1_macro: f64,
    pub training_seconds: f64,
    /// Picked by the selection rule.
    pub chosen: bool,
    /// The sweep was interrupted: the run was chosen among the finished runs only.
    #[serde(default)]
    pub interrupted: bool,
    /// Epochs trained, when early stopping may have ended the run (absent in older logs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epochs_run: Option<usize>,
    /// The epoch whose weights the run kept (absent in older logs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch_kept: Option<usize>,
    /// Training rows the run trained on (a row budget; absent in older logs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_rows: Option<usize>,
}

/// The run log: `runs.jsonl`, one [`RunRecord`] per line, appended to by every sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct RunLog {
    pub path: PathBuf,
}

impl RunLog {
    /// File name of the log inside a model repository.
    pub const FILE: &'static str = "runs.jsonl";

    /// The log kept beside the model versions of repository `model_dir`.
    pub fn beside(model_dir: impl AsRef<Path>) -> RunLog {
        RunLog { path: model_dir.as_ref().join(Self::FILE) }
    }

    fn io(&self) -> impl FnOnce(std::io::Error) -> RefineError + '_ {
        move |source| RefineError::Io { path: self.path.clone(), source }
    }

    /// Appends `records` (one line each), creating the file and its folder if needed. Each
    /// record is one `write` of a whole line, so a crash never leaves half a record before the
    /// next sweep's lines.
    pub fn append(&self, records: &[RunRecord]) -> Result<()> {
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent).map_err(self.io())?;
        }
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&self.path).map_err(self.io())?;
        for record in records {
            let mut line = serde_json::to_vec(record).map_err(|source| RefineError::Json {
                path: self.path.clone(),
                line: 0,
                source,
            })?;
            line.push(b'\n');
            file.write_all(&line).map_err(self.io())?;
        }
        file.sync_data().map_err(self.io())
    }

    /// Every record, oldest first; an absent file is an empty log.
    pub fn load(&self) -> Result<Vec<RunRecord>> {
        let file = match std::fs::File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io()(e)),
        };
        let mut records = Vec::new();
        for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line.map_err(self.io())?;
            if line.trim().is_empty() {
                continue;
            }
            records.push(serde_json::from_str(&line).map_err(|source| RefineError::Json {
                path: self.path.clone(),
                line: i + 1,
                source,
            })?);
        }
        Ok(records)
    }

    /// Every recorded run as a table (the chosen runs marked), oldest first.
    pub fn table(&self) -> Result<Table> {
        let records = self.load()?;
        let columns = [
            "sweep",
            "run",
            "split",
            "seed",
            "hidden layers",
            "learning rate",
            "batch size",
            "epochs",
            "val accuracy",
            "test accuracy",
            "seconds",
            "chosen",
        ];
        let rows = records
            .iter()
            .map(|r| {
                vec![
                    Cell::Text(r.sweep.clone()),
                    Cell::Number(r.run as f64),
                    Cell::Text(r.split.clone()),
                    Cell::Number(r.seed as f64),
                    Cell::Text(r.hidden_layers.clone()),
                    Cell::Number(r.learning_rate),
                    Cell::Number(r.batch_size as f64),
                    Cell::Number(r.epochs as f64),
                    Cell::Number(r.val_accuracy),
                    Cell::Number(r.test_accuracy),
                    Cell::Number(r.training_seconds),
                    Cell::Text(match (r.chosen, r.interrupted) {
                        (true, false) => "chosen".into(),
                        (true, true) => "chosen (of an interrupted sweep)".into(),
                        (false, _) => String::new(),
                    }),
                ]
            })
            .collect();
        Ok(Table::new(columns.map(String::from).to_vec(), rows).with_caption(format!(
            "{} runs recorded in {}",
            records.len(),
            self.path.display()
        )))
    }
}

/// How many songs of the validation and test rows the model already met in training.
#[derive(Clone, Debug, PartialEq)]
pub struct SongOverlap {
    pub split: String,
    /// Distinct songs per split: train, validation, test.
    pub songs: [usize; 3],
    /// Validation and test songs that also have rows in train.
    pub songs_seen_in_training: [usize; 2],
    /// Validation and test rows whose song has rows in train.
    pub rows_seen_in_training: [usize; 2],
    /// Validation and test rows.
    pub rows: [usize; 2],
}

impl SongOverlap {
    /// Counts the songs (`spotify_id`) each split shares with the training rows.
    pub fn of(data: &PreparedData) -> Result<SongOverlap> {
        let ids = |frame: &DataFrame| -> Result<Vec<String>> {
            let column = frame.column(SONG).and_then(|c| c.str().cloned()).map_err(RefineError::Songs)?;
            Ok(column.iter().map(|id| id.unwrap_or_default().to_string()).collect())
        };
        let train: HashSet<String> = ids(&data.splits.train)?.into_iter().collect();
        let mut songs = [train.len(), 0, 0];
        let (mut songs_seen, mut rows_seen, mut rows) = ([0; 2], [0; 2], [0; 2]);
        for (i, frame) in [&data.splits.validation, &data.splits.test].into_iter().enumerate() {
            let ids = ids(frame)?;
            rows[i] = ids.len();
            rows_seen[i] = ids.iter().filter(|id| train.contains(*id)).count();
            let distinct: HashSet<&String> = ids.iter().collect();
            songs[i + 1] = distinct.len();
            songs_seen[i] = distinct.iter().filter(|id| train.contains(**id)).count();
        }
        Ok(SongOverlap {
            split: data.options.strategy.name().to_string(),
            songs,
            songs_seen_in_training: songs_seen,
            rows_seen_in_training: rows_seen,
            rows,
        })
    }

    /// Validation and test: songs, songs also in train, rows, and the share of rows whose song
    /// the model trained on.
    pub fn table(&self) -> Table {
        let row = |name: &str, i: usize| {
            vec![
                Cell::from(name),
                Cell::Number(self.songs[i + 1] as f64),
                Cell::Number(self.songs_seen_in_training[i] as f64),
                Cell::Number(self.rows[i] as f64),
                Cell::Number(self.rows_seen_in_training[i] as f64 / self.rows[i].max(1) as f64),
            ]
        };
        Table::new(
            ["split", "songs", "songs also in train", "rows", "share of rows whose song is in train"]
                .map(String::from)
                .to_vec(),
            vec![row("validation", 0), row("test", 1)],
        )
        .with_caption(format!("{} split: {} songs in train", self.split, self.songs[0]))
    }
}

/// One model's test scores on a random and on a grouped split.
#[derive(Clone, Debug)]
pub struct SplitScores {
    pub model: String,
    pub random: ClassificationReport,
    /// `None` when the comparison was interrupted before this model was fitted on the grouped split.
    pub grouped: Option<ClassificationReport>,
}

/// The same learners trained and tested on a random split and on a grouped split.
#[derive(Clone, Debug)]
pub struct SplitComparison {
    pub random_split: String,
    pub models: Vec<SplitScores>,
    /// Fits the comparison asked for (each learner on each split): more than were made when
    /// it was interrupted.
    pub planned_fits: usize,
}

impl SplitComparison {
    /// Trains `network` and the two baselines (logistic regression, decision tree) on each
    /// split's training rows and scores them on its test rows, one learner at a time, its two
    /// fits (random split, grouped split) at once when there are two cores ([`workers`]).
    /// `random` is any ungrouped split (usually stratified); `grouped` is
    /// [`SplitStrategy::Grouped`](crate::prepare::SplitStrategy::Grouped).
    ///
    /// An interrupt stops it after the fits in progress (the network's at once, a baseline's when
    /// it ends) and keeps the scores finished so far; the table says where it stopped.
    pub fn new(network: &NeuralNetwork, random: &PreparedData, grouped: &PreparedData) -> Result<SplitComparison> {
        Self::new_on(network, random, grouped, workers())
    }

    /// [`SplitComparison::new`] with `workers` fits at a time (1: one after another; 2 or more:
    /// a learner's two fits at once). The scores are the same either way.
    pub fn new_on(
        network: &NeuralNetwork,
        random: &PreparedData,
        grouped: &PreparedData,
        workers: usize,
    ) -> Result<SplitComparison> {
        // Held across the fits: an interrupt during a baseline's fit (which does not watch for
        // one) or between fits stops the comparison instead of ending the process.
        let interrupt = InterruptWatch::start();
        Self::new_until(network, random, grouped, workers, |_| interrupt.requested())
    }

    /// [`SplitComparison::new_on`], starting no further fit once `stop(fits finished)` says so
    /// (an interrupt; tests stop after a given fit). With one worker it is asked before every
    /// fit, else before every learner's pair of fits.
    fn new_until(
        network: &NeuralNetwork,
        random: &PreparedData,
        grouped: &PreparedData,
        workers: usize,
        mut stop: impl FnMut(usize) -> bool,
    ) -> Result<SplitComparison> {
        type Fit = Box<dyn Fn(&PreparedData) -> Result<Box<dyn Classifier + Send>, TrainError> + Sync>;
        let network = network.clone().with_progress(Progress::Silent);
        fn boxed<C: Classifier + Send + 'static>(
            fitted: Result<C, TrainError>,
        ) -> Result<Box<dyn Classifier + Send>, TrainError> {
            Ok(Box::new(fitted?))
        }
        let learners: [Fit; 3] = [
            Box::new(move |data: &PreparedData| boxed(network.fit(data))),
            Box::new(|data: &PreparedData| boxed(LogisticRegression::default().fit(data))),
            Box::new(|data: &PreparedData| boxed(DecisionTree::default().fit(data))),
        ];
        let planned_fits = 2 * learners.len();
        // A fit and its test scores; `None` when it was interrupted.
        let fit_and_score = |fit: &Fit, data: &PreparedData| -> Result<Option<(String, ClassificationReport)>> {
            match fit(data) {
                Ok(model) => Ok(Some((model.name(), crate::train::test_report(model.as_ref(), data)?))),
                Err(TrainError::Interrupted { .. }) => Ok(None),
                Err(other) => Err(other.into()),
            }
        };
        let mut fits = 0;
        let mut models = Vec::new();
        for fit in &learners {
            if stop(fits) {
                break;
            }
            let (on_random, on_grouped) = if workers >= 2 {
                // Each fit is single-threaded and seeded: side by side, the same scores.
                std::thread::scope(|scope| {
                    let on_grouped = scope.spawn(|| fit_and_score(fit, grouped));
                    let on_random = fit_and_score(fit, random);
                    let on_grouped = on_grouped.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                    (on_random, on_grouped)
                })
            } else {
                let on_random = fit_and_score(fit, random);
                let on_grouped = match &on_random {
                    Ok(Some(_)) if !stop(fits + 1) => fit_and_score(fit, grouped),
                    _ => Ok(None),
                };
                (on_random, on_grouped)
            };
            let (on_random, on_grouped) = (on_random?, on_grouped?);
            let Some((model, on_random)) = on_random else { break };
            fits += 1 + usize::from(on_grouped.is_some());
            let stopped = on_grouped.is_none();
            models.push(SplitScores { model, random: on_random, grouped: on_grouped.map(|(_, report)| report) });
            if stopped {
                break;
            }
        }
        if models.is_empty() {
            return Err(RefineError::Interrupted { what: "the split comparison", planned: planned_fits });
        }
        let comparison =
            SplitComparison { random_split: random.options.strategy.name().to_string(), models, planned_fits };
        if !comparison.is_complete() {
            println!("{}", comparison.status());
        }
        Ok(comparison)
    }

    /// Fits finished: two per model, one when its grouped fit was interrupted.
    pub fn fits(&self) -> usize {
        self.models.iter().map(|m| 1 + usize::from(m.grouped.is_some())).sum()
    }

    /// Whether every fit finished (false after an interrupt).
    pub fn is_complete(&self) -> bool {
        self.fits() >= self.planned_fits
    }

    /// What the caption says: the splits, and where an interrupted comparison stopped.
    pub fn status(&self) -> String {
        let what = "the same learners on a random and on a grouped split (whole songs per split)";
        if self.is_complete() {
            what.to_string()
        } else {
            format!("{what}: stopped after {} of {} fits (interrupted)", self.fits(), self.planned_fits)
        }
    }

    /// Test accuracy and macro F1 per model on both splits, and how much accuracy the grouped
    /// split loses (percentage points).
    pub fn table(&self) -> Table {
        let columns = [
            "model".to_string(),
            format!("test accuracy ({} split)", self.random_split),
            "test accuracy (grouped split)".to_string(),
            "difference (points)".to_string(),
            format!("f1 macro ({} split)", self.random_split),
            "f1 macro (grouped split)".to_string(),
        ];
        let rows = self
            .models
            .iter()
            .map(|m| {
                let grouped = |score: fn(&ClassificationReport) -> f64| {
                    m.grouped.as_ref().map(|g| Cell::Number(score(g))).unwrap_or(Cell::Empty)
                };
                let difference = m
                    .grouped
                    .as_ref()
                    .map(|g| Cell::Number(((g.accuracy() - m.random.accuracy()) * 1000.0).round() / 10.0));
                vec![
                    Cell::Text(m.model.clone()),
                    Cell::Number(m.random.accuracy()),
                    grouped(ClassificationReport::accuracy),
                    difference.unwrap_or(Cell::Empty),
                    Cell::Number(m.random.f1_macro()),
                    grouped(ClassificationReport::f1_macro),
                ]
            })
            .collect();
        Table::new(columns.to_vec(), rows).with_caption(self.status())
    }
}

impl ToHtml for SplitComparison {
    fn to_html(&self) -> String {
        self.table().to_html()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prepare::{SplitOptions, SplitStrategy};

    fn prepared(strategy: SplitStrategy) -> PreparedData {
        let charts = crate::data::Dataset::from_dir(&jukebox_testkit::sample_data_dir()).unwrap().merge().unwrap();
        let options = SplitOptions { strategy, ..SplitOptions::with_seed(42) };
        PreparedData::new(&charts, &crate::data::FEATURES, &options).unwrap()
    }

    #[test]
    fn an_interrupted_sweep_keeps_its_finished_runs_and_says_where_it_stopped() {
        let data = prepared(SplitStrategy::Grouped);
        let grid: Grid =
            r#"{"epochs": [1, 2, 3], "hidden_layers": [[16]], "learning_rate": [0.001], "batch_size": [256]}"#
                .parse()
                .unwrap();
        // Two workers, stopped once two runs started: the third never starts.
        let stopped = grid.sweep_until(&data, 42, 2, |started| started >= 2).unwrap();
        assert_eq!((stopped.runs.len(), stopped.planned), (2, 3));
        assert!(!stopped.is_complete());
        let caption = stopped.table().caption.unwrap();
        assert!(caption.contains("stopped after 2 of 3 runs (interrupted)"), "{caption}");
        assert!(stopped.records().iter().all(|r| r.interrupted), "the run log says the sweep was cut short");
        assert!(stopped.validation_plot().unwrap().svg.contains("stopped after 2 of 3 runs"));

        // The kept runs are those a whole sweep makes: nothing of them was lost or redone.
        let complete = grid.sweep(&data, 42).unwrap();
        assert!(complete.is_complete() && complete.records().iter().all(|r| !r.interrupted));
        let caption = complete.table().caption.unwrap();
        assert!(caption.starts_with("sweep: 3 runs on the grouped split, seed 42; each run on all "), "{caption}");
        for (kept, whole) in stopped.runs.iter().zip(&complete.runs) {
            assert_eq!(kept.number, whole.number);
            assert_eq!(kept.validation, whole.validation);
            assert_eq!(kept.test, whole.test);
        }

        let nothing = grid.sweep_until(&data, 42, 2, |_| true).unwrap_err();
        assert!(matches!(nothing, RefineError::Interrupted { planned: 3, .. }), "{nothing}");
    }

    #[test]
    fn an_interrupted_split_comparison_keeps_the_models_it_finished() {
        let (random, grouped) = (prepared(SplitStrategy::Stratified), prepared(SplitStrategy::Grouped));
        let network = NeuralNetwork::new(1, 256, 42);
        // One fit at a time, stopped after the network's two fits and the logistic regression's
        // first.
        let stopped = SplitComparison::new_until(&network, &random, &grouped, 1, |fits| fits == 3).unwrap();
        assert_eq!((stopped.fits(), stopped.planned_fits), (3, 6));
        assert!(!stopped.is_complete());
        assert_eq!(stopped.models.len(), 2);
        assert!(stopped.models[0].grouped.is_some() && stopped.models[1].grouped.is_none());
        let table = stopped.table();
        assert!(table.caption.as_deref().unwrap_or("").contains("stopped after 3 of 6 fits"), "{table}");
        assert_eq!(table.rows[1][2], Cell::Empty, "no grouped score for a fit that never ran");
        let nothing = SplitComparison::new_until(&network, &random, &grouped, 1, |_| true).unwrap_err();
        assert!(matches!(nothing, RefineError::Interrupted { planned: 6, .. }), "{nothing}");

        // Two at a time: a learner's two fits together, the same scores as one after another.
        let together = SplitComparison::new_until(&network, &random, &grouped, 2, |fits| fits >= 2).unwrap();
        assert_eq!((together.fits(), together.models.len()), (2, 1));
        assert_eq!(together.models[0].random, stopped.models[0].random);
        assert_eq!(together.models[0].grouped, stopped.models[0].grouped);
    }
}
