//! TODO(storage): filled in by the issue that adds this stage.
