//! TODO(display): filled in by the issue that adds this stage.
