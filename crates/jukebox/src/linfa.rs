//! Stage 2b, continued: any [linfa](https://github.com/rust-ml/linfa) model beside ours.
//!
//! linfa is Rust's scikit-learn: many classic models (decision trees, logistic regression, SVMs,
//! k-nearest neighbours, naive Bayes, ...) behind one pair of traits. Its *params* (the settings,
//! scikit-learn's unfitted estimator) are fitted on a [`DatasetBase`] and give a fitted model
//! that predicts targets from records:
//!
//! ```ignore
//! use jukebox::linfa::prelude::*;             // Fit, Predict, ...
//! use jukebox::linfa::trees::DecisionTree;
//! let model = DecisionTree::params().max_depth(Some(10)).fit(&data.linfa_train())?;
//! ```
//!
//! This module connects it to the workshop's types:
//!
//! - [`PreparedData::linfa_train`] (and `linfa_validation`, `linfa_test`) gives a split as a
//!   linfa dataset in one call: records `n_rows x n_features` in `f64`, targets the class indices
//!   (`usize`), feature names set;
//! - [`LinfaModel`] wraps any fitted linfa model that predicts class indices
//!   ([`Predict`] on `&Array2<f64>`), with a name and its fit time, and is a
//!   [`Classifier`]: it joins a [`Comparison`](crate::train::Comparison) table as one more row;
//! - [`LinfaModel::fit`] does the fitting and timing in one call from the params (on at most
//!   [`LINFA_MAX_TRAIN_ROWS`] rows, a stratified subsample when there are more).
//!
//! The linfa crates of the build are re-exported ([`prelude`], [`trees`], [`logistic`] and
//! [`ndarray`], linfa's ndarray 0.16), so a notebook cell needs no dependency of its own. Our own
//! [`LogisticRegression`](crate::train::LogisticRegression) and
//! [`DecisionTree`](crate::train::DecisionTree) stay the default baselines: they fit the
//! workshop's data several times faster (see `train::baselines`).

use std::time::Instant;

use ndarray16::{Array1, Array2};

pub use ::linfa::prelude;
pub use ::linfa::traits::{Fit, Predict};
pub use ::linfa::DatasetBase;
pub use linfa_logistic as logistic;
pub use linfa_trees as trees;
pub use ndarray16 as ndarray;

use jukebox_nn::thousands;

use crate::prepare::{DataFingerprint, PreparedData};
use crate::train::{Classifier, TrainingRows};

/// [`LinfaModel::fit`]'s row budget. Our baselines fit every row by merging identical ones
/// (`train::baselines`), which a linfa model in general cannot (not every one weighs rows), and
/// linfa's tree sorts the rows again at every node: a depth-10 tree took 8 s on 100,000 of the
/// full data's rows here. 20,000 rows keep such a cell to about a second (the shared sample's
/// 12,607 training rows are all used).
pub const LINFA_MAX_TRAIN_ROWS: usize = 20_000;

/// A split as linfa sees it: `f64` records, one class index per row.
pub type LinfaDataset = DatasetBase<Array2<f64>, Array1<usize>>;

/// Why a linfa model could not be fitted.
#[derive(Debug, thiserror::Error)]
pub enum LinfaError {
    #[error("fitting {model} with linfa: {reason}")]
    Fit { model: String, reason: String },
}

/// Row-major `f32` rows of `width` values as linfa's `f64` records.
fn records(x: &[f32], width: usize) -> Array2<f64> {
    let n_rows = x.len().checked_div(width).unwrap_or(0);
    Array2::from_shape_fn((n_rows, width), |(i, j)| x[i * width + j] as f64)
}

fn dataset(data: &PreparedData, x: &[f32], y: &[u32]) -> LinfaDataset {
    let targets: Array1<usize> = y.iter().map(|&label| label as usize).collect();
    DatasetBase::new(records(x, data.n_features()), targets).with_feature_names(data.features.clone())
}

impl PreparedData {
    /// The training split as a linfa dataset (scaled records in `f64`, class indices, feature
    /// names): what a linfa model's `fit` takes.
    pub fn linfa_train(&self) -> LinfaDataset {
        dataset(self, &self.x_train, &self.y_train)
    }
    /// The validation split as a linfa dataset.
    pub fn linfa_validation(&self) -> LinfaDataset {
        dataset(self, &self.x_val, &self.y_val)
    }
    /// The test split as a linfa dataset.
    pub fn linfa_test(&self) -> LinfaDataset {
        dataset(self, &self.x_test, &self.y_test)
    }
}

/// A fitted linfa model with a name, as a [`Classifier`] of the workshop.
#[derive(Clone, Debug)]
pub struct LinfaModel<M> {
    pub name: String,
    /// The fitted linfa model itself (its own methods stay available, e.g. a tree's depth).
    pub model: M,
    pub fit_seconds: f64,
    /// The data it was fitted on: a comparison refuses to score it on other data.
    pub fitted_on: DataFingerprint,
}

impl<M> LinfaModel<M> {
    /// Wraps a model you fitted yourself on `data.linfa_train()`; `fit_seconds` is shown in
    /// comparison tables.
    pub fn new(name: impl Into<String>, model: M, fit_seconds: f64, data: &PreparedData) -> Self {
        LinfaModel { name: name.into(), model, fit_seconds, fitted_on: data.fingerprint() }
    }

    /// Fits linfa `params` (e.g. `DecisionTree::params().max_depth(Some(10))`) on the training
    /// split of `data` and wraps the result, timed. It fits on at most [`LINFA_MAX_TRAIN_ROWS`]
    /// rows, a stratified subsample when the split has more; the name then says "trained on N of
    /// M rows". [`LinfaModel::fit_rows`] chooses the budget.
    pub fn fit<P, E>(name: impl Into<String>, params: &P, data: &PreparedData) -> Result<Self, LinfaError>
    where
        P: Fit<Array2<f64>, Array1<usize>, E, Object = M>,
        E: std::error::Error + From<::linfa::Error>,
    {
        Self::fit_rows(name, params, data, Some(LINFA_MAX_TRAIN_ROWS))
    }

    /// [`LinfaModel::fit`] on at most `max_rows` training rows (`None`: every row).
    pub fn fit_rows<P, E>(
        name: impl Into<String>,
        params: &P,
        data: &PreparedData,
        max_rows: Option<usize>,
    ) -> Result<Self, LinfaError>
    where
        P: Fit<Array2<f64>, Array1<usize>, E, Object = M>,
        E: std::error::Error + From<::linfa::Error>,
    {
        let mut name = name.into();
        let started = Instant::now();
        let rows = TrainingRows::new(data, max_rows, data.options.seed);
        let train = dataset(data, &rows.x_train, &rows.y_train);
        let model = params.fit(&train).map_err(|e| LinfaError::Fit { model: name.clone(), reason: e.to_string() })?;
        if rows.is_subsample() {
            name = format!("{name} (trained on {} of {} rows)", thousands(rows.n_train()), thousands(rows.of));
        }
        Ok(LinfaModel { name, model, fit_seconds: started.elapsed().as_secs_f64(), fitted_on: data.fingerprint() })
    }
}

impl<M> Classifier for LinfaModel<M>
where
    M: for<'a> Predict<&'a Array2<f64>, Array1<usize>>,
{
    fn name(&self) -> String {
        self.name.clone()
    }
    fn predict(&self, x: &[f32], n_rows: usize) -> Vec<u32> {
        if n_rows == 0 {
            return Vec::new();
        }
        self.model.predict(&records(x, x.len() / n_rows)).iter().map(|&class| class as u32).collect()
    }
    fn fit_seconds(&self) -> f64 {
        self.fit_seconds
    }
    fn fitted_on(&self) -> &DataFingerprint {
        &self.fitted_on
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_row_major() {
        let x = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let r = records(&x, 3);
        assert_eq!(r.shape(), &[2, 3]);
        assert_eq!(r[[1, 0]], 4.0);
        assert_eq!(r[[0, 2]], 3.0);
        // An empty split keeps its width, so the feature names still fit.
        assert_eq!(records(&[], 13).shape(), &[0, 13]);
    }
}
