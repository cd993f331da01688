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
//! `GET /` is a plain HTML page (no JavaScript) listing the models, their versions, each version's
//! artifact URI and format, its metadata and creation time, like the Model Registry page of the
//! OpenShift AI dashboard.
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

mod page;
mod store;

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use jukebox_protocol::registry::{
    ErrorBody, FindQuery, ListQuery, ModelArtifactCreate, ModelArtifactUpdate, ModelVersionCreate, ModelVersionUpdate,
    RegisteredModelCreate, RegisteredModelUpdate, BASE_PATH_V1, BASE_PATH_V1ALPHA3,
};
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;

pub use store::{ModelTree, RegistryStore};

/// Where the registry keeps its records.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// The SQLite database file; created (with its folder) if missing, reused if present.
    pub database: PathBuf,
}

impl RegistryConfig {
    pub fn new(database: impl Into<PathBuf>) -> Self {
        Self { database: database.into() }
    }
}

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
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The one place registry errors become HTTP answers: status plus `{"code", "message"}`.
impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = ErrorBody { code: status.as_u16().to_string(), message: self.to_string() };
        (status, Json(body)).into_response()
    }
}

/// The shared state of all handlers: the store behind a mutex (SQLite calls block, so they run
/// on tokio's blocking pool).
#[derive(Clone)]
struct AppState {
    store: Arc<Mutex<RegistryStore>>,
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
/// Any content type is accepted: the body must simply be JSON.
struct ApiJson<T>(T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = RegistryError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|e| RegistryError::BadRequest(format!("cannot read the request body: {e}")))?;
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
/// and a JSON 404 for anything else.
pub fn router(store: RegistryStore) -> Router {
    let state = AppState { store: Arc::new(Mutex::new(store)) };
    Router::new()
        .route("/", get(index_page))
        .method_not_allowed_fallback(method_not_allowed)
        .nest(BASE_PATH_V1, api_routes())
        .nest(BASE_PATH_V1ALPHA3, api_routes())
        .fallback(|request: Request| async move {
            RegistryError::NotFound(format!("no registry endpoint {} {}", request.method(), request.uri().path()))
        })
        .with_state(state)
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
    axum::serve(listener, router(store)).with_graceful_shutdown(shutdown).await?;
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

async fn list_registered_models(State(s): State<AppState>, ApiQuery(q): ApiQuery<ListQuery>) -> ApiResult {
    ok(s.run(move |db| db.list_registered_models(&q)).await?)
}

async fn create_registered_model(State(s): State<AppState>, ApiJson(body): ApiJson<RegisteredModelCreate>) -> ApiResult {
    created(s.run(move |db| db.create_registered_model(body)).await?)
}

async fn get_registered_model(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult {
    ok(s.run(move |db| db.get_registered_model(&id)).await?)
}

async fn update_registered_model(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RegisteredModelUpdate>,
) -> ApiResult {
    ok(s.run(move |db| db.update_registered_model(&id, body)).await?)
}

async fn find_registered_model(State(s): State<AppState>, ApiQuery(q): ApiQuery<FindQuery>) -> ApiResult {
    ok(s.run(move |db| db.find_registered_model(&q)).await?)
}

async fn list_model_versions_of(State(s): State<AppState>, Path(id): Path<String>, ApiQuery(q): ApiQuery<ListQuery>) -> ApiResult {
    ok(s.run(move |db| db.list_model_versions(Some(&id), &q)).await?)
}

async fn create_model_version_of(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ModelVersionCreate>,
) -> ApiResult {
    created(s.run(move |db| db.create_model_version(Some(&id), body)).await?)
}

async fn list_model_versions(State(s): State<AppState>, ApiQuery(q): ApiQuery<ListQuery>) -> ApiResult {
    ok(s.run(move |db| db.list_model_versions(None, &q)).await?)
}

async fn create_model_version(State(s): State<AppState>, ApiJson(body): ApiJson<ModelVersionCreate>) -> ApiResult {
    created(s.run(move |db| db.create_model_version(None, body)).await?)
}

async fn get_model_version(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult {
    ok(s.run(move |db| db.get_model_version(&id)).await?)
}

async fn update_model_version(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ModelVersionUpdate>,
) -> ApiResult {
    ok(s.run(move |db| db.update_model_version(&id, body)).await?)
}

async fn find_model_version(State(s): State<AppState>, ApiQuery(q): ApiQuery<FindQuery>) -> ApiResult {
    ok(s.run(move |db| db.find_model_version(&q)).await?)
}

async fn list_version_artifacts(State(s): State<AppState>, Path(id): Path<String>, ApiQuery(q): ApiQuery<ListQuery>) -> ApiResult {
    ok(s.run(move |db| db.list_model_artifacts(Some(&id), &q)).await?)
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

async fn list_model_artifacts(State(s): State<AppState>, ApiQuery(q): ApiQuery<ListQuery>) -> ApiResult {
    ok(s.run(move |db| db.list_model_artifacts(None, &q)).await?)
}

async fn create_model_artifact(State(s): State<AppState>, ApiJson(body): ApiJson<ModelArtifactCreate>) -> ApiResult {
    created(s.run(move |db| db.create_artifact(None, body)).await?)
}

async fn get_model_artifact(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult {
    ok(s.run(move |db| db.get_model_artifact(&id)).await?)
}

async fn update_model_artifact(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ModelArtifactUpdate>,
) -> ApiResult {
    ok(s.run(move |db| db.update_model_artifact(&id, body)).await?)
}

async fn find_model_artifact(State(s): State<AppState>, ApiQuery(q): ApiQuery<FindQuery>) -> ApiResult {
    ok(s.run(move |db| db.find_model_artifact(&q)).await?)
}

async fn index_page(State(s): State<AppState>) -> Result<Html<String>, RegistryError> {
    let trees = s.run(|db| db.overview()).await?;
    Ok(Html(page::render(&trees)))
}
