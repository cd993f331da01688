//! A Kubeflow Model Registry REST server persisted in SQLite: the laptop stand-in for the model
//! registry of OpenShift AI / Kubeflow.
//!
//! It answers the calls the official `model-registry` Python client makes (and the `jukebox`
//! crate's client), under both API base paths: `/api/model_registry/v1` (client 0.3.8 and later)
//! and `/api/model_registry/v1alpha3` (0.3.7 and earlier). Under each:
//!
//! | method | path | what |
//! |---|---|---|
//! | GET, POST | `/registered_models` | list (paged), create |
//! | GET, PATCH | `/registered_models/{id}` | read, update |
//! | GET | `/registered_model?name=` (or `externalId=`) | find |
//! | GET, POST | `/registered_models/{id}/versions` | list a model's versions, create one |
//! | GET, POST | `/model_versions` | list all versions, create |
//! | GET, PATCH | `/model_versions/{id}` | read, update |
//! | GET | `/model_version?name=&parentResourceId=` | find a version of a model |
//! | GET, POST | `/model_versions/{id}/artifacts` | list a version's artifacts, upsert one |
//! | GET, POST | `/model_artifacts` | list all artifacts, create one without a version |
//! | GET, PATCH | `/model_artifacts/{id}` | read, update |
//! | GET | `/model_artifact?name=&parentResourceId=` | find an artifact of a version |
//!
//! Lists take `pageSize`, `nextPageToken`, `orderBy` (`ID`, `CREATE_TIME`, `LAST_UPDATE_TIME`)
//! and `sortOrder` (`ASC`, `DESC`). Model names are unique (a duplicate answers 409), version
//! names unique within their model (409). Unknown ids and names answer 404, malformed JSON or a
//! missing or mistyped field 400 naming the field; every error body is the API's
//! `{"code", "message"}`, and a refused request changes nothing (each write is one SQLite
//! transaction).
//!
//! **Who may write.** A browser page can send a `POST` with `Content-Type: text/plain` to any
//! address without a CORS preflight, so writes (`POST`, `PATCH`, `PUT`, `DELETE`) must be
//! `application/json` (415 otherwise). On a loopback address the server also applies the rule
//! Jupyter server uses against DNS rebinding and cross-site requests: the `Host` must be
//! `localhost`, `127.0.0.1` or `[::1]` (any port) and an `Origin`, if sent, a loopback origin
//! (403 otherwise). With a token ([`RegistryConfig::token`], env `JUKEBOX_REGISTRY_TOKEN`), writes
//! need `Authorization: Bearer <token>` (401), as the Kubeflow registry behind its proxy.
//!
//! **Sizes.** Bodies over [`RegistryConfig::max_body_bytes`] answer 413; a `name` over
//! [`MAX_NAME_BYTES`] or any other text over [`MAX_TEXT_BYTES`] answers 400 naming the field.
//! An artifact id used under another version's path answers 404 and changes nothing.
//!
//! `GET /` is a plain HTML page (no JavaScript) listing the models, their versions, each version's
//! artifact URI and format, its metadata and creation time, like the Model Registry page of the
//! OpenShift AI dashboard.
//!
//! Where each part lives: this module holds the configuration, the request parsing and the
//! routes; `access` the checks before any handler; `error` the errors and their answers; `store`
//! the SQLite records; `page` the web page.
//!
//! ```no_run
//! # async fn demo() -> Result<(), jukebox_server::registry::RegistryError> {
//! use jukebox_server::registry::{serve, RegistryConfig};
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! serve(listener, RegistryConfig::new(".jukebox/registry.db"), async {
//!     tokio::signal::ctrl_c().await.ok();
//! })
//! .await
//! # }
//! ```

mod access;
mod error;
mod page;
mod store;

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use jukebox_protocol::registry::{
    FindQuery, ListQuery, ModelArtifactCreate, ModelArtifactUpdate, ModelVersionCreate, ModelVersionUpdate,
    RegisteredModelCreate, RegisteredModelUpdate, BASE_PATH_V1, BASE_PATH_V1ALPHA3,
};
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;

use self::access::guard;
pub use self::access::AccessRules;
pub use self::error::RegistryError;
pub use self::store::{ModelTree, RegistryStore};

use crate::http::{serve_http, HttpTimeouts};

/// Longest `name` accepted (bytes): Kubeflow's MLMD stores names in a 255-character column.
pub const MAX_NAME_BYTES: usize = 256;

/// Longest other text accepted (bytes): descriptions, URIs, custom property values.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;

/// Default request body limit: a record with many custom properties stays far below it.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// Where the registry keeps its records, and who may write them.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// The SQLite database file; created (with its folder) if missing, reused if present.
    pub database: PathBuf,
    /// Bearer token required for writes; `None` = anyone who passes the origin checks.
    pub token: Option<String>,
    /// Larger request bodies answer 413.
    pub max_body_bytes: usize,
    /// Header and body read timeouts, idle connections.
    pub timeouts: HttpTimeouts,
}

impl RegistryConfig {
    /// Default limits; the write token is taken from `JUKEBOX_REGISTRY_TOKEN` when that is set
    /// and not empty.
    pub fn new(database: impl Into<PathBuf>) -> Self {
        Self {
            database: database.into(),
            token: std::env::var(jukebox_protocol::env::REGISTRY_TOKEN).ok().filter(|t| !t.is_empty()),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            timeouts: HttpTimeouts::API,
        }
    }
}

/// The shared state of all handlers: the store behind a mutex (SQLite calls block, so they run
/// on tokio's blocking pool).
#[derive(Clone)]
struct AppState {
    store: Arc<Mutex<RegistryStore>>,
    max_body_bytes: usize,
}

impl AppState {
    async fn run<T, F>(&self, work: F) -> Result<T, RegistryError>
    where
        T: Send + 'static,
        F: FnOnce(&mut RegistryStore) -> Result<T, RegistryError> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || {
            // A panic mid-request cannot leave half a write behind (transactions roll back on
            // drop), so a poisoned lock still guards a consistent database.
            let mut guard = store.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            work(&mut guard)
        })
        .await
        .map_err(|e| RegistryError::Worker(e.to_string()))?
    }
}

/// A JSON body whose parse errors become 400 answers naming the field (`name: invalid type...`).
/// The content type was checked by [`guard`]; text fields are checked against the length limits.
struct ApiJson<T>(T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = RegistryError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(request, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                RegistryError::PayloadTooLarge { limit: state.max_body_bytes }
            } else if crate::http::is_body_timeout(&e) {
                RegistryError::RequestTimeout(format!("cannot read the request body: {e}"))
            } else {
                RegistryError::BadRequest(format!("cannot read the request body: {e}"))
            }
        })?;
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes) {
            check_lengths(&value, "", 0)?;
        }
        let deserializer = &mut serde_json::Deserializer::from_slice(&bytes);
        serde_path_to_error::deserialize(deserializer).map(ApiJson).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let what = if inner.is_syntax() || inner.is_eof() { "malformed JSON body" } else { "invalid JSON body" };
            if path == "." || path.is_empty() {
                RegistryError::BadRequest(format!("{what}: {inner}"))
            } else {
                RegistryError::BadRequest(format!("{what} at field `{path}`: {inner}"))
            }
        })
    }
}

/// Refuses a `name` over [`MAX_NAME_BYTES`] (top level, and custom property keys) and any other
/// string over [`MAX_TEXT_BYTES`], naming the field.
fn check_lengths(value: &serde_json::Value, path: &str, depth: usize) -> Result<(), RegistryError> {
    let field = |key: &str| if path.is_empty() { key.to_string() } else { format!("{path}.{key}") };
    match value {
        serde_json::Value::String(text) => {
            let limit = if depth == 1 && path == "name" { MAX_NAME_BYTES } else { MAX_TEXT_BYTES };
            if text.len() > limit {
                return Err(RegistryError::BadRequest(format!(
                    "field `{path}` has {} bytes; this registry accepts at most {limit}",
                    text.len()
                )));
            }
        }
        serde_json::Value::Object(map) => {
            for (key, item) in map {
                if key.len() > MAX_NAME_BYTES {
                    return Err(RegistryError::BadRequest(format!(
                        "a key in `{}` has {} bytes; this registry accepts keys of at most {MAX_NAME_BYTES}",
                        if path.is_empty() { "the body" } else { path },
                        key.len()
                    )));
                }
                check_lengths(item, &field(key), depth + 1)?;
            }
        }
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check_lengths(item, &format!("{path}[{i}]"), depth + 1)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// A query string whose parse errors become 400 answers naming the parameter.
struct ApiQuery<T>(T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = RegistryError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| ApiQuery(value))
            .map_err(|e| RegistryError::BadRequest(e.body_text()))
    }
}

/// The REST API routes (mounted under each base path by [`router`]).
fn api_routes() -> Router<AppState> {
    Router::new()
        .route("/registered_models", get(list_registered_models).post(create_registered_model))
        .route("/registered_models/{id}", get(get_registered_model).patch(update_registered_model))
        .route("/registered_model", get(find_registered_model))
        .route("/registered_models/{id}/versions", get(list_model_versions_of).post(create_model_version_of))
        .route("/model_versions", get(list_model_versions).post(create_model_version))
        .route("/model_versions/{id}", get(get_model_version).patch(update_model_version))
        .route("/model_version", get(find_model_version))
        .route("/model_versions/{id}/artifacts", get(list_version_artifacts).post(upsert_version_artifact))
        .route("/model_artifacts", get(list_model_artifacts).post(create_model_artifact))
        .route("/model_artifacts/{id}", get(get_model_artifact).patch(update_model_artifact))
        .route("/model_artifact", get(find_model_artifact))
        .method_not_allowed_fallback(method_not_allowed)
}

async fn method_not_allowed(request: Request) -> RegistryError {
    RegistryError::MethodNotAllowed(format!("{} is not allowed on {}", request.method(), request.uri().path()))
}

/// The whole service on an open store: the API under both base paths, the web page at `/`,
/// and a JSON 404 for anything else. Writes must be JSON; no token, no loopback rule.
pub fn router(store: RegistryStore) -> Router {
    router_with(store, AccessRules::default())
}

/// [`router`] with the access rules of [`AccessRules`].
pub fn router_with(store: RegistryStore, rules: AccessRules) -> Router {
    let limit = if rules.max_body_bytes == 0 { DEFAULT_MAX_BODY_BYTES } else { rules.max_body_bytes };
    let state = AppState { store: Arc::new(Mutex::new(store)), max_body_bytes: limit };
    Router::new()
        .route("/", get(index_page))
        .method_not_allowed_fallback(method_not_allowed)
        .nest(BASE_PATH_V1, api_routes())
        .nest(BASE_PATH_V1ALPHA3, api_routes())
        .fallback(|request: Request| async move {
            RegistryError::NotFound(format!("no registry endpoint {} {}", request.method(), request.uri().path()))
        })
        .with_state(state)
        .layer(middleware::from_fn_with_state(Arc::new(rules), guard))
        .layer(DefaultBodyLimit::max(limit))
}

/// Serves the registry on `listener` until `shutdown` completes, then finishes in-flight
/// requests and closes the database.
pub async fn serve(
    listener: TcpListener,
    config: RegistryConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RegistryError> {
    if let Some(folder) = config.database.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder)?;
    }
    let database = config.database.clone();
    let store = tokio::task::spawn_blocking(move || RegistryStore::open(&database))
        .await
        .map_err(|e| RegistryError::Worker(e.to_string()))??;
    let loopback_only = listener.local_addr()?.ip().is_loopback();
    let rules = AccessRules { token: config.token.clone(), loopback_only, max_body_bytes: config.max_body_bytes };
    serve_http(listener, crate::observe::registry(router_with(store, rules)), config.timeouts, "registry", shutdown)
        .await;
    Ok(())
}

// --- handlers: each parses, runs one store call, and answers JSON -------------------------

type ApiResult = Result<Response, RegistryError>;

fn ok<T: serde::Serialize>(value: T) -> ApiResult {
    Ok(Json(value).into_response())
}

fn created<T: serde::Serialize>(value: T) -> ApiResult {
    Ok((StatusCode::CREATED, Json(value)).into_response())
}

/// The read, update and find handlers of each record kind, named as the store methods they call.
macro_rules! record_handlers {
    ($($get:ident, $update:ident, $find:ident: $update_form:ty;)*) => {$(
        async fn $get(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult {
            ok(s.run(move |db| db.$get(&id)).await?)
        }

        async fn $update(
            State(s): State<AppState>,
            Path(id): Path<String>,
            ApiJson(body): ApiJson<$update_form>,
        ) -> ApiResult {
            ok(s.run(move |db| db.$update(&id, body)).await?)
        }

        async fn $find(State(s): State<AppState>, ApiQuery(q): ApiQuery<FindQuery>) -> ApiResult {
            ok(s.run(move |db| db.$find(&q)).await?)
        }
    )*};
}

record_handlers! {
    get_registered_model, update_registered_model, find_registered_model: RegisteredModelUpdate;
    get_model_version, update_model_version, find_model_version: ModelVersionUpdate;
    get_model_artifact, update_model_artifact, find_model_artifact: ModelArtifactUpdate;
}

/// The two list handlers of a child kind: under one parent (`/{id}/...` in the path) and all of
/// them, both calling the store's one list method.
macro_rules! list_handlers {
    ($($of_parent:ident, $all:ident => $list:ident;)*) => {$(
        async fn $of_parent(
            State(s): State<AppState>,
            Path(id): Path<String>,
            ApiQuery(q): ApiQuery<ListQuery>,
        ) -> ApiResult {
            ok(s.run(move |db| db.$list(Some(&id), &q)).await?)
        }

        async fn $all(State(s): State<AppState>, ApiQuery(q): ApiQuery<ListQuery>) -> ApiResult {
            ok(s.run(move |db| db.$list(None, &q)).await?)
        }
    )*};
}

list_handlers! {
    list_model_versions_of, list_model_versions => list_model_versions;
    list_version_artifacts, list_model_artifacts => list_model_artifacts;
}

async fn list_registered_models(State(s): State<AppState>, ApiQuery(q): ApiQuery<ListQuery>) -> ApiResult {
    ok(s.run(move |db| db.list_registered_models(&q)).await?)
}

async fn create_registered_model(
    State(s): State<AppState>,
    ApiJson(body): ApiJson<RegisteredModelCreate>,
) -> ApiResult {
    created(s.run(move |db| db.create_registered_model(body)).await?)
}

async fn create_model_version_of(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ModelVersionCreate>,
) -> ApiResult {
    created(s.run(move |db| db.create_model_version(Some(&id), body)).await?)
}

async fn create_model_version(State(s): State<AppState>, ApiJson(body): ApiJson<ModelVersionCreate>) -> ApiResult {
    created(s.run(move |db| db.create_model_version(None, body)).await?)
}

async fn upsert_version_artifact(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ModelArtifactCreate>,
) -> ApiResult {
    let (artifact, was_created) = s.run(move |db| db.upsert_version_artifact(&id, body)).await?;
    if was_created {
        created(artifact)
    } else {
        ok(artifact)
    }
}

async fn create_model_artifact(State(s): State<AppState>, ApiJson(body): ApiJson<ModelArtifactCreate>) -> ApiResult {
    created(s.run(move |db| db.create_artifact(None, body)).await?)
}

async fn index_page(State(s): State<AppState>) -> Result<Html<String>, RegistryError> {
    let trees = s.run(|db| db.overview()).await?;
    Ok(Html(page::render(&trees)))
}
