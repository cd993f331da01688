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

mod error;
mod float_env;
mod gemm;
mod network;
pub mod onnx;
mod summary;
mod train;

pub use error::NnError;
pub use network::{Activation, Dense, Network};
pub use summary::{thousands, Summary, SummaryRow};
pub use train::{EpochProgress, FitOptions, History, Samples};
