//! A linfa model beside ours: the prepared data as a linfa dataset, a fitted linfa decision tree
//! wrapped as a `Classifier`, scored in the same comparison table as our baselines.

mod common;

use jukebox::data::FEATURES;
use jukebox::linfa::prelude::*;
use jukebox::linfa::trees::DecisionTree;
use jukebox::linfa::LinfaModel;
use jukebox::prepare::{PreparedData, SplitOptions};
use jukebox::train::{Classifier, Comparison, Learner, LogisticRegression};

#[test]
fn the_splits_as_linfa_datasets() {
    let data = PreparedData::new(&common::chart(), &FEATURES, &SplitOptions::default()).unwrap();
    let train = data.linfa_train();
    assert_eq!(train.records().shape(), &[data.n_train(), 13]);
    assert_eq!(train.targets().len(), data.n_train());
    assert_eq!(train.feature_names(), data.features);
    assert_eq!(train.records()[[3, 12]], data.x_train[3 * 13 + 12] as f64);
    assert_eq!(train.targets()[7], data.y_train[7] as usize);
    assert_eq!(data.linfa_validation().records().nrows(), data.n_val());
    assert_eq!(data.linfa_test().targets().len(), data.n_test());
}

#[test]
fn a_fitted_linfa_tree_joins_the_comparison() {
    let data = PreparedData::new(&common::chart(), &FEATURES, &SplitOptions::default()).unwrap();
    let tree: LinfaModel<DecisionTree<f64, usize>> =
        LinfaModel::fit("linfa tree (depth 8)", &DecisionTree::params().max_depth(Some(8)), &data).unwrap();
    assert!(tree.model.max_depth() <= 8, "depth {}", tree.model.max_depth());
    // The adapter predicts what the linfa model predicts, as class indices.
    let direct = tree.model.predict(data.linfa_test().records());
    let through = Classifier::predict(&tree, &data.x_test, data.n_test());
    assert!(direct.iter().zip(&through).all(|(a, b)| *a as u32 == *b));
    let logistic = LogisticRegression::default().fit(&data).unwrap();
    let comparison = Comparison::new(&[&logistic, &tree], &data).unwrap();
    let row = comparison.get("linfa tree (depth 8)").expect("the linfa row");
    assert_eq!(row.report.total() as usize, data.n_test());
    // 72 countries: chance is about 0.014; a depth-8 tree on repeated songs does far better.
    assert!(row.report.accuracy() > 0.1, "accuracy {}", row.report.accuracy());
    assert!(row.fit_seconds > 0.0);
}

#[test]
fn a_linfa_model_fitted_on_other_features_is_refused_by_the_comparison() {
    let chart = common::chart();
    let twelve: Vec<&str> = FEATURES.iter().copied().filter(|f| *f != "loudness").collect();
    let narrow = PreparedData::new(&chart, &twelve, &SplitOptions::default()).unwrap();
    let data = PreparedData::new(&chart, &FEATURES, &SplitOptions::default()).unwrap();
    let tree: LinfaModel<DecisionTree<f64, usize>> =
        LinfaModel::fit("linfa tree (depth 4)", &DecisionTree::params().max_depth(Some(4)), &narrow).unwrap();
    let error = Comparison::new(&[&tree], &data).expect_err("scored on other features").to_string();
    assert!(error.contains("linfa tree (depth 4)") && error.contains("features"), "{error}");
}
