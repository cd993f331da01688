//! The one error type of the model server, and the HTTP answer each failure gives.
//!
//! Every stage (repository loading, the size check, decoding, the queue, running the model)
//! fails with a [`ModelServerError`]; [`ModelServerError::status`] maps it once to a status, and
//! its [`IntoResponse`] writes the protocol's `{"error": "..."}` body. A server-side failure (500)
//! answers with a short public message and leaves its cause to the access log
//! ([`crate::observe`]), so clients never see paths or ONNX Runtime internals.

use std::path::PathBuf;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use jukebox_protocol::inference::ErrorResponse;
use jukebox_runtime::RuntimeError;

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
    /// 413: a request over an [`InferLimits`](super::config::InferLimits) limit; `what` names the input and
    /// its size.
    #[error("{what}; this server accepts at most {limit} per request ({setting}); send smaller batches")]
    OverLimit { what: String, limit: String, setting: &'static str },
    /// 400: the same output asked for twice (Triton refuses this too).
    #[error("output tensor '{name}' is requested more than once; ask for each output once")]
    DuplicateOutput { name: String },
    /// 408: the body did not arrive in time ([`HttpTimeouts`](crate::http::HttpTimeouts)).
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
