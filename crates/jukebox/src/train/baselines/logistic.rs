//! Multinomial logistic regression: one weighted sum of the features per class, turned into
//! class probabilities by a softmax, with an L2 penalty on the weights.
//!
//! [`LogisticRegression`] holds the settings (scikit-learn's `C`, `max_iter` and `tol`) and
//! [`FittedLogisticRegression`] the weights. Fitting merges identical rows, then minimises the
//! loss of [`super::softmax`] with [`super::lbfgs`] from zero weights; predicting picks the class
//! with the highest score per row.

use std::time::Instant;

use super::fitting::{argmax, baseline_learner, check_rows, FitRecord, MergedRows, DEFAULT_MAX_TRAIN_ROWS};
use super::lbfgs::{lbfgs, Minimum};
use super::softmax::{linear_scores, SoftmaxLoss};
use crate::prepare::DataFingerprint;
use crate::train::error::{Result, TrainError};
use crate::train::learner::Classifier;

/// Multinomial logistic regression (L2-regularised, L-BFGS); scikit-learn's
/// `LogisticRegression(C = 1/alpha, max_iter = max_iterations, tol = tolerance)`.
#[derive(Clone, Debug, PartialEq)]
pub struct LogisticRegression {
    /// L2 regularisation strength: the penalty is `alpha/2 · ‖W‖²` against the summed
    /// cross-entropy (scikit-learn's `C` is `1/alpha`).
    pub alpha: f64,
    /// At most this many L-BFGS steps (scikit-learn's `max_iter`).
    pub max_iterations: u64,
    /// Stop once every gradient entry of the mean loss is at most this in size (scikit-learn's
    /// `tol`).
    pub tolerance: f64,
    /// Fit on at most this many training rows, a stratified subsample when there are more
    /// (`TrainingRows`); `None` fits every row. Used by `Learner::fit`, not by `fit_rows`.
    pub max_train_rows: Option<usize>,
}

impl Default for LogisticRegression {
    fn default() -> Self {
        LogisticRegression {
            alpha: 1.0,
            max_iterations: 100,
            tolerance: 1e-4,
            max_train_rows: Some(DEFAULT_MAX_TRAIN_ROWS),
        }
    }
}

/// A fitted [`LogisticRegression`]: one weight per feature and class, plus one intercept per class.
#[derive(Clone, Debug)]
pub struct FittedLogisticRegression {
    /// Row-major `n_features x n_classes`.
    weights: Vec<f64>,
    intercepts: Vec<f64>,
    iterations: u64,
    converged: bool,
    record: FitRecord,
    /// Distinct (features, label) rows among those fitted.
    distinct_rows: usize,
}

impl FittedLogisticRegression {
    /// L-BFGS steps taken.
    pub fn iterations(&self) -> u64 {
        self.iterations
    }
    /// Whether the gradient fell below the tolerance (else the step or progress limit stopped it).
    pub fn converged(&self) -> bool {
        self.converged
    }
    /// Row-major `n_features x n_classes` weights.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }
    pub fn intercepts(&self) -> &[f64] {
        &self.intercepts
    }
    /// "trained on 100,000 of 879,956 rows" when fitted on a subsample of the training rows.
    pub fn rows_note(&self) -> Option<&str> {
        self.record.rows_note.as_deref()
    }
    /// Distinct (features, label) rows among the rows fitted: what one evaluation costs.
    pub fn distinct_rows(&self) -> usize {
        self.distinct_rows
    }
}

impl LogisticRegression {
    /// Fits on row-major `x` (`y.len() x n_features`) with labels `y` below `n_classes`.
    pub fn fit_rows(
        &self,
        x: &[f32],
        y: &[u32],
        n_features: usize,
        n_classes: usize,
    ) -> Result<FittedLogisticRegression> {
        const MODEL: &str = "logistic regression";
        if !(self.alpha.is_finite() && self.alpha >= 0.0 && self.tolerance.is_finite() && self.tolerance > 0.0) {
            return Err(TrainError::Baseline {
                model: MODEL,
                message: format!("alpha must be >= 0 and tolerance > 0 (got {} and {})", self.alpha, self.tolerance),
            });
        }
        check_rows(MODEL, x, y, n_features, n_classes)?;
        let started = Instant::now();
        let rows = MergedRows::of(x, y, n_features);
        let problem =
            SoftmaxLoss { x: &rows.x, y: &rows.y, counts: &rows.counts, n_features, n_classes, alpha: self.alpha };
        let Minimum { mut theta, iterations, converged } = lbfgs(&problem, self.max_iterations, self.tolerance);
        let intercepts = theta.split_off(n_features * n_classes);
        Ok(FittedLogisticRegression {
            weights: theta,
            intercepts,
            iterations,
            converged,
            record: FitRecord::new(started, DataFingerprint::of_rows(x, y, n_features, n_classes)),
            distinct_rows: rows.len(),
        })
    }
}

baseline_learner!(LogisticRegression => FittedLogisticRegression);

impl Classifier for FittedLogisticRegression {
    fn name(&self) -> String {
        match &self.record.rows_note {
            Some(note) => format!("logistic regression ({note})"),
            None => "logistic regression".into(),
        }
    }
    fn predict(&self, x: &[f32], n_rows: usize) -> Vec<u32> {
        let k = self.intercepts.len();
        let d = self.weights.len().checked_div(k).unwrap_or(0);
        if n_rows == 0 || d == 0 {
            return vec![0; n_rows];
        }
        let mut scores = vec![0.0; k];
        x.chunks_exact(d)
            .take(n_rows)
            .map(|row| {
                linear_scores(row, &self.weights, &self.intercepts, &mut scores);
                argmax(&scores)
            })
            .collect()
    }
    fn fit_seconds(&self) -> f64 {
        self.record.fit_seconds
    }
    fn fitted_on(&self) -> &DataFingerprint {
        &self.record.fitted_on
    }
}
