//! What can go wrong in this crate, and the shape check every entry point starts with.
//!
//! [`NnError`] is the crate's one error type; its messages name the argument, row or layer at
//! fault so a notebook user can fix the call. [`check_shape`] is the first check of every call
//! that takes a flat row-major buffer: does it hold `rows x columns` numbers?

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
