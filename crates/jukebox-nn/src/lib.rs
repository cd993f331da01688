//! A small dense neural network: training on a GEMM with Adam, and export to ONNX.
//!
//! The workshop's model is a plain multi-layer perceptron: 13 scalar song features go through
//! dense layers of 32, 64, 128 and 256 units with ReLU, then a softmax over the countries.
//! This crate builds such networks ([`Network::workshop`] or any stack via [`Network::new`]),
//! trains them with mini-batch Adam and categorical cross-entropy ([`Network::fit`]), predicts
//! ([`Network::predict_proba`], [`Network::predict`]) and writes them as ONNX
//! ([`onnx::to_onnx_bytes`]) so ONNX Runtime, OpenVINO or a KServe server can run them.
//!
//! Defaults follow Keras so results compare with the upstream recipe: Glorot-uniform weights,
//! zero biases, Adam(lr 1e-3, beta1 0.9, beta2 0.999, eps 1e-7), batch 32, reshuffling every
//! epoch. Everything random comes from a seeded ChaCha stream, so the same seeds give
//! bit-identical weights on the same machine.
//!
//! Data layout everywhere: features are one `&[f32]` in row-major order (`n_rows x n_inputs`),
//! labels are class indices `&[u32]`, probabilities come back row-major `n_rows x n_outputs`.
//!
//! ```
//! use jukebox_nn::{FitOptions, Network, Samples};
//!
//! // Two features, two classes: class 1 when x0 > x1.
//! let x: Vec<f32> = (0..200).flat_map(|i| [(i % 10) as f32 / 10.0, (i / 20) as f32 / 10.0]).collect();
//! let y: Vec<u32> = x.chunks(2).map(|r| (r[0] > r[1]) as u32).collect();
//! let mut network = Network::workshop(2, 2, 42);
//! let options = FitOptions { epochs: 3, ..FitOptions::default() };
//! let history = network.fit(Samples::new(&x, &y), &options, &mut |_| {}).unwrap();
//! assert_eq!(history.loss.len(), 3);
//! let classes = network.predict(&x, y.len());
//! assert_eq!(classes.len(), y.len());
//! ```
//!
//! Speed: training is single-threaded on `matrixmultiply`'s sgemm with all buffers allocated
//! once per `fit`, and runs with flush-to-zero enabled (subnormal floats otherwise slow
//! training several-fold as weights shrink). `benches/train_throughput.rs` measures it.
//!
//! Why our own network instead of candle or burn: measured on this workshop's data (2 cores),
//! candle 0.11 trained the same MLP at about half this crate's speed (31-38k vs 64-71k samples/s),
//! slower still with two threads, with an unseeded initialisation (no reproducible runs), and its
//! ONNX support needs `protoc` at build time; burn is a much larger build for a 5-layer
//! perceptron. What the workshop needs is small: dense layers, ReLU, softmax, Adam, Keras's
//! defaults, seeded and bit-reproducible, written as ONNX that ONNX Runtime and OpenVINO run
//! (`onnx`, on `onnx-protobuf`'s generated types).

mod float_env;
mod gemm;
mod network;
pub mod onnx;
mod summary;
mod train;

pub use network::{Activation, Dense, Network};
pub use summary::{thousands, Summary, SummaryRow};
pub use train::{EpochProgress, FitOptions, History, Samples};

/// Everything that can go wrong in this crate. Messages name the argument, row or layer at
/// fault so a notebook user can fix the call.
#[derive(Debug, thiserror::Error)]
pub enum NnError {
    /// A flat buffer does not hold `rows x columns` values.
    #[error("{what} has {actual} values, expected {rows} rows x {columns} columns = {expected}")]
    Shape { what: String, rows: usize, columns: usize, expected: usize, actual: usize },
    /// A class label is not below the number of network outputs.
    #[error(
        "{what}: label {label} in row {row} is out of range, the network has {n_classes} classes (0..{n_classes})"
    )]
    LabelOutOfRange { what: String, row: usize, label: u32, n_classes: usize },
    /// A feature value is NaN or infinite.
    #[error("{what}: value {value} in row {row}, column {column} is not a finite number")]
    NotFinite { what: String, row: usize, column: usize, value: f32 },
    /// A training option has a value that cannot work.
    #[error("invalid option `{option}`: {reason}")]
    InvalidOption { option: &'static str, reason: String },
    /// The network's structure does not fit the request (for example training without a softmax
    /// output, or layers whose sizes do not chain).
    #[error("unsupported network: {0}")]
    Unsupported(String),
    /// The loss became NaN or infinite, usually because the learning rate is too high or the
    /// inputs are not scaled.
    #[error("training diverged: loss is {loss} at epoch {epoch}, batch {batch}; lower the learning rate or scale the inputs")]
    Diverged { epoch: usize, batch: usize, loss: f32 },
    /// The ONNX spec does not match the network (input count, names).
    #[error("ONNX export: {0}")]
    OnnxSpec(String),
    /// Protobuf serialisation failed.
    #[error("ONNX export: protobuf encoding failed: {0}")]
    Protobuf(#[from] protobuf::Error),
}

/// Checks that `values` holds `rows x columns` numbers.
pub(crate) fn check_shape(what: &str, values: usize, rows: usize, columns: usize) -> Result<(), NnError> {
    let expected = rows.saturating_mul(columns);
    if values != expected {
        return Err(NnError::Shape { what: what.to_string(), rows, columns, expected, actual: values });
    }
    Ok(())
}
