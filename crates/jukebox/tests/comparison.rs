//! Results carry what they were computed from (issue 21): a fitted model remembers the data it
//! was fitted on, and a comparison (or a test report) refuses a model fitted on another split,
//! seed or feature list, naming the model and what differs, instead of putting its stale scores
//! beside fresh ones. Fitted on the shared sample.

mod common;

use jukebox::prepare::{DataFingerprint, PreparedData, SplitOptions, SplitStrategy};
use jukebox::train::{Classifier, Comparison, DecisionTree, Learner, NeuralNetwork, Progress, TrainError};

fn prepared<S: AsRef<str>>(charts: &jukebox::data::ChartData, features: &[S], options: SplitOptions) -> PreparedData {
    PreparedData::new(charts, features, &options).unwrap()
}

#[test]
fn a_comparison_refuses_models_fitted_on_another_split_or_feature_list() {
    let charts = common::chart();
    let features = &jukebox::data::FEATURES;
    let stratified = prepared(&charts, features, SplitOptions::with_seed(42));
    let network = NeuralNetwork::new(1, 256, 42).with_progress(Progress::Silent);
    let model = network.fit(&stratified).unwrap();
    let tree = DecisionTree { max_depth: Some(6), ..DecisionTree::default() }.fit(&stratified).unwrap();
    assert_eq!(model.fitted_on(), &stratified.fingerprint());
    assert_eq!(tree.fitted_on(), &stratified.fingerprint());

    // Prepared again with the same settings: the same data, so the comparison goes ahead.
    let again = prepared(&charts, features, SplitOptions::with_seed(42));
    let comparison = Comparison::new(&[&model as &dyn Classifier, &tree], &again).unwrap();
    assert_eq!(comparison.models.len(), 2);
    let caption = comparison.table().caption.unwrap();
    assert!(caption.contains("every model fitted on the stratified split (seed 42), 13 features"), "{caption}");

    // Another split strategy: refused, naming both stale models and the split.
    let grouped =
        prepared(&charts, features, SplitOptions { strategy: SplitStrategy::Grouped, ..SplitOptions::with_seed(42) });
    let refit = network.fit(&grouped).unwrap();
    match Comparison::new(&[&refit as &dyn Classifier, &model, &tree], &grouped) {
        Err(e @ TrainError::FittedOnOtherData { .. }) => {
            let text = e.to_string();
            assert!(text.starts_with(&format!("{} and {}", model.name(), tree.name())), "{text}");
            assert!(text.contains("split stratified, seed 42 instead of grouped, seed 42"), "{text}");
            assert!(text.contains("Fit again on this data"), "{text}");
        }
        other => panic!("expected FittedOnOtherData, got {other:?}"),
    }
    // The same through a single test report.
    assert!(matches!(model.test_report(&grouped), Err(TrainError::FittedOnOtherData { .. })));

    // Another seed, another feature list.
    let seed_7 = prepared(&charts, features, SplitOptions::with_seed(7));
    let differences = tree.fitted_on().differences(&seed_7.fingerprint());
    assert_eq!(differences, ["split stratified, seed 42 instead of stratified, seed 7"]);
    let two = prepared(&charts, &["danceability", "energy"], SplitOptions::with_seed(42));
    let differences = tree.fitted_on().differences(&two.fingerprint());
    assert!(differences.iter().any(|d| d.contains("instead of [danceability, energy]")), "{differences:?}");
    match Comparison::new(&[&tree as &dyn Classifier], &two) {
        Err(TrainError::FittedOnOtherData { model, .. }) => assert!(model.starts_with("decision tree"), "{model}"),
        other => panic!("expected FittedOnOtherData, got {other:?}"),
    }
}

#[test]
fn fingerprints_tell_rows_apart_and_say_what_differs() {
    let x = [0.1f32, 0.2, 0.3, 0.4];
    let a = DataFingerprint::of_rows(&x, &[0, 1], 2, 2);
    assert_eq!(a, DataFingerprint::of_rows(&x, &[0, 1], 2, 2), "the same rows, the same fingerprint");
    let other_rows = DataFingerprint::of_rows(&[0.1, 0.2, 0.3, 0.5], &[0, 1], 2, 2);
    assert_ne!(a.rows_hash, other_rows.rows_hash);
    assert_eq!(a.differences(&other_rows).len(), 1);
    assert!(a.differences(&other_rows)[0].contains("other rows"), "{:?}", a.differences(&other_rows));
    let other_labels = DataFingerprint::of_rows(&x, &[1, 0], 2, 2);
    assert_ne!(a.rows_hash, other_labels.rows_hash);
    assert!(a.differences(&a).is_empty());

    // A model fitted on rows given directly cannot be compared on prepared data.
    let charts = common::chart();
    let data = prepared(&charts, &jukebox::data::FEATURES, SplitOptions::with_seed(42));
    let tree = DecisionTree { max_depth: Some(3), ..DecisionTree::default() }
        .fit_rows(&data.x_train, &data.y_train, data.n_features(), data.n_classes())
        .unwrap();
    let differences = tree.fitted_on().differences(&data.fingerprint());
    assert!(differences[0].starts_with("split rows given directly instead of stratified, seed 42"), "{differences:?}");
}
