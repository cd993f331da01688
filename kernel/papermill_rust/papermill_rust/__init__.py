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
BTreeMap; a value that does not fit its declared type is refused with a message naming it. A list
or map may also come as JSON text (`-p features '["danceability", "energy"]'`, since papermill's
`-p` passes text), and a declaration may span lines (a list with one element per line) up to its
`;`.

**Failed cells.** The Rust (jukebox) kernel answers a failed cell (a `?` error, a compile error,
a panic, an interrupt) with status "error" and its error, so papermill stops the run there as it
does for Python. The engine, registered as papermill's default for Rust notebooks, only waits for
output lines evcxr can send just after a cell's end, so that they stay in the cell's output.
"""
