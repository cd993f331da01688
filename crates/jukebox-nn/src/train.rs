//! Mini-batch training: softmax cross-entropy, backpropagation and Adam as Keras does them.
//!
//! One [`Workspace`] holds every per-batch buffer (inputs, activations, deltas, gradients),
//! allocated once per `fit`, so the inner loop only gathers rows and multiplies matrices.
//! The softmax and the cross-entropy are differentiated together: `dL/dz = (p - onehot) / B`,
//! which is exact and avoids the softmax Jacobian.

use std::ops::ControlFlow;
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::error::NnError;
use crate::float_env::FlushToZeroGuard;
use crate::gemm::{matmul_a_bt, matmul_at_b};
use crate::network::{apply_activation, argmax, layer_name};
use crate::network::{Activation, Network};

/// Labelled rows: `x` row-major `n_rows x n_features`, `y` one class index per row.
#[derive(Debug, Clone, Copy)]
pub struct Samples<'a> {
    pub x: &'a [f32],
    pub y: &'a [u32],
}

impl<'a> Samples<'a> {
    pub fn new(x: &'a [f32], y: &'a [u32]) -> Self {
        Samples { x, y }
    }
    pub fn n_rows(&self) -> usize {
        self.y.len()
    }
}

/// How [`Network::fit`] trains. `Default` gives Keras's defaults (Adam 1e-3/0.9/0.999/1e-7,
/// batch 32, shuffle every epoch, one epoch).
#[derive(Debug, Clone)]
pub struct FitOptions<'a> {
    pub epochs: usize,
    pub batch_size: usize,
    /// Seeds the shuffling stream (weights are seeded by the network's constructor).
    pub seed: u64,
    pub learning_rate: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub epsilon: f32,
    /// Reshuffle the rows before every epoch (Keras's `shuffle=True`).
    pub shuffle: bool,
    /// Call the progress callback every this many batches, and always at the end of an epoch.
    /// 0 means only at the end of each epoch.
    pub progress_every: usize,
    /// Rows scored after every epoch into `History::val_loss` / `val_accuracy`.
    pub validation: Option<Samples<'a>>,
    /// Early stopping, as Keras's `EarlyStopping(monitor="val_loss", patience=N,
    /// restore_best_weights=True)`: training stops once the validation loss has not improved
    /// for `N` epochs in a row, and the network ends with the weights of its best epoch (lowest
    /// validation loss), whether it stopped early or not. Needs `validation`. `None`: every
    /// epoch is trained and the last epoch's weights are kept.
    pub patience: Option<usize>,
}

impl Default for FitOptions<'_> {
    fn default() -> Self {
        FitOptions {
            epochs: 1,
            batch_size: 32,
            seed: 0,
            learning_rate: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-7,
            shuffle: true,
            progress_every: 50,
            validation: None,
            patience: None,
        }
    }
}

/// What the progress callback receives: where training is and how it is going this epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochProgress {
    /// 1-based epoch number.
    pub epoch: usize,
    pub epochs: usize,
    /// Batches done in this epoch (1-based; equals `batches` at the end of the epoch).
    pub batch: usize,
    pub batches: usize,
    /// Mean loss and accuracy over the rows seen so far in this epoch.
    pub loss: f32,
    pub accuracy: f32,
    /// Training speed so far in this epoch.
    pub samples_per_second: f64,
    /// True for the one call at the end of each epoch.
    pub epoch_done: bool,
    /// Validation scores, present on the end-of-epoch call when validation data was given.
    pub val_loss: Option<f32>,
    pub val_accuracy: Option<f32>,
}

/// Per-epoch metrics of a [`Network::fit`] run, like Keras's `History.history`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    pub loss: Vec<f32>,
    pub accuracy: Vec<f32>,
    /// Empty when no validation data was given.
    pub val_loss: Vec<f32>,
    pub val_accuracy: Vec<f32>,
    /// Wall time of each epoch's training pass (validation excluded).
    pub epoch_seconds: Vec<f64>,
    /// Training rows processed per second over the whole run (validation excluded).
    pub samples_per_second: f64,
    /// With early stopping ([`FitOptions::patience`]): the epoch (1-based) whose weights the
    /// network ended with, the one with the lowest validation loss. `None` without it.
    pub best_epoch: Option<usize>,
    /// Whether early stopping ended training before the last epoch asked for.
    pub stopped_early: bool,
}

/// Buffers for one batch, sized for the largest batch.
pub(crate) struct Workspace {
    batch_x: Vec<f32>,
    batch_y: Vec<u32>,
    /// Post-activation output of each layer (`batch x outputs`); the last holds probabilities.
    activations: Vec<Vec<f32>>,
    /// `dL/dz` of each layer (`batch x outputs`).
    deltas: Vec<Vec<f32>>,
    grad_weights: Vec<Vec<f32>>,
    grad_bias: Vec<Vec<f32>>,
}

impl Workspace {
    pub(crate) fn new(network: &Network, batch_size: usize) -> Self {
        let per_layer = |f: &dyn Fn(usize, usize) -> usize| -> Vec<Vec<f32>> {
            network.layers().iter().map(|l| vec![0.0; f(l.inputs(), l.outputs())]).collect()
        };
        Workspace {
            batch_x: vec![0.0; batch_size * network.n_inputs()],
            batch_y: vec![0; batch_size],
            activations: per_layer(&|_, o| batch_size * o),
            deltas: per_layer(&|_, o| batch_size * o),
            grad_weights: per_layer(&|i, o| i * o),
            grad_bias: per_layer(&|_, o| o),
        }
    }

    /// Copies the rows `indices` of `x`/`y` into the batch buffers.
    fn gather(&mut self, x: &[f32], y: &[u32], n_inputs: usize, indices: &[u32]) {
        for (r, &i) in indices.iter().enumerate() {
            let i = i as usize;
            self.batch_x[r * n_inputs..(r + 1) * n_inputs].copy_from_slice(&x[i * n_inputs..(i + 1) * n_inputs]);
            self.batch_y[r] = y[i];
        }
    }
}

/// Forward and backward pass over the first `rows` rows in the workspace. Leaves the gradients
/// of the mean loss in `grad_weights`/`grad_bias` and returns (summed loss, correct count).
pub(crate) fn forward_backward(network: &Network, ws: &mut Workspace, rows: usize) -> (f64, usize) {
    let layers = network.layers();
    let last = layers.len() - 1;

    // Forward.
    for (l, layer) in layers.iter().enumerate() {
        let (before, rest) = ws.activations.split_at_mut(l);
        let input: &[f32] = if l == 0 { &ws.batch_x } else { &before[l - 1] };
        let output = &mut rest[0];
        layer.affine(input, rows, output);
        if l < last {
            apply_activation(layer.activation(), &mut output[..rows * layer.outputs()], layer.outputs());
        }
    }

    // Softmax, cross-entropy and its gradient with respect to the last logits.
    let n_classes = layers[last].outputs();
    let scale = 1.0 / rows as f32;
    let (mut loss_sum, mut correct) = (0.0f64, 0usize);
    let logits = &mut ws.activations[last][..rows * n_classes];
    let delta = &mut ws.deltas[last][..rows * n_classes];
    for ((z, d), &label) in logits.chunks_exact_mut(n_classes).zip(delta.chunks_exact_mut(n_classes)).zip(&ws.batch_y) {
        let label = label as usize;
        let best = argmax(z);
        correct += (best == label) as usize;
        let max = z[best];
        let label_logit = z[label] - max;
        let mut sum = 0.0f32;
        for v in z.iter_mut() {
            *v = (*v - max).exp();
            sum += *v;
        }
        // -log softmax(z)[label] = log(sum exp(z - max)) - (z[label] - max)
        loss_sum += (sum.ln() - label_logit) as f64;
        let inv = 1.0 / sum;
        for (p, g) in z.iter_mut().zip(d.iter_mut()) {
            *p *= inv;
            *g = *p * scale;
        }
        d[label] -= scale;
    }

    // Backward.
    for l in (0..=last).rev() {
        let layer = &layers[l];
        let (n_in, n_out) = (layer.inputs(), layer.outputs());
        let input: &[f32] = if l == 0 { &ws.batch_x } else { &ws.activations[l - 1] };
        let (deltas_before, deltas_rest) = ws.deltas.split_at_mut(l);
        let delta = &deltas_rest[0][..rows * n_out];

        // dW = inputᵀ · delta ; db = column sums of delta.
        matmul_at_b(n_in, rows, n_out, input, delta, 0.0, &mut ws.grad_weights[l]);
        let grad_bias = &mut ws.grad_bias[l];
        grad_bias.fill(0.0);
        for row in delta.chunks_exact(n_out) {
            grad_bias.iter_mut().zip(row).for_each(|(g, d)| *g += d);
        }

        if l > 0 {
            // delta of the previous layer = (delta · Wᵀ) ⊙ activation'(z_prev).
            let previous = &mut deltas_before[l - 1][..rows * n_in];
            matmul_a_bt(rows, n_out, n_in, delta, layer.weights(), 0.0, previous);
            match layers[l - 1].activation() {
                // relu'(z) is 1 where the output is positive; the output is stored, z is not.
                // Written as a select so it vectorises.
                Activation::Relu => previous
                    .iter_mut()
                    .zip(&input[..rows * n_in])
                    .for_each(|(d, &a)| *d = if a > 0.0 { *d } else { 0.0 }),
                Activation::Identity => {}
                Activation::Softmax => unreachable!("fit rejects hidden softmax layers"),
            }
        }
    }
    (loss_sum, correct)
}

/// Adam state, following Keras 3's update: `m += (g - m)(1 - β1)`, `v += (g² - v)(1 - β2)`,
/// `θ -= α m / (√v + ε)` with `α = lr √(1 - β2ᵗ) / (1 - β1ᵗ)`.
pub(crate) struct Adam {
    learning_rate: f32,
    beta1: f32,
    beta2: f32,
    epsilon: f32,
    step: i32,
    moments_weights: Vec<(Vec<f32>, Vec<f32>)>,
    moments_bias: Vec<(Vec<f32>, Vec<f32>)>,
}

impl Adam {
    pub(crate) fn new(network: &Network, learning_rate: f32, beta1: f32, beta2: f32, epsilon: f32) -> Self {
        let zeros = |n: usize| (vec![0.0; n], vec![0.0; n]);
        Adam {
            learning_rate,
            beta1,
            beta2,
            epsilon,
            step: 0,
            moments_weights: network.layers().iter().map(|l| zeros(l.weights().len())).collect(),
            moments_bias: network.layers().iter().map(|l| zeros(l.bias().len())).collect(),
        }
    }

    /// Applies one update with the gradients in `ws`.
    pub(crate) fn apply(&mut self, network: &mut Network, ws: &Workspace) {
        self.step += 1;
        let t = self.step;
        let alpha = (self.learning_rate as f64 * (1.0 - (self.beta2 as f64).powi(t)).sqrt()
            / (1.0 - (self.beta1 as f64).powi(t))) as f32;
        let step = AdamStep { alpha, keep1: 1.0 - self.beta1, keep2: 1.0 - self.beta2, eps: self.epsilon };
        for (l, layer) in network.layers_mut().iter_mut().enumerate() {
            let (weights, bias) = layer.parameters_mut();
            let (m, v) = &mut self.moments_weights[l];
            adam_update(AdamSlices { params: weights, grads: &ws.grad_weights[l], m, v }, step);
            let (m, v) = &mut self.moments_bias[l];
            adam_update(AdamSlices { params: bias, grads: &ws.grad_bias[l], m, v }, step);
        }
    }
}

/// One Adam step's constants: the bias-corrected step size and the moments' update rates
/// (`1 - beta1`, `1 - beta2`).
#[derive(Clone, Copy)]
struct AdamStep {
    alpha: f32,
    keep1: f32,
    keep2: f32,
    eps: f32,
}

/// What one element-wise update reads and writes: a parameter tensor, its gradient and moments.
struct AdamSlices<'a> {
    params: &'a mut [f32],
    grads: &'a [f32],
    m: &'a mut [f32],
    v: &'a mut [f32],
}

/// Element-wise Adam step. Uses 8-wide AVX when the CPU has it (the update is a sixth of the
/// training time otherwise); the arithmetic is the same IEEE operations either way, so results
/// do not depend on the path taken.
fn adam_update(slices: AdamSlices, step: AdamStep) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU supports AVX, checked just above.
        unsafe { adam_update_avx(slices, step) };
        return;
    }
    adam_update_body(slices, step);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
fn adam_update_avx(slices: AdamSlices, step: AdamStep) {
    adam_update_body(slices, step);
}

/// One zipped loop so the compiler vectorises it; inlined into each feature-specific caller.
#[inline(always)]
fn adam_update_body(AdamSlices { params, grads, m, v }: AdamSlices, AdamStep { alpha, keep1, keep2, eps }: AdamStep) {
    for (((p, &g), m), v) in params.iter_mut().zip(grads).zip(m.iter_mut()).zip(v.iter_mut()) {
        *m += (g - *m) * keep1;
        *v += (g * g - *v) * keep2;
        *p -= *m * alpha / (v.sqrt() + eps);
    }
}

fn check_options(network: &Network, train: &Samples, options: &FitOptions) -> Result<(), NnError> {
    let invalid = |option, reason: &str| Err(NnError::InvalidOption { option, reason: reason.to_string() });
    if options.batch_size == 0 {
        return invalid("batch_size", "must be at least 1");
    }
    if !(options.learning_rate.is_finite() && options.learning_rate > 0.0) {
        return invalid("learning_rate", &format!("must be a positive number, got {}", options.learning_rate));
    }
    for (name, beta) in [("beta1", options.beta1), ("beta2", options.beta2)] {
        if !(0.0..1.0).contains(&beta) {
            return invalid(name, &format!("must be in [0, 1), got {beta}"));
        }
    }
    if !(options.epsilon.is_finite() && options.epsilon >= 0.0) {
        return invalid("epsilon", &format!("must be a non-negative number, got {}", options.epsilon));
    }
    let layers = network.layers();
    if layers.last().map(|l| l.activation()) != Some(Activation::Softmax) {
        return Err(NnError::Unsupported(
            "fit trains with softmax cross-entropy, so the last layer must use Activation::Softmax".into(),
        ));
    }
    if let Some(i) = layers[..layers.len() - 1].iter().position(|l| l.activation() == Activation::Softmax) {
        return Err(NnError::Unsupported(format!(
            "softmax is only supported on the last layer, but {} uses it",
            layer_name(i)
        )));
    }
    if train.n_rows() == 0 {
        return invalid("train", "has no rows");
    }
    network.check_labelled("train x", "train y", train.x, train.y)?;
    if let Some(validation) = &options.validation {
        network.check_labelled("validation x", "validation y", validation.x, validation.y)?;
    }
    if options.patience.is_some() && options.validation.as_ref().is_none_or(|v| v.n_rows() == 0) {
        return invalid("patience", "early stopping watches the validation loss, so it needs validation rows");
    }
    if train.n_rows() > u32::MAX as usize {
        return invalid("train", "has more than 2^32 rows");
    }
    Ok(())
}

impl Network {
    /// Trains with mini-batch Adam on softmax cross-entropy; the last layer must be softmax.
    ///
    /// `progress` is called every `options.progress_every` batches and at the end of every
    /// epoch (then with validation scores, if any). Same network, data and options give
    /// bit-identical weights. Returns per-epoch metrics; fails before touching the weights when
    /// sizes, labels or options are wrong, and stops with [`NnError::Diverged`] if the loss
    /// stops being finite.
    pub fn fit(
        &mut self,
        train: Samples<'_>,
        options: &FitOptions<'_>,
        progress: &mut dyn FnMut(&EpochProgress),
    ) -> Result<History, NnError> {
        self.fit_with_control(train, options, &mut |p| {
            progress(p);
            ControlFlow::Continue(())
        })
    }

    /// [`Network::fit`] whose progress callback can stop training: when it returns
    /// `ControlFlow::Break`, training stops right there (mid-epoch if need be) and the history of
    /// the epochs completed so far is returned; the weights are those of the last batch trained.
    /// This is how an interrupt (Ctrl-C, a notebook's stop button) ends a long run within
    /// `progress_every` batches.
    pub fn fit_with_control(
        &mut self,
        train: Samples<'_>,
        options: &FitOptions<'_>,
        progress: &mut dyn FnMut(&EpochProgress) -> ControlFlow<()>,
    ) -> Result<History, NnError> {
        check_options(self, &train, options)?;
        let _flush_to_zero = FlushToZeroGuard::enable();

        let n_rows = train.n_rows();
        let batch_size = options.batch_size.min(n_rows);
        let batches = n_rows.div_ceil(batch_size);
        let mut ws = Workspace::new(self, batch_size);
        let mut adam = Adam::new(self, options.learning_rate, options.beta1, options.beta2, options.epsilon);
        let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
        let mut order: Vec<u32> = (0..n_rows as u32).collect();
        let mut history = History::default();
        let mut training_seconds = 0.0;
        // Early stopping: the lowest validation loss so far, its epoch and weights, and the
        // epochs since it.
        let mut best: Option<(f32, usize, Network)> = None;
        let mut epochs_without_improvement = 0;

        for epoch in 1..=options.epochs {
            if options.shuffle {
                order.shuffle(&mut rng);
            }
            let started = Instant::now();
            let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
            for (b, indices) in order.chunks(batch_size).enumerate() {
                let rows = indices.len();
                ws.gather(train.x, train.y, self.n_inputs(), indices);
                let (batch_loss, batch_correct) = forward_backward(self, &mut ws, rows);
                if !batch_loss.is_finite() {
                    return Err(NnError::Diverged { epoch, batch: b + 1, loss: (batch_loss / rows as f64) as f32 });
                }
                adam.apply(self, &ws);
                loss_sum += batch_loss;
                correct += batch_correct;
                seen += rows;
                let batch = b + 1;
                if options.progress_every > 0
                    && batch % options.progress_every == 0
                    && batch < batches
                    && progress(&EpochProgress {
                        epoch,
                        epochs: options.epochs,
                        batch,
                        batches,
                        loss: (loss_sum / seen as f64) as f32,
                        accuracy: correct as f32 / seen as f32,
                        samples_per_second: seen as f64 / started.elapsed().as_secs_f64(),
                        epoch_done: false,
                        val_loss: None,
                        val_accuracy: None,
                    })
                    .is_break()
                {
                    return Ok(finish(history, n_rows, training_seconds + started.elapsed().as_secs_f64(), seen));
                }
            }
            let seconds = started.elapsed().as_secs_f64();
            training_seconds += seconds;
            let (loss, accuracy) = ((loss_sum / n_rows as f64) as f32, correct as f32 / n_rows as f32);
            history.loss.push(loss);
            history.accuracy.push(accuracy);
            history.epoch_seconds.push(seconds);
            let (mut val_loss, mut val_accuracy) = (None, None);
            if let Some(validation) = &options.validation {
                let (vl, va) = self.evaluate(validation.x, validation.y)?;
                history.val_loss.push(vl);
                history.val_accuracy.push(va);
                (val_loss, val_accuracy) = (Some(vl), Some(va));
            }
            let flow = progress(&EpochProgress {
                epoch,
                epochs: options.epochs,
                batch: batches,
                batches,
                loss,
                accuracy,
                samples_per_second: n_rows as f64 / seconds,
                epoch_done: true,
                val_loss,
                val_accuracy,
            });
            if flow.is_break() {
                return Ok(finish(history, n_rows, training_seconds, 0));
            }
            if let (Some(patience), Some(loss)) = (options.patience, val_loss) {
                // Strictly lower counts as better (Keras's min_delta=0); a NaN loss never does.
                // Keras counts patience 0 like 1: stop at the first epoch without improvement.
                if best.as_ref().is_none_or(|(lowest, _, _)| loss < *lowest) {
                    best = Some((loss, epoch, self.clone()));
                    epochs_without_improvement = 0;
                } else {
                    epochs_without_improvement += 1;
                    if epochs_without_improvement >= patience.max(1) && epoch < options.epochs {
                        history.stopped_early = true;
                        break;
                    }
                }
            }
        }
        if let Some((_, epoch, weights)) = best {
            *self = weights;
            history.best_epoch = Some(epoch);
        }
        Ok(finish(history, n_rows, training_seconds, 0))
    }
}

/// The history with its overall speed: every completed epoch's rows plus `extra_rows` of a
/// stopped one, over the time spent training them.
fn finish(mut history: History, n_rows: usize, training_seconds: f64, extra_rows: usize) -> History {
    let rows = n_rows * history.loss.len() + extra_rows;
    history.samples_per_second = if training_seconds > 0.0 { rows as f64 / training_seconds } else { 0.0 };
    history
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Dense;

    /// Straightforward f64 forward pass and mean cross-entropy: the reference the optimised f32
    /// backward pass is checked against.
    /// (inputs, outputs, weights, bias, activation) of one layer, in f64.
    type ReferenceLayer = (usize, usize, Vec<f64>, Vec<f64>, Activation);

    fn reference_loss(layers: &[ReferenceLayer], x: &[f64], y: &[u32]) -> f64 {
        let n_in = layers[0].0;
        let mut total = 0.0;
        for (r, &label) in y.iter().enumerate() {
            let mut a: Vec<f64> = x[r * n_in..(r + 1) * n_in].to_vec();
            for (inputs, outputs, w, b, activation) in layers {
                let mut z: Vec<f64> = (0..*outputs)
                    .map(|j| b[j] + (0..*inputs).map(|i| a[i] * w[i * outputs + j]).sum::<f64>())
                    .collect();
                match activation {
                    Activation::Relu => z.iter_mut().for_each(|v| *v = v.max(0.0)),
                    Activation::Identity => {}
                    Activation::Softmax => {
                        let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                        let sum: f64 = z.iter().map(|v| (v - max).exp()).sum();
                        z.iter_mut().for_each(|v| *v = (*v - max).exp() / sum);
                    }
                }
                a = z;
            }
            total -= a[label as usize].ln();
        }
        total / y.len() as f64
    }

    #[test]
    fn backward_pass_matches_finite_differences() {
        use Activation::*;
        let network = Network::new(4, &[(6, Relu), (5, Identity), (3, Softmax)], 11);
        let rows = 7;
        let x: Vec<f32> = (0..rows * 4).map(|i| ((i * 37 % 19) as f32 / 9.0) - 1.0).collect();
        let y: Vec<u32> = (0..rows as u32).map(|r| r % 3).collect();
        let mut ws = Workspace::new(&network, rows);
        ws.batch_x.copy_from_slice(&x);
        ws.batch_y.copy_from_slice(&y);
        let (loss_sum, _) = forward_backward(&network, &mut ws, rows);

        let as_f64 = |v: &[f32]| v.iter().map(|&f| f as f64).collect::<Vec<f64>>();
        let layers: Vec<_> = network
            .layers()
            .iter()
            .map(|l: &Dense| (l.inputs(), l.outputs(), as_f64(l.weights()), as_f64(l.bias()), l.activation()))
            .collect();
        let x64 = as_f64(&x);
        let base = reference_loss(&layers, &x64, &y);
        assert!((loss_sum / rows as f64 - base).abs() < 1e-5, "f32 loss {} vs f64 {}", loss_sum / rows as f64, base);

        let h = 1e-6;
        let mut checked = 0;
        for l in 0..layers.len() {
            for is_bias in [false, true] {
                let count = if is_bias { layers[l].3.len() } else { layers[l].2.len() };
                for i in 0..count {
                    let numeric = {
                        let mut plus = layers.clone();
                        let mut minus = layers.clone();
                        if is_bias {
                            plus[l].3[i] += h;
                            minus[l].3[i] -= h;
                        } else {
                            plus[l].2[i] += h;
                            minus[l].2[i] -= h;
                        }
                        (reference_loss(&plus, &x64, &y) - reference_loss(&minus, &x64, &y)) / (2.0 * h)
                    };
                    let analytic = if is_bias { ws.grad_bias[l][i] } else { ws.grad_weights[l][i] } as f64;
                    let tolerance = 1e-4 + 1e-3 * numeric.abs();
                    assert!(
                        (analytic - numeric).abs() < tolerance,
                        "{} {} {i}: analytic {analytic} vs numeric {numeric}",
                        layer_name(l),
                        if is_bias { "bias" } else { "weight" }
                    );
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, network.parameter_count());
        // The check is only meaningful if gradients are not all zero.
        assert!(ws.grad_weights.iter().flatten().any(|g| g.abs() > 1e-3));
    }

    #[test]
    fn first_adam_step_moves_each_parameter_by_the_learning_rate() {
        // With m and v starting at zero, Adam's bias-corrected first step is lr * g / (|g| + ε̂),
        // i.e. almost exactly lr against the sign of the gradient.
        let mut network = Network::new(3, &[(4, Activation::Relu), (2, Activation::Softmax)], 5);
        let before = network.clone();
        let mut ws = Workspace::new(&network, 4);
        ws.batch_x.copy_from_slice(&[0.5, -0.2, 0.9, 0.1, 0.3, -0.7, -0.4, 0.8, 0.2, 0.6, 0.6, 0.6]);
        ws.batch_y.copy_from_slice(&[0, 1, 1, 0]);
        forward_backward(&network, &mut ws, 4);
        let mut adam = Adam::new(&network, 1e-3, 0.9, 0.999, 1e-7);
        adam.apply(&mut network, &ws);
        let mut moved = 0;
        for (l, (new, old)) in network.layers().iter().zip(before.layers()).enumerate() {
            for ((n, o), g) in new.weights().iter().zip(old.weights()).zip(&ws.grad_weights[l]) {
                if g.abs() > 1e-2 {
                    let step = o - n;
                    assert!((step - 1e-3 * g.signum()).abs() < 1e-5, "step {step} for gradient {g}");
                    moved += 1;
                } else if *g == 0.0 {
                    assert_eq!(n, o);
                }
            }
        }
        assert!(moved > 5);
    }

    #[test]
    fn invalid_options_and_structures_are_rejected_before_training() {
        let mut network = Network::workshop(2, 3, 0);
        let original = network.clone();
        let x = [0.0f32; 8];
        let y = [0u32, 1, 2, 1];
        let err = |net: &mut Network, options: &FitOptions, x: &[f32], y: &[u32]| {
            net.fit(Samples::new(x, y), options, &mut |_| {}).unwrap_err().to_string()
        };

        let zero_batch = FitOptions { batch_size: 0, ..Default::default() };
        assert!(err(&mut network, &zero_batch, &x, &y).contains("batch_size"));
        let bad_lr = FitOptions { learning_rate: f32::NAN, ..Default::default() };
        assert!(err(&mut network, &bad_lr, &x, &y).contains("learning_rate"));
        assert!(err(&mut network, &FitOptions::default(), &x, &[0, 1, 3, 1]).contains("train y: label 3 in row 2"));
        assert!(err(&mut network, &FitOptions::default(), &x[..7], &y).contains("train x has 7 values"));
        let bad_validation = FitOptions { validation: Some(Samples::new(&x[..4], &y)), ..Default::default() };
        assert!(err(&mut network, &bad_validation, &x, &y).contains("validation x has 4 values"));
        assert_eq!(network, original, "a rejected fit leaves the weights alone");

        let mut no_softmax = Network::new(2, &[(3, Activation::Identity)], 0);
        assert!(
            err(&mut no_softmax, &FitOptions::default(), &x, &y).contains("last layer must use Activation::Softmax")
        );
        let mut hidden_softmax = Network::new(2, &[(4, Activation::Softmax), (3, Activation::Softmax)], 0);
        assert!(err(&mut hidden_softmax, &FitOptions::default(), &x, &y).contains("dense_1 uses it"));
    }

    #[test]
    fn divergence_is_reported_instead_of_returning_nan_weights() {
        // An absurd learning rate blows the weights up to infinity within a few batches.
        let mut network = Network::workshop(2, 2, 0);
        let x: Vec<f32> = (0..400).map(|i| (i % 7) as f32).collect();
        let y: Vec<u32> = (0..200).map(|i| i % 2).collect();
        let options = FitOptions { learning_rate: 1e30, epochs: 3, ..Default::default() };
        let result = network.fit(Samples::new(&x, &y), &options, &mut |_| {});
        assert!(matches!(result, Err(NnError::Diverged { epoch: 1, .. })), "{result:?}");
    }

    #[test]
    fn a_callback_that_breaks_stops_training_mid_epoch() {
        let mut network = Network::workshop(2, 2, 0);
        let x: Vec<f32> = (0..4000).map(|i| (i % 7) as f32).collect();
        let y: Vec<u32> = (0..2000).map(|i| i % 2).collect();
        let options = FitOptions { epochs: 5, batch_size: 10, progress_every: 10, ..Default::default() };
        let mut calls = Vec::new();
        let history = network
            .fit_with_control(Samples::new(&x, &y), &options, &mut |p| {
                calls.push((p.epoch, p.batch));
                if p.epoch == 2 && p.batch >= 50 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })
            .unwrap();
        assert_eq!(calls.last(), Some(&(2, 50)), "no call after the break");
        assert_eq!(history.loss.len(), 1, "only the completed epoch is in the history");
        assert!(history.samples_per_second > 0.0);
    }

    /// Rows whose labels are noise: a network can only memorise them, so its loss on other
    /// noisy rows rises after the first epochs.
    fn noise(rows: usize, seed: u64) -> (Vec<f32>, Vec<u32>) {
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let mut next = move || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) as u32
        };
        let x = (0..rows * 4).map(|_| (next() % 1000) as f32 / 1000.0).collect();
        let y = (0..rows).map(|_| next() % 3).collect();
        (x, y)
    }

    #[test]
    fn early_stopping_stops_after_patience_epochs_and_restores_the_best_epoch() {
        let (x, y) = noise(300, 1);
        let (vx, vy) = noise(200, 2);
        let layers = [(64, Activation::Relu), (64, Activation::Relu), (3, Activation::Softmax)];
        let options = FitOptions {
            epochs: 200,
            batch_size: 16,
            learning_rate: 0.01,
            validation: Some(Samples::new(&vx, &vy)),
            patience: Some(3),
            ..Default::default()
        };
        let mut network = Network::new(4, &layers, 9);
        let history = network.fit(Samples::new(&x, &y), &options, &mut |_| {}).unwrap();
        assert!(history.stopped_early, "noise labels: the validation loss must stop improving");
        let best = history.best_epoch.expect("early stopping names the epoch it kept");
        let lowest = history.val_loss.iter().copied().fold(f32::INFINITY, f32::min);
        assert_eq!(history.val_loss[best - 1], lowest, "the kept epoch has the lowest validation loss");
        assert_eq!(history.val_loss.len(), best + 3, "stopped 3 epochs without improvement after it");
        assert!(history.val_loss[best..].iter().all(|&l| l >= lowest));

        // The network holds the best epoch's weights: the same as training just that many epochs.
        let mut just_best = Network::new(4, &layers, 9);
        let options_best = FitOptions { epochs: best, patience: None, ..options.clone() };
        just_best.fit(Samples::new(&x, &y), &options_best, &mut |_| {}).unwrap();
        assert_eq!(network, just_best);
        assert_eq!(network.evaluate(&vx, &vy).unwrap().0, lowest);

        // Without validation rows there is nothing to watch.
        let no_validation = FitOptions { validation: None, ..options };
        let error = Network::new(4, &layers, 9).fit(Samples::new(&x, &y), &no_validation, &mut |_| {}).unwrap_err();
        assert!(error.to_string().contains("patience"), "{error}");
    }

    #[test]
    fn non_finite_features_are_rejected_with_their_position() {
        let mut network = Network::workshop(2, 2, 0);
        let x = [0.0, 1.0, f32::NAN, 1.0];
        let err = network.fit(Samples::new(&x, &[0, 1]), &FitOptions::default(), &mut |_| {}).unwrap_err();
        assert_eq!(err.to_string(), "train x: value NaN in row 1, column 0 is not a finite number");
    }
}
