//! The network itself: a stack of dense layers, each with one activation, and inference.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{check_shape, NnError};
use crate::gemm::matmul;
use crate::summary::{Summary, SummaryRow};

/// What a dense layer applies to `x·W + b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Activation {
    /// `max(0, z)`.
    Relu,
    /// Row-wise `exp(z) / sum(exp(z))`; training supports it on the last layer only, where it
    /// pairs with cross-entropy.
    Softmax,
    /// `z` unchanged.
    Identity,
}

impl Activation {
    /// Lower-case name as Keras spells it ("relu", "softmax", "linear").
    pub fn keras_name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Softmax => "softmax",
            Activation::Identity => "linear",
        }
    }
}

/// One fully connected layer: `activation(x · weights + bias)`.
///
/// `weights` is `inputs x outputs`, row-major (the layout of a Keras kernel and of the `B`
/// operand of ONNX `Gemm`), `bias` has `outputs` values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dense {
    inputs: usize,
    outputs: usize,
    weights: Vec<f32>,
    bias: Vec<f32>,
    activation: Activation,
}

impl Dense {
    /// A layer from explicit parameters; fails when `weights` is not `inputs x outputs` or
    /// `bias` not `outputs` long.
    pub fn new(
        inputs: usize,
        outputs: usize,
        weights: Vec<f32>,
        bias: Vec<f32>,
        activation: Activation,
    ) -> Result<Dense, NnError> {
        if inputs == 0 || outputs == 0 {
            return Err(NnError::Unsupported(format!(
                "a dense layer needs at least one input and one output, got {inputs} x {outputs}"
            )));
        }
        check_shape("layer weights", weights.len(), inputs, outputs)?;
        check_shape("layer bias", bias.len(), 1, outputs)?;
        Ok(Dense { inputs, outputs, weights, bias, activation })
    }

    /// Glorot-uniform weights (`U(-l, l)`, `l = sqrt(6 / (inputs + outputs))`) and zero bias,
    /// Keras's defaults for `Dense`.
    pub fn glorot_uniform(inputs: usize, outputs: usize, activation: Activation, rng: &mut impl Rng) -> Dense {
        assert!(
            inputs > 0 && outputs > 0,
            "a dense layer needs at least one input and one output, got {inputs} x {outputs}"
        );
        let limit = (6.0 / (inputs + outputs) as f64).sqrt() as f32;
        let weights = (0..inputs * outputs).map(|_| rng.random_range(-limit..limit)).collect();
        Dense { inputs, outputs, weights, bias: vec![0.0; outputs], activation }
    }

    pub fn inputs(&self) -> usize {
        self.inputs
    }
    pub fn outputs(&self) -> usize {
        self.outputs
    }
    /// Row-major `inputs x outputs`.
    pub fn weights(&self) -> &[f32] {
        &self.weights
    }
    pub fn bias(&self) -> &[f32] {
        &self.bias
    }
    pub fn activation(&self) -> Activation {
        self.activation
    }
    /// Number of trainable numbers (weights plus biases).
    pub fn parameter_count(&self) -> usize {
        self.weights.len() + self.bias.len()
    }

    pub(crate) fn parameters_mut(&mut self) -> (&mut [f32], &mut [f32]) {
        (&mut self.weights, &mut self.bias)
    }

    /// `z = input · W + b` for `rows` rows into `output` (`rows x outputs`), without activation.
    pub(crate) fn affine(&self, input: &[f32], rows: usize, output: &mut [f32]) {
        let output = &mut output[..rows * self.outputs];
        for row in output.chunks_exact_mut(self.outputs) {
            row.copy_from_slice(&self.bias);
        }
        matmul(rows, self.inputs, self.outputs, input, &self.weights, 1.0, output);
    }

    /// `activation(input · W + b)` for `rows` rows into `output`.
    pub(crate) fn forward(&self, input: &[f32], rows: usize, output: &mut [f32]) {
        self.affine(input, rows, output);
        apply_activation(self.activation, &mut output[..rows * self.outputs], self.outputs);
    }
}

/// Applies `activation` in place to a row-major block with `width` columns.
pub(crate) fn apply_activation(activation: Activation, values: &mut [f32], width: usize) {
    match activation {
        // A select, not f32::max, so NaN propagates as in ONNX Relu; a select (rather than a
        // conditional store) also lets the compiler vectorise it.
        Activation::Relu => values.iter_mut().for_each(|v| *v = if *v < 0.0 { 0.0 } else { *v }),
        Activation::Softmax => values.chunks_exact_mut(width).for_each(softmax_in_place),
        Activation::Identity => {}
    }
}

/// Numerically stable softmax of one row.
pub(crate) fn softmax_in_place(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    let inv = 1.0 / sum;
    row.iter_mut().for_each(|v| *v *= inv);
}

/// Index of the largest value (the first one on ties).
pub(crate) fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

/// Rows per block in inference, to bound the scratch memory for large inputs.
const PREDICT_BLOCK_ROWS: usize = 1024;

/// A feed-forward stack of [`Dense`] layers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Network {
    n_inputs: usize,
    layers: Vec<Dense>,
}

impl Network {
    /// A network with `n_inputs` features and one dense layer per `(units, activation)`,
    /// initialised Glorot-uniform from a ChaCha8 stream seeded with `seed`.
    ///
    /// Panics if `layers` is empty or a size is zero (a programming error, not a data error).
    pub fn new(n_inputs: usize, layers: &[(usize, Activation)], seed: u64) -> Network {
        assert!(n_inputs > 0, "a network needs at least one input feature");
        assert!(!layers.is_empty(), "a network needs at least one layer");
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut fan_in = n_inputs;
        let layers = layers
            .iter()
            .map(|&(units, activation)| {
                let layer = Dense::glorot_uniform(fan_in, units, activation, &mut rng);
                fan_in = units;
                layer
            })
            .collect();
        Network { n_inputs, layers }
    }

    /// The workshop's model: `n_inputs -> 32 -> 64 -> 128 -> 256` with ReLU, then
    /// `n_classes` with softmax.
    pub fn workshop(n_inputs: usize, n_classes: usize, seed: u64) -> Network {
        use Activation::*;
        Network::new(n_inputs, &[(32, Relu), (64, Relu), (128, Relu), (256, Relu), (n_classes, Softmax)], seed)
    }

    /// A network from existing layers (for example weights loaded elsewhere); fails when a
    /// layer's inputs do not match the previous layer's outputs.
    pub fn from_layers(n_inputs: usize, layers: Vec<Dense>) -> Result<Network, NnError> {
        if layers.is_empty() {
            return Err(NnError::Unsupported("a network needs at least one layer".into()));
        }
        let mut width = n_inputs;
        for (i, layer) in layers.iter().enumerate() {
            if layer.inputs != width {
                return Err(NnError::Unsupported(format!(
                    "layer {} ({}) takes {} inputs but receives {width}",
                    i + 1,
                    layer_name(i),
                    layer.inputs
                )));
            }
            width = layer.outputs;
        }
        Ok(Network { n_inputs, layers })
    }

    pub fn n_inputs(&self) -> usize {
        self.n_inputs
    }
    pub fn n_outputs(&self) -> usize {
        self.layers.last().map_or(self.n_inputs, |l| l.outputs)
    }
    pub fn layers(&self) -> &[Dense] {
        &self.layers
    }
    pub(crate) fn layers_mut(&mut self) -> &mut [Dense] {
        &mut self.layers
    }
    /// Total trainable numbers.
    pub fn parameter_count(&self) -> usize {
        self.layers.iter().map(Dense::parameter_count).sum()
    }

    /// Output of the last layer for `n_rows` rows of `x` (row-major `n_rows x n_inputs`):
    /// row-major `n_rows x n_outputs` (class probabilities for a softmax network).
    ///
    /// Panics with the expected and actual sizes if `x.len() != n_rows * n_inputs`; use
    /// [`Network::try_predict_proba`] for a `Result`.
    pub fn predict_proba(&self, x: &[f32], n_rows: usize) -> Vec<f32> {
        self.try_predict_proba(x, n_rows).unwrap_or_else(|e| panic!("predict_proba: {e}"))
    }

    /// [`Network::predict_proba`] returning an error on a size mismatch.
    pub fn try_predict_proba(&self, x: &[f32], n_rows: usize) -> Result<Vec<f32>, NnError> {
        check_shape("x", x.len(), n_rows, self.n_inputs)?;
        let n_out = self.n_outputs();
        let mut out = vec![0.0; n_rows * n_out];
        self.for_each_block(x, n_rows, |start, proba| {
            out[start * n_out..start * n_out + proba.len()].copy_from_slice(proba)
        });
        Ok(out)
    }

    /// Runs the network over `x` in blocks of [`PREDICT_BLOCK_ROWS`] rows and hands each block's
    /// outputs (row-major, `rows x n_outputs`) to `f` with the block's first row: the scratch
    /// memory stays a few blocks whatever the number of rows, so scoring the 400k validation and
    /// test rows of the full data needs no 100 MB matrix of probabilities.
    fn for_each_block(&self, x: &[f32], n_rows: usize, mut f: impl FnMut(usize, &[f32])) {
        let widest = self.layers.iter().map(|l| l.outputs).max().unwrap_or(0);
        let block = n_rows.clamp(1, PREDICT_BLOCK_ROWS);
        let (mut ping, mut pong) = (vec![0.0; block * widest], vec![0.0; block * widest]);
        let n_out = self.n_outputs();
        for start in (0..n_rows).step_by(block) {
            let rows = block.min(n_rows - start);
            let input = &x[start * self.n_inputs..(start + rows) * self.n_inputs];
            self.layers[0].forward(input, rows, &mut ping);
            for layer in &self.layers[1..] {
                layer.forward(&ping, rows, &mut pong);
                std::mem::swap(&mut ping, &mut pong);
            }
            f(start, &ping[..rows * n_out]);
        }
    }

    /// Index of the largest output per row (the predicted class).
    ///
    /// Panics on a size mismatch like [`Network::predict_proba`].
    pub fn predict(&self, x: &[f32], n_rows: usize) -> Vec<u32> {
        check_shape("x", x.len(), n_rows, self.n_inputs).unwrap_or_else(|e| panic!("predict: {e}"));
        let n_out = self.n_outputs();
        let mut classes = Vec::with_capacity(n_rows);
        self.for_each_block(x, n_rows, |_, proba| {
            classes.extend(proba.chunks_exact(n_out).map(|row| argmax(row) as u32))
        });
        classes
    }

    /// Predicted classes and mean categorical cross-entropy on labelled rows, in one pass over
    /// them (a sweep scores every run on the validation rows this way).
    pub fn predict_and_loss(&self, x: &[f32], y: &[u32]) -> Result<(Vec<u32>, f32), NnError> {
        self.check_labelled("x", "y", x, y)?;
        let n_out = self.n_outputs();
        let (mut classes, mut loss) = (Vec::with_capacity(y.len()), 0.0f64);
        self.for_each_block(x, y.len(), |start, proba| {
            let rows = proba.len() / n_out;
            loss += cross_entropy_and_correct(proba, &y[start..start + rows], n_out).0;
            classes.extend(proba.chunks_exact(n_out).map(|row| argmax(row) as u32));
        });
        let mean = if y.is_empty() { f32::NAN } else { (loss / y.len() as f64) as f32 };
        Ok((classes, mean))
    }

    /// Mean categorical cross-entropy and accuracy of a softmax network on labelled rows.
    pub fn evaluate(&self, x: &[f32], y: &[u32]) -> Result<(f32, f32), NnError> {
        self.check_labelled("x", "y", x, y)?;
        if y.is_empty() {
            return Ok((f32::NAN, f32::NAN));
        }
        let n_out = self.n_outputs();
        let (mut loss, mut correct) = (0.0f64, 0usize);
        self.for_each_block(x, y.len(), |start, proba| {
            let rows = proba.len() / n_out;
            let (block_loss, block_correct) = cross_entropy_and_correct(proba, &y[start..start + rows], n_out);
            loss += block_loss;
            correct += block_correct;
        });
        Ok(((loss / y.len() as f64) as f32, correct as f32 / y.len() as f32))
    }

    /// A table of layers, output shapes and parameter counts, like Keras's `model.summary()`.
    pub fn summary(&self) -> Summary {
        let mut rows = vec![SummaryRow {
            name: "features".into(),
            kind: "Input".into(),
            output_shape: format!("(None, {})", self.n_inputs),
            parameters: 0,
        }];
        rows.extend(self.layers.iter().enumerate().map(|(i, layer)| SummaryRow {
            name: layer_name(i),
            kind: format!("Dense, {}", layer.activation.keras_name()),
            output_shape: format!("(None, {})", layer.outputs),
            parameters: layer.parameter_count(),
        }));
        Summary { rows, total_parameters: self.parameter_count() }
    }

    /// Checks `x`/`y` sizes against the network, that every feature is finite (NaN or infinity
    /// would silently poison the weights) and every label against the class count.
    pub(crate) fn check_labelled(&self, x_name: &str, y_name: &str, x: &[f32], y: &[u32]) -> Result<(), NnError> {
        check_shape(x_name, x.len(), y.len(), self.n_inputs)?;
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return Err(NnError::NotFinite {
                what: x_name.to_string(),
                row: i / self.n_inputs,
                column: i % self.n_inputs,
                value: x[i],
            });
        }
        let n_classes = self.n_outputs();
        if let Some((row, &label)) = y.iter().enumerate().find(|(_, &l)| l as usize >= n_classes) {
            return Err(NnError::LabelOutOfRange { what: y_name.to_string(), row, label, n_classes });
        }
        Ok(())
    }
}

/// Name of layer `index` (0-based) as used in summaries and ONNX tensor names: `dense_1`, ...
pub fn layer_name(index: usize) -> String {
    format!("dense_{}", index + 1)
}

/// Summed cross-entropy (probabilities clipped at 1e-7 like Keras) and number of right answers.
pub(crate) fn cross_entropy_and_correct(proba: &[f32], y: &[u32], n_classes: usize) -> (f64, usize) {
    let mut loss = 0.0f64;
    let mut correct = 0usize;
    for (row, &label) in proba.chunks_exact(n_classes).zip(y) {
        loss -= (row[label as usize].max(1e-7) as f64).ln();
        correct += (argmax(row) == label as usize) as usize;
    }
    (loss, correct)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workshop_shape_and_parameter_count_match_keras() {
        let network = Network::workshop(13, 72, 1);
        let sizes: Vec<(usize, usize)> = network.layers().iter().map(|l| (l.inputs(), l.outputs())).collect();
        assert_eq!(sizes, [(13, 32), (32, 64), (64, 128), (128, 256), (256, 72)]);
        // Keras model.summary() of the upstream recipe: 62,408 trainable parameters.
        assert_eq!(network.parameter_count(), 62_408);
        assert!(network.layers().iter().all(|l| l.bias().iter().all(|&b| b == 0.0)));
    }

    #[test]
    fn serde_round_trip_keeps_every_weight() {
        let network = Network::workshop(13, 72, 9);
        let json = serde_json::to_string(&network).unwrap();
        let back: Network = serde_json::from_str(&json).unwrap();
        assert_eq!(back, network);
    }

    #[test]
    fn glorot_weights_stay_within_the_limit_and_spread_out() {
        let network = Network::workshop(13, 72, 7);
        for layer in network.layers() {
            let limit = (6.0 / (layer.inputs() + layer.outputs()) as f32).sqrt();
            assert!(layer.weights().iter().all(|w| w.abs() <= limit));
            let max = layer.weights().iter().fold(0.0f32, |m, w| m.max(w.abs()));
            assert!(max > 0.9 * limit, "weights should fill the range, max {max} of {limit}");
            let mean = layer.weights().iter().sum::<f32>() / layer.weights().len() as f32;
            assert!(mean.abs() < 0.1 * limit, "mean {mean} should be near zero");
        }
    }

    #[test]
    fn predict_proba_matches_a_hand_computed_network() {
        // 2 inputs -> 2 relu -> 2 softmax with chosen weights.
        let hidden = Dense::new(2, 2, vec![1.0, -1.0, 2.0, 0.5], vec![0.0, 0.5], Activation::Relu).unwrap();
        let output = Dense::new(2, 2, vec![1.0, 0.0, 0.0, 1.0], vec![0.0, 0.0], Activation::Softmax).unwrap();
        let network = Network::from_layers(2, vec![hidden, output]).unwrap();
        // Row [1, 1]: z = [1+2, -1+0.5+0.5] = [3, 0] -> relu [3, 0] -> softmax.
        let p = network.predict_proba(&[1.0, 1.0], 1);
        let e = 3f32.exp();
        assert!((p[0] - e / (e + 1.0)).abs() < 1e-6 && (p[1] - 1.0 / (e + 1.0)).abs() < 1e-6);
        assert_eq!(network.predict(&[1.0, 1.0, -1.0, 0.0], 2), vec![0, 1]);
    }

    #[test]
    fn predict_handles_more_rows_than_one_block() {
        let network = Network::workshop(3, 4, 3);
        let n = PREDICT_BLOCK_ROWS * 2 + 5;
        let x: Vec<f32> = (0..n * 3).map(|i| (i as f32 * 0.01).sin()).collect();
        let all = network.predict_proba(&x, n);
        let last_row = network.predict_proba(&x[(n - 1) * 3..], 1);
        assert_eq!(&all[(n - 1) * 4..], &last_row[..]);
        for row in all.chunks_exact(4) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
    }

    #[test]
    fn bad_shapes_and_labels_are_reported_by_name() {
        let network = Network::workshop(3, 4, 3);
        let err = network.try_predict_proba(&[0.0; 7], 2).unwrap_err().to_string();
        assert_eq!(err, "x has 7 values, expected 2 rows x 3 columns = 6");
        let err = network.evaluate(&[0.0; 6], &[1, 4]).unwrap_err().to_string();
        assert!(err.contains("label 4 in row 1"), "{err}");
        let layers = vec![
            Dense::new(3, 2, vec![0.0; 6], vec![0.0; 2], Activation::Relu).unwrap(),
            Dense::new(3, 1, vec![0.0; 3], vec![0.0; 1], Activation::Identity).unwrap(),
        ];
        let err = Network::from_layers(3, layers).unwrap_err().to_string();
        assert!(err.contains("layer 2 (dense_2) takes 3 inputs but receives 2"), "{err}");
        assert!(Dense::new(2, 2, vec![0.0; 3], vec![0.0; 2], Activation::Relu)
            .unwrap_err()
            .to_string()
            .contains("layer weights has 3 values"));
    }
}
