//! The vocabulary every model speaks, as in linfa: a *learner* (settings) is fitted on prepared
//! data and gives a fitted *classifier* that predicts class indices.
//!
//! Every [`Classifier`] remembers the data it was fitted on ([`Classifier::fitted_on`]), so
//! [`test_report`] and the comparison tables can refuse a model fitted before the data was
//! prepared again differently ([`check_fitted_on`]).

use super::error::{Result, TrainError};
use crate::evaluate::ClassificationReport;
use crate::prepare::{DataFingerprint, PreparedData};

/// A fitted model that predicts class indices.
pub trait Classifier {
    /// Name shown in comparison tables.
    fn name(&self) -> String;
    /// One class index per row of `x` (row-major, `n_rows x n_features`, scaled).
    fn predict(&self, x: &[f32], n_rows: usize) -> Vec<u32>;
    /// Wall time the fit took.
    fn fit_seconds(&self) -> f64;
    /// The data the model was fitted on ([`PreparedData::fingerprint`]): scoring it on other
    /// data is refused ([`TrainError::FittedOnOtherData`]).
    fn fitted_on(&self) -> &DataFingerprint;
}

/// Settings of a model that can be fitted on prepared data.
pub trait Learner {
    type Fitted: Classifier;
    /// Fits on the training split (the validation split may be used for monitoring).
    fn fit(&self, data: &PreparedData) -> Result<Self::Fitted>;
}

/// Scores `model` on the test split, classes named by country code. A model fitted on other data
/// (another split, feature list or preparation) is refused with
/// [`TrainError::FittedOnOtherData`], naming what differs.
pub fn test_report(model: &dyn Classifier, data: &PreparedData) -> Result<ClassificationReport> {
    check_fitted_on(model, &data.fingerprint())?;
    let predicted = model.predict(&data.x_test, data.n_test());
    Ok(ClassificationReport::new(&data.y_test, &predicted, data.n_classes())?
        .with_class_names(data.encoder.classes())?)
}

/// [`TrainError::FittedOnOtherData`] unless `model` was fitted on the data `scored_on` describes.
pub fn check_fitted_on(model: &dyn Classifier, scored_on: &DataFingerprint) -> Result<()> {
    let differences = model.fitted_on().differences(scored_on);
    if differences.is_empty() {
        return Ok(());
    }
    Err(TrainError::FittedOnOtherData {
        model: model.name(),
        differences: differences.join("; "),
        fitted_on: model.fitted_on().to_string(),
    })
}
