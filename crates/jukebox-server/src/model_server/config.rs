//! What the model server can be told: where its models are, who may call it, and how much one
//! request, one model file and the requests in flight may cost.
//!
//! [`ModelServerConfig`] is the whole configuration (`serve` loads its folder);
//! [`ServeOptions`] is the same without the folder, for a repository already loaded
//! (`serve_repository`). The limits are plain data with defaults sized for the workshop
//! on a laptop: [`InferLimits`] for requests (checked before a tensor is decoded), [`LoadLimits`]
//! for model files (checked before ONNX Runtime sees them), [`Batching`] for merging small
//! concurrent requests. The stages that enforce them live beside this module.

use std::path::PathBuf;
use std::time::Duration;

use crate::http::HttpTimeouts;

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

/// Limits on a model file before ONNX Runtime sees it; see
/// `ModelRepository::refresh_with_limits`.
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

/// How `serve_repository` serves: everything of [`ModelServerConfig`] but the folder.
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

/// Settings of dynamic batching ([`InferLimits::batching`]; how it works: the `batch` module).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batching {
    /// How long a batch may wait for more requests once it has one; zero = merge only the
    /// requests already waiting (no added latency).
    pub max_wait: Duration,
    /// Most rows of one merged call.
    pub max_rows: usize,
}

impl Default for Batching {
    fn default() -> Self {
        Self { max_wait: Duration::ZERO, max_rows: 256 }
    }
}
