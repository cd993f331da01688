//! What both baselines do the same way around their own algorithm.
//!
//! Before fitting: check the training matrix ([`check_rows`]), keep to the row budget
//! ([`budgeted_rows`]: every row when the distinct rows fit in it, else a stratified subsample),
//! and merge identical rows into one row with a count ([`MergedRows`]), which both objectives
//! weigh exactly as the copies it stands for. After fitting: the record every fitted baseline
//! keeps ([`FitRecord`]: time, the data it was fitted on, the subsample note), stamped by
//! [`fit_within_budget`], the [`Learner::fit`](crate::train::Learner::fit) of both. And
//! [`argmax`], how both turn scores or class counts into a class.

use std::time::Instant;

use jukebox_nn::thousands;

use crate::prepare::{DataFingerprint, PreparedData};
use crate::train::error::{Result, TrainError};
use crate::train::rows::TrainingRows;

/// The baselines' default row budget: they fit every training row when those hold at most this
/// many distinct rows, else a stratified subsample of this many rows ([`budgeted_rows`]).
pub const DEFAULT_MAX_TRAIN_ROWS: usize = 100_000;

/// Identical training rows (same features, same label) merged into one with a count. The
/// chart data repeats a song on every day it stays in a country's chart, so the full data's
/// 700,000 training rows hold only a few tens of thousands of distinct rows. Both baselines'
/// objectives are sums over rows, so a row counted `c` times weighs exactly as its `c` copies:
/// fitting the merged rows fits every row, in the time of the distinct ones.
pub(super) struct MergedRows {
    /// Row-major `len x n_features`, first occurrences in their original order.
    pub(super) x: Vec<f32>,
    pub(super) y: Vec<u32>,
    pub(super) counts: Vec<u32>,
}

impl MergedRows {
    pub(super) fn of(x: &[f32], y: &[u32], n_features: usize) -> MergedRows {
        let bits: Vec<u32> = x.iter().map(|v| v.to_bits()).collect();
        let mut index: std::collections::HashMap<(&[u32], u32), usize> = std::collections::HashMap::new();
        let mut merged = MergedRows { x: Vec::new(), y: Vec::new(), counts: Vec::new() };
        for (i, (row, &label)) in bits.chunks_exact(n_features).zip(y).enumerate() {
            let next = merged.y.len();
            let at = *index.entry((row, label)).or_insert(next);
            if at == next {
                merged.x.extend_from_slice(&x[i * n_features..(i + 1) * n_features]);
                merged.y.push(label);
                merged.counts.push(0);
            }
            merged.counts[at] += 1;
        }
        merged
    }

    pub(super) fn len(&self) -> usize {
        self.y.len()
    }
}

/// Distinct (features, label) rows among `y.len()` rows.
fn distinct_rows(x: &[f32], y: &[u32], n_features: usize) -> usize {
    let bits: Vec<u32> = x.iter().map(|v| v.to_bits()).collect();
    let rows: std::collections::HashSet<(&[u32], u32)> = bits.chunks_exact(n_features).zip(y.iter().copied()).collect();
    rows.len()
}

/// The training rows a baseline with the row budget `max_rows` fits on: every training row when
/// they hold at most `max_rows` *distinct* rows (identical rows cost one; see the module doc),
/// else a stratified subsample of `max_rows` rows drawn with the split's seed
/// ([`TrainingRows`]); with "trained on N of M rows" when it is a subsample. The baselines bench
/// gives scikit-learn exactly these rows.
pub fn budgeted_rows(data: &PreparedData, max_rows: Option<usize>) -> (TrainingRows<'_>, Option<String>) {
    let fits = |budget: usize| {
        data.n_train() <= budget || distinct_rows(&data.x_train, &data.y_train, data.n_features()) <= budget
    };
    let budget = max_rows.filter(|&budget| !fits(budget));
    let rows = TrainingRows::new(data, budget, data.options.seed);
    let note =
        rows.is_subsample().then(|| format!("trained on {} of {} rows", thousands(rows.n_train()), thousands(rows.of)));
    (rows, note)
}

/// What a fitted baseline records about its fit, beside the model itself.
#[derive(Clone, Debug)]
pub(super) struct FitRecord {
    /// Wall time of the fit (with `Learner::fit`, the subsample's selection included).
    pub(super) fit_seconds: f64,
    pub(super) fitted_on: DataFingerprint,
    /// "trained on N of M rows" when fitted on a subsample.
    pub(super) rows_note: Option<String>,
}

impl FitRecord {
    /// The record of a fit on every row given (no subsample) that started at `started`.
    pub(super) fn new(started: Instant, fitted_on: DataFingerprint) -> FitRecord {
        FitRecord { fit_seconds: started.elapsed().as_secs_f64(), fitted_on, rows_note: None }
    }
}

/// A fitted baseline, whose record [`fit_within_budget`] stamps.
pub(super) trait Recorded {
    fn record_mut(&mut self) -> &mut FitRecord;
}

/// `Learner` for a baseline's settings `$learner` (with a `max_train_rows` budget and its own
/// `fit_rows`), fitting within the budget through [`fit_within_budget`], and the fitted
/// `$fitted`'s [`Recorded`] access to its `record` field. Both baselines are fitted this way.
macro_rules! baseline_learner {
    ($learner:ty => $fitted:ty) => {
        impl crate::train::learner::Learner for $learner {
            type Fitted = $fitted;
            /// Fits on the training split, or on a stratified subsample of it when it has more
            /// than `max_train_rows` rows (the subsample's selection is part of the fit time).
            fn fit(&self, data: &crate::prepare::PreparedData) -> crate::train::error::Result<$fitted> {
                super::fitting::fit_within_budget(data, self.max_train_rows, |x, y, n_features, n_classes| {
                    self.fit_rows(x, y, n_features, n_classes)
                })
            }
        }

        impl super::fitting::Recorded for $fitted {
            fn record_mut(&mut self) -> &mut super::fitting::FitRecord {
                &mut self.record
            }
        }
    };
}
pub(super) use baseline_learner;

/// A baseline's `Learner::fit`: `fit_rows` on the training rows of `data` within the row budget
/// `max_rows` ([`budgeted_rows`]), recorded as fitted on `data`, with the subsample's note and
/// the whole time (the subsample's selection is part of the fit).
pub(super) fn fit_within_budget<F: Recorded>(
    data: &PreparedData,
    max_rows: Option<usize>,
    fit_rows: impl FnOnce(&[f32], &[u32], usize, usize) -> Result<F>,
) -> Result<F> {
    let started = Instant::now();
    let (rows, rows_note) = budgeted_rows(data, max_rows);
    let mut fitted = fit_rows(&rows.x_train, &rows.y_train, data.n_features(), data.n_classes())?;
    *fitted.record_mut() =
        FitRecord { fit_seconds: started.elapsed().as_secs_f64(), fitted_on: data.fingerprint(), rows_note };
    Ok(fitted)
}

/// Checks a training matrix: `x` row-major `y.len() x n_features`, finite, labels below `n_classes`.
pub(super) fn check_rows(model: &'static str, x: &[f32], y: &[u32], n_features: usize, n_classes: usize) -> Result<()> {
    let fail = |message: String| Err(TrainError::Baseline { model, message });
    if y.is_empty() {
        return fail("the training split is empty".into());
    }
    if n_features == 0 || x.len() != y.len() * n_features {
        return fail(format!(
            "the training matrix holds {} values, not {} rows x {n_features} features",
            x.len(),
            y.len()
        ));
    }
    if let Some(&label) = y.iter().find(|&&label| label as usize >= n_classes) {
        return fail(format!("training label {label} is not one of the {n_classes} classes"));
    }
    if let Some(v) = x.iter().find(|v| !v.is_finite()) {
        return fail(format!("the training matrix holds a non-finite value ({v})"));
    }
    Ok(())
}

/// Index of the largest value, the first one on ties (numpy's `argmax`).
pub(super) fn argmax<T: PartialOrd + Copy>(values: &[T]) -> u32 {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best as u32
}
