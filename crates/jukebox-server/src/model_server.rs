//! A KServe v2 / Open Inference Protocol model server for ONNX models: the laptop stand-in for
//! OpenVINO Model Server behind KServe on OpenShift AI.
//!
//! **Model repository.** A folder laid out as OVMS and Triton expect,
//! `<repository>/<model name>/<integer version>/model.onnx`. Every version is loaded at start;
//! requests without a version go to the highest one. Other files and folders are ignored. With a
//! poll interval ([`RepositoryWatch`]), versions that appear in the folder later are loaded while
//! serving, removed ones unloaded and re-uploaded ones (another size, modification time or inode)
//! reloaded, as OpenVINO Model Server does with its model folders. Files arrive unchecked (any
//! holder of the S3 credentials can upload), so each one passes [`LoadLimits`] first: a size cap,
//! and no node that would build a huge constant while ONNX Runtime folds constants at load (a
//! 200-byte `ConstantOfShape` graph otherwise allocates a gigabyte). A refused or broken file is
//! logged once and the other versions keep serving.
//!
//! **When a version is complete.** As with OpenVINO Model Server and Triton, a version folder
//! counts once its `model.onnx` exists: there is no marker file to write. Publishers keep their
//! side of that rule: `jukebox save` (and `jukebox::storage`'s `upload_dir`) write `model.onnx`
//! last, after every artifact, and only once the version is registered; a save stages its upload
//! under `.jukebox-staging/` at the bucket's root first, outside the `models/` folder served here,
//! so a failed or refused save leaves nothing in a version folder. The S3 server renames each
//! object into place when it is whole, so the file is never seen half-written. (With another
//! uploader, such as boto3, upload `model.onnx` last as well.)
//!
//! **Routes.**
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/v2` | server metadata |
//! | GET | `/v2/health/live`, `/v2/health/ready` | 200 once serving |
//! | GET | `/v2/models/{name}[/versions/{v}]` | model metadata (inputs, outputs, versions) |
//! | GET | `/v2/models/{name}[/versions/{v}]/ready` | 200 if loaded, 404 otherwise |
//! | POST | `/v2/models/{name}[/versions/{v}]/infer` | run the model |
//!
//! Inference takes JSON tensors (row-major `data`, flat or nested), any batch size, an optional
//! `outputs` selection, echoes the request `id`, and supports the binary tensor data extension
//! that `tritonclient` uses by default (see [`jukebox_protocol::inference`]).
//!
//! **Errors** are `{"error": "..."}`: 400 for a bad request or tensor (the message names the
//! tensor; also an output asked for twice, which Triton refuses too), 401 for a missing or wrong
//! bearer token when one is configured (health routes stay open so probes work), 404 for an
//! unknown model, version or route, 413 for a body over the configured limit or a request over
//! [`InferLimits`] (the message names the input, its size and the limit), 503 when too many
//! requests already wait, 500 if ONNX Runtime itself fails. One bad request never stops the server.
//!
//! **Bounded cost per request.** One 31 MB request of 1.25 M rows used to take 3.4 GB and 30 s.
//! Now the request's shapes are checked against [`InferLimits`] by a scan that keeps no data
//! (`precheck`), before anything is decoded (a body of at most [`ONE_PASS_MAX_BYTES`] is
//! decoded at once, its limits checked as it is read, with the same refusals); requests share a
//! budget of tensor elements in flight (a semaphore held until the answer is sent), so large
//! requests take turns while small ones run side by side, and a bounded number wait (then 503). Large requests (over
//! [`INLINE_MAX_ELEMENTS`]) are decoded and run on tokio's blocking pool, so health and metadata
//! keep the async workers, in slices of [`InferLimits::batch_rows`] rows, because ONNX Runtime
//! keeps the memory arena a call grew to. Each model keeps one ONNX Runtime session per core
//! ([`jukebox_runtime::OnnxModel`]).
//!
//! **Small requests, fast.** A request of a few songs costs tens of microseconds to decode, run
//! and answer; handing it to the blocking pool and back cost more than that (thread wake-ups
//! were a quarter of the CPU profile under load). So small requests stay on the async worker
//! that read them: decoded straight into f32 tensors (`tensors`), checked against the model, and
//! with [`Batching`] (on by default) merged with the other small requests for the same model
//! into one ONNX Runtime call (`batch`), as Triton's and OpenVINO Model Server's dynamic batchers
//! do. A request the model refuses gets its 4xx before it joins a batch.
//!
//! **Connections** ([`crate::http`]): header and body read timeouts, idle keep-alive connections
//! closed ([`ModelServerConfig::timeouts`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), jukebox_server::model_server::ModelServerError> {
//! use jukebox_server::model_server::{serve, ModelServerConfig};
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
//! serve(listener, ModelServerConfig::new("models"), async {
//!     tokio::signal::ctrl_c().await.ok();
//! })
//! .await
//! # }
//! ```

mod batch;
mod guard;
mod precheck;
mod tensors;

pub use batch::Batching;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jukebox_protocol::inference::{
    ErrorResponse, ModelMetadata, ServerMetadata, TensorMetadata, HEADER_INFERENCE_CONTENT_LENGTH,
    PARAM_BINARY_DATA_SIZE, PLATFORM_ONNX,
};
use jukebox_protocol::model_folder;
use jukebox_runtime::{GraphRewrites, InputTensor, OnnxModel, RuntimeError};

use crate::http::{serve_http, HttpTimeouts};

/// Default request body limit: far above any realistic batch of songs (a 10,000-song JSON
/// batch is about 2 MB), low enough that a runaway client cannot exhaust memory.
pub const DEFAULT_MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// Default most rows (first dimension) of one input per request: ten times the workshop's whole
/// data set. A 100,000-row answer of 72 classes is already ~80 MB of JSON.
pub const DEFAULT_MAX_ROWS: u64 = 100_000;

/// Default most tensor elements per request (all inputs together): 100,000 rows of 13 features
/// with room to spare, far below what exhausts a laptop's memory.
pub const DEFAULT_MAX_ELEMENTS: u64 = 2_000_000;

/// Default rows per ONNX Runtime call (see [`InferLimits::batch_rows`]).
pub const DEFAULT_BATCH_ROWS: u64 = 8192;

/// Requests of at most this many tensor elements are decoded, run and answered on the async
/// worker that read them (tens of microseconds: a thread hand-off to the blocking pool and back
/// cost more than the work); larger ones go to the blocking pool so health and metadata keep
/// their workers.
pub const INLINE_MAX_ELEMENTS: u64 = 8192;

/// Bodies up to this size are decoded in one pass, their limits checked as they are read,
/// instead of a size scan first and decoding after: they hold at most a few thousand values
/// (a JSON value takes at least two bytes, a binary one four), so decoding one costs no more
/// than scanning it, and one pass instead of two is a sixth of a one-song request's work.
pub const ONE_PASS_MAX_BYTES: usize = 2 * INLINE_MAX_ELEMENTS as usize;

/// Default cap on a model file found by the repository watcher (the workshop model is ~30 KB).
pub const DEFAULT_MAX_MODEL_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// Default cap on a constant tensor a watched model would create while loading.
pub const DEFAULT_MAX_FOLDED_CONSTANT_BYTES: u64 = 64 * 1024 * 1024;

/// Everything the model server can fail with, mapped once to an HTTP status in
/// [`IntoResponse`].
#[derive(Debug, thiserror::Error)]
pub enum ModelServerError {
    #[error("model repository {path}: {message}")]
    Repository { path: PathBuf, message: String },
    #[error("loading model '{name}' version {version}: {source}")]
    Load { name: String, version: u64, source: RuntimeError },
    #[error("unknown model '{name}'; this server has: {known}")]
    UnknownModel { name: String, known: String },
    #[error("model '{name}' has no version '{version}'; it has: {known}")]
    UnknownVersion { name: String, version: String, known: String },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Tensor(RuntimeError),
    #[error("request body is larger than the limit of {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("missing or wrong bearer token (send `Authorization: Bearer <token>`)")]
    Unauthorized,
    /// 413: a request over a [`InferLimits`] limit; `what` names the input and its size.
    #[error("{what}; this server accepts at most {limit} per request ({setting}); send smaller batches")]
    OverLimit { what: String, limit: String, setting: &'static str },
    /// 400: the same output asked for twice (Triton refuses this too).
    #[error("output tensor '{name}' is requested more than once; ask for each output once")]
    DuplicateOutput { name: String },
    /// 408: the body did not arrive in time ([`HttpTimeouts`]).
    #[error("{0}")]
    RequestTimeout(String),
    /// 503: too many inference requests are already waiting.
    #[error("the model server is busy: {waiting} inference requests are already waiting for a free slot (limit {limit}, InferLimits::max_waiting); retry shortly")]
    Busy { waiting: usize, limit: usize },
    /// A model file refused before loading (too large, or a graph that would blow up at load).
    #[error("refusing model '{name}' version {version} ({path}): {reason}")]
    Refused { name: String, version: u64, path: PathBuf, reason: String },
    #[error("no route for {method} {path}")]
    NoRoute { method: String, path: String },
    #[error("server I/O: {0}")]
    Io(#[from] std::io::Error),
}

impl ModelServerError {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::UnknownModel { .. } | Self::UnknownVersion { .. } | Self::NoRoute { .. } => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Tensor(e) if e.is_input_error() => StatusCode::BAD_REQUEST,
            Self::BodyTooLarge { .. } | Self::OverLimit { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::DuplicateOutput { .. } => StatusCode::BAD_REQUEST,
            Self::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Tensor(_) | Self::Repository { .. } | Self::Load { .. } | Self::Refused { .. } | Self::Io(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

impl IntoResponse for ModelServerError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            // The cause goes to the access log (crate::observe), not to the client.
            let public = ErrorResponse { error: "the model server failed to answer; its log says why".into() };
            return crate::observe::with_cause((status, Json(public)).into_response(), &self);
        }
        let mut response = (status, Json(ErrorResponse { error: self.to_string() })).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// How to run the model server.
#[derive(Debug, Clone)]
pub struct ModelServerConfig {
    /// Folder holding `<name>/<version>/model.onnx`.
    pub repository: PathBuf,
    /// Bearer token required on every route except health; `None` = open.
    pub token: Option<String>,
    /// Larger request bodies answer 413.
    pub max_body_bytes: usize,
    /// ONNX Runtime sessions per model version (default: one per core).
    pub sessions_per_model: usize,
    /// How often to look for new or removed versions in the folder; `None` = load once.
    pub poll_interval: Option<Duration>,
    /// Per-request size limits and the inference queue.
    pub limits: InferLimits,
    /// Limits on model files before they are loaded.
    pub load_limits: LoadLimits,
    /// Header and body read timeouts, idle connections.
    pub timeouts: HttpTimeouts,
}

/// Limits on inference requests. Sizes are checked on the request's shapes (and counted `data`
/// values) before any tensor is decoded, so an oversized request costs a scan, not memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InferLimits {
    /// Most rows (first dimension) of any one input.
    pub max_rows: u64,
    /// Most elements of all inputs together.
    pub max_elements: u64,
    /// Elements that may be in inference at once, summed over requests; others wait. Bounds the
    /// memory of concurrent large requests while small ones still run side by side.
    pub max_elements_in_flight: u64,
    /// Requests that may wait for their turn; one more answers 503.
    pub max_waiting: usize,
    /// Rows per ONNX Runtime call: larger requests run in slices (for models whose inputs and
    /// outputs all have a dynamic batch dimension), because ONNX Runtime keeps the memory a call
    /// grew to. 0 = one call per request.
    pub batch_rows: u64,
    /// Dynamic batching of small concurrent requests for one model (see [`Batching`]; on by
    /// default: it costs a lone client nothing); `None` = every request runs alone.
    pub batching: Option<Batching>,
}

impl Default for InferLimits {
    fn default() -> Self {
        Self {
            max_rows: DEFAULT_MAX_ROWS,
            max_elements: DEFAULT_MAX_ELEMENTS,
            max_elements_in_flight: DEFAULT_MAX_ELEMENTS,
            max_waiting: 64,
            batch_rows: DEFAULT_BATCH_ROWS,
            batching: Some(Batching::default()),
        }
    }
}

/// Limits on a model file before ONNX Runtime sees it; see [`ModelRepository::refresh_with_limits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadLimits {
    /// Larger `model.onnx` files are refused.
    pub max_file_bytes: u64,
    /// Graphs that would create a larger constant tensor from constants (folded at load) are refused.
    pub max_folded_constant_bytes: u64,
}

impl Default for LoadLimits {
    fn default() -> Self {
        Self {
            max_file_bytes: DEFAULT_MAX_MODEL_FILE_BYTES,
            max_folded_constant_bytes: DEFAULT_MAX_FOLDED_CONSTANT_BYTES,
        }
    }
}

/// How [`serve_repository`] serves: everything of [`ModelServerConfig`] but the folder.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub token: Option<String>,
    pub max_body_bytes: usize,
    pub limits: InferLimits,
    pub load_limits: LoadLimits,
    pub timeouts: HttpTimeouts,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            token: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            limits: InferLimits::default(),
            load_limits: LoadLimits::default(),
            timeouts: HttpTimeouts::API,
        }
    }
}

impl ModelServerConfig {
    /// Open server, default body limit, one session per core; the token is taken from
    /// `JUKEBOX_MODEL_TOKEN` when that is set and not empty.
    pub fn new(repository: impl Into<PathBuf>) -> Self {
        Self {
            repository: repository.into(),
            token: std::env::var(jukebox_protocol::env::MODEL_TOKEN).ok().filter(|t| !t.is_empty()),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            sessions_per_model: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            poll_interval: None,
            limits: InferLimits::default(),
            load_limits: LoadLimits::default(),
            timeouts: HttpTimeouts::API,
        }
    }
}

/// One loaded model version with its precomputed metadata.
pub struct LoadedModel {
    pub name: String,
    pub version: u64,
    pub model: OnnxModel,
    inputs: Vec<TensorMetadata>,
    outputs: Vec<TensorMetadata>,
    /// The file as it was when loaded; a different stamp later means a re-upload to reload.
    stamp: Option<FileStamp>,
    /// Every input and output has a dynamic first dimension: requests can be stacked along it
    /// (dynamic batching) or cut into slices of rows.
    batchable: bool,
    /// Requests waiting to run merged ([`Batching`]).
    batch_queue: batch::BatchQueue,
}

impl LoadedModel {
    /// Requests of this model version answered from a call merged with others ([`Batching`]).
    pub fn merged_requests(&self) -> u64 {
        self.batch_queue.merged_requests()
    }
}

/// What identifies one upload of a file: S3 uploads are renamed into place, so a re-upload gets a
/// new inode and modification time even when its size is the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

impl FileStamp {
    fn of(path: &Path) -> Option<Self> {
        let metadata = std::fs::metadata(path).ok()?;
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&metadata);
        #[cfg(not(unix))]
        let inode = 0;
        Some(Self { len: metadata.len(), modified: metadata.modified().ok(), inode })
    }
}

/// Loads `path` after checking it against `limits` (see [`LoadLimits`]).
fn load_checked(
    name: &str,
    version: u64,
    path: &Path,
    sessions: usize,
    limits: &LoadLimits,
) -> Result<OnnxModel, ModelServerError> {
    let refused = |reason: String| ModelServerError::Refused {
        name: name.to_string(),
        version,
        path: path.to_path_buf(),
        reason,
    };
    let len = std::fs::metadata(path).map_err(|e| refused(e.to_string()))?.len();
    if len > limits.max_file_bytes {
        return Err(refused(format!(
            "the file has {len} bytes; watched models may have at most {} (LoadLimits::max_file_bytes)",
            limits.max_file_bytes
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| refused(e.to_string()))?;
    guard::check(&bytes, limits.max_folded_constant_bytes).map_err(refused)?;
    // Served files come from a bucket anyone with the credentials writes to: no load-time
    // constant folding (the one rewrite that evaluates the graph), so loading cannot allocate
    // without bound whatever the guard misses; the other rewrites (fusions) stay.
    OnnxModel::load_with_rewrites(path, sessions, GraphRewrites::AllButConstantFolding)
        .map_err(|source| ModelServerError::Load { name: name.to_string(), version, source })
}

/// Every model version found in a repository folder.
#[derive(Default)]
pub struct ModelRepository {
    models: BTreeMap<String, BTreeMap<u64, Arc<LoadedModel>>>,
}

impl ModelRepository {
    /// Loads `<dir>/<name>/<integer version>/model.onnx` for every name and version, with the
    /// default [`LoadLimits`].
    pub fn load(dir: &Path, sessions_per_model: usize) -> Result<Self, ModelServerError> {
        Self::load_with_limits(dir, sessions_per_model, &LoadLimits::default())
    }

    /// [`Self::load`] with the given limits on each file.
    pub fn load_with_limits(
        dir: &Path,
        sessions_per_model: usize,
        limits: &LoadLimits,
    ) -> Result<Self, ModelServerError> {
        let mut repository = Self::default();
        for (name, version, path) in model_files(dir)? {
            let model = load_checked(&name, version, &path, sessions_per_model, limits)?;
            repository.insert(&name, version, model);
        }
        Ok(repository)
    }

    /// Compares the repository with what `dir` holds now, as OpenVINO Model Server does when it
    /// polls its model folders: loads versions that appeared, drops versions that disappeared,
    /// keeps the rest as loaded. A missing `dir` counts as empty. `None` when nothing changed.
    ///
    /// A version that fails to load is left out (the others still serve), so a broken file never
    /// takes the server down; it is noted in `broken` with its modification time and reported
    /// once in `failures`, and tried again only when the file changes.
    pub fn refresh(
        &self,
        dir: &Path,
        sessions_per_model: usize,
        broken: &mut BTreeMap<PathBuf, std::time::SystemTime>,
        failures: &mut Vec<ModelServerError>,
    ) -> Result<Option<Self>, ModelServerError> {
        self.refresh_with_limits(dir, sessions_per_model, &LoadLimits::default(), broken, failures)
    }

    /// [`Self::refresh`] that also reloads a version whose file changed (a model re-uploaded to
    /// the same version), and checks every file against `limits` before ONNX Runtime loads it:
    /// an oversized file or a graph that would build a huge constant while loading is refused
    /// (noted in `failures`) and the other versions keep serving. A changed file that fails to
    /// load leaves the previously loaded model of that version serving.
    // `broken` is only written when a load fails and the file has a time: not an entry upsert.
    #[allow(clippy::map_entry)]
    pub fn refresh_with_limits(
        &self,
        dir: &Path,
        sessions_per_model: usize,
        limits: &LoadLimits,
        broken: &mut BTreeMap<PathBuf, std::time::SystemTime>,
        failures: &mut Vec<ModelServerError>,
    ) -> Result<Option<Self>, ModelServerError> {
        let found = if dir.exists() { model_files(dir)? } else { Vec::new() };
        let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
        broken.retain(|path, when| modified(path) == Some(*when));
        let mut next = Self::default();
        let mut reloaded = false;
        for (name, version, path) in found {
            let existing = self.models.get(&name).and_then(|versions| versions.get(&version));
            if let Some(existing) = existing.filter(|e| e.stamp.is_some() && e.stamp == FileStamp::of(&path)) {
                next.models.entry(name).or_default().insert(version, existing.clone());
            } else if !broken.contains_key(&path) {
                match load_checked(&name, version, &path, sessions_per_model, limits) {
                    Ok(model) => {
                        reloaded |= existing.is_some();
                        next.insert(&name, version, model);
                    }
                    Err(failure) => {
                        if let Some(when) = modified(&path) {
                            broken.insert(path, when);
                        }
                        failures.push(failure);
                        if let Some(existing) = existing {
                            next.models.entry(name).or_default().insert(version, existing.clone());
                        }
                    }
                }
            } else if let Some(existing) = existing {
                next.models.entry(name).or_default().insert(version, existing.clone());
            }
        }
        Ok((reloaded || next.list() != self.list()).then_some(next))
    }

    /// Adds (or replaces) one model version.
    pub fn insert(&mut self, name: &str, version: u64, model: OnnxModel) {
        let describe = |infos: &[jukebox_runtime::TensorInfo]| {
            infos
                .iter()
                .map(|i| TensorMetadata { name: i.name.clone(), datatype: i.datatype.clone(), shape: i.shape.clone() })
                .collect()
        };
        let inputs: Vec<TensorMetadata> = describe(model.inputs());
        let outputs: Vec<TensorMetadata> = describe(model.outputs());
        let loaded = LoadedModel {
            stamp: FileStamp::of(model.path()),
            name: name.to_string(),
            version,
            batchable: inputs.iter().chain(&outputs).all(|t| t.shape.first() == Some(&-1)),
            inputs,
            outputs,
            model,
            batch_queue: batch::BatchQueue::default(),
        };
        self.models.entry(name.to_string()).or_default().insert(version, Arc::new(loaded));
    }

    /// True when no model was found.
    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// `(name, versions)` of every model, sorted.
    pub fn list(&self) -> Vec<(String, Vec<u64>)> {
        self.models.iter().map(|(name, versions)| (name.clone(), versions.keys().copied().collect())).collect()
    }

    /// The model version a request addresses; `None` = the highest version.
    pub fn get(&self, name: &str, version: Option<&str>) -> Result<&Arc<LoadedModel>, ModelServerError> {
        let versions = self.models.get(name).ok_or_else(|| ModelServerError::UnknownModel {
            name: name.to_string(),
            known: join_or_none(self.models.keys()),
        })?;
        let unknown_version = || ModelServerError::UnknownVersion {
            name: name.to_string(),
            version: version.unwrap_or_default().to_string(),
            known: join_or_none(versions.keys()),
        };
        match version {
            None => versions.values().next_back().ok_or_else(unknown_version),
            Some(v) => v.parse::<u64>().ok().and_then(|v| versions.get(&v)).ok_or_else(unknown_version),
        }
    }

    fn metadata(&self, name: &str, version: Option<&str>) -> Result<ModelMetadata, ModelServerError> {
        let loaded = self.get(name, version)?;
        let versions = match version {
            Some(_) => vec![loaded.version.to_string()],
            None => self.models[name].keys().map(u64::to_string).collect(),
        };
        Ok(ModelMetadata {
            name: loaded.name.clone(),
            versions,
            platform: PLATFORM_ONNX.to_string(),
            inputs: loaded.inputs.clone(),
            outputs: loaded.outputs.clone(),
        })
    }
}

/// `(name, version, path of model.onnx)` for every version folder of the repository `dir` (the
/// model folder contract's scanner), sorted by name and version; other entries are ignored.
fn model_files(dir: &Path) -> Result<Vec<(String, u64, PathBuf)>, ModelServerError> {
    let models = model_folder::models(dir)
        .map_err(|e| ModelServerError::Repository { path: dir.to_path_buf(), message: e.to_string() })?;
    Ok(models
        .into_iter()
        .flat_map(|(name, versions)| {
            versions
                .into_iter()
                .map(move |(version, folder)| (name.clone(), version, folder.join(model_folder::MODEL_FILE)))
        })
        .collect())
}

fn join_or_none<T: std::fmt::Display>(items: impl Iterator<Item = T>) -> String {
    let joined = items.map(|i| i.to_string()).collect::<Vec<_>>().join(", ");
    if joined.is_empty() {
        "(none)".to_string()
    } else {
        joined
    }
}

struct AppState {
    /// Swapped whole when a watched repository changes; requests keep the snapshot they took.
    repository: RwLock<Arc<ModelRepository>>,
    token: Option<String>,
    max_body_bytes: usize,
    limits: InferLimits,
    /// One permit per tensor element in inference (see [`InferLimits::max_elements_in_flight`]),
    /// held until the answer is sent: a large answer (80 MB of JSON for 100,000 rows) is most of
    /// a request's memory.
    in_flight: Arc<tokio::sync::Semaphore>,
    /// Requests waiting for permits.
    waiting: AtomicUsize,
}

impl AppState {
    fn repository(&self) -> Arc<ModelRepository> {
        self.repository.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }
}

/// Watch a repository folder for new and removed versions, every `interval`.
#[derive(Debug, Clone)]
pub struct RepositoryWatch {
    pub dir: PathBuf,
    pub interval: Duration,
    pub sessions_per_model: usize,
}

/// Counts a request as waiting for inference while it lives.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl AppState {
    fn new(repository: ModelRepository, options: &ServeOptions) -> Self {
        Self {
            repository: RwLock::new(Arc::new(repository)),
            token: options.token.clone(),
            max_body_bytes: options.max_body_bytes,
            limits: options.limits,
            in_flight: Arc::new(tokio::sync::Semaphore::new(in_flight_budget(&options.limits) as usize)),
            waiting: AtomicUsize::new(0),
        }
    }
}

/// The routes over an already loaded repository (for tests and for composing with other
/// servers on one port).
pub fn router(repository: ModelRepository, token: Option<String>, max_body_bytes: usize) -> Router {
    router_with_options(repository, &ServeOptions { token, max_body_bytes, ..ServeOptions::default() })
}

/// [`router`] with every option (limits, queue).
pub fn router_with_options(repository: ModelRepository, options: &ServeOptions) -> Router {
    router_with_state(Arc::new(AppState::new(repository, options)))
}

fn router_with_state(state: Arc<AppState>) -> Router {
    let guarded = Router::new()
        .route("/v2", get(server_metadata))
        .route("/v2/models/{name}", get(model_metadata))
        .route("/v2/models/{name}/versions/{version}", get(version_metadata))
        .route("/v2/models/{name}/ready", get(model_ready))
        .route("/v2/models/{name}/versions/{version}/ready", get(version_ready))
        .route("/v2/models/{name}/infer", post(infer))
        .route("/v2/models/{name}/versions/{version}/infer", post(infer_version))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/v2/health/live", get(|| async { Json(serde_json::json!({"live": true})) }))
        .route("/v2/health/ready", get(|| async { Json(serde_json::json!({"ready": true})) }))
        .merge(guarded)
        .fallback(no_route)
        .method_not_allowed_fallback(no_route)
        // The body limit is enforced when the body is read (see `read_body`) so the answer is
        // the protocol's JSON error, not axum's plain-text one.
        .layer(DefaultBodyLimit::max(state.max_body_bytes))
        .with_state(state)
}

/// Loads the repository and serves until `shutdown` completes, then finishes in-flight
/// requests and returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: ModelServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ModelServerError> {
    let repository_path = config.repository.clone();
    let sessions = config.sessions_per_model;
    let load_limits = config.load_limits;
    // Loading runs ONNX Runtime's graph optimiser: keep it off the async workers.
    let repository = tokio::task::spawn_blocking(move || {
        ModelRepository::load_with_limits(&repository_path, sessions, &load_limits)
    })
    .await
    .map_err(|e| ModelServerError::Io(std::io::Error::other(e)))??;
    let watch = config.poll_interval.map(|interval| RepositoryWatch {
        dir: config.repository.clone(),
        interval,
        sessions_per_model: config.sessions_per_model,
    });
    let options = ServeOptions {
        token: config.token,
        max_body_bytes: config.max_body_bytes,
        limits: config.limits,
        load_limits: config.load_limits,
        timeouts: config.timeouts,
    };
    serve_repository(listener, repository, watch, options, shutdown).await
}

/// Serves `repository` (and, with `watch`, the versions that appear in its folder) with these
/// options: the token, request limits, the inference queue, limits on
/// watched model files, read timeouts.
pub async fn serve_repository(
    listener: tokio::net::TcpListener,
    repository: ModelRepository,
    watch: Option<RepositoryWatch>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ModelServerError> {
    let state = Arc::new(AppState::new(repository, &options));
    let watcher = watch.map(|watch| tokio::spawn(watch_repository(state.clone(), watch, options.load_limits)));
    let (resolve, list) = (state.clone(), state.clone());
    let app = crate::observe::model_server(
        router_with_state(state),
        move |name, version| resolve.repository().get(name, version).ok().map(|m| m.version),
        move || list.repository().list(),
    );
    serve_http(listener, app, options.timeouts, "model server", shutdown).await;
    if let Some(watcher) = watcher {
        watcher.abort();
    }
    Ok(())
}

/// Polls the repository folder and swaps in a new repository when versions come or go.
async fn watch_repository(state: Arc<AppState>, watch: RepositoryWatch, limits: LoadLimits) {
    let mut ticks = tokio::time::interval(watch.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let broken = Arc::new(std::sync::Mutex::new(BTreeMap::new()));
    let mut last_error = String::new();
    loop {
        ticks.tick().await;
        let current = state.repository();
        let (dir, sessions, broken) = (watch.dir.clone(), watch.sessions_per_model, broken.clone());
        // Loading runs ONNX Runtime's graph optimiser: keep it off the async workers.
        let refreshed = tokio::task::spawn_blocking(move || {
            let mut failures = Vec::new();
            let mut broken = broken.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let result = current.refresh_with_limits(&dir, sessions, &limits, &mut broken, &mut failures);
            (result, failures)
        })
        .await;
        let Ok((result, failures)) = refreshed else { continue };
        for failure in failures {
            tracing::warn!("model server: {failure}; serving the other versions");
        }
        match result {
            Ok(Some(next)) => {
                let listing: Vec<String> = next
                    .list()
                    .into_iter()
                    .map(|(name, versions)| {
                        let versions: Vec<String> = versions.iter().map(u64::to_string).collect();
                        format!("{name} (versions {})", versions.join(", "))
                    })
                    .collect();
                tracing::info!(
                    "model server: now serving {}",
                    if listing.is_empty() { "no models".to_string() } else { listing.join(", ") }
                );
                *state.repository.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(next);
                last_error.clear();
            }
            Ok(None) => last_error.clear(),
            Err(e) => {
                // An unreadable folder is reported once, not at every tick.
                let message = e.to_string();
                if message != last_error {
                    tracing::warn!("model server: {message}");
                    last_error = message;
                }
            }
        }
    }
}

async fn require_token(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    if let Some(expected) = &state.token {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim);
        if !given.is_some_and(|given| constant_time_eq(given.as_bytes(), expected.as_bytes())) {
            return ModelServerError::Unauthorized.into_response();
        }
    }
    next.run(request).await
}

/// Compares without an early exit so response time does not reveal how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn no_route(method: axum::http::Method, uri: axum::http::Uri) -> ModelServerError {
    ModelServerError::NoRoute { method: method.to_string(), path: uri.path().to_string() }
}

async fn server_metadata() -> Json<ServerMetadata> {
    Json(ServerMetadata {
        name: "jukebox-model-server".to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        extensions: vec!["binary_tensor_data".to_string()],
    })
}

async fn model_metadata(
    State(state): State<Arc<AppState>>,
    UrlPath(name): UrlPath<String>,
) -> Result<Json<ModelMetadata>, ModelServerError> {
    state.repository().metadata(&name, None).map(Json)
}

async fn version_metadata(
    State(state): State<Arc<AppState>>,
    UrlPath((name, version)): UrlPath<(String, String)>,
) -> Result<Json<ModelMetadata>, ModelServerError> {
    state.repository().metadata(&name, Some(&version)).map(Json)
}

fn ready_body(loaded: &LoadedModel) -> Json<serde_json::Value> {
    Json(serde_json::json!({"name": loaded.name, "version": loaded.version.to_string(), "ready": true}))
}

async fn model_ready(
    State(state): State<Arc<AppState>>,
    UrlPath(name): UrlPath<String>,
) -> Result<Json<serde_json::Value>, ModelServerError> {
    state.repository().get(&name, None).map(|m| ready_body(m))
}

async fn version_ready(
    State(state): State<Arc<AppState>>,
    UrlPath((name, version)): UrlPath<(String, String)>,
) -> Result<Json<serde_json::Value>, ModelServerError> {
    state.repository().get(&name, Some(&version)).map(|m| ready_body(m))
}

async fn infer(
    State(state): State<Arc<AppState>>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ModelServerError> {
    let loaded = state.repository().get(&name, None)?.clone();
    infer_queued(&state, loaded, headers, read_body(body, state.max_body_bytes)?).await
}

async fn infer_version(
    State(state): State<Arc<AppState>>,
    UrlPath((name, version)): UrlPath<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ModelServerError> {
    let loaded = state.repository().get(&name, Some(&version))?.clone();
    infer_queued(&state, loaded, headers, read_body(body, state.max_body_bytes)?).await
}

/// Checks the request's size against the limits (a cheap scan, before any tensor is decoded;
/// small bodies are decoded at once, checked as they are read), waits for its share of the
/// in-flight budget (503 when too many already wait), then runs it: small requests on the async
/// worker that read them, larger ones on the blocking pool so health and metadata requests keep
/// their async workers.
async fn infer_queued(
    state: &AppState,
    loaded: Arc<LoadedModel>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ModelServerError> {
    let json_length = json_length(&headers, &body)?;
    let (elements, prepared) = if body.len() <= ONE_PASS_MAX_BYTES {
        let scan = precheck::Scan::new(&state.limits);
        let prepared = prepare(&loaded, &headers, &body, Some(&scan))?;
        (scan.elements(), Some(prepared))
    } else {
        // Scanned in place: the scan allocates nothing and takes milliseconds even for a body at
        // the limit. (Moving it to the blocking pool spread the inference work over more pool
        // threads and so more malloc arenas, and doubled peak memory under load.)
        (precheck::check(&body[..json_length], &state.limits)?, None)
    };
    let weight = elements.clamp(1, u64::from(u32::MAX)).min(in_flight_budget(&state.limits)) as u32;
    // For the metrics (crate::observe): the request's rows, how long it waits for its turn.
    let rows = crate::observe::rows_of(loaded.inputs.iter().map(|i| &i.shape), elements);
    let asked = std::time::Instant::now();
    let permit = match state.in_flight.clone().try_acquire_many_owned(weight) {
        Ok(permit) => permit,
        Err(_) => {
            let waiting = state.waiting.fetch_add(1, Ordering::SeqCst);
            let _ticket = Waiting(&state.waiting);
            if waiting >= state.limits.max_waiting {
                return Err(ModelServerError::Busy { waiting, limit: state.limits.max_waiting });
            }
            state
                .in_flight
                .clone()
                .acquire_many_owned(weight)
                .await
                .map_err(|e| ModelServerError::Io(std::io::Error::other(e)))?
        }
    };
    let (wait, started) = (asked.elapsed(), std::time::Instant::now());
    let response = if elements <= INLINE_MAX_ELEMENTS {
        let prepared = decoded(prepared, &loaded, &headers, body)?;
        answer_small(&loaded, prepared, state.limits.batching).await?
    } else {
        let slice_rows = usize::try_from(state.limits.batch_rows).unwrap_or(usize::MAX);
        tokio::task::spawn_blocking(move || answer(&loaded, decoded(prepared, &loaded, &headers, body)?, slice_rows))
            .await
            .map_err(|e| ModelServerError::Io(std::io::Error::other(format!("inference worker failed: {e}"))))??
    };
    let (mut parts, body) = response.into_parts();
    parts.extensions.insert(crate::observe::Inference { rows, wait, run: started.elapsed() });
    Ok(Response::from_parts(parts, axum::body::Body::new(PermitBody { inner: body, _permit: permit })))
}

/// Runs the model on slices of at most `slice_rows` rows and joins the outputs, when every input
/// and output of the model has a dynamic first (batch) dimension and the request has more rows.
/// ONNX Runtime keeps the memory arena a call grew to, per session: a 100,000-row call would
/// leave hundreds of MB held after it; slices bound that. Otherwise one call.
fn run_in_slices(
    loaded: &LoadedModel,
    inputs: &[InputTensor<'_>],
    slice_rows: usize,
) -> Result<Vec<jukebox_runtime::OutputTensor>, RuntimeError> {
    let batched = loaded.batchable;
    let rows = inputs.first().and_then(|i| i.shape.first()).copied().unwrap_or(0);
    let splittable = batched
        && slice_rows > 0
        && rows > 0
        && rows as u64 > slice_rows as u64
        && inputs.iter().all(|i| {
            i.shape.first() == Some(&rows)
                && i.shape.iter().try_fold(1i64, |acc, &d| acc.checked_mul(d)) == Some(i.data.len() as i64)
        });
    if !splittable {
        return loaded.model.run(inputs);
    }
    // Whole-request validation first, so errors name flat indices of the request, not of a slice.
    loaded.model.check_inputs(inputs)?;
    let rows = rows as usize;
    let mut joined: Vec<jukebox_runtime::OutputTensor> = Vec::new();
    let mut start = 0;
    while start < rows {
        let end = (start + slice_rows).min(rows);
        let shapes: Vec<Vec<i64>> = inputs
            .iter()
            .map(|i| {
                let mut shape = i.shape.to_vec();
                shape[0] = (end - start) as i64;
                shape
            })
            .collect();
        let slice: Vec<InputTensor<'_>> = inputs
            .iter()
            .zip(&shapes)
            .map(|(i, shape)| {
                let per_row = i.data.len() / rows;
                InputTensor::new(i.name, shape, &i.data[start * per_row..end * per_row])
            })
            .collect();
        let outputs = loaded.model.run(&slice)?;
        if joined.is_empty() {
            joined = outputs;
            for output in &mut joined {
                let per_row = output.data.len() / (end - start).max(1);
                output.data.reserve(per_row * (rows - end));
            }
        } else {
            for (joined, output) in joined.iter_mut().zip(outputs) {
                joined.data.extend_from_slice(&output.data);
                if let (Some(total), Some(part)) = (joined.shape.first_mut(), output.shape.first()) {
                    *total += part;
                }
            }
        }
        start = end;
    }
    Ok(joined)
}

/// A response body that keeps its request's share of the in-flight budget until it is sent.
struct PermitBody {
    inner: axum::body::Body,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl http_body::Body for PermitBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The whole in-flight budget, at least one request's worth (a request never asks for more than
/// the budget, or it would wait forever); within `acquire_many`'s u32.
fn in_flight_budget(limits: &InferLimits) -> u64 {
    limits.max_elements_in_flight.max(limits.max_elements).clamp(1, u64::from(u32::MAX))
}

/// Length of the JSON part of an infer body (`Inference-Header-Content-Length`, or all of it).
fn json_length(headers: &HeaderMap, body: &Bytes) -> Result<usize, ModelServerError> {
    match headers.get(HEADER_INFERENCE_CONTENT_LENGTH) {
        None => Ok(body.len()),
        Some(value) => {
            value.to_str().ok().and_then(|v| v.trim().parse::<usize>().ok()).filter(|&n| n <= body.len()).ok_or_else(
                || {
                    ModelServerError::BadRequest(format!(
                    "header {HEADER_INFERENCE_CONTENT_LENGTH} must be a byte count no larger than the body ({} bytes)",
                    body.len()
                ))
                },
            )
        }
    }
}

fn read_body(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, ModelServerError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ModelServerError::BodyTooLarge { limit }
        } else if crate::http::is_body_timeout(&rejection) {
            ModelServerError::RequestTimeout(format!("cannot read the request body: {}", rejection.body_text()))
        } else {
            ModelServerError::BadRequest(format!("cannot read the request body: {}", rejection.body_text()))
        }
    })
}

/// Parses an infer request (JSON, optionally followed by binary tensor data), runs the model,
/// and encodes the answer the way the request asked for.
pub fn run_inference(loaded: &LoadedModel, headers: &HeaderMap, body: Bytes) -> Result<Response, ModelServerError> {
    run_inference_with(loaded, headers, body, DEFAULT_BATCH_ROWS as usize)
}

/// [`run_inference`], running the model on slices of at most `slice_rows` rows
/// ([`InferLimits::batch_rows`]; 0 = one call).
pub fn run_inference_with(
    loaded: &LoadedModel,
    headers: &HeaderMap,
    body: Bytes,
    slice_rows: usize,
) -> Result<Response, ModelServerError> {
    answer(loaded, decoded(None, loaded, headers, body)?, slice_rows)
}

/// The request `prepared` already, or else decoded from `body` now; the body is dropped either
/// way, since the decoded tensors are all that is needed from here on.
fn decoded(
    prepared: Option<Prepared>,
    loaded: &LoadedModel,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Prepared, ModelServerError> {
    match prepared {
        Some(prepared) => Ok(prepared),
        None => prepare(loaded, headers, &body, None),
    }
}

/// Runs a decoded request (in slices of at most `slice_rows` rows) and encodes its answer.
fn answer(loaded: &LoadedModel, prepared: Prepared, slice_rows: usize) -> Result<Response, ModelServerError> {
    let Prepared { id, inputs, selected } = prepared;
    let results =
        run_in_slices(loaded, &input_tensors(loaded, &inputs), slice_rows).map_err(ModelServerError::Tensor)?;
    Ok(respond(loaded, id.as_deref(), &selected, &results))
}

/// A small request ([`INLINE_MAX_ELEMENTS`]), decoded, on the async worker that read it: checked,
/// run alone or merged with others ([`Batching`]), answered. A request the model refuses is
/// answered here and never joins a batch.
async fn answer_small(
    loaded: &Arc<LoadedModel>,
    prepared: Prepared,
    batching: Option<Batching>,
) -> Result<Response, ModelServerError> {
    let Prepared { id, inputs, selected } = prepared;
    let results = match batching.filter(|_| loaded.batchable) {
        Some(settings) => match columns_in_model_order(loaded, inputs)? {
            Ok(columns) => batch::run(loaded, columns, settings).await,
            Err(inputs) => run_alone(loaded, &inputs),
        },
        None => run_alone(loaded, &inputs),
    }
    .map_err(ModelServerError::Tensor)?;
    Ok(respond(loaded, id.as_deref(), &selected, &results))
}

/// An input of a decoded request: its index among the model's inputs (whose name it has), shape,
/// values.
type DecodedInput = (usize, Vec<i64>, Vec<f32>);

/// The request's inputs as the runtime takes them, named by the model's own strings.
fn input_tensors<'a>(loaded: &'a LoadedModel, inputs: &'a [DecodedInput]) -> Vec<InputTensor<'a>> {
    inputs.iter().map(|(index, shape, data)| InputTensor::new(&loaded.inputs[*index].name, shape, data)).collect()
}

fn run_alone(loaded: &LoadedModel, inputs: &[DecodedInput]) -> batch::RunResult {
    loaded.model.run(&input_tensors(loaded, inputs))
}

/// The request's inputs checked against the model (a refusal is this request's 4xx) and put in
/// the model's input order, ready to be stacked with other requests' rows. `Ok(Err(inputs))`
/// hands them back when their shapes are not written out in full (a rank the runtime fills in),
/// so they run alone.
fn columns_in_model_order(
    loaded: &LoadedModel,
    mut inputs: Vec<DecodedInput>,
) -> Result<Result<Vec<batch::Column>, Vec<DecodedInput>>, ModelServerError> {
    loaded.model.check_inputs(&input_tensors(loaded, &inputs)).map_err(ModelServerError::Tensor)?;
    if inputs.iter().any(|(index, shape, _)| loaded.inputs[*index].shape.len() != shape.len()) {
        return Ok(Err(inputs));
    }
    let mut columns = Vec::with_capacity(loaded.inputs.len());
    for k in 0..loaded.inputs.len() {
        // check_inputs saw every model input exactly once.
        let position = inputs.iter().position(|(index, _, _)| *index == k).expect("checked input");
        let (_, shape, data) = inputs.swap_remove(position);
        columns.push(batch::Column { shape, data });
    }
    Ok(Ok(columns))
}

/// A decoded infer request checked against the model's signature, before it runs.
struct Prepared {
    id: Option<String>,
    /// Inputs in request order.
    inputs: Vec<DecodedInput>,
    /// The outputs to answer, in answer order: (index among the model's outputs, as binary data).
    selected: Vec<(usize, bool)>,
}

/// Decodes an infer body (JSON, optionally followed by binary tensor data) into f32 tensors and
/// checks names, datatypes, binary sizes and the outputs asked for; with `scan`, also the
/// request limits, as its JSON is read (the size check of small bodies).
fn prepare(
    loaded: &LoadedModel,
    headers: &HeaderMap,
    body: &Bytes,
    scan: Option<&precheck::Scan<'_>>,
) -> Result<Prepared, ModelServerError> {
    let json_length = json_length(headers, body)?;
    let (json, mut binary) = body.split_at(json_length);
    let request = match scan {
        Some(scan) => tensors::decode_checked(json, scan),
        None => tensors::decode(json),
    }
    .map_err(|e| {
        // A broken limit ends decoding with an error of its own; the refusal says which limit.
        scan.and_then(precheck::Scan::take_violation)
            .unwrap_or_else(|| ModelServerError::BadRequest(format!("invalid inference request JSON: {e}")))
    })?;

    // Decode every input to f32, in request order (binary sections follow that order).
    let mut inputs: Vec<DecodedInput> = Vec::with_capacity(request.inputs.len());
    for input in request.inputs {
        let Some(index) = loaded.inputs.iter().position(|i| i.name == input.name) else {
            let known = loaded.inputs.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(", ");
            return Err(ModelServerError::Tensor(RuntimeError::UnknownInput {
                name: input.name.into_owned(),
                expected: known,
            }));
        };
        let expected = &loaded.inputs[index];
        if input.datatype != expected.datatype {
            return Err(ModelServerError::BadRequest(format!(
                "input tensor '{}' has datatype {} but the model expects {}",
                input.name, input.datatype, expected.datatype
            )));
        }
        if let Some(&bad) = input.shape.iter().find(|&&d| d < 0) {
            return Err(ModelServerError::BadRequest(format!(
                "input tensor '{}' has a negative dimension ({bad}) in shape {:?}",
                input.name, input.shape
            )));
        }
        let data = if let Some(size) = input.binary_data_size {
            let size = usize::try_from(size).unwrap_or(usize::MAX);
            if size > binary.len() {
                return Err(ModelServerError::BadRequest(format!(
                    "input tensor '{}' declares {size} bytes of binary data but only {} remain in the body",
                    input.name,
                    binary.len()
                )));
            }
            if size % 4 != 0 {
                return Err(ModelServerError::BadRequest(format!(
                    "input tensor '{}' has {size} bytes of binary data, not a whole number of FP32 values",
                    input.name
                )));
            }
            let (bytes, rest) = binary.split_at(size);
            binary = rest;
            bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
        } else {
            match input.data {
                Some(tensors::Data::Values(values)) => values,
                Some(tensors::Data::Strings) => {
                    return Err(ModelServerError::BadRequest(format!(
                        "input tensor '{}' holds strings, not FP32 numbers",
                        input.name
                    )))
                }
                None => {
                    return Err(ModelServerError::BadRequest(format!(
                        "input tensor '{}' has neither `data` nor parameters.{PARAM_BINARY_DATA_SIZE}",
                        input.name
                    )))
                }
            }
        };
        inputs.push((index, input.shape, data));
    }
    if !binary.is_empty() {
        return Err(ModelServerError::BadRequest(format!(
            "{} bytes of binary data follow the JSON but no input claims them (parameters.{PARAM_BINARY_DATA_SIZE})",
            binary.len()
        )));
    }

    // Which outputs to return, and which of them as binary data; checked before running.
    let binary_default = request.binary_data_output;
    let selected: Vec<(usize, bool)> = match &request.outputs {
        None => (0..loaded.outputs.len()).map(|i| (i, binary_default)).collect(),
        Some(requested) => requested
            .iter()
            .enumerate()
            .map(|(i, r)| {
                if requested[..i].iter().any(|earlier| earlier.name == r.name) {
                    return Err(ModelServerError::DuplicateOutput { name: r.name.clone() });
                }
                let index = loaded.outputs.iter().position(|o| o.name == r.name).ok_or_else(|| {
                    let known = loaded.outputs.iter().map(|o| o.name.as_str()).collect::<Vec<_>>().join(", ");
                    ModelServerError::BadRequest(format!(
                        "unknown output tensor '{}'; the model gives: {known}",
                        r.name
                    ))
                })?;
                Ok((index, r.binary_data().unwrap_or(binary_default)))
            })
            .collect::<Result<_, ModelServerError>>()?,
    };
    Ok(Prepared { id: request.id, inputs, selected })
}

/// The answer to a request: the selected outputs, as JSON data or binary data after the JSON.
fn respond(
    loaded: &LoadedModel,
    id: Option<&str>,
    selected: &[(usize, bool)],
    results: &[jukebox_runtime::OutputTensor],
) -> Response {
    let answers: Vec<tensors::Answer<'_>> = selected
        .iter()
        .map(|&(index, binary)| tensors::Answer {
            name: &loaded.outputs[index].name,
            datatype: &loaded.outputs[index].datatype,
            shape: &results[index].shape,
            data: &results[index].data,
            binary,
        })
        .collect();
    let (body, json_length) = tensors::encode(&loaded.name, loaded.version, id, &answers);
    if json_length == body.len() {
        return ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    }
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream")),
            (header::HeaderName::from_static("inference-header-content-length"), HeaderValue::from(json_length)),
        ],
        body,
    )
        .into_response()
}
