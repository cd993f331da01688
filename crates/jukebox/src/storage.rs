//! Stage 3: upload and download model folders to S3-compatible storage.
//!
//! The same code talks to MinIO on a cluster, to `moto_server`, and to the embedded server that
//! `jukebox up` starts. Connection settings come from the variables an OpenShift AI *data
//! connection* injects into a workbench ([`StorageConfig::from_env`]):
//!
//! | variable | meaning |
//! |---|---|
//! | `AWS_S3_ENDPOINT` | `http://127.0.0.1:9000`, `https://minio.example:9000`, ... |
//! | `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` | credentials |
//! | `AWS_DEFAULT_REGION` | `us-east-1` if unset |
//! | `AWS_S3_BUCKET` | the bucket models go to |
//!
//! ```no_run
//! use jukebox::storage::{Storage, StorageConfig};
//! let storage = Storage::connect(StorageConfig::from_env()?)?;     // creates the bucket if missing
//! let report = storage.upload_dir("models/jukebox/1", None)?;       // -> models/jukebox/1/ in the bucket
//! println!("{report}");                                            // s3://models/models/jukebox/1/ ...
//! storage.download_prefix(&report.prefix, "/tmp/jukebox-1")?;
//! # Ok::<(), jukebox::storage::StorageError>(())
//! ```
//!
//! [`Storage::upload_dir`] sends `model.onnx` last, after every artifact: a model server watching
//! the bucket (OpenVINO Model Server, `jukebox up`'s) loads a version folder once its model file
//! exists, so it never sees a version whose artifacts are still on their way. (Registering a model
//! folder goes further and stages the whole upload outside `models/` first: see
//! `registry::ModelRegistry::upload_and_register`.)
//!
//! Every upload is checked after the fact: a `HEAD` must report the local size, and the object's
//! checksum must match the local file's MD5 — read from the ETag when the server gives a plain MD5
//! ETag (single-part uploads on S3, MinIO, moto, s3s), otherwise by downloading the object again
//! and hashing it. Downloads go to a temporary file next to the destination and are renamed into
//! place only when complete and verified, so a failed download never leaves a truncated file.
//!
//! Notebook code is blocking, while the S3 client ([`rust-s3`](https://docs.rs/rust-s3)) is async:
//! [`Storage`] owns a small single-threaded tokio runtime and exposes blocking methods. Do not
//! call them from inside another tokio runtime.

use std::fmt;
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use crate::display::{Cell, Table};
use jukebox_protocol::env;
use jukebox_protocol::model_folder::{ModelFolderError, S3Location, VersionFolder, BUCKET_MODELS_DIR, MODEL_FILE};
use md5::{Digest, Md5};
use s3::creds::Credentials;
use s3::request::Request as _;
use s3::{Bucket, BucketConfiguration, Region};

pub mod repository;

/// Objects at least this large go up as multipart uploads (rust-s3 splits them in 8 MiB parts).
const MULTIPART_THRESHOLD: u64 = 8 * 1024 * 1024;
/// Upper bound for one request, so a stalled server fails the call instead of hanging a notebook.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Where models are stored: an S3 endpoint, credentials and a bucket.
#[derive(Clone, PartialEq, Eq)]
pub struct StorageConfig {
    /// Base URL of the S3 API, e.g. `http://127.0.0.1:9000` (path-style addressing is used).
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    /// Signing region; `us-east-1` for MinIO and the embedded server.
    pub region: String,
    pub bucket: String,
}

impl fmt::Debug for StorageConfig {
    // Keeps the secret out of logs and notebook outputs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorageConfig")
            .field("endpoint", &self.endpoint)
            .field("access_key", &self.access_key)
            .field("secret_key", &"<hidden>")
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .finish()
    }
}

/// The data-connection variable names, in the order [`StorageConfig::from_env`] reads them.
/// Region used when `AWS_DEFAULT_REGION` is unset or empty.
pub const DEFAULT_REGION: &str = "us-east-1";

impl StorageConfig {
    /// Explicit settings (no environment involved).
    pub fn new(
        endpoint: impl Into<String>,
        access_key: impl Into<String>,
        secret_key: impl Into<String>,
        region: impl Into<String>,
        bucket: impl Into<String>,
    ) -> Self {
        Self {
            endpoint: endpoint.into(),
            access_key: access_key.into(),
            secret_key: secret_key.into(),
            region: region.into(),
            bucket: bucket.into(),
        }
    }

    /// Reads the OpenShift AI data-connection variables. A missing or empty one is an error
    /// naming it; only `AWS_DEFAULT_REGION` is optional (default `us-east-1`).
    pub fn from_env() -> Result<Self, StorageError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) over any variable source (a map in tests, a `.env` file).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, StorageError> {
        let get = |name: &'static str| lookup(name).filter(|v| !v.trim().is_empty()).map(|v| v.trim().to_string());
        let required = |name: &'static str| get(name).ok_or(StorageError::MissingEnv { variable: name });
        Ok(Self {
            endpoint: required(env::AWS_S3_ENDPOINT)?,
            access_key: required(env::AWS_ACCESS_KEY_ID)?,
            secret_key: required(env::AWS_SECRET_ACCESS_KEY)?,
            region: get(env::AWS_DEFAULT_REGION).unwrap_or_else(|| DEFAULT_REGION.to_string()),
            bucket: required(env::AWS_S3_BUCKET)?,
        })
    }

    /// `s3://<bucket>/<prefix>`.
    pub fn s3_uri(&self, prefix: &str) -> String {
        format!("s3://{}/{}", self.bucket, prefix.trim_start_matches('/'))
    }

    /// The URI the Kubeflow Model Registry Python client records for a model stored at
    /// `prefix`: `s3://<bucket>/<prefix>?endpoint=<endpoint>&defaultRegion=<region>` (trailing
    /// slash of the prefix dropped, as `model_registry.utils.s3_uri_from` is given it).
    pub fn registry_uri(&self, prefix: &str) -> String {
        S3Location::new(&self.bucket, prefix.trim_matches('/'), Some(&self.endpoint), Some(&self.region)).to_string()
    }
}

/// What went wrong talking to storage. Messages name the variable, file, object or endpoint at
/// fault and, for credentials, say so plainly.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error(
        "the environment variable {variable} is not set (it comes from the data connection; `jukebox up` prints it)"
    )]
    MissingEnv { variable: &'static str },
    #[error("invalid S3 endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint { endpoint: String, reason: String },
    #[error("cannot reach the S3 endpoint {endpoint}: {detail} (is the server running? `jukebox up` starts one)")]
    Unreachable { endpoint: String, detail: String },
    #[error("the S3 server at {endpoint} refused the credentials of access key {access_key:?} ({code}): check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")]
    WrongCredentials { endpoint: String, access_key: String, code: String },
    #[error("S3 {operation} {target} failed with HTTP {status}: {message}")]
    Http { operation: &'static str, target: String, status: u16, message: String },
    #[error("S3 {operation} {target} failed: {detail}")]
    Client { operation: &'static str, target: String, detail: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a model folder: {reason}")]
    NotAModelFolder { path: PathBuf, reason: String },
    #[error("object key {key:?} cannot be stored under {dir}: {reason}")]
    UnsafeKey { key: String, dir: PathBuf, reason: String },
    #[error("verification of s3://{bucket}/{key} failed: {reason}; the stored copy is not trustworthy")]
    VerificationFailed { bucket: String, key: String, reason: String },
    #[error("nothing is stored under s3://{bucket}/{prefix}")]
    EmptyPrefix { bucket: String, prefix: String },
    #[error("cannot start the I/O runtime for S3 transfers: {0}")]
    Runtime(std::io::Error),
    /// A model location that is not `s3://bucket/prefix[?endpoint=...]`.
    #[error(transparent)]
    Location(ModelFolderError),
    /// A version folder without its model file ([`repository::download_repository`]).
    #[error(
        "{location} holds no {MODEL_FILE}: its upload is incomplete ({MODEL_FILE} is written last); wait for it, or \
         save the model again"
    )]
    IncompleteVersion { location: String },
}

impl From<ModelFolderError> for StorageError {
    fn from(error: ModelFolderError) -> Self {
        match error {
            ModelFolderError::Io { path, source } => StorageError::Io { path, source },
            ModelFolderError::NotAVersionFolder { path, reason } => StorageError::NotAModelFolder { path, reason },
            other => StorageError::NotAModelFolder { path: PathBuf::new(), reason: other.to_string() },
        }
    }
}

impl StorageError {
    fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}

/// One object in a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub key: String,
    pub size: u64,
    /// The ETag without quotes, when the server lists one (s3s-fs lists none).
    pub etag: Option<String>,
}

/// How a transferred object was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// The server's ETag equals the MD5 of the local bytes.
    EtagIsMd5,
    /// The object was read back and its MD5 equals the local one (multipart or opaque ETags).
    ReadBack,
    /// Downloaded: the bytes received hash to the MD5 the server's ETag names.
    DownloadMatchesEtag,
    /// Downloaded: the size matches, but the server gave no MD5 to compare with.
    SizeOnly,
}

impl fmt::Display for Verification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::EtagIsMd5 => "size + ETag = MD5",
            Self::ReadBack => "size + read back, MD5 equal",
            Self::DownloadMatchesEtag => "size + MD5 = ETag",
            Self::SizeOnly => "size",
        })
    }
}

/// One file moved by [`Storage::upload_dir`] or [`Storage::download_prefix`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferredObject {
    pub key: String,
    pub local_path: PathBuf,
    pub size: u64,
    /// Hex MD5 of the bytes.
    pub md5: String,
    pub verification: Verification,
}

/// Which way a [`TransferReport`] went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Upload,
    Download,
}

/// What an upload or download did: every object with its size and check, and where it lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferReport {
    pub direction: Direction,
    pub endpoint: String,
    pub bucket: String,
    /// Key prefix, ending in `/`.
    pub prefix: String,
    /// `s3://<bucket>/<prefix>`.
    pub uri: String,
    pub local_dir: PathBuf,
    /// Sorted by key.
    pub objects: Vec<TransferredObject>,
}

impl TransferReport {
    pub fn total_bytes(&self) -> u64 {
        self.objects.iter().map(|o| o.size).sum()
    }
}

impl TransferReport {
    /// What was uploaded or downloaded, object by object: key, bytes, MD5 and how it was checked,
    /// under a caption saying where.
    pub fn table(&self) -> Table {
        let verb = match self.direction {
            Direction::Upload => "Uploaded to",
            Direction::Download => "Downloaded from",
        };
        let rows = self
            .objects
            .iter()
            .map(|o| {
                let checked = o.verification.to_string();
                vec![o.key.as_str().into(), Cell::Number(o.size as f64), o.md5.as_str().into(), checked.into()]
            })
            .collect();
        let columns = ["key", "bytes", "MD5", "checked"].map(String::from).to_vec();
        Table::new(columns, rows).with_caption(format!(
            "{verb} {} ({}): {} objects, {} bytes",
            self.uri,
            self.endpoint,
            self.objects.len(),
            self.total_bytes()
        ))
    }
}

crate::display::shown_as_table!(TransferReport);

impl fmt::Display for TransferReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = match self.direction {
            Direction::Upload => "uploaded to",
            Direction::Download => "downloaded from",
        };
        writeln!(
            f,
            "{} objects ({} bytes) {verb} {} ({})",
            self.objects.len(),
            self.total_bytes(),
            self.uri,
            self.endpoint
        )?;
        let width = self.objects.iter().map(|o| o.key.len()).max().unwrap_or(0);
        for o in &self.objects {
            writeln!(f, "  {:<width$}  {:>12}  {}  {}", o.key, o.size, o.md5, o.verification)?;
        }
        Ok(())
    }
}

/// Normalises a key prefix: no leading `/`, exactly one trailing `/` (empty stays empty).
fn normalize_prefix(prefix: &str) -> String {
    let trimmed = prefix.trim_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("{trimmed}/")
    }
}

/// A connection to one bucket. Cheap calls, blocking; see the module docs.
pub struct Storage {
    config: StorageConfig,
    bucket: Box<Bucket>,
    runtime: tokio::runtime::Runtime,
}

impl fmt::Debug for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Storage").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Storage {
    /// Connects and makes sure the bucket exists (creating it if missing). Wrong credentials and
    /// an unreachable endpoint are reported here, before any transfer starts.
    pub fn connect(config: StorageConfig) -> Result<Self, StorageError> {
        let storage = Self::open(config)?;
        storage.ensure_bucket()?;
        Ok(storage)
    }

    /// Like [`connect`](Self::connect) but without touching the network.
    pub fn open(config: StorageConfig) -> Result<Self, StorageError> {
        let endpoint = config.endpoint.trim_end_matches('/').to_string();
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(StorageError::InvalidEndpoint {
                endpoint: config.endpoint.clone(),
                reason: "it must start with http:// or https://".into(),
            });
        }
        let config = StorageConfig { endpoint: endpoint.clone(), ..config };
        let credentials = Credentials::new(Some(&config.access_key), Some(&config.secret_key), None, None, None)
            .map_err(|e| StorageError::Client {
                operation: "credentials",
                target: config.access_key.clone(),
                detail: e.to_string(),
            })?;
        let region = Region::Custom { region: config.region.clone(), endpoint };
        let bucket = Bucket::new(&config.bucket, region, credentials)
            .and_then(|b| b.with_request_timeout(REQUEST_TIMEOUT))
            .map_err(|e| StorageError::InvalidEndpoint { endpoint: config.endpoint.clone(), reason: e.to_string() })?
            .with_path_style();
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(StorageError::Runtime)?;
        Ok(Self { config, bucket, runtime })
    }

    pub fn config(&self) -> &StorageConfig {
        &self.config
    }

    /// Creates the bucket unless it exists. Returns `true` when it was created.
    ///
    /// Probes with a one-key listing (needs no account-wide `ListBuckets` permission), then
    /// creates; `BucketAlreadyOwnedByYou` / `BucketAlreadyExists` from a concurrent creator count
    /// as success. No `LocationConstraint` is sent for us-east-1: S3 and moto reject one there.
    pub fn ensure_bucket(&self) -> Result<bool, StorageError> {
        let bucket_target = format!("bucket {}", self.config.bucket);
        let probe = self.runtime.block_on(self.bucket.list_page(String::new(), None, None, None, Some(1)));
        match probe {
            Ok(_) => return Ok(false),
            Err(s3::error::S3Error::HttpFailWithBody(404, _)) => {}
            Err(e) => return Err(self.classify("list", &bucket_target, e)),
        }
        let mut bucket_config = BucketConfiguration::private();
        if self.config.region != DEFAULT_REGION {
            bucket_config.set_location_constraint(self.bucket.region());
        }
        let command = s3::command::Command::CreateBucket { config: bucket_config };
        let created = self.runtime.block_on(async {
            let request = s3::request::tokio_backend::ReqwestRequest::new(&self.bucket, "", command).await?;
            request.response_data(false).await
        });
        match created {
            Ok(_) => Ok(true),
            Err(s3::error::S3Error::HttpFailWithBody(409, body))
                if body.contains("BucketAlreadyOwnedByYou") || body.contains("BucketAlreadyExists") =>
            {
                Ok(false)
            }
            Err(e) => Err(self.classify("create", &bucket_target, e)),
        }
    }

    /// Every object whose key starts with `prefix` (all pages), sorted by key.
    pub fn list(&self, prefix: &str) -> Result<Vec<StoredObject>, StorageError> {
        let prefix = prefix.trim_start_matches('/').to_string();
        let pages = self
            .runtime
            .block_on(self.bucket.list(prefix.clone(), None))
            .map_err(|e| self.classify("list", &self.config.s3_uri(&prefix), e))?;
        let mut objects: Vec<StoredObject> = pages
            .into_iter()
            .flat_map(|page| page.contents)
            .map(|o| StoredObject { key: o.key, size: o.size, etag: o.e_tag.map(|t| t.trim_matches('"').to_string()) })
            .collect();
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    /// Deletes the object `key` (deleting a missing key succeeds, as on S3).
    pub fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.runtime
            .block_on(self.bucket.delete_object(key))
            .map(|_| ())
            .map_err(|e| self.classify("DELETE", &self.config.s3_uri(key), e))
    }

    /// Deletes every object under `prefix` (not empty); returns how many there were.
    pub fn remove_prefix(&self, prefix: &str) -> Result<usize, StorageError> {
        let prefix = normalize_prefix(prefix);
        if prefix.is_empty() {
            return Err(StorageError::UnsafeKey {
                key: prefix,
                dir: PathBuf::new(),
                reason: "remove_prefix removes one folder, never a whole bucket".into(),
            });
        }
        let objects = self.list(&prefix)?;
        for object in &objects {
            self.delete(&object.key)?;
        }
        Ok(objects.len())
    }

    /// The integer version folders of model `name` that hold at least one object in the bucket
    /// (`models/<name>/<N>/...`), sorted.
    pub fn version_folders(&self, name: &str) -> Result<Vec<u64>, StorageError> {
        let prefix = format!("{BUCKET_MODELS_DIR}/{name}/");
        let mut folders: Vec<u64> = self
            .list(&prefix)?
            .iter()
            .filter_map(|o| o.key[prefix.len()..].split_once('/').and_then(|(folder, _)| folder.parse().ok()))
            .collect();
        folders.sort_unstable();
        folders.dedup();
        Ok(folders)
    }

    /// Uploads every file under `local_dir` (recursively) to `prefix`, or, when `prefix` is
    /// `None`, to `models/<name>/<version>/` read from a `<root>/<name>/<version>` model folder.
    /// `model.onnx` goes last. Each object is verified after upload (see the module docs).
    pub fn upload_dir(
        &self,
        local_dir: impl AsRef<Path>,
        prefix: Option<&str>,
    ) -> Result<TransferReport, StorageError> {
        let local_dir = local_dir.as_ref();
        let prefix = match prefix {
            Some(p) => normalize_prefix(p),
            None => VersionFolder::identify(local_dir)?.bucket_prefix(),
        };
        let mut files = files_under(local_dir)?;
        // The model file last: whoever sees it may take the folder as complete.
        files.sort_by_key(|(relative, _)| relative == MODEL_FILE);
        if files.is_empty() {
            return Err(StorageError::NotAModelFolder {
                path: local_dir.to_path_buf(),
                reason: "it holds no files".into(),
            });
        }
        let mut objects = Vec::with_capacity(files.len());
        for (relative, path) in files {
            let key = format!("{prefix}{relative}");
            objects.push(self.upload_file(&path, &key)?);
        }
        Ok(self.report(Direction::Upload, prefix, local_dir, objects))
    }

    /// Uploads one file to `key` and verifies it.
    pub fn upload_file(&self, path: &Path, key: &str) -> Result<TransferredObject, StorageError> {
        let size = std::fs::metadata(path).map_err(StorageError::io(path))?.len();
        let md5 = md5_of_file(path)?;
        let target = self.config.s3_uri(key);
        if size < MULTIPART_THRESHOLD {
            let bytes = std::fs::read(path).map_err(StorageError::io(path))?;
            self.runtime.block_on(self.bucket.put_object(key, &bytes)).map_err(|e| self.classify("PUT", &target, e))?;
        } else {
            self.runtime
                .block_on(async {
                    let mut file = tokio::fs::File::open(path).await?;
                    self.bucket.put_object_stream(&mut file, key).await
                })
                .map_err(|e| self.classify("PUT", &target, e))?;
        }
        let verification = self.verify_upload(key, size, &md5)?;
        Ok(TransferredObject { key: key.to_string(), local_path: path.to_path_buf(), size, md5, verification })
    }

    fn verify_upload(&self, key: &str, size: u64, md5: &str) -> Result<Verification, StorageError> {
        let failed = |reason: String| StorageError::VerificationFailed {
            bucket: self.config.bucket.clone(),
            key: key.to_string(),
            reason,
        };
        let (head, _status) = self
            .runtime
            .block_on(self.bucket.head_object(key))
            .map_err(|e| self.classify("HEAD", &self.config.s3_uri(key), e))?;
        let stored_size = head.content_length.and_then(|n| u64::try_from(n).ok());
        if stored_size != Some(size) {
            return Err(failed(format!("the server reports {stored_size:?} bytes, the local file has {size}")));
        }
        match head.e_tag.as_deref().map(|t| t.trim_matches('"').to_ascii_lowercase()) {
            Some(etag) if is_md5_hex(&etag) => {
                if etag == md5 {
                    Ok(Verification::EtagIsMd5)
                } else {
                    Err(failed(format!("ETag {etag} differs from the local MD5 {md5}")))
                }
            }
            // Multipart (`<hash>-<parts>`), encrypted or missing ETags say nothing about content.
            _ => {
                let stored = self.fetch_bytes(key)?;
                let stored_md5 = hex::encode(Md5::digest(&stored));
                if stored_md5 == md5 {
                    Ok(Verification::ReadBack)
                } else {
                    Err(failed(format!("read back MD5 {stored_md5} differs from the local MD5 {md5}")))
                }
            }
        }
    }

    fn fetch_bytes(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        let response = self
            .runtime
            .block_on(self.bucket.get_object(key))
            .map_err(|e| self.classify("GET", &self.config.s3_uri(key), e))?;
        Ok(response.bytes().to_vec())
    }

    /// Downloads every object under `prefix` into `local_dir`, keeping the key structure below
    /// the prefix. Each file is written to a temporary name, verified (size, and MD5 when the
    /// ETag is one) and renamed into place, so readers never see a partial file.
    pub fn download_prefix(&self, prefix: &str, local_dir: impl AsRef<Path>) -> Result<TransferReport, StorageError> {
        let local_dir = local_dir.as_ref();
        let prefix = normalize_prefix(prefix);
        let listed: Vec<StoredObject> = self.list(&prefix)?.into_iter().filter(|o| !o.key.ends_with('/')).collect();
        if listed.is_empty() {
            return Err(StorageError::EmptyPrefix { bucket: self.config.bucket.clone(), prefix });
        }
        let mut objects = Vec::with_capacity(listed.len());
        for object in listed {
            let relative = &object.key[prefix.len()..];
            let dest = safe_join(local_dir, relative, &object.key)?;
            objects.push(self.download_object(&object, &dest)?);
        }
        Ok(self.report(Direction::Download, prefix, local_dir, objects))
    }

    fn download_object(&self, object: &StoredObject, dest: &Path) -> Result<TransferredObject, StorageError> {
        let key = &object.key;
        let failed = |reason: String| StorageError::VerificationFailed {
            bucket: self.config.bucket.clone(),
            key: key.clone(),
            reason,
        };
        let parent = dest.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(StorageError::io(parent))?;
        let bytes = self.fetch_bytes(key)?;
        if bytes.len() as u64 != object.size {
            return Err(failed(format!("received {} bytes, the listing says {}", bytes.len(), object.size)));
        }
        let md5 = hex::encode(Md5::digest(&bytes));
        // Listings of some servers (s3s-fs) carry no ETag: ask for it.
        let etag = match &object.etag {
            Some(etag) => Some(etag.to_ascii_lowercase()),
            None => self
                .runtime
                .block_on(self.bucket.head_object(key))
                .map_err(|e| self.classify("HEAD", &self.config.s3_uri(key), e))?
                .0
                .e_tag
                .map(|t| t.trim_matches('"').to_ascii_lowercase()),
        };
        let verification = match etag {
            Some(etag) if is_md5_hex(&etag) => {
                if etag != md5 {
                    return Err(failed(format!("received bytes hash to {md5}, the ETag says {etag}")));
                }
                Verification::DownloadMatchesEtag
            }
            _ => Verification::SizeOnly,
        };
        let mut temp = tempfile::Builder::new()
            .prefix(".jukebox-download-")
            .tempfile_in(parent)
            .map_err(StorageError::io(parent))?;
        std::io::Write::write_all(&mut temp, &bytes).map_err(StorageError::io(temp.path()))?;
        temp.as_file().sync_all().map_err(StorageError::io(temp.path()))?;
        temp.persist(dest).map_err(|e| StorageError::Io { path: dest.to_path_buf(), source: e.error })?;
        Ok(TransferredObject { key: key.clone(), local_path: dest.to_path_buf(), size: object.size, md5, verification })
    }

    fn report(
        &self,
        direction: Direction,
        prefix: String,
        local_dir: &Path,
        mut objects: Vec<TransferredObject>,
    ) -> TransferReport {
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        TransferReport {
            direction,
            endpoint: self.config.endpoint.clone(),
            bucket: self.config.bucket.clone(),
            uri: self.config.s3_uri(&prefix),
            prefix,
            local_dir: local_dir.to_path_buf(),
            objects,
        }
    }

    /// Turns a client error into one that says what to do about it.
    fn classify(&self, operation: &'static str, target: &str, error: s3::error::S3Error) -> StorageError {
        use s3::error::S3Error as E;
        match error {
            E::HttpFailWithBody(status, body) => {
                let code = xml_field(&body, "Code").unwrap_or_default();
                let credential_codes =
                    ["InvalidAccessKeyId", "SignatureDoesNotMatch", "NotSignedUp", "InvalidClientTokenId"];
                if status == 403 && (credential_codes.contains(&code.as_str()) || code.is_empty()) {
                    return StorageError::WrongCredentials {
                        endpoint: self.config.endpoint.clone(),
                        access_key: self.config.access_key.clone(),
                        code: if code.is_empty() { "HTTP 403".into() } else { code },
                    };
                }
                let message = match (code.is_empty(), xml_field(&body, "Message")) {
                    (false, Some(message)) => format!("{code}: {message}"),
                    (false, None) => code,
                    (true, _) => body.chars().take(300).collect(),
                };
                StorageError::Http { operation, target: target.to_string(), status, message }
            }
            E::Reqwest(e) if e.is_connect() || e.is_timeout() => {
                let mut detail = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(cause) = source {
                    detail = format!("{detail}: {cause}");
                    source = cause.source();
                }
                StorageError::Unreachable { endpoint: self.config.endpoint.clone(), detail }
            }
            other => StorageError::Client { operation, target: target.to_string(), detail: other.to_string() },
        }
    }
}

/// The text of the first `<field>...</field>` in an S3 XML error body.
fn xml_field(body: &str, field: &str) -> Option<String> {
    let open = format!("<{field}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&format!("</{field}>"))? + start;
    Some(body[start..end].trim().to_string())
}

fn is_md5_hex(etag: &str) -> bool {
    etag.len() == 32 && etag.bytes().all(|b| b.is_ascii_hexdigit())
}

fn md5_of_file(path: &Path) -> Result<String, StorageError> {
    let mut file = std::fs::File::open(path).map_err(StorageError::io(path))?;
    let mut hasher = Md5::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buffer).map_err(StorageError::io(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Every regular file below `dir` as (key suffix with `/` separators, path), sorted.
fn files_under(dir: &Path) -> Result<Vec<(String, PathBuf)>, StorageError> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries = std::fs::read_dir(&current).map_err(StorageError::io(&current))?;
        for entry in entries {
            let entry = entry.map_err(StorageError::io(&current))?;
            let path = entry.path();
            // Follows symlinks: a linked artifact is uploaded as the file it points to.
            let meta = std::fs::metadata(&path).map_err(StorageError::io(&path))?;
            if meta.is_dir() {
                pending.push(path);
            } else if meta.is_file() {
                let relative = path.strip_prefix(dir).expect("walked below dir");
                let parts: Option<Vec<&str>> = relative.components().map(|c| c.as_os_str().to_str()).collect();
                let key = parts.ok_or_else(|| StorageError::NotAModelFolder {
                    path: path.clone(),
                    reason: "its name is not valid UTF-8, which S3 keys require".into(),
                })?;
                out.push((key.join("/"), path));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// `dir/relative` for a key's remainder, refusing anything that would land outside `dir`.
fn safe_join(dir: &Path, relative: &str, key: &str) -> Result<PathBuf, StorageError> {
    let unsafe_key =
        |reason: &str| StorageError::UnsafeKey { key: key.to_string(), dir: dir.to_path_buf(), reason: reason.into() };
    if relative.is_empty() {
        return Err(unsafe_key("it names the prefix itself, not a file below it"));
    }
    let path = Path::new(relative);
    if path.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(unsafe_key("it contains '..', '.' or an absolute path"));
    }
    Ok(dir.join(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn config_from_data_connection_variables_and_a_missing_one_is_named() {
        let complete = [
            (env::AWS_S3_ENDPOINT, "http://127.0.0.1:9000"),
            (env::AWS_ACCESS_KEY_ID, "jukebox"),
            (env::AWS_SECRET_ACCESS_KEY, "jukebox-secret"),
            (env::AWS_S3_BUCKET, "models"),
        ];
        let config = StorageConfig::from_lookup(vars(&complete)).unwrap();
        assert_eq!(
            config,
            StorageConfig::new("http://127.0.0.1:9000", "jukebox", "jukebox-secret", "us-east-1", "models")
        );
        assert!(!format!("{config:?}").contains("jukebox-secret"), "the secret leaked into Debug output");
        for (missing, _) in complete {
            let rest: Vec<(&str, &str)> = complete.iter().copied().filter(|(name, _)| *name != missing).collect();
            let error = StorageConfig::from_lookup(vars(&rest)).unwrap_err();
            assert!(error.to_string().contains(missing), "{error}");
        }
    }

    #[test]
    fn uris_match_the_python_registry_client() {
        let config = StorageConfig::new("http://127.0.0.1:9000", "a", "s", "us-east-1", "models");
        assert_eq!(config.s3_uri("models/jukebox/1/"), "s3://models/models/jukebox/1/");
        assert_eq!(
            config.registry_uri("models/jukebox/1/"),
            "s3://models/models/jukebox/1?endpoint=http://127.0.0.1:9000&defaultRegion=us-east-1"
        );
    }

    #[test]
    fn keys_cannot_escape_the_download_folder() {
        let dir = Path::new("/tmp/out");
        assert_eq!(safe_join(dir, "artifacts/a.json", "k").unwrap(), dir.join("artifacts/a.json"));
        assert!(safe_join(dir, "../etc/passwd", "k").is_err());
        assert!(safe_join(dir, "/etc/passwd", "k").is_err());
        assert!(safe_join(dir, "", "k").is_err());
    }

    #[test]
    fn prefixes_are_normalised() {
        assert_eq!(normalize_prefix("/models/jukebox/1"), "models/jukebox/1/");
        assert_eq!(normalize_prefix("models/"), "models/");
        assert_eq!(normalize_prefix(""), "");
    }

    #[test]
    fn error_codes_are_read_from_s3_xml() {
        let body = "<?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code><Message>bad</Message></Error>";
        assert_eq!(xml_field(body, "Code").as_deref(), Some("SignatureDoesNotMatch"));
        assert_eq!(xml_field(body, "Message").as_deref(), Some("bad"));
        assert_eq!(xml_field(body, "Resource"), None);
    }
}
