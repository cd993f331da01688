//! The blocking HTTP client of one model registry ([`ModelRegistry`]): where it points (URL, API
//! generation, token, author), the Python client's calls (`register_model`, the getters, the
//! lists, updates) and the plumbing every call shares: one request with the token and the API's
//! error body read into a [`RegistryError`], and lists walked page by page.

use std::collections::BTreeSet;
use std::time::Duration;

use jukebox_protocol::env;
use jukebox_protocol::registry::{
    ArtifactState, ErrorBody, ListPage, ModelArtifact, ModelArtifactCreate, ModelArtifactFields, ModelState,
    ModelVersion, ModelVersionCreate, ModelVersionUpdate, RegisteredModel, RegisteredModelCreate, BASE_PATH_V1,
    BASE_PATH_V1ALPHA3,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::RegistryError;
use super::registration::RegisterModel;
use super::view::{RegisteredVersion, VersionRow, VersionTable};

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

/// A blocking client of one model registry.
#[derive(Clone)]
pub struct ModelRegistry {
    base_url: String,
    api: ApiVersion,
    token: Option<String>,
    /// Recorded on versions that name no author (the save steps read it too).
    pub(super) author: String,
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

    pub(super) fn find_registered_model(&self, name: &str) -> Result<Option<RegisteredModel>, RegistryError> {
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
    pub(super) fn send<T: DeserializeOwned>(
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
