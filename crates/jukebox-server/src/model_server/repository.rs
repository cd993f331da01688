//! The model repository: every version of every model in a folder, loaded and checked, and the
//! watcher that keeps it in step with the folder while serving.
//!
//! [`ModelRepository`] reads `<repository>/<name>/<integer version>/model.onnx` through the model
//! folder contract's scanner (`jukebox_protocol::model_folder`), checks each file against
//! [`LoadLimits`] (a size cap, then the `guard` module's scan for nodes that would build a huge
//! constant while loading) and loads it into ONNX Runtime. [`ModelRepository::refresh_with_limits`]
//! compares it with the folder as OpenVINO Model Server does when it polls: new versions load,
//! removed ones go, re-uploaded ones (another [`FileStamp`]) reload, and a broken file is noted
//! once and skipped while the others serve. The server holds the repository in a [`Served`]
//! cell that the watcher swaps whole, so a request keeps the snapshot it started with.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use jukebox_protocol::inference::{ModelMetadata, TensorMetadata, PLATFORM_ONNX};
use jukebox_protocol::model_folder;
use jukebox_runtime::{GraphRewrites, InputTensor, OnnxModel};

use super::batch::{self, Batched, Column};
use super::config::LoadLimits;
use super::error::ModelServerError;
use super::guard;

/// One loaded model version with its precomputed metadata.
pub struct LoadedModel {
    pub name: String,
    pub version: u64,
    pub model: OnnxModel,
    pub(super) inputs: Vec<TensorMetadata>,
    pub(super) outputs: Vec<TensorMetadata>,
    /// The file as it was when loaded; a different stamp later means a re-upload to reload.
    stamp: Option<FileStamp>,
    /// Every input and output has a dynamic first dimension: requests can be stacked along it
    /// (dynamic batching) or cut into slices of rows.
    pub(super) batchable: bool,
    /// Requests waiting to run merged ([`Batching`](super::config::Batching)).
    batch_queue: batch::BatchQueue,
}

impl LoadedModel {
    /// Requests of this model version answered from a call merged with others ([`Batching`](super::config::Batching)).
    pub fn merged_requests(&self) -> u64 {
        self.batch_queue.merged_requests()
    }
}

impl Batched for LoadedModel {
    fn queue(&self) -> &batch::BatchQueue {
        &self.batch_queue
    }

    fn run_columns(&self, columns: &[Column]) -> batch::RunResult {
        let inputs: Vec<InputTensor<'_>> = self
            .inputs
            .iter()
            .zip(columns)
            .map(|(info, column)| InputTensor::new(&info.name, &column.shape, &column.data))
            .collect();
        self.model.run(&inputs)
    }
}

/// What identifies one upload of a file: S3 uploads are renamed into place, so a re-upload gets a
/// new inode and modification time even when its size is the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

impl FileStamp {
    fn of(path: &Path) -> Option<Self> {
        let metadata = std::fs::metadata(path).ok()?;
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&metadata);
        #[cfg(not(unix))]
        let inode = 0;
        Some(Self { len: metadata.len(), modified: metadata.modified().ok(), inode })
    }
}

/// Loads `path` after checking it against `limits` (see [`LoadLimits`]).
fn load_checked(
    name: &str,
    version: u64,
    path: &Path,
    sessions: usize,
    limits: &LoadLimits,
) -> Result<OnnxModel, ModelServerError> {
    let refused = |reason: String| ModelServerError::Refused {
        name: name.to_string(),
        version,
        path: path.to_path_buf(),
        reason,
    };
    let len = std::fs::metadata(path).map_err(|e| refused(e.to_string()))?.len();
    if len > limits.max_file_bytes {
        return Err(refused(format!(
            "the file has {len} bytes; watched models may have at most {} (LoadLimits::max_file_bytes)",
            limits.max_file_bytes
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| refused(e.to_string()))?;
    guard::check(&bytes, limits.max_folded_constant_bytes).map_err(refused)?;
    // Served files come from a bucket anyone with the credentials writes to: no load-time
    // constant folding (the one rewrite that evaluates the graph), so loading cannot allocate
    // without bound whatever the guard misses; the other rewrites (fusions) stay.
    OnnxModel::load_with_rewrites(path, sessions, GraphRewrites::AllButConstantFolding)
        .map_err(|source| ModelServerError::Load { name: name.to_string(), version, source })
}

/// Every model version found in a repository folder.
#[derive(Default)]
pub struct ModelRepository {
    models: BTreeMap<String, BTreeMap<u64, Arc<LoadedModel>>>,
}

impl ModelRepository {
    /// Loads `<dir>/<name>/<integer version>/model.onnx` for every name and version, with the
    /// default [`LoadLimits`].
    pub fn load(dir: &Path, sessions_per_model: usize) -> Result<Self, ModelServerError> {
        Self::load_with_limits(dir, sessions_per_model, &LoadLimits::default())
    }

    /// [`Self::load`] with the given limits on each file.
    pub fn load_with_limits(
        dir: &Path,
        sessions_per_model: usize,
        limits: &LoadLimits,
    ) -> Result<Self, ModelServerError> {
        let mut repository = Self::default();
        for (name, version, path) in model_files(dir)? {
            let model = load_checked(&name, version, &path, sessions_per_model, limits)?;
            repository.insert(&name, version, model);
        }
        Ok(repository)
    }

    /// Compares the repository with what `dir` holds now, as OpenVINO Model Server does when it
    /// polls its model folders: loads versions that appeared, drops versions that disappeared,
    /// keeps the rest as loaded. A missing `dir` counts as empty. `None` when nothing changed.
    ///
    /// A version that fails to load is left out (the others still serve), so a broken file never
    /// takes the server down; it is noted in `broken` with its modification time and reported
    /// once in `failures`, and tried again only when the file changes.
    pub fn refresh(
        &self,
        dir: &Path,
        sessions_per_model: usize,
        broken: &mut BTreeMap<PathBuf, std::time::SystemTime>,
        failures: &mut Vec<ModelServerError>,
    ) -> Result<Option<Self>, ModelServerError> {
        self.refresh_with_limits(dir, sessions_per_model, &LoadLimits::default(), broken, failures)
    }

    /// [`Self::refresh`] that also reloads a version whose file changed (a model re-uploaded to
    /// the same version), and checks every file against `limits` before ONNX Runtime loads it:
    /// an oversized file or a graph that would build a huge constant while loading is refused
    /// (noted in `failures`) and the other versions keep serving. A changed file that fails to
    /// load leaves the previously loaded model of that version serving.
    // `broken` is only written when a load fails and the file has a time: not an entry upsert.
    #[allow(clippy::map_entry)]
    pub fn refresh_with_limits(
        &self,
        dir: &Path,
        sessions_per_model: usize,
        limits: &LoadLimits,
        broken: &mut BTreeMap<PathBuf, std::time::SystemTime>,
        failures: &mut Vec<ModelServerError>,
    ) -> Result<Option<Self>, ModelServerError> {
        let found = if dir.exists() { model_files(dir)? } else { Vec::new() };
        let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
        broken.retain(|path, when| modified(path) == Some(*when));
        let mut next = Self::default();
        let mut reloaded = false;
        for (name, version, path) in found {
            let existing = self.models.get(&name).and_then(|versions| versions.get(&version));
            if let Some(existing) = existing.filter(|e| e.stamp.is_some() && e.stamp == FileStamp::of(&path)) {
                next.models.entry(name).or_default().insert(version, existing.clone());
            } else if !broken.contains_key(&path) {
                match load_checked(&name, version, &path, sessions_per_model, limits) {
                    Ok(model) => {
                        reloaded |= existing.is_some();
                        next.insert(&name, version, model);
                    }
                    Err(failure) => {
                        if let Some(when) = modified(&path) {
                            broken.insert(path, when);
                        }
                        failures.push(failure);
                        if let Some(existing) = existing {
                            next.models.entry(name).or_default().insert(version, existing.clone());
                        }
                    }
                }
            } else if let Some(existing) = existing {
                next.models.entry(name).or_default().insert(version, existing.clone());
            }
        }
        Ok((reloaded || next.list() != self.list()).then_some(next))
    }

    /// Adds (or replaces) one model version.
    pub fn insert(&mut self, name: &str, version: u64, model: OnnxModel) {
        let describe = |infos: &[jukebox_runtime::TensorInfo]| {
            infos
                .iter()
                .map(|i| TensorMetadata { name: i.name.clone(), datatype: i.datatype.clone(), shape: i.shape.clone() })
                .collect()
        };
        let inputs: Vec<TensorMetadata> = describe(model.inputs());
        let outputs: Vec<TensorMetadata> = describe(model.outputs());
        let loaded = LoadedModel {
            stamp: FileStamp::of(model.path()),
            name: name.to_string(),
            version,
            batchable: inputs.iter().chain(&outputs).all(|t| t.shape.first() == Some(&-1)),
            inputs,
            outputs,
            model,
            batch_queue: batch::BatchQueue::default(),
        };
        self.models.entry(name.to_string()).or_default().insert(version, Arc::new(loaded));
    }

    /// True when no model was found.
    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// `(name, versions)` of every model, sorted.
    pub fn list(&self) -> Vec<(String, Vec<u64>)> {
        self.models.iter().map(|(name, versions)| (name.clone(), versions.keys().copied().collect())).collect()
    }

    /// The model version a request addresses; `None` = the highest version.
    pub fn get(&self, name: &str, version: Option<&str>) -> Result<&Arc<LoadedModel>, ModelServerError> {
        let versions = self.models.get(name).ok_or_else(|| ModelServerError::UnknownModel {
            name: name.to_string(),
            known: join_or_none(self.models.keys()),
        })?;
        let unknown_version = || ModelServerError::UnknownVersion {
            name: name.to_string(),
            version: version.unwrap_or_default().to_string(),
            known: join_or_none(versions.keys()),
        };
        match version {
            None => versions.values().next_back().ok_or_else(unknown_version),
            Some(v) => v.parse::<u64>().ok().and_then(|v| versions.get(&v)).ok_or_else(unknown_version),
        }
    }

    pub(super) fn metadata(&self, name: &str, version: Option<&str>) -> Result<ModelMetadata, ModelServerError> {
        let loaded = self.get(name, version)?;
        let versions = match version {
            Some(_) => vec![loaded.version.to_string()],
            None => self.models[name].keys().map(u64::to_string).collect(),
        };
        Ok(ModelMetadata {
            name: loaded.name.clone(),
            versions,
            platform: PLATFORM_ONNX.to_string(),
            inputs: loaded.inputs.clone(),
            outputs: loaded.outputs.clone(),
        })
    }
}

/// `(name, version, path of model.onnx)` for every version folder of the repository `dir` (the
/// model folder contract's scanner), sorted by name and version; other entries are ignored.
fn model_files(dir: &Path) -> Result<Vec<(String, u64, PathBuf)>, ModelServerError> {
    let models = model_folder::models(dir)
        .map_err(|e| ModelServerError::Repository { path: dir.to_path_buf(), message: e.to_string() })?;
    Ok(models
        .into_iter()
        .flat_map(|(name, versions)| {
            versions
                .into_iter()
                .map(move |(version, folder)| (name.clone(), version, folder.join(model_folder::MODEL_FILE)))
        })
        .collect())
}

fn join_or_none<T: std::fmt::Display>(items: impl Iterator<Item = T>) -> String {
    let joined = items.map(|i| i.to_string()).collect::<Vec<_>>().join(", ");
    if joined.is_empty() {
        "(none)".to_string()
    } else {
        joined
    }
}

/// Watch a repository folder for new and removed versions, every `interval`.
#[derive(Debug, Clone)]
pub struct RepositoryWatch {
    pub dir: PathBuf,
    pub interval: Duration,
    pub sessions_per_model: usize,
}

/// The repository being served: swapped whole when a watched folder changes; requests keep the
/// snapshot they took.
pub(super) struct Served(RwLock<Arc<ModelRepository>>);

impl Served {
    pub(super) fn new(repository: ModelRepository) -> Self {
        Self(RwLock::new(Arc::new(repository)))
    }

    /// The repository as it is now.
    pub(super) fn current(&self) -> Arc<ModelRepository> {
        self.0.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    fn replace(&self, next: ModelRepository) {
        *self.0.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(next);
    }
}

/// Polls the repository folder and swaps in a new repository when versions come or go.
pub(super) async fn watch_repository(served: Arc<Served>, watch: RepositoryWatch, limits: LoadLimits) {
    let mut ticks = tokio::time::interval(watch.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let broken = Arc::new(std::sync::Mutex::new(BTreeMap::new()));
    let mut last_error = String::new();
    loop {
        ticks.tick().await;
        let current = served.current();
        let (dir, sessions, broken) = (watch.dir.clone(), watch.sessions_per_model, broken.clone());
        // Loading runs ONNX Runtime's graph optimiser: keep it off the async workers.
        let refreshed = tokio::task::spawn_blocking(move || {
            let mut failures = Vec::new();
            let mut broken = broken.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let result = current.refresh_with_limits(&dir, sessions, &limits, &mut broken, &mut failures);
            (result, failures)
        })
        .await;
        let Ok((result, failures)) = refreshed else { continue };
        for failure in failures {
            tracing::warn!("model server: {failure}; serving the other versions");
        }
        match result {
            Ok(Some(next)) => {
                let listing: Vec<String> = next
                    .list()
                    .into_iter()
                    .map(|(name, versions)| {
                        let versions: Vec<String> = versions.iter().map(u64::to_string).collect();
                        format!("{name} (versions {})", versions.join(", "))
                    })
                    .collect();
                tracing::info!(
                    "model server: now serving {}",
                    if listing.is_empty() { "no models".to_string() } else { listing.join(", ") }
                );
                served.replace(next);
                last_error.clear();
            }
            Ok(None) => last_error.clear(),
            Err(e) => {
                // An unreadable folder is reported once, not at every tick.
                let message = e.to_string();
                if message != last_error {
                    tracing::warn!("model server: {message}");
                    last_error = message;
                }
            }
        }
    }
}
