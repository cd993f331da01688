//! Running a sweep: one training run per setting of a grid, on every core.
//!
//! [`Grid::sweep`] trains the grid's runs side by side, [`workers`] at a time (one per core unless
//! `JUKEBOX_SWEEP_WORKERS` says otherwise). Each worker takes the next run in grid order, trains
//! it single-threaded and seeded, scores it on the validation and test rows, and reports to the
//! calling thread, which shows the progress ([`super::progress`]) and collects the runs. Runs
//! share what they read (one prepared split, one draw of the training rows) and nothing they
//! write, so the result is the same for any number of workers.
//!
//! An interrupt (Ctrl-C, a notebook's stop button) drops the runs in progress and keeps the
//! finished ones: the sweep returns them, marked incomplete.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

use jukebox_nn::EpochProgress;

use super::error::{RefineError, Result};
use super::grid::Grid;
use super::plan::SweepPlan;
use super::progress::SweepDisplay;
use super::runs::{Run, Sweep};
use crate::prepare::PreparedData;
use crate::train::{InterruptWatch, TrainError, TrainingRows};

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

impl Grid {
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
    pub(super) fn sweep_until(
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
}

/// What a sweep's workers report to the thread that shows the progress and collects the runs.
enum SweepEvent {
    Started(usize),
    Progress(usize, EpochProgress),
    Finished(Box<Run>),
    /// Interrupted (dropped, the sweep stops) or failed (the sweep stops with the error).
    Dropped(usize, RefineError),
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::prepare::{SplitOptions, SplitStrategy};

    /// The shared sample, prepared with `strategy` and seed 42.
    pub(in crate::refine) fn prepared(strategy: SplitStrategy) -> PreparedData {
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
}
