//! The scaler and label encoder saved with a model version, and which served version they are.
//!
//! A request scales a song with a version's scaler and reads the answer with its label encoder,
//! so both must be the served version's own: [`ModelArtifacts`] remembers which version it
//! belongs to ([`ServedVersion`]) and the client asks the server for exactly that one.

use std::path::{Path, PathBuf};

use jukebox_protocol::model_folder::{LabelEncoder, Scaler, ARTIFACTS_DIR, LABEL_ENCODER_FILE, SCALER_FILE};

use super::error::RequestError;

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
}

/// Where a registered artifact's folder is in the bucket (`storage_path`), or
/// [`RequestError::NotStored`] when the registry does not say.
pub(super) fn storage_path(artifact: &crate::registry::ModelArtifact) -> Result<&str, RequestError> {
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
