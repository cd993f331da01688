//! `jukebox save`: upload a trained model folder to S3 and register it in the model registry,
//! what the workshop's `3-save_model` notebook does with the Python client's
//! `upload_artifact_and_register_model`.
//!
//! `--model-dir` is a `<root>/<name>/<integer version>` folder (model.onnx + artifacts/) written
//! by the training stage. It goes to `s3://<bucket>/models/<name>/<integer version>/`, and version
//! `--version` of model `--name` is registered with that location (format onnx 1), the data
//! connection's name as storage key, and metadata from `artifacts/metrics.json` plus `license`.
//!
//! Connection settings come from the environment that `jukebox up` prints (`AWS_S3_*`,
//! `AWS_*_KEY*`, `JUKEBOX_REGISTRY_URL`). A version that is already registered is refused before
//! anything is uploaded.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use jukebox::registry::{MetadataValue, ModelRegistry, RegisterModel, RegistryError};
use jukebox::storage::{model_folder_identity, model_prefix, Storage, StorageConfig};

/// The metrics copied from `metrics.json` into the version's metadata (the rest stays in S3).
const METRICS_RECORDED: [&str; 6] = ["accuracy", "f1_macro", "epochs", "seed", "data_rows", "training_seconds"];

#[derive(clap::Args)]
pub struct Args {
    /// The model folder: `<root>/<name>/<integer version>` with model.onnx and artifacts/.
    #[arg(long)]
    pub model_dir: PathBuf,
    /// Registered model name (also the folder name under `models/` in the bucket).
    #[arg(long, default_value = "jukebox")]
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
    #[arg(long, default_value = "Apache-2.0")]
    pub license: String,
    /// Name of the data connection holding the S3 credentials (the artifact's storage key).
    #[arg(long, default_value = "models", env = "JUKEBOX_STORAGE_KEY")]
    pub storage_key: String,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (folder_name, folder_version) = model_folder_identity(&args.model_dir)?;
    if folder_name != args.name {
        eprintln!(
            "jukebox save: note: the folder says model {folder_name:?}, saving it as {:?} (--name)",
            args.name
        );
    }
    let metadata = recorded_metrics(&args.model_dir.join("artifacts/metrics.json"))?;

    let registry = ModelRegistry::from_env()?;
    // Refuse a duplicate before touching storage, so nothing is re-uploaded.
    match registry.get_model_version(&args.name, &args.version) {
        Ok(existing) => bail!(
            "model {:?} version {:?} is already registered (version id {}); nothing was uploaded. \
             Register a new version with --version.",
            args.name,
            args.version,
            existing.id
        ),
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e).context("cannot check the model registry before uploading"),
    }

    let storage = Storage::connect(StorageConfig::from_env()?)?;
    let prefix = model_prefix(&args.name, folder_version);
    let report = storage.upload_dir(&args.model_dir, Some(&prefix))?;
    print!("{report}");

    let mut request = RegisterModel::new(&args.name, &args.version, storage.config().registry_uri(&prefix))
        .model_format("onnx", "1")
        .storage(&args.storage_key, prefix.trim_end_matches('/'))
        .metadata("license", args.license.as_str());
    for (key, value) in metadata {
        request = request.metadata(key, value);
    }
    if let Some(description) = &args.description {
        request = request.description(description);
    }
    if let Some(author) = &args.author {
        request = request.author(author);
    }
    let registered = match registry.register_model(&request) {
        Ok(registered) => registered,
        Err(e @ RegistryError::AlreadyExists { .. }) => {
            // Someone registered the same version between our check and now.
            bail!("{e}; the files uploaded to {} are left in place", report.uri)
        }
        Err(e) => return Err(e).context(format!("uploaded to {} but could not register it", report.uri)),
    };
    println!(
        "registered model {:?} (id {}) version {:?} (id {}) at {}",
        registered.model.name,
        registered.model.id,
        registered.version.name,
        registered.version.id,
        registered.artifact.fields.uri.as_deref().unwrap_or(&request.uri)
    );
    Ok(())
}

/// The [`METRICS_RECORDED`] entries of a `metrics.json`, typed as the registry stores them.
fn recorded_metrics(path: &Path) -> anyhow::Result<Vec<(&'static str, MetadataValue)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let mut out = Vec::new();
    for key in METRICS_RECORDED {
        match json.get(key) {
            None | Some(serde_json::Value::Null) => {}
            Some(value) => match MetadataValue::from_json(value) {
                Some(typed) => out.push((key, typed)),
                None => bail!("{}: field {key:?} is {value}, expected a number", path.display()),
            },
        }
    }
    Ok(out)
}
