"""papermill parameter translator for Rust notebooks run by the evcxr kernel.

papermill injects a cell after the notebook's `parameters` cell. For Rust that cell must keep the
type each parameter was declared with (an injected `let epochs = 5;` would turn a `usize` into an
`i32`), so every assignment is written as

    let epochs = papermill_set(epochs, 5i64);

where `papermill_set` converts the literal into the type of the existing binding through the
`FromPapermill` trait defined at the top of the injected cell. Supported values: int, float, bool,
str (escaped), None (for `Option<_>` parameters), lists and dicts of one element type.
"""
