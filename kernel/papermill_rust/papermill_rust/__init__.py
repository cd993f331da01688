"""papermill support for Rust notebooks run by the evcxr kernel: a parameter translator and an
engine.

**Parameters.** papermill injects a cell after the notebook's `parameters` cell. For Rust the
injected values must keep the type each parameter was declared with (an injected `let epochs = 5;`
would make a `usize` an `i32`). The translator reads the declarations (`let epochs: usize = 2; //
help`) of the parameters cell and writes the injected cell as a person would:

    // Parameters
    let epochs: usize = 5;
    let data_dir: Option<String> = Some("/data".to_string());

Supported types: integers, floats, bool, String, &str, PathBuf, Option<T>, Vec<T>, HashMap and
BTreeMap; a value that does not fit its declared type is refused with a message naming it.

**Failed cells.** evcxr reports a failed `?` and a panic on stderr only, and tells Jupyter the
cell succeeded, so papermill would go on to the next cell (which then fails with "cannot find value
`dataset`"). The engine, registered as papermill's default for Rust notebooks, waits for the
stderr lines evcxr can send after the cell's end, and stops the run at a Rust cell that wrote to
stderr, with the text as the cell's error. So notebooks print progress to stdout.
"""
