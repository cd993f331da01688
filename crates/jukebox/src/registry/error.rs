//! Why a registry call failed: one [`RegistryError`] for the client, the save steps and the
//! notebook helpers, each variant saying what happened and what to do.

use jukebox_protocol::registry::{format_epoch_millis, ModelVersion};

use crate::storage::StorageError;

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
