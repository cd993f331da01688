//! # jukebox-runtime: find ONNX Runtime, load ONNX models, run them with named f32 tensors
//!
//! The `ort` crate is built with `load-dynamic`: nothing is linked at build time, and the ONNX
//! Runtime shared library is opened when the first model is loaded. That library comes from the
//! `onnxruntime` wheel on PyPI, so the project venv already holds it. [`runtime_library_path`]
//! finds it, in this order:
//!
//! 1. the `ORT_DYLIB_PATH` environment variable (a full path to `libonnxruntime.so.X.Y.Z`);
//! 2. `libonnxruntime.so*` beside the running program: where `kernel/install-jukebox` puts it
//!    for a `jukebox` command that runs without this checkout;
//! 3. `.venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so*` in the current
//!    directory or any parent of it;
//! 4. the same below this workspace's root (known at compile time), or any parent of it.
//!
//! The library and the ONNX Runtime environment are initialised once per process.
//!
//! [`OnnxModel`] is a loaded model: it reports its inputs and outputs ([`TensorInfo`]: name,
//! KServe datatype such as `FP32`, shape with `-1` for a dynamic dimension) and runs named f32
//! tensors ([`InputTensor`] -> [`OutputTensor`]). Inputs are checked before ONNX Runtime sees
//! them, so a bad tensor gives an [`RuntimeError`] that names it (see
//! [`RuntimeError::is_input_error`]).
//!
//! `OnnxModel` is `Send + Sync`: it holds a small pool of ONNX Runtime sessions, each behind a
//! mutex (running a session needs `&mut` in `ort`), so concurrent callers run in parallel up to
//! the pool size.
//!
//! ```no_run
//! use jukebox_runtime::{InputTensor, OnnxModel};
//! let model = OnnxModel::load("models/jukebox/1/model.onnx")?;
//! let inputs: Vec<InputTensor> = model.inputs().iter()
//!     .map(|info| InputTensor::column(&info.name, &[0.5]))
//!     .collect();
//! let outputs = model.run(&inputs)?;
//! println!("{:?}", outputs[0].data);
//! # Ok::<(), jukebox_runtime::RuntimeError>(())
//! ```

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::{TensorElementType, TensorRef, ValueType};

/// Everything that can go wrong finding the runtime, loading a model or running it.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("ONNX Runtime library not found; set ORT_DYLIB_PATH to libonnxruntime.so.<version> or install the `onnxruntime` wheel into .venv (pip install onnxruntime==1.32.0). Searched: {searched}")]
    LibraryNotFound { searched: String },
    #[error("cannot load ONNX Runtime from {path}: {message}")]
    LibraryLoad { path: PathBuf, message: String },
    #[error("cannot load ONNX model {path}: {message}")]
    ModelLoad { path: PathBuf, message: String },
    #[error("unknown input tensor '{name}'; the model takes: {expected}")]
    UnknownInput { name: String, expected: String },
    #[error("missing input tensor '{name}'")]
    MissingInput { name: String },
    #[error("input tensor '{name}' is given more than once")]
    DuplicateInput { name: String },
    #[error("input tensor '{name}' has shape {shape:?} ({elements} elements) but {actual} values")]
    DataLength { name: String, shape: Vec<i64>, elements: usize, actual: usize },
    #[error("input tensor '{name}' has shape {actual:?} but the model expects {expected:?} (-1 = any size)")]
    ShapeMismatch { name: String, actual: Vec<i64>, expected: Vec<i64> },
    #[error("input tensor '{name}' has batch size {actual} but '{first}' has {expected}; all inputs need the same batch size")]
    BatchMismatch { name: String, actual: i64, first: String, expected: i64 },
    #[error("input tensor '{name}' holds a non-finite value ({value}) at flat index {index}")]
    NonFinite { name: String, index: usize, value: f32 },
    #[error("tensor '{name}' has element type {datatype}; only FP32 tensors are supported")]
    UnsupportedType { name: String, datatype: String },
    #[error("ONNX Runtime failed to run the model: {message}")]
    Run { message: String },
}

impl RuntimeError {
    /// True when the caller's tensors are at fault (a server answers 400), false when the
    /// runtime or the model is (a server answers 500).
    pub fn is_input_error(&self) -> bool {
        matches!(
            self,
            Self::UnknownInput { .. }
                | Self::MissingInput { .. }
                | Self::DuplicateInput { .. }
                | Self::DataLength { .. }
                | Self::ShapeMismatch { .. }
                | Self::BatchMismatch { .. }
                | Self::NonFinite { .. }
        )
    }
}

/// Name, KServe datatype (`FP32`, `INT64`, ...) and shape (`-1` = dynamic) of a model input or
/// output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    pub datatype: String,
    pub shape: Vec<i64>,
}

/// A named f32 input, row-major, borrowed from the caller.
#[derive(Debug, Clone, Copy)]
pub struct InputTensor<'a> {
    pub name: &'a str,
    pub shape: &'a [i64],
    pub data: &'a [f32],
}

impl<'a> InputTensor<'a> {
    /// A tensor of any shape.
    pub fn new(name: &'a str, shape: &'a [i64], data: &'a [f32]) -> Self {
        Self { name, shape, data }
    }

    /// A column `[N, 1]` of N values: the shape of every workshop model input. The shape is
    /// computed from `data.len()` when the model runs.
    pub fn column(name: &'a str, data: &'a [f32]) -> Self {
        Self { name, shape: &[], data }
    }
}

/// A named f32 output, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputTensor {
    pub name: String,
    pub shape: Vec<i64>,
    pub data: Vec<f32>,
}

/// The ONNX Runtime environment, created once per process. The `Err` string is kept so every
/// later caller sees the same explanation.
static ENVIRONMENT: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();

/// Where [`runtime_library_path`] looks, relative to a starting directory and its parents.
const VENV_SITE_PACKAGES: &str = ".venv/lib";

/// Finds the ONNX Runtime shared library (see the crate docs for the search order).
pub fn runtime_library_path() -> Result<PathBuf, RuntimeError> {
    let mut searched = Vec::new();
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH") {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        searched.push(format!("ORT_DYLIB_PATH={} (no such file)", path.display()));
    } else {
        searched.push("ORT_DYLIB_PATH (unset)".to_string());
    }
    if let Some(program_dir) = std::env::current_exe().ok().and_then(|exe| Some(exe.parent()?.to_path_buf())) {
        if let Some(found) = library_in(&program_dir) {
            return Ok(found);
        }
        searched.push(format!("{}/libonnxruntime.so*", program_dir.display()));
    }
    let mut starts = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        starts.push(cwd);
    }
    starts.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    for start in &starts {
        for dir in start.ancestors() {
            if let Some(found) = library_in_venv(&dir.join(VENV_SITE_PACKAGES)) {
                return Ok(found);
            }
        }
        searched.push(format!(
            "{}/**/{VENV_SITE_PACKAGES}/python3*/site-packages/onnxruntime/capi/libonnxruntime.so*",
            start.display()
        ));
    }
    Err(RuntimeError::LibraryNotFound { searched: searched.join("; ") })
}

/// `<venv>/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so*` ([`library_in`]).
fn library_in_venv(venv_lib: &Path) -> Option<PathBuf> {
    let pythons = std::fs::read_dir(venv_lib).ok()?.flatten();
    let found = pythons
        .filter(|python| python.file_name().to_string_lossy().starts_with("python3"))
        .filter_map(|python| library_in(&python.path().join("site-packages/onnxruntime/capi")));
    found.max_by_key(|p| (p.as_os_str().len(), p.clone()))
}

/// `libonnxruntime.so*` (or `.dylib`) in `dir`; the longest name wins so a fully versioned file
/// (`.so.1.32.0`) is preferred over a bare symlink.
fn library_in(dir: &Path) -> Option<PathBuf> {
    let entries = std::fs::read_dir(dir).ok()?.flatten();
    entries
        .filter(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            (name.starts_with("libonnxruntime.so") || name.starts_with("libonnxruntime.") && name.ends_with(".dylib"))
                && entry.path().is_file()
        })
        .map(|entry| entry.path())
        .max_by_key(|p| (p.as_os_str().len(), p.clone()))
}

/// Loads ONNX Runtime and creates the process-wide environment (once).
pub fn environment() -> Result<&'static ort::environment::Environment, RuntimeError> {
    let result = ENVIRONMENT.get_or_init(|| {
        let path = runtime_library_path().map_err(|e| e.to_string())?;
        let builder = ort::init_from(&path)
            .map_err(|e| RuntimeError::LibraryLoad { path: path.clone(), message: e.to_string() }.to_string())?;
        builder
            .with_name("jukebox")
            .build()
            .map_err(|e| RuntimeError::LibraryLoad { path, message: e.to_string() }.to_string())
    });
    match result {
        Ok(env) => Ok(env),
        // Re-create the typed error from its message: the first failure's explanation is kept.
        Err(message) => {
            Err(RuntimeError::LibraryLoad { path: PathBuf::from("ONNX Runtime"), message: message.clone() })
        }
    }
}

/// A loaded ONNX model with a pool of sessions; see the crate docs.
pub struct OnnxModel {
    path: PathBuf,
    inputs: Vec<TensorInfo>,
    outputs: Vec<TensorInfo>,
    sessions: Vec<Mutex<Session>>,
    next_session: AtomicUsize,
}

impl std::fmt::Debug for OnnxModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxModel")
            .field("path", &self.path)
            .field("inputs", &self.inputs)
            .field("outputs", &self.outputs)
            .field("sessions", &self.sessions.len())
            .finish()
    }
}

/// How much ONNX Runtime may rewrite a graph while loading it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GraphRewrites {
    /// Every optimisation, constant folding and operator fusion included (files we wrote).
    #[default]
    All,
    /// None: the graph runs as written.
    None,
    /// Every optimisation except constant folding, for files from elsewhere (a watched bucket):
    /// constant folding is the rewrite that *evaluates* parts of the graph at load time, so a tiny
    /// file could make the loader allocate without bound (a 203-byte `ConstantOfShape` of a huge
    /// shape took 1 GB). The others (operator fusions such as Gemm + Relu, layout changes,
    /// redundant node removal) only rearrange nodes the file already holds, and they are worth
    /// about a third of the model server's throughput on the workshop model.
    AllButConstantFolding,
}

/// ONNX Runtime's name of the constant folding rewrite, for `optimization.disable_specified_optimizers`.
const CONSTANT_FOLDING: &str = "ConstantFolding";

/// An input in graph order: its name, shape and data.
type ResolvedInput<'a> = (&'a str, Vec<i64>, &'a [f32]);

impl OnnxModel {
    /// Loads a model with one session per available CPU core.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, RuntimeError> {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        Self::load_with_sessions(path, cores)
    }

    /// Loads a model with `sessions` independent ONNX Runtime sessions (at least one). Each
    /// session runs single-threaded: the workshop model is tiny, and thread hand-offs inside
    /// ONNX Runtime cost more than they save, so parallelism comes from the pool instead.
    pub fn load_with_sessions(path: impl AsRef<Path>, sessions: usize) -> Result<Self, RuntimeError> {
        Self::load_with_rewrites(path, sessions, GraphRewrites::All)
    }

    /// [`OnnxModel::load_with_sessions`], choosing how much ONNX Runtime rewrites the graph.
    pub fn load_with_rewrites(
        path: impl AsRef<Path>,
        sessions: usize,
        rewrites: GraphRewrites,
    ) -> Result<Self, RuntimeError> {
        let level = match rewrites {
            GraphRewrites::All | GraphRewrites::AllButConstantFolding => GraphOptimizationLevel::Level3,
            GraphRewrites::None => GraphOptimizationLevel::Disable,
        };
        let path = path.as_ref().to_path_buf();
        let env = environment()?;
        let bytes =
            std::fs::read(&path).map_err(|e| RuntimeError::ModelLoad { path: path.clone(), message: e.to_string() })?;
        let load_error = |message: String| RuntimeError::ModelLoad { path: path.clone(), message };
        let mut pool = Vec::new();
        for _ in 0..sessions.max(1) {
            let mut builder = Session::builder(env).map_err(|e| load_error(e.to_string()))?;
            if rewrites == GraphRewrites::AllButConstantFolding {
                builder = builder.with_disabled_optimizers(CONSTANT_FOLDING).map_err(|e| load_error(e.to_string()))?;
            }
            let session = builder
                .with_optimization_level(level)
                .map_err(|e| load_error(e.to_string()))?
                .with_intra_threads(1)
                .map_err(|e| load_error(e.to_string()))?
                .with_inter_threads(1)
                .map_err(|e| load_error(e.to_string()))?
                .commit_from_memory(&bytes)
                .map_err(|e| load_error(e.to_string()))?;
            pool.push(Mutex::new(session));
        }
        let first = pool[0].lock().expect("fresh mutex");
        let inputs = first.inputs().iter().map(|o| tensor_info(o.name(), o.dtype())).collect();
        let outputs = first.outputs().iter().map(|o| tensor_info(o.name(), o.dtype())).collect();
        drop(first);
        Ok(Self { path, inputs, outputs, sessions: pool, next_session: AtomicUsize::new(0) })
    }

    /// The file the model was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The model's inputs, in graph order.
    pub fn inputs(&self) -> &[TensorInfo] {
        &self.inputs
    }

    /// The model's outputs, in graph order.
    pub fn outputs(&self) -> &[TensorInfo] {
        &self.outputs
    }

    /// Number of sessions in the pool (the most calls that run at once).
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Checks the inputs against the model (every input given once, known names, data length
    /// matching shape, shape matching the model, one batch size, finite values) without running.
    pub fn check_inputs(&self, inputs: &[InputTensor<'_>]) -> Result<(), RuntimeError> {
        self.resolve_inputs(inputs).map(|_| ())
    }

    /// Runs the model and returns every output in graph order.
    pub fn run(&self, inputs: &[InputTensor<'_>]) -> Result<Vec<OutputTensor>, RuntimeError> {
        let resolved = self.resolve_inputs(inputs)?;
        for output in &self.outputs {
            if output.datatype != "FP32" {
                return Err(RuntimeError::UnsupportedType {
                    name: output.name.clone(),
                    datatype: output.datatype.clone(),
                });
            }
        }
        let run_error = |e: ort::Error| RuntimeError::Run { message: e.to_string() };
        let mut values = Vec::with_capacity(resolved.len());
        for (name, shape, data) in &resolved {
            let tensor = TensorRef::from_array_view((shape.clone(), *data)).map_err(run_error)?;
            values.push((*name, tensor));
        }
        let mut session = self.pick_session();
        let outputs = session.run(values).map_err(run_error)?;
        let mut result = Vec::with_capacity(self.outputs.len());
        for info in &self.outputs {
            let value = outputs.get(&info.name).ok_or_else(|| RuntimeError::Run {
                message: format!("output '{}' missing from the run's results", info.name),
            })?;
            let (shape, data) = value.try_extract_tensor::<f32>().map_err(run_error)?;
            result.push(OutputTensor { name: info.name.clone(), shape: shape.to_vec(), data: data.to_vec() });
        }
        Ok(result)
    }

    /// Takes a free session if there is one, else waits for the next one round-robin.
    fn pick_session(&self) -> std::sync::MutexGuard<'_, Session> {
        let start = self.next_session.fetch_add(1, Ordering::Relaxed);
        let n = self.sessions.len();
        for i in 0..n {
            if let Ok(guard) = self.sessions[(start + i) % n].try_lock() {
                return guard;
            }
        }
        // A panic inside ONNX Runtime cannot leave the session half-updated from our side, so
        // a poisoned lock is still usable.
        self.sessions[start % n].lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Orders the caller's tensors as the graph declares them and checks them.
    fn resolve_inputs<'a>(&'a self, inputs: &[InputTensor<'a>]) -> Result<Vec<ResolvedInput<'a>>, RuntimeError> {
        // The caller's tensor for each model input, found by one name lookup per tensor (this runs
        // for every request: a hash set of names was a tenth of a one-song request's work).
        let mut by_input: Vec<Option<&InputTensor<'a>>> = vec![None; self.inputs.len()];
        for input in inputs {
            let Some(k) = self.inputs.iter().position(|info| info.name == input.name) else {
                let expected = self.inputs.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(", ");
                return Err(RuntimeError::UnknownInput { name: input.name.to_string(), expected });
            };
            if by_input[k].replace(input).is_some() {
                return Err(RuntimeError::DuplicateInput { name: input.name.to_string() });
            }
        }
        let mut batch: Option<(&str, i64)> = None;
        let mut resolved = Vec::with_capacity(self.inputs.len());
        for (info, input) in self.inputs.iter().zip(by_input) {
            let input = input.ok_or_else(|| RuntimeError::MissingInput { name: info.name.clone() })?;
            if info.datatype != "FP32" {
                return Err(RuntimeError::UnsupportedType { name: info.name.clone(), datatype: info.datatype.clone() });
            }
            let shape: Vec<i64> = if input.shape.is_empty() && info.shape.len() == 2 {
                vec![input.data.len() as i64, 1]
            } else {
                input.shape.to_vec()
            };
            let elements =
                shape.iter().try_fold(1usize, |acc, &d| usize::try_from(d).ok().and_then(|d| acc.checked_mul(d)));
            if elements != Some(input.data.len()) {
                return Err(RuntimeError::DataLength {
                    name: info.name.clone(),
                    shape,
                    elements: elements.unwrap_or(0),
                    actual: input.data.len(),
                });
            }
            let matches = shape.len() == info.shape.len()
                && shape.iter().zip(&info.shape).all(|(&got, &want)| want < 0 || got == want);
            if !matches {
                return Err(RuntimeError::ShapeMismatch {
                    name: info.name.clone(),
                    actual: shape,
                    expected: info.shape.clone(),
                });
            }
            // Inputs whose first dimension is dynamic are taken to be batched together.
            if info.shape.first() == Some(&-1) {
                match batch {
                    None => batch = Some((input.name, shape[0])),
                    Some((first, expected)) if expected != shape[0] => {
                        return Err(RuntimeError::BatchMismatch {
                            name: info.name.clone(),
                            actual: shape[0],
                            first: first.to_string(),
                            expected,
                        })
                    }
                    Some(_) => {}
                }
            }
            if let Some(index) = input.data.iter().position(|v| !v.is_finite()) {
                return Err(RuntimeError::NonFinite { name: info.name.clone(), index, value: input.data[index] });
            }
            resolved.push((info.name.as_str(), shape, input.data));
        }
        Ok(resolved)
    }
}

fn tensor_info(name: &str, dtype: &ValueType) -> TensorInfo {
    match dtype {
        ValueType::Tensor { ty, shape, .. } => {
            TensorInfo { name: name.to_string(), datatype: kserve_datatype(*ty).to_string(), shape: shape.to_vec() }
        }
        other => TensorInfo { name: name.to_string(), datatype: format!("{other:?}"), shape: Vec::new() },
    }
}

/// The KServe v2 datatype name of an ONNX element type.
pub fn kserve_datatype(ty: TensorElementType) -> &'static str {
    match ty {
        TensorElementType::Bool => "BOOL",
        TensorElementType::Uint8 => "UINT8",
        TensorElementType::Uint16 => "UINT16",
        TensorElementType::Uint32 => "UINT32",
        TensorElementType::Uint64 => "UINT64",
        TensorElementType::Int8 => "INT8",
        TensorElementType::Int16 => "INT16",
        TensorElementType::Int32 => "INT32",
        TensorElementType::Int64 => "INT64",
        TensorElementType::Float16 => "FP16",
        TensorElementType::Float32 => "FP32",
        TensorElementType::Float64 => "FP64",
        TensorElementType::Bfloat16 => "BF16",
        TensorElementType::String => "BYTES",
        _ => "UNSUPPORTED",
    }
}
