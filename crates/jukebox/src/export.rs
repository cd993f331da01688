//! TODO(export): filled in by the issue that adds this stage.
