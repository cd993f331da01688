//! The embedded servers that stand in for a cluster on a laptop. Each one speaks the protocol of
//! the real system it replaces, so the same client code talks to either:
//!
//! - [`s3`]: an S3-compatible object store on a local folder (stands in for MinIO);
//! - [`registry`]: a Kubeflow Model Registry REST server persisted in SQLite;
//! - [`model_server`]: a KServe v2 / Open Inference Protocol server running ONNX models
//!   (stands in for OpenVINO Model Server).
//!
//! All three run on [`http`]'s accept loop, with header and body read timeouts; [`stack`] starts
//! them together, as `jukebox up` does; [`server_thread`] runs one on its own thread until dropped
//! (for tests and benchmarks); [`observe`] gives each an access log and Prometheus metrics.
//!
//! Notebooks never compile this crate; the `jukebox` binary starts these servers.

pub mod http;
pub mod model_server;
pub mod observe;
pub mod registry;
pub mod s3;
pub mod server_thread;
pub mod stack;
