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
//! ```no_run
//! # async fn demo() -> Result<(), jukebox_server::s3::S3Error> {
//! use jukebox_server::s3::{serve, S3Config};
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! let config = S3Config::new(".jukebox/s3", "jukebox", "jukebox-secret").with_bucket("models");
//! serve(listener, config, async { tokio::signal::ctrl_c().await.ok(); }).await
//! # }
//! ```

mod store;

use std::future::Future;
use std::io::{self, Seek};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use s3s::auth::{S3Auth, SecretKey, SimpleAuth};
use s3s::checksum::ChecksumHasher;
use s3s::crypto::{Checksum, Md5};
use s3s::dto::{self, StreamingBlob};
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::stream::{ByteStream, RemainingLength};
use s3s::{s3_error, S3ErrorCode, S3Request, S3Response, S3Result, StdError, S3};
use s3s_fs::FileSystem;
// AsyncWriteExt needs tokio's `io-util`, which s3s-fs always enables.
use tokio::io::{AsyncRead, AsyncWriteExt};
use tokio::net::TcpListener;

use self::store::{Attributes, Checksums, Preconditions, Record, Store, StoreError};
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
    let mut builder = S3ServiceBuilder::new(GuardedFileSystem {
        inner,
        store: Arc::new(store),
        owner: config.access_key.clone(),
        root,
    });
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

/// Refuses, before s3s sees them, object keys that s3s-fs cannot map into the bucket folder
/// (a leading `/`, `.` or `..` segments): s3s-fs refuses them too, but as a 500.
#[derive(Clone)]
struct KeyCheck(S3Service);

impl<B> tower::Service<hyper::Request<B>> for KeyCheck
where
    S3Service: tower::Service<hyper::Request<B>, Response = s3s::HttpResponse, Error = s3s::HttpError>,
    <S3Service as tower::Service<hyper::Request<B>>>::Future: Send + 'static,
{
    type Response = s3s::HttpResponse;
    type Error = s3s::HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<s3s::HttpResponse, s3s::HttpError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        tower::Service::<hyper::Request<B>>::poll_ready(&mut self.0, cx)
    }

    fn call(&mut self, request: hyper::Request<B>) -> Self::Future {
        if let Some(problem) = bad_key(request.uri().path()) {
            return Box::pin(std::future::ready(Ok(xml_error(
                hyper::StatusCode::BAD_REQUEST,
                "InvalidArgument",
                &problem,
            ))));
        }
        Box::pin(tower::Service::call(&mut self.0, request))
    }
}

/// Why the object key in a path-style URI path (`/bucket/key`) is refused, if it is.
fn bad_key(raw_path: &str) -> Option<String> {
    let path = percent_decode(raw_path);
    let key = path.strip_prefix('/')?.split_once('/')?.1;
    if key.starts_with('/') {
        return Some(format!("object key {key:?} starts with '/'; keys are relative to the bucket"));
    }
    if key.split('/').any(|segment| segment == "." || segment == "..") {
        return Some(format!("object key {key:?} has a '.' or '..' segment; keys cannot leave or alias folders"));
    }
    if key.contains('\0') {
        return Some("object key holds a NUL byte".into());
    }
    None
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An S3 XML error answer.
fn xml_error(status: hyper::StatusCode, code: &str, message: &str) -> s3s::HttpResponse {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{}</Message></Error>",
        html_escape::encode_text(message)
    );
    let mut response = hyper::Response::new(s3s::Body::from(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/xml"));
    response
}

/// The S3 answer for a [`StoreError`]: 404/409/412/400 for what the client can fix, 500 only
/// for the disk failing.
fn store_error(error: StoreError) -> s3s::S3Error {
    match &error {
        StoreError::NoSuchBucket { .. } => s3_error!(NoSuchBucket, "{error}"),
        StoreError::KeyTooLong(message) => s3_error!(KeyTooLongError, "{message}"),
        StoreError::ParentIsObject { .. } | StoreError::FolderExists { .. } => {
            let mut e =
                s3s::S3Error::with_message(S3ErrorCode::Custom("ObjectFolderConflict".into()), error.to_string());
            e.set_status_code(hyper::StatusCode::CONFLICT);
            e
        }
        StoreError::PreconditionFailed(message) => s3_error!(PreconditionFailed, "{message}"),
        StoreError::InvalidPart(message) => s3_error!(InvalidPart, "{message}"),
        StoreError::EntityTooSmall(message) => s3_error!(EntityTooSmall, "{message}"),
        StoreError::Io { .. } => s3_error!(InternalError, "{error}"),
    }
}

/// Runs blocking file work off the async threads.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T, StoreError> + Send + 'static) -> S3Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| s3_error!(InternalError, "storage worker failed: {e}"))?
        .map_err(store_error)
}

/// Refuses a key that would leave its bucket's folder (for keys not in the URI path, such as a
/// copy's source).
fn check_inside(key: &str) -> S3Result<()> {
    if key.starts_with('/') || key.split('/').any(|s| s == "." || s == "..") || key.contains('\0') {
        return Err(s3_error!(InvalidArgument, "object key {key:?} would leave the bucket folder"));
    }
    Ok(())
}

fn format_expires(expires: Option<dto::Timestamp>) -> Option<String> {
    let mut buf = Vec::new();
    expires?.format(dto::TimestampFormat::DateTime, &mut buf).ok()?;
    String::from_utf8(buf).ok()
}

fn parse_expires(expires: Option<&String>) -> Option<dto::Timestamp> {
    dto::Timestamp::parse(dto::TimestampFormat::DateTime, expires?).ok()
}

/// `bytes first-last/size`, the `Content-Range` of a ranged GET.
fn content_range(start: u64, end_inclusive: u64, size: u64) -> String {
    format!("bytes {start}-{end_inclusive}/{size}")
}

/// The checksums an upload asks for (a value in a header, the algorithm header, or a trailer
/// announced in `x-amz-trailer`), ready to be computed while the body streams in.
fn checksum_hasher(
    declared: &Checksums,
    algorithm: Option<&dto::ChecksumAlgorithm>,
    trailer: Option<&hyper::header::HeaderValue>,
) -> S3Result<ChecksumHasher> {
    let trailer = trailer.and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let wants = |value: &Option<String>, alg: &str, header: &str| {
        value.is_some() || algorithm.is_some_and(|a| a.as_str().eq_ignore_ascii_case(alg)) || trailer.contains(header)
    };
    if let Some(alg) = algorithm {
        let known = [
            dto::ChecksumAlgorithm::CRC32,
            dto::ChecksumAlgorithm::CRC32C,
            dto::ChecksumAlgorithm::SHA1,
            dto::ChecksumAlgorithm::SHA256,
            dto::ChecksumAlgorithm::CRC64NVME,
        ];
        if !known.iter().any(|k| k.eq_ignore_ascii_case(alg.as_str())) {
            return Err(s3_error!(InvalidArgument, "unsupported checksum algorithm {:?}", alg.as_str()));
        }
    }
    let mut hasher = ChecksumHasher::default();
    if wants(&declared.crc32, dto::ChecksumAlgorithm::CRC32, "x-amz-checksum-crc32") {
        hasher.crc32 = Some(Checksum::new());
    }
    if wants(&declared.crc32c, dto::ChecksumAlgorithm::CRC32C, "x-amz-checksum-crc32c") {
        hasher.crc32c = Some(Checksum::new());
    }
    if wants(&declared.sha1, dto::ChecksumAlgorithm::SHA1, "x-amz-checksum-sha1") {
        hasher.sha1 = Some(Checksum::new());
    }
    if wants(&declared.sha256, dto::ChecksumAlgorithm::SHA256, "x-amz-checksum-sha256") {
        hasher.sha256 = Some(Checksum::new());
    }
    if wants(&declared.crc64nvme, dto::ChecksumAlgorithm::CRC64NVME, "x-amz-checksum-crc64nvme") {
        hasher.crc64nvme = Some(Checksum::new());
    }
    Ok(hasher)
}

/// Compares what was computed over the body with what the client declared; every declared
/// checksum must have been computed and match.
fn verify_checksums(key: &str, declared: &Checksums, computed: &dto::Checksum) -> S3Result<Checksums> {
    let pairs = [
        ("CRC32", &declared.crc32, &computed.checksum_crc32),
        ("CRC32C", &declared.crc32c, &computed.checksum_crc32c),
        ("SHA1", &declared.sha1, &computed.checksum_sha1),
        ("SHA256", &declared.sha256, &computed.checksum_sha256),
        ("CRC64NVME", &declared.crc64nvme, &computed.checksum_crc64nvme),
    ];
    for (name, want, got) in pairs {
        if let Some(want) = want {
            if got.as_deref() != Some(want.as_str()) {
                return Err(s3_error!(
                    BadDigest,
                    "the body of {key:?} has {name} {} but the request declared {want}; nothing was stored and \
                     the existing object, if any, is unchanged",
                    got.as_deref().unwrap_or("(not computed)")
                ));
            }
        }
    }
    Ok(Checksums {
        crc32: computed.checksum_crc32.clone(),
        crc32c: computed.checksum_crc32c.clone(),
        sha1: computed.checksum_sha1.clone(),
        sha256: computed.checksum_sha256.clone(),
        crc64nvme: computed.checksum_crc64nvme.clone(),
    })
}

/// `If-Match` / `If-None-Match` of a read, against the object's ETag.
fn check_read_conditions(
    e_tag: &str,
    if_match: Option<&dto::ETagCondition>,
    if_none_match: Option<&dto::ETagCondition>,
) -> S3Result<()> {
    let current = dto::ETag::Strong(e_tag.to_string());
    if let Some(dto::ETagCondition::ETag(want)) = if_match {
        if !want.strong_cmp(&current) {
            return Err(s3_error!(PreconditionFailed, "the object's ETag does not match If-Match"));
        }
    }
    match if_none_match {
        Some(dto::ETagCondition::Any) => Err(s3_error!(NotModified)),
        Some(dto::ETagCondition::ETag(want)) if want.weak_cmp(&current) => Err(s3_error!(NotModified)),
        _ => Ok(()),
    }
}

/// A multipart upload id as s3s-fs writes it (a lowercase hyphenated UUID), or `None`.
fn upload_id(text: &str) -> Option<String> {
    let text = text.to_ascii_lowercase();
    let shape_ok = text.len() == 36
        && text
            .char_indices()
            .all(|(i, c)| if [8, 13, 18, 23].contains(&i) { c == '-' } else { c.is_ascii_hexdigit() });
    shape_ok.then_some(text)
}

/// A fresh version-4 UUID, the form of s3s-fs's upload ids.
fn new_upload_id() -> S3Result<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| s3_error!(InternalError, "no randomness for an upload id: {e}"))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = store::hex(&b);
    Ok(format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32]))
}

/// An object's bytes from `start`, `length` of them, as a response body.
struct FileBody {
    file: tokio::fs::File,
    remaining: u64,
    buf: Vec<u8>,
}

impl Stream for FileBody {
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        let want = usize::try_from(this.remaining).unwrap_or(usize::MAX).min(this.buf.len());
        let mut read = tokio::io::ReadBuf::new(&mut this.buf[..want]);
        match Pin::new(&mut this.file).poll_read(cx, &mut read) {
            Poll::Ready(Ok(())) if read.filled().is_empty() => {
                this.remaining = 0;
                Poll::Ready(Some(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the object's file is shorter than it was",
                ))))
            }
            Poll::Ready(Ok(())) => {
                this.remaining -= read.filled().len() as u64;
                Poll::Ready(Some(Ok(Bytes::copy_from_slice(read.filled()))))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// s3s-fs's [`FileSystem`] for buckets, listings and multipart parts; [`Store`] for objects
/// and their metadata (see the module docs).
pub struct GuardedFileSystem {
    inner: FileSystem,
    store: Arc<Store>,
    /// Reported as the owner of every bucket (the access key).
    owner: String,
    /// s3s-fs's root: bucket `B`'s object `K` is the file `<root>/B/K`.
    root: PathBuf,
}

impl std::fmt::Debug for GuardedFileSystem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedFileSystem").field("inner", &self.inner).finish_non_exhaustive()
    }
}

impl GuardedFileSystem {
    fn attributes_of(record: Option<&Record>) -> Attributes {
        record.map(|r| r.attributes.clone()).unwrap_or_default()
    }

    /// Checks that the caller started multipart upload `id` (s3s-fs's `.upload-<id>.json`
    /// holds the access key that did).
    async fn check_upload_owner(&self, id: &str, access_key: Option<&str>) -> S3Result<()> {
        let path = self.root.join(format!(".upload-{id}.json"));
        let bytes = match tokio::fs::read(&path).await {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(s3_error!(NoSuchUpload, "no multipart upload {id} is in progress"))
            }
            Err(e) => return Err(s3_error!(InternalError, "cannot read {}: {e}", path.display())),
        };
        let owner: Option<String> = serde_json::from_slice(&bytes).unwrap_or(None);
        if owner.as_deref() != access_key {
            return Err(s3_error!(AccessDenied, "multipart upload {id} was started by another access key"));
        }
        Ok(())
    }
}

/// Expands to the `S3` impl: the listed operations forward to s3s-fs, `$custom` items are added
/// as written. (A macro producing the whole impl, because `#[async_trait]` must see every method.)
macro_rules! s3_impl {
    (forward { $($op:ident: $input:ident => $output:ident,)* } custom { $($custom:item)* }) => {
        #[async_trait::async_trait]
        impl S3 for GuardedFileSystem {
            $(
                async fn $op(&self, req: S3Request<dto::$input>) -> S3Result<S3Response<dto::$output>> {
                    self.inner.$op(req).await
                }
            )*
            $($custom)*
        }
    };
}

s3_impl! {
    forward {
        get_bucket_location: GetBucketLocationInput => GetBucketLocationOutput,
        head_bucket: HeadBucketInput => HeadBucketOutput,
        list_objects: ListObjectsInput => ListObjectsOutput,
        list_objects_v2: ListObjectsV2Input => ListObjectsV2Output,
        upload_part_copy: UploadPartCopyInput => UploadPartCopyOutput,
        list_parts: ListPartsInput => ListPartsOutput,
    }
    custom {
        async fn delete_bucket(
            &self,
            req: S3Request<dto::DeleteBucketInput>,
        ) -> S3Result<S3Response<dto::DeleteBucketOutput>> {
            let folder = self.root.join(&req.input.bucket);
            if s3s::path::check_bucket_name(&req.input.bucket) && folder.is_dir() {
                let busy = tokio::task::spawn_blocking(move || store::holds_files(&folder))
                    .await
                    .map_err(|e| s3_error!(InternalError, "{e}"))?
                    .map_err(|e| s3_error!(InternalError, "cannot list the bucket folder: {e}"))?;
                if busy {
                    return Err(s3_error!(BucketNotEmpty, "the bucket is not empty; delete its objects first"));
                }
            }
            self.inner.delete_bucket(req).await
        }

        async fn create_bucket(
            &self,
            req: S3Request<dto::CreateBucketInput>,
        ) -> S3Result<S3Response<dto::CreateBucketOutput>> {
            match self.inner.create_bucket(req).await {
                // One tenant: an existing bucket is always the caller's own.
                Err(e) if *e.code() == S3ErrorCode::BucketAlreadyExists => {
                    Err(s3_error!(BucketAlreadyOwnedByYou, "the bucket already exists and is yours"))
                }
                other => other,
            }
        }

        async fn list_buckets(
            &self,
            req: S3Request<dto::ListBucketsInput>,
        ) -> S3Result<S3Response<dto::ListBucketsOutput>> {
            let mut response = self.inner.list_buckets(req).await?;
            response.output.owner = Some(dto::Owner {
                display_name: Some(self.owner.clone()),
                id: Some(self.owner.clone()),
            });
            Ok(response)
        }

        async fn put_object(
            &self,
            mut req: S3Request<dto::PutObjectInput>,
        ) -> S3Result<S3Response<dto::PutObjectOutput>> {
            let expected = ExpectedBody::from_headers(req.input.content_length, req.input.content_md5.as_deref())?;
            if let Some(class) = &req.input.storage_class {
                if !["STANDARD", "REDUCED_REDUNDANCY"].contains(&class.as_str()) {
                    return Err(s3_error!(InvalidStorageClass, "storage class {:?} is not offered here", class.as_str()));
                }
            }
            let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
            store::check_key(&key).map_err(store_error)?;
            if key.ends_with('/') {
                if req.input.content_length.is_some_and(|n| n > 0) {
                    return Err(s3_error!(UnexpectedContent, "the key {key:?} ends in '/' (a folder) and takes no body"));
                }
                let store = self.store.clone();
                blocking(move || store.make_folder(&bucket, &key)).await?;
                return Ok(S3Response::new(dto::PutObjectOutput::default()));
            }
            if !s3s::path::check_bucket_name(&bucket) || !self.root.join(&bucket).is_dir() {
                return Err(s3_error!(NoSuchBucket, "the bucket {bucket:?} does not exist"));
            }
            let mut declared = Checksums {
                crc32: req.input.checksum_crc32.clone(),
                crc32c: req.input.checksum_crc32c.clone(),
                sha1: req.input.checksum_sha1.clone(),
                sha256: req.input.checksum_sha256.clone(),
                crc64nvme: req.input.checksum_crc64nvme.clone(),
            };
            let mut hasher =
                checksum_hasher(&declared, req.input.checksum_algorithm.as_ref(), req.headers.get("x-amz-trailer"))?;
            let Some(body) = req.input.body.take() else {
                return Err(s3_error!(IncompleteBody, "the PUT of {key:?} has no body"));
            };
            let fault = BodyFault::default();
            let mut body = GuardedBody::new(body, expected, fault.clone());

            // The body goes to a temporary file; the object in place is untouched until commit.
            let (staged, file) = blocking({
                let store = self.store.clone();
                move || store.stage()
            })
            .await?;
            let mut writer = tokio::io::BufWriter::with_capacity(256 * 1024, tokio::fs::File::from_std(file));
            let mut md5 = Md5::new();
            let write_failed =
                |e: io::Error| s3_error!(InternalError, "cannot write the upload to {}: {e}", staged.path().display());
            while let Some(chunk) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_next(cx)).await {
                let chunk = chunk.map_err(|e| {
                    fault.take().map_or_else(
                        || s3_error!(IncompleteBody, "the body could not be read to its end ({e}); nothing was stored"),
                        BodyProblem::into_s3_error,
                    )
                })?;
                md5.update(&chunk);
                hasher.update(&chunk);
                writer.write_all(&chunk).await.map_err(write_failed)?;
            }
            writer.flush().await.map_err(write_failed)?;
            let file = writer.into_inner().into_std().await;

            // Checksums may come as trailers, after the body.
            let trailer = |name: &str| {
                req.trailing_headers
                    .as_ref()
                    .and_then(|t| t.read(|h| h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)))
                    .flatten()
            };
            declared.crc32 = declared.crc32.take().or_else(|| trailer("x-amz-checksum-crc32"));
            declared.crc32c = declared.crc32c.take().or_else(|| trailer("x-amz-checksum-crc32c"));
            declared.sha1 = declared.sha1.take().or_else(|| trailer("x-amz-checksum-sha1"));
            declared.sha256 = declared.sha256.take().or_else(|| trailer("x-amz-checksum-sha256"));
            declared.crc64nvme = declared.crc64nvme.take().or_else(|| trailer("x-amz-checksum-crc64nvme"));
            let checksums = verify_checksums(&key, &declared, &hasher.finalize())?;

            let input = req.input;
            let attributes = Attributes {
                content_type: input.content_type,
                content_encoding: input.content_encoding,
                content_disposition: input.content_disposition,
                content_language: input.content_language,
                cache_control: input.cache_control,
                expires: format_expires(input.expires),
                website_redirect_location: input.website_redirect_location,
                user_metadata: input.metadata,
            };
            let conditions = Preconditions { if_match: input.if_match, if_none_match: input.if_none_match };
            let e_tag = store::hex(&md5.finalize());
            let store = self.store.clone();
            let record_checksums = checksums.clone();
            let record_e_tag = e_tag.clone();
            blocking(move || {
                let identity = Store::seal(&staged, &file)?;
                drop(file);
                let record = Record { identity, e_tag: record_e_tag, checksums: record_checksums, attributes };
                store.commit(&bucket, &key, staged, record, &conditions)
            })
            .await?;
            Ok(S3Response::new(dto::PutObjectOutput {
                e_tag: Some(dto::ETag::Strong(e_tag)),
                checksum_crc32: checksums.crc32,
                checksum_crc32c: checksums.crc32c,
                checksum_sha1: checksums.sha1,
                checksum_sha256: checksums.sha256,
                checksum_crc64nvme: checksums.crc64nvme,
                ..Default::default()
            }))
        }

        async fn get_object(
            &self,
            req: S3Request<dto::GetObjectInput>,
        ) -> S3Result<S3Response<dto::GetObjectOutput>> {
            let input = req.input;
            let (bucket, key) = (input.bucket.clone(), input.key.clone());
            let store = self.store.clone();
            let found = blocking(move || {
                let Some(mut opened) = store.open_object(&bucket, &key)? else { return Ok(None) };
                let e_tag = opened.e_tag().map_err(|source| StoreError::Io {
                    context: format!("cannot read the object {key:?}"),
                    source,
                })?;
                Ok(Some((opened, e_tag)))
            })
            .await?;
            let Some((opened, e_tag)) = found else {
                return Err(s3_error!(NoSuchKey, "no object {:?} in bucket {:?}", input.key, input.bucket));
            };
            check_read_conditions(&e_tag, input.if_match.as_ref(), input.if_none_match.as_ref())?;
            let size = opened.identity.size();
            let (start, length, range) = match &input.range {
                None => (0, size, None),
                Some(range) => {
                    let span = range
                        .check(size)
                        .map_err(|_| s3_error!(InvalidRange, "the range is outside the object's {size} bytes"))?;
                    (span.start, span.end - span.start, Some(content_range(span.start, span.end - 1, size)))
                }
            };
            let mut file = opened.file;
            if start > 0 {
                file.seek(io::SeekFrom::Start(start))
                    .map_err(|e| s3_error!(InternalError, "cannot seek in {:?}: {e}", input.key))?;
            }
            // S3 sends the stored checksums only with the whole object.
            let checksums = match (&range, &opened.record) {
                (None, Some(record)) => record.checksums.clone(),
                _ => Checksums::default(),
            };
            let attributes = Self::attributes_of(opened.record.as_ref());
            let body = FileBody { file: tokio::fs::File::from_std(file), remaining: length, buf: vec![0; 64 * 1024] };
            Ok(S3Response::new(dto::GetObjectOutput {
                body: Some(StreamingBlob::wrap(body)),
                content_length: Some(i64::try_from(length).unwrap_or(i64::MAX)),
                content_range: range,
                last_modified: Some(dto::Timestamp::from(opened.modified)),
                e_tag: Some(dto::ETag::Strong(e_tag)),
                checksum_crc32: checksums.crc32,
                checksum_crc32c: checksums.crc32c,
                checksum_sha1: checksums.sha1,
                checksum_sha256: checksums.sha256,
                checksum_crc64nvme: checksums.crc64nvme,
                content_type: attributes.content_type,
                content_encoding: attributes.content_encoding,
                content_disposition: attributes.content_disposition,
                content_language: attributes.content_language,
                cache_control: attributes.cache_control,
                expires: parse_expires(attributes.expires.as_ref()),
                website_redirect_location: attributes.website_redirect_location,
                metadata: attributes.user_metadata,
                ..Default::default()
            }))
        }

        async fn head_object(
            &self,
            req: S3Request<dto::HeadObjectInput>,
        ) -> S3Result<S3Response<dto::HeadObjectOutput>> {
            let input = req.input;
            let (bucket, key) = (input.bucket.clone(), input.key.clone());
            let store = self.store.clone();
            let found = blocking(move || {
                let Some(mut opened) = store.open_object(&bucket, &key)? else { return Ok(None) };
                let e_tag = opened.e_tag().map_err(|source| StoreError::Io {
                    context: format!("cannot read the object {key:?}"),
                    source,
                })?;
                Ok(Some((opened.identity.size(), opened.modified, opened.record, e_tag)))
            })
            .await?;
            let Some((size, modified, record, e_tag)) = found else {
                return Err(s3_error!(NoSuchKey, "no object {:?} in bucket {:?}", input.key, input.bucket));
            };
            check_read_conditions(&e_tag, input.if_match.as_ref(), input.if_none_match.as_ref())?;
            let checksums = record.as_ref().map(|r| r.checksums.clone()).unwrap_or_default();
            let attributes = Self::attributes_of(record.as_ref());
            Ok(S3Response::new(dto::HeadObjectOutput {
                content_length: Some(i64::try_from(size).unwrap_or(i64::MAX)),
                last_modified: Some(dto::Timestamp::from(modified)),
                e_tag: Some(dto::ETag::Strong(e_tag)),
                checksum_crc32: checksums.crc32,
                checksum_crc32c: checksums.crc32c,
                checksum_sha1: checksums.sha1,
                checksum_sha256: checksums.sha256,
                checksum_crc64nvme: checksums.crc64nvme,
                content_type: attributes.content_type,
                content_encoding: attributes.content_encoding,
                content_disposition: attributes.content_disposition,
                content_language: attributes.content_language,
                cache_control: attributes.cache_control,
                expires: parse_expires(attributes.expires.as_ref()),
                website_redirect_location: attributes.website_redirect_location,
                metadata: attributes.user_metadata,
                ..Default::default()
            }))
        }

        async fn copy_object(
            &self,
            req: S3Request<dto::CopyObjectInput>,
        ) -> S3Result<S3Response<dto::CopyObjectOutput>> {
            let input = req.input;
            let (src_bucket, src_key) = match &input.copy_source {
                dto::CopySource::Bucket { bucket, key, .. } => (bucket.to_string(), key.to_string()),
                _ => return Err(s3_error!(NotImplemented, "only bucket copy sources are supported")),
            };
            check_inside(&src_key)?;
            store::check_key(&input.key).map_err(store_error)?;
            let replace = input
                .metadata_directive
                .as_ref()
                .is_some_and(|d| d.as_str() == dto::MetadataDirective::REPLACE);
            let new_attributes = replace.then(|| Attributes {
                content_type: input.content_type,
                content_encoding: input.content_encoding,
                content_disposition: input.content_disposition,
                content_language: input.content_language,
                cache_control: input.cache_control,
                expires: format_expires(input.expires),
                website_redirect_location: input.website_redirect_location,
                user_metadata: input.metadata,
            });
            let (if_match, if_none_match) = (input.copy_source_if_match, input.copy_source_if_none_match);
            let (bucket, key) = (input.bucket, input.key);
            let store = self.store.clone();
            let copied = blocking(move || {
                let Some(mut source) = store.open_object(&src_bucket, &src_key)? else { return Ok(None) };
                let read_failed = |source: io::Error| StoreError::Io { context: format!("cannot read the object {src_key:?}"), source };
                let e_tag = source.e_tag().map_err(read_failed)?;
                check_read_conditions(&e_tag, if_match.as_ref(), if_none_match.as_ref())
                    .map_err(|_| StoreError::PreconditionFailed("the copy source's ETag does not meet the copy conditions".into()))?;
                let (staged, mut file) = store.stage()?;
                io::copy(&mut source.file, &mut file).map_err(read_failed)?;
                let identity = Store::seal(&staged, &file)?;
                let modified = file.metadata().and_then(|m| m.modified()).unwrap_or_else(|_| std::time::SystemTime::now());
                drop(file);
                let (checksums, attributes) = match source.record {
                    Some(record) => (record.checksums, record.attributes),
                    None => (Checksums::default(), Attributes::default()),
                };
                let attributes = new_attributes.unwrap_or(attributes);
                let record = Record { identity, e_tag: e_tag.clone(), checksums, attributes };
                store.commit(&bucket, &key, staged, record, &Preconditions::default())?;
                Ok(Some((e_tag, modified)))
            })
            .await?;
            let Some((e_tag, modified)) = copied else {
                return Err(s3_error!(NoSuchKey, "the copy source does not exist"));
            };
            Ok(S3Response::new(dto::CopyObjectOutput {
                copy_object_result: Some(dto::CopyObjectResult {
                    e_tag: Some(dto::ETag::Strong(e_tag)),
                    last_modified: Some(dto::Timestamp::from(modified)),
                    ..Default::default()
                }),
                ..Default::default()
            }))
        }

        async fn delete_object(
            &self,
            req: S3Request<dto::DeleteObjectInput>,
        ) -> S3Result<S3Response<dto::DeleteObjectOutput>> {
            if req.input.key.ends_with('/') {
                // A folder object: s3s-fs removes the folder when it is empty.
                return self.inner.delete_object(req).await;
            }
            let (bucket, key) = (req.input.bucket, req.input.key);
            let store = self.store.clone();
            blocking(move || store.delete(&bucket, &key)).await?;
            Ok(S3Response::new(dto::DeleteObjectOutput::default()))
        }

        async fn delete_objects(
            &self,
            req: S3Request<dto::DeleteObjectsInput>,
        ) -> S3Result<S3Response<dto::DeleteObjectsOutput>> {
            let bucket = req.input.bucket;
            let keys: Vec<String> = req.input.delete.objects.into_iter().map(|o| o.key).collect();
            let store = self.store.clone();
            let outcomes = blocking(move || {
                if !store.root().join(&bucket).is_dir() {
                    return Err(StoreError::NoSuchBucket { bucket });
                }
                Ok(keys
                    .into_iter()
                    .map(|key| {
                        let outcome = if check_inside(&key).is_err() {
                            Err("the key would leave the bucket folder".to_string())
                        } else if key.ends_with('/') {
                            // Folder objects go when empty, as with DeleteObject.
                            let _ = std::fs::remove_dir(store.object_path(&bucket, &key));
                            Ok(())
                        } else {
                            store.delete(&bucket, &key).map_err(|e| e.to_string())
                        };
                        (key, outcome)
                    })
                    .collect::<Vec<_>>())
            })
            .await?;
            let mut deleted = Vec::new();
            let mut errors = Vec::new();
            for (key, outcome) in outcomes {
                match outcome {
                    Ok(()) => deleted.push(dto::DeletedObject { key: Some(key), ..Default::default() }),
                    Err(message) => errors.push(dto::Error {
                        code: Some("InternalError".into()),
                        key: Some(key),
                        message: Some(message),
                        version_id: None,
                    }),
                }
            }
            Ok(S3Response::new(dto::DeleteObjectsOutput {
                deleted: Some(deleted),
                errors: (!errors.is_empty()).then_some(errors),
                ..Default::default()
            }))
        }

        async fn create_multipart_upload(
            &self,
            req: S3Request<dto::CreateMultipartUploadInput>,
        ) -> S3Result<S3Response<dto::CreateMultipartUploadOutput>> {
            let input = req.input;
            store::check_key(&input.key).map_err(store_error)?;
            if !s3s::path::check_bucket_name(&input.bucket) || !self.root.join(&input.bucket).is_dir() {
                return Err(s3_error!(NoSuchBucket, "the bucket {:?} does not exist", input.bucket));
            }
            let id = new_upload_id()?;
            // The file s3s-fs checks on every UploadPart: who may add parts to this upload.
            let owner = req.credentials.as_ref().map(|c| c.access_key.as_str());
            let owner = serde_json::to_vec(&owner).map_err(|e| s3_error!(InternalError, "{e}"))?;
            let path = self.root.join(format!(".upload-{id}.json"));
            tokio::fs::write(&path, owner)
                .await
                .map_err(|e| s3_error!(InternalError, "cannot write {}: {e}", path.display()))?;
            let attributes = Attributes {
                content_type: input.content_type,
                content_encoding: input.content_encoding,
                content_disposition: input.content_disposition,
                content_language: input.content_language,
                cache_control: input.cache_control,
                expires: format_expires(input.expires),
                website_redirect_location: input.website_redirect_location,
                user_metadata: input.metadata,
            };
            let store = self.store.clone();
            let upload = id.clone();
            blocking(move || store.save_upload_attributes(&upload, &attributes)).await?;
            Ok(S3Response::new(dto::CreateMultipartUploadOutput {
                bucket: Some(input.bucket),
                key: Some(input.key),
                upload_id: Some(id),
                ..Default::default()
            }))
        }

        async fn complete_multipart_upload(
            &self,
            req: S3Request<dto::CompleteMultipartUploadInput>,
        ) -> S3Result<S3Response<dto::CompleteMultipartUploadOutput>> {
            let input = req.input;
            let Some(id) = upload_id(&input.upload_id) else {
                return Err(s3_error!(NoSuchUpload, "{:?} is not an upload id of this server", input.upload_id));
            };
            self.check_upload_owner(&id, req.credentials.as_ref().map(|c| c.access_key.as_str())).await?;
            let parts: Vec<(i32, Option<String>)> = input
                .multipart_upload
                .and_then(|m| m.parts)
                .unwrap_or_default()
                .into_iter()
                .map(|p| (p.part_number.unwrap_or(0), p.e_tag.map(|e| e.value().to_string())))
                .collect();
            if parts.is_empty() {
                return Err(s3_error!(InvalidPart, "the completion lists no part"));
            }
            if parts.windows(2).any(|w| w[0].0 >= w[1].0) || parts[0].0 < 1 {
                return Err(s3_error!(InvalidPartOrder, "the parts must be listed in ascending order of part number"));
            }
            let conditions = Preconditions { if_match: input.if_match, if_none_match: input.if_none_match };
            let (bucket, key) = (input.bucket, input.key);
            let store = self.store.clone();
            let upload = id.clone();
            let (out_bucket, out_key) = (bucket.clone(), key.clone());
            let e_tag = blocking(move || {
                let root = store.root().to_path_buf();
                let (staged, mut file) = store.stage()?;
                let mut part_md5s = Vec::with_capacity(parts.len());
                let mut buf = vec![0u8; 256 * 1024];
                for (i, (number, claimed)) in parts.iter().enumerate() {
                    let path = root.join(format!(".upload_id-{upload}.part-{number}"));
                    let mut part = std::fs::File::open(&path)
                        .map_err(|_| StoreError::InvalidPart(format!("part {number} was not uploaded")))?;
                    let mut md5 = Md5::new();
                    let mut size = 0u64;
                    loop {
                        let n = io::Read::read(&mut part, &mut buf).map_err(|source| StoreError::Io {
                            context: format!("cannot read {}", path.display()),
                            source,
                        })?;
                        if n == 0 {
                            break;
                        }
                        md5.update(&buf[..n]);
                        io::Write::write_all(&mut file, &buf[..n]).map_err(|source| StoreError::Io {
                            context: format!("cannot write {}", staged.path().display()),
                            source,
                        })?;
                        size += n as u64;
                    }
                    let digest = md5.finalize();
                    if claimed.as_deref().is_some_and(|c| c.trim_matches('"') != store::hex(&digest)) {
                        return Err(StoreError::InvalidPart(format!("part {number}'s ETag does not match its bytes")));
                    }
                    if i + 1 < parts.len() && size < 5 * 1024 * 1024 {
                        return Err(StoreError::EntityTooSmall(format!(
                            "part {number} is {size} bytes; every part but the last must be at least 5 MiB"
                        )));
                    }
                    part_md5s.push(digest);
                }
                let mut whole = Md5::new();
                for digest in &part_md5s {
                    whole.update(digest);
                }
                let e_tag = format!("{}-{}", store::hex(&whole.finalize()), part_md5s.len());
                let identity = Store::seal(&staged, &file)?;
                drop(file);
                // A fresh record: checksums of an earlier object under this key do not carry over.
                let record = Record {
                    identity,
                    e_tag: e_tag.clone(),
                    checksums: Checksums::default(),
                    attributes: store.upload_attributes(&upload),
                };
                store.commit(&bucket, &key, staged, record, &conditions)?;
                // The upload is over: its parts (listed or not) and its files go.
                let prefix = format!(".upload_id-{upload}.part-");
                if let Ok(entries) = std::fs::read_dir(&root) {
                    for entry in entries.flatten() {
                        if entry.file_name().to_str().is_some_and(|n| n.starts_with(&prefix)) {
                            let _ = std::fs::remove_file(entry.path());
                        }
                    }
                }
                let _ = std::fs::remove_file(root.join(format!(".upload-{upload}.json")));
                store.forget_upload_attributes(&upload);
                Ok(e_tag)
            })
            .await?;
            Ok(S3Response::new(dto::CompleteMultipartUploadOutput {
                bucket: Some(out_bucket),
                key: Some(out_key),
                e_tag: Some(dto::ETag::Strong(e_tag)),
                ..Default::default()
            }))
        }

        async fn abort_multipart_upload(
            &self,
            req: S3Request<dto::AbortMultipartUploadInput>,
        ) -> S3Result<S3Response<dto::AbortMultipartUploadOutput>> {
            let id = upload_id(&req.input.upload_id);
            let response = self.inner.abort_multipart_upload(req).await?;
            if let Some(id) = id {
                self.store.forget_upload_attributes(&id);
            }
            Ok(response)
        }

        async fn upload_part(
            &self,
            mut req: S3Request<dto::UploadPartInput>,
        ) -> S3Result<S3Response<dto::UploadPartOutput>> {
            let expected = ExpectedBody::from_headers(req.input.content_length, req.input.content_md5.as_deref())?;
            let fault = BodyFault::default();
            if let Some(body) = req.input.body.take() {
                req.input.body = Some(StreamingBlob::new(GuardedBody::new(body, expected, fault.clone())));
            }
            self.inner.upload_part(req).await.map_err(|e| fault.take().map_or(e, BodyProblem::into_s3_error))
        }
    }
}

/// What the headers promise about a request body.
#[derive(Debug, Clone, Copy, Default)]
struct ExpectedBody {
    length: Option<u64>,
    md5: Option<[u8; 16]>,
}

impl ExpectedBody {
    fn from_headers(content_length: Option<i64>, content_md5: Option<&str>) -> S3Result<Self> {
        let length = match content_length {
            Some(n) => Some(u64::try_from(n).map_err(|_| s3_error!(InvalidArgument, "negative Content-Length"))?),
            None => None,
        };
        let md5 = match content_md5 {
            Some(b64) => {
                let bytes = base64_simd::STANDARD
                    .decode_to_vec(b64.trim())
                    .map_err(|_| s3_error!(InvalidDigest, "Content-MD5 is not base64"))?;
                Some(
                    <[u8; 16]>::try_from(bytes.as_slice())
                        .map_err(|_| s3_error!(InvalidDigest, "Content-MD5 is not 16 bytes"))?,
                )
            }
            None => None,
        };
        Ok(Self { length, md5 })
    }
}

/// Why a guarded body was rejected; shared between the stream and the operation that owns it.
#[derive(Debug, Clone)]
enum BodyProblem {
    Incomplete {
        expected: u64,
        received: u64,
    },
    TooLong {
        expected: u64,
    },
    Md5Mismatch,
    /// The body does not hash to its `x-amz-content-sha256` (s3s's check fails the stream).
    Sha256Mismatch,
    /// The body stream failed: the client hung up, paused too long, or sent broken chunks.
    Interrupted(String),
}

impl BodyProblem {
    fn into_s3_error(self) -> s3s::S3Error {
        match self {
            Self::Incomplete { expected, received } => s3_error!(
                IncompleteBody,
                "the body ended after {received} of {expected} bytes (Content-Length); nothing was stored"
            ),
            Self::TooLong { expected } => {
                s3_error!(
                    IncompleteBody,
                    "the body is longer than its Content-Length of {expected} bytes; nothing was stored"
                )
            }
            Self::Md5Mismatch => s3_error!(BadDigest, "the body does not match its Content-MD5; nothing was stored"),
            Self::Sha256Mismatch => {
                let mut error = s3s::S3Error::with_message(
                    S3ErrorCode::Custom("XAmzContentSHA256Mismatch".into()),
                    "the body does not match its x-amz-content-sha256 header; nothing was stored",
                );
                error.set_status_code(hyper::StatusCode::BAD_REQUEST);
                error
            }
            Self::Interrupted(reason) => {
                s3_error!(IncompleteBody, "the body could not be read to its end ({reason}); nothing was stored")
            }
        }
    }
}

#[derive(Debug, Clone, Default)]
struct BodyFault(Arc<Mutex<Option<BodyProblem>>>);

impl BodyFault {
    fn set(&self, problem: BodyProblem) {
        *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(problem);
    }
    fn take(&self) -> Option<BodyProblem> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take()
    }
}

/// Passes a body through while counting and hashing it; at its end, yields an error instead of
/// the end-of-stream when the body is not what its headers promised. s3s-fs then drops its
/// temporary file instead of renaming it into place.
struct GuardedBody {
    inner: StreamingBlob,
    expected: ExpectedBody,
    received: u64,
    md5: Option<Md5>,
    fault: BodyFault,
    done: bool,
}

impl GuardedBody {
    fn new(inner: StreamingBlob, expected: ExpectedBody, fault: BodyFault) -> Self {
        let md5 = expected.md5.map(|_| Md5::new());
        Self { inner, expected, received: 0, md5, fault, done: false }
    }

    fn reject(&mut self, problem: BodyProblem) -> Poll<Option<Result<Bytes, StdError>>> {
        self.done = true;
        let message = format!("{problem:?}");
        self.fault.set(problem);
        Poll::Ready(Some(Err(Box::new(io::Error::new(io::ErrorKind::InvalidData, message)))))
    }
}

impl Stream for GuardedBody {
    type Item = Result<Bytes, StdError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                self.received += chunk.len() as u64;
                if let Some(expected) = self.expected.length.filter(|&n| self.received > n) {
                    return self.reject(BodyProblem::TooLong { expected });
                }
                if let Some(md5) = self.md5.as_mut() {
                    md5.update(&chunk);
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(error))) => {
                let reason = error.to_string();
                let problem = if reason.contains("Sha256Mismatch") {
                    BodyProblem::Sha256Mismatch
                } else {
                    BodyProblem::Interrupted(reason)
                };
                self.reject(problem)
            }
            Poll::Ready(None) => {
                if let Some(expected) = self.expected.length.filter(|&n| self.received < n) {
                    let received = self.received;
                    return self.reject(BodyProblem::Incomplete { expected, received });
                }
                if let (Some(md5), Some(want)) = (self.md5.take(), self.expected.md5) {
                    if md5.finalize() != want {
                        return self.reject(BodyProblem::Md5Mismatch);
                    }
                }
                self.done = true;
                Poll::Ready(None)
            }
            other => other,
        }
    }
}

impl ByteStream for GuardedBody {
    fn remaining_length(&self) -> RemainingLength {
        self.inner.remaining_length()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(chunks: &[&'static [u8]]) -> StreamingBlob {
        let chunks: Vec<Result<Bytes, io::Error>> = chunks.iter().map(|c| Ok(Bytes::from_static(c))).collect();
        StreamingBlob::wrap(VecStream(chunks.into_iter()))
    }

    struct VecStream(std::vec::IntoIter<Result<Bytes, io::Error>>);
    impl Stream for VecStream {
        type Item = Result<Bytes, io::Error>;
        fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            Poll::Ready(self.0.next())
        }
    }

    /// Drains a stream synchronously (every test stream is always ready).
    fn drain(mut body: GuardedBody) -> Vec<Result<Bytes, String>> {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut out = Vec::new();
        while let Poll::Ready(Some(item)) = Pin::new(&mut body).poll_next(&mut cx) {
            out.push(item.map_err(|e| e.to_string()));
        }
        out
    }

    #[test]
    fn short_body_ends_in_an_error_and_records_the_fault() {
        let fault = BodyFault::default();
        let expected = ExpectedBody { length: Some(10), md5: None };
        let items = drain(GuardedBody::new(blob(&[b"hello"]), expected, fault.clone()));
        assert_eq!(items.len(), 2);
        assert!(items[1].is_err());
        assert!(matches!(fault.take(), Some(BodyProblem::Incomplete { expected: 10, received: 5 })));
    }

    #[test]
    fn wrong_md5_ends_in_an_error_and_right_md5_passes() {
        let right = ExpectedBody::from_headers(Some(5), Some("XUFAKrxLKna5cZ2REBfFkg==")).unwrap(); // md5("hello")
        let fault = BodyFault::default();
        let items = drain(GuardedBody::new(blob(&[b"hel", b"lo"]), right, fault.clone()));
        assert_eq!(items.iter().filter(|i| i.is_ok()).count(), 2);
        assert!(items.iter().all(|i| i.is_ok()));
        assert!(fault.take().is_none());

        let wrong = ExpectedBody::from_headers(Some(5), Some("AAAAAAAAAAAAAAAAAAAAAA==")).unwrap();
        let items = drain(GuardedBody::new(blob(&[b"hello"]), wrong, fault.clone()));
        assert!(items.last().unwrap().is_err());
        assert!(matches!(fault.take(), Some(BodyProblem::Md5Mismatch)));
    }

    #[test]
    fn malformed_content_md5_is_refused() {
        assert!(ExpectedBody::from_headers(None, Some("not base64!")).is_err());
        assert!(ExpectedBody::from_headers(None, Some("aGVsbG8=")).is_err()); // 5 bytes, not 16
    }
}
