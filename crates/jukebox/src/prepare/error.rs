//! What can go wrong while preparing the data, and the one check every step starts with.
//!
//! Every step of the preparation (`prepare::encode`, `prepare::split`, `prepare::ceiling`, the
//! matrices in `prepare`) reports a [`PrepareError`] that names the column, class or file at
//! fault. This module depends on no other step, so each of them can use it without importing
//! another.

use std::path::{Path, PathBuf};

use polars::prelude::*;

/// Why the data could not be prepared or saved. Variants name the column, class or file at fault.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("column `{0}` is not in the data")]
    MissingColumn(String),
    #[error("feature `{feature}` is not a column of the data; numeric columns are: {available}")]
    UnknownFeature { feature: String, available: String },
    #[error("feature `{feature}` holds {dtype} values; a feature must be numeric")]
    NotNumeric { feature: String, dtype: String },
    #[error("the feature list {0}")]
    BadFeatureList(String),
    #[error("column `{column}` holds {nulls} missing values; drop or fill them before preparing")]
    Nulls { column: String, nulls: usize },
    #[error("label `{label}` is not one of the {n_classes} known classes")]
    UnknownLabel { label: String, n_classes: usize },
    #[error("class index {index} is out of range: there are {n_classes} classes")]
    UnknownIndex { index: u32, n_classes: usize },
    #[error("invalid split option `{option}`: {reason}")]
    InvalidOption { option: &'static str, reason: String },
    #[error(
        "the data has no `snapshot_date` column, so the latest dates cannot be held out; use SplitStrategy::Stratified"
    )]
    NoDates,
    #[error("the data has no `spotify_id` column, so rows cannot be grouped by song; use SplitStrategy::Stratified")]
    NoSongIds,
    #[error("the {split} split is empty ({rows} rows in the data)")]
    EmptySplit { split: &'static str, rows: usize },
    #[error("{context}: {source}")]
    Polars { context: String, source: PolarsError },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Json { path: PathBuf, source: serde_json::Error },
}

pub type Result<T, E = PrepareError> = std::result::Result<T, E>;

pub(super) fn polars_err(context: impl Into<String>) -> impl FnOnce(PolarsError) -> PrepareError {
    let context = context.into();
    move |source| PrepareError::Polars { context, source }
}

pub(super) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PrepareError + '_ {
    move |source| PrepareError::Io { path: path.to_path_buf(), source }
}

/// `column` is in `frame` and holds no null.
pub(super) fn check_column(frame: &DataFrame, column: &str) -> Result<()> {
    let c = frame.column(column).map_err(|_| PrepareError::MissingColumn(column.to_string()))?;
    if c.null_count() > 0 {
        return Err(PrepareError::Nulls { column: column.to_string(), nulls: c.null_count() });
    }
    Ok(())
}
