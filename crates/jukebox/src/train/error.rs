//! What can go wrong while training or scoring: one error type for the stage.
//!
//! [`TrainError`] covers the network's training, the baselines' fits, an interrupt, and the
//! one mistake a notebook makes easily: scoring a model on other data than it was fitted on
//! ([`TrainError::FittedOnOtherData`] names the model and what differs).

use jukebox_nn::NnError;

use crate::display::PlotError;
use crate::evaluate::EvaluateError;

/// Why training or scoring failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("training the neural network: {0}")]
    Network(#[from] NnError),
    #[error("fitting {model}: {message}")]
    Baseline { model: &'static str, message: String },
    #[error(transparent)]
    Evaluate(#[from] EvaluateError),
    #[error(transparent)]
    Plot(#[from] PlotError),
    /// Training was interrupted (Ctrl-C, a notebook's stop button); nothing was returned.
    #[error("training interrupted at epoch {epoch}/{epochs}, batch {batch}/{batches} (the partly trained network was dropped)")]
    Interrupted { epoch: usize, epochs: usize, batch: usize, batches: usize },
    /// A model is scored on other data than it was fitted on (another split, feature list or
    /// preparation): its scores would not compare with the others'.
    #[error(
        "{model}: fitted on other data than the data it is scored on ({differences}). Fit again on this data \
         (run the fitting cell again after preparing the data), or score on the data it was fitted on: the \
         {fitted_on}"
    )]
    FittedOnOtherData { model: String, differences: String, fitted_on: String },
}

pub type Result<T, E = TrainError> = std::result::Result<T, E>;
