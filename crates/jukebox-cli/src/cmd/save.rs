//! `jukebox save`: upload a trained model folder to S3 and register it in the model registry,
//! what the workshop's `3-save_model` notebook does with the Python client's
//! `upload_artifact_and_register_model`.
//!
//! `--version-dir` is a `<root>/<name>/<integer version>` folder (model.onnx + artifacts/) written
//! by the training stage. It goes to `s3://<bucket>/models/<name>/<N>/`, and version `--version`
//! of model `--name` is registered with that location (format onnx 1), the data connection's name
//! as storage key, and metadata from `artifacts/metrics.json` plus `license`.
//!
//! A registered version never changes: `<N>` is the folder's own number when no other version
//! uses that bucket folder, else the next free one (printed). The save is whole or nothing (`jukebox::registry`'s `publish` steps):
//! the name must be a Kubernetes name; the folder is checked (model.onnx loads in ONNX Runtime and
//! matches scaler.json and label_encoder.json) and the registry's write access too, before any
//! upload; the upload is staged outside `models/` and published (model.onnx last) only once the
//! version is registered; a failure removes what this save uploaded. Of two saves of one version
//! at once, exactly one succeeds.
//!
//! Connection settings come from the environment that `jukebox up` prints (`AWS_S3_*`,
//! `AWS_*_KEY*`, `JUKEBOX_REGISTRY_URL`, `JUKEBOX_REGISTRY_TOKEN`). A version that is already
//! registered is refused before anything is uploaded.

use std::path::PathBuf;

use anyhow::bail;
use jukebox::registry::{ModelRegistry, ModelUpload, RegistryError};
use jukebox::storage::{Storage, StorageConfig};
use jukebox_protocol::model_folder::{VersionFolder, DEFAULT_LICENSE, DEFAULT_STORAGE_KEY, MODEL_NAME};

#[derive(clap::Args)]
pub struct Args {
    /// The version folder: `<repository>/<name>/<integer version>` with model.onnx and artifacts/.
    #[arg(long, alias = "model-dir", value_name = "DIR")]
    pub version_dir: PathBuf,
    /// Registered model name (also the folder name under `models/` in the bucket): a Kubernetes
    /// name, lowercase letters, digits and '-', starting with a letter.
    #[arg(long, default_value = MODEL_NAME)]
    pub name: String,
    /// Version name to register, e.g. 0.0.1.
    #[arg(long)]
    pub version: String,
    /// Description of this version.
    #[arg(long)]
    pub description: Option<String>,
    /// Author of this version (default: $USER).
    #[arg(long)]
    pub author: Option<String>,
    /// Licence recorded in the metadata.
    #[arg(long, default_value = DEFAULT_LICENSE)]
    pub license: String,
    /// Name of the data connection holding the S3 credentials (the artifact's storage key).
    #[arg(long, default_value = DEFAULT_STORAGE_KEY, env = jukebox_protocol::env::STORAGE_KEY)]
    pub storage_key: String,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let folder = VersionFolder::identify(&args.version_dir)?;
    let folder_name = folder.name.clone();
    if folder_name != args.name {
        eprintln!("jukebox save: note: the folder says model {folder_name:?}, saving it as {:?} (--name)", args.name);
    }
    let registry = ModelRegistry::from_env()?;
    let storage = Storage::connect(StorageConfig::from_env()?)?;
    let mut upload = ModelUpload::new(&args.version_dir, &args.name, &args.version)
        .license(&args.license)
        .storage_key(&args.storage_key);
    upload.description = args.description;
    upload.author = args.author;
    let saved = match registry.upload_and_register(&storage, &upload) {
        Ok(saved) => saved,
        Err(RegistryError::AlreadyExists { existing, .. }) => bail!(
            "model {:?} version {:?} is already registered (version id {}); nothing was uploaded. \
             Register a new version with --version.",
            args.name,
            args.version,
            existing.id
        ),
        Err(e) => return Err(e.into()),
    };
    let stored = jukebox_protocol::model_folder::version_folder_of(&saved.upload.prefix);
    if stored != Some(folder.version) {
        eprintln!(
            "jukebox save: note: bucket folder {} holds another version, so {:?} is stored in the next free \
             folder, {} (model servers serve it as version {})",
            jukebox_protocol::model_folder::bucket_prefix(&args.name, folder.version),
            args.version,
            saved.upload.prefix,
            stored.unwrap_or_default()
        );
    }
    print!("{}", saved.upload);
    let registered = &saved.registered;
    println!(
        "registered model {:?} (id {}) version {:?} (id {}) at {}",
        registered.model.name,
        registered.model.id,
        registered.version.name,
        registered.version.id,
        registered.artifact.fields.uri.as_deref().unwrap_or(&saved.upload.uri)
    );
    Ok(())
}
