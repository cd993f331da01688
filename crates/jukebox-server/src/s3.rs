//! An S3-compatible object store on a local folder: the laptop stand-in for MinIO.
//!
//! The S3 protocol (SigV4 authentication, XML bodies, routing) comes from [`s3s`]; the storage
//! from [`s3s_fs`], which keeps bucket `B`'s object `K` in the file `<root>/B/K`. This module adds
//! what a workshop needs on top:
//!
//! - **one set of credentials** ([`S3Config::access_key`] / [`S3Config::secret_key`]); every
//!   request must be signed with them, anything else is answered `403` and stores nothing;
//! - **no half-written objects**: s3s-fs already writes each upload to a temporary file and renames
//!   it into place when the body is complete. It checks `Content-MD5` and `x-amz-checksum-*` only
//!   *after* that rename, so a body that is shorter than its `Content-Length` or whose MD5 is wrong
//!   could land. [`GuardedFileSystem`] checks length and MD5 while the bytes stream in and fails the
//!   stream before the rename; an object whose (trailer) checksum turns out wrong afterwards is
//!   deleted again;
//! - **the answers clients expect from a single-tenant server**: creating a bucket that exists
//!   answers `BucketAlreadyOwnedByYou` (what AWS answers its owner in us-east-1, which clients treat
//!   as success), and `ListBuckets` names an owner (rust-s3's `Bucket::exists` needs one);
//! - **no silent loss**: `DeleteBucket` on a bucket that still holds objects answers 409
//!   `BucketNotEmpty` and deletes nothing (s3s-fs would delete the whole folder); every completed
//!   upload (`PutObject`, `CompleteMultipartUpload`) is fsynced, file and folder, before it is
//!   acknowledged, so it survives a power loss;
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

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use s3s::auth::{S3Auth, SecretKey, SimpleAuth};
use s3s::crypto::{Checksum, Md5};
use s3s::dto::{self, StreamingBlob};
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::stream::{ByteStream, RemainingLength};
use s3s::{s3_error, S3ErrorCode, S3Request, S3Response, S3Result, StdError, S3};
use s3s_fs::FileSystem;
use tokio::net::TcpListener;

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
    let store = FileSystem::new(&config.root)
        .map_err(|e| S3Error::OpenStore { path: config.root.clone(), message: format!("{e:?}") })?;
    let mut builder = S3ServiceBuilder::new(GuardedFileSystem {
        inner: store,
        owner: config.access_key.clone(),
        root: config.root.clone(),
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
    serve_http(listener, KeyCheck(service), config.timeouts, "s3", shutdown).await;
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

/// Flushes a completed object's file to disk, then every folder from its own up to the data
/// root, so the entries of folders the upload created are durable too.
async fn sync_object(root: &Path, bucket: &str, key: &str) -> S3Result<()> {
    let root = root.to_path_buf();
    let path = root.join(bucket).join(key);
    tokio::task::spawn_blocking(move || -> io::Result<()> {
        std::fs::File::open(&path)?.sync_all()?;
        let mut folder = path.parent();
        while let Some(dir) = folder {
            std::fs::File::open(dir)?.sync_all()?;
            if dir == root {
                break;
            }
            folder = dir.parent().filter(|parent| parent.starts_with(&root));
        }
        Ok(())
    })
    .await
    .map_err(|e| s3_error!(InternalError, "fsync worker failed: {e}"))?
    .map_err(|e| s3_error!(InternalError, "cannot flush the stored object to disk: {e}"))
}

/// True when the bucket folder holds a file anywhere below it.
fn holds_objects(folder: &Path) -> io::Result<bool> {
    for entry in std::fs::read_dir(folder)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if !kind.is_dir() || holds_objects(&entry.path())? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// s3s-fs's [`FileSystem`] with upload bodies checked before they become visible, and the
/// single-tenant answers described in the module docs. Every other operation is passed through.
pub struct GuardedFileSystem {
    inner: FileSystem,
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
        copy_object: CopyObjectInput => CopyObjectOutput,
        delete_object: DeleteObjectInput => DeleteObjectOutput,
        delete_objects: DeleteObjectsInput => DeleteObjectsOutput,
        get_bucket_location: GetBucketLocationInput => GetBucketLocationOutput,
        get_object: GetObjectInput => GetObjectOutput,
        head_bucket: HeadBucketInput => HeadBucketOutput,
        head_object: HeadObjectInput => HeadObjectOutput,
        list_objects: ListObjectsInput => ListObjectsOutput,
        list_objects_v2: ListObjectsV2Input => ListObjectsV2Output,
        create_multipart_upload: CreateMultipartUploadInput => CreateMultipartUploadOutput,
        upload_part_copy: UploadPartCopyInput => UploadPartCopyOutput,
        list_parts: ListPartsInput => ListPartsOutput,
        abort_multipart_upload: AbortMultipartUploadInput => AbortMultipartUploadOutput,
    }
    custom {
        async fn delete_bucket(
            &self,
            req: S3Request<dto::DeleteBucketInput>,
        ) -> S3Result<S3Response<dto::DeleteBucketOutput>> {
            let folder = self.root.join(&req.input.bucket);
            if s3s::path::check_bucket_name(&req.input.bucket) && folder.is_dir() {
                let busy = tokio::task::spawn_blocking(move || holds_objects(&folder))
                    .await
                    .map_err(|e| s3_error!(InternalError, "{e}"))?
                    .map_err(|e| s3_error!(InternalError, "cannot list the bucket folder: {e}"))?;
                if busy {
                    return Err(s3_error!(BucketNotEmpty, "the bucket is not empty; delete its objects first"));
                }
            }
            self.inner.delete_bucket(req).await
        }

        async fn complete_multipart_upload(
            &self,
            req: S3Request<dto::CompleteMultipartUploadInput>,
        ) -> S3Result<S3Response<dto::CompleteMultipartUploadOutput>> {
            let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
            let response = self.inner.complete_multipart_upload(req).await?;
            sync_object(&self.root, &bucket, &key).await?;
            Ok(response)
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
            let fault = BodyFault::default();
            if let Some(body) = req.input.body.take() {
                req.input.body = Some(StreamingBlob::new(GuardedBody::new(body, expected, fault.clone())));
            }
            let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
            let delete_request =
                forget_body(&req, dto::DeleteObjectInput { bucket: bucket.clone(), key: key.clone(), ..Default::default() });
            match self.inner.put_object(req).await {
                Err(e) => {
                    if let Some(message) = fault.take() {
                        return Err(message.into_s3_error());
                    }
                    if *e.code() == S3ErrorCode::BadDigest {
                        // s3s-fs compares checksums after renaming the file into place: take the
                        // corrupt object away again so nobody reads it as complete.
                        let _ = self.inner.delete_object(delete_request).await;
                    }
                    Err(e)
                }
                Ok(response) => {
                    sync_object(&self.root, &bucket, &key).await?;
                    Ok(response)
                }
            }
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

/// A request for a follow-up operation on behalf of the same caller (same credentials, no body).
fn forget_body<T, U>(req: &S3Request<T>, input: U) -> S3Request<U> {
    S3Request {
        input,
        method: hyper::Method::DELETE,
        uri: req.uri.clone(),
        headers: hyper::HeaderMap::new(),
        extensions: hyper::http::Extensions::new(),
        credentials: req.credentials.clone(),
        region: req.region.clone(),
        service: req.service.clone(),
        trailing_headers: None,
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
