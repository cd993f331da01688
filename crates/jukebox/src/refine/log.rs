//! The run log: every run of every sweep, kept beside the model versions.
//!
//! Sweeps on different days should compare in one table, so each sweep appends its runs to
//! `runs.jsonl` in the model repository ([`RunLog::beside`]), one JSON [`RunRecord`] per line:
//! settings, validation and test scores, time, and whether the run was chosen. JSON lines are
//! easy to append to safely (one write per line) and to read from Python or `jq` as well.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::{RefineError, Result};
use crate::display::{Cell, Table};

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
