//! The model folder: the one layout every stage writes, uploads, downloads and serves.
//!
//! ```text
//! <repository>/<name>/<version>/model.onnx                       the network (output `output`)
//! <repository>/<name>/<version>/artifacts/scaler.json            [`Scaler`]: min and max per feature
//! <repository>/<name>/<version>/artifacts/label_encoder.json     [`LabelEncoder`]: class index -> country
//! <repository>/<name>/<version>/artifacts/metrics.json           test scores and how it was trained
//! <repository>/<name>/<version>/artifacts/X_train.parquet, X_test.parquet, y_test.json
//! ```
//!
//! `<version>` is an integer: model servers (OpenVINO Model Server, KServe, `jukebox serve`)
//! number versions by folder, while the registry names them (`0.0.1`). In a bucket the same
//! folder lives under `models/` ([`bucket_prefix`]), and the registry records where as an
//! [`S3Location`] (`s3://<bucket>/models/<name>/<version>?endpoint=...&defaultRegion=...`, what
//! the Kubeflow Python client writes).
//!
//! The training stage (`jukebox::export`), storage and registry clients, the request client and
//! the model server all read these names from here, so they cannot drift apart.
//!
//! **A published version never changes.** Each registered version owns its bucket folder
//! `models/<name>/<N>/`: a save writes only into a folder that no registered version records and
//! that holds no object, so the objects of a version are written once. Uploads are staged first
//! under [`BUCKET_STAGING_DIR`] (outside `models/`, so no model server sees them), and published
//! with [`MODEL_FILE`] last: a model server (OpenVINO Model Server, `jukebox serve`) loads a version
//! folder once its model file exists, and by then every artifact is in place.
//!
//! **Model names** are Kubernetes names ([`check_model_name`]): they become bucket folders, model
//! server names and KServe InferenceService names, so `/`, `..`, capitals and spaces are refused.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The workshop model's inputs, in the order its graph declares them: one `[N, 1]` FP32 input per
/// audio feature of the song_properties table (`jukebox::data` reads these columns; tests and
/// benches that build a workshop-shaped model name its inputs with them).
pub const WORKSHOP_FEATURES: [&str; 13] = [
    "is_explicit",
    "duration_ms",
    "danceability",
    "energy",
    "key",
    "loudness",
    "mode",
    "speechiness",
    "acousticness",
    "instrumentalness",
    "liveness",
    "valence",
    "tempo",
];

/// The network inside a version folder.
pub const MODEL_FILE: &str = "model.onnx";
/// The graph output holding the class probabilities.
pub const OUTPUT_NAME: &str = "output";
/// The folder beside [`MODEL_FILE`] holding what a client needs to use the model.
pub const ARTIFACTS_DIR: &str = "artifacts";
/// [`Scaler`], in [`ARTIFACTS_DIR`].
pub const SCALER_FILE: &str = "scaler.json";
/// [`LabelEncoder`], in [`ARTIFACTS_DIR`].
pub const LABEL_ENCODER_FILE: &str = "label_encoder.json";
/// Test scores and training settings, in [`ARTIFACTS_DIR`].
pub const METRICS_FILE: &str = "metrics.json";
/// Scaled training features (one column per feature), in [`ARTIFACTS_DIR`].
pub const X_TRAIN_FILE: &str = "X_train.parquet";
/// Scaled test features, in [`ARTIFACTS_DIR`].
pub const X_TEST_FILE: &str = "X_test.parquet";
/// Test labels ([`TestLabels`]: `{"country": [...], "label": [...]}`), in [`ARTIFACTS_DIR`].
pub const Y_TEST_FILE: &str = "y_test.json";
/// The folder of a bucket that holds model repositories.
pub const BUCKET_MODELS_DIR: &str = "models";

// The workshop's defaults, one owner each: the `jukebox` command's flags, the notebooks' helpers
// and the libraries take them from here.

/// The workshop model's name: its folder in a repository, its registered name, its name on a
/// model server and its InferenceService's name.
pub const MODEL_NAME: &str = "jukebox";
/// The local model repository the training stage writes into (`models/jukebox/1/model.onnx`).
pub const LOCAL_REPOSITORY_DIR: &str = "models";
/// The bucket `jukebox up` creates and announces as `AWS_S3_BUCKET`.
pub const DEFAULT_BUCKET: &str = "models";
/// The workshop's data connection: a registered artifact's storage key (what `JUKEBOX_STORAGE_KEY`
/// overrides) and the connection a deployment reads the model from.
pub const DEFAULT_STORAGE_KEY: &str = "models";
/// The licence a saved version records in its metadata unless told otherwise.
pub const DEFAULT_LICENSE: &str = "Apache-2.0";
/// The folder of a bucket where a save stages its upload (`<dir>/<name>/<attempt>/`) before it is
/// registered and published under [`BUCKET_MODELS_DIR`]: outside the model repository, so no model
/// server ever loads a half-upload or the upload of a save that lost a race.
pub const BUCKET_STAGING_DIR: &str = ".jukebox-staging";
/// Longest model name: a Kubernetes (DNS-1035) label.
pub const MAX_MODEL_NAME_LEN: usize = 63;

/// Why a folder or location does not follow the contract. Messages say what was expected.
#[derive(Debug, thiserror::Error)]
pub enum ModelFolderError {
    #[error("{path} is not a model version folder: {reason}")]
    NotAVersionFolder { path: PathBuf, reason: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("scaler: {0}")]
    Scaler(String),
    /// An artifact (`scaler.json`, `label_encoder.json`, ...) is missing, unreadable or wrong.
    #[error("{path}: {reason}")]
    Artifact { path: PathBuf, reason: String },
    /// A model name that cannot name a bucket folder, model server model or InferenceService.
    #[error(
        "model name {name:?} cannot be used: {reason}. A model name is a Kubernetes name: 1 to 63 lowercase \
         letters, digits and '-', starting with a letter and ending with a letter or digit (e.g. \"jukebox\" \
         or \"jukebox-small\"); no '/', '.', '_', capitals or spaces"
    )]
    BadName { name: String, reason: String },
    #[error("{uri:?} is not an S3 location: {reason} (expected s3://<bucket>/<key>[?endpoint=...&defaultRegion=...])")]
    NotS3 { uri: String, reason: String },
}

/// `y_test.json`: the test split's answers, one entry per row of `X_test.parquet`, in its order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestLabels {
    /// Each row's country code.
    pub country: Vec<String>,
    /// Each row's class index in [`LabelEncoder::classes`].
    pub label: Vec<u32>,
}

/// `scaler.json`: min-max scaling to `[0, 1]` per feature, in model input order, with
/// scikit-learn's `MinMaxScaler` rule: `(x - min) / (max - min)`, and for a feature that was
/// constant in training (`max == min`) `x - min`, not a division by zero.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scaler {
    pub features: Vec<String>,
    pub min: Vec<f64>,
    pub max: Vec<f64>,
}

impl Scaler {
    /// Fails when `min` or `max` do not hold one value per feature.
    pub fn check(&self) -> Result<(), ModelFolderError> {
        let n = self.features.len();
        if self.min.len() != n || self.max.len() != n {
            return Err(ModelFolderError::Scaler(format!(
                "{n} features but {} min and {} max values",
                self.min.len(),
                self.max.len()
            )));
        }
        Ok(())
    }

    /// The divisor of feature `i`: its range, or 1 for a constant feature (scikit-learn's rule).
    pub fn range(&self, i: usize) -> f64 {
        let range = self.max[i] - self.min[i];
        if range == 0.0 {
            1.0
        } else {
            range
        }
    }

    /// The scaled value of raw value `x` of feature `i`.
    pub fn scale(&self, i: usize, x: f64) -> f64 {
        (x - self.min[i]) / self.range(i)
    }

    /// Scales one song's raw feature values (in `features` order).
    pub fn transform(&self, raw: &[f64]) -> Vec<f32> {
        raw.iter().enumerate().map(|(i, &x)| self.scale(i, x) as f32).collect()
    }

    /// Scales row-major raw rows in place (`features.len()` values per row).
    pub fn transform_rows(&self, rows: &mut [f32]) {
        for row in rows.chunks_exact_mut(self.features.len().max(1)) {
            for (i, v) in row.iter_mut().enumerate() {
                *v = self.scale(i, *v as f64) as f32;
            }
        }
    }
}

/// `label_encoder.json`: the class names in sorted order; class `i` is `classes[i]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelEncoder {
    pub classes: Vec<String>,
}

/// `models/<name>/<version>/`: where a model version lives in a bucket.
pub fn bucket_prefix(name: &str, version: u64) -> String {
    format!("{BUCKET_MODELS_DIR}/{name}/{version}/")
}

/// `.jukebox-staging/<name>/<attempt>/`: where one save attempt stages its upload.
pub fn staging_prefix(name: &str, attempt: &str) -> String {
    format!("{BUCKET_STAGING_DIR}/{name}/{attempt}/")
}

/// Checks that `name` can name a model: a Kubernetes DNS-1035 label (what an InferenceService
/// name must be), so it is also a safe bucket folder and model server name. The error says what is
/// allowed.
pub fn check_model_name(name: &str) -> Result<(), ModelFolderError> {
    let bad = |reason: String| Err(ModelFolderError::BadName { name: name.to_string(), reason });
    if name.is_empty() {
        return bad("it is empty".into());
    }
    if name.len() > MAX_MODEL_NAME_LEN {
        return bad(format!("it has {} characters", name.len()));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')) {
        return bad(format!("it contains {c:?}"));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return bad("it does not start with a lowercase letter".into());
    }
    if name.ends_with('-') {
        return bad("it ends with '-'".into());
    }
    Ok(())
}

/// A version folder: `<repository>/<name>/<version>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionFolder {
    pub name: String,
    pub version: u64,
    pub dir: PathBuf,
}

impl VersionFolder {
    /// Version `version` of model `name` in `repository`.
    pub fn new(repository: impl AsRef<Path>, name: &str, version: u64) -> VersionFolder {
        VersionFolder { name: name.to_string(), version, dir: repository.as_ref().join(name).join(version.to_string()) }
    }

    /// Reads name and version from a `<root>/<name>/<integer version>` folder holding
    /// [`MODEL_FILE`].
    pub fn identify(dir: &Path) -> Result<VersionFolder, ModelFolderError> {
        let not_model = |reason: String| ModelFolderError::NotAVersionFolder { path: dir.to_path_buf(), reason };
        if !dir.join(MODEL_FILE).is_file() {
            return Err(not_model(format!("it holds no {MODEL_FILE}")));
        }
        let absolute = dir.canonicalize().map_err(|source| ModelFolderError::Io { path: dir.to_path_buf(), source })?;
        let version_part = absolute.file_name().and_then(|s| s.to_str()).unwrap_or_default();
        let version = version_part.parse::<u64>().map_err(|_| {
            not_model(format!(
                "its last folder {version_part:?} is not an integer version (expected <root>/<name>/<version>)"
            ))
        })?;
        let name = absolute
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|s| s.to_str())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| not_model("it has no parent folder naming the model".into()))?;
        Ok(VersionFolder { name: name.to_string(), version, dir: dir.to_path_buf() })
    }

    pub fn model_file(&self) -> PathBuf {
        self.dir.join(MODEL_FILE)
    }
    pub fn artifacts_dir(&self) -> PathBuf {
        self.dir.join(ARTIFACTS_DIR)
    }
    /// A file of [`ARTIFACTS_DIR`], e.g. [`SCALER_FILE`].
    pub fn artifact(&self, file: &str) -> PathBuf {
        self.artifacts_dir().join(file)
    }
    /// Where this version goes in a bucket: [`bucket_prefix`].
    pub fn bucket_prefix(&self) -> String {
        bucket_prefix(&self.name, self.version)
    }

    /// `artifacts/scaler.json`, parsed and checked: one finite min and max per feature, features
    /// named once each.
    pub fn read_scaler(&self) -> Result<Scaler, ModelFolderError> {
        let path = self.artifact(SCALER_FILE);
        let scaler: Scaler = read_json(&path)?;
        let wrong = |reason: String| Err(ModelFolderError::Artifact { path: path.clone(), reason });
        if let Err(e) = scaler.check() {
            return wrong(e.to_string());
        }
        if scaler.features.is_empty() {
            return wrong("it names no feature".into());
        }
        if let Some(i) = scaler.min.iter().chain(&scaler.max).position(|v| !v.is_finite()) {
            let feature = &scaler.features[i % scaler.features.len()];
            return wrong(format!("feature {feature:?} has a min or max that is not a finite number"));
        }
        if let Some(twice) = first_repeated(&scaler.features) {
            return wrong(format!("feature {twice:?} is listed twice"));
        }
        Ok(scaler)
    }

    /// `artifacts/label_encoder.json`, parsed and checked: at least one class, each named once.
    pub fn read_label_encoder(&self) -> Result<LabelEncoder, ModelFolderError> {
        let path = self.artifact(LABEL_ENCODER_FILE);
        let encoder: LabelEncoder = read_json(&path)?;
        let wrong = |reason: String| Err(ModelFolderError::Artifact { path: path.clone(), reason });
        if encoder.classes.is_empty() {
            return wrong("it names no class".into());
        }
        if let Some(twice) = first_repeated(&encoder.classes) {
            return wrong(format!("class {twice:?} is listed twice"));
        }
        Ok(encoder)
    }
}

/// A JSON artifact; the error names the file and says whether it is missing or malformed.
fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ModelFolderError> {
    let artifact = |reason: String| ModelFolderError::Artifact { path: path.to_path_buf(), reason };
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            artifact("it is missing (every version folder holds it: export the model again)".into())
        }
        _ => artifact(format!("cannot read it: {e}")),
    })?;
    serde_json::from_str(&text).map_err(|e| artifact(format!("not the expected JSON: {e}")))
}

fn first_repeated(items: &[String]) -> Option<&String> {
    let mut seen = std::collections::BTreeSet::new();
    items.iter().find(|item| !seen.insert(item.as_str()))
}

/// The versions of one model folder (`<repository>/<name>`): its integer-named subfolders that
/// hold [`MODEL_FILE`], in version order. Other entries are skipped; a missing folder has none.
pub fn versions(model_dir: &Path) -> Result<Versions, ModelFolderError> {
    let io = |source| ModelFolderError::Io { path: model_dir.to_path_buf(), source };
    let entries = match std::fs::read_dir(model_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    };
    let mut versions = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io)?;
        let Some(version) = entry.file_name().to_str().and_then(|n| n.parse::<u64>().ok()) else { continue };
        if entry.path().join(MODEL_FILE).is_file() {
            versions.push((version, entry.path()));
        }
    }
    versions.sort();
    Ok(versions)
}

/// A model's versions: `(version, folder)`, in version order.
pub type Versions = Vec<(u64, PathBuf)>;

/// Every model of a repository with its versions: `(name, [(version, folder)])`, by name.
/// Hidden folders (`.download`, ...) and models without a version are skipped.
pub fn models(repository: &Path) -> Result<Vec<(String, Versions)>, ModelFolderError> {
    let io = |source| ModelFolderError::Io { path: repository.to_path_buf(), source };
    let mut models = Vec::new();
    for entry in std::fs::read_dir(repository).map_err(io)? {
        let entry = entry.map_err(io)?;
        let Some(name) = entry.file_name().to_str().map(String::from) else { continue };
        if name.starts_with('.') || !entry.path().is_dir() {
            continue;
        }
        let found = versions(&entry.path())?;
        if !found.is_empty() {
            models.push((name, found));
        }
    }
    models.sort();
    Ok(models)
}

/// An object or prefix in S3-compatible storage, as the model registry records it:
/// `s3://<bucket>/<key>?endpoint=<url>&defaultRegion=<region>` (both query parts optional).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    /// Key or prefix, without a leading `/`.
    pub key: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
}

impl S3Location {
    /// `key` in `bucket`, with the endpoint and region a client needs to reach it.
    pub fn new(bucket: &str, key: &str, endpoint: Option<&str>, region: Option<&str>) -> S3Location {
        S3Location {
            bucket: bucket.to_string(),
            key: key.trim_start_matches('/').to_string(),
            endpoint: endpoint.map(String::from),
            region: region.map(String::from),
        }
    }

    /// The last part of the key when it is an integer: the version folder a model server serves
    /// this location as (`models/jukebox/2` -> 2).
    pub fn version_folder(&self) -> Option<u64> {
        version_folder_of(&self.key)
    }
}

/// The version folder a key or storage path names: its last part when that is an integer
/// (`models/jukebox/2` and `models/jukebox/2/` -> 2).
pub fn version_folder_of(key: &str) -> Option<u64> {
    key.trim_end_matches('/').rsplit('/').next().and_then(|v| v.parse().ok())
}

/// `s3://bucket/key` and, when known, `?endpoint=...&defaultRegion=...`, the form the Kubeflow
/// Python client's `s3_uri_from` writes (values as they are, unescaped).
impl fmt::Display for S3Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)?;
        let query: Vec<String> = [("endpoint", &self.endpoint), ("defaultRegion", &self.region)]
            .into_iter()
            .filter_map(|(name, value)| value.as_ref().map(|v| format!("{name}={v}")))
            .collect();
        if !query.is_empty() {
            write!(f, "?{}", query.join("&"))?;
        }
        Ok(())
    }
}

impl std::str::FromStr for S3Location {
    type Err = ModelFolderError;

    fn from_str(uri: &str) -> Result<S3Location, ModelFolderError> {
        let not_s3 = |reason: &str| ModelFolderError::NotS3 { uri: uri.to_string(), reason: reason.to_string() };
        let rest = uri.strip_prefix("s3://").ok_or_else(|| not_s3("it does not start with s3://"))?;
        let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (bucket, key) = location.split_once('/').unwrap_or((location, ""));
        if bucket.is_empty() {
            return Err(not_s3("it names no bucket"));
        }
        let value = |name: &str| {
            query
                .split('&')
                .find_map(|pair| pair.split_once('=').filter(|(k, _)| *k == name).map(|(_, v)| v.to_string()))
        };
        Ok(S3Location {
            bucket: bucket.to_string(),
            key: key.to_string(),
            endpoint: value("endpoint"),
            region: value("defaultRegion"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_constant_feature_is_shifted_not_divided() {
        let scaler = Scaler { features: vec!["a".into(), "b".into()], min: vec![0.0, 5.0], max: vec![10.0, 5.0] };
        assert_eq!(scaler.transform(&[5.0, 7.0]), vec![0.5, 2.0]);
        let mut rows = vec![10.0, 5.0, 0.0, 4.0];
        scaler.transform_rows(&mut rows);
        assert_eq!(rows, vec![1.0, 0.0, 0.0, -1.0]);
        assert!(Scaler { min: vec![0.0], ..scaler }.check().is_err());
    }

    #[test]
    fn test_labels_are_two_parallel_lists() {
        let labels = TestLabels { country: vec!["AR".into(), "JP".into()], label: vec![0, 5] };
        let json = serde_json::to_string(&labels).unwrap();
        assert_eq!(json, r#"{"country":["AR","JP"],"label":[0,5]}"#);
        assert_eq!(serde_json::from_str::<TestLabels>(&json).unwrap(), labels);
    }

    #[test]
    fn s3_locations_format_and_parse() {
        let location = S3Location::new("models", "models/jukebox/2", Some("http://127.0.0.1:9000"), Some("us-east-1"));
        let uri = location.to_string();
        assert_eq!(uri, "s3://models/models/jukebox/2?endpoint=http://127.0.0.1:9000&defaultRegion=us-east-1");
        assert_eq!(uri.parse::<S3Location>().unwrap(), location);
        assert_eq!(location.version_folder(), Some(2));
        let bare: S3Location = "s3://bucket/prefix/".parse().unwrap();
        assert_eq!((bare.key.as_str(), bare.endpoint.as_deref(), bare.version_folder()), ("prefix/", None, None));
        assert_eq!(bare.to_string(), "s3://bucket/prefix/");
        for bad in ["http://x/y", "s3:///key"] {
            assert!(bad.parse::<S3Location>().is_err(), "{bad}");
        }
    }

    #[test]
    fn model_names_are_kubernetes_names() {
        for good in ["jukebox", "jukebox-small", "a", "m2", &"a".repeat(63)] {
            assert!(check_model_name(good).is_ok(), "{good}");
        }
        for (bad, says) in [
            ("x/../jukebox", "contains '/'"),
            ("..", "contains '.'"),
            ("Jukebox", "contains 'J'"),
            ("my model", "contains ' '"),
            ("juke_box", "contains '_'"),
            ("", "empty"),
            ("1jukebox", "start with a lowercase letter"),
            ("jukebox-", "ends with '-'"),
            (&"a".repeat(64), "64 characters"),
        ] {
            let message = check_model_name(bad).unwrap_err().to_string();
            assert!(message.contains(says) && message.contains("lowercase letters, digits and '-'"), "{message}");
        }
    }

    #[test]
    fn artifacts_are_read_and_checked() {
        let root = std::env::temp_dir().join(format!("jukebox-artifacts-{}", std::process::id()));
        let folder = VersionFolder::new(&root, "jukebox", 1);
        std::fs::create_dir_all(folder.artifacts_dir()).unwrap();
        let missing = folder.read_scaler().unwrap_err().to_string();
        assert!(missing.contains("scaler.json") && missing.contains("missing"), "{missing}");
        let write = |file: &str, text: &str| std::fs::write(folder.artifact(file), text).unwrap();
        write(SCALER_FILE, r#"{"features":["a","b"],"min":[0,1],"max":[1]}"#);
        assert!(folder.read_scaler().unwrap_err().to_string().contains("2 features but 2 min and 1 max"));
        write(SCALER_FILE, r#"{"features":["a","a"],"min":[0,1],"max":[1,2]}"#);
        assert!(folder.read_scaler().unwrap_err().to_string().contains("\"a\" is listed twice"));
        write(SCALER_FILE, r#"{"features":["a","b"],"min":[0,1],"max":[1,2]}"#);
        assert_eq!(folder.read_scaler().unwrap().features, ["a", "b"]);
        write(LABEL_ENCODER_FILE, r#"{"classes":[]}"#);
        assert!(folder.read_label_encoder().unwrap_err().to_string().contains("no class"));
        write(LABEL_ENCODER_FILE, "not json");
        assert!(folder.read_label_encoder().unwrap_err().to_string().contains("not the expected JSON"));
        write(LABEL_ENCODER_FILE, r#"{"classes":["AR","BR"]}"#);
        assert_eq!(folder.read_label_encoder().unwrap().classes, ["AR", "BR"]);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn versions_are_integer_folders_holding_a_model() {
        let root = std::env::temp_dir().join(format!("jukebox-model-folder-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for (folder, with_model) in [("10", true), ("2", true), ("3", false), ("latest", true)] {
            let dir = root.join("jukebox").join(folder);
            std::fs::create_dir_all(&dir).unwrap();
            if with_model {
                std::fs::write(dir.join(MODEL_FILE), b"onnx").unwrap();
            }
        }
        std::fs::create_dir_all(root.join(".download/1")).unwrap();
        let found = models(&root).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].1.iter().map(|(v, _)| *v).collect::<Vec<_>>(), vec![2, 10]);
        let folder = VersionFolder::identify(&root.join("jukebox/10")).unwrap();
        assert_eq!(
            (folder.name.as_str(), folder.version, folder.bucket_prefix()),
            ("jukebox", 10, "models/jukebox/10/".to_string())
        );
        assert!(VersionFolder::identify(&root.join("jukebox/3")).is_err());
        assert!(VersionFolder::identify(&root.join("jukebox/latest"))
            .unwrap_err()
            .to_string()
            .contains("not an integer version"));
        assert!(versions(&root.join("absent")).unwrap().is_empty());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
