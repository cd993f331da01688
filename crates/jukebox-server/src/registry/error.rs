//! The registry's errors and the one place they become HTTP answers: each [`RegistryError`]
//! variant has one status, and its answer is the Model Registry API's `{"code", "message"}`
//! body. A failure of the server itself (the database, a worker) answers a short 500 and leaves
//! its cause for the access log.

use std::path::PathBuf;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use jukebox_protocol::registry::ErrorBody;

/// Everything that can go wrong in the registry; each variant maps to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// 404: no record with that id, name or external id.
    #[error("{0}")]
    NotFound(String),
    /// 409: the name (or external id) is taken.
    #[error("{0}")]
    Conflict(String),
    /// 400: the request is malformed; the message names the field or parameter at fault.
    #[error("{0}")]
    BadRequest(String),
    /// 405: the path exists but not with this method.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 403: a request from a non-loopback host or origin to a loopback-bound registry.
    #[error("{0}")]
    Forbidden(String),
    /// 401: a write without the configured bearer token.
    #[error("writes need the registry token: send `Authorization: Bearer <token>` (the token `jukebox up` printed, or $JUKEBOX_REGISTRY_TOKEN)")]
    Unauthorized,
    /// 415: a write whose body is not declared as JSON.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 408: the body did not arrive in time ([`crate::http::HttpTimeouts`]).
    #[error("{0}")]
    RequestTimeout(String),
    /// 413: a body over the limit.
    #[error("the request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("cannot open the registry database {path}: {source}")]
    Open { path: PathBuf, source: rusqlite::Error },
    #[error("registry database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("a stored registry record is unreadable: {0}")]
    Corrupt(serde_json::Error),
    #[error("registry server I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("registry worker failed: {0}")]
    Worker(String),
}

impl RegistryError {
    pub fn status(&self) -> StatusCode {
        match self {
            RegistryError::NotFound(_) => StatusCode::NOT_FOUND,
            RegistryError::Conflict(_) => StatusCode::CONFLICT,
            RegistryError::BadRequest(_) => StatusCode::BAD_REQUEST,
            RegistryError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            RegistryError::Forbidden(_) => StatusCode::FORBIDDEN,
            RegistryError::Unauthorized => StatusCode::UNAUTHORIZED,
            RegistryError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            RegistryError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            RegistryError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            // A constraint the checks before the write missed (a race, an auto-name taken) is
            // still the client's conflict, never a server failure.
            RegistryError::Database(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) => {
                StatusCode::CONFLICT
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The one place registry errors become HTTP answers: status plus `{"code", "message"}`.
impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            // The cause goes to the access log (crate::observe), not to the client.
            let message = "the registry failed to answer; its log says why".to_string();
            return crate::observe::with_cause(
                (status, Json(ErrorBody { code: "500".into(), message })).into_response(),
                &self,
            );
        }
        let body = ErrorBody { code: status.as_u16().to_string(), message: self.to_string() };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
