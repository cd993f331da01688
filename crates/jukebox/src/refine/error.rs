//! What can go wrong while refining: one error type for the whole stage.
//!
//! Every step of refining (reading a grid, sweeping it, comparing splits, keeping the run log)
//! returns [`RefineError`]. Its own variants name the grid field, file and line at fault; the
//! earlier stages' errors (preparing, training, scoring, plotting) pass through unchanged, so a
//! message still names the column or tensor it is about.

use std::path::PathBuf;

use polars::prelude::PolarsError;

use crate::data::DataError;
use crate::display::PlotError;
use crate::evaluate::EvaluateError;
use crate::export::ExportError;
use crate::prepare::{PrepareError, SONG};
use crate::train::TrainError;

/// Why refining failed. Variants name the grid field, file and line at fault.
#[derive(Debug, thiserror::Error)]
pub enum RefineError {
    #[error(
        "invalid grid: {0}. A grid is `quick`, `class` or JSON such as \
         {{\"epochs\": [10], \"hidden_layers\": [[128, 128]], \"learning_rate\": [0.001], \"batch_size\": [64]}}"
    )]
    Grid(String),
    #[error("loading the chart data: {0}")]
    Data(#[from] DataError),
    #[error(transparent)]
    Prepare(#[from] PrepareError),
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error(transparent)]
    Evaluate(#[from] EvaluateError),
    #[error(transparent)]
    Plot(#[from] PlotError),
    #[error("exporting the chosen run: {0}")]
    Export(#[from] ExportError),
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
    /// Interrupted after some work finished: what was shown is kept, the stage goes no further.
    #[error("{0}")]
    Stopped(String),
    /// The exported ONNX model's probabilities differ from the trained network's.
    #[error("the exported model disagrees with the trained network: {0}")]
    Parity(String),
}

pub type Result<T, E = RefineError> = std::result::Result<T, E>;
