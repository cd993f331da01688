//! The logistic regression's objective: the mean penalised cross-entropy of a softmax over one
//! weighted sum per class, and its gradient, in one pass over the rows.
//!
//! This is where the logistic regression spends its time, so it is written for speed without
//! giving up reproducibility: the rows are cut into a fixed number of chunks (a function of the
//! number of rows only) that run on every core and are summed in chunk order, so the loss and
//! gradient are the same bits however many threads ran. Each row's scores, softmax, loss and
//! gradient contribution are computed while the row is in cache, with a branch-free `exp`
//! ([`exp_nonpositive`]) the compiler turns into vector code, and an AVX2 build of the row loop
//! where the CPU has it (plain multiplies and adds in both, so both give the same numbers).
//! [`super::lbfgs`] minimises it through the [`Objective`] trait.

use super::lbfgs::Objective;

/// The mean penalised cross-entropy and its gradient at given parameters. Parameters are laid
/// out as `n_features x n_classes` weights followed by `n_classes` intercepts.
pub(super) struct SoftmaxLoss<'a> {
    pub(super) x: &'a [f32],
    pub(super) y: &'a [u32],
    /// How many identical rows each row stands for.
    pub(super) counts: &'a [u32],
    pub(super) n_features: usize,
    pub(super) n_classes: usize,
    pub(super) alpha: f64,
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
pub(super) struct Scratch {
    partial: Vec<f64>,
    scores: Vec<f64>,
}

impl SoftmaxLoss<'_> {
    /// Rows per chunk. It depends only on the number of rows, never on the number of cores, so
    /// the chunks' sums, added in chunk order, give the same bits on every machine.
    fn chunk_rows(&self) -> usize {
        self.y.len().div_ceil(MAX_CHUNKS).max(MIN_CHUNK_ROWS)
    }
}

impl Objective for SoftmaxLoss<'_> {
    type Scratch = Scratch;

    fn n_params(&self) -> usize {
        (self.n_features + 1) * self.n_classes
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
        let run = |chunk: Chunk| chunk_loss(chunk, weights, intercepts);
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

/// One chunk's summed cross-entropy; writes its summed gradient into `chunk.grad` (zeroed
/// first). On x86-64 the AVX2 build of [`chunk_loss_rows`] is used where the CPU has it.
fn chunk_loss(chunk: Chunk, weights: &[f64], intercepts: &[f64]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { chunk_loss_avx2(chunk, weights, intercepts) };
    }
    chunk_loss_rows(chunk, weights, intercepts)
}

/// [`chunk_loss_rows`] compiled for AVX2: four `f64` lanes instead of SSE2's two. No FMA, so
/// the numbers are those of the plain build.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn chunk_loss_avx2(chunk: Chunk, weights: &[f64], intercepts: &[f64]) -> f64 {
    chunk_loss_rows(chunk, weights, intercepts)
}

#[inline(always)]
fn chunk_loss_rows(Chunk { x, y, counts, grad, scores }: Chunk, weights: &[f64], intercepts: &[f64]) -> f64 {
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

/// One row's class scores: `intercepts + row · weights`, with `weights` row-major
/// `n_features x n_classes` (the layout training and prediction share).
#[inline(always)]
pub(super) fn linear_scores(row: &[f32], weights: &[f64], intercepts: &[f64], scores: &mut [f64]) {
    scores.copy_from_slice(intercepts);
    for (&v, w) in row.iter().zip(weights.chunks_exact(intercepts.len())) {
        let v = v as f64;
        scores.iter_mut().zip(w).for_each(|(s, &w)| *s += v * w);
    }
}
