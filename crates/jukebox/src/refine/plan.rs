//! How long a sweep will take, said before it starts.
//!
//! A grid of 54 runs can take a minute or an hour depending on the machine. Before the first run,
//! [`SweepPlan::measure`] trains each distinct network of the grid (layers and batch size) for a
//! tenth of a second on a copy, and from those speeds works out the wall time of the whole grid
//! if no run stopped early, with the runs shared among the workers in grid order. The sweep
//! prints it ([`SweepPlan::describe`]), so a participant knows whether to wait or to pick a
//! smaller grid. [`duration`] writes seconds the way every refine table and line shows them.

use std::collections::BTreeMap;

use jukebox_nn::thousands;

use super::grid::Grid;
use crate::prepare::PreparedData;
use crate::train::{NeuralNetwork, TrainingRows};

/// How long a grid takes at most, from the speed of its networks measured on this machine
/// before the first run starts.
pub(super) struct SweepPlan {
    /// Wall time if every run trains all its epochs, `workers` at a time in grid order.
    pub(super) seconds: f64,
    /// Slowest and fastest measured training speed (rows per second, one run on one core).
    speeds: (f64, f64),
    workers: usize,
    runs: usize,
}

impl SweepPlan {
    /// Seconds of measuring per distinct network (layers and batch size) of the grid.
    const MEASURE_SECONDS: f64 = 0.1;

    pub(super) fn measure(
        learners: &[NeuralNetwork],
        data: &PreparedData,
        rows: &TrainingRows,
        workers: usize,
    ) -> SweepPlan {
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
    pub(super) fn describe(&self, grid: &Grid, rows: &TrainingRows) -> String {
        let (slow, fast) = self.speeds;
        let speed = if (fast - slow) < 0.05 * fast {
            format!("{} rows/s", per_second(fast))
        } else {
            format!("{} to {} rows/s", per_second(slow), per_second(fast))
        };
        let rows = if rows.is_subsample() {
            format!(
                "{} of the {} training rows (a stratified subsample)",
                thousands(rows.n_train()),
                thousands(rows.of)
            )
        } else {
            format!("all {} training rows", thousands(rows.of))
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

/// A speed in rows per second, rounded, as `12,345`.
fn per_second(rows_per_second: f64) -> String {
    thousands(rows_per_second.max(0.0).round() as usize)
}

/// `42 s`, `3 min 5 s`.
pub(super) fn duration(seconds: f64) -> String {
    let whole = seconds.round() as u64;
    if whole < 60 {
        format!("{} s", seconds.ceil().max(1.0) as u64)
    } else {
        format!("{} min {} s", whole / 60, whole % 60)
    }
}
