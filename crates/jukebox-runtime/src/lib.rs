//! Finds and loads ONNX Runtime and runs ONNX models with named f32 inputs.
