//! Stage 2a: turn the merged chart data into what a model learns from.
//!
//! The model reads the feature columns you choose, in that order (the workshop's 13 audio
//! features, [`FEATURES`](crate::data::FEATURES), unless you pass another list), and predicts the chart's `country`:
//!
//! ```ignore
//! let features: Vec<String> = vec!["danceability".to_string(), "energy".to_string()];
//! let data = PreparedData::new(&charts, &features, &SplitOptions::with_seed(42))?;
//! ```
//!
//! Everything downstream follows that list: the scaler, the network's inputs, the ONNX file's
//! input names, the artifacts and the request a client sends. Preparing the data takes four
//! steps, each a type here:
//!
//! 1. [`LabelEncoder`] numbers the countries in sorted order (as scikit-learn's `LabelEncoder`
//!    does), so class `i` is the `i`-th country code alphabetically, and maps back.
//! 2. [`SplitOptions`] splits the rows into train, validation and test sets: by default 20 % of
//!    each country's rows go to test, then 20 % of the rest to validation, chosen by a seeded
//!    shuffle so the same seed always gives the same split. When the data carries chart dates
//!    ([`SplitStrategy::LatestDates`]) the most recent days can be held out as test instead,
//!    which asks the harder question "does it work on charts it has not seen yet?". And because a
//!    song stays in a chart for many days, [`SplitStrategy::Grouped`] keeps every song (all rows
//!    of one `spotify_id`) in a single split, so the test rows are songs the model never saw.
//! 3. [`MinMaxScaler`] maps every feature to `[0, 1]` using the minimum and maximum of the
//!    **training rows only**: the test rows stand for data the model has never seen, so nothing
//!    about them may leak into the preparation (the scaler is part of the model).
//! 4. [`PreparedData`] holds the three splits as row-major `f32` matrices with their labels,
//!    plus the encoder and scaler, and [`PreparedData::save`] writes them as JSON and parquet so
//!    later notebooks, and other languages, can read exactly what the model saw.
//!
//! All data work is done with polars expressions; only the final matrices are copied out of the
//! columns.
//!
//! Each step is a module: [`encode`] (the label encoder and the scaler), [`split`] (which rows
//! go where), [`ceiling`] (the best accuracy these features allow) and [`fingerprint`] (what a
//! model was fitted on); this module puts them together into [`PreparedData`].

use std::fs::File;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde::Serialize;

use jukebox_protocol::model_folder;

use crate::data::columns::{COUNTRY, SNAPSHOT_DATE, SPOTIFY_ID};
use crate::data::ChartData;
use crate::display::{Cell, Table};

pub mod ceiling;
pub mod encode;
pub mod error;
pub mod fingerprint;
pub mod split;

pub use ceiling::{AccuracyCeiling, CeilingRow};
pub use encode::{LabelEncoder, MinMaxScaler};
use error::{check_column, io_err, polars_err};
pub use error::{PrepareError, Result};
pub use fingerprint::DataFingerprint;
pub use split::{SplitOptions, SplitStrategy, Splits};

/// The column the model predicts.
pub const TARGET: &str = COUNTRY;
/// The column that identifies a song: [`SplitStrategy::Grouped`] keeps its rows together.
pub const SONG: &str = SPOTIFY_ID;
/// The chart date column (present in the full upstream data, absent from the small sample).
const DATE: &str = SNAPSHOT_DATE;

/// Features and labels of the three splits, ready for training.
///
/// Matrices are row-major `f32`, `rows x features.len()`, scaled by `scaler`; labels are class
/// indices of `encoder`.
#[derive(Clone)]
pub struct PreparedData {
    pub features: Vec<String>,
    pub encoder: LabelEncoder,
    pub scaler: MinMaxScaler,
    pub x_train: Vec<f32>,
    pub y_train: Vec<u32>,
    pub x_val: Vec<f32>,
    pub y_val: Vec<u32>,
    pub x_test: Vec<f32>,
    pub y_test: Vec<u32>,
    pub splits: Splits,
    pub options: SplitOptions,
}

/// Every feature names a numeric column, once; the list is not empty and leaves out the target.
fn check_features(frame: &DataFrame, features: &[&str]) -> Result<()> {
    if features.is_empty() {
        return Err(PrepareError::BadFeatureList("is empty: name at least one column".into()));
    }
    for (i, feature) in features.iter().enumerate() {
        if features[..i].contains(feature) {
            return Err(PrepareError::BadFeatureList(format!("names `{feature}` twice")));
        }
        if *feature == TARGET {
            return Err(PrepareError::BadFeatureList(format!("holds `{TARGET}`, the column the model predicts")));
        }
        let Ok(column) = frame.column(feature) else {
            let available = crate::explore::numeric_columns(frame).join(", ");
            return Err(PrepareError::UnknownFeature { feature: feature.to_string(), available });
        };
        if !(column.dtype().is_primitive_numeric() || matches!(column.dtype(), DataType::Boolean)) {
            return Err(PrepareError::NotNumeric { feature: feature.to_string(), dtype: column.dtype().to_string() });
        }
        check_column(frame, feature)?;
    }
    Ok(())
}

/// The feature columns of `frame` as a row-major f32 matrix.
pub fn feature_matrix(frame: &DataFrame, features: &[String]) -> Result<Vec<f32>> {
    let (rows, width) = (frame.height(), features.len());
    let mut matrix = vec![0f32; rows * width];
    for (j, feature) in features.iter().enumerate() {
        check_column(frame, feature)?;
        let column = frame
            .column(feature)
            .and_then(|c| c.cast(&DataType::Float32))
            .map_err(polars_err(format!("column `{feature}` as f32")))?;
        let values = column.f32().map_err(polars_err(feature.clone()))?;
        for (i, v) in values.into_no_null_iter().enumerate() {
            matrix[i * width + j] = v;
        }
    }
    Ok(matrix)
}

impl PreparedData {
    /// Encodes, splits and scales the merged data; the model will read `features`, in this order
    /// (pass [`FEATURES`](crate::data::FEATURES) for the workshop's 13, or a `Vec<String>` from a notebook cell).
    pub fn new<S: AsRef<str>>(data: &ChartData, features: &[S], options: &SplitOptions) -> Result<PreparedData> {
        Self::from_frame(&data.frame, features, options)
    }

    /// Same as [`PreparedData::new`] on any frame with the given feature columns and `country`.
    pub fn from_frame<S: AsRef<str>>(
        frame: &DataFrame,
        features: &[S],
        options: &SplitOptions,
    ) -> Result<PreparedData> {
        let features: Vec<&str> = features.iter().map(|f| f.as_ref()).collect();
        let features = features.as_slice();
        options.check()?;
        check_column(frame, TARGET)?;
        check_features(frame, features)?;
        let encoder = LabelEncoder::fit(frame, TARGET)?;
        let (splits, [y_train, y_val, y_test]) = split::split_rows(frame, features, &encoder, options)?;

        let scaler = MinMaxScaler::fit(&splits.train, features)?;
        let features: Vec<String> = features.iter().map(|f| f.to_string()).collect();
        // Each split's scaled matrix; then the split keeps its raw features as f32, the precision
        // the model reads (half the memory of f64: 57 MB per prepared dataset on the full data).
        let as_f32: Vec<Expr> = features.iter().map(|f| col(f.as_str()).cast(DataType::Float32)).collect();
        let finish = |frame: DataFrame| -> Result<(Vec<f32>, DataFrame)> {
            let matrix = feature_matrix(&scaler.transform_frame(&frame)?, &features)?;
            let frame = frame.lazy().with_columns(as_f32.clone()).collect().map_err(polars_err("features as f32"))?;
            Ok((matrix, frame))
        };
        let (x_train, train) = finish(splits.train)?;
        let (x_val, validation) = finish(splits.validation)?;
        let (x_test, test) = finish(splits.test)?;
        // The split's intermediate columns are freed; give them back (see crate::memory).
        crate::memory::release_freed_memory();
        Ok(PreparedData {
            x_train,
            y_train,
            x_val,
            y_val,
            x_test,
            y_test,
            splits: Splits { train, validation, test },
            features,
            encoder,
            scaler,
            options: options.clone(),
        })
    }

    pub fn n_features(&self) -> usize {
        self.features.len()
    }
    pub fn n_classes(&self) -> usize {
        self.encoder.len()
    }
    pub fn n_train(&self) -> usize {
        self.y_train.len()
    }
    pub fn n_val(&self) -> usize {
        self.y_val.len()
    }
    pub fn n_test(&self) -> usize {
        self.y_test.len()
    }
    /// Rows in all three splits together.
    pub fn n_rows(&self) -> usize {
        self.n_train() + self.n_val() + self.n_test()
    }

    /// Rows per split and the number of classes, as a table; when the data has chart dates,
    /// each split's first and last chart day too (what an `ordered` split holds out).
    pub fn summary(&self) -> Table {
        let n = self.n_rows().max(1) as f64;
        let dated = self.splits.train.schema().contains(DATE);
        let row = |name: &str, rows: usize, frames: &[&DataFrame]| {
            let mut cells = vec![Cell::from(name), (rows as f64).into(), (rows as f64 / n).into()];
            if dated {
                let (first, last) = date_range(frames);
                cells.extend([Cell::Text(first), Cell::Text(last)]);
            }
            cells
        };
        let s = &self.splits;
        let mut columns: Vec<String> = vec!["split".into(), "rows".into(), "share".into()];
        if dated {
            columns.extend(["first chart day".into(), "last chart day".into()]);
        }
        Table::new(
            columns,
            vec![
                row("train", self.n_train(), &[&s.train]),
                row("validation", self.n_val(), &[&s.validation]),
                row("test", self.n_test(), &[&s.test]),
                row("all", self.n_rows(), &[&s.train, &s.validation, &s.test]),
            ],
        )
        .with_caption(format!(
            "{} features, {} classes, {} split",
            self.n_features(),
            self.n_classes(),
            self.options.strategy
        ))
    }

    /// How well *any* model reading these features could do, per split: rows with identical
    /// feature values get the same answer from every model, so of each group of identical inputs
    /// at best the rows of its most frequent country are right. The chance level (one class in
    /// `n_classes`) is the floor beside it.
    pub fn accuracy_ceiling(&self) -> Result<AccuracyCeiling> {
        AccuracyCeiling::of_splits(&self.splits, &self.features, self.n_classes())
    }

    /// Writes `<dir>/artifacts/`: `scaler.json`, `label_encoder.json`, `X_train.parquet`,
    /// `X_test.parquet` (scaled features, one column per feature) and `y_test.json`
    /// ([`model_folder::TestLabels`]: each test row's country code and class index). Returns the
    /// artifacts folder.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<PathBuf> {
        let artifacts = dir.as_ref().join(model_folder::ARTIFACTS_DIR);
        std::fs::create_dir_all(&artifacts).map_err(io_err(&artifacts))?;
        write_json(&artifacts.join(model_folder::SCALER_FILE), &self.scaler)?;
        write_json(&artifacts.join(model_folder::LABEL_ENCODER_FILE), &self.encoder)?;
        self.write_matrix(&artifacts.join(model_folder::X_TRAIN_FILE), &self.x_train)?;
        self.write_matrix(&artifacts.join(model_folder::X_TEST_FILE), &self.x_test)?;
        let country = self.encoder.inverse_transform(&self.y_test)?.into_iter().map(str::to_string).collect();
        let labels = model_folder::TestLabels { country, label: self.y_test.clone() };
        write_json(&artifacts.join(model_folder::Y_TEST_FILE), &labels)?;
        Ok(artifacts)
    }

    fn write_matrix(&self, path: &Path, matrix: &[f32]) -> Result<()> {
        let width = self.n_features();
        let rows = matrix.len() / width;
        let columns = self
            .features
            .iter()
            .enumerate()
            .map(|(j, f)| {
                Column::new(f.as_str().into(), matrix.iter().skip(j).step_by(width).copied().collect::<Vec<f32>>())
            })
            .collect();
        let mut frame = DataFrame::new(rows, columns).map_err(polars_err(path.display().to_string()))?;
        let file = File::create(path).map_err(io_err(path))?;
        ParquetWriter::new(file).finish(&mut frame).map_err(polars_err(path.display().to_string()))?;
        Ok(())
    }
}

fn date_range(frames: &[&DataFrame]) -> (String, String) {
    // Each frame's own range, then the earliest first and the latest last day (`YYYY-MM-DD` sorts
    // as text): no copy of the frames put together.
    let ranges: Vec<(String, String)> = frames.iter().filter_map(|frame| one_date_range(frame)).collect();
    let first = ranges.iter().map(|(first, _)| first).min().cloned().unwrap_or_default();
    let last = ranges.iter().map(|(_, last)| last).max().cloned().unwrap_or_default();
    (first, last)
}

/// The first and last chart day of `frame`, `None` when it has no dates or no rows.
fn one_date_range(frame: &DataFrame) -> Option<(String, String)> {
    let range =
        frame.clone().lazy().select([col(DATE).min().alias("first"), col(DATE).max().alias("last")]).collect().ok()?;
    let day = |name: &str| -> Option<String> {
        let value = range.column(name).ok()?.get(0).ok()?;
        (!value.is_null()).then(|| value.to_string())
    };
    Some((day("first")?, day("last")?))
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let file = File::create(path).map_err(io_err(path))?;
    serde_json::to_writer_pretty(std::io::BufWriter::new(file), value)
        .map_err(|source| PrepareError::Json { path: path.to_path_buf(), source })
}

impl PreparedData {
    /// This data's [`DataFingerprint`]: what a model fitted on it records.
    pub fn fingerprint(&self) -> DataFingerprint {
        DataFingerprint {
            split: self.options.strategy.name().to_string(),
            seed: Some(self.options.seed),
            features: self.features.clone(),
            rows: [self.n_train(), self.n_val(), self.n_test()],
            classes: self.n_classes(),
            rows_hash: fingerprint::rows_hash(&[
                (&self.x_train, &self.y_train),
                (&self.x_val, &self.y_val),
                (&self.x_test, &self.y_test),
            ]),
        }
    }
}
