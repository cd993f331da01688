//! Saving a model version: upload and register it whole, or not at all, and never over another
//! version's files. This is [`ModelRegistry::upload_and_register`], in seven steps:
//!
//! 1. **Check** before touching a server: the model name is a Kubernetes name
//!    ([`check_model_name`]); the folder is copied to a private folder (what is checked is then
//!    what is uploaded, even if training writes into the folder meanwhile), and the copy must be
//!    a whole, consistent model ([`crate::export::check_version_folder`]: `model.onnx` loads in
//!    ONNX Runtime with the scaler's features as inputs and the label encoder's classes as output).
//! 2. **Ask the registry**: the version must not exist yet, and the client must be allowed to
//!    write (the registered model is created, or updated with nothing, which a registry without
//!    the right token refuses). A missing token fails here, before any upload.
//! 3. **Choose the bucket folder** `models/<name>/<N>/`: the local folder's number when no
//!    registered version records that folder and no object is stored under it, else the next free
//!    number (one past every number the registry or the bucket uses). A pinned folder
//!    ([`ModelUpload::bucket_folder`]) that is in use is refused, naming both versions.
//! 4. **Stage**: upload to `.jukebox-staging/<name>/<attempt>/` (outside `models/`, which model
//!    servers watch), every object verified.
//! 5. **Register** the version and its artifact. The registry refuses a second version of one
//!    name, so of two saves of the same version exactly one gets past this step; the other
//!    removes its staged upload and reports the version that won.
//! 6. **Settle the folder**: two saves of *different* versions may have chosen the same free
//!    folder. The version the registry created first keeps it; a later one moves to the next free
//!    folder (its artifact's URI is updated) before it publishes anything.
//! 7. **Publish**: the checked copy goes to `models/<name>/<N>/`, `model.onnx` last (a model
//!    server loads a version once its model file exists), and the staged upload is removed.
//!
//! A failure removes what this save uploaded and nothing else. Once the version is registered
//! the registry cannot forget it (the Kubeflow API deletes no version), so a failed publish
//! archives the version and says so. A save killed midway (kill -9, power loss) can leave its
//! folder under `.jukebox-staging/`: no model server reads it, and it can be deleted any time.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use jukebox_protocol::model_folder::{
    bucket_prefix, check_model_name, staging_prefix, version_folder_of, VersionFolder, METRICS_FILE,
};
use jukebox_protocol::registry::{ModelArtifactUpdate, ModelState};

use jukebox_protocol::registry::{ModelArtifact, ModelVersion, ModelVersionUpdate, RegisteredModel};

use super::client::ModelRegistry;
use super::error::RegistryError;
use super::registration::{recorded_metrics, ModelUpload, RegisterModel};
use super::view::{RegisteredVersion, SavedModel, VersionTable};
use crate::storage::{Storage, StorageError};

/// How long a save waits for an earlier, concurrent registration to record its artifact before it
/// decides who owns a bucket folder.
const PENDING_ARTIFACT_WAIT: Duration = Duration::from_secs(5);
/// A version without an artifact that was created longer ago than this is not a save in progress.
const PENDING_ARTIFACT_AGE: Duration = Duration::from_secs(60);

impl ModelRegistry {
    /// Uploads a trained model folder to `storage` and registers it as `upload.version`, with the
    /// [`RECORDED_METRICS`](super::registration::RECORDED_METRICS) of its `artifacts/metrics.json` and `license` as metadata: the
    /// Python client's `upload_artifact_and_register_model`, published whole or not at all (see
    /// the [module documentation](self) for the steps).
    ///
    /// The version's files go to `models/<name>/<N>/`, a folder no other version uses: `N` is the
    /// folder's own number when it is free, else the next free one ([`SavedModel::upload`] says
    /// where). Refusals: [`RegistryError::AlreadyExists`] for a registered version and
    /// [`RegistryError::NotPublishable`] for a bad name or folder (both before any upload),
    /// [`RegistryError::NoWriteAccess`] without the registry's token (before any upload),
    /// [`RegistryError::FolderInUse`] for a pinned folder that another version uses,
    /// [`RegistryError::LostRace`] when a concurrent save registered the version first.
    pub fn upload_and_register(&self, storage: &Storage, upload: &ModelUpload) -> Result<SavedModel, RegistryError> {
        // 1. Check.
        check_model_name(&upload.name).map_err(|e| RegistryError::NotPublishable(e.to_string()))?;
        if upload.version.trim().is_empty() {
            return Err(RegistryError::Config("the version name is empty: give one, e.g. 0.0.1".into()));
        }
        let source = VersionFolder::identify(&upload.model_dir).map_err(StorageError::from)?;
        let copy = PrivateCopy::of(&source, &upload.name)?;
        crate::export::check_version_folder(&copy.folder).map_err(|e| RegistryError::NotPublishable(e.to_string()))?;
        let metrics = recorded_metrics(&copy.folder.artifact(METRICS_FILE))?;

        // 2. The registry: a new version, and a client allowed to write.
        match self.get_model_version(&upload.name, &upload.version) {
            Ok(existing) => {
                return Err(RegistryError::AlreadyExists { model: upload.name.clone(), existing: Box::new(existing) })
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
        let author = upload.author.clone().unwrap_or_else(|| self.author.clone());
        self.check_write_access(&upload.name, &author)?;

        // 3. The bucket folder.
        let folder = match upload.bucket_folder {
            Some(pinned) => {
                if let Some(owner) = self.folder_owner(storage, &upload.name, pinned, None)? {
                    return Err(folder_in_use(upload, pinned, owner));
                }
                pinned
            }
            None => {
                if self.folder_owner(storage, &upload.name, source.version, None)?.is_none() {
                    source.version
                } else {
                    self.next_free_folder(storage, &upload.name)?
                }
            }
        };

        // 4. Stage.
        let staging = staging_prefix(&upload.name, &attempt_id());
        if let Err(e) = storage.upload_dir(&copy.folder.dir, Some(&staging)) {
            let _ = storage.remove_prefix(&staging);
            return Err(e.into());
        }

        // 5. Register.
        let mut request = RegisterModel::new(&upload.name, &upload.version, "")
            .model_format("onnx", "1")
            .metadata("license", upload.license.as_str());
        request.metadata.extend(metrics);
        request.description = upload.description.clone();
        request.author = Some(author);
        let request = located(request, storage, &upload.storage_key, &upload.name, folder);
        let registered = match self.register_model(&request) {
            Ok(registered) => registered,
            Err(e) => {
                let _ = storage.remove_prefix(&staging);
                return Err(match e {
                    // Checked in step 2: someone registered it since, with their own files.
                    RegistryError::AlreadyExists { model, existing } => {
                        RegistryError::LostRace { model, version: upload.version.clone(), existing }
                    }
                    other => other,
                });
            }
        };

        // 6. Settle the folder, 7. publish; after registration a failure archives the version.
        let version_id = registered.version.id.clone();
        let published = self.settle_folder(storage, upload, registered, folder).and_then(|(registered, folder)| {
            let prefix = bucket_prefix(&upload.name, folder);
            match storage.upload_dir(&copy.folder.dir, Some(&prefix)) {
                Ok(report) => Ok(SavedModel { upload: report, registered }),
                Err(e) => {
                    // Only this save's keys: the folder is this version's alone.
                    for relative in copy.relative_files() {
                        let _ = storage.delete(&format!("{prefix}{relative}"));
                    }
                    Err(RegistryError::from(e))
                }
            }
        });
        let _ = storage.remove_prefix(&staging);
        published.map_err(|cause| {
            let archived = self
                .update_model_version(
                    &version_id,
                    &ModelVersionUpdate { state: Some(ModelState::Archived), ..Default::default() },
                )
                .is_ok();
            RegistryError::PublishFailed {
                model: upload.name.clone(),
                version: upload.version.clone(),
                archived,
                cause: Box::new(cause),
            }
        })
    }

    /// Fails with [`RegistryError::NoWriteAccess`] unless this client may write to the registry:
    /// creates the registered model `name` when it is new, else updates it with nothing (an
    /// empty PATCH, which changes no field). Either is a write a registry checks the token of.
    fn check_write_access(&self, name: &str, owner: &str) -> Result<RegisteredModel, RegistryError> {
        let no_access = |e: RegistryError| match e {
            RegistryError::Http { status: status @ (401 | 403), message, .. } => {
                RegistryError::NoWriteAccess { url: self.api_url(), status, message }
            }
            other => other,
        };
        match self.find_registered_model(name)? {
            Some(model) => self
                .send("PATCH", &format!("/registered_models/{}", model.id), &[], Some(&serde_json::json!({})))
                .map_err(no_access),
            None => {
                let create = jukebox_protocol::registry::RegisteredModelCreate {
                    name: name.to_string(),
                    owner: Some(owner.to_string()),
                    state: Some(ModelState::Live),
                    ..Default::default()
                };
                match self.send::<RegisteredModel>("POST", "/registered_models", &[], Some(&create)) {
                    Err(RegistryError::Http { status: 409, .. }) => self.get_registered_model(name),
                    other => other.map_err(no_access),
                }
            }
        }
    }

    /// Who uses bucket folder `folder` of model `name`: the registered version recording it
    /// (other than `except`), or, when none does, objects stored under it (an upload no version
    /// owns). `None` when the folder is free.
    fn folder_owner(
        &self,
        storage: &Storage,
        name: &str,
        folder: u64,
        except: Option<&ModelVersion>,
    ) -> Result<Option<String>, RegistryError> {
        let table = self.versions_or_none(name)?;
        let owner = table.iter().flat_map(|t| &t.rows).find(|row| {
            except.is_none_or(|e| e.id != row.version.id) && folders_of(name, &row.artifacts).contains(&folder)
        });
        if let Some(row) = owner {
            return Ok(Some(format!("version {}", row.version.name)));
        }
        let stored = storage.list(&bucket_prefix(name, folder))?;
        Ok((!stored.is_empty()).then(|| format!("{} objects that no registered version records", stored.len())))
    }

    /// One past the highest folder number of model `name` that the registry records or the
    /// bucket holds objects under.
    fn next_free_folder(&self, storage: &Storage, name: &str) -> Result<u64, RegistryError> {
        let table = self.versions_or_none(name)?;
        let registered = table.iter().flat_map(|t| &t.rows).flat_map(|row| folders_of(name, &row.artifacts));
        let stored = storage.version_folders(name)?;
        Ok(registered.chain(stored).max().unwrap_or(0) + 1)
    }

    fn versions_or_none(&self, name: &str) -> Result<Option<VersionTable>, RegistryError> {
        match self.list_model_versions(name) {
            Ok(table) => Ok(Some(table)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Step 6: makes sure no version registered before ours records `folder`, and that nothing is
    /// stored there; otherwise moves our artifact to the next free folder (or, for a pinned
    /// folder, refuses). Returns the registration as it now stands and the folder to publish to.
    fn settle_folder(
        &self,
        storage: &Storage,
        upload: &ModelUpload,
        mut registered: RegisteredVersion,
        mut folder: u64,
    ) -> Result<(RegisteredVersion, u64), RegistryError> {
        let ours = registered.version.clone();
        let started = Instant::now();
        loop {
            let table = self.list_model_versions(&upload.name)?;
            let earlier = table.rows.iter().filter(|row| created_before(&row.version, &ours));
            let mut pending = false;
            let mut owner = None;
            for row in earlier {
                if row.artifacts.is_empty() {
                    pending |= recently_created(&row.version);
                } else if folders_of(&upload.name, &row.artifacts).contains(&folder) {
                    owner = Some(format!("version {}", row.version.name));
                }
            }
            if owner.is_none() {
                let stored = storage.list(&bucket_prefix(&upload.name, folder))?;
                if !stored.is_empty() {
                    owner = Some(format!("{} objects that no registered version records", stored.len()));
                }
            }
            match owner {
                None if pending && started.elapsed() < PENDING_ARTIFACT_WAIT => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                None => return Ok((registered, folder)),
                Some(owner) if upload.bucket_folder.is_some() => return Err(folder_in_use(upload, folder, owner)),
                Some(_) => {
                    folder = self.next_free_folder(storage, &upload.name)?;
                    registered.artifact = self.move_artifact(&registered.artifact, storage, upload, folder)?;
                }
            }
        }
    }

    /// Points `artifact` at bucket folder `folder` (URI and storage path).
    fn move_artifact(
        &self,
        artifact: &ModelArtifact,
        storage: &Storage,
        upload: &ModelUpload,
        folder: u64,
    ) -> Result<ModelArtifact, RegistryError> {
        let prefix = bucket_prefix(&upload.name, folder);
        let update = ModelArtifactUpdate {
            uri: Some(storage.config().registry_uri(&prefix)),
            storage_path: Some(prefix.trim_end_matches('/').to_string()),
            ..Default::default()
        };
        // Kubeflow's registry tells artifact kinds apart by `artifactType`, in updates too.
        let mut body = serde_json::to_value(&update)
            .map_err(|e| RegistryError::Config(format!("cannot encode an artifact update: {e}")))?;
        body["artifactType"] = serde_json::Value::from(artifact.artifact_type.as_str());
        self.send("PATCH", &format!("/model_artifacts/{}", artifact.id), &[], Some(&body))
    }
}

/// `request` stored in bucket folder `folder` of model `name`: the URI the Kubeflow Python client
/// records, the data connection and the path inside the bucket.
fn located(request: RegisterModel, storage: &Storage, key: &str, name: &str, folder: u64) -> RegisterModel {
    let prefix = bucket_prefix(name, folder);
    RegisterModel { uri: storage.config().registry_uri(&prefix), ..request }.storage(key, prefix.trim_end_matches('/'))
}

fn folder_in_use(upload: &ModelUpload, folder: u64, owner: String) -> RegistryError {
    RegistryError::FolderInUse {
        model: upload.name.clone(),
        folder: bucket_prefix(&upload.name, folder),
        version: upload.version.clone(),
        existing: owner,
    }
}

/// The bucket folder numbers `artifacts` of model `name` record (`models/<name>/<N>`).
fn folders_of(name: &str, artifacts: &[ModelArtifact]) -> Vec<u64> {
    let prefix = format!("{}/{name}/", jukebox_protocol::model_folder::BUCKET_MODELS_DIR);
    artifacts
        .iter()
        .filter_map(|a| {
            let path = a.fields.storage_path.clone().or_else(|| {
                let uri = a.fields.uri.as_deref()?;
                uri.parse::<jukebox_protocol::model_folder::S3Location>().ok().map(|l| l.key)
            })?;
            let path = path.trim_start_matches('/');
            path.starts_with(&prefix).then(|| version_folder_of(path)).flatten()
        })
        .collect()
}

/// Whether `version` was created before `ours`: registry ids grow with creation (compared as
/// numbers when both are, else by length and text, which orders decimal strings the same way).
fn created_before(version: &ModelVersion, ours: &ModelVersion) -> bool {
    let key = |v: &ModelVersion| (v.id.len(), v.id.clone());
    match (version.id.parse::<u64>(), ours.id.parse::<u64>()) {
        (Ok(a), Ok(b)) => a < b,
        _ => key(version) < key(ours),
    }
}

/// Whether `version` was created recently enough to be a save that has yet to record its artifact.
fn recently_created(version: &ModelVersion) -> bool {
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_millis();
    let created = version.create_time_since_epoch.as_deref().and_then(|t| t.parse::<u128>().ok());
    created.is_some_and(|created| now.saturating_sub(created) < PENDING_ARTIFACT_AGE.as_millis())
}

/// A name for one save attempt, unique across processes and machines in practice.
fn attempt_id() -> String {
    format!("{:x}-{:016x}", std::process::id(), rand::random::<u64>())
}

/// A private copy of a version folder, removed when dropped.
struct PrivateCopy {
    _dir: tempfile::TempDir,
    folder: VersionFolder,
}

impl PrivateCopy {
    fn of(source: &VersionFolder, name: &str) -> Result<PrivateCopy, RegistryError> {
        let dir = tempfile::Builder::new()
            .prefix("jukebox-save-")
            .tempdir()
            .map_err(|source| StorageError::Io { path: std::env::temp_dir(), source })?;
        let folder = VersionFolder::new(dir.path(), name, source.version);
        copy_tree(&source.dir, &folder.dir)?;
        Ok(PrivateCopy { _dir: dir, folder })
    }

    /// Every file of the copy, as a key suffix (`artifacts/scaler.json`).
    fn relative_files(&self) -> Vec<String> {
        let mut files = Vec::new();
        let mut pending = vec![self.folder.dir.clone()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    pending.push(path);
                } else if let Ok(relative) = path.strip_prefix(&self.folder.dir) {
                    let parts: Vec<String> =
                        relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
                    files.push(parts.join("/"));
                }
            }
        }
        files
    }
}

/// Copies the files below `from` to `to` (links followed, as an upload reads them).
fn copy_tree(from: &Path, to: &Path) -> Result<(), StorageError> {
    std::fs::create_dir_all(to).map_err(|source| StorageError::Io { path: to.to_path_buf(), source })?;
    let entries = std::fs::read_dir(from).map_err(|source| StorageError::Io { path: from.to_path_buf(), source })?;
    for entry in entries {
        let entry = entry.map_err(|source| StorageError::Io { path: from.to_path_buf(), source })?;
        let (path, target) = (entry.path(), to.join(entry.file_name()));
        let meta = std::fs::metadata(&path).map_err(|source| StorageError::Io { path: path.clone(), source })?;
        if meta.is_dir() {
            copy_tree(&path, &target)?;
        } else if meta.is_file() {
            std::fs::copy(&path, &target).map_err(|source| StorageError::Io { path: path.clone(), source })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jukebox_protocol::registry::ModelArtifactFields;

    fn artifact(path: Option<&str>, uri: Option<&str>) -> ModelArtifact {
        ModelArtifact {
            id: "1".into(),
            artifact_type: "model-artifact".into(),
            fields: ModelArtifactFields {
                storage_path: path.map(String::from),
                uri: uri.map(String::from),
                ..Default::default()
            },
            create_time_since_epoch: None,
            last_update_time_since_epoch: None,
        }
    }

    #[test]
    fn folders_are_read_from_storage_paths_or_uris_of_this_model_only() {
        let artifacts = [
            artifact(Some("models/jukebox/1"), None),
            artifact(None, Some("s3://models/models/jukebox/3?endpoint=http://x")),
            artifact(Some("models/other/2"), None),
            artifact(Some("models/jukebox/latest"), None),
        ];
        assert_eq!(folders_of("jukebox", &artifacts), [1, 3]);
    }

    #[test]
    fn registry_ids_order_by_number() {
        let version = |id: &str| ModelVersion { id: id.into(), ..Default::default() };
        assert!(created_before(&version("9"), &version("10")));
        assert!(!created_before(&version("10"), &version("9")));
        assert!(created_before(&version("a9"), &version("a10")));
    }
}
