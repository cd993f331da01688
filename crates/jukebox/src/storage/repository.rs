//! A model repository from S3: what `jukebox serve --model-repository s3://...` (or a registry
//! artifact's URI) serves. [`download_repository`] downloads an `s3://bucket/prefix` location into
//! the layout a model server reads, `<name>/<integer version>/model.onnx`:
//!
//! - a prefix holding `model.onnx` directly is one version folder; it lands in `<name>/<N>/`,
//!   named by the prefix's last two parts when the last is an integer (`models/jukebox/2` ->
//!   `jukebox/2/`, read with `model_folder::version_folder_of`), else `<model>/1/`;
//! - a version folder without its `model.onnx` is refused: publishers write the model file last,
//!   so it is an upload still under way or one that failed ([`StorageError::IncompleteVersion`]);
//! - any other prefix is taken as a whole repository (`models/` holding `<name>/<N>/...`).
//!
//! The location's own `?endpoint=` and `defaultRegion=` win over the data-connection variables,
//! which supply the rest (the credentials).

use std::path::{Path, PathBuf};

use jukebox_protocol::env;
use jukebox_protocol::model_folder::{version_folder_of, S3Location, MODEL_FILE};

use super::{Storage, StorageConfig, StorageError, TransferReport};

/// A model repository downloaded from S3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadedRepository {
    /// The repository folder: `<dir>/<name>/<version>/model.onnx`.
    pub dir: PathBuf,
    /// What was downloaded, object by object.
    pub report: TransferReport,
}

/// The storage settings for `location`: its bucket, its endpoint and region when it names them,
/// and the rest (credentials, else endpoint and region) from the data-connection variables.
pub fn config_for(location: &S3Location) -> Result<StorageConfig, StorageError> {
    StorageConfig::from_lookup(|name| match name {
        env::AWS_S3_BUCKET => Some(location.bucket.clone()),
        env::AWS_S3_ENDPOINT if location.endpoint.is_some() => location.endpoint.clone(),
        env::AWS_DEFAULT_REGION if location.region.is_some() => location.region.clone(),
        other => std::env::var(other).ok(),
    })
}

/// Downloads `uri` (`s3://bucket/prefix[?endpoint=..&defaultRegion=..]`) into a repository under
/// `into` (see the module documentation for the layout); `model` names a single version folder
/// whose prefix does not.
pub fn download_repository(uri: &str, model: &str, into: &Path) -> Result<DownloadedRepository, StorageError> {
    let location: S3Location = uri.parse().map_err(StorageError::Location)?;
    let storage = Storage::open(config_for(&location)?)?;
    let prefix = location.key.as_str();
    let staging = into.join(".download");
    let report = storage.download_prefix(prefix, &staging)?;
    let repository = into.join("repository");
    let version = version_folder_of(prefix);
    let move_to = |target: &Path| {
        std::fs::rename(&staging, target).map_err(|source| StorageError::Io { path: target.to_path_buf(), source })
    };
    if staging.join(MODEL_FILE).is_file() {
        let (name, version) = version_folder_for(prefix, model);
        let model_dir = repository.join(name);
        std::fs::create_dir_all(&model_dir).map_err(|source| StorageError::Io { path: model_dir.clone(), source })?;
        move_to(&model_dir.join(version.to_string()))?;
    } else if version.is_some() {
        return Err(StorageError::IncompleteVersion { location: location_without_query(uri).to_string() });
    } else {
        move_to(&repository)?;
    }
    Ok(DownloadedRepository { dir: repository, report })
}

/// Where a single version folder stored under `prefix` lands in the repository: `<name>/<N>` from
/// the prefix's last two parts when the last is an integer (`models/jukebox/2` -> `jukebox`, 2),
/// else `<model>/1`.
fn version_folder_for<'a>(prefix: &'a str, model: &'a str) -> (&'a str, u64) {
    let name = prefix.trim_matches('/').rsplit('/').filter(|s| !s.is_empty()).nth(1);
    match (name, version_folder_of(prefix)) {
        (Some(name), Some(version)) => (name, version),
        _ => (model, 1),
    }
}

/// `uri` without its `?endpoint=...` query: what a message names.
pub fn location_without_query(uri: &str) -> &str {
    uri.split('?').next().unwrap_or(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_folder_is_named_by_its_prefix_or_the_model() {
        assert_eq!(version_folder_for("models/jukebox/2", "m"), ("jukebox", 2));
        assert_eq!(version_folder_for("models/jukebox/2/", "m"), ("jukebox", 2));
        assert_eq!(version_folder_for("exports/latest/", "m"), ("m", 1));
        assert_eq!(version_folder_for("7", "m"), ("m", 1), "a number without a name above it");
        assert_eq!(location_without_query("s3://b/k?endpoint=http://x"), "s3://b/k");
    }
}
