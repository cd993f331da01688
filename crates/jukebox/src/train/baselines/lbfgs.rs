//! Limited-memory BFGS with a strong-Wolfe line search: how the logistic regression minimises
//! its loss, as scikit-learn's `lbfgs` solver (through SciPy) does.
//!
//! L-BFGS keeps the last 10 steps and gradient changes and from them estimates the curvature,
//! so each step goes further than plain gradient descent at the cost of a few dot products. The
//! line search picks a step length that lowers the loss enough and flattens the slope enough
//! (the strong Wolfe conditions), which keeps the curvature estimate positive. Any problem that
//! can give its loss and gradient at a point ([`Objective`]) can be minimised; here it is
//! the logistic regression's softmax loss (`softmax`).

/// A smooth function to minimise: its loss and gradient at any parameters.
pub(super) trait Objective {
    /// Buffers one evaluation needs, made once and reused.
    type Scratch;
    /// Number of parameters.
    fn n_params(&self) -> usize;
    fn scratch(&self) -> Self::Scratch;
    /// Loss at `theta`; writes the gradient into `grad`.
    fn eval(&self, theta: &[f64], grad: &mut [f64], scratch: &mut Self::Scratch) -> f64;
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
fn wolfe_line_search<P: Objective>(
    problem: &P,
    origin: &[f64],
    loss0: f64,
    slope0: f64,
    direction: &[f64],
    first_step: f64,
    theta: &mut [f64],
    grad: &mut [f64],
    scratch: &mut P::Scratch,
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
pub(super) struct Minimum {
    pub(super) theta: Vec<f64>,
    pub(super) iterations: u64,
    pub(super) converged: bool,
}

/// Limited-memory BFGS from zero, as scikit-learn's `lbfgs` solver (through SciPy) runs it:
/// 10 correction pairs, stop when `max|gradient| <= tolerance`, after `max_iterations` steps, or
/// when the loss stops decreasing (relative change below 64 machine epsilons, SciPy's `ftol`).
pub(super) fn lbfgs<P: Objective>(problem: &P, max_iterations: u64, tolerance: f64) -> Minimum {
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
