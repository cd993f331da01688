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
//!
//! **Every row, at the cost of the distinct ones.** The charts repeat a song on every day it
//! stays in a country's Top 50, so the training rows hold far fewer *distinct* (features, label)
//! rows than rows (the shared sample: 12,607 training rows, 4,129 distinct). Both
//! objectives are sums over rows, so both learners merge identical rows into one row with a
//! count before fitting: the cross-entropy and its gradient weigh a row by its count, and the
//! tree's class counts add counts instead of ones. That is the same fit as on every row, exactly
//! (up to the order floating-point sums are taken in), in the time of the distinct rows.
//!
//! **Row budget.** Data without that much repetition could still keep a cell busy for most of a
//! minute. So both learners fit on at most [`DEFAULT_MAX_TRAIN_ROWS`] distinct rows by default
//! (`max_train_rows`; `None` fits every row): past that, a *stratified* random subsample of that
//! many rows ([`TrainingRows`], the sweep's: every class keeps its share of the rows, drawn with
//! the split's seed), and the fitted model's name says so, e.g. "logistic regression (trained on
//! 100,000 of 879,956 rows)", so the comparison table states it ([`budgeted_rows`]).
//!
//! **Speed.** Logistic regression spends its time in one pass over the rows per evaluation. The
//! rows are cut into a fixed number of chunks, summed in a fixed order (so the weights are the
//! same, bit for bit, however many threads ran), and the chunks run on every core. The softmax's
//! exponentials use a branch-free exp (`exp_nonpositive`, as accurate as the system's) that the
//! compiler turns into vector code, and on x86-64 CPUs with AVX2 the row loop is compiled a
//! second time for AVX2 and picked at run time (plain multiplies and adds in both, never fused, so
//! both give the same numbers).

use std::time::Instant;

use jukebox_nn::thousands;

use super::rows::TrainingRows;
use super::{Classifier, Learner, Result, TrainError};
use crate::prepare::{DataFingerprint, PreparedData};

/// The baselines' default row budget: they fit every training row when those hold at most this
/// many distinct rows, else a stratified subsample of this many rows ([`budgeted_rows`]).
pub const DEFAULT_MAX_TRAIN_ROWS: usize = 100_000;

/// Identical training rows (same features, same label) merged into one with a count. The
/// chart data repeats a song on every day it stays in a country's chart, so the full data's
/// 700,000 training rows hold only a few tens of thousands of distinct rows. Both baselines'
/// objectives are sums over rows, so a row counted `c` times weighs exactly as its `c` copies:
/// fitting the merged rows fits every row, in the time of the distinct ones.
struct MergedRows {
    /// Row-major `len x n_features`, first occurrences in their original order.
    x: Vec<f32>,
    y: Vec<u32>,
    counts: Vec<u32>,
}

impl MergedRows {
    fn of(x: &[f32], y: &[u32], n_features: usize) -> MergedRows {
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

    fn len(&self) -> usize {
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
    /// ([`TrainingRows`]); `None` fits every row. Used by [`Learner::fit`], not by `fit_rows`.
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
    fit_seconds: f64,
    fitted_on: DataFingerprint,
    /// "trained on N of M rows" when fitted on a subsample.
    rows_note: Option<String>,
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
        self.rows_note.as_deref()
    }
    /// Distinct (features, label) rows among the rows fitted: what one evaluation costs.
    pub fn distinct_rows(&self) -> usize {
        self.distinct_rows
    }
}

/// The mean penalised cross-entropy and its gradient at given parameters. Parameters are laid
/// out as `n_features x n_classes` weights followed by `n_classes` intercepts.
struct SoftmaxLoss<'a> {
    x: &'a [f32],
    y: &'a [u32],
    /// How many identical rows each row stands for.
    counts: &'a [u32],
    n_features: usize,
    n_classes: usize,
    alpha: f64,
}

/// At most this many chunks of rows per evaluation: enough to keep every core of a laptop busy,
/// few enough that summing the chunks' gradients costs nothing.
const MAX_CHUNKS: usize = 16;
/// Chunks hold at least this many rows, so a small data set is not cut into slivers (and a
/// thread is only started for work worth its start-up cost).
const MIN_CHUNK_ROWS: usize = 2048;

/// One chunk of rows of an evaluation, with its own gradient sum and score row.
struct Chunk<'a> {
    x: &'a [f32],
    y: &'a [u32],
    counts: &'a [u32],
    grad: &'a mut [f64],
    scores: &'a mut [f64],
}

/// Buffers reused across evaluations: one partial gradient and one score row per chunk.
struct Scratch {
    partial: Vec<f64>,
    scores: Vec<f64>,
}

impl SoftmaxLoss<'_> {
    fn n_params(&self) -> usize {
        (self.n_features + 1) * self.n_classes
    }

    /// Rows per chunk. It depends only on the number of rows, never on the number of cores, so
    /// the chunks' sums, added in chunk order, give the same bits on every machine.
    fn chunk_rows(&self) -> usize {
        self.y.len().div_ceil(MAX_CHUNKS).max(MIN_CHUNK_ROWS)
    }

    fn scratch(&self) -> Scratch {
        let chunks = self.y.len().div_ceil(self.chunk_rows()).max(1);
        Scratch { partial: vec![0.0; chunks * self.n_params()], scores: vec![0.0; chunks * self.n_classes] }
    }

    /// Loss at `theta`; writes the gradient into `grad`. One pass over the rows, in chunks that
    /// run on every core: each row's scores, softmax, loss and gradient contribution are computed
    /// while the row is in cache.
    fn eval(&self, theta: &[f64], grad: &mut [f64], scratch: &mut Scratch) -> f64 {
        let (d, k, p) = (self.n_features, self.n_classes, self.n_params());
        let (weights, intercepts) = theta.split_at(d * k);
        let chunk_rows = self.chunk_rows();
        let work: Vec<Chunk> = self
            .x
            .chunks(chunk_rows * d)
            .zip(self.y.chunks(chunk_rows).zip(self.counts.chunks(chunk_rows)))
            .zip(scratch.partial.chunks_exact_mut(p).zip(scratch.scores.chunks_exact_mut(k)))
            .map(|((x, (y, counts)), (grad, scores))| Chunk { x, y, counts, grad, scores })
            .collect();
        let run = |c: Chunk| chunk_loss(c.x, c.y, c.counts, weights, intercepts, c.grad, c.scores);
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(work.len());
        let mut losses = vec![0.0; work.len()];
        if threads <= 1 {
            losses.iter_mut().zip(work).for_each(|(loss, chunk)| *loss = run(chunk));
        } else {
            // Chunk i goes to thread i mod threads; each loss lands in its chunk's slot.
            let mut per_thread: Vec<Vec<(usize, Chunk)>> = (0..threads).map(|_| Vec::new()).collect();
            for (i, chunk) in work.into_iter().enumerate() {
                per_thread[i % threads].push((i, chunk));
            }
            std::thread::scope(|scope| {
                let handles: Vec<_> = per_thread
                    .into_iter()
                    .map(|chunks| scope.spawn(move || chunks.into_iter().map(|(i, c)| (i, run(c))).collect::<Vec<_>>()))
                    .collect();
                for handle in handles {
                    for (i, loss) in handle.join().expect("a logistic regression worker panicked") {
                        losses[i] = loss;
                    }
                }
            });
        }
        grad.fill(0.0);
        for partial in scratch.partial.chunks_exact(p) {
            grad.iter_mut().zip(partial).for_each(|(g, v)| *g += v);
        }
        let loss: f64 = losses.iter().sum();
        let n = self.counts.iter().map(|&c| c as f64).sum::<f64>();
        let mut penalty = 0.0;
        for (g, &w) in grad[..d * k].iter_mut().zip(weights) {
            *g += self.alpha * w;
            penalty += w * w;
        }
        grad.iter_mut().for_each(|g| *g /= n);
        (loss + 0.5 * self.alpha * penalty) / n
    }
}

/// One chunk's summed cross-entropy; writes its summed gradient into `grad` (zeroed first). On
/// x86-64 the AVX2 build of [`chunk_loss_rows`] is used where the CPU has it.
fn chunk_loss(
    x: &[f32],
    y: &[u32],
    counts: &[u32],
    weights: &[f64],
    intercepts: &[f64],
    grad: &mut [f64],
    scores: &mut [f64],
) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { chunk_loss_avx2(x, y, counts, weights, intercepts, grad, scores) };
    }
    chunk_loss_rows(x, y, counts, weights, intercepts, grad, scores)
}

/// [`chunk_loss_rows`] compiled for AVX2: four `f64` lanes instead of SSE2's two. No FMA, so
/// the numbers are those of the plain build.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn chunk_loss_avx2(
    x: &[f32],
    y: &[u32],
    counts: &[u32],
    weights: &[f64],
    intercepts: &[f64],
    grad: &mut [f64],
    scores: &mut [f64],
) -> f64 {
    chunk_loss_rows(x, y, counts, weights, intercepts, grad, scores)
}

#[inline(always)]
fn chunk_loss_rows(
    x: &[f32],
    y: &[u32],
    counts: &[u32],
    weights: &[f64],
    intercepts: &[f64],
    grad: &mut [f64],
    scores: &mut [f64],
) -> f64 {
    let k = intercepts.len();
    let d = weights.len() / k;
    grad.fill(0.0);
    let (grad_w, grad_b) = grad.split_at_mut(d * k);
    let mut loss = 0.0;
    for ((row, &label), &count) in x.chunks_exact(d).zip(y).zip(counts) {
        linear_scores(row, weights, intercepts, scores);
        let (label, count) = (label as usize, count as f64);
        let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let z_label = scores[label] - max;
        scores.iter_mut().for_each(|s| *s = exp_nonpositive(*s - max));
        let sum = sum4(scores);
        // −log softmax = log Σ exp(z − max) − (z_y − max); a NaN score makes the loss NaN, which
        // the line search rejects.
        loss += count * (sum.ln() - z_label);
        let inv = 1.0 / sum;
        scores.iter_mut().for_each(|s| *s *= inv);
        scores[label] -= 1.0;
        // A row standing for `count` identical rows adds their `count` gradients at once.
        scores.iter_mut().for_each(|s| *s *= count);
        // d loss / d z = softmax − one-hot; the weights' gradient adds xᵀ of it.
        for (&v, g) in row.iter().zip(grad_w.chunks_exact_mut(k)) {
            let v = v as f64;
            g.iter_mut().zip(scores.iter()).for_each(|(g, &s)| *g += v * s);
        }
        grad_b.iter_mut().zip(scores.iter()).for_each(|(g, &s)| *g += s);
    }
    loss
}

/// The sum of `values` in four interleaved partial sums (a fixed order, so the same bits every
/// time), which the compiler can keep in one vector register instead of a chain of dependent
/// additions.
#[inline(always)]
fn sum4(values: &[f64]) -> f64 {
    let mut lanes = [0.0; 4];
    let mut quads = values.chunks_exact(4);
    for q in &mut quads {
        lanes.iter_mut().zip(q).for_each(|(l, v)| *l += v);
    }
    let tail: f64 = quads.remainder().iter().sum();
    (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]) + tail
}

/// `exp(x)` for `x <= 0` (softmax after subtracting the maximum), without branches so that a
/// loop over a row of scores becomes vector code. Cody-Waite reduction `x = n·ln 2 + r` with
/// `|r| <= ln 2 / 2`, a degree-12 Taylor polynomial for `exp(r)` (truncation below 2e-16
/// relative), and `2^n` put into the exponent bits. Results are within a few ulp of `f64::exp`;
/// below `exp(-708)` (about 3e-308, nothing next to the softmax's largest term, 1) the value is
/// `exp(-708)`.
#[inline(always)]
pub(crate) fn exp_nonpositive(x: f64) -> f64 {
    // 1.5·2^52: adding it rounds to an integer, which then sits in the low bits of the mantissa.
    const ROUNDER: f64 = 6_755_399_441_055_744.0;
    const LN2_HI: f64 = 0.693_147_180_369_123_8; // ln 2 with its low 32 bits zero (fdlibm)
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10; // ln 2 - LN2_HI
    let x = x.max(-708.0);
    let shifted = x * std::f64::consts::LOG2_E + ROUNDER;
    let n = shifted - ROUNDER;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    // Horner, highest power first: 1 + r(1 + r/2(1 + r/3(...))).
    let mut p = 1.0;
    for i in (1..=12).rev() {
        p = 1.0 + p * r * (1.0 / i as f64);
    }
    let n_int = shifted.to_bits() as i64 - ROUNDER.to_bits() as i64;
    p * f64::from_bits(((n_int + 1023) as u64) << 52)
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
    scratch: &mut Scratch,
) -> Option<Step> {
    const C1: f64 = 1e-4;
    const C2: f64 = 0.9;
    const MAX_EVALUATIONS: usize = 30;
    let mut evaluate = |step: f64, theta: &mut [f64], grad: &mut [f64]| {
        theta.iter_mut().zip(origin.iter().zip(direction)).for_each(|(t, (o, d))| *t = o + step * d);
        let loss = problem.eval(theta, grad, scratch);
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
    let mut scratch = problem.scratch();
    let mut theta = vec![0.0; n];
    let mut grad = vec![0.0; n];
    let mut loss = problem.eval(&theta, &mut grad, &mut scratch);
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
            &mut scratch,
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
            fit_seconds: started.elapsed().as_secs_f64(),
            fitted_on: DataFingerprint::of_rows(x, y, n_features, n_classes),
            rows_note: None,
            distinct_rows: rows.len(),
        })
    }
}

impl Learner for LogisticRegression {
    type Fitted = FittedLogisticRegression;
    /// Fits on the training split, or on a stratified subsample of it when it has more than
    /// `max_train_rows` rows (the subsample's selection is part of the fit time).
    fn fit(&self, data: &PreparedData) -> Result<FittedLogisticRegression> {
        let started = Instant::now();
        let (rows, rows_note) = budgeted_rows(data, self.max_train_rows);
        let fitted = self.fit_rows(&rows.x_train, &rows.y_train, data.n_features(), data.n_classes())?;
        Ok(FittedLogisticRegression {
            fitted_on: data.fingerprint(),
            rows_note,
            fit_seconds: started.elapsed().as_secs_f64(),
            ..fitted
        })
    }
}

/// One row's class scores: `intercepts + row · weights`, with `weights` row-major
/// `n_features x n_classes` (the layout training and prediction share).
#[inline(always)]
fn linear_scores(row: &[f32], weights: &[f64], intercepts: &[f64], scores: &mut [f64]) {
    scores.copy_from_slice(intercepts);
    for (&v, w) in row.iter().zip(weights.chunks_exact(intercepts.len())) {
        let v = v as f64;
        scores.iter_mut().zip(w).for_each(|(s, &w)| *s += v * w);
    }
}

impl Classifier for FittedLogisticRegression {
    fn name(&self) -> String {
        match &self.rows_note {
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
#[derive(Clone, Debug, PartialEq)]
pub struct DecisionTree {
    /// `None` grows the tree until leaves are pure (scikit-learn's default).
    pub max_depth: Option<usize>,
    /// Fit on at most this many training rows, a stratified subsample when there are more
    /// ([`TrainingRows`]); `None` fits every row. Used by [`Learner::fit`], not by `fit_rows`.
    pub max_train_rows: Option<usize>,
}

impl Default for DecisionTree {
    fn default() -> Self {
        DecisionTree { max_depth: None, max_train_rows: Some(DEFAULT_MAX_TRAIN_ROWS) }
    }
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
    /// "trained on N of M rows" when fitted on a subsample.
    rows_note: Option<String>,
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
    /// "trained on 100,000 of 879,956 rows" when fitted on a subsample of the training rows.
    pub fn rows_note(&self) -> Option<&str> {
        self.rows_note.as_deref()
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
    /// How many identical rows each row stands for (see [`MergedRows`]).
    counts: &'a [u32],
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
        // Rows weigh their counts: every sum below is over the identical rows a row stands for.
        let n: u64 = node_counts.iter().map(|&c| c as u64).sum();
        let total_squares: u64 = node_counts.iter().map(|&c| c as u64 * c as u64).sum();
        // Gini: minimising n_l·gini_l + n_r·gini_r is maximising Σc_l²/n_l + Σc_r²/n_r, and moving
        // w rows of class c from right to left changes the sums of squares by O(1).
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
            let mut n_left = 0u64;
            for (i, &row) in order.iter().enumerate() {
                let value = values[row as usize];
                // A threshold fits between the previous value and this one when they differ.
                if i > 0 && value > previous {
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
                let (c, w) = (self.y[row as usize] as usize, self.counts[row as usize]);
                let (left, right, w64) =
                    (self.left_counts[c] as u64, (node_counts[c] - self.left_counts[c]) as u64, w as u64);
                // (l + w)² − l² and r² − (r − w)².
                left_squares += (2 * left + w64) * w64;
                right_squares -= (2 * right - w64) * w64;
                self.left_counts[c] += w;
                n_left += w64;
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
                node_counts[self.y[row as usize] as usize] += self.counts[row as usize];
            }
            let weight: u32 = node_counts.iter().sum();
            let pure = node_counts.contains(&weight);
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
        let fingerprint = DataFingerprint::of_rows(x, y, n_features, n_classes);
        let merged = MergedRows::of(x, y, n_features);
        let (x, y, counts) = (&merged.x[..], &merged.y[..], &merged.counts[..]);
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
            counts,
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
            fitted_on: fingerprint,
            rows_note: None,
        })
    }
}

impl Learner for DecisionTree {
    type Fitted = FittedDecisionTree;
    /// Fits on the training split, or on a stratified subsample of it when it has more than
    /// `max_train_rows` rows (the subsample's selection is part of the fit time).
    fn fit(&self, data: &PreparedData) -> Result<FittedDecisionTree> {
        let started = Instant::now();
        let (rows, rows_note) = budgeted_rows(data, self.max_train_rows);
        let fitted = self.fit_rows(&rows.x_train, &rows.y_train, data.n_features(), data.n_classes())?;
        Ok(FittedDecisionTree {
            fitted_on: data.fingerprint(),
            rows_note,
            fit_seconds: started.elapsed().as_secs_f64(),
            ..fitted
        })
    }
}

impl Classifier for FittedDecisionTree {
    fn name(&self) -> String {
        let depth = (self.depth > 0).then(|| format!("depth {}", self.depth));
        let details: Vec<String> = depth.into_iter().chain(self.rows_note.clone()).collect();
        match details.is_empty() {
            true => "decision tree".into(),
            false => format!("decision tree ({})", details.join("; ")),
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
