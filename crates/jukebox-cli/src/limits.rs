//! How much one inference request may ask for: the model server's limits as flags, shared by
//! `jukebox serve` and `jukebox up` (each embeds a model server), so both take the same flags
//! and environment variables and neither borrows the other's types.

use jukebox_protocol::env;
use jukebox_server::model_server::{
    Batching, InferLimits, ServeOptions, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_ELEMENTS, DEFAULT_MAX_ROWS,
};

/// How much one inference request may ask for (shared by `jukebox serve` and `jukebox up`).
#[derive(clap::Args, Clone, Debug)]
pub struct RequestLimits {
    /// Most rows of any input of one request; larger requests are refused with 413 before decoding.
    #[arg(long, default_value_t = DEFAULT_MAX_ROWS, env = env::MAX_ROWS)]
    pub max_rows: u64,
    /// Most tensor elements of one request, all inputs together (413 beyond).
    #[arg(long, default_value_t = DEFAULT_MAX_ELEMENTS, env = env::MAX_ELEMENTS)]
    pub max_elements: u64,
    /// Requests that may wait while others run inference; one more answers 503.
    #[arg(long, default_value_t = 64, env = env::MAX_QUEUED)]
    pub max_queued: usize,
    /// Larger request bodies are refused with 413.
    #[arg(long, default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    /// Dynamic batching: concurrent small requests for the same model run as one ONNX Runtime
    /// call (their rows stacked, then the outputs split back), as Triton and OpenVINO Model
    /// Server batch. Raises throughput under many concurrent clients and adds no latency to a
    /// lone client. It assumes each row's output depends on that row only (true of the
    /// workshop's models); `--dynamic-batching false` runs every request alone.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "true|false")]
    pub dynamic_batching: bool,
    /// With dynamic batching: microseconds a batch waits for more requests once it has one
    /// (0 = merge only the requests already waiting, which adds no latency).
    #[arg(long, default_value_t = 0)]
    pub batch_wait_us: u64,
    /// With dynamic batching: most rows of one merged call.
    #[arg(long, default_value_t = Batching::default().max_rows)]
    pub max_batch_rows: usize,
}

impl RequestLimits {
    /// The model server's options with these limits and `token`.
    pub fn serve_options(&self, token: Option<String>) -> ServeOptions {
        let limits = InferLimits {
            max_rows: self.max_rows,
            max_elements: self.max_elements,
            max_elements_in_flight: self.max_elements,
            max_waiting: self.max_queued,
            batching: self.dynamic_batching.then(|| Batching {
                max_wait: std::time::Duration::from_micros(self.batch_wait_us),
                max_rows: self.max_batch_rows.max(1),
            }),
            ..InferLimits::default()
        };
        ServeOptions { token, max_body_bytes: self.max_body_bytes, limits, ..ServeOptions::default() }
    }
}
