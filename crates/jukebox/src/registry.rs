//! Stage 3: register trained models in a Kubeflow-compatible model registry and look them up.
//!
//! [`ModelRegistry`] is a blocking client of the Kubeflow Model Registry REST API: the embedded
//! registry that `jukebox` starts on a laptop, or a real one on a cluster (OpenShift AI, Kubeflow)
//! with a bearer token. It does what the official Python client's `ModelRegistry` does, with the
//! same calls, so records written by either client read the same in the other.
//!
//! ```no_run
//! use jukebox::registry::{ModelRegistry, RegisterModel};
//! # fn demo() -> Result<(), jukebox::registry::RegistryError> {
//! let registry = ModelRegistry::new("http://127.0.0.1:8080"); // or ModelRegistry::from_env()?
//! let registered = registry.register_model(
//!     &RegisterModel::new("jukebox", "1", "s3://models/models/jukebox/1")
//!         .storage("workshop-models", "models/jukebox/1")
//!         .metadata("accuracy", 0.342)
//!         .metadata("epochs", 30),
//! )?;
//! println!("version id {}", registered.version.id);
//! let runs = registry.list_model_versions("jukebox")?; // renders as a table in Jupyter
//! # Ok(()) }
//! ```
//!
//! Every getter answers a typed [`RegistryError`]: [`RegistryError::NotFound`] for an unknown
//! model or version, [`RegistryError::AlreadyExists`] (carrying the existing version) when a
//! version is registered twice, [`RegistryError::Unreachable`] when nothing answers at the URL,
//! and [`RegistryError::Http`] with the server's own message for any other refusal.
//!
//! [`ModelRegistry::upload_and_register`] (and the notebooks' [`ModelRegistry::register_or_reuse`])
//! save a trained folder whole or not at all, each version in a bucket folder of its own that is
//! never written again: the steps are in the `publish` submodule's documentation.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use jukebox_protocol::registry::{
    format_epoch_millis, ArtifactState, ErrorBody, ListPage, ModelArtifactCreate, ModelArtifactFields, ModelState,
    ModelVersionCreate, RegisteredModelCreate, BASE_PATH_V1, BASE_PATH_V1ALPHA3,
};
pub use jukebox_protocol::registry::{
    CustomProperties, MetadataValue, ModelArtifact, ModelVersion, ModelVersionUpdate, RegisteredModel,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::display::{escape as escape_html, ToHtml};
use crate::storage::{Storage, StorageError, TransferReport};
use jukebox_protocol::env;
use jukebox_protocol::model_folder::VersionFolder;

mod publish;

/// Items per page when the client walks a list.
const PAGE_SIZE: usize = 100;

/// Which REST API generation the registry speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ApiVersion {
    /// `/api/model_registry/v1` (Model Registry 0.2.x servers and later, Python client 0.3.8+).
    #[default]
    V1,
    /// `/api/model_registry/v1alpha3` (older servers, Python client up to 0.3.7).
    V1Alpha3,
}

impl ApiVersion {
    pub fn base_path(self) -> &'static str {
        match self {
            ApiVersion::V1 => BASE_PATH_V1,
            ApiVersion::V1Alpha3 => BASE_PATH_V1ALPHA3,
        }
    }
}

impl std::str::FromStr for ApiVersion {
    type Err = RegistryError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "v1" => Ok(ApiVersion::V1),
            "v1alpha3" => Ok(ApiVersion::V1Alpha3),
            other => Err(RegistryError::Config(format!("API version {other:?} is neither \"v1\" nor \"v1alpha3\""))),
        }
    }
}

/// Why a registry call failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Nothing answered at the URL (wrong address, server not started, network down).
    #[error("cannot reach the model registry at {url}: {source}")]
    Unreachable { url: String, source: Box<ureq::Error> },
    /// The model, version or artifact does not exist.
    #[error("{what} not found in the model registry ({message})")]
    NotFound { what: String, message: String },
    /// The version is already registered; `existing` is what the registry holds.
    #[error("model {model:?} already has a version {:?} (id {}, created {})", existing.name, existing.id,
        format_epoch_millis(existing.create_time_since_epoch.as_deref()))]
    AlreadyExists { model: String, existing: Box<ModelVersion> },
    /// The registry refused the request; `message` is its explanation.
    #[error("the model registry answered HTTP {status} to {method} {url}: {message}")]
    Http { status: u16, method: &'static str, url: String, message: String },
    /// The registry answered something that is not the API's JSON.
    #[error("unexpected answer from the model registry to {method} {url}: {detail}")]
    BadResponse { method: &'static str, url: String, detail: String },
    /// The client is misconfigured (missing URL, bad API version, unreadable metadata file).
    #[error("{0}")]
    Config(String),
    /// Uploading the model folder failed in [`ModelRegistry::upload_and_register`]; nothing was
    /// registered, and what this save had uploaded was removed.
    #[error("nothing was registered: {0}")]
    Storage(#[from] StorageError),
    /// The model name or folder cannot be published (bad name, missing artifact, a model that does
    /// not load or does not match its artifacts); checked before anything is uploaded.
    #[error("nothing was uploaded: {0}")]
    NotPublishable(String),
    /// The registry refused a write (no token, or a wrong one); checked before anything is uploaded.
    #[error(
        "the model registry at {url} refuses writes from this client (HTTP {status}: {message}): set \
         JUKEBOX_REGISTRY_TOKEN to a token that may write; nothing was uploaded"
    )]
    NoWriteAccess { url: String, status: u16, message: String },
    /// A save was asked to store a version in a bucket folder that another version (or an upload
    /// no version owns) uses: a registered version's files never change.
    #[error(
        "{folder} holds {existing} of {model}: version {version} cannot be stored there (a registered version's \
         files never change); leave the bucket folder unset to store it in the next free folder; nothing was \
         uploaded"
    )]
    FolderInUse { model: String, folder: String, version: String, existing: String },
    /// A concurrent save registered the same version first; this save removed its staged upload,
    /// and the registered version keeps the other save's files.
    #[error("model {model:?} version {version:?} was registered by another save meanwhile (version id {}); this \
        save's upload was removed and nothing of it is published", existing.id)]
    LostRace { model: String, version: String, existing: Box<ModelVersion> },
    /// The version was registered but its files could not be published; what this save wrote was
    /// removed and the version archived (the registry deletes no version).
    #[error("model {model:?} version {version:?} was registered, but publishing its files failed ({cause}); what \
        was uploaded is removed{}: save the model again under a new version name",
        if *archived { " and the version is archived" } else { " (archiving the version failed too)" })]
    PublishFailed { model: String, version: String, archived: bool, cause: Box<RegistryError> },
}

impl RegistryError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, RegistryError::NotFound { .. })
    }
}

/// Everything [`ModelRegistry::register_model`] records: the model's name, the new version and
/// where its files are, plus optional people, format, storage and typed metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisterModel {
    pub name: String,
    pub version: String,
    /// Where the model files are, e.g. `s3://models/models/jukebox/1?endpoint=...`.
    pub uri: String,
    /// Description of the version.
    pub description: Option<String>,
    /// Author of the version; defaults to the client's author.
    pub author: Option<String>,
    /// Owner of the registered model (used when the model is new); defaults to the author.
    pub owner: Option<String>,
    pub model_format_name: String,
    pub model_format_version: String,
    /// Name of the data connection (storage secret) holding the credentials.
    pub storage_key: Option<String>,
    /// Path of the model inside that storage.
    pub storage_path: Option<String>,
    /// Typed metadata of the version (metrics, hyperparameters, ...).
    pub metadata: CustomProperties,
}

impl RegisterModel {
    /// Version `version` of model `name`, stored at `uri`, in ONNX format version 1.
    pub fn new(name: impl Into<String>, version: impl Into<String>, uri: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            uri: uri.into(),
            description: None,
            author: None,
            owner: None,
            model_format_name: "onnx".into(),
            model_format_version: "1".into(),
            storage_key: None,
            storage_path: None,
            metadata: CustomProperties::new(),
        }
    }

    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = Some(text.into());
        self
    }

    pub fn author(mut self, author: impl Into<String>) -> Self {
        self.author = Some(author.into());
        self
    }

    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    pub fn model_format(mut self, name: impl Into<String>, version: impl Into<String>) -> Self {
        self.model_format_name = name.into();
        self.model_format_version = version.into();
        self
    }

    /// The data connection (`key`) and the path inside it where the model lives.
    pub fn storage(mut self, key: impl Into<String>, path: impl Into<String>) -> Self {
        self.storage_key = Some(key.into());
        self.storage_path = Some(path.into());
        self
    }

    /// Adds one metadata entry; its type follows the Rust value (f64 -> double, integers ->
    /// int, bool, strings).
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<MetadataValue>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Adds every scalar of a JSON object (integers as ints, other numbers as doubles, booleans,
    /// strings); nested values and nulls are skipped.
    pub fn metadata_from_json(mut self, object: &serde_json::Value) -> Result<Self, RegistryError> {
        let map = object
            .as_object()
            .ok_or_else(|| RegistryError::Config(format!("metadata must be a JSON object, got {object}")))?;
        for (key, value) in map {
            if let Some(value) = MetadataValue::from_json(value) {
                self.metadata.insert(key.clone(), value);
            }
        }
        Ok(self)
    }

    /// Adds the entries of a `metrics.json` written by the training stage.
    pub fn metadata_from_file(self, path: impl AsRef<Path>) -> Result<Self, RegistryError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| RegistryError::Config(format!("cannot read metadata file {}: {e}", path.display())))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| RegistryError::Config(format!("metadata file {} is not JSON: {e}", path.display())))?;
        self.metadata_from_json(&value)
            .map_err(|e| RegistryError::Config(format!("metadata file {}: {e}", path.display())))
    }
}

/// The entries of `metrics.json` copied into a version's metadata by
/// [`ModelRegistry::upload_and_register`] (the rest of the file stays beside the model in S3).
pub const RECORDED_METRICS: [&str; 13] = [
    "accuracy",
    "f1_macro",
    "val_accuracy",
    "split",
    "epochs",
    "batch_size",
    "learning_rate",
    "hidden_layers",
    "seed",
    "data_rows",
    "training_seconds",
    "n_features",
    "features",
];

/// A trained model folder to upload and register: what the Python client's
/// `upload_artifact_and_register_model` takes.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelUpload {
    /// `<root>/<name>/<integer version>` holding `model.onnx` and `artifacts/metrics.json`.
    pub model_dir: std::path::PathBuf,
    /// Registered model name (also the folder under `models/` in the bucket).
    pub name: String,
    /// Version name to register, e.g. `0.0.1`.
    pub version: String,
    pub description: Option<String>,
    /// Defaults to the client's author.
    pub author: Option<String>,
    /// Recorded as the `license` metadata entry.
    pub license: String,
    /// Name of the data connection holding the S3 credentials (the artifact's storage key).
    pub storage_key: String,
    /// The bucket folder `models/<name>/<N>/` to store the version in; `None` (the default): the
    /// folder's own number when no other version uses it, else the next free one.
    pub bucket_folder: Option<u64>,
}

impl ModelUpload {
    /// Folder `model_dir` as version `version` of model `name`, Apache-2.0, storage key `models`.
    pub fn new(model_dir: impl Into<std::path::PathBuf>, name: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            model_dir: model_dir.into(),
            name: name.into(),
            version: version.into(),
            description: None,
            author: None,
            license: "Apache-2.0".into(),
            storage_key: "models".into(),
            bucket_folder: None,
        }
    }

    /// Stores the version in bucket folder `models/<name>/<folder>/`, refused
    /// ([`RegistryError::FolderInUse`]) when another version uses it.
    pub fn bucket_folder(mut self, folder: u64) -> Self {
        self.bucket_folder = Some(folder);
        self
    }

    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = Some(text.into());
        self
    }

    pub fn author(mut self, author: impl Into<String>) -> Self {
        self.author = Some(author.into());
        self
    }

    pub fn license(mut self, license: impl Into<String>) -> Self {
        self.license = license.into();
        self
    }

    pub fn storage_key(mut self, key: impl Into<String>) -> Self {
        self.storage_key = key.into();
        self
    }
}

/// What [`ModelRegistry::upload_and_register`] did: the files it uploaded and the records it
/// created.
#[derive(Debug, Clone)]
pub struct SavedModel {
    pub upload: TransferReport,
    pub registered: RegisteredVersion,
}

impl ToHtml for SavedModel {
    fn to_html(&self) -> String {
        format!("{}\n{}", self.upload.to_html(), self.registered.to_html())
    }
}

/// What one registration created: the (found or new) model, the new version and its artifact.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisteredVersion {
    pub model: RegisteredModel,
    pub version: ModelVersion,
    pub artifact: ModelArtifact,
}

impl ToHtml for RegisteredVersion {
    /// One row: model, version, ids, format, URI, then the metadata.
    fn to_html(&self) -> String {
        let table = VersionTable {
            model: self.model.clone(),
            rows: vec![VersionRow { version: self.version.clone(), artifacts: vec![self.artifact.clone()] }],
        };
        table.to_html()
    }
}

/// One version of a model with its artifacts.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionRow {
    pub version: ModelVersion,
    pub artifacts: Vec<ModelArtifact>,
}

/// All versions of one model, oldest first: the run-tracking table (one metadata key per
/// column, so runs compare side by side).
#[derive(Debug, Clone, PartialEq)]
pub struct VersionTable {
    pub model: RegisteredModel,
    pub rows: Vec<VersionRow>,
}

impl VersionTable {
    /// Metadata keys over all versions, sorted: the table's metric columns.
    pub fn metadata_keys(&self) -> Vec<String> {
        let keys: BTreeSet<&String> = self.rows.iter().flat_map(|r| r.version.custom_properties.keys()).collect();
        keys.into_iter().cloned().collect()
    }

    /// The value of metadata `key` for each version (None where a version lacks it or it is
    /// not a number), in row order; handy for plotting a metric across runs.
    pub fn metric(&self, key: &str) -> Vec<Option<f64>> {
        self.rows.iter().map(|r| r.version.custom_properties.get(key).and_then(MetadataValue::as_f64)).collect()
    }
}

/// The metadata keys [`VersionTable`] shows as columns (as `accuracy` and `F1 (macro)`); every
/// other key is folded under the row's details.
pub const VERSION_TABLE_METRICS: [(&str, &str); 2] = [("accuracy", "accuracy"), ("f1_macro", "F1 (macro)")];

/// A metadata value as a table shows it: numbers as [`crate::display::format_number`] writes them
/// (4 decimals, `0.3420`, never 17 digits), the rest as the registry holds it.
pub fn metadata_text(value: &MetadataValue) -> String {
    match value {
        MetadataValue::Double { double_value } => crate::display::format_number(*double_value),
        other => other.to_string(),
    }
}

impl ToHtml for VersionTable {
    /// One row per version with the columns a person compares versions by (name, version,
    /// state, accuracy, F1, author, created); ids, format, URI, storage path and every other
    /// metadata entry are folded into the row's last cell (`<details>`), one click away.
    fn to_html(&self) -> String {
        let cell = "padding:2px 6px;text-align:left;vertical-align:top";
        let number = "padding:2px 6px;text-align:right;vertical-align:top";
        let mut html = String::from("<table class=\"jukebox\" style=\"border-collapse:collapse;font-size:12px\">");
        html.push_str(&format!(
            "<caption style=\"font-weight:bold;text-align:left\">{} version{} of {}</caption>",
            self.rows.len(),
            if self.rows.len() == 1 { "" } else { "s" },
            escape_html(&self.model.name)
        ));
        html.push_str("<thead><tr>");
        let metric_names = VERSION_TABLE_METRICS.iter().map(|(_, shown)| *shown);
        for column in ["name", "version", "state"].into_iter().chain(metric_names).chain(["author", "created", "more"])
        {
            html.push_str(&format!(
                "<th style=\"padding:2px 6px;border-bottom:1px solid #888\">{}</th>",
                escape_html(column)
            ));
        }
        html.push_str("</tr></thead><tbody>");
        for row in &self.rows {
            let v = &row.version;
            html.push_str("<tr>");
            for text in [&self.model.name, &v.name, &state_name(&v.state)] {
                html.push_str(&format!("<td style=\"{cell}\">{}</td>", escape_html(text)));
            }
            for (key, _) in VERSION_TABLE_METRICS {
                let value = v.custom_properties.get(key).map(metadata_text).unwrap_or_default();
                html.push_str(&format!("<td style=\"{number}\">{}</td>", escape_html(&value)));
            }
            let created = format_epoch_millis(v.create_time_since_epoch.as_deref());
            for text in [v.author.as_deref().unwrap_or(""), created.as_str()] {
                html.push_str(&format!("<td style=\"{cell}\">{}</td>", escape_html(text)));
            }
            // The rest: what identifies and locates the version, then the other metadata.
            let mut folded: Vec<(String, String)> = vec![
                ("version id".into(), v.id.clone()),
                ("description".into(), v.description.clone().unwrap_or_default()),
            ];
            for artifact in &row.artifacts {
                let f = &artifact.fields;
                let format = format!(
                    "{} {}",
                    f.model_format_name.as_deref().unwrap_or(""),
                    f.model_format_version.as_deref().unwrap_or("")
                );
                folded.push(("format".into(), format.trim().to_string()));
                folded.push(("uri".into(), f.uri.clone().unwrap_or_default()));
                folded.push(("storage path".into(), f.storage_path.clone().unwrap_or_default()));
            }
            for (key, value) in &v.custom_properties {
                if !VERSION_TABLE_METRICS.iter().any(|(shown, _)| shown == key) {
                    folded.push((key.clone(), metadata_text(value)));
                }
            }
            folded.retain(|(_, value)| !value.is_empty());
            html.push_str(&format!("<td style=\"{cell}\"><details><summary>{} fields</summary><table>", folded.len()));
            for (key, value) in &folded {
                html.push_str(&format!(
                    "<tr><th style=\"text-align:left;padding:0 6px\">{}</th><td style=\"text-align:left\">{}</td></tr>",
                    escape_html(key),
                    escape_html(value)
                ));
            }
            html.push_str("</table></details></td></tr>");
        }
        html.push_str("</tbody></table>");
        html
    }
}

// The registry's records as a notebook shows them: a field/value table, custom properties (the
// metadata, such as metrics) as extra rows.

/// A two-column (field, value) table, then one row per custom property; values escaped here.
fn field_table(rows: &[(&str, String)], properties: &CustomProperties) -> String {
    let mut html = String::from("<table>\n");
    for (field, value) in rows {
        html.push_str(&format!("<tr><th>{}</th><td>{}</td></tr>\n", field, escape_html(value)));
    }
    for (key, value) in properties {
        html.push_str(&format!(
            "<tr><th>{}</th><td>{}</td></tr>\n",
            escape_html(key),
            escape_html(&metadata_text(value))
        ));
    }
    html.push_str("</table>");
    html
}

fn text_of(value: &Option<String>) -> String {
    value.clone().unwrap_or_default()
}

/// A state enum as the API spells it (`LIVE`, `ARCHIVED`, ...).
fn state_name<T: Serialize>(state: &Option<T>) -> String {
    state
        .as_ref()
        .and_then(|s| serde_json::to_value(s).ok())
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

impl ToHtml for RegisteredModel {
    fn to_html(&self) -> String {
        field_table(
            &[
                ("registered model", self.name.clone()),
                ("id", self.id.clone()),
                ("description", text_of(&self.description)),
                ("owner", text_of(&self.owner)),
                ("state", state_name(&self.state)),
                ("created", format_epoch_millis(self.create_time_since_epoch.as_deref())),
                ("updated", format_epoch_millis(self.last_update_time_since_epoch.as_deref())),
            ],
            &self.custom_properties,
        )
    }
}

impl ToHtml for ModelVersion {
    fn to_html(&self) -> String {
        field_table(
            &[
                ("model version", self.name.clone()),
                ("id", self.id.clone()),
                ("registered model id", self.registered_model_id.clone()),
                ("description", text_of(&self.description)),
                ("author", text_of(&self.author)),
                ("state", state_name(&self.state)),
                ("created", format_epoch_millis(self.create_time_since_epoch.as_deref())),
                ("updated", format_epoch_millis(self.last_update_time_since_epoch.as_deref())),
            ],
            &self.custom_properties,
        )
    }
}

impl ToHtml for ModelArtifact {
    fn to_html(&self) -> String {
        let f = &self.fields;
        field_table(
            &[
                ("model artifact", text_of(&f.name)),
                ("id", self.id.clone()),
                ("uri", text_of(&f.uri)),
                ("model format", text_of(&f.model_format_name)),
                ("model format version", text_of(&f.model_format_version)),
                ("storage key", text_of(&f.storage_key)),
                ("storage path", text_of(&f.storage_path)),
                ("state", state_name(&f.state)),
                ("created", format_epoch_millis(self.create_time_since_epoch.as_deref())),
            ],
            &f.custom_properties,
        )
    }
}

/// A blocking client of one model registry.
#[derive(Clone)]
pub struct ModelRegistry {
    base_url: String,
    api: ApiVersion,
    token: Option<String>,
    author: String,
    agent: ureq::Agent,
}

/// Shows where the client points, never the token itself.
impl std::fmt::Debug for ModelRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelRegistry")
            .field("api_url", &self.api_url())
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("author", &self.author)
            .finish()
    }
}

impl ModelRegistry {
    /// A client of the registry at `url` (scheme, host and port, e.g. `http://127.0.0.1:8080`;
    /// a trailing API base path is tolerated and decides the API version).
    pub fn new(url: &str) -> Self {
        let mut base_url = url.trim().trim_end_matches('/').to_owned();
        let mut api = ApiVersion::V1;
        for candidate in [ApiVersion::V1, ApiVersion::V1Alpha3] {
            if let Some(stripped) = base_url.strip_suffix(candidate.base_path()) {
                base_url = stripped.to_owned();
                api = candidate;
            }
        }
        // Answers with an error status are read (to report the server's message), not raised.
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        let author = std::env::var("USER").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| "jukebox".into());
        Self { base_url, api, token: None, author, agent }
    }

    /// The client configured by the environment: [`env::REGISTRY_URL`] (required), [`env::REGISTRY_TOKEN`] and
    /// [`env::REGISTRY_API_VERSION`] (optional).
    pub fn from_env() -> Result<Self, RegistryError> {
        let url = std::env::var(env::REGISTRY_URL).map_err(|_| {
            RegistryError::Config(format!(
                "{} is not set: start the registry (`jukebox up`) and export what it prints",
                env::REGISTRY_URL
            ))
        })?;
        let mut registry = Self::new(&url);
        if let Ok(token) = std::env::var(env::REGISTRY_TOKEN) {
            if !token.trim().is_empty() {
                registry = registry.with_token(token.trim());
            }
        }
        if let Ok(version) = std::env::var(env::REGISTRY_API_VERSION) {
            registry = registry.with_api_version(version.parse()?);
        }
        Ok(registry)
    }

    pub fn with_api_version(mut self, api: ApiVersion) -> Self {
        self.api = api;
        self
    }

    /// Sends `Authorization: Bearer <token>` with every request (a cluster registry's token).
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// The author recorded on versions that do not name one (default: `$USER`).
    pub fn with_author(mut self, author: impl Into<String>) -> Self {
        self.author = author.into();
        self
    }

    /// The API root this client talks to, e.g. `http://127.0.0.1:8080/api/model_registry/v1`.
    pub fn api_url(&self) -> String {
        format!("{}{}", self.base_url, self.api.base_path())
    }

    /// The page people read: `jukebox up`'s registry lists every registered model and version at
    /// the root of its URL. (On OpenShift AI the REST route has no page; open the dashboard's
    /// *Model Registry* section instead.)
    pub fn web_page(&self) -> String {
        format!("{}/", self.base_url)
    }

    /// The row of `version` on [`ModelRegistry::web_page`].
    pub fn web_page_of(&self, version: &ModelVersion) -> String {
        format!("{}/#version-{}", self.base_url, version.id)
    }

    /// Registers version `request.version` of model `request.name`, as the Python client's
    /// `register_model` does: finds the model or creates it, refuses a version that already
    /// exists ([`RegistryError::AlreadyExists`]), then creates the version and its artifact.
    pub fn register_model(&self, request: &RegisterModel) -> Result<RegisteredVersion, RegistryError> {
        if request.name.trim().is_empty() || request.version.trim().is_empty() {
            return Err(RegistryError::Config("register_model needs a model name and a version".into()));
        }
        let author = request.author.clone().unwrap_or_else(|| self.author.clone());
        let model = match self.find_registered_model(&request.name)? {
            Some(model) => model,
            None => {
                let create = RegisteredModelCreate {
                    name: request.name.clone(),
                    owner: Some(request.owner.clone().unwrap_or_else(|| author.clone())),
                    state: Some(ModelState::Live),
                    ..Default::default()
                };
                match self.send::<RegisteredModel>("POST", "/registered_models", &[], Some(&create)) {
                    Ok(model) => model,
                    // Someone else created it meanwhile: use theirs.
                    Err(RegistryError::Http { status: 409, .. }) => self.get_registered_model(&request.name)?,
                    Err(e) => return Err(e),
                }
            }
        };
        if let Some(existing) = self.find_model_version(&model, &request.version)? {
            return Err(RegistryError::AlreadyExists { model: model.name, existing: Box::new(existing) });
        }
        let create = ModelVersionCreate {
            name: request.version.clone(),
            registered_model_id: Some(model.id.clone()),
            author: Some(author),
            description: request.description.clone(),
            state: Some(ModelState::Live),
            custom_properties: request.metadata.clone(),
            ..Default::default()
        };
        let version: ModelVersion = match self.send("POST", "/model_versions", &[], Some(&create)) {
            Ok(version) => version,
            Err(RegistryError::Http { status: 409, .. }) => {
                let existing = self.get_model_version(&request.name, &request.version)?;
                return Err(RegistryError::AlreadyExists { model: model.name, existing: Box::new(existing) });
            }
            Err(e) => return Err(e),
        };
        let artifact = ModelArtifactCreate {
            fields: ModelArtifactFields {
                // The Python client names a version's artifact after the model; so do we, so
                // that its `get_model_artifact(name, version)` finds ours.
                name: Some(request.name.clone()),
                uri: Some(request.uri.clone()),
                model_format_name: Some(request.model_format_name.clone()),
                model_format_version: Some(request.model_format_version.clone()),
                storage_key: request.storage_key.clone(),
                storage_path: request.storage_path.clone(),
                state: Some(ArtifactState::Unknown),
                ..Default::default()
            },
            ..Default::default()
        };
        let artifact: ModelArtifact =
            self.send("POST", &format!("/model_versions/{}/artifacts", version.id), &[], Some(&artifact))?;
        Ok(RegisteredVersion { model, version, artifact })
    }

    /// The registered model named `name`.
    pub fn get_registered_model(&self, name: &str) -> Result<RegisteredModel, RegistryError> {
        self.find_registered_model(name)?.ok_or_else(|| RegistryError::NotFound {
            what: format!("registered model {name:?}"),
            message: format!("no model of that name at {}", self.api_url()),
        })
    }

    /// Version `version` of model `name`.
    pub fn get_model_version(&self, name: &str, version: &str) -> Result<ModelVersion, RegistryError> {
        let model = self.get_registered_model(name)?;
        self.find_model_version(&model, version)?.ok_or_else(|| RegistryError::NotFound {
            what: format!("version {version:?} of model {name:?}"),
            message: format!("model {name:?} (id {}) has no version of that name", model.id),
        })
    }

    /// The model artifact of version `version` of model `name` (where its files are).
    pub fn get_model_artifact(&self, name: &str, version: &str) -> Result<ModelArtifact, RegistryError> {
        let model_version = self.get_model_version(name, version)?;
        let query = [("name", name), ("parentResourceId", model_version.id.as_str())];
        match self.send::<ModelArtifact>("GET", "/model_artifact", &query, None::<&()>) {
            Ok(artifact) => Ok(artifact),
            Err(RegistryError::Http { status: 404, message, .. }) => {
                // Artifacts written by other tools may carry another name: take the first one.
                let artifacts = self.version_artifacts(&model_version.id)?;
                artifacts.into_iter().next().ok_or_else(|| RegistryError::NotFound {
                    what: format!("model artifact of version {version:?} of model {name:?}"),
                    message,
                })
            }
            Err(e) => Err(e),
        }
    }

    /// All registered models, oldest first.
    pub fn list_registered_models(&self) -> Result<Vec<RegisteredModel>, RegistryError> {
        self.all_pages("/registered_models")
    }

    /// All versions of model `name` with their artifacts, oldest first.
    pub fn list_model_versions(&self, name: &str) -> Result<VersionTable, RegistryError> {
        let model = self.get_registered_model(name)?;
        let versions: Vec<ModelVersion> = self.all_pages(&format!("/registered_models/{}/versions", model.id))?;
        let mut rows = Vec::with_capacity(versions.len());
        for version in versions {
            let artifacts = self.version_artifacts(&version.id)?;
            rows.push(VersionRow { version, artifacts });
        }
        Ok(VersionTable { model, rows })
    }

    /// Changes a version's description, state or metadata (fields left `None` stay as they are;
    /// `custom_properties` replaces all metadata).
    pub fn update_model_version(
        &self,
        version_id: &str,
        update: &ModelVersionUpdate,
    ) -> Result<ModelVersion, RegistryError> {
        self.send("PATCH", &format!("/model_versions/{version_id}"), &[], Some(update))
    }

    // --- plumbing ------------------------------------------------------------------------

    fn find_registered_model(&self, name: &str) -> Result<Option<RegisteredModel>, RegistryError> {
        not_found_as_none(self.send("GET", "/registered_model", &[("name", name)], None::<&()>))
    }

    fn find_model_version(
        &self,
        model: &RegisteredModel,
        version: &str,
    ) -> Result<Option<ModelVersion>, RegistryError> {
        let query = [("name", version), ("parentResourceId", model.id.as_str())];
        not_found_as_none(self.send("GET", "/model_version", &query, None::<&()>))
    }

    fn version_artifacts(&self, version_id: &str) -> Result<Vec<ModelArtifact>, RegistryError> {
        // Lists may hold other artifact types (documents, metrics) on a full registry: keep models.
        let items: Vec<serde_json::Value> = self.all_pages(&format!("/model_versions/{version_id}/artifacts"))?;
        Ok(items
            .into_iter()
            .filter(|item| {
                item.get("artifactType").and_then(|t| t.as_str()).unwrap_or("model-artifact") == "model-artifact"
            })
            .filter_map(|item| serde_json::from_value(item).ok())
            .collect())
    }

    /// Every item of a list, following `nextPageToken` until it is empty (or repeats, which
    /// some servers do on the last page).
    fn all_pages<T: DeserializeOwned>(&self, path: &str) -> Result<Vec<T>, RegistryError> {
        let mut items = Vec::new();
        let mut token = String::new();
        let mut seen_tokens = BTreeSet::new();
        loop {
            let page_size = PAGE_SIZE.to_string();
            let mut query = vec![("pageSize", page_size.as_str()), ("orderBy", "ID"), ("sortOrder", "ASC")];
            if !token.is_empty() {
                query.push(("nextPageToken", token.as_str()));
            }
            let page: ListPage<T> = self.send("GET", path, &query, None::<&()>)?;
            items.extend(page.items);
            if page.next_page_token.is_empty() || !seen_tokens.insert(page.next_page_token.clone()) {
                return Ok(items);
            }
            token = page.next_page_token;
        }
    }

    /// One API call: `method path?query` with an optional JSON body; a 2xx answer parsed as `T`,
    /// anything else as the API's error body.
    fn send<T: DeserializeOwned>(
        &self,
        method: &'static str,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&impl Serialize>,
    ) -> Result<T, RegistryError> {
        let url = format!("{}{}", self.api_url(), path);
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let result = match (method, body) {
            ("GET", _) => {
                let mut request = self.agent.get(&url).query_pairs(query.iter().copied());
                if let Some(auth) = &auth {
                    request = request.header("Authorization", auth);
                }
                request.call()
            }
            (_, body) => {
                let mut request = match method {
                    "POST" => self.agent.post(&url),
                    "PATCH" => self.agent.patch(&url),
                    _ => self.agent.put(&url),
                }
                .query_pairs(query.iter().copied());
                if let Some(auth) = &auth {
                    request = request.header("Authorization", auth);
                }
                match body {
                    Some(body) => request.send_json(body),
                    None => request.send_empty(),
                }
            }
        };
        let mut response = result.map_err(|source| match source {
            ureq::Error::Json(e) => RegistryError::Config(format!("cannot encode the request to {url}: {e}")),
            source => RegistryError::Unreachable { url: url.clone(), source: Box::new(source) },
        })?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().map_err(|e| RegistryError::BadResponse {
            method,
            url: url.clone(),
            detail: format!("cannot read the body of HTTP {status}: {e}"),
        })?;
        if (200..300).contains(&status) {
            return serde_json::from_str(&text).map_err(|e| RegistryError::BadResponse {
                method,
                url,
                detail: format!("{e}; body: {}", truncate(&text)),
            });
        }
        // The API's error body, or whatever text the server (or a proxy) sent instead.
        let message = match serde_json::from_str::<ErrorBody>(&text) {
            Ok(error) if !error.message.is_empty() => error.message,
            _ if text.trim().is_empty() => "no message".to_owned(),
            _ => truncate(&text),
        };
        Err(RegistryError::Http { status, method, url, message })
    }
}

fn not_found_as_none<T>(result: Result<T, RegistryError>) -> Result<Option<T>, RegistryError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(RegistryError::Http { status: 404, .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

fn truncate(text: &str) -> String {
    const LIMIT: usize = 300;
    match text.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

/// The [`RECORDED_METRICS`] entries of a `metrics.json`, typed as the registry stores them.
fn recorded_metrics(path: &Path) -> Result<CustomProperties, RegistryError> {
    let config = |message: String| RegistryError::Config(format!("{}: {message}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| config(format!("cannot read the model's metrics: {e}")))?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| config(format!("not JSON: {e}")))?;
    let mut metrics = CustomProperties::new();
    for key in RECORDED_METRICS {
        match json.get(key) {
            None | Some(serde_json::Value::Null) => {}
            Some(value) => match MetadataValue::from_json(value) {
                Some(typed) => {
                    metrics.insert(key.to_string(), typed);
                }
                None => return Err(config(format!("field {key:?} is {value}, expected a number or text"))),
            },
        }
    }
    Ok(metrics)
}

/// Notebook helpers: one call for what a cell would otherwise spell out.
impl ModelRegistry {
    /// The registry at `url`, or, when `url` is `""`, the one the environment names
    /// ([`ModelRegistry::from_env`]): what a notebook's `registry_url` parameter means.
    pub fn from_env_or(url: &str) -> Result<Self, RegistryError> {
        if url.trim().is_empty() {
            Self::from_env()
        } else {
            Ok(Self::new(url))
        }
    }

    /// Uploads and registers `upload` as [`ModelRegistry::upload_and_register`] does and shows
    /// what was uploaded and registered; when the version is registered already, says so,
    /// uploads nothing and returns the existing version. Either way the answer is the version
    /// the registry holds, so a notebook can be run again.
    ///
    /// The new version's files go to a bucket folder no other version uses: the folder's own
    /// number (`models/<name>/<N>/`) when it is free, else the next free one, which is printed.
    /// Registering `0.0.2` from the folder `0.0.1` was uploaded from therefore stores it beside
    /// `0.0.1`, never over its files.
    pub fn register_or_reuse(&self, storage: &Storage, upload: &ModelUpload) -> Result<ModelVersion, RegistryError> {
        use crate::display::Show;
        match self.get_model_version(&upload.name, &upload.version) {
            Ok(existing) => {
                println!(
                    "{} {} is already registered (id {}): nothing was uploaded; this is the existing version",
                    upload.name, upload.version, existing.id
                );
                return Ok(existing);
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
        let saved = match self.upload_and_register(storage, upload) {
            Ok(saved) => saved,
            Err(RegistryError::LostRace { existing, .. }) => {
                println!(
                    "{} {} was registered meanwhile by another save (id {}): this one's upload was removed; \
                     this is the registered version",
                    upload.name, upload.version, existing.id
                );
                return Ok(*existing);
            }
            Err(e) => return Err(e),
        };
        let folder = VersionFolder::identify(&upload.model_dir).map(|f| f.version).ok();
        let stored = jukebox_protocol::model_folder::version_folder_of(&saved.upload.prefix);
        if folder.is_some() && folder != stored {
            println!(
                "{} {}: bucket folder {} is another version's, so this version is stored in {} (a model server \
                 serves it as version {})",
                upload.name,
                upload.version,
                folder.unwrap_or_default(),
                saved.upload.prefix,
                stored.unwrap_or_default()
            );
        }
        saved.evcxr_display();
        Ok(saved.registered.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_render_as_escaped_field_tables_with_readable_times() {
        let model = RegisteredModel {
            id: "1".into(),
            name: "<script>alert('x')</script>".into(),
            create_time_since_epoch: Some("1700000000000".into()),
            ..Default::default()
        };
        let html = model.to_html();
        assert!(
            html.contains(
                "<tr><th>registered model</th><td>&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;</td></tr>"
            ),
            "{html}"
        );
        assert!(!html.contains("<script>"));
        assert!(html.contains("<tr><th>created</th><td>2023-11-14 22:13:20 UTC</td></tr>"), "{html}");
    }

    #[test]
    fn the_client_accepts_a_url_with_an_api_base_path() {
        let registry = ModelRegistry::new("http://host:8080/api/model_registry/v1alpha3/");
        assert_eq!(registry.api_url(), "http://host:8080/api/model_registry/v1alpha3");
        let registry = ModelRegistry::new("https://registry.example.com");
        assert_eq!(registry.api_url(), "https://registry.example.com/api/model_registry/v1");
    }

    #[test]
    fn debug_output_hides_the_token() {
        let registry = ModelRegistry::new("http://host:8080").with_token("s3cr3t-token");
        let shown = format!("{registry:?}");
        assert!(!shown.contains("s3cr3t-token") && shown.contains("<set>"), "{shown}");
    }

    #[test]
    fn the_bearer_token_is_sent_with_each_request() {
        use std::io::{Read, Write};
        // A one-shot HTTP peer that records the request and answers a registered model.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let peer = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut chunk = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut chunk).unwrap();
                assert!(n > 0, "client closed before sending headers");
                request.extend_from_slice(&chunk[..n]);
            }
            let body = r#"{"id":"7","name":"jukebox"}"#;
            write!(stream, "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len()).unwrap();
            String::from_utf8_lossy(&request).into_owned()
        });
        let model = ModelRegistry::new(&url).with_token("tok-123").get_registered_model("jukebox").unwrap();
        assert_eq!(model.id, "7");
        let request = peer.join().unwrap().to_ascii_lowercase();
        assert!(request.starts_with("get /api/model_registry/v1/registered_model?name=jukebox "), "{request}");
        assert!(request.contains("\r\nauthorization: bearer tok-123\r\n"), "{request}");
    }

    #[test]
    fn metrics_json_becomes_typed_metadata() {
        let request = RegisterModel::new("jukebox", "1", "s3://b/k")
            .metadata_from_json(
                &json!({"accuracy": 0.34, "epochs": 30, "ok": true, "seed": 42, "note": "x", "list": [1]}),
            )
            .unwrap();
        assert_eq!(request.metadata["accuracy"], MetadataValue::Double { double_value: 0.34 });
        assert_eq!(request.metadata["epochs"], MetadataValue::Int { int_value: 30 });
        assert_eq!(request.metadata["ok"], MetadataValue::Bool { bool_value: true });
        assert_eq!(request.metadata["note"], MetadataValue::String { string_value: "x".into() });
        assert!(!request.metadata.contains_key("list"));
        assert!(RegisterModel::new("a", "1", "u").metadata_from_json(&json!([1])).is_err());
    }

    #[test]
    fn the_version_table_shows_what_a_person_compares_and_folds_the_rest() {
        let version = |id: &str, accuracy: f64| ModelVersion {
            id: id.into(),
            name: format!("0.0.{id}"),
            registered_model_id: "1".into(),
            author: Some("ada".into()),
            custom_properties: [("accuracy".to_owned(), MetadataValue::from(accuracy))].into(),
            ..Default::default()
        };
        let mut second = version("2", 0.41234567890123);
        second.custom_properties.insert("epochs".into(), MetadataValue::from(30));
        second.custom_properties.insert("training_seconds".into(), MetadataValue::from(12.345678901234));
        second.custom_properties.insert("f1_macro".into(), MetadataValue::from(0.0712345678));
        let table = VersionTable {
            model: RegisteredModel { id: "1".into(), name: "a<b".into(), ..Default::default() },
            rows: vec![
                VersionRow { version: version("1", 0.08), artifacts: vec![] },
                VersionRow { version: second, artifacts: vec![] },
            ],
        };
        assert_eq!(table.metadata_keys(), ["accuracy", "epochs", "f1_macro", "training_seconds"]);
        assert_eq!(table.metric("accuracy"), [Some(0.08), Some(0.41234567890123)]);
        assert_eq!(table.metric("epochs"), [None, Some(30.0)]);
        let html = table.to_html();
        let header: Vec<&str> = html.split("<th style").skip(1).take(8).collect();
        let names: Vec<&str> = header.iter().filter_map(|th| th.split('>').nth(1)?.split('<').next()).collect();
        assert_eq!(names, ["name", "version", "state", "accuracy", "F1 (macro)", "author", "created", "more"]);
        // Numbers rounded to 4 decimals, in their columns or folded.
        assert!(html.contains(">0.4123<") && html.contains(">0.0712<") && html.contains(">12.3457<"), "{html}");
        assert!(!html.contains("0.41234567"), "no 17-digit floats: {html}");
        // The rest is one click away, not a column.
        assert!(html.contains("<details><summary>"), "{html}");
        assert!(html.contains(">epochs</th><td style=\"text-align:left\">30<"), "{html}");
        assert!(!html.contains(">epochs</th><th"), "epochs is not a column: {html}");
        assert!(html.contains("a&lt;b") && !html.contains("a<b"));
    }
}
