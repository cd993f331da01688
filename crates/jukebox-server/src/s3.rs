//! An S3-compatible object store on a local folder: the laptop stand-in for MinIO.
//!
//! The S3 protocol (SigV4 authentication, XML bodies, routing) comes from [`s3s`]; buckets,
//! listings and multipart parts from [`s3s_fs`]; objects and their metadata from this module's
//! `store` (bucket `B`'s object `K` is the plain file `<root>/B/K`). This module adds what a
//! workshop needs on top:
//!
//! - **one set of credentials** ([`S3Config::access_key`] / [`S3Config::secret_key`]); every
//!   request must be signed with them, anything else is answered `403` and stores nothing;
//! - **an object is its bytes and its metadata, together**: an upload streams into a temporary
//!   file while its length, `Content-MD5` and `x-amz-checksum-*` (header or trailer) are checked;
//!   only a body that passes every check replaces the object, and its ETag, checksums and content
//!   type are committed with it (the store's docs say how), so a GET's ETag and CRC32 always
//!   describe the body it sends, concurrent PUTs of one key included. A refused upload leaves the
//!   previous object as it was; a multipart completion replaces the checksums of what it replaces;
//! - **keys up to S3's 1,024 bytes** (metadata file names are hashes of the key; a single
//!   `/`-separated part over 255 bytes, which no file system can name, is `400 KeyTooLongError`);
//!   an object and a folder of one name (`f` while `f/g` exists) are `409 ObjectFolderConflict`
//!   naming both, never a 500;
//! - **the answers clients expect from a single-tenant server**: creating a bucket that exists
//!   answers `BucketAlreadyOwnedByYou` (what AWS answers its owner in us-east-1, which clients treat
//!   as success), and `ListBuckets` names an owner (rust-s3's `Bucket::exists` needs one);
//! - **no silent loss**: `DeleteBucket` on a bucket that still holds objects answers 409
//!   `BucketNotEmpty` and deletes nothing (s3s-fs would delete the whole folder); every completed
//!   upload (`PutObject`, `CopyObject`, `CompleteMultipartUpload`) is fsynced, data, metadata and
//!   their folders, before it is acknowledged, so it survives a power loss;
//! - **client errors are 4xx**: a body that does not match its `x-amz-content-sha256` answers 400
//!   `XAmzContentSHA256Mismatch`, an interrupted body 400 `IncompleteBody`, and a key that would
//!   leave the bucket folder (`//tmp/x`, `../x`) 400 `InvalidArgument` (s3s-fs answered 500);
//! - [`serve`]: the shared accept loop ([`crate::http`]) with header and body read timeouts
//!   ([`S3Config::timeouts`]) and graceful shutdown.
//!
//! Where each part lives: this module starts the server ([`S3Config`], [`service`], [`serve`]);
//! `keys` refuses keys that would leave their bucket; `filesystem` ([`GuardedFileSystem`])
//! answers each S3 operation, with `body` (upload and download streams), `checks` (declared
//! checksums, ETag conditions) and `multipart`; `store` keeps objects and their metadata.
//!
//! ```no_run
//! # async fn demo() -> Result<(), jukebox_server::s3::S3Error> {
//! use jukebox_server::s3::{serve, S3Config};
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! let config = S3Config::new(".jukebox/s3", "jukebox", "jukebox-secret").with_bucket("models");
//! serve(listener, config, async { tokio::signal::ctrl_c().await.ok(); }).await
//! # }
//! ```

mod body;
mod checks;
mod filesystem;
mod keys;
mod multipart;
mod store;

use std::future::Future;
use std::io;
use std::path::PathBuf;

use s3s::auth::{S3Auth, SecretKey, SimpleAuth};
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{s3_error, S3Result};
use s3s_fs::FileSystem;
use tokio::net::TcpListener;

pub use self::filesystem::GuardedFileSystem;
use self::keys::KeyCheck;
use self::store::Store;
use crate::http::{serve_http, HttpTimeouts};

/// What the embedded S3 server serves and whom it lets in.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// Folder holding one sub-folder per bucket; created if missing.
    pub root: PathBuf,
    /// The only access key accepted (`AWS_ACCESS_KEY_ID` on the client side).
    pub access_key: String,
    /// Its secret (`AWS_SECRET_ACCESS_KEY`).
    pub secret_key: String,
    /// Buckets created at start-up when missing, so clients that never create buckets work.
    pub buckets: Vec<String>,
    /// Header and body read timeouts, idle connections (bodies: pauses only, uploads are large).
    pub timeouts: HttpTimeouts,
}

impl S3Config {
    /// A server on `root` accepting only `access_key` / `secret_key`, with no bucket pre-created.
    pub fn new(root: impl Into<PathBuf>, access_key: impl Into<String>, secret_key: impl Into<String>) -> Self {
        Self {
            root: root.into(),
            access_key: access_key.into(),
            secret_key: secret_key.into(),
            buckets: Vec::new(),
            timeouts: HttpTimeouts::STORAGE,
        }
    }

    /// Also create `bucket` at start-up if it does not exist.
    pub fn with_bucket(mut self, bucket: impl Into<String>) -> Self {
        self.buckets.push(bucket.into());
        self
    }
}

/// Why the S3 server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error("cannot create the S3 data folder {path}: {source}")]
    DataFolder { path: PathBuf, source: io::Error },
    #[error("cannot open the S3 data folder {path}: {message}")]
    OpenStore { path: PathBuf, message: String },
    #[error("{name:?} is not a valid S3 bucket name (3-63 lowercase letters, digits, '-' or '.')")]
    InvalidBucketName { name: String },
    #[error("the S3 access key and secret key must not be empty")]
    EmptyCredentials,
    #[error("cannot read the listening address of the S3 server: {0}")]
    LocalAddr(io::Error),
}

/// Builds the S3 HTTP service (SigV4-authenticated, backed by `config.root`) without serving it,
/// for callers that run their own accept loop. Creates the data folder and the configured buckets.
pub fn service(config: &S3Config) -> Result<S3Service, S3Error> {
    if config.access_key.is_empty() || config.secret_key.is_empty() {
        return Err(S3Error::EmptyCredentials);
    }
    std::fs::create_dir_all(&config.root)
        .map_err(|source| S3Error::DataFolder { path: config.root.clone(), source })?;
    for bucket in &config.buckets {
        if !s3s::path::check_bucket_name(bucket) {
            return Err(S3Error::InvalidBucketName { name: bucket.clone() });
        }
        let path = config.root.join(bucket);
        std::fs::create_dir_all(&path).map_err(|source| S3Error::DataFolder { path, source })?;
    }
    let inner = FileSystem::new(&config.root)
        .map_err(|e| S3Error::OpenStore { path: config.root.clone(), message: format!("{e:?}") })?;
    // The same absolute root as s3s-fs's, so both name the same files.
    let root = std::fs::canonicalize(&config.root)
        .map_err(|e| S3Error::OpenStore { path: config.root.clone(), message: e.to_string() })?;
    let store =
        Store::open(&root).map_err(|e| S3Error::OpenStore { path: config.root.clone(), message: e.to_string() })?;
    let mut builder = S3ServiceBuilder::new(GuardedFileSystem::new(inner, store, config.access_key.clone(), root));
    builder.set_auth(SingleKeyAuth(SimpleAuth::from_single(config.access_key.as_str(), config.secret_key.as_str())));
    Ok(builder.build())
}

/// s3s's [`SimpleAuth`] answering an unknown access key the way AWS and MinIO do
/// (`InvalidAccessKeyId`, which clients print as a credentials problem) instead of `NotSignedUp`.
struct SingleKeyAuth(SimpleAuth);

#[async_trait::async_trait]
impl S3Auth for SingleKeyAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        self.0.lookup(access_key).cloned().ok_or_else(|| {
            s3_error!(
                InvalidAccessKeyId,
                "the access key {access_key:?} is not known to this server (check AWS_ACCESS_KEY_ID)"
            )
        })
    }
}

/// Serves S3 on `listener` until `shutdown` completes, then lets in-flight requests finish (up to
/// ten seconds). Connection-level failures (a client hanging up mid-body) end that connection
/// only; the server keeps serving.
pub async fn serve(
    listener: TcpListener,
    config: S3Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), S3Error> {
    let service = service(&config)?;
    listener.local_addr().map_err(S3Error::LocalAddr)?;
    serve_http(listener, crate::observe::s3(KeyCheck(service)), config.timeouts, "s3", shutdown).await;
    Ok(())
}
