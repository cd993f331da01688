//! Step 2 of the preparation: which rows are train, validation and test.
//!
//! [`SplitOptions`] says how ([`SplitStrategy`]: a seeded stratified draw, the latest chart days,
//! the data's own order, or whole songs) and `split_rows` does it with polars expressions:
//! a seeded permutation of the rows (a `ChaCha8` shuffle, so the same seed gives the same split on
//! every machine) orders the rows within each class, the first `test_fraction` of each class is
//! held out as test, then `validation_fraction` of the rest as validation. The result, [`Splits`],
//! keeps only the columns later steps read.

use polars::prelude::*;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::encode::LabelEncoder;
use super::error::{check_column, polars_err, PrepareError, Result};
use crate::data::columns::{COUNTRY as TARGET, SNAPSHOT_DATE as DATE, SPOTIFY_ID as SONG};

/// Names of the helper columns added while splitting (removed again afterwards).
const LABEL: &str = "__label";
const SHUFFLE_KEY: &str = "__shuffle_key";
const HELD_OUT: &str = "__held_out";
const VALIDATION_SONG: &str = "__validation_song";
const ROWS: &str = "__rows";
const ROW: &str = "__row";
const POSITION: &str = "__position";

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

/// How `PreparedData::new` splits the rows.
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

    pub(super) fn check(&self) -> Result<()> {
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

/// The rows of each split, unscaled, in the order the matrices of `PreparedData` hold them: the
/// song (`prepare::SONG`), its country (`prepare::TARGET`), the chart day when the data has one,
/// and the model's features as `f32` (the precision the model reads; the scaler was fitted on the
/// values as they were). The other columns of the merged data (names, artists, albums, chart positions) stay in `ChartData`:
/// on the full upstream file a copy of them per split cost about 400 MB per prepared dataset, and
/// a notebook comparing two splits holds two.
#[derive(Clone)]
pub struct Splits {
    pub train: DataFrame,
    pub validation: DataFrame,
    pub test: DataFrame,
}

/// Splits `frame` as `options` say, after checking that the columns a strategy needs are there.
/// Returns the rows of each split ([`Splits`]: the song, the country, the chart day when present
/// and `features`, in the order of the final matrices) and each split's class labels.
///
/// Only those columns are taken from `frame` before anything is copied: the merged chart data
/// also holds names, artists and albums, and each step of the split (the test rows, the rest, the
/// validation rows) materialises what it is given; on the full 1.1 M-row file copying every
/// column took several hundred MB more.
pub(super) fn split_rows(
    frame: &DataFrame,
    features: &[&str],
    encoder: &LabelEncoder,
    options: &SplitOptions,
) -> Result<(Splits, [Vec<u32>; 3])> {
    let rows = frame.height();
    let kept: Vec<&str> = [SONG, TARGET, DATE]
        .into_iter()
        .filter(|c| frame.schema().contains(c))
        .chain(features.iter().copied())
        .collect();
    let frame = frame.select(kept.iter().copied()).map_err(polars_err("keeping the split's columns"))?;
    // The rows are chosen on a narrow frame (row number, shuffle key, class, and the chart day or
    // song when the strategy reads them); each split then takes its rows of the kept columns
    // once, in its final order. Sorting and filtering the kept columns at every step instead took
    // several hundred MB more and more time on the 1.1 M-row file; the rows and their order are
    // the same.
    let mut shuffle: Vec<u32> = (0..rows as u32).collect();
    // A seeded permutation decides the order within each class (and of the final rows).
    shuffle.shuffle(&mut ChaCha8Rng::seed_from_u64(options.seed));
    let mut narrow: Vec<&str> = vec![TARGET];
    match options.strategy {
        SplitStrategy::LatestDates if frame.schema().contains(DATE) => narrow.push(DATE),
        SplitStrategy::Grouped if frame.schema().contains(SONG) => narrow.push(SONG),
        _ => {}
    }
    let keyed = frame
        .select(narrow.iter().copied())
        .and_then(|narrow| narrow.hstack(&[Column::new(SHUFFLE_KEY.into(), shuffle)]))
        .map_err(polars_err("adding the shuffle key"))?
        .lazy()
        .with_row_index(ROW, None)
        .with_column(encoder.encode_expr(TARGET).alias(LABEL))
        .drop(cols([TARGET]));

    let with_test = match options.strategy {
        SplitStrategy::Stratified => mark_stratified_holdout(keyed, options.test_fraction)?,
        SplitStrategy::LatestDates => {
            if !frame.schema().contains(DATE) {
                return Err(PrepareError::NoDates);
            }
            let cutoff = latest_dates_cutoff(&frame, options.test_fraction)?;
            keyed.with_column(col(DATE).cast(DataType::Int32).gt_eq(lit(cutoff)).alias(HELD_OUT))
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
            check_column(&frame, SONG)?;
            let songs = song_assignment(&frame, encoder, options)?;
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
        SplitStrategy::Grouped => in_order(with_test.lazy(), false).with_column(col(VALIDATION_SONG).alias(HELD_OUT)),
        _ => mark_stratified_holdout(in_order(with_test.lazy(), false), options.validation_fraction)?,
    }
    .collect()
    .map_err(polars_err("choosing the validation rows"))?;
    let validation = in_order(rest.clone().lazy(), true);
    let train = in_order(rest.lazy(), false);
    // Each split's labels, and its rows of the kept columns in the chosen order.
    let collect = |lf: LazyFrame, split: &'static str| -> Result<(DataFrame, Vec<u32>)> {
        let chosen =
            lf.select([col(ROW), col(LABEL)]).collect().map_err(polars_err(format!("collecting the {split} split")))?;
        if chosen.height() == 0 && split == "train" {
            return Err(PrepareError::EmptySplit { split, rows });
        }
        let labels = chosen.column(LABEL).and_then(|c| c.u32().cloned()).map_err(polars_err("class labels"))?;
        let taken = chosen
            .column(ROW)
            .and_then(|c| c.idx().cloned())
            .and_then(|rows| frame.take(&rows))
            .map_err(polars_err(format!("taking the rows of the {split} split")))?;
        Ok((taken, labels.into_no_null_iter().collect()))
    };
    let (train, y_train) = collect(train, "train")?;
    let (validation, y_val) = collect(validation, "validation")?;
    let (test, y_test) = collect(test, "test")?;
    Ok((Splits { train, validation, test }, [y_train, y_val, y_test]))
}

/// Marks, per class (`LABEL`), the first `fraction` of rows in shuffle-key order as held out.
/// At least one row of every class stays in.
fn mark_stratified_holdout(frame: LazyFrame, fraction: f64) -> Result<LazyFrame> {
    let window = |e: Expr| e.over([col(LABEL)]).map_err(polars_err("per-class window"));
    let class_size = window(len())?.cast(DataType::Float64);
    let wanted = (class_size.clone() * lit(fraction) + lit(0.5)).floor();
    let cap = class_size - lit(1.0);
    let held_out_count = when(wanted.clone().lt(cap.clone())).then(wanted).otherwise(cap);
    let position_in_class = (col(POSITION) - window(col(POSITION).min())?).cast(DataType::Float64);
    Ok(frame
        .sort([LABEL, SHUFFLE_KEY], SortMultipleOptions::default())
        .with_row_index(POSITION, None)
        .with_column(position_in_class.lt(held_out_count).alias(HELD_OUT))
        .drop(cols([POSITION])))
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
    check_column(frame, DATE)?;
    let wanted = ((frame.height() as f64 * fraction).round() as usize).clamp(1, frame.height().max(1));
    let dates = frame
        .clone()
        .lazy()
        .select([col(DATE).cast(DataType::Int32).sort(SortOptions::default().with_order_descending(true))])
        .collect()
        .map_err(polars_err(format!("sorting {DATE}")))?;
    let value =
        dates.column(DATE).and_then(|c| c.get(wanted - 1).map(|v| v.extract::<i32>())).map_err(polars_err(DATE))?;
    value.ok_or(PrepareError::EmptySplit { split: "test", rows: frame.height() })
}
