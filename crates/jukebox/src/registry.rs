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
//!
//! The client is split by job: `client` (the HTTP calls), `registration` (what a registration
//! records), `view` (how records read in a notebook), `publish` (saving a folder whole or not at
//! all), `notebook` (the notebooks' one-call helpers) and `error`.

mod client;
mod error;
mod notebook;
mod publish;
mod registration;
mod view;

pub use client::{ApiVersion, ModelRegistry};
pub use error::RegistryError;
pub use jukebox_protocol::registry::{
    CustomProperties, MetadataValue, ModelArtifact, ModelVersion, ModelVersionUpdate, RegisteredModel,
};
pub use registration::{ModelUpload, RegisterModel, RECORDED_METRICS};
pub use view::{metadata_text, RegisteredVersion, SavedModel, VersionRow, VersionTable, VERSION_TABLE_METRICS};
