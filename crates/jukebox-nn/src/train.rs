//! Mini-batch training: the epochs, batches, progress and history around each step.
//!
//! The step itself (softmax cross-entropy, backpropagation, Adam as Keras does them) is in
//! [`crate::step`]; it is split in two parts that run on two cores when there are two
//! ([`crate::cores`]). One [`Workspace`] holds every per-batch buffer, allocated once per `fit`,
//! so the inner loop only gathers rows and multiplies matrices.

use std::ops::ControlFlow;
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::cores::TwoCores;
use crate::float_env::FlushToZeroGuard;
use crate::network::layer_name;
use crate::step::{run_on_one_core, Adam, StepArgs, StepView, Workspace};
use crate::{Activation, Network, NnError};

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
    /// Cores a step runs on: 1 (the default), 2, or 0 for two when the machine has two or more.
    /// Each step is split in two parts whatever this is, so it changes the speed, never the
    /// weights. Two cores pay off only where they exchange cache lines quickly: on the project's
    /// 2-core VM they trained 1.2x faster than one in some hours and 0.6x in others (README).
    pub threads: usize,
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
            threads: 1,
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
}

fn check_options(network: &Network, train: &Samples, options: &FitOptions) -> Result<(), NnError> {
    let invalid = |option, reason: &str| Err(NnError::InvalidOption { option, reason: reason.to_string() });
    if options.batch_size == 0 {
        return invalid("batch_size", "must be at least 1");
    }
    if options.threads > 2 {
        return invalid(
            "threads",
            &format!("must be 0 (automatic), 1 or 2, got {}: a step splits into two parts", options.threads),
        );
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
        let cores = match options.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get().min(2)),
            n => n,
        };
        if cores == 1 {
            return self.train_epochs(train, options, progress, &mut run_on_one_core);
        }
        let two_cores = TwoCores::default();
        std::thread::scope(|scope| {
            scope.spawn(|| two_cores.helper());
            let stop = StopHelper(&two_cores);
            let result = self.train_epochs(train, options, progress, &mut |view, args| two_cores.run_step(view, args));
            drop(stop);
            result
        })
    }

    /// The epoch and batch loop, with `run_step` running each step.
    fn train_epochs(
        &mut self,
        train: Samples<'_>,
        options: &FitOptions<'_>,
        progress: &mut dyn FnMut(&EpochProgress) -> ControlFlow<()>,
        run_step: &mut dyn FnMut(&StepView, StepArgs),
    ) -> Result<History, NnError> {
        let n_rows = train.n_rows();
        let batch_size = options.batch_size.min(n_rows);
        let batches = n_rows.div_ceil(batch_size);
        let mut ws = Workspace::new(self, batch_size);
        let mut adam = Adam::new(options.learning_rate, options.beta1, options.beta2, options.epsilon);
        let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
        let mut order: Vec<u32> = (0..n_rows as u32).collect();
        let mut history = History::default();
        let mut training_seconds = 0.0;

        for epoch in 1..=options.epochs {
            if options.shuffle {
                order.shuffle(&mut rng);
            }
            let started = Instant::now();
            let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
            let mut view = StepView::new(&mut ws);
            for (b, indices) in order.chunks(batch_size).enumerate() {
                let rows = indices.len();
                view.gather(train.x, train.y, indices);
                run_step(&view, StepArgs { rows, adam: adam.next_step() });
                let (batch_loss, batch_correct) = view.scores(rows);
                if !batch_loss.is_finite() {
                    drop(view);
                    ws.write_to(self);
                    return Err(NnError::Diverged { epoch, batch: b + 1, loss: (batch_loss / rows as f64) as f32 });
                }
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
                    drop(view);
                    ws.write_to(self);
                    return Ok(finish(history, n_rows, training_seconds + started.elapsed().as_secs_f64(), seen));
                }
            }
            drop(view);
            ws.write_to(self);
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
        }
        Ok(finish(history, n_rows, training_seconds, 0))
    }
}

/// Stops the helper thread when training ends, however it ends (a panic included).
struct StopHelper<'a>(&'a TwoCores);

impl Drop for StopHelper<'_> {
    fn drop(&mut self) {
        self.0.stop_helper();
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

    #[test]
    fn one_core_and_two_cores_train_bit_identical_weights() {
        let x: Vec<f32> = (0..3000).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect();
        let y: Vec<u32> = (0..1000).map(|i| (i * 7 % 5) as u32).collect();
        let train = |threads| {
            let mut network = Network::workshop(3, 5, 4);
            let options = FitOptions { epochs: 2, batch_size: 30, threads, ..Default::default() };
            let history = network.fit(Samples::new(&x, &y), &options, &mut |_| {}).unwrap();
            (network, history.loss)
        };
        let (one, one_loss) = train(1);
        let (two, two_loss) = train(2);
        assert_eq!(one, two, "weights differ between one and two cores");
        assert_eq!(one_loss, two_loss);
        assert_ne!(one, Network::workshop(3, 5, 4), "training changed the weights");
        let too_many = FitOptions { threads: 3, ..Default::default() };
        let err = Network::workshop(3, 5, 4).fit(Samples::new(&x, &y), &too_many, &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("threads"), "{err}");
    }

    #[test]
    fn non_finite_features_are_rejected_with_their_position() {
        let mut network = Network::workshop(2, 2, 0);
        let x = [0.0, 1.0, f32::NAN, 1.0];
        let err = network.fit(Samples::new(&x, &[0, 1]), &FitOptions::default(), &mut |_| {}).unwrap_err();
        assert_eq!(err.to_string(), "train x: value NaN in row 1, column 0 is not a finite number");
    }
}
