//! One training step (forward, softmax cross-entropy, backward, Adam), split into two parts
//! that can run at the same time on two cores.
//!
//! Each layer's outputs are split into two blocks of columns ([`column_split`]): part 0 owns the
//! first block, part 1 the second. A part computes its columns of every activation and delta,
//! the gradients of its columns of the weights, and Adam's update of those columns. So each
//! weight is read and written by one part only and never moves between cores. The parts meet
//! between [`Phase`]s wherever one needs what the other wrote: the whole previous layer's
//! activations (forward), every class of a row (softmax), and the other part's share of the
//! layer below's delta (backward: `dZ·Wᵀ` sums over both parts' columns).
//!
//! The split does not depend on how many cores run it: on one core the parts run one after the
//! other, phase by phase, with the same arithmetic in the same order. A seed therefore gives
//! bit-identical weights on one core and on two.
//!
//! Why columns and not half a batch each: at 32 rows a step, the weight matrices are most of the
//! memory a step touches. Split by rows, each part reads (and packs, for the GEMM) all of them,
//! and the two gradients must be added; split by columns, each part reads half, and only
//! activations (32 rows high) cross between the cores.
//!
//! During `fit` the parameters live in the [`Workspace`], in [`Matrix`]es whose rows start on a
//! cache line, and go back to the network after each epoch ([`Workspace::write_to`]). Two
//! cores writing different columns of one cache line would pass it back and forth at every
//! write (false sharing); measured, that made Adam four times slower on two cores than on one.
//!
//! The softmax and the cross-entropy are differentiated together: `dL/dz = (p - onehot) / B`,
//! which is exact and avoids the softmax Jacobian. Adam follows Keras 3.

use std::marker::PhantomData;
use std::ops::Range;

use crate::gemm::{gemm, Strided};
use crate::network::{apply_activation, argmax};
use crate::{Activation, Network};

/// How many parts a step is split into (whatever the number of cores that run them).
pub(crate) const PARTS: usize = 2;

/// The two blocks of an `n`-wide layer's columns. The middle is rounded to 16 columns (64 bytes,
/// one cache line of f32s, two of the GEMM's 8-wide panels), so the parts seldom write the same
/// cache line of a row-major matrix. A layer of 16 columns or fewer goes whole to one part.
pub(crate) fn column_split(n: usize) -> [Range<usize>; PARTS] {
    let middle = (n + 16) / 32 * 16;
    [0..middle, middle..n]
}

/// The two blocks of a batch's rows, for the softmax.
fn row_split(rows: usize) -> [Range<usize>; PARTS] {
    [0..rows / 2, rows / 2..rows]
}

/// A stage of the step. Both parts run the same phase, each on its own columns (or rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// `activation(input · W + b)` of layer `l`, own columns (the last layer stops at the logits).
    Forward(usize),
    /// Own rows: softmax, each row's loss and hit, and the last layer's delta.
    Softmax,
    /// Layer `l`: own columns of its delta (both parts' shares from the layer above, times the
    /// activation's derivative), of its weight and bias gradients, this part's share of the
    /// delta of the layer below, then Adam on own columns of the layer (while its gradients are
    /// still in cache; nothing later in the step reads these weights).
    Backward(usize),
}

impl Phase {
    /// Every phase of a step over `n_layers` layers, in order.
    pub(crate) fn all(n_layers: usize) -> impl Iterator<Item = Phase> {
        (0..n_layers).map(Phase::Forward).chain([Phase::Softmax]).chain((0..n_layers).rev().map(Phase::Backward))
    }
}

/// One cache line of f32s: a `Vec` of these starts on a 64-byte boundary.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(64))]
struct Line([f32; LINE]);

/// f32s per cache line.
const LINE: usize = 16;

/// A row-major matrix whose rows each start on a cache line (the row stride is the column
/// count rounded up to [`LINE`]), so blocks of columns split at multiples of 16 never share one.
pub(crate) struct Matrix {
    lines: Vec<Line>,
    rows: usize,
    cols: usize,
    stride: usize,
}

impl Matrix {
    fn zeros(rows: usize, cols: usize) -> Matrix {
        let stride = cols.div_ceil(LINE) * LINE;
        Matrix { lines: vec![Line::default(); rows * stride / LINE], rows, cols, stride }
    }

    /// A copy of the dense row-major `rows x cols` `values`.
    fn from_dense(rows: usize, cols: usize, values: &[f32]) -> Matrix {
        let mut matrix = Matrix::zeros(rows, cols);
        matrix.copy_from_dense(values);
        matrix
    }

    fn copy_from_dense(&mut self, values: &[f32]) {
        assert_eq!(values.len(), self.rows * self.cols, "matrix size");
        let (stride, cols) = (self.stride, self.cols);
        for (row, dense) in self.values_mut().chunks_exact_mut(stride.max(1)).zip(values.chunks_exact(cols.max(1))) {
            row[..cols].copy_from_slice(dense);
        }
    }

    fn values(&self) -> &[f32] {
        // SAFETY: Line is repr(C) over [f32; 16], so the lines are rows * stride contiguous f32s.
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr().cast(), self.lines.len() * LINE) }
    }

    fn values_mut(&mut self) -> &mut [f32] {
        // SAFETY: as in `values`, borrowed exclusively.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast(), self.lines.len() * LINE) }
    }

    fn as_mut_ptr(&mut self) -> *mut f32 {
        self.lines.as_mut_ptr().cast()
    }
}

/// One part's block of a layer's columns during `fit`: its weights and bias, their gradients
/// and Adam moments, and its columns of the layer's delta, each in an allocation of its own.
///
/// Why not columns of shared matrices: two cores updating the two halves of each row of one
/// matrix slow each other down even when no cache line holds both halves, because each core's
/// prefetcher, streaming along a row, runs on into the other half and takes those lines from
/// the core that owns them. Measured on the project's VM: Adam on the interleaved halves of a
/// 128 x 256 matrix, 4.7 ns per parameter; on two separate blocks, 0.43 ns.
pub(crate) struct ColumnBlock {
    columns: Range<usize>,
    /// `inputs x width` and `1 x width`.
    weights: Matrix,
    bias: Matrix,
    grad_weights: Matrix,
    grad_bias: Matrix,
    /// Adam's first and second moments of the weights and of the bias.
    moments_weights: (Matrix, Matrix),
    moments_bias: (Matrix, Matrix),
    /// `dL/dz` of these columns (`batch x width`).
    delta: Matrix,
}

impl ColumnBlock {
    fn new(network_layer: &crate::Dense, columns: Range<usize>, batch_size: usize) -> Self {
        let (k, n, width) = (network_layer.inputs(), network_layer.outputs(), columns.len());
        let mut weights = Matrix::zeros(k, width);
        let stride = weights.stride.max(1);
        for (row, dense) in weights.values_mut().chunks_exact_mut(stride).zip(network_layer.weights().chunks_exact(n)) {
            row[..width].copy_from_slice(&dense[columns.clone()]);
        }
        ColumnBlock {
            bias: Matrix::from_dense(1, width, &network_layer.bias()[columns.clone()]),
            weights,
            grad_weights: Matrix::zeros(k, width),
            grad_bias: Matrix::zeros(1, width),
            moments_weights: (Matrix::zeros(k, width), Matrix::zeros(k, width)),
            moments_bias: (Matrix::zeros(1, width), Matrix::zeros(1, width)),
            delta: Matrix::zeros(batch_size, width),
            columns,
        }
    }
}

/// One layer's parameters and everything a step computes for it, during `fit`.
pub(crate) struct LayerState {
    inputs: usize,
    outputs: usize,
    activation: Activation,
    blocks: [ColumnBlock; PARTS],
    /// Post-activation output (`batch x outputs`), read whole by both parts as the next layer's
    /// input; the last layer's holds probabilities.
    output: Matrix,
    /// Each part's share of `delta · Wᵀ` (`batch x inputs`), which sum to the delta of the layer
    /// below before its activation's derivative. Empty for the first layer.
    shares: [Matrix; PARTS],
}

impl LayerState {
    /// A dense row-major `rows x outputs` matrix from each block's `rows x width` part.
    fn gather_columns(&self, rows: usize, part_of: impl Fn(&ColumnBlock) -> &Matrix) -> Vec<f32> {
        let mut dense = vec![0.0; rows * self.outputs];
        for block in &self.blocks {
            let matrix = part_of(block);
            for (r, row) in dense.chunks_exact_mut(self.outputs).enumerate() {
                row[block.columns.clone()]
                    .copy_from_slice(&matrix.values()[r * matrix.stride..][..block.columns.len()]);
            }
        }
        dense
    }

    /// The weight gradients, row-major `inputs x outputs`.
    #[cfg(test)]
    pub(crate) fn grad_weights(&self) -> Vec<f32> {
        self.gather_columns(self.inputs, |b| &b.grad_weights)
    }

    /// The bias gradients.
    #[cfg(test)]
    pub(crate) fn grad_bias(&self) -> Vec<f32> {
        self.gather_columns(1, |b| &b.grad_bias)
    }
}

/// The training state of one `fit`: the parameters, Adam's moments and every per-batch buffer,
/// sized for the largest batch and allocated once.
pub(crate) struct Workspace {
    pub(crate) batch_x: Vec<f32>,
    pub(crate) batch_y: Vec<u32>,
    n_inputs: usize,
    pub(crate) layers: Vec<LayerState>,
    /// Cross-entropy of each row, and whether its top class was right.
    row_loss: Vec<f64>,
    row_hit: Vec<bool>,
}

impl Workspace {
    pub(crate) fn new(network: &Network, batch_size: usize) -> Self {
        let layers = network
            .layers()
            .iter()
            .enumerate()
            .map(|(l, layer)| {
                let (k, n) = (layer.inputs(), layer.outputs());
                let share_rows = if l == 0 { 0 } else { batch_size };
                let [first, second] = column_split(n);
                LayerState {
                    inputs: k,
                    outputs: n,
                    activation: layer.activation(),
                    blocks: [ColumnBlock::new(layer, first, batch_size), ColumnBlock::new(layer, second, batch_size)],
                    output: Matrix::zeros(batch_size, n),
                    shares: [Matrix::zeros(share_rows, k), Matrix::zeros(share_rows, k)],
                }
            })
            .collect();
        Workspace {
            batch_x: vec![0.0; batch_size * network.n_inputs()],
            batch_y: vec![0; batch_size],
            n_inputs: network.n_inputs(),
            layers,
            row_loss: vec![0.0; batch_size],
            row_hit: vec![false; batch_size],
        }
    }

    /// Copies the trained weights and biases into `network` (the one this was made from).
    pub(crate) fn write_to(&self, network: &mut Network) {
        assert_eq!(network.layers().len(), self.layers.len(), "workspace made for another network");
        for (layer, state) in network.layers_mut().iter_mut().zip(&self.layers) {
            let (weights, bias) = layer.parameters_mut();
            weights.copy_from_slice(&state.gather_columns(state.inputs, |b| &b.weights));
            bias.copy_from_slice(&state.gather_columns(1, |b| &b.bias));
        }
    }
}

/// Adam's settings and step count, following Keras 3's update: `m += (g - m)(1 - β1)`,
/// `v += (g² - v)(1 - β2)`, `θ -= α m / (√v + ε)` with `α = lr √(1 - β2ᵗ) / (1 - β1ᵗ)`.
pub(crate) struct Adam {
    learning_rate: f32,
    beta1: f32,
    beta2: f32,
    epsilon: f32,
    step: i32,
}

/// The numbers one Adam update uses.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AdamStep {
    alpha: f32,
    keep1: f32,
    keep2: f32,
    epsilon: f32,
}

impl Adam {
    pub(crate) fn new(learning_rate: f32, beta1: f32, beta2: f32, epsilon: f32) -> Self {
        Adam { learning_rate, beta1, beta2, epsilon, step: 0 }
    }

    /// Counts one more step and returns its coefficients.
    pub(crate) fn next_step(&mut self) -> AdamStep {
        self.step += 1;
        let t = self.step;
        let alpha = (self.learning_rate as f64 * (1.0 - (self.beta2 as f64).powi(t)).sqrt()
            / (1.0 - (self.beta1 as f64).powi(t))) as f32;
        AdamStep { alpha, keep1: 1.0 - self.beta1, keep2: 1.0 - self.beta2, epsilon: self.epsilon }
    }
}

/// What changes from one step to the next: the batch's row count and Adam's coefficients.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StepArgs {
    pub(crate) rows: usize,
    pub(crate) adam: AdamStep,
}

/// One column block's matrices, as raw pointers; all have row stride `stride`.
struct BlockView {
    columns: Range<usize>,
    stride: usize,
    weights: *mut f32,
    bias: *mut f32,
    grad_weights: *mut f32,
    grad_bias: *mut f32,
    moments_weights: (*mut f32, *mut f32),
    moments_bias: (*mut f32, *mut f32),
    delta: *mut f32,
}

/// One layer's matrices, as raw pointers (see [`StepView`]). The output has row stride
/// `stride`, the shares `share_stride`.
struct LayerView {
    inputs: usize,
    outputs: usize,
    stride: usize,
    share_stride: usize,
    activation: Activation,
    blocks: [BlockView; PARTS],
    output: *mut f32,
    shares: [*mut f32; PARTS],
}

/// Everything a step reads and writes, as raw pointers, so that both parts can write their own
/// columns of the same row-major matrices at once (interleaved blocks that borrows cannot
/// express). It holds the exclusive borrow of the workspace it was made from for its life.
pub(crate) struct StepView<'a> {
    n_inputs: usize,
    batch_x: *mut f32,
    batch_y: *mut u32,
    batch_size: usize,
    row_loss: *mut f64,
    row_hit: *mut bool,
    layers: Vec<LayerView>,
    _borrow: PhantomData<&'a mut Workspace>,
}

// SAFETY: the two parts touch disjoint elements within a phase, and meet (with acquire/release
// ordering, `cores::PairBarrier`) before either reads what the other wrote; `StepView::run`
// states the contract.
unsafe impl Sync for StepView<'_> {}

/// `len` elements from `ptr` as a slice.
///
/// # Safety
/// They must be inside one live allocation and nobody may write them while the slice lives.
unsafe fn slice<'s, T>(ptr: *const T, len: usize) -> &'s [T] {
    unsafe { std::slice::from_raw_parts(ptr, len) }
}

/// # Safety
/// As [`slice`], and nobody else may read or write them while the slice lives.
unsafe fn slice_mut<'s, T>(ptr: *mut T, len: usize) -> &'s mut [T] {
    unsafe { std::slice::from_raw_parts_mut(ptr, len) }
}

impl BlockView {
    fn new(block: &mut ColumnBlock) -> Self {
        BlockView {
            columns: block.columns.clone(),
            stride: block.weights.stride,
            weights: block.weights.as_mut_ptr(),
            bias: block.bias.as_mut_ptr(),
            grad_weights: block.grad_weights.as_mut_ptr(),
            grad_bias: block.grad_bias.as_mut_ptr(),
            moments_weights: (block.moments_weights.0.as_mut_ptr(), block.moments_weights.1.as_mut_ptr()),
            moments_bias: (block.moments_bias.0.as_mut_ptr(), block.moments_bias.1.as_mut_ptr()),
            delta: block.delta.as_mut_ptr(),
        }
    }
}

impl<'a> StepView<'a> {
    pub(crate) fn new(ws: &'a mut Workspace) -> Self {
        let layers = ws
            .layers
            .iter_mut()
            .map(|state| {
                let [first, second] = &mut state.blocks;
                LayerView {
                    inputs: state.inputs,
                    outputs: state.outputs,
                    stride: state.output.stride,
                    share_stride: state.shares[0].stride,
                    activation: state.activation,
                    blocks: [BlockView::new(first), BlockView::new(second)],
                    output: state.output.as_mut_ptr(),
                    shares: [state.shares[0].as_mut_ptr(), state.shares[1].as_mut_ptr()],
                }
            })
            .collect();
        StepView {
            n_inputs: ws.n_inputs,
            batch_x: ws.batch_x.as_mut_ptr(),
            batch_y: ws.batch_y.as_mut_ptr(),
            batch_size: ws.batch_y.len(),
            row_loss: ws.row_loss.as_mut_ptr(),
            row_hit: ws.row_hit.as_mut_ptr(),
            layers,
            _borrow: PhantomData,
        }
    }

    pub(crate) fn n_layers(&self) -> usize {
        self.layers.len()
    }

    /// Copies the rows `indices` of `x`/`y` into the batch. `&mut self`: no part may be running.
    pub(crate) fn gather(&mut self, x: &[f32], y: &[u32], indices: &[u32]) {
        assert!(indices.len() <= self.batch_size, "more rows than the batch holds");
        let n = self.n_inputs;
        // SAFETY: the buffers hold batch_size rows and nothing else runs (we hold &mut self).
        let (batch_x, batch_y) =
            unsafe { (slice_mut(self.batch_x, self.batch_size * n), slice_mut(self.batch_y, self.batch_size)) };
        for (r, &i) in indices.iter().enumerate() {
            let i = i as usize;
            batch_x[r * n..(r + 1) * n].copy_from_slice(&x[i * n..(i + 1) * n]);
            batch_y[r] = y[i];
        }
    }

    /// Summed loss and number of right answers over the first `rows` rows of the last step, in
    /// row order (the same sum on one core or two). `&mut self`: no part may be running.
    pub(crate) fn scores(&mut self, rows: usize) -> (f64, usize) {
        assert!(rows <= self.batch_size, "more rows than the batch holds");
        // SAFETY: both buffers hold batch_size values, and nothing else runs (&mut self).
        let (loss, hit) = unsafe { (slice(self.row_loss, rows), slice(self.row_hit, rows)) };
        (loss.iter().sum(), hit.iter().filter(|&&h| h).count())
    }

    /// Runs `phase` for `part` on the batch's first `args.rows` rows.
    ///
    /// # Safety
    /// While this runs, the only other code touching the view may be the other part running
    /// the same phase; both parts must have finished a phase (with release/acquire ordering
    /// between them) before either starts the next, and phases must run in the order of
    /// [`Phase::all`].
    pub(crate) unsafe fn run(&self, phase: Phase, part: usize, args: StepArgs) {
        assert!(part < PARTS && args.rows <= self.batch_size && args.rows > 0);
        // SAFETY: forwarded contract; each phase touches only its part's columns or rows of what
        // it writes, and reads what the meetings before it made final.
        unsafe {
            match phase {
                Phase::Forward(l) => self.forward(l, part, args.rows),
                Phase::Softmax => self.softmax(part, args.rows),
                Phase::Backward(l) => self.backward(l, part, args),
            }
        }
    }

    /// The input of layer `l` and its row stride: the batch, or the previous layer's output.
    fn input_of(&self, l: usize) -> (*const f32, usize) {
        match l {
            0 => (self.batch_x, self.n_inputs),
            _ => (self.layers[l - 1].output, self.layers[l - 1].stride),
        }
    }

    unsafe fn forward(&self, l: usize, part: usize, rows: usize) {
        let layer = &self.layers[l];
        let block = &layer.blocks[part];
        let (cols, ld) = (block.columns.clone(), layer.stride);
        let width = cols.len();
        if width == 0 {
            return;
        }
        unsafe {
            let bias = slice(block.bias, width);
            for r in 0..rows {
                slice_mut(layer.output.add(r * ld + cols.start), width).copy_from_slice(bias);
            }
            let (input, input_ld) = self.input_of(l);
            let input = Strided { ptr: input, row_stride: input_ld, col_stride: 1 };
            let weights = Strided { ptr: block.weights, row_stride: block.stride, col_stride: 1 };
            gemm(rows, layer.inputs, width, input, weights, 1.0, layer.output.add(cols.start), ld);
            // The last layer's softmax needs whole rows, so it waits for Phase::Softmax.
            if l + 1 < self.layers.len() {
                for r in 0..rows {
                    apply_activation(layer.activation, slice_mut(layer.output.add(r * ld + cols.start), width), width);
                }
            }
        }
    }

    unsafe fn softmax(&self, part: usize, rows: usize) {
        let last = self.layers.last().expect("a network has layers");
        let (n, ld) = (last.outputs, last.stride);
        let scale = 1.0 / rows as f32;
        for r in row_split(rows)[part].clone() {
            // SAFETY: row r of the logits and of each block's deltas is this part's alone here.
            let (z, label) = unsafe { (slice_mut(last.output.add(r * ld), n), *self.batch_y.add(r) as usize) };
            let best = argmax(z);
            let max = z[best];
            let label_logit = z[label] - max;
            let mut sum = 0.0f32;
            for v in z.iter_mut() {
                *v = (*v - max).exp();
                sum += *v;
            }
            let inv = 1.0 / sum;
            z.iter_mut().for_each(|p| *p *= inv);
            for block in &last.blocks {
                let cols = block.columns.clone();
                // SAFETY: as above.
                let d = unsafe { slice_mut(block.delta.add(r * block.stride), cols.len()) };
                d.iter_mut().zip(&z[cols.clone()]).for_each(|(g, p)| *g = p * scale);
                if cols.contains(&label) {
                    d[label - cols.start] -= scale;
                }
            }
            // -log softmax(z)[label] = log(sum exp(z - max)) - (z[label] - max)
            unsafe {
                *self.row_loss.add(r) = (sum.ln() - label_logit) as f64;
                *self.row_hit.add(r) = best == label;
            }
        }
    }

    unsafe fn backward(&self, l: usize, part: usize, args: StepArgs) {
        let rows = args.rows;
        let layer = &self.layers[l];
        let block = &layer.blocks[part];
        let (cols, ld, k) = (block.columns.clone(), block.stride, layer.inputs);
        let width = cols.len();
        unsafe {
            if let Some(above) = self.layers.get(l + 1) {
                // delta = (share 0 + share 1) ⊙ activation'(z); relu'(z) is 1 where the stored
                // output is positive. Written as selects so they vectorise.
                for r in 0..rows {
                    let delta = slice_mut(block.delta.add(r * ld), width);
                    let at = r * above.share_stride + cols.start;
                    let (s0, s1) = (slice(above.shares[0].add(at), width), slice(above.shares[1].add(at), width));
                    match layer.activation {
                        Activation::Relu => {
                            let output = slice(layer.output.add(r * layer.stride + cols.start), width);
                            for (((d, &a), &x), &y) in delta.iter_mut().zip(output).zip(s0).zip(s1) {
                                let sum = x + y;
                                *d = if a > 0.0 { sum } else { 0.0 };
                            }
                        }
                        Activation::Identity => delta.iter_mut().zip(s0).zip(s1).for_each(|((d, &x), &y)| *d = x + y),
                        Activation::Softmax => unreachable!("fit rejects hidden softmax layers"),
                    }
                }
            }
            if width == 0 {
                if l > 0 {
                    slice_mut(layer.shares[part], rows * layer.share_stride).fill(0.0);
                }
                return;
            }
            // dW = inputᵀ · delta ; db = column sums of delta (this block's columns).
            let (input, input_ld) = self.input_of(l);
            let input_t = Strided { ptr: input, row_stride: 1, col_stride: input_ld };
            let delta = Strided { ptr: block.delta, row_stride: ld, col_stride: 1 };
            gemm(k, rows, width, input_t, delta, 0.0, block.grad_weights, ld);
            let grad_bias = slice_mut(block.grad_bias, width);
            grad_bias.fill(0.0);
            for r in 0..rows {
                let row = slice(block.delta.add(r * ld), width);
                grad_bias.iter_mut().zip(row).for_each(|(g, d)| *g += d);
            }
            // This part's share of the layer below's delta: delta · Wᵀ over this block.
            if l > 0 {
                let weights_t = Strided { ptr: block.weights, row_stride: 1, col_stride: ld };
                gemm(rows, width, k, delta, weights_t, 0.0, layer.shares[part], layer.share_stride);
            }
            // Adam on this block, while its gradients are in cache; the share above was the
            // step's last use of these weights.
            let adam = args.adam;
            adam_update(
                Span { rows: k, width, stride: ld },
                (block.weights, block.grad_weights),
                (block.moments_weights.0, block.moments_weights.1),
                adam,
            );
            adam_update(
                Span { rows: 1, width, stride: ld },
                (block.bias, block.grad_bias),
                (block.moments_bias.0, block.moments_bias.1),
                adam,
            );
        }
    }
}

/// Runs a whole step on this thread: each phase for part 0, then for part 1.
pub(crate) fn run_on_one_core(view: &StepView, args: StepArgs) {
    for phase in Phase::all(view.n_layers()) {
        for part in 0..PARTS {
            // SAFETY: one thread, phases in order, each finished by both parts before the next.
            unsafe { view.run(phase, part, args) };
        }
    }
}

/// `rows x width` elements, rows `stride` apart.
#[derive(Clone, Copy)]
struct Span {
    rows: usize,
    width: usize,
    stride: usize,
}

/// Element-wise Adam step over a block of parameters, with their gradients and moments at the
/// same positions. Uses 8-wide AVX when the CPU has it (the update is a sixth of the training
/// time otherwise); the arithmetic is the same IEEE operations either way, so results do not
/// depend on the path taken.
///
/// # Safety
/// The block must be inside each of the five arrays, and this thread their only user meanwhile.
unsafe fn adam_update(
    block: Span,
    (params, grads): (*mut f32, *mut f32),
    (m, v): (*mut f32, *mut f32),
    adam: AdamStep,
) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU supports AVX, checked just above; the rest is the caller's contract.
        unsafe { adam_update_avx(block, (params, grads), (m, v), adam) };
        return;
    }
    // SAFETY: the caller's contract.
    unsafe { adam_update_body(block, (params, grads), (m, v), adam) };
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn adam_update_avx(
    block: Span,
    (params, grads): (*mut f32, *mut f32),
    (m, v): (*mut f32, *mut f32),
    adam: AdamStep,
) {
    // SAFETY: the caller's contract.
    unsafe { adam_update_body(block, (params, grads), (m, v), adam) };
}

/// One zipped loop per row so the compiler vectorises it; inlined into each feature-specific
/// caller.
#[inline(always)]
unsafe fn adam_update_body(
    block: Span,
    (params, grads): (*mut f32, *mut f32),
    (m, v): (*mut f32, *mut f32),
    adam: AdamStep,
) {
    let AdamStep { alpha, keep1, keep2, epsilon } = adam;
    for i in 0..block.rows {
        let at = i * block.stride;
        // SAFETY: the caller's contract.
        let (params, grads, m, v) = unsafe {
            (
                slice_mut(params.add(at), block.width),
                slice(grads.add(at), block.width),
                slice_mut(m.add(at), block.width),
                slice_mut(v.add(at), block.width),
            )
        };
        for (((p, &g), m), v) in params.iter_mut().zip(grads).zip(m.iter_mut()).zip(v.iter_mut()) {
            *m += (g - *m) * keep1;
            *v += (g * g - *v) * keep2;
            *p -= *m * alpha / (v.sqrt() + epsilon);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::layer_name;
    use crate::Dense;

    /// A whole step over both parts on this thread, leaving the gradients of the mean loss in
    /// `ws`; returns (summed loss, right answers).
    fn forward_backward(ws: &mut Workspace, rows: usize) -> (f64, usize) {
        let mut view = StepView::new(ws);
        let args = StepArgs { rows, adam: Adam::new(1e-3, 0.9, 0.999, 1e-7).next_step() };
        for phase in Phase::all(view.n_layers()) {
            for part in 0..PARTS {
                // SAFETY: one thread, phases in order.
                unsafe { view.run(phase, part, args) };
            }
        }
        view.scores(rows)
    }

    /// (inputs, outputs, weights, bias, activation) of one layer, in f64.
    type ReferenceLayer = (usize, usize, Vec<f64>, Vec<f64>, Activation);

    /// Straightforward f64 forward pass and mean cross-entropy: the reference the optimised f32
    /// backward pass is checked against.
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
    fn column_split_covers_every_column_at_cache_line_boundaries() {
        for n in 1..300 {
            let [first, second] = column_split(n);
            assert_eq!((first.start, first.end, second.end), (0, second.start, n), "n = {n}");
            assert_eq!(first.end % 16, 0, "n = {n}");
            assert!(first.len().abs_diff(second.len()) <= 16, "n = {n}: {first:?} {second:?}");
        }
        assert_eq!(column_split(72), [0..32, 32..72]);
        assert_eq!(column_split(256), [0..128, 128..256]);
    }

    #[test]
    fn backward_pass_matches_finite_differences() {
        use Activation::*;
        // Layers wider than 16 so both parts own columns; 7 rows so the softmax split is uneven.
        let network = Network::new(4, &[(20, Relu), (33, Identity), (18, Softmax)], 11);
        let rows = 7;
        let x: Vec<f32> = (0..rows * 4).map(|i| ((i * 37 % 19) as f32 / 9.0) - 1.0).collect();
        let y: Vec<u32> = (0..rows as u32).map(|r| r * 5 % 18).collect();
        let mut ws = Workspace::new(&network, rows);
        ws.batch_x.copy_from_slice(&x);
        ws.batch_y.copy_from_slice(&y);
        let (loss_sum, _) = forward_backward(&mut ws, rows);

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
                    let state = &ws.layers[l];
                    let analytic = if is_bias { state.grad_bias()[i] } else { state.grad_weights()[i] } as f64;
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
        assert!(ws.layers.iter().flat_map(|s| s.grad_weights()).any(|g| g.abs() > 1e-3));
    }

    #[test]
    fn first_adam_step_moves_each_parameter_by_the_learning_rate() {
        // With m and v starting at zero, Adam's bias-corrected first step is lr * g / (|g| + ε̂),
        // i.e. almost exactly lr against the sign of the gradient.
        let mut network = Network::new(3, &[(20, Activation::Relu), (2, Activation::Softmax)], 5);
        let before = network.clone();
        let mut ws = Workspace::new(&network, 4);
        ws.batch_x.copy_from_slice(&[0.5, -0.2, 0.9, 0.1, 0.3, -0.7, -0.4, 0.8, 0.2, 0.6, 0.6, 0.6]);
        ws.batch_y.copy_from_slice(&[0, 1, 1, 0]);
        let view = StepView::new(&mut ws);
        run_on_one_core(&view, StepArgs { rows: 4, adam: Adam::new(1e-3, 0.9, 0.999, 1e-7).next_step() });
        drop(view);
        ws.write_to(&mut network);
        let mut moved = 0;
        for (l, (new, old)) in network.layers().iter().zip(before.layers()).enumerate() {
            for ((n, o), g) in new.weights().iter().zip(old.weights()).zip(ws.layers[l].grad_weights()) {
                if g.abs() > 1e-2 {
                    let step = o - n;
                    assert!((step - 1e-3 * g.signum()).abs() < 1e-5, "step {step} for gradient {g}");
                    moved += 1;
                } else if g == 0.0 {
                    assert_eq!(n, o);
                }
            }
        }
        assert!(moved > 5);
    }
}
