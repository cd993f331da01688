//! Classic baselines: multinomial logistic regression and a CART decision tree, written for this
//! data's shape (about 12,600 training rows, 13 features, 72 classes).
//!
//! Both follow scikit-learn's definitions, so their scores can be compared with its figures:
//!
//! - [`LogisticRegression`] minimises the mean cross-entropy of a softmax over one weighted sum
//!   per class, plus an L2 penalty on the weights (not the intercepts):
//!   `(1/n) Σ −log p(yᵢ | xᵢ) + α/(2n) ‖W‖²`, which is scikit-learn's
//!   `LogisticRegression(C = 1/α)`. It starts from zero weights and takes L-BFGS steps (10
//!   remembered corrections, a Wolfe line search) until the largest gradient entry is below
//!   `tolerance` or `max_iterations` steps are taken, like scikit-learn's `lbfgs` solver.
//! - [`DecisionTree`] is CART with Gini impurity: each node tries every feature and every
//!   threshold halfway between two neighbouring distinct values, keeps the split that leaves the
//!   purest children, and stops when a node is pure, cannot be split, or `max_depth` is reached
//!   (scikit-learn's `DecisionTreeClassifier()` defaults). A leaf predicts its most common class.
//!
//! Why written here and not taken from linfa (measured in `cargo bench --workspace --bench
//! baselines`, which prints linfa's figures beside ours and scikit-learn's): linfa-logistic runs
//! its L-BFGS through argmin on freshly allocated ndarray matrices for every evaluation and took
//! 8-9.5 s here in f64 and 3.6 s in f32, against scikit-learn's 3.2-5 s; linfa-trees sorts the
//! rows again at every node and took 0.9 s in either precision, against scikit-learn's 0.1 s. This
//! code makes one pass over the rows per evaluation (scores, softmax, loss and gradient fused),
//! and the tree sorts each feature once and then only partitions those orders as it grows.

use std::time::Instant;

use super::{Classifier, Learner, Result, TrainError};
use crate::prepare::{DataFingerprint, PreparedData};

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
}

impl Default for LogisticRegression {
    fn default() -> Self {
        LogisticRegression { alpha: 1.0, max_iterations: 100, tolerance: 1e-4 }
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
    fit_seconds: f64,
    fitted_on: DataFingerprint,
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
}

/// The mean penalised cross-entropy and its gradient at given parameters. Parameters are laid
/// out as `n_features x n_classes` weights followed by `n_classes` intercepts.
struct SoftmaxLoss<'a> {
    x: &'a [f32],
    y: &'a [u32],
    n_features: usize,
    n_classes: usize,
    alpha: f64,
}

impl SoftmaxLoss<'_> {
    fn n_params(&self) -> usize {
        (self.n_features + 1) * self.n_classes
    }

    /// Loss at `theta`; writes the gradient into `grad`. One pass over the rows: each row's
    /// scores, softmax, loss and gradient contribution are computed while the row is in cache.
    fn eval(&self, theta: &[f64], grad: &mut [f64], scores: &mut [f64]) -> f64 {
        let (d, k) = (self.n_features, self.n_classes);
        let (weights, intercepts) = theta.split_at(d * k);
        grad.fill(0.0);
        let mut loss = 0.0;
        for (row, &label) in self.x.chunks_exact(d).zip(self.y) {
            linear_scores(row, weights, intercepts, scores);
            let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mut sum = 0.0;
            for s in scores.iter_mut() {
                *s = (*s - max).exp();
                sum += *s;
            }
            let label = label as usize;
            // −log softmax = log Σ exp(z − max) − (z_y − max); scores now hold exp(z − max).
            loss += sum.ln() - scores[label].ln();
            let inv = 1.0 / sum;
            scores.iter_mut().for_each(|s| *s *= inv);
            scores[label] -= 1.0;
            // d loss / d z = softmax − one-hot; the weights' gradient adds xᵀ of it.
            let (grad_w, grad_b) = grad.split_at_mut(d * k);
            for (&v, g) in row.iter().zip(grad_w.chunks_exact_mut(k)) {
                let v = v as f64;
                g.iter_mut().zip(scores.iter()).for_each(|(g, &s)| *g += v * s);
            }
            grad_b.iter_mut().zip(scores.iter()).for_each(|(g, &s)| *g += s);
        }
        let n = self.y.len() as f64;
        let mut penalty = 0.0;
        for (g, &w) in grad[..d * k].iter_mut().zip(weights) {
            *g += self.alpha * w;
            penalty += w * w;
        }
        grad.iter_mut().for_each(|g| *g /= n);
        (loss + 0.5 * self.alpha * penalty) / n
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

fn max_abs(a: &[f64]) -> f64 {
    a.iter().fold(0.0, |m, v| m.max(v.abs()))
}

/// Where a line search ended: the step taken and the loss there.
struct Step {
    step: f64,
    loss: f64,
}

/// Finds a step along `direction` satisfying the strong Wolfe conditions (sufficient decrease,
/// and a flattened slope, which keeps the L-BFGS curvature pairs positive), by bracketing and
/// bisection-safeguarded cubic interpolation (Nocedal & Wright, algorithms 3.5 and 3.6).
/// `theta` is moved to the accepted point and `grad` holds its gradient.
#[allow(clippy::too_many_arguments)]
fn wolfe_line_search(
    problem: &SoftmaxLoss,
    origin: &[f64],
    loss0: f64,
    slope0: f64,
    direction: &[f64],
    first_step: f64,
    theta: &mut [f64],
    grad: &mut [f64],
    scores: &mut [f64],
) -> Option<Step> {
    const C1: f64 = 1e-4;
    const C2: f64 = 0.9;
    const MAX_EVALUATIONS: usize = 30;
    let mut evaluate = |step: f64, theta: &mut [f64], grad: &mut [f64]| {
        theta.iter_mut().zip(origin.iter().zip(direction)).for_each(|(t, (o, d))| *t = o + step * d);
        let loss = problem.eval(theta, grad, scores);
        (loss, dot(grad, direction))
    };
    // Bracket [lo, hi] with the loss and slope known at lo.
    let (mut lo, mut lo_loss, mut lo_slope) = (0.0, loss0, slope0);
    let mut hi: Option<(f64, f64, f64)> = None;
    let mut step = first_step;
    for _ in 0..MAX_EVALUATIONS {
        let (loss, slope) = evaluate(step, theta, grad);
        if !loss.is_finite() {
            hi = Some((step, f64::INFINITY, f64::NAN));
        } else if loss > loss0 + C1 * step * slope0 || loss >= lo_loss {
            hi = Some((step, loss, slope));
        } else if slope.abs() <= -C2 * slope0 {
            return Some(Step { step, loss });
        } else if match hi {
            // Still bracketing: an upward slope means the minimum lies behind this step.
            None => slope >= 0.0,
            Some((h, _, _)) => slope * (h - lo) >= 0.0,
        } {
            hi = Some((lo, lo_loss, lo_slope));
            (lo, lo_loss, lo_slope) = (step, loss, slope);
        } else {
            (lo, lo_loss, lo_slope) = (step, loss, slope);
        }
        step = match hi {
            // Still descending with no upper end: expand.
            None => step * 2.0,
            Some((h, h_loss, h_slope)) => {
                let (a, b) = (lo.min(h), lo.max(h));
                let guess = if h_loss.is_finite() && h_slope.is_finite() {
                    cubic_minimum(lo, lo_loss, lo_slope, h, h_loss, h_slope)
                } else {
                    None
                };
                // Keep the trial well inside the bracket, else bisect.
                match guess {
                    Some(g) if g > a + 0.1 * (b - a) && g < b - 0.1 * (b - a) => g,
                    _ => 0.5 * (a + b),
                }
            }
        };
        if hi.is_some_and(|(h, _, _)| (h - lo).abs() <= 1e-12 * lo.abs().max(1e-12)) {
            break;
        }
    }
    // No Wolfe point found: accept the best decrease seen, if any.
    if lo > 0.0 {
        let (loss, _) = evaluate(lo, theta, grad);
        return Some(Step { step: lo, loss });
    }
    None
}

/// The minimiser of the cubic through two points with their slopes, if it exists.
fn cubic_minimum(a: f64, fa: f64, ga: f64, b: f64, fb: f64, gb: f64) -> Option<f64> {
    let d1 = ga + gb - 3.0 * (fa - fb) / (a - b);
    let radicand = d1 * d1 - ga * gb;
    if radicand < 0.0 {
        return None;
    }
    let d2 = (b - a).signum() * radicand.sqrt();
    let t = b - (b - a) * (gb + d2 - d1) / (gb - ga + 2.0 * d2);
    t.is_finite().then_some(t)
}

/// The outcome of [`lbfgs`].
struct Minimum {
    theta: Vec<f64>,
    iterations: u64,
    converged: bool,
}

/// Limited-memory BFGS from zero, as scikit-learn's `lbfgs` solver (through SciPy) runs it:
/// 10 correction pairs, stop when `max|gradient| <= tolerance`, after `max_iterations` steps, or
/// when the loss stops decreasing (relative change below 64 machine epsilons, SciPy's `ftol`).
fn lbfgs(problem: &SoftmaxLoss, max_iterations: u64, tolerance: f64) -> Minimum {
    const MEMORY: usize = 10;
    let n = problem.n_params();
    let mut scores = vec![0.0; problem.n_classes];
    let mut theta = vec![0.0; n];
    let mut grad = vec![0.0; n];
    let mut loss = problem.eval(&theta, &mut grad, &mut scores);
    // Correction pairs s = Δθ, y = Δgradient, with ρ = 1/(yᵀs), oldest first.
    let mut pairs: std::collections::VecDeque<(Vec<f64>, Vec<f64>, f64)> = std::collections::VecDeque::new();
    let mut direction = vec![0.0; n];
    let mut alphas = [0.0; MEMORY];
    let mut origin = vec![0.0; n];
    let mut origin_grad = vec![0.0; n];
    let mut iterations = 0;
    while max_abs(&grad) > tolerance {
        if iterations >= max_iterations {
            return Minimum { theta, iterations, converged: false };
        }
        // Two-loop recursion: direction = −H·gradient.
        direction.iter_mut().zip(&grad).for_each(|(d, g)| *d = -g);
        for (i, (s, y, rho)) in pairs.iter().enumerate().rev() {
            alphas[i] = rho * dot(s, &direction);
            direction.iter_mut().zip(y).for_each(|(d, y)| *d -= alphas[i] * y);
        }
        if let Some((s, y, _)) = pairs.back() {
            let gamma = dot(s, y) / dot(y, y);
            direction.iter_mut().for_each(|d| *d *= gamma);
        }
        for (i, (s, y, rho)) in pairs.iter().enumerate() {
            let beta = rho * dot(y, &direction);
            direction.iter_mut().zip(s).for_each(|(d, s)| *d += (alphas[i] - beta) * s);
        }
        let mut slope = dot(&grad, &direction);
        if slope >= 0.0 {
            // Not a descent direction (curvature information gone stale): restart from steepest descent.
            pairs.clear();
            direction.iter_mut().zip(&grad).for_each(|(d, g)| *d = -g);
            slope = dot(&grad, &direction);
        }
        // The first step has no curvature estimate: a step of unit length, as SciPy takes.
        let first_step = if pairs.is_empty() { 1.0 / dot(&direction, &direction).sqrt() } else { 1.0 };
        origin.copy_from_slice(&theta);
        origin_grad.copy_from_slice(&grad);
        let Some(step) = wolfe_line_search(
            problem,
            &origin,
            loss,
            slope,
            &direction,
            first_step,
            &mut theta,
            &mut grad,
            &mut scores,
        ) else {
            theta.copy_from_slice(&origin);
            return Minimum { theta, iterations, converged: false };
        };
        iterations += 1;
        let s: Vec<f64> = direction.iter().map(|d| step.step * d).collect();
        let y: Vec<f64> = grad.iter().zip(&origin_grad).map(|(g, o)| g - o).collect();
        let curvature = dot(&s, &y);
        if curvature > 1e-10 * dot(&y, &y) {
            if pairs.len() == MEMORY {
                pairs.pop_front();
            }
            pairs.push_back((s, y, 1.0 / curvature));
        }
        let previous = loss;
        loss = step.loss;
        if (previous - loss) / previous.abs().max(loss.abs()).max(1.0) <= 64.0 * f64::EPSILON {
            return Minimum { theta, iterations, converged: max_abs(&grad) <= tolerance };
        }
    }
    Minimum { theta, iterations, converged: true }
}

/// Checks a training matrix: `x` row-major `y.len() x n_features`, finite, labels below `n_classes`.
fn check_rows(model: &'static str, x: &[f32], y: &[u32], n_features: usize, n_classes: usize) -> Result<()> {
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
        let problem = SoftmaxLoss { x, y, n_features, n_classes, alpha: self.alpha };
        let Minimum { mut theta, iterations, converged } = lbfgs(&problem, self.max_iterations, self.tolerance);
        let intercepts = theta.split_off(n_features * n_classes);
        Ok(FittedLogisticRegression {
            weights: theta,
            intercepts,
            iterations,
            converged,
            fit_seconds: started.elapsed().as_secs_f64(),
            fitted_on: DataFingerprint::of_rows(x, y, n_features, n_classes),
        })
    }
}

impl Learner for LogisticRegression {
    type Fitted = FittedLogisticRegression;
    fn fit(&self, data: &PreparedData) -> Result<FittedLogisticRegression> {
        let fitted = self.fit_rows(&data.x_train, &data.y_train, data.n_features(), data.n_classes())?;
        Ok(FittedLogisticRegression { fitted_on: data.fingerprint(), ..fitted })
    }
}

/// One row's class scores: `intercepts + row · weights`, with `weights` row-major
/// `n_features x n_classes` (the layout training and prediction share).
#[inline]
fn linear_scores(row: &[f32], weights: &[f64], intercepts: &[f64], scores: &mut [f64]) {
    scores.copy_from_slice(intercepts);
    for (&v, w) in row.iter().zip(weights.chunks_exact(intercepts.len())) {
        let v = v as f64;
        scores.iter_mut().zip(w).for_each(|(s, &w)| *s += v * w);
    }
}

impl Classifier for FittedLogisticRegression {
    fn name(&self) -> String {
        "logistic regression".into()
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
        self.fit_seconds
    }
    fn fitted_on(&self) -> &DataFingerprint {
        &self.fitted_on
    }
}

/// Index of the largest value, the first one on ties (numpy's `argmax`).
fn argmax<T: PartialOrd + Copy>(values: &[T]) -> u32 {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best as u32
}

/// A CART decision tree with Gini impurity; scikit-learn's `DecisionTreeClassifier(max_depth)`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DecisionTree {
    /// `None` grows the tree until leaves are pure (scikit-learn's default).
    pub max_depth: Option<usize>,
}

/// One node of a fitted tree: a split (`x[feature] <= threshold` goes left) or a leaf.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Node {
    Split { feature: u32, threshold: f64, left: u32, right: u32 },
    Leaf { class: u32 },
}

/// A fitted [`DecisionTree`].
#[derive(Clone, Debug)]
pub struct FittedDecisionTree {
    /// Node 0 is the root.
    nodes: Vec<Node>,
    depth: usize,
    fit_seconds: f64,
    fitted_on: DataFingerprint,
}

impl FittedDecisionTree {
    /// Levels below the root (a single leaf has depth 0), as scikit-learn's `get_depth()`.
    pub fn depth(&self) -> usize {
        self.depth
    }
    /// Number of leaves, as scikit-learn's `get_n_leaves()`.
    pub fn leaves(&self) -> usize {
        self.nodes.iter().filter(|n| matches!(n, Node::Leaf { .. })).count()
    }
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }
    fn predict_row(&self, row: &[f32]) -> u32 {
        let mut node = 0;
        loop {
            match self.nodes[node] {
                Node::Leaf { class } => return class,
                Node::Split { feature, threshold, left, right } => {
                    node = if (row[feature as usize] as f64) <= threshold { left } else { right } as usize;
                }
            }
        }
    }
}

/// The best split found for a node.
struct Split {
    feature: usize,
    /// Rows going left (a prefix of the node's rows in this feature's order).
    n_left: usize,
    threshold: f64,
}

/// A node still to be built: its rows (`start..end` in every feature's order), its depth, and
/// its parent's index with whether it is the left child (where to record the node's index).
struct Pending {
    start: usize,
    end: usize,
    depth: usize,
    parent: Option<(usize, bool)>,
}

/// Grows a tree. Every feature's row order is sorted once; a node owns the same range
/// `start..end` in each feature's order, and splitting it partitions those ranges in place
/// (stably, so they stay sorted) instead of sorting again.
struct TreeBuilder<'a> {
    /// Column-major copy of the features, so one feature's values sit together.
    columns: Vec<f32>,
    y: &'a [u32],
    n_rows: usize,
    n_features: usize,
    n_classes: usize,
    /// `n_features` orders of `n_rows` row indices each.
    order: Vec<u32>,
    goes_left: Vec<bool>,
    scratch: Vec<u32>,
    left_counts: Vec<u32>,
}

impl TreeBuilder<'_> {
    fn best_split(&mut self, start: usize, end: usize, node_counts: &[u32]) -> Option<Split> {
        let n = (end - start) as u64;
        let total_squares: u64 = node_counts.iter().map(|&c| c as u64 * c as u64).sum();
        // Gini: minimising n_l·gini_l + n_r·gini_r is maximising Σc_l²/n_l + Σc_r²/n_r, and moving
        // one row of class c from right to left changes the sums of squares by O(1).
        let mut best: Option<(f64, Split)> = None;
        for f in 0..self.n_features {
            let order = &self.order[f * self.n_rows + start..f * self.n_rows + end];
            let values = &self.columns[f * self.n_rows..(f + 1) * self.n_rows];
            let (first, last) = (values[order[0] as usize], values[order[order.len() - 1] as usize]);
            if first >= last {
                continue; // constant in this node
            }
            self.left_counts.fill(0);
            let (mut left_squares, mut right_squares) = (0u64, total_squares);
            let mut previous = first;
            for (i, &row) in order.iter().enumerate() {
                let value = values[row as usize];
                // A threshold fits between the previous value and this one when they differ.
                if i > 0 && value > previous {
                    let n_left = i as u64;
                    let n_right = n - n_left;
                    let proxy = left_squares as f64 / n_left as f64 + right_squares as f64 / n_right as f64;
                    if best.as_ref().is_none_or(|(b, _)| proxy > *b) {
                        // Halfway, as scikit-learn does; if rounding lands on the upper value, the lower.
                        let mut threshold = previous as f64 / 2.0 + value as f64 / 2.0;
                        if threshold >= value as f64 {
                            threshold = previous as f64;
                        }
                        best = Some((proxy, Split { feature: f, n_left: i, threshold }));
                    }
                }
                let c = self.y[row as usize] as usize;
                let left = self.left_counts[c] as u64;
                let right = node_counts[c] as u64 - left;
                left_squares += 2 * left + 1;
                right_squares -= 2 * right - 1;
                self.left_counts[c] += 1;
                previous = value;
            }
        }
        best.map(|(_, split)| split)
    }

    /// Moves the rows of `start..end` that go left to the front of every feature's range,
    /// keeping each order sorted.
    fn partition(&mut self, start: usize, end: usize, split: &Split) {
        let chosen = &self.order[split.feature * self.n_rows..][..end][start..];
        for (i, &row) in chosen.iter().enumerate() {
            self.goes_left[row as usize] = i < split.n_left;
        }
        for f in (0..self.n_features).filter(|&f| f != split.feature) {
            let range = &mut self.order[f * self.n_rows + start..f * self.n_rows + end];
            self.scratch.clear();
            let mut next = 0;
            for i in 0..range.len() {
                let row = range[i];
                if self.goes_left[row as usize] {
                    range[next] = row;
                    next += 1;
                } else {
                    self.scratch.push(row);
                }
            }
            range[next..].copy_from_slice(&self.scratch);
        }
    }

    fn grow(mut self, max_depth: Option<usize>) -> (Vec<Node>, usize) {
        let mut nodes = Vec::new();
        let mut depth_reached = 0;
        // Depth first, left child before right (node order as scikit-learn's builder).
        let mut stack = vec![Pending { start: 0, end: self.n_rows, depth: 0, parent: None }];
        let mut node_counts = vec![0u32; self.n_classes];
        while let Some(Pending { start, end, depth, parent }) = stack.pop() {
            let index = nodes.len();
            if let Some((p, is_left)) = parent {
                if let Node::Split { left, right, .. } = &mut nodes[p] {
                    *(if is_left { left } else { right }) = index as u32;
                }
            }
            depth_reached = depth_reached.max(depth);
            node_counts.fill(0);
            for &row in &self.order[start..end] {
                node_counts[self.y[row as usize] as usize] += 1;
            }
            let pure = node_counts.iter().any(|&c| c as usize == end - start);
            let split = if pure || end - start < 2 || max_depth.is_some_and(|m| depth >= m) {
                None
            } else {
                self.best_split(start, end, &node_counts)
            };
            match split {
                None => nodes.push(Node::Leaf { class: argmax(&node_counts) }),
                Some(split) => {
                    self.partition(start, end, &split);
                    nodes.push(Node::Split {
                        feature: split.feature as u32,
                        threshold: split.threshold,
                        left: 0,
                        right: 0,
                    });
                    let middle = start + split.n_left;
                    stack.push(Pending { start: middle, end, depth: depth + 1, parent: Some((index, false)) });
                    stack.push(Pending { start, end: middle, depth: depth + 1, parent: Some((index, true)) });
                }
            }
        }
        (nodes, depth_reached)
    }
}

impl DecisionTree {
    /// Fits on row-major `x` (`y.len() x n_features`) with labels `y` below `n_classes`.
    pub fn fit_rows(&self, x: &[f32], y: &[u32], n_features: usize, n_classes: usize) -> Result<FittedDecisionTree> {
        check_rows("decision tree", x, y, n_features, n_classes)?;
        let started = Instant::now();
        let (n, d) = (y.len(), n_features);
        let mut columns = vec![0.0f32; n * d];
        for (i, row) in x.chunks_exact(d).enumerate() {
            for (j, &v) in row.iter().enumerate() {
                columns[j * n + i] = v;
            }
        }
        let mut order = Vec::with_capacity(n * d);
        for j in 0..d {
            let values = &columns[j * n..(j + 1) * n];
            let start = order.len();
            order.extend(0..n as u32);
            // Stable, so equal values keep row order and the fit is deterministic.
            order[start..].sort_by(|&a, &b| values[a as usize].total_cmp(&values[b as usize]));
        }
        let builder = TreeBuilder {
            columns,
            y,
            n_rows: n,
            n_features: d,
            n_classes,
            order,
            goes_left: vec![false; n],
            scratch: Vec::with_capacity(n),
            left_counts: vec![0; n_classes],
        };
        let (nodes, depth) = builder.grow(self.max_depth);
        Ok(FittedDecisionTree {
            nodes,
            depth,
            fit_seconds: started.elapsed().as_secs_f64(),
            fitted_on: DataFingerprint::of_rows(x, y, n_features, n_classes),
        })
    }
}

impl Learner for DecisionTree {
    type Fitted = FittedDecisionTree;
    fn fit(&self, data: &PreparedData) -> Result<FittedDecisionTree> {
        let fitted = self.fit_rows(&data.x_train, &data.y_train, data.n_features(), data.n_classes())?;
        Ok(FittedDecisionTree { fitted_on: data.fingerprint(), ..fitted })
    }
}

impl Classifier for FittedDecisionTree {
    fn name(&self) -> String {
        match self.depth {
            depth if depth > 0 => format!("decision tree (depth {depth})"),
            _ => "decision tree".into(),
        }
    }
    fn predict(&self, x: &[f32], n_rows: usize) -> Vec<u32> {
        let width = x.len().checked_div(n_rows).unwrap_or(0);
        if width == 0 {
            return vec![0; n_rows];
        }
        x.chunks_exact(width).map(|row| self.predict_row(row)).collect()
    }
    fn fit_seconds(&self) -> f64 {
        self.fit_seconds
    }
    fn fitted_on(&self) -> &DataFingerprint {
        &self.fitted_on
    }
}
