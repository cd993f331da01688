//! The blocking HTTP client for one model on a KServe v2 server: builds the request (scaled
//! features, one FP32 input per feature), names the artifacts' version in the URL, posts it and
//! reads the probabilities back as [`Predictions`].

use std::time::Duration;

use jukebox_protocol::env;
use jukebox_protocol::inference::{ErrorResponse, InferInput, InferRequest, InferResponse};
use jukebox_protocol::model_folder::OUTPUT_NAME;

use super::artifacts::{storage_path, ModelArtifacts, ServedVersion};
use super::error::RequestError;
use super::prediction::{Prediction, Predictions};
use super::song::Song;
use crate::display::{Cell, Code, Table};

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

impl InferenceClient {
    /// A notebook's `token` parameter: [`InferenceClient::with_token`] when `token` is not `""`,
    /// else no token.
    pub fn with_token_if_set(self, token: &str) -> Self {
        let token = token.trim();
        self.with_optional_token((!token.is_empty()).then_some(token))
    }
}

impl ModelArtifacts {
    /// A client at `base_url` for the version these artifacts belong to: the same as
    /// [`InferenceClient::for_artifacts`].
    pub fn client(&self, base_url: &str) -> Result<InferenceClient, RequestError> {
        InferenceClient::for_artifacts(base_url, self)
    }
}
