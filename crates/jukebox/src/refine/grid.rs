//! The settings a sweep tries, written as data.
//!
//! A [`Grid`] lists values for each training setting (epochs, hidden layers, learning rate,
//! batch size) and, optionally, early stopping and a row budget shared by every run. Every
//! combination of the listed values is one run, so a grid of 2 x 2 x 2 x 1 values is 8 runs.
//! Grids are JSON, so one can come from a notebook parameter, a file or a command-line flag;
//! [`QUICK_GRID`] and [`CLASS_GRID`] are the two named ones (`"quick".parse::<Grid>()`).
//!
//! This module only describes the runs ([`Grid::learners`]); training them is the job of
//! [`Grid::sweep`], in the `sweep` module.

use jukebox_nn::thousands;
use serde::{Deserialize, Serialize};

use super::error::{RefineError, Result};
use crate::display::{Cell, Table};
use crate::train::{NeuralNetwork, Progress};

/// The grid `quick` names: 8 runs, seconds on the sample and about a minute on the full data
/// on 2 cores (CI, a first try).
pub const QUICK_GRID: &str = r#"{"epochs": [10, 25], "hidden_layers": [[32, 64, 128, 256], [128, 128]], "learning_rate": [0.001, 0.003], "batch_size": [64], "patience": 3, "max_train_rows": 100000}"#;

/// The grid `class` names: 54 runs, a few minutes on a laptop (in class, during the break).
pub const CLASS_GRID: &str = r#"{"epochs": [10, 30, 60], "hidden_layers": [[32, 64, 128, 256], [128, 128], [256, 256, 256]], "learning_rate": [0.0003, 0.001, 0.003], "batch_size": [32, 128], "patience": 3, "max_train_rows": 100000}"#;

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
    /// Refuses a grid that cannot run: an empty list, a zero, a rate that is not positive.
    pub(super) fn check(&self) -> Result<()> {
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
                Cell::Text(format!("at most {}, a stratified subsample", thousands(budget))),
            ]
        }))
        .collect();
        Table::new(vec!["setting".into(), "values tried".into()], rows)
            .with_caption(format!("grid: {} runs", self.len()))
    }
}
