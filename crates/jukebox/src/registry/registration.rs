//! What a registration records: [`RegisterModel`] (a version, where its files are and its
//! metadata: the Python client's `register_model` arguments) and [`ModelUpload`] (a trained folder
//! to upload and register: `upload_artifact_and_register_model`'s), with the workshop's defaults
//! (licence, storage key) from `jukebox_protocol::model_folder`, and the entries of `metrics.json`
//! a saved version records ([`RECORDED_METRICS`]).

use std::path::Path;

use jukebox_protocol::model_folder::{DEFAULT_LICENSE, DEFAULT_STORAGE_KEY};
use jukebox_protocol::registry::{CustomProperties, MetadataValue};

use super::error::RegistryError;

/// The builders' text setters, one per field: `value.field(text)` sets the field to
/// `wrap(text)` (`Some` for an optional field).
macro_rules! text_setters {
    ($($field:ident: $wrap:expr),* $(,)?) => {$(
        #[doc = concat!("Sets `", stringify!($field), "`.")]
        pub fn $field(mut self, text: impl Into<String>) -> Self {
            self.$field = $wrap(text.into());
            self
        }
    )*};
}

/// Everything `ModelRegistry::register_model` records: the model's name, the new version and
/// where its files are, plus optional people, format, storage and typed metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisterModel {
    pub name: String,
    pub version: String,
    /// Where the model files are, e.g. `s3://models/models/jukebox/1?endpoint=...`.
    pub uri: String,
    /// Description of the version.
    pub description: Option<String>,
    /// Author of the version; defaults to the client's author.
    pub author: Option<String>,
    /// Owner of the registered model (used when the model is new); defaults to the author.
    pub owner: Option<String>,
    pub model_format_name: String,
    pub model_format_version: String,
    /// Name of the data connection (storage secret) holding the credentials.
    pub storage_key: Option<String>,
    /// Path of the model inside that storage.
    pub storage_path: Option<String>,
    /// Typed metadata of the version (metrics, hyperparameters, ...).
    pub metadata: CustomProperties,
}

impl RegisterModel {
    /// Version `version` of model `name`, stored at `uri`, in ONNX format version 1.
    pub fn new(name: impl Into<String>, version: impl Into<String>, uri: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            uri: uri.into(),
            description: None,
            author: None,
            owner: None,
            model_format_name: "onnx".into(),
            model_format_version: "1".into(),
            storage_key: None,
            storage_path: None,
            metadata: CustomProperties::new(),
        }
    }

    text_setters!(description: Some, author: Some, owner: Some);

    pub fn model_format(mut self, name: impl Into<String>, version: impl Into<String>) -> Self {
        self.model_format_name = name.into();
        self.model_format_version = version.into();
        self
    }

    /// The data connection (`key`) and the path inside it where the model lives.
    pub fn storage(mut self, key: impl Into<String>, path: impl Into<String>) -> Self {
        self.storage_key = Some(key.into());
        self.storage_path = Some(path.into());
        self
    }

    /// Adds one metadata entry; its type follows the Rust value (f64 -> double, integers ->
    /// int, bool, strings).
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<MetadataValue>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Adds every scalar of a JSON object (integers as ints, other numbers as doubles, booleans,
    /// strings); nested values and nulls are skipped.
    pub fn metadata_from_json(mut self, object: &serde_json::Value) -> Result<Self, RegistryError> {
        let map = object
            .as_object()
            .ok_or_else(|| RegistryError::Config(format!("metadata must be a JSON object, got {object}")))?;
        for (key, value) in map {
            if let Some(value) = MetadataValue::from_json(value) {
                self.metadata.insert(key.clone(), value);
            }
        }
        Ok(self)
    }

    /// Adds the entries of a `metrics.json` written by the training stage.
    pub fn metadata_from_file(self, path: impl AsRef<Path>) -> Result<Self, RegistryError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| RegistryError::Config(format!("cannot read metadata file {}: {e}", path.display())))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| RegistryError::Config(format!("metadata file {} is not JSON: {e}", path.display())))?;
        self.metadata_from_json(&value)
            .map_err(|e| RegistryError::Config(format!("metadata file {}: {e}", path.display())))
    }
}

/// The entries of `metrics.json` copied into a version's metadata by
/// `ModelRegistry::upload_and_register` (the rest of the file stays beside the model in S3).
pub const RECORDED_METRICS: [&str; 13] = [
    "accuracy",
    "f1_macro",
    "val_accuracy",
    "split",
    "epochs",
    "batch_size",
    "learning_rate",
    "hidden_layers",
    "seed",
    "data_rows",
    "training_seconds",
    "n_features",
    "features",
];

/// A trained model folder to upload and register: what the Python client's
/// `upload_artifact_and_register_model` takes.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelUpload {
    /// `<root>/<name>/<integer version>` holding `model.onnx` and `artifacts/metrics.json`.
    pub model_dir: std::path::PathBuf,
    /// Registered model name (also the folder under `models/` in the bucket).
    pub name: String,
    /// Version name to register, e.g. `0.0.1`.
    pub version: String,
    pub description: Option<String>,
    /// Defaults to the client's author.
    pub author: Option<String>,
    /// Recorded as the `license` metadata entry.
    pub license: String,
    /// Name of the data connection holding the S3 credentials (the artifact's storage key).
    pub storage_key: String,
    /// The bucket folder `models/<name>/<N>/` to store the version in; `None` (the default): the
    /// folder's own number when no other version uses it, else the next free one.
    pub bucket_folder: Option<u64>,
}

impl ModelUpload {
    /// Folder `model_dir` as version `version` of model `name`, licensed [`DEFAULT_LICENSE`]
    /// (Apache-2.0), with storage key [`DEFAULT_STORAGE_KEY`] (`models`).
    pub fn new(model_dir: impl Into<std::path::PathBuf>, name: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            model_dir: model_dir.into(),
            name: name.into(),
            version: version.into(),
            description: None,
            author: None,
            license: DEFAULT_LICENSE.into(),
            storage_key: DEFAULT_STORAGE_KEY.into(),
            bucket_folder: None,
        }
    }

    /// Stores the version in bucket folder `models/<name>/<folder>/`, refused
    /// ([`RegistryError::FolderInUse`]) when another version uses it.
    pub fn bucket_folder(mut self, folder: u64) -> Self {
        self.bucket_folder = Some(folder);
        self
    }

    text_setters!(description: Some, author: Some, license: String::from, storage_key: String::from);
}

/// The [`RECORDED_METRICS`] entries of a `metrics.json`, typed as the registry stores them.
pub(super) fn recorded_metrics(path: &Path) -> Result<CustomProperties, RegistryError> {
    let config = |message: String| RegistryError::Config(format!("{}: {message}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| config(format!("cannot read the model's metrics: {e}")))?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| config(format!("not JSON: {e}")))?;
    let mut metrics = CustomProperties::new();
    for key in RECORDED_METRICS {
        match json.get(key) {
            None | Some(serde_json::Value::Null) => {}
            Some(value) => match MetadataValue::from_json(value) {
                Some(typed) => {
                    metrics.insert(key.to_string(), typed);
                }
                None => return Err(config(format!("field {key:?} is {value}, expected a number or text"))),
            },
        }
    }
    Ok(metrics)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn metrics_json_becomes_typed_metadata() {
        let request = RegisterModel::new("jukebox", "1", "s3://b/k")
            .metadata_from_json(
                &json!({"accuracy": 0.34, "epochs": 30, "ok": true, "seed": 42, "note": "x", "list": [1]}),
            )
            .unwrap();
        assert_eq!(request.metadata["accuracy"], MetadataValue::Double { double_value: 0.34 });
        assert_eq!(request.metadata["epochs"], MetadataValue::Int { int_value: 30 });
        assert_eq!(request.metadata["ok"], MetadataValue::Bool { bool_value: true });
        assert_eq!(request.metadata["note"], MetadataValue::String { string_value: "x".into() });
        assert!(!request.metadata.contains_key("list"));
        assert!(RegisterModel::new("a", "1", "u").metadata_from_json(&json!([1])).is_err());
    }
}
