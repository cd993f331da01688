//! The model server's HTTP side: its routes, the bearer token, the metadata and health
//! handlers, and serving a repository until shutdown.
//!
//! [`router`] builds the KServe v2 routes over a loaded [`ModelRepository`] (the table in the
//! parent module's doc); every route but health passes `require_token` when a token is
//! configured. Inference handlers read the body (answering 413 or 408 in the protocol's JSON
//! rather than axum's plain text) and hand it to the [`InferQueue`]. [`serve`] loads a folder
//! and [`serve_repository`] serves what is loaded, starting the repository watcher when asked
//! and the connection handling of [`crate::http`].

use std::future::Future;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jukebox_protocol::inference::{ModelMetadata, ServerMetadata};

use super::config::{ModelServerConfig, ServeOptions};
use super::error::ModelServerError;
use super::queue::InferQueue;
use super::repository::{watch_repository, LoadedModel, ModelRepository, RepositoryWatch, Served};
use crate::http::serve_http;

/// What every route shares: the repository served, the token, the body limit, the queue.
struct AppState {
    repository: Arc<Served>,
    token: Option<String>,
    max_body_bytes: usize,
    queue: InferQueue,
}

impl AppState {
    fn new(repository: ModelRepository, options: &ServeOptions) -> Self {
        Self {
            repository: Arc::new(Served::new(repository)),
            token: options.token.clone(),
            max_body_bytes: options.max_body_bytes,
            queue: InferQueue::new(options.limits),
        }
    }

    /// The repository as it is now; a request keeps this snapshot while it runs.
    fn repository(&self) -> Arc<ModelRepository> {
        self.repository.current()
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
    let watcher =
        watch.map(|watch| tokio::spawn(watch_repository(state.repository.clone(), watch, options.load_limits)));
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
    state.queue.infer(loaded, headers, read_body(body, state.max_body_bytes)?).await
}

async fn infer_version(
    State(state): State<Arc<AppState>>,
    UrlPath((name, version)): UrlPath<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ModelServerError> {
    let loaded = state.repository().get(&name, Some(&version))?.clone();
    state.queue.infer(loaded, headers, read_body(body, state.max_body_bytes)?).await
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
