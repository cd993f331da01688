//! What can go wrong preparing, sending or reading a prediction request.

use std::path::PathBuf;

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
