//! A sweep's result: its runs, the one the selection rule picks, and how to show them.
//!
//! A [`Run`] is one trained setting with its validation and test scores; a [`Sweep`] holds the
//! runs of a grid in grid order. [`Sweep::best`] picks by validation accuracy only
//! ([`Sweep::SELECTION_RULE`]): the test score of the chosen run is read once, afterwards, so it
//! stays an honest estimate. [`Sweep::table`] lists every run, [`Sweep::validation_plot`] draws
//! their validation accuracy per epoch, and [`Sweep::records`] turns them into the run log's
//! lines ([`super::log`]).

use super::error::Result;
use super::log::RunRecord;
use super::plan::duration;
use crate::display::{Cell, Plot, Table};
use crate::evaluate::{ClassificationReport, Metrics};
use crate::prepare::PreparedData;
use crate::train::chart::{EpochChart, Line, Panel};
use crate::train::{Classifier, NeuralNetwork, TrainError, TrainedModel};

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
    pub(super) fn score(number: usize, model: TrainedModel, data: &PreparedData) -> Result<Run> {
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
pub(super) fn settings(l: &NeuralNetwork) -> String {
    format!("{}, lr {}, batch {}, {} epochs", l.hidden_layers_name(), l.learning_rate, l.batch_size, l.epochs)
}

/// The runs of a [`Grid`](super::grid::Grid) on one split.
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
        let best = self.best().number;
        // The chosen run last, so it is drawn over the others.
        let order = self.runs.iter().filter(|r| r.number != best).chain(self.runs.iter().filter(|r| r.number == best));
        let line = |run: &Run| {
            let width = if run.number == best { 4 } else { 2 };
            (crate::display::series_colour(run.number - 1), width)
        };
        let legend: Vec<_> = self
            .runs
            .iter()
            .map(|run| {
                let chosen = if run.number == best { " (chosen)" } else { "" };
                let (colour, width) = line(run);
                (format!("run {}: {}{chosen}", run.number, run.settings()), colour, width)
            })
            .collect();
        let lines = order
            .map(|run| {
                let (colour, width) = line(run);
                Line { values: &run.model.history.val_accuracy, colour, width }
            })
            .collect();
        // Room for `run 54: 256-256-256, lr 0.0003, batch 128, 60 epochs (chosen)` at 10 px.
        const LEGEND_FONT: u32 = 10;
        const LEGEND_ROW: u32 = LEGEND_FONT + 6;
        let title = match self.is_complete() {
            true => format!("validation accuracy per epoch ({} split)", self.split),
            false => format!("validation accuracy per epoch ({} split, {})", self.split, self.status()),
        };
        let chart = EpochChart {
            // Tall enough for one legend row per run (54 in the class grid).
            height: 420.max(60 + LEGEND_ROW * legend.len() as u32),
            panel_height: 420,
            panels: vec![Panel { title, y_desc: Some("val accuracy"), lines }],
            title_size: 16,
            y_label_width: 55,
            points: false,
            legend,
            legend_width: 400,
            legend_font: LEGEND_FONT,
            legend_top: 30,
        };
        Ok(chart.draw()?)
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

crate::display::shown_as_table!(Sweep);
