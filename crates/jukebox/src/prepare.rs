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

use std::fs::File;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use jukebox_protocol::model_folder::{self, Scaler};

use crate::data::ChartData;
use crate::display::{Cell, Table};

/// The column the model predicts.
pub const TARGET: &str = "country";
/// The column that identifies a song: [`SplitStrategy::Grouped`] keeps its rows together.
pub const SONG: &str = "spotify_id";

/// Names of the helper columns added while splitting (removed again afterwards).
const LABEL: &str = "__label";
const SHUFFLE_KEY: &str = "__shuffle_key";
const HELD_OUT: &str = "__held_out";
const VALIDATION_SONG: &str = "__validation_song";
const ROWS: &str = "__rows";

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

fn polars_err(context: impl Into<String>) -> impl FnOnce(PolarsError) -> PrepareError {
    let context = context.into();
    move |source| PrepareError::Polars { context, source }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PrepareError + '_ {
    move |source| PrepareError::Io { path: path.to_path_buf(), source }
}

/// Class names in sorted order; class `i` is `classes[i]` (scikit-learn's `LabelEncoder`).
///
/// Fits and applies the model folder's [`model_folder::LabelEncoder`] (its JSON, through
/// `Deref` its fields) on polars frames.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LabelEncoder(pub model_folder::LabelEncoder);

impl std::ops::Deref for LabelEncoder {
    type Target = model_folder::LabelEncoder;
    fn deref(&self) -> &model_folder::LabelEncoder {
        &self.0
    }
}

impl LabelEncoder {
    /// The distinct non-null values of the string column `column`, sorted.
    pub fn fit(frame: &DataFrame, column: &str) -> Result<LabelEncoder> {
        let unique = frame
            .clone()
            .lazy()
            .select([col(column).drop_nulls().unique().sort(SortOptions::default())])
            .collect()
            .map_err(polars_err(format!("listing the classes of `{column}`")))?;
        let classes = unique
            .column(column)
            .and_then(|c| c.str().cloned())
            .map_err(polars_err(format!("column `{column}` must hold text")))?
            .iter()
            .flatten()
            .map(str::to_string)
            .collect();
        Ok(LabelEncoder(model_folder::LabelEncoder { classes }))
    }

    /// An encoder for known classes; they are sorted and deduplicated.
    pub fn from_classes(classes: impl IntoIterator<Item = impl Into<String>>) -> LabelEncoder {
        let mut classes: Vec<String> = classes.into_iter().map(Into::into).collect();
        classes.sort();
        classes.dedup();
        LabelEncoder(model_folder::LabelEncoder { classes })
    }

    pub fn classes(&self) -> &[String] {
        &self.0.classes
    }
    pub fn len(&self) -> usize {
        self.0.classes.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.classes.is_empty()
    }

    /// The class index of each label.
    pub fn transform<S: AsRef<str>>(&self, labels: &[S]) -> Result<Vec<u32>> {
        labels
            .iter()
            .map(|label| {
                let label = label.as_ref();
                self.classes()
                    .binary_search_by(|c| c.as_str().cmp(label))
                    .map(|i| i as u32)
                    .map_err(|_| PrepareError::UnknownLabel { label: label.to_string(), n_classes: self.len() })
            })
            .collect()
    }

    /// The label of each class index.
    pub fn inverse_transform(&self, indices: &[u32]) -> Result<Vec<&str>> {
        indices
            .iter()
            .map(|&index| {
                self.classes()
                    .get(index as usize)
                    .map(String::as_str)
                    .ok_or(PrepareError::UnknownIndex { index, n_classes: self.len() })
            })
            .collect()
    }

    /// An expression mapping the string column `column` to class indices (UInt32); an unknown
    /// value makes the query fail.
    pub fn encode_expr(&self, column: &str) -> Expr {
        let classes = Series::new("classes".into(), self.classes());
        let indices = Series::new("indices".into(), (0..self.len() as u32).collect::<Vec<_>>());
        col(column).replace_strict(lit(classes), lit(indices), None::<Expr>, Some(DataType::UInt32))
    }
}

/// Scales each feature to `[0, 1]` with the minimum and maximum seen when fitting
/// (scikit-learn's `MinMaxScaler`).
///
/// Fits the model folder's [`Scaler`] on a polars frame and applies it as polars expressions;
/// the scaling rule itself (a constant feature is shifted to 0, not divided by zero) is the
/// contract's, so training, the request client and the server scale alike. Hand-rolled rather
/// than linfa-preprocessing's `LinearScaler::min_max`: the artifacts must carry the raw minimum
/// and maximum (linfa keeps only offsets and scales), and scaling as a polars expression keeps the
/// data in the frame.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MinMaxScaler(pub Scaler);

impl std::ops::Deref for MinMaxScaler {
    type Target = Scaler;
    fn deref(&self) -> &Scaler {
        &self.0
    }
}

impl MinMaxScaler {
    /// Learns each feature's minimum and maximum from `frame` (pass the training rows only).
    pub fn fit(frame: &DataFrame, features: &[&str]) -> Result<MinMaxScaler> {
        for feature in features {
            check_column(frame, feature)?;
        }
        let as_f64 = |f: &str| col(f).cast(DataType::Float64);
        let mut aggregates: Vec<Expr> = features.iter().map(|f| as_f64(f).min().alias(format!("min:{f}"))).collect();
        aggregates.extend(features.iter().map(|f| as_f64(f).max().alias(format!("max:{f}"))));
        let row =
            frame.clone().lazy().select(aggregates).collect().map_err(polars_err("fitting the min-max scaler"))?;
        let value = |name: String| -> Result<f64> {
            let value = row
                .column(&name)
                .and_then(|c| c.get(0).map(|v| v.extract::<f64>()))
                .map_err(polars_err(name.clone()))?;
            value.ok_or_else(|| PrepareError::EmptySplit { split: "train", rows: frame.height() })
        };
        Ok(MinMaxScaler(Scaler {
            features: features.iter().map(|f| f.to_string()).collect(),
            min: features.iter().map(|f| value(format!("min:{f}"))).collect::<Result<_>>()?,
            max: features.iter().map(|f| value(format!("max:{f}"))).collect::<Result<_>>()?,
        }))
    }

    /// One expression per feature computing its scaled value (Float64, same name).
    pub fn exprs(&self) -> Vec<Expr> {
        self.features
            .iter()
            .enumerate()
            .map(|(i, f)| {
                ((col(f.as_str()).cast(DataType::Float64) - lit(self.min[i])) / lit(self.range(i))).alias(f.as_str())
            })
            .collect()
    }

    /// `frame` with every feature column replaced by its scaled value.
    pub fn transform_frame(&self, frame: &DataFrame) -> Result<DataFrame> {
        for feature in &self.features {
            check_column(frame, feature)?;
        }
        frame.clone().lazy().with_columns(self.exprs()).collect().map_err(polars_err("scaling the features"))
    }

    /// Minimum and maximum per feature, as a table.
    pub fn table(&self) -> Table {
        Table::new(
            vec!["feature".into(), "min".into(), "max".into()],
            self.features
                .iter()
                .enumerate()
                .map(|(i, f)| vec![f.clone().into(), self.min[i].into(), self.max[i].into()])
                .collect(),
        )
        .with_caption("min-max scaler (fitted on the training rows)")
    }
}

/// How the test rows are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SplitStrategy {
    /// A seeded random `test_fraction` of each class (scikit-learn's `stratify=y`).
    #[default]
    Stratified,
    /// The rows of the most recent chart dates, about `test_fraction` of all rows (whole days:
    /// every row of the boundary day goes to test). Needs `snapshot_date`.
    LatestDates,
    /// The last `test_fraction` of the rows in the data's own order, as the Python workshop does
    /// (scikit-learn's `train_test_split(shuffle=False)`); validation is still stratified.
    Ordered,
    /// Whole songs: every row of one `spotify_id` lands in the same split, so no song the model
    /// trained on is scored as test or validation. Songs are shuffled (seeded) and stratified by
    /// their main country (the one whose chart holds most of their rows), so every country with
    /// enough songs keeps some in each split. Needs `spotify_id`.
    Grouped,
}

impl SplitStrategy {
    /// The name [`FromStr`](std::str::FromStr) reads: `stratified`, `ordered`, `latest-dates`
    /// or `grouped`.
    pub fn name(self) -> &'static str {
        match self {
            SplitStrategy::Stratified => "stratified",
            SplitStrategy::LatestDates => "latest-dates",
            SplitStrategy::Ordered => "ordered",
            SplitStrategy::Grouped => "grouped",
        }
    }
}

impl std::fmt::Display for SplitStrategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for SplitStrategy {
    type Err = PrepareError;

    /// `stratified`, `ordered`, `latest-dates` or `grouped` (the notebooks' `split` parameter).
    fn from_str(name: &str) -> Result<Self> {
        match name {
            "stratified" => Ok(SplitStrategy::Stratified),
            "ordered" => Ok(SplitStrategy::Ordered),
            "latest-dates" => Ok(SplitStrategy::LatestDates),
            "grouped" => Ok(SplitStrategy::Grouped),
            other => Err(PrepareError::InvalidOption {
                option: "split",
                reason: format!("'{other}' is not a split; use stratified, ordered, latest-dates or grouped"),
            }),
        }
    }
}

/// How [`PreparedData::new`] splits the rows.
#[derive(Clone, Debug, PartialEq)]
pub struct SplitOptions {
    /// Share of all rows held out as test (0.2).
    pub test_fraction: f64,
    /// Share of the remaining rows held out as validation (0.2).
    pub validation_fraction: f64,
    /// Seeds the shuffle; the same seed gives the same split.
    pub seed: u64,
    pub strategy: SplitStrategy,
}

impl Default for SplitOptions {
    fn default() -> Self {
        SplitOptions { test_fraction: 0.2, validation_fraction: 0.2, seed: 42, strategy: SplitStrategy::Stratified }
    }
}

impl SplitOptions {
    pub fn with_seed(seed: u64) -> Self {
        SplitOptions { seed, ..Default::default() }
    }

    fn check(&self) -> Result<()> {
        for (option, value) in
            [("test_fraction", self.test_fraction), ("validation_fraction", self.validation_fraction)]
        {
            if !(0.0..1.0).contains(&value) {
                return Err(PrepareError::InvalidOption { option, reason: format!("{value} is not in [0, 1)") });
            }
        }
        Ok(())
    }
}

/// The rows of each split, unscaled, in the order the matrices of [`PreparedData`] hold them: the
/// song ([`SONG`]), its country ([`TARGET`]), the chart day when the data has one, and the model's
/// features. The other columns of the merged data (names, artists, albums, chart positions) stay
/// in `ChartData`: on the full upstream file a copy of them per split cost about 400 MB per
/// prepared dataset, and a notebook comparing two splits holds two.
#[derive(Clone)]
pub struct Splits {
    pub train: DataFrame,
    pub validation: DataFrame,
    pub test: DataFrame,
}

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

/// Marks, per class (`LABEL`), the first `fraction` of rows in shuffle-key order as held out.
/// At least one row of every class stays in.
fn mark_stratified_holdout(frame: LazyFrame, fraction: f64) -> Result<LazyFrame> {
    let window = |e: Expr| e.over([col(LABEL)]).map_err(polars_err("per-class window"));
    let class_size = window(len())?.cast(DataType::Float64);
    let wanted = (class_size.clone() * lit(fraction) + lit(0.5)).floor();
    let cap = class_size - lit(1.0);
    let held_out_count = when(wanted.clone().lt(cap.clone())).then(wanted).otherwise(cap);
    let position_in_class = (col("__position") - window(col("__position").min())?).cast(DataType::Float64);
    Ok(frame
        .sort([LABEL, SHUFFLE_KEY], SortMultipleOptions::default())
        .with_row_index("__position", None)
        .with_column(position_in_class.lt(held_out_count).alias(HELD_OUT))
        .drop(cols(["__position"])))
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

fn check_column(frame: &DataFrame, column: &str) -> Result<()> {
    let c = frame.column(column).map_err(|_| PrepareError::MissingColumn(column.to_string()))?;
    if c.null_count() > 0 {
        return Err(PrepareError::Nulls { column: column.to_string(), nulls: c.null_count() });
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

fn label_vector(frame: &DataFrame) -> Result<Vec<u32>> {
    let labels = frame.column(LABEL).and_then(|c| c.u32().cloned()).map_err(polars_err("class labels"))?;
    Ok(labels.into_no_null_iter().collect())
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
        let rows = frame.height();
        let encoder = LabelEncoder::fit(frame, TARGET)?;

        // A seeded permutation decides the order within each class (and of the final rows).
        let mut shuffle: Vec<u32> = (0..rows as u32).collect();
        shuffle.shuffle(&mut ChaCha8Rng::seed_from_u64(options.seed));
        let keyed = frame
            .hstack(&[Column::new(SHUFFLE_KEY.into(), shuffle)])
            .map_err(polars_err("adding the shuffle key"))?
            .lazy()
            .with_column(encoder.encode_expr(TARGET).alias(LABEL));

        let with_test = match options.strategy {
            SplitStrategy::Stratified => mark_stratified_holdout(keyed, options.test_fraction)?,
            SplitStrategy::LatestDates => {
                if !frame.schema().contains("snapshot_date") {
                    return Err(PrepareError::NoDates);
                }
                let cutoff = latest_dates_cutoff(frame, options.test_fraction)?;
                keyed.with_column(col("snapshot_date").cast(DataType::Int32).gt_eq(lit(cutoff)).alias(HELD_OUT))
            }
            SplitStrategy::Ordered => {
                // scikit-learn rounds the test share up: ceil(0.2 * rows) rows.
                let first_test_row = rows - (rows as f64 * options.test_fraction).ceil() as usize;
                let held_out: Vec<bool> = (0..rows).map(|row| row >= first_test_row).collect();
                keyed.with_column(lit(Series::new(HELD_OUT.into(), held_out)).alias(HELD_OUT))
            }
            SplitStrategy::Grouped => {
                if !frame.schema().contains(SONG) {
                    return Err(PrepareError::NoSongIds);
                }
                check_column(frame, SONG)?;
                let songs = song_assignment(frame, &encoder, options)?;
                keyed.join(songs, [col(SONG)], [col(SONG)], JoinArgs::new(JoinType::Left))
            }
        };
        let with_test = with_test.collect().map_err(polars_err("choosing the test rows"))?;
        let in_order = |lf: LazyFrame, held_out: bool| {
            lf.filter(col(HELD_OUT).eq(lit(held_out)))
                .sort([SHUFFLE_KEY], SortMultipleOptions::default())
                .drop(cols([HELD_OUT]))
        };
        let test = in_order(with_test.clone().lazy(), true);
        let rest = match options.strategy {
            // The songs were already split three ways; validation takes the validation songs.
            SplitStrategy::Grouped => {
                in_order(with_test.lazy(), false).with_column(col(VALIDATION_SONG).alias(HELD_OUT))
            }
            _ => mark_stratified_holdout(in_order(with_test.lazy(), false), options.validation_fraction)?,
        }
        .collect()
        .map_err(polars_err("choosing the validation rows"))?;
        let validation = in_order(rest.clone().lazy(), true);
        let train = in_order(rest.lazy(), false);
        let collect = |lf: LazyFrame, split: &'static str| -> Result<DataFrame> {
            let frame = lf.collect().map_err(polars_err(format!("collecting the {split} split")))?;
            if frame.height() == 0 && split == "train" {
                return Err(PrepareError::EmptySplit { split, rows });
            }
            Ok(frame)
        };
        let (train, validation, test) =
            (collect(train, "train")?, collect(validation, "validation")?, collect(test, "test")?);

        let scaler = MinMaxScaler::fit(&train, features)?;
        let features: Vec<String> = features.iter().map(|f| f.to_string()).collect();
        let matrix = |frame: &DataFrame| feature_matrix(&scaler.transform_frame(frame)?, &features);
        let kept: Vec<&str> = [SONG, TARGET, DATE]
            .into_iter()
            .filter(|c| train.schema().contains(c))
            .chain(features.iter().map(String::as_str))
            .collect();
        let strip =
            |frame: DataFrame| frame.select(kept.iter().copied()).map_err(polars_err("keeping the split's columns"));
        Ok(PreparedData {
            x_train: matrix(&train)?,
            y_train: label_vector(&train)?,
            x_val: matrix(&validation)?,
            y_val: label_vector(&validation)?,
            x_test: matrix(&test)?,
            y_test: label_vector(&test)?,
            splits: Splits { train: strip(train)?, validation: strip(validation)?, test: strip(test)? },
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
        let s = &self.splits;
        let splits = [("train", &s.train), ("validation", &s.validation), ("test", &s.test)];
        let mut rows = Vec::with_capacity(4);
        for (name, frame) in splits {
            rows.push(ceiling_of(name, frame, &self.features)?);
        }
        let all = concat_frames(&[&s.train, &s.validation, &s.test])?;
        rows.push(ceiling_of("all", &all, &self.features)?);
        Ok(AccuracyCeiling { rows, n_classes: self.n_classes() })
    }

    /// Writes `<dir>/artifacts/`: `scaler.json`, `label_encoder.json`, `X_train.parquet`,
    /// `X_test.parquet` (scaled features, one column per feature) and `y_test.json`
    /// (`{"country": [codes], "label": [class indices]}`). Returns the artifacts folder.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<PathBuf> {
        let artifacts = dir.as_ref().join(model_folder::ARTIFACTS_DIR);
        std::fs::create_dir_all(&artifacts).map_err(io_err(&artifacts))?;
        write_json(&artifacts.join(model_folder::SCALER_FILE), &self.scaler)?;
        write_json(&artifacts.join(model_folder::LABEL_ENCODER_FILE), &self.encoder)?;
        self.write_matrix(&artifacts.join(model_folder::X_TRAIN_FILE), &self.x_train)?;
        self.write_matrix(&artifacts.join(model_folder::X_TEST_FILE), &self.x_test)?;
        let codes = self.encoder.inverse_transform(&self.y_test)?;
        write_json(
            &artifacts.join(model_folder::Y_TEST_FILE),
            &serde_json::json!({ "country": codes, "label": self.y_test }),
        )?;
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

/// The chart date column (present in the full upstream data, absent from the small sample).
const DATE: &str = "snapshot_date";

/// The first and last chart day of `frames` together (`""` when unknown or without rows).
fn date_range(frames: &[&DataFrame]) -> (String, String) {
    let range = concat_frames(frames).ok().and_then(|all| {
        all.lazy().select([col(DATE).min().alias("first"), col(DATE).max().alias("last")]).collect().ok()
    });
    let day = |name: &str| -> String {
        range
            .as_ref()
            .and_then(|r| r.column(name).ok().and_then(|c| c.get(0).ok()).map(|v| v.to_string()))
            .filter(|v| v != "null")
            .unwrap_or_default()
    };
    (day("first"), day("last"))
}

fn concat_frames(frames: &[&DataFrame]) -> Result<DataFrame> {
    let mut all = frames[0].clone();
    for frame in &frames[1..] {
        all.vstack_mut(frame).map_err(polars_err("joining the splits"))?;
    }
    Ok(all)
}

/// One split's row of [`AccuracyCeiling`].
#[derive(Clone, Debug, PartialEq)]
pub struct CeilingRow {
    pub split: &'static str,
    pub rows: usize,
    /// Distinct combinations of feature values: what a model can tell apart.
    pub distinct_inputs: usize,
    /// Distinct (feature values, country) pairs: a song charting in one country on many days
    /// is one pair.
    pub distinct_pairs: usize,
    /// The best accuracy any model of these features can reach on this split's rows.
    pub ceiling: f64,
}

/// The best accuracy any model could reach on each split with the chosen features
/// ([`PreparedData::accuracy_ceiling`]).
#[derive(Clone, Debug, PartialEq)]
pub struct AccuracyCeiling {
    pub rows: Vec<CeilingRow>,
    pub n_classes: usize,
}

impl AccuracyCeiling {
    /// The row of `split` (`train`, `validation`, `test` or `all`).
    pub fn get(&self, split: &str) -> Option<&CeilingRow> {
        self.rows.iter().find(|r| r.split == split)
    }

    /// Chance: one class in `n_classes`, what guessing scores when every class is equally common.
    pub fn chance(&self) -> f64 {
        1.0 / self.n_classes.max(1) as f64
    }

    pub fn table(&self) -> Table {
        let rows = self
            .rows
            .iter()
            .map(|r| {
                vec![
                    Cell::from(r.split),
                    (r.rows as f64).into(),
                    (r.distinct_inputs as f64).into(),
                    (r.distinct_pairs as f64).into(),
                    r.ceiling.into(),
                    self.chance().into(),
                ]
            })
            .collect();
        Table::new(
            ["split", "rows", "distinct inputs", "distinct (input, country) pairs", "best possible accuracy", "chance"]
                .map(String::from)
                .to_vec(),
            rows,
        )
        .with_caption("the accuracy ceiling: identical inputs get identical answers")
    }
}

impl crate::display::ToHtml for AccuracyCeiling {
    fn to_html(&self) -> String {
        self.table().to_html()
    }
}

fn ceiling_of(split: &'static str, frame: &DataFrame, features: &[String]) -> Result<CeilingRow> {
    let rows = frame.height();
    if rows == 0 {
        return Ok(CeilingRow { split, rows, distinct_inputs: 0, distinct_pairs: 0, ceiling: 0.0 });
    }
    let inputs: Vec<Expr> = features.iter().map(|f| col(f.as_str())).collect();
    let mut by_pair = inputs.clone();
    by_pair.push(col(TARGET));
    let pairs = frame
        .clone()
        .lazy()
        .group_by(by_pair)
        .agg([len().alias(ROWS)])
        .collect()
        .map_err(polars_err(format!("counting (input, country) pairs of the {split} split")))?;
    let best = pairs
        .clone()
        .lazy()
        .group_by(inputs)
        .agg([col(ROWS).max().alias(ROWS)])
        .collect()
        .map_err(polars_err(format!("counting the inputs of the {split} split")))?;
    let right: f64 = best
        .column(ROWS)
        .and_then(|c| c.cast(&DataType::Float64))
        .map_err(polars_err(ROWS))?
        .f64()
        .map_err(polars_err(ROWS))?
        .sum()
        .unwrap_or(0.0);
    Ok(CeilingRow {
        split,
        rows,
        distinct_inputs: best.height(),
        distinct_pairs: pairs.height(),
        ceiling: right / rows as f64,
    })
}

/// One row per song: `spotify_id`, whether it is a test song (`HELD_OUT`) and whether it is a
/// validation song (`VALIDATION_SONG`). Songs are stratified by their main country: the one
/// with most of their rows (ties: the first code alphabetically).
fn song_assignment(frame: &DataFrame, encoder: &LabelEncoder, options: &SplitOptions) -> Result<LazyFrame> {
    let songs = frame
        .clone()
        .lazy()
        .group_by([col(SONG), col(TARGET)])
        .agg([len().alias(ROWS)])
        .sort([SONG, ROWS, TARGET], SortMultipleOptions::default().with_order_descending_multi([false, true, false]))
        .unique_stable(Some(cols([SONG])), UniqueKeepStrategy::First)
        .sort([SONG], SortMultipleOptions::default())
        .select([col(SONG), encoder.encode_expr(TARGET).alias(LABEL)])
        .collect()
        .map_err(polars_err("finding each song's main country"))?;
    // The same seeded permutation as for rows, over songs in `spotify_id` order.
    let mut shuffle: Vec<u32> = (0..songs.height() as u32).collect();
    shuffle.shuffle(&mut ChaCha8Rng::seed_from_u64(options.seed));
    let songs = songs.hstack(&[Column::new(SHUFFLE_KEY.into(), shuffle)]).map_err(polars_err("shuffling the songs"))?;
    let with_test = mark_stratified_holdout(songs.lazy(), options.test_fraction)?
        .collect()
        .map_err(polars_err("choosing the test songs"))?;
    let validation =
        mark_stratified_holdout(with_test.clone().lazy().filter(col(HELD_OUT).not()), options.validation_fraction)?
            .select([col(SONG), col(HELD_OUT).alias(VALIDATION_SONG)]);
    Ok(with_test
        .lazy()
        .select([col(SONG), col(HELD_OUT)])
        .join(validation, [col(SONG)], [col(SONG)], JoinArgs::new(JoinType::Left))
        .with_column(col(VALIDATION_SONG).fill_null(lit(false))))
}

/// The earliest date (days since 1970, as polars stores dates) of the most recent chart days
/// that together hold at least `fraction` of the rows.
fn latest_dates_cutoff(frame: &DataFrame, fraction: f64) -> Result<i32> {
    check_column(frame, "snapshot_date")?;
    let wanted = ((frame.height() as f64 * fraction).round() as usize).clamp(1, frame.height().max(1));
    let dates = frame
        .clone()
        .lazy()
        .select([col("snapshot_date").cast(DataType::Int32).sort(SortOptions::default().with_order_descending(true))])
        .collect()
        .map_err(polars_err("sorting snapshot_date"))?;
    let value = dates
        .column("snapshot_date")
        .and_then(|c| c.get(wanted - 1).map(|v| v.extract::<i32>()))
        .map_err(polars_err("snapshot_date"))?;
    value.ok_or(PrepareError::EmptySplit { split: "test", rows: frame.height() })
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let file = File::create(path).map_err(io_err(path))?;
    serde_json::to_writer_pretty(std::io::BufWriter::new(file), value)
        .map_err(|source| PrepareError::Json { path: path.to_path_buf(), source })
}

/// What a model was fitted on, in a few fields that compare cheaply: the split (strategy and
/// seed), the feature list, the row counts and a hash of every split's rows. Fitted models keep
/// the fingerprint of the data they were fitted on (`Classifier::fitted_on` in
/// [`crate::train`]), so that scoring them on other data (another split, another feature list)
/// is refused instead of giving a number that looks comparable and is not.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DataFingerprint {
    /// The split strategy (`stratified`, `grouped`, ...), or `rows given directly`.
    pub split: String,
    /// The split's seed (none for rows given directly).
    pub seed: Option<u64>,
    /// The feature columns, in model order.
    pub features: Vec<String>,
    /// Rows of train, validation and test.
    pub rows: [usize; 3],
    pub classes: usize,
    /// FNV-1a over the values and labels of the three splits, in order.
    pub rows_hash: u64,
}

impl DataFingerprint {
    /// The fingerprint of rows given to a model directly (`fit_rows`): `n_features` unnamed
    /// columns, all rows training rows.
    pub fn of_rows(x: &[f32], y: &[u32], n_features: usize, n_classes: usize) -> DataFingerprint {
        DataFingerprint {
            split: "rows given directly".to_string(),
            seed: None,
            features: (1..=n_features).map(|i| format!("column {i}")).collect(),
            rows: [y.len(), 0, 0],
            classes: n_classes,
            rows_hash: rows_hash(&[(x, y)]),
        }
    }

    /// What differs between `self` (what a model was fitted on) and `other`, one phrase each;
    /// empty when they are the same data.
    pub fn differences(&self, other: &DataFingerprint) -> Vec<String> {
        let mut found = Vec::new();
        let seed = |s: Option<u64>| s.map(|s| format!(", seed {s}")).unwrap_or_default();
        if self.split != other.split || self.seed != other.seed {
            found.push(format!(
                "split {}{} instead of {}{}",
                self.split,
                seed(self.seed),
                other.split,
                seed(other.seed)
            ));
        }
        if self.features != other.features {
            found.push(format!("features [{}] instead of [{}]", self.features.join(", "), other.features.join(", ")));
        }
        if self.classes != other.classes {
            found.push(format!("{} classes instead of {}", self.classes, other.classes));
        }
        if self.rows != other.rows {
            let rows = |r: [usize; 3]| format!("{}/{}/{}", r[0], r[1], r[2]);
            found.push(format!("train/validation/test rows {} instead of {}", rows(self.rows), rows(other.rows)));
        }
        if found.is_empty() && self.rows_hash != other.rows_hash {
            let why = "other data, or prepared again after it changed";
            found.push(format!("the same split settings and sizes but other rows ({why})"));
        }
        found
    }
}

impl std::fmt::Display for DataFingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} split", self.split)?;
        if let Some(seed) = self.seed {
            write!(f, " (seed {seed})")?;
        }
        write!(
            f,
            ", {} features, {}/{}/{} train/validation/test rows",
            self.features.len(),
            self.rows[0],
            self.rows[1],
            self.rows[2]
        )
    }
}

/// FNV-1a (64 bit) over every value's bits and every label: stable across Rust versions and runs,
/// and fast enough (a few hundred thousand words) to compute whenever a model is fitted.
fn rows_hash(splits: &[(&[f32], &[u32])]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut word = |w: u32| {
        hash ^= w as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    };
    for (x, y) in splits {
        // The lengths first, so rows moved from one split to the next change the hash.
        word(x.len() as u32);
        x.iter().for_each(|v| word(v.to_bits()));
        word(y.len() as u32);
        y.iter().copied().for_each(&mut word);
    }
    hash
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
            rows_hash: rows_hash(&[
                (&self.x_train, &self.y_train),
                (&self.x_val, &self.y_val),
                (&self.x_test, &self.y_test),
            ]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ceiling_counts_identical_inputs_once() {
        // Input (1, 1) charts in A twice and in B once: at best 2 of its 3 rows are right.
        // Input (2, 5) charts only in B: both rows can be right.
        let frame = df!(
            "a" => [1.0, 1.0, 1.0, 2.0, 2.0],
            "b" => [1.0, 1.0, 1.0, 5.0, 5.0],
            TARGET => ["A", "A", "B", "B", "B"],
        )
        .unwrap();
        let row = ceiling_of("test", &frame, &["a".to_string(), "b".to_string()]).unwrap();
        assert_eq!((row.rows, row.distinct_inputs, row.distinct_pairs), (5, 2, 3));
        assert!((row.ceiling - 4.0 / 5.0).abs() < 1e-12, "{}", row.ceiling);
        // With only feature `a`, nothing changes here; an empty split has no ceiling.
        let empty = ceiling_of("validation", &frame.head(Some(0)), &["a".to_string()]).unwrap();
        assert_eq!((empty.rows, empty.ceiling), (0, 0.0));
    }
}
