//! Notebook helpers of the registry client: one call for what a cell would otherwise spell out,
//! and safe to run again ([`ModelRegistry::register_or_reuse`] answers the registered version
//! whether this run saved it or an earlier one did).

use jukebox_protocol::model_folder::{version_folder_of, VersionFolder};
use jukebox_protocol::registry::ModelVersion;

use super::client::ModelRegistry;
use super::error::RegistryError;
use super::registration::ModelUpload;
use crate::display::Show;
use crate::storage::Storage;

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
        let stored = version_folder_of(&saved.upload.prefix);
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
