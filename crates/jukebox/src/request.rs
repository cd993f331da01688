//! Stage 4: ask a KServe v2 model server which country a song would chart in.
//!
//! This is what the workshop's request notebook does, step by step:
//!
//! 1. load the scaler and label encoder saved next to the model
//!    ([`ModelArtifacts::load`], from `<model>/<version>/artifacts/`, or
//!    [`ModelArtifacts::download`] for a registered version);
//! 2. take a song's 13 audio features, by name from the song_properties table
//!    ([`song_by_name`]) or as raw values ([`Song::from_features`]);
//! 3. scale them with the saved min/max and build the v2 request: 13 FP32 inputs named after
//!    the features, each of shape `[1, 1]` ([`InferenceClient::build_request`]);
//! 4. post it (optionally with a bearer token) and map the returned probabilities to country
//!    codes ([`Prediction`]: top country, top-k, an HTML table, an SVG bar chart).
//!
//! ## A prediction always names its version
//!
//! A model server answers `/v2/models/jukebox/infer` with whatever version it considers the
//! default, usually the newest. Scaling a song with version 1's scaler and letting version 2
//! answer gives a wrong prediction that looks right. So artifacts remember which served version
//! they belong to ([`ModelArtifacts::version`], [`ServedVersion`]: the model name and version
//! folder of `<model>/<version>/`, from the folder they were loaded from or the registry's
//! storage path they were downloaded from), and every request made with them asks for exactly
//! that version (`/v2/models/jukebox/versions/1/infer`). A client set to another version refuses
//! them ([`RequestError::VersionMismatch`]); artifacts that cannot say their version are refused
//! unless the client names one ([`RequestError::UnknownVersion`]).
//!
//! ```no_run
//! use jukebox::request::{model_url_from_env, InferenceClient, ModelArtifacts, Song};
//! let artifacts = ModelArtifacts::load("models/jukebox/1")?; // version folder 1 of `jukebox`
//! let client = InferenceClient::for_artifacts(&model_url_from_env(), &artifacts)?;
//! assert!(client.infer_url().ends_with("/v2/models/jukebox/versions/1/infer"));
//! let song = Song::from_features("demo", &[0.0, 200000.0, 0.6, 0.7, 5.0, -6.0, 1.0, 0.05, 0.1, 0.0, 0.1, 0.5, 120.0]);
//! let prediction = client.predict(&artifacts, &song)?;
//! println!("{} ({:.1}%)", prediction.top().0, prediction.top().1 * 100.0);
//! # Ok::<(), jukebox::request::RequestError>(())
//! ```
//!
//! The HTTP client is blocking (`ureq`) so notebook cells stay plain function calls.

use std::path::{Path, PathBuf};
use std::time::Duration;

use jukebox_protocol::env;
use jukebox_protocol::inference::{ErrorResponse, InferInput, InferRequest, InferResponse};
use jukebox_protocol::model_folder::{ARTIFACTS_DIR, LABEL_ENCODER_FILE, OUTPUT_NAME, SCALER_FILE};
use polars::prelude::{DataFrame, DataType};

use crate::display::{escape, Cell, Code, Plot, Table, ToHtml};

/// Everything that can go wrong preparing, sending or reading a prediction request.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("cannot read {path}: {message}")]
    Artifact { path: PathBuf, message: String },
    #[error("scaler {path}: {message}")]
    Scaler { path: PathBuf, message: String },
    #[error("no song named '{name}' in song_properties{}", suggestions_text(.suggestions))]
    UnknownSong { name: String, suggestions: Vec<String> },
    #[error("song_properties: {message}")]
    Data { message: String },
    #[error("song '{song}' has {actual} feature values but the scaler expects {expected} ({features})")]
    FeatureCount { song: String, actual: usize, expected: usize, features: String },
    #[error("song '{song}': feature '{feature}' is missing or not a finite number")]
    BadFeature { song: String, feature: String },
    #[error("model server {url} is unreachable: {message} (is `jukebox serve` running? is JUKEBOX_MODEL_URL right?)")]
    Unreachable { url: String, message: String },
    #[error("model server {url} answered {status}: {message}")]
    Http { url: String, status: u16, message: String },
    #[error("model server {url} sent an answer that is not a v2 inference response: {message}")]
    BadResponse { url: String, message: String },
    #[error("JUKEBOX_MODEL_URL is not set; start `jukebox serve` and eval the line it prints, or pass the URL")]
    NoUrl,
    #[error("registered model artifact {name:?} has no storage path, so its scaler and classes cannot be fetched")]
    NotStored { name: String },
    #[error("registered model artifact {name:?} is stored at {path:?}, which does not end in a version folder number (`<name>/<integer>`)")]
    NoVersionFolder { name: String, path: String },
    #[error(
        "the artifacts (scaler, label encoder) are version {artifacts} of model {model:?}, but the client asks the \
         server for version {client}: the song would be scaled for one version and answered by another. Use \
         InferenceClient::for_artifacts(url, &artifacts), or load the artifacts of version {client}"
    )]
    VersionMismatch { model: String, artifacts: u64, client: String },
    #[error(
        "the artifacts in {dir} do not say which model version they belong to (the folder is not \
         `<model>/<integer version>`), so the server cannot be asked for that version: load them from the version \
         folder, download them with ModelArtifacts::download, or name the version with `client.with_version(..)` \
         (`jukebox request --version`)"
    )]
    UnknownVersion { dir: String },
    #[error("fetching the model's artifacts: {0}")]
    Storage(#[from] crate::storage::StorageError),
}

fn suggestions_text(suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        String::new()
    } else {
        format!("; similar names: {}", suggestions.join(", "))
    }
}

/// `scaler.json` and `label_encoder.json`, as the model folder contract defines them: the
/// request path scales with the same rule as training.
pub use jukebox_protocol::model_folder::{LabelEncoder, Scaler};

/// Which model version a model server serves some artifacts as: the model's name and its
/// version folder (`models/jukebox/2` is version 2 of `jukebox`; model servers number versions by
/// folder, the registry names them `0.0.2`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedVersion {
    pub model: String,
    pub folder: u64,
}

impl ServedVersion {
    /// The version a folder or storage path `.../<model>/<integer>` names (a trailing `/` and an
    /// `artifacts` folder after it are allowed); `None` when it names none.
    pub fn of_path(path: &str) -> Option<ServedVersion> {
        let path = path.trim_end_matches('/');
        let path = path.strip_suffix(&format!("/{ARTIFACTS_DIR}")).unwrap_or(path);
        let folder = jukebox_protocol::model_folder::version_folder_of(path)?;
        let model = path.rsplit('/').nth(1).filter(|m| !m.is_empty() && *m != "." && *m != "..")?;
        Some(ServedVersion { model: model.to_string(), folder })
    }
}

impl std::fmt::Display for ServedVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} version {}", self.model, self.folder)
    }
}

/// The scaler and label encoder saved with a model version, and which version that is.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelArtifacts {
    pub scaler: Scaler,
    pub labels: LabelEncoder,
    /// The served version these belong to; requests made with them ask for it. `None` when they
    /// were loaded from a folder that does not say (then the client must name the version).
    pub version: Option<ServedVersion>,
    /// The folder they were read from (named in errors).
    pub dir: PathBuf,
}

impl ModelArtifacts {
    /// Loads `scaler.json` and `label_encoder.json` from `dir`, which may be the model version
    /// folder (`models/jukebox/1`) or its `artifacts` folder. The version is read from the path:
    /// `models/jukebox/1` is version 1 of `jukebox`.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self, RequestError> {
        let given = dir.as_ref();
        let dir = if given.join(ARTIFACTS_DIR).is_dir() { given.join(ARTIFACTS_DIR) } else { given.to_path_buf() };
        let scaler_path = dir.join(SCALER_FILE);
        let scaler: Scaler = read_json(&scaler_path)?;
        scaler.check().map_err(|e| RequestError::Scaler { path: scaler_path, message: e.to_string() })?;
        let labels: LabelEncoder = read_json(&dir.join(LABEL_ENCODER_FILE))?;
        // A relative `1` or `.` names its version only once resolved.
        let version = ServedVersion::of_path(&dir.to_string_lossy()).or_else(|| {
            let absolute = std::fs::canonicalize(&dir).ok()?;
            ServedVersion::of_path(&absolute.to_string_lossy())
        });
        Ok(Self { scaler, labels, version, dir })
    }

    /// Fetches the artifacts of a registered model version from where the registry says it is
    /// stored (`<storage path>/artifacts/` in the bucket) into `into`, and loads them: what a
    /// client that never saw the training run needs to talk to the served model. Their version
    /// is the storage path's version folder (`models/jukebox/1` is version 1), whatever `into`
    /// is called.
    pub fn download(
        storage: &crate::storage::Storage,
        artifact: &crate::registry::ModelArtifact,
        into: impl AsRef<Path>,
    ) -> Result<Self, RequestError> {
        let stored_at = storage_path(artifact)?;
        let version = ServedVersion::of_path(stored_at).ok_or_else(|| RequestError::NoVersionFolder {
            name: artifact.fields.name.clone().unwrap_or_default(),
            path: stored_at.to_string(),
        })?;
        let into = into.as_ref();
        storage.download_prefix(
            &format!("{}/{ARTIFACTS_DIR}", stored_at.trim_end_matches('/')),
            into.join(ARTIFACTS_DIR),
        )?;
        Ok(Self { version: Some(version), ..Self::load(into)? })
    }

    /// [`ModelArtifacts::download`] into the default folder for this artifact,
    /// [`ModelArtifacts::download_dir`]: what a notebook uses when it has no folder of its own in
    /// mind. Downloading the same version again overwrites the same files.
    pub fn fetch(
        storage: &crate::storage::Storage,
        artifact: &crate::registry::ModelArtifact,
    ) -> Result<Self, RequestError> {
        let into = Self::download_dir(storage, artifact)?;
        Self::download(storage, artifact, into)
    }

    /// Where [`ModelArtifacts::fetch`] puts a registered version's artifacts:
    /// `<temp dir>/jukebox-artifacts/<bucket>/<storage path>` (e.g.
    /// `/tmp/jukebox-artifacts/models/models/jukebox/1`). One folder per stored version, so two
    /// versions never share files, and nothing is written inside the notebooks' folder.
    pub fn download_dir(
        storage: &crate::storage::Storage,
        artifact: &crate::registry::ModelArtifact,
    ) -> Result<PathBuf, RequestError> {
        let stored_at = storage_path(artifact)?;
        let mut dir = std::env::temp_dir().join("jukebox-artifacts").join(&storage.config().bucket);
        // Only plain path segments: a storage path comes from the registry, not from us.
        dir.extend(stored_at.split('/').filter(|part| !part.is_empty() && *part != "." && *part != ".."));
        Ok(dir)
    }

    /// A client at `base_url` for the version these artifacts belong to: the same as
    /// [`InferenceClient::for_artifacts`].
    pub fn client(&self, base_url: &str) -> Result<InferenceClient, RequestError> {
        InferenceClient::for_artifacts(base_url, self)
    }
}

/// Where the model server is: `JUKEBOX_MODEL_URL` when set (what `jukebox up` and `jukebox serve`
/// print, and what a cluster's data connection sets), else [`DEFAULT_MODEL_URL`].
pub fn model_url_from_env() -> String {
    std::env::var(env::MODEL_URL).ok().filter(|url| !url.trim().is_empty()).unwrap_or_else(|| DEFAULT_MODEL_URL.into())
}

/// `jukebox serve`'s default address.
pub const DEFAULT_MODEL_URL: &str = "http://127.0.0.1:8000";

/// Where a registered artifact's folder is in the bucket (`storage_path`), or
/// [`RequestError::NotStored`] when the registry does not say.
fn storage_path(artifact: &crate::registry::ModelArtifact) -> Result<&str, RequestError> {
    artifact
        .fields
        .storage_path
        .as_deref()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| RequestError::NotStored { name: artifact.fields.name.clone().unwrap_or_default() })
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, RequestError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| RequestError::Artifact { path: path.to_path_buf(), message: e.to_string() })?;
    serde_json::from_str(&text).map_err(|e| RequestError::Artifact { path: path.to_path_buf(), message: e.to_string() })
}

/// A song to predict: its name (for display) and raw feature values in the scaler's order.
#[derive(Debug, Clone, PartialEq)]
pub struct Song {
    pub name: String,
    pub artists: Option<String>,
    pub features: Vec<f64>,
}

impl Song {
    /// A song from raw (unscaled) feature values, in the model's feature order
    /// (`is_explicit, duration_ms, danceability, energy, key, loudness, mode, speechiness,
    /// acousticness, instrumentalness, liveness, valence, tempo`).
    pub fn from_features(name: impl Into<String>, features: &[f64]) -> Self {
        Self { name: name.into(), artists: None, features: features.to_vec() }
    }
}

/// Every song called `name` (exact match) in a song_properties table, features in `features`
/// order (booleans as 0/1).
pub fn songs_by_name(properties: &DataFrame, name: &str, features: &[String]) -> Result<Vec<Song>, RequestError> {
    let data_error = |e: polars::prelude::PolarsError| RequestError::Data { message: e.to_string() };
    let names = properties.column("name").map_err(data_error)?.str().map_err(data_error)?;
    let rows: Vec<usize> = (0..names.len()).filter(|&i| names.get(i) == Some(name)).collect();
    if rows.is_empty() {
        let wanted = name.to_lowercase();
        let mut suggestions: Vec<String> = (0..names.len())
            .filter_map(|i| names.get(i))
            .filter(|n| {
                n.to_lowercase().contains(&wanted) || (n.chars().count() >= 4 && wanted.contains(&n.to_lowercase()))
            })
            .map(str::to_string)
            .collect();
        suggestions.sort();
        suggestions.dedup();
        suggestions.truncate(5);
        return Err(RequestError::UnknownSong { name: name.to_string(), suggestions });
    }
    let artists = properties.column("artists").ok().and_then(|c| c.str().ok().cloned());
    let mut columns = Vec::with_capacity(features.len());
    for feature in features {
        let column = properties
            .column(feature)
            .and_then(|c| c.cast(&DataType::Float64))
            .map_err(|e| RequestError::Data { message: format!("column '{feature}': {e}") })?;
        columns.push(column);
    }
    rows.into_iter()
        .map(|row| {
            let mut values = Vec::with_capacity(features.len());
            for (feature, column) in features.iter().zip(&columns) {
                let value = column.f64().ok().and_then(|c| c.get(row)).filter(|v| v.is_finite());
                values.push(
                    value
                        .ok_or_else(|| RequestError::BadFeature { song: name.to_string(), feature: feature.clone() })?,
                );
            }
            Ok(Song {
                name: name.to_string(),
                artists: artists.as_ref().and_then(|a| a.get(row)).map(str::to_string),
                features: values,
            })
        })
        .collect()
}

/// The first song called `name` in a song_properties table; an unknown name is an error
/// listing similar names.
pub fn song_by_name(properties: &DataFrame, name: &str, features: &[String]) -> Result<Song, RequestError> {
    Ok(songs_by_name(properties, name, features)?.remove(0))
}

/// A blocking client for one model on a KServe v2 server.
#[derive(Debug, Clone)]
pub struct InferenceClient {
    base_url: String,
    model: String,
    version: Option<String>,
    token: Option<String>,
    agent: ureq::Agent,
}

impl InferenceClient {
    /// A client for `model` at `base_url` (e.g. `http://127.0.0.1:8000`; a trailing `/v2` or
    /// `/` is tolerated).
    pub fn new(base_url: &str, model: &str) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build();
        let base_url = base_url.trim_end_matches('/').trim_end_matches("/v2").to_string();
        Self {
            base_url,
            model: model.to_string(),
            version: None,
            token: None,
            agent: ureq::Agent::new_with_config(config),
        }
    }

    /// A client for the model and version `artifacts` belong to, at `base_url`: what a notebook
    /// uses, so the server is always asked for the version whose scaler scales the song.
    /// Artifacts that do not know their version are refused ([`RequestError::UnknownVersion`]).
    pub fn for_artifacts(base_url: &str, artifacts: &ModelArtifacts) -> Result<Self, RequestError> {
        let version = artifacts
            .version
            .as_ref()
            .ok_or_else(|| RequestError::UnknownVersion { dir: artifacts.dir.display().to_string() })?;
        Ok(Self::new(base_url, &version.model).with_version(version.folder.to_string()))
    }

    /// A client from `JUKEBOX_MODEL_URL` and (if set) `JUKEBOX_MODEL_TOKEN`.
    pub fn from_env(model: &str) -> Result<Self, RequestError> {
        let url = std::env::var(env::MODEL_URL).map_err(|_| RequestError::NoUrl)?;
        let client = Self::new(&url, model);
        Ok(match std::env::var(env::MODEL_TOKEN) {
            Ok(token) if !token.is_empty() => client.with_token(token),
            _ => client,
        })
    }

    /// Sends `Authorization: Bearer <token>` with every request.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// [`InferenceClient::with_token`] when `token` is `Some` (a notebook's optional token
    /// parameter), else no token.
    pub fn with_optional_token(mut self, token: Option<impl Into<String>>) -> Self {
        self.token = token.map(Into::into);
        self
    }

    /// The version this client asks for, when it names one.
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// Addresses one model version instead of the server's default.
    pub fn with_version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// Addresses the version a model server serves a registered artifact as: model servers
    /// (OVMS, `jukebox serve`) number versions by their folder, the last part of the artifact's
    /// storage path (`models/jukebox/2` is version 2), while the registry names them (`0.0.2`).
    pub fn with_version_of(self, artifact: &crate::registry::ModelArtifact) -> Result<Self, RequestError> {
        let path = storage_path(artifact)?;
        match jukebox_protocol::model_folder::version_folder_of(path) {
            Some(folder) => Ok(self.with_version(folder.to_string())),
            None => Err(RequestError::NoVersionFolder {
                name: artifact.fields.name.clone().unwrap_or_default(),
                path: path.to_string(),
            }),
        }
    }

    /// The infer endpoint this client posts to (with no version named, the server's default:
    /// requests made with artifacts use [`InferenceClient::infer_url_for`]).
    pub fn infer_url(&self) -> String {
        self.url_of(self.version.as_deref())
    }

    fn url_of(&self, version: Option<&str>) -> String {
        match version {
            Some(v) => format!("{}/v2/models/{}/versions/{v}/infer", self.base_url, self.model),
            None => format!("{}/v2/models/{}/infer", self.base_url, self.model),
        }
    }

    /// The version a request scaled with `artifacts` must ask for: the artifacts' own version,
    /// which must be the client's when the client names one.
    fn version_for(&self, artifacts: &ModelArtifacts) -> Result<String, RequestError> {
        match (&self.version, &artifacts.version) {
            (Some(client), Some(theirs)) if *client != theirs.folder.to_string() => {
                Err(RequestError::VersionMismatch {
                    model: theirs.model.clone(),
                    artifacts: theirs.folder,
                    client: client.clone(),
                })
            }
            (_, Some(theirs)) => Ok(theirs.folder.to_string()),
            // The caller named the version for artifacts that cannot say theirs.
            (Some(client), None) => Ok(client.clone()),
            (None, None) => Err(RequestError::UnknownVersion { dir: artifacts.dir.display().to_string() }),
        }
    }

    /// The infer endpoint a request scaled with `artifacts` is posted to: always naming the
    /// version they belong to (see the module documentation).
    pub fn infer_url_for(&self, artifacts: &ModelArtifacts) -> Result<String, RequestError> {
        Ok(self.url_of(Some(&self.version_for(artifacts)?)))
    }

    /// The workshop's request body for these songs: one FP32 input per feature, named after
    /// it, of shape `[songs, 1]` (so `[1, 1]` for one song), holding scaled values.
    pub fn build_request(&self, artifacts: &ModelArtifacts, songs: &[Song]) -> Result<InferRequest, RequestError> {
        let scaler = &artifacts.scaler;
        let mut columns = vec![Vec::with_capacity(songs.len()); scaler.features.len()];
        for song in songs {
            if song.features.len() != scaler.features.len() {
                return Err(RequestError::FeatureCount {
                    song: song.name.clone(),
                    actual: song.features.len(),
                    expected: scaler.features.len(),
                    features: scaler.features.join(", "),
                });
            }
            if let Some(i) = song.features.iter().position(|v| !v.is_finite()) {
                return Err(RequestError::BadFeature { song: song.name.clone(), feature: scaler.features[i].clone() });
            }
            for (column, value) in columns.iter_mut().zip(scaler.transform(&song.features)) {
                column.push(value);
            }
        }
        let inputs = scaler
            .features
            .iter()
            .zip(columns)
            .map(|(name, data)| InferInput::fp32(name.clone(), vec![songs.len() as i64, 1], data))
            .collect();
        Ok(InferRequest { inputs, ..Default::default() })
    }

    /// The request [`InferenceClient::predict_batch`] sends for these songs, and where, to look
    /// at before sending it.
    pub fn request_body(&self, artifacts: &ModelArtifacts, songs: &[Song]) -> Result<RequestBody, RequestError> {
        Ok(RequestBody { url: self.infer_url_for(artifacts)?, request: self.build_request(artifacts, songs)? })
    }

    /// Posts a v2 request to [`InferenceClient::infer_url`] and returns the parsed response; a
    /// 4xx/5xx answer is an error carrying the status and the server's message. A request built
    /// from artifacts goes through [`InferenceClient::predict_batch`], which names their version.
    pub fn infer(&self, request: &InferRequest) -> Result<InferResponse, RequestError> {
        self.infer_at(self.infer_url(), request)
    }

    fn infer_at(&self, url: String, request: &InferRequest) -> Result<InferResponse, RequestError> {
        let mut call = self.agent.post(&url).header("Content-Type", "application/json");
        if let Some(token) = &self.token {
            call = call.header("Authorization", &format!("Bearer {token}"));
        }
        let body = serde_json::to_vec(request)
            .map_err(|e| RequestError::BadResponse { url: url.clone(), message: e.to_string() })?;
        let mut response =
            call.send(&body[..]).map_err(|e| RequestError::Unreachable { url: url.clone(), message: e.to_string() })?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(256 * 1024 * 1024)
            .read_to_string()
            .map_err(|e| RequestError::Unreachable { url: url.clone(), message: e.to_string() })?;
        if status >= 400 {
            // KServe/OVMS/Triton answer {"error": "..."}; anything else is shown as it came.
            let message = serde_json::from_str::<ErrorResponse>(&text).map(|e| e.error).unwrap_or(text);
            return Err(RequestError::Http { url, status, message });
        }
        serde_json::from_str(&text).map_err(|e| RequestError::BadResponse { url, message: e.to_string() })
    }

    /// The readiness URL of the addressed model (or model version).
    pub fn ready_url(&self) -> String {
        self.infer_url().trim_end_matches("/infer").to_string() + "/ready"
    }

    /// Waits until the server says the model (or the addressed version) is ready, asking every
    /// 200 ms for at most `timeout`: a server that watches its bucket loads a new version a
    /// moment after the upload. Returns how long it waited.
    pub fn wait_until_ready(&self, timeout: Duration) -> Result<Duration, RequestError> {
        let url = self.ready_url();
        let started = std::time::Instant::now();
        loop {
            let mut call = self.agent.get(&url);
            if let Some(token) = &self.token {
                call = call.header("Authorization", &format!("Bearer {token}"));
            }
            let (status, message) = match call.call() {
                Ok(mut response) => {
                    (response.status().as_u16(), response.body_mut().read_to_string().unwrap_or_default())
                }
                Err(e) => (0, e.to_string()),
            };
            if status == 200 {
                return Ok(started.elapsed());
            }
            if started.elapsed() >= timeout {
                return Err(match status {
                    0 => RequestError::Unreachable { url, message },
                    _ => RequestError::Http {
                        url,
                        status,
                        message: format!("not ready after {:.1} s: {message}", timeout.as_secs_f64()),
                    },
                });
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Predicts one song.
    pub fn predict(&self, artifacts: &ModelArtifacts, song: &Song) -> Result<Prediction, RequestError> {
        Ok(self.predict_batch(artifacts, std::slice::from_ref(song))?.0.remove(0))
    }

    /// Predicts many songs in one request, asking the server for the version `artifacts` belong
    /// to.
    pub fn predict_batch(&self, artifacts: &ModelArtifacts, songs: &[Song]) -> Result<Predictions, RequestError> {
        let version = self.version_for(artifacts)?;
        let url = self.url_of(Some(&version));
        let response = self.infer_at(url.clone(), &self.build_request(artifacts, songs)?)?;
        let bad = |message: String| RequestError::BadResponse { url: url.clone(), message };
        // A server that names the version it answered with must name the one asked for.
        if let Some(answered) = response.model_version.as_deref().filter(|v| *v != version) {
            return Err(bad(format!("asked for version {version}, the answer is from version {answered}")));
        }
        let output =
            response.output(OUTPUT_NAME).or(response.outputs.first()).ok_or_else(|| bad("no outputs".into()))?;
        let data = output
            .data
            .as_ref()
            .and_then(|d| d.to_f32())
            .ok_or_else(|| bad(format!("output '{}' has no numeric data", output.name)))?;
        let classes = &artifacts.labels.classes;
        if data.len() != songs.len() * classes.len() {
            return Err(bad(format!(
                "output '{}' has {} values for {} songs, but the label encoder has {} countries",
                output.name,
                data.len(),
                songs.len(),
                classes.len()
            )));
        }
        let answered_by = version.parse().ok().map(|folder| ServedVersion { model: self.model.clone(), folder });
        Ok(Predictions(
            songs
                .iter()
                .zip(data.chunks(classes.len()))
                .map(|(song, row)| Prediction {
                    song: song.name.clone(),
                    artists: song.artists.clone(),
                    model: answered_by.clone(),
                    probabilities: classes.iter().cloned().zip(row.iter().copied()).collect(),
                })
                .collect(),
        ))
    }
}

/// A v2 request as a reader looks at it: where it goes, one row per input tensor, and the JSON.
#[derive(Debug, Clone)]
pub struct RequestBody {
    pub url: String,
    pub request: InferRequest,
}

impl RequestBody {
    /// One row per input: name, datatype, shape and its values.
    pub fn table(&self) -> Table {
        let rows = self
            .request
            .inputs
            .iter()
            .map(|input| {
                let values = match &input.data {
                    Some(data) => serde_json::to_string(data).unwrap_or_default(),
                    None => String::new(),
                };
                vec![
                    Cell::from(input.name.as_str()),
                    Cell::from(input.datatype.as_str()),
                    Cell::from(format!("{:?}", input.shape)),
                    Cell::from(values),
                ]
            })
            .collect();
        Table::new(vec!["input".into(), "datatype".into(), "shape".into(), "data (scaled)".into()], rows)
            .with_caption(format!("POST {}: {} inputs", self.url, self.request.inputs.len()))
    }

    /// The JSON body exactly as it is sent, pretty-printed.
    pub fn json(&self) -> Code {
        Code::new("json", serde_json::to_string_pretty(&self.request).unwrap_or_default())
    }
}

/// One song's probability per country (label encoder order).
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub song: String,
    pub artists: Option<String>,
    /// The model version that answered (the one the request named).
    pub model: Option<ServedVersion>,
    pub probabilities: Vec<(String, f32)>,
}

impl Prediction {
    /// The most likely country and its probability (argmax; the first wins a tie).
    pub fn top(&self) -> (&str, f32) {
        let (code, p) = self
            .probabilities
            .iter()
            .fold(None::<&(String, f32)>, |best, item| match best {
                Some(b) if b.1 >= item.1 => Some(b),
                _ => Some(item),
            })
            .expect("a prediction has at least one class");
        (code.as_str(), *p)
    }

    /// The `k` most likely countries, most likely first.
    pub fn top_k(&self, k: usize) -> Vec<(String, f32)> {
        let mut sorted = self.probabilities.clone();
        sorted.sort_by(|a, b| b.1.total_cmp(&a.1));
        sorted.truncate(k);
        sorted
    }

    /// The top `k` countries as a table.
    pub fn table(&self, k: usize) -> Table {
        let rows = self
            .top_k(k)
            .into_iter()
            .enumerate()
            .map(|(i, (code, p))| vec![Cell::Number((i + 1) as f64), Cell::Text(code), Cell::Number(p as f64)])
            .collect();
        let title = match &self.artists {
            Some(a) => format!("{} ({a})", self.song),
            None => self.song.clone(),
        };
        let by = self.model.as_ref().map(|m| format!(", answered by {m}")).unwrap_or_default();
        Table::new(vec!["rank".into(), "country".into(), "probability".into()], rows)
            .with_caption(format!("Most likely countries for {title}{by}"))
    }

    /// Several predictions of the same song side by side (e.g. one per model version), each
    /// labelled: the union of their top `k` countries, ordered by the first prediction.
    pub fn side_by_side(labelled: &[(String, Prediction)], k: usize) -> Table {
        let mut countries: Vec<String> = Vec::new();
        for (_, prediction) in labelled {
            for (code, _) in prediction.top_k(k) {
                if !countries.contains(&code) {
                    countries.push(code);
                }
            }
        }
        let probability =
            |p: &Prediction, code: &str| p.probabilities.iter().find(|(c, _)| c == code).map(|(_, v)| *v as f64);
        if let Some((_, first)) = labelled.first() {
            countries
                .sort_by(|a, b| probability(first, b).unwrap_or(0.0).total_cmp(&probability(first, a).unwrap_or(0.0)));
        }
        let mut columns = vec!["country".to_string()];
        columns.extend(labelled.iter().map(|(label, _)| format!("probability ({label})")));
        let rows = countries
            .iter()
            .map(|code| {
                let mut row = vec![Cell::Text(code.clone())];
                row.extend(labelled.iter().map(|(_, p)| probability(p, code).map(Cell::Number).unwrap_or(Cell::Empty)));
                row
            })
            .collect();
        let song = labelled.first().map(|(_, p)| p.song.clone()).unwrap_or_default();
        let tops = labelled.iter().map(|(label, p)| format!("{label}: {}", p.top().0)).collect::<Vec<_>>().join(", ");
        Table::new(columns, rows).with_caption(format!("{song}: the top {k} countries of each ({tops})"))
    }

    /// A bar chart of the probability per country (SVG, no system fonts needed).
    pub fn chart(&self) -> Result<Plot, crate::display::PlotError> {
        use plotters::prelude::*;
        let n = self.probabilities.len();
        let top = self.probabilities.iter().map(|p| p.1).fold(0f32, f32::max).max(1e-6) as f64;
        let title = format!("Prediction over countries: {}", self.song);
        let labels: Vec<String> = self.probabilities.iter().map(|p| p.0.clone()).collect();
        let values: Vec<f64> = self.probabilities.iter().map(|p| p.1 as f64).collect();
        let best = self.top().0.to_string();
        Plot::draw(960, 420, move |root| {
            let mut chart = ChartBuilder::on(root)
                .caption(title, ("sans-serif", 18))
                .margin(10)
                .x_label_area_size(40)
                .y_label_area_size(50)
                .build_cartesian_2d((0..n).into_segmented(), 0f64..top * 1.1)?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(n)
                .x_label_formatter(&|x| match x {
                    SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
                    _ => String::new(),
                })
                .x_label_style(("sans-serif", 9).into_font().transform(FontTransform::Rotate90))
                .y_desc("probability")
                .draw()?;
            chart.draw_series(values.iter().enumerate().map(|(i, &v)| {
                let colour = if labels[i] == best { RGBColor(214, 39, 40) } else { RGBColor(31, 119, 180) };
                let mut bar =
                    Rectangle::new([(SegmentValue::Exact(i), 0.0), (SegmentValue::Exact(i + 1), v)], colour.filled());
                bar.set_margin(0, 0, 1, 1);
                bar
            }))?;
            Ok::<(), DrawingAreaErrorKind<std::io::Error>>(())
        })
    }
}

impl ToHtml for Prediction {
    /// The top-5 table as HTML, with the most likely country spelled out first.
    fn to_html(&self) -> String {
        let (code, p) = self.top();
        format!(
            "<p>The most likely country for <b>{}</b> is <b>{}</b> ({:.1}%).</p>{}",
            escape(&self.song),
            escape(code),
            p * 100.0,
            self.table(5).to_html()
        )
    }
}

/// Predictions for a batch of songs.
#[derive(Debug, Clone, PartialEq)]
pub struct Predictions(pub Vec<Prediction>);

impl Predictions {
    /// One row per song: top country, its probability, and the next two.
    pub fn table(&self) -> Table {
        let rows = self
            .0
            .iter()
            .map(|p| {
                let top = p.top_k(3);
                let rest =
                    top.iter().skip(1).map(|(c, v)| format!("{c} {:.1}%", v * 100.0)).collect::<Vec<_>>().join(", ");
                vec![
                    Cell::Text(p.song.clone()),
                    p.artists.clone().map(Cell::Text).unwrap_or(Cell::Empty),
                    Cell::Text(top[0].0.clone()),
                    Cell::Number(top[0].1 as f64),
                    Cell::Text(rest),
                ]
            })
            .collect();
        Table::new(vec!["song".into(), "artists".into(), "country".into(), "probability".into(), "next".into()], rows)
    }
}

impl ToHtml for Predictions {
    fn to_html(&self) -> String {
        self.table().to_html()
    }
}

/// A notebook's `endpoint` parameter: the model server at `endpoint`, or, when it is `""`, the
/// one the environment names ([`model_url_from_env`]).
pub fn model_url_or_env(endpoint: &str) -> String {
    let endpoint = endpoint.trim();
    if endpoint.is_empty() {
        model_url_from_env()
    } else {
        endpoint.to_string()
    }
}

impl InferenceClient {
    /// A notebook's `token` parameter: [`InferenceClient::with_token`] when `token` is not `""`,
    /// else no token.
    pub fn with_token_if_set(self, token: &str) -> Self {
        let token = token.trim();
        self.with_optional_token((!token.is_empty()).then_some(token))
    }
}
