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
//!
//! **Modules**, one job each; each uses only modules above it in this table, so no two import
//! each other:
//!
//! | module | job |
//! |---|---|
//! | `config` | [`ModelServerConfig`], [`ServeOptions`] and the limits with their defaults |
//! | `error` | [`ModelServerError`] and the HTTP status each failure answers with |
//! | `guard` | the scan of a model file for nodes that would allocate without bound at load |
//! | `batch` | dynamic batching of small concurrent requests for one model version |
//! | `repository` | [`ModelRepository`]: loading the folder's versions, and the watcher |
//! | `precheck` | the size check of a request before anything is decoded |
//! | `tensors` | JSON straight into f32 tensors, and answers written into one buffer |
//! | `request` | a decoded request checked against its model, and its answer |
//! | `queue` | the in-flight budget, slicing large requests, small ones inline or batched |
//! | `routes` | the HTTP routes, the token, metadata and health handlers, [`serve`] |

mod batch;
mod config;
mod error;
mod guard;
mod precheck;
mod queue;
mod repository;
mod request;
mod routes;
mod tensors;

pub use config::{
    Batching, InferLimits, LoadLimits, ModelServerConfig, ServeOptions, DEFAULT_BATCH_ROWS, DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_ELEMENTS, DEFAULT_MAX_FOLDED_CONSTANT_BYTES, DEFAULT_MAX_MODEL_FILE_BYTES, DEFAULT_MAX_ROWS,
    INLINE_MAX_ELEMENTS, ONE_PASS_MAX_BYTES,
};
pub use error::ModelServerError;
pub use queue::{run_inference, run_inference_with};
pub use repository::{LoadedModel, ModelRepository, RepositoryWatch};
pub use routes::{router, router_with_options, serve, serve_repository};
