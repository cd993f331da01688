//! What goes wrong finding or loading the chart data: one error type for the data stage.

use std::path::PathBuf;

use polars::prelude::PolarsError;

use super::files::{KAGGLE_CSV_FILE, PROPERTIES_FILE, RANKINGS_FILE};

/// Why data could not be found or loaded. Every variant names the file and, where it applies,
/// the column at fault.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("data file not found: {path}")]
    MissingFile { path: PathBuf },
    #[error("{file}: required column `{column}` is missing (columns present: {present})")]
    MissingColumn { file: PathBuf, column: String, present: String },
    #[error("{file}: column `{column}` has type {found}, expected {expected}")]
    WrongType { file: PathBuf, column: String, expected: &'static str, found: String },
    #[error("{file}: not a readable {format} file: {reason}")]
    Unreadable { file: PathBuf, format: &'static str, reason: String },
    #[error(
        "no chart data found and it could not be downloaded.\n  tried: {tried}\n  download from \
         {url} failed: {reason}\n  Point jukebox at the data: pass a folder holding \
         {PROPERTIES_FILE} and {RANKINGS_FILE} (or {KAGGLE_CSV_FILE}), or set JUKEBOX_DATA_DIR."
    )]
    NoData { tried: String, url: String, reason: String },
    #[error("download of {url} failed: {reason}")]
    Download { url: String, reason: String },
    #[error("{context}: {source}")]
    Polars { context: String, source: PolarsError },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// A feature column holds no value at all: every row would be dropped as incomplete.
    #[error(
        "{file}: column `{column}` is null in all {rows} rows, so no song has every feature and no row would be \
         left: the data needs a value of `{column}` for the songs (check how the file was exported)"
    )]
    EmptyFeature { file: PathBuf, column: String, rows: usize },
}

pub type Result<T, E = DataError> = std::result::Result<T, E>;

pub(crate) fn polars_err(context: impl Into<String>) -> impl FnOnce(PolarsError) -> DataError {
    let context = context.into();
    move |source| DataError::Polars { context, source }
}
