//! A small dense neural network: training on a GEMM with Adam, and export to ONNX.
