//! The hand-written baselines (`jukebox::train::baselines`): scikit-learn's accuracy on the shared
//! sample, the optimum of logistic regression checked independently, exact fits of toy problems,
//! determinism, and typed errors for bad input. Speed is the bench's business
//! (`cargo bench --workspace --bench baselines`), not these tests'.

mod common;

use std::collections::HashMap;

use jukebox::prepare::{PreparedData, SplitOptions};
use jukebox::train::{test_report, Classifier, DecisionTree, Learner, LogisticRegression, TrainError};

/// scikit-learn 1.x on the shared sample's split (../shared/TOOLCHAIN.md): test accuracy of
/// `LogisticRegression()` and `DecisionTreeClassifier()`.
const SKLEARN_LOGISTIC_ACCURACY: f64 = 0.115;
const SKLEARN_TREE_ACCURACY: f64 = 0.429;

/// A small seeded generator, so the toy data needs no extra dependency.
struct Lcg(u64);
impl Lcg {
    fn uniform(&mut self) -> f32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 40) as f32 / (1u64 << 24) as f32
    }
}

#[test]
fn shared_sample_scores_within_a_point_of_scikit_learn_and_fits_are_repeatable() {
    let data = PreparedData::new(&common::chart(), &jukebox::data::FEATURES, &SplitOptions::default()).unwrap();

    let logistic = LogisticRegression::default().fit(&data).unwrap();
    let logistic_accuracy = test_report(&logistic, &data).unwrap().accuracy();
    println!("logistic regression: {logistic_accuracy:.4} after {} iterations", logistic.iterations());
    assert!(
        (logistic_accuracy - SKLEARN_LOGISTIC_ACCURACY).abs() <= 0.01,
        "logistic regression accuracy {logistic_accuracy}, scikit-learn {SKLEARN_LOGISTIC_ACCURACY}"
    );
    assert!(logistic.converged(), "stopped after {} iterations without converging", logistic.iterations());
    let again = LogisticRegression::default().fit(&data).unwrap();
    assert_eq!(logistic.weights(), again.weights(), "same data, same weights, bit for bit");
    assert_eq!(logistic.intercepts(), again.intercepts());

    let tree = DecisionTree::default().fit(&data).unwrap();
    let tree_predictions = tree.predict(&data.x_test, data.n_test());
    let tree_accuracy = test_report(&tree, &data).unwrap().accuracy();
    println!("decision tree: {tree_accuracy:.4}, depth {}, {} leaves", tree.depth(), tree.leaves());
    assert!(
        (tree_accuracy - SKLEARN_TREE_ACCURACY).abs() <= 0.01,
        "decision tree accuracy {tree_accuracy}, scikit-learn {SKLEARN_TREE_ACCURACY}"
    );
    assert_eq!(tree.name(), format!("decision tree (depth {})", tree.depth()));
    let again = DecisionTree::default().fit(&data).unwrap();
    assert_eq!((again.depth(), again.node_count()), (tree.depth(), tree.node_count()));
    assert_eq!(again.predict(&data.x_test, data.n_test()), tree_predictions);

    // Grown until pure, the tree gets every training row right except where identical rows
    // carry different labels: there it predicts the group's most common label. So its training
    // accuracy is exactly the best any model can reach on these rows.
    let d = data.n_features();
    let mut groups: HashMap<Vec<u32>, HashMap<u32, usize>> = HashMap::new();
    for (row, &label) in data.x_train.chunks_exact(d).zip(&data.y_train) {
        *groups.entry(row.iter().map(|v| v.to_bits()).collect()).or_default().entry(label).or_default() += 1;
    }
    let best_possible = groups.values().map(|labels| labels.values().max().unwrap()).sum::<usize>();
    let right = tree.predict(&data.x_train, data.n_train()).iter().zip(&data.y_train).filter(|(p, t)| p == t).count();
    assert_eq!(right, best_possible, "training rows right, of {}", data.n_train());
}

/// The gradient of the mean penalised cross-entropy at the fitted parameters, computed here from
/// the definition, independently of the solver.
fn objective_gradient(model: &jukebox::train::FittedLogisticRegression, x: &[f32], y: &[u32], alpha: f64) -> Vec<f64> {
    let k = model.intercepts().len();
    let d = model.weights().len() / k;
    let n = y.len() as f64;
    let mut grad = vec![0.0; (d + 1) * k];
    for (row, &label) in x.chunks_exact(d).zip(y) {
        let z: Vec<f64> = (0..k)
            .map(|c| model.intercepts()[c] + (0..d).map(|j| row[j] as f64 * model.weights()[j * k + c]).sum::<f64>())
            .collect();
        let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let total: f64 = z.iter().map(|v| (v - max).exp()).sum();
        for c in 0..k {
            let residual = (z[c] - max).exp() / total - if c == label as usize { 1.0 } else { 0.0 };
            for j in 0..d {
                grad[j * k + c] += row[j] as f64 * residual / n;
            }
            grad[d * k + c] += residual / n;
        }
    }
    for (g, w) in grad.iter_mut().zip(model.weights()) {
        *g += alpha * w / n;
    }
    grad
}

#[test]
fn logistic_regression_stops_at_the_optimum() {
    // Overlapping classes, so the penalised optimum is finite and unique.
    let mut rng = Lcg(7);
    let (n, d, k) = (300, 3, 4);
    let x: Vec<f32> = (0..n * d).map(|_| rng.uniform()).collect();
    let y: Vec<u32> =
        x.chunks_exact(d).map(|r| ((r[0] + 0.5 * r[1] + 0.3 * rng.uniform()) * 2.0) as u32 % k as u32).collect();
    let learner = LogisticRegression { alpha: 1.0, max_iterations: 500, tolerance: 1e-7, max_train_rows: None };
    let model = learner.fit_rows(&x, &y, d, k).unwrap();
    assert!(model.converged(), "not converged after {} iterations", model.iterations());
    let largest = objective_gradient(&model, &x, &y, 1.0).iter().fold(0.0f64, |m, g| m.max(g.abs()));
    assert!(largest <= 1e-6, "gradient entry {largest} at the fitted parameters");
    // A stronger penalty shrinks the weights.
    let shrunk = LogisticRegression { alpha: 100.0, ..learner }.fit_rows(&x, &y, d, k).unwrap();
    let norm = |w: &[f64]| w.iter().map(|v| v * v).sum::<f64>();
    assert!(norm(shrunk.weights()) < norm(model.weights()));
    // The iteration limit is honoured.
    let capped =
        LogisticRegression { max_iterations: 2, ..LogisticRegression::default() }.fit_rows(&x, &y, d, k).unwrap();
    assert_eq!(capped.iterations(), 2);
    assert!(!capped.converged());
}

#[test]
fn repeated_rows_are_fitted_as_every_row() {
    // Rows repeated 1 to 4 times and interleaved, as the charts repeat a song day after day: the
    // fit merges identical rows, and must still be the optimum of the objective over every row.
    let mut rng = Lcg(3);
    let (d, k) = (3, 4);
    let distinct: Vec<(Vec<f32>, u32)> = (0..120)
        .map(|_| {
            let row: Vec<f32> = (0..d).map(|_| rng.uniform()).collect();
            let label = ((row[0] + 0.4 * row[2] + 0.3 * rng.uniform()) * 2.0) as u32 % k as u32;
            (row, label)
        })
        .collect();
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for round in 0..4 {
        for (i, (row, label)) in distinct.iter().enumerate() {
            if i % 4 >= round {
                x.extend_from_slice(row);
                y.push(*label);
            }
        }
    }
    let learner = LogisticRegression { max_iterations: 500, tolerance: 1e-7, ..LogisticRegression::default() };
    let model = learner.fit_rows(&x, &y, d, k).unwrap();
    assert!(model.converged());
    assert_eq!((model.distinct_rows(), y.len()), (120, 300));
    let largest = objective_gradient(&model, &x, &y, 1.0).iter().fold(0.0f64, |m, g| m.max(g.abs()));
    assert!(largest <= 1e-6, "gradient entry {largest} over every row at the fitted parameters");
    // The tree grown on the merged rows gets every repeated row right.
    let tree = DecisionTree::default().fit_rows(&x, &y, d, k).unwrap();
    assert_eq!(tree.predict(&x, y.len()), y);
}

#[test]
fn separable_toy_problems_are_fitted_exactly() {
    // Four classes, one per quadrant of the unit square.
    let mut rng = Lcg(11);
    let quadrant = |a: f32, b: f32| (a > 0.5) as u32 * 2 + (b > 0.5) as u32;
    let mut x = Vec::new();
    let mut y = Vec::new();
    for _ in 0..400 {
        let (a, b) = (rng.uniform(), rng.uniform());
        if (a - 0.5).abs() > 0.05 && (b - 0.5).abs() > 0.05 {
            x.extend([a, b]);
            y.push(quadrant(a, b));
        }
    }
    let n = y.len();
    let tree = DecisionTree::default().fit_rows(&x, &y, 2, 4).unwrap();
    assert_eq!(tree.predict(&x, n), y, "every training row right");
    assert_eq!((tree.depth(), tree.leaves()), (2, 4), "two questions are enough");
    let unseen = [0.1, 0.2, 0.2, 0.9, 0.8, 0.3, 0.95, 0.99];
    assert_eq!(tree.predict(&unseen, 4), vec![0, 1, 2, 3]);

    let stump = DecisionTree { max_depth: Some(1), ..DecisionTree::default() }.fit_rows(&x, &y, 2, 4).unwrap();
    assert_eq!((stump.depth(), stump.leaves()), (1, 2));

    // Three clusters a linear model separates.
    let centres = [(0.2f32, 0.2f32), (0.8, 0.2), (0.5, 0.8)];
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for i in 0..150 {
        let (cx, cy) = centres[i % 3];
        x.extend([cx + 0.1 * (rng.uniform() - 0.5), cy + 0.1 * (rng.uniform() - 0.5)]);
        y.push((i % 3) as u32);
    }
    let logistic = LogisticRegression { alpha: 1e-3, ..LogisticRegression::default() }.fit_rows(&x, &y, 2, 3).unwrap();
    assert_eq!(logistic.predict(&x, 150), y, "every training row right");
    assert_eq!(logistic.predict(&[0.2, 0.2, 0.8, 0.2, 0.5, 0.8], 3), vec![0, 1, 2]);
}

#[test]
fn identical_rows_make_one_leaf_with_the_most_common_label() {
    let x = [0.5f32; 6];
    let tree = DecisionTree::default().fit_rows(&x, &[1, 2, 1], 2, 3).unwrap();
    assert_eq!((tree.depth(), tree.leaves()), (0, 1));
    assert_eq!(tree.name(), "decision tree");
    assert_eq!(tree.predict(&[0.0, 1.0], 1), vec![1]);
}

#[test]
fn bad_input_is_a_typed_error_naming_the_model() {
    let tree = DecisionTree::default();
    let logistic = LogisticRegression::default();
    let message = |r: Result<String, TrainError>| match r {
        Err(TrainError::Baseline { model, message }) => format!("{model}: {message}"),
        other => panic!("expected a baseline error, got {other:?}"),
    };
    let tree_fit = |x: &[f32], y: &[u32]| tree.fit_rows(x, y, 2, 3).map(|m| m.name());
    let logistic_fit = |x: &[f32], y: &[u32]| logistic.fit_rows(x, y, 2, 3).map(|m| m.name());
    assert_eq!(message(tree_fit(&[], &[])), "decision tree: the training split is empty");
    assert!(message(logistic_fit(&[0.0, 1.0], &[3])).contains("training label 3 is not one of the 3 classes"));
    assert!(message(tree_fit(&[0.0, f32::NAN], &[0])).contains("non-finite"));
    assert!(message(logistic_fit(&[0.0, 1.0, 2.0], &[0])).contains("not 1 rows x 2 features"));
    let negative = LogisticRegression { alpha: -1.0, ..LogisticRegression::default() };
    assert!(message(negative.fit_rows(&[0.0, 1.0], &[0], 2, 3).map(|m| m.name())).contains("alpha must be >= 0"));
}
