//! The S3 operations: which ones s3s-fs answers as it is, and how the others keep an object's
//! bytes and metadata together.
//!
//! [`GuardedFileSystem`] is what s3s calls for every parsed, authenticated request. Buckets,
//! listings and the upload of multipart parts go to s3s-fs's [`FileSystem`] unchanged (the
//! `forward` list below). Everything that writes, reads or deletes an object goes through the
//! [`Store`] instead: an upload streams through [`GuardedBody`] into a staged file while its
//! checksums are computed, and only a body that passes every check is committed with its ETag,
//! checksums and attributes; a read serves the record that describes the very file it opened.
//! A few bucket operations are answered as a single-tenant MinIO would (see the `s3` module
//! docs). Blocking file work runs on tokio's blocking threads ([`blocking`]); a [`StoreError`]
//! becomes the S3 error a client can act on ([`store_error`]).

use std::io::{self, Seek};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use futures_core::Stream;
use s3s::crypto::{Checksum as _, Md5};
use s3s::dto::{self, StreamingBlob};
use s3s::{s3_error, S3ErrorCode, S3Request, S3Response, S3Result, S3};
use s3s_fs::FileSystem;
// AsyncWriteExt needs tokio's `io-util`, which s3s-fs always enables.
use tokio::io::AsyncWriteExt;

use super::body::{BodyFault, BodyProblem, ExpectedBody, FileBody, GuardedBody};
use super::checks::{check_read_conditions, checksum_hasher, verify_checksums};
use super::keys::check_inside;
use super::multipart;
use super::store::{self, Attributes, Checksums, Opened, Preconditions, Record, Store, StoreError};

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
    /// s3s-fs's `inner` on `root` (the absolute path it uses) and the [`Store`] on the same
    /// root; `owner` is shown as every bucket's owner.
    pub(super) fn new(inner: FileSystem, store: Store, owner: String, root: PathBuf) -> Self {
        Self { inner, store: Arc::new(store), owner, root }
    }

    fn attributes_of(record: Option<&Record>) -> Attributes {
        record.map(|r| r.attributes.clone()).unwrap_or_default()
    }

    /// Opens bucket `bucket`'s object `key` for a read (`GetObject`, `HeadObject`) with its ETag
    /// (from its record, else from its bytes), once the read's conditions are met.
    async fn open_for_read(
        &self,
        (bucket, key): (&str, &str),
        if_match: Option<&dto::ETagCondition>,
        if_none_match: Option<&dto::ETagCondition>,
    ) -> S3Result<(Opened, String)> {
        let store = self.store.clone();
        let (b, k) = (bucket.to_owned(), key.to_owned());
        let found = blocking(move || {
            let Some(mut opened) = store.open_object(&b, &k)? else { return Ok(None) };
            let e_tag = opened
                .e_tag()
                .map_err(|source| StoreError::Io { context: format!("cannot read the object {k:?}"), source })?;
            Ok(Some((opened, e_tag)))
        })
        .await?;
        let Some((opened, e_tag)) = found else {
            return Err(s3_error!(NoSuchKey, "no object {key:?} in bucket {bucket:?}"));
        };
        check_read_conditions(&e_tag, if_match, if_none_match)?;
        Ok((opened, e_tag))
    }
}

/// The [`Attributes`] an upload request gives (`PutObject`, `CopyObject` with `REPLACE`,
/// `CreateMultipartUpload`: each its own input type with the same fields).
macro_rules! attributes_of_input {
    ($input:ident) => {
        Attributes {
            content_type: $input.content_type,
            content_encoding: $input.content_encoding,
            content_disposition: $input.content_disposition,
            content_language: $input.content_language,
            cache_control: $input.cache_control,
            expires: format_expires($input.expires),
            website_redirect_location: $input.website_redirect_location,
            user_metadata: $input.metadata,
        }
    };
}

/// An answer of type `dto::$output` with the given fields and the object's `checksums`; the
/// second form (`GetObject`, `HeadObject`) also with its length, modification time, ETag and
/// stored `attributes`.
macro_rules! object_answer {
    ($output:ident { $($field:ident: $value:expr,)* } checksums: $checksums:expr) => {{
        let checksums: Checksums = $checksums;
        dto::$output {
            $($field: $value,)*
            checksum_crc32: checksums.crc32,
            checksum_crc32c: checksums.crc32c,
            checksum_sha1: checksums.sha1,
            checksum_sha256: checksums.sha256,
            checksum_crc64nvme: checksums.crc64nvme,
            ..Default::default()
        }
    }};
    ($output:ident { $($field:ident: $value:expr,)* } $length:expr, $modified:expr, $e_tag:expr, $checksums:expr, $attributes:expr) => {{
        let attributes: Attributes = $attributes;
        object_answer!($output {
            $($field: $value,)*
            content_length: Some(i64::try_from($length).unwrap_or(i64::MAX)),
            last_modified: Some(dto::Timestamp::from($modified)),
            e_tag: Some(dto::ETag::Strong($e_tag)),
            content_type: attributes.content_type,
            content_encoding: attributes.content_encoding,
            content_disposition: attributes.content_disposition,
            content_language: attributes.content_language,
            cache_control: attributes.cache_control,
            expires: parse_expires(attributes.expires.as_ref()),
            website_redirect_location: attributes.website_redirect_location,
            metadata: attributes.user_metadata,
        } checksums: $checksums)
    }};
}

/// Expands to the `S3` impl: the `forward` operations go to s3s-fs; each `custom` one is written
/// as `fn op(&self, req: Input) -> Output { body }` and expands to s3s's `async fn op(&self, req:
/// S3Request<dto::Input>) -> S3Result<S3Response<dto::Output>>`. (A macro producing the whole
/// impl, because `#[async_trait]` must see every method.)
macro_rules! s3_impl {
    (
        forward { $($op:ident: $input:ident => $output:ident,)* }
        custom { $(fn $custom:ident(&$self:ident, $req:ident: $custom_input:ident) -> $custom_output:ident $body:block)* }
    ) => {
        #[async_trait::async_trait]
        impl S3 for GuardedFileSystem {
            $(
                async fn $op(&self, req: S3Request<dto::$input>) -> S3Result<S3Response<dto::$output>> {
                    self.inner.$op(req).await
                }
            )*
            $(
                async fn $custom(&$self, $req: S3Request<dto::$custom_input>) -> S3Result<S3Response<dto::$custom_output>>
                    $body
            )*
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
        fn delete_bucket(&self, req: DeleteBucketInput) -> DeleteBucketOutput {
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

        fn create_bucket(&self, req: CreateBucketInput) -> CreateBucketOutput {
            match self.inner.create_bucket(req).await {
                // One tenant: an existing bucket is always the caller's own.
                Err(e) if *e.code() == S3ErrorCode::BucketAlreadyExists => {
                    Err(s3_error!(BucketAlreadyOwnedByYou, "the bucket already exists and is yours"))
                }
                other => other,
            }
        }

        fn list_buckets(&self, req: ListBucketsInput) -> ListBucketsOutput {
            let mut response = self.inner.list_buckets(req).await?;
            response.output.owner = Some(dto::Owner {
                display_name: Some(self.owner.clone()),
                id: Some(self.owner.clone()),
            });
            Ok(response)
        }

        fn put_object(&self, req: PutObjectInput) -> PutObjectOutput {
            let mut req = req;
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
            let attributes = attributes_of_input!(input);
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
            Ok(S3Response::new(object_answer!(PutObjectOutput {
                e_tag: Some(dto::ETag::Strong(e_tag)),
            } checksums: checksums)))
        }

        fn get_object(&self, req: GetObjectInput) -> GetObjectOutput {
            let input = req.input;
            let object = (input.bucket.as_str(), input.key.as_str());
            let (opened, e_tag) =
                self.open_for_read(object, input.if_match.as_ref(), input.if_none_match.as_ref()).await?;
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
            let body = Some(StreamingBlob::wrap(FileBody::new(file, length)));
            let answer = object_answer!(GetObjectOutput { body: body, content_range: range, }
                length, opened.modified, e_tag, checksums, attributes);
            Ok(S3Response::new(answer))
        }

        fn head_object(&self, req: HeadObjectInput) -> HeadObjectOutput {
            let input = req.input;
            let object = (input.bucket.as_str(), input.key.as_str());
            let (Opened { identity, modified, record, .. }, e_tag) =
                self.open_for_read(object, input.if_match.as_ref(), input.if_none_match.as_ref()).await?;
            let checksums = record.as_ref().map(|r| r.checksums.clone()).unwrap_or_default();
            let attributes = Self::attributes_of(record.as_ref());
            let answer = object_answer!(HeadObjectOutput {} identity.size(), modified, e_tag, checksums, attributes);
            Ok(S3Response::new(answer))
        }

        fn copy_object(&self, req: CopyObjectInput) -> CopyObjectOutput {
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
            let new_attributes = replace.then(|| attributes_of_input!(input));
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

        fn delete_object(&self, req: DeleteObjectInput) -> DeleteObjectOutput {
            if req.input.key.ends_with('/') {
                // A folder object: s3s-fs removes the folder when it is empty.
                return self.inner.delete_object(req).await;
            }
            let (bucket, key) = (req.input.bucket, req.input.key);
            let store = self.store.clone();
            blocking(move || store.delete(&bucket, &key)).await?;
            Ok(S3Response::new(dto::DeleteObjectOutput::default()))
        }

        fn delete_objects(&self, req: DeleteObjectsInput) -> DeleteObjectsOutput {
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

        fn create_multipart_upload(&self, req: CreateMultipartUploadInput) -> CreateMultipartUploadOutput {
            let input = req.input;
            store::check_key(&input.key).map_err(store_error)?;
            if !s3s::path::check_bucket_name(&input.bucket) || !self.root.join(&input.bucket).is_dir() {
                return Err(s3_error!(NoSuchBucket, "the bucket {:?} does not exist", input.bucket));
            }
            let id = multipart::start(&self.root, req.credentials.as_ref().map(|c| c.access_key.as_str())).await?;
            let attributes = attributes_of_input!(input);
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

        fn complete_multipart_upload(&self, req: CompleteMultipartUploadInput) -> CompleteMultipartUploadOutput {
            let input = req.input;
            let Some(id) = multipart::upload_id(&input.upload_id) else {
                return Err(s3_error!(NoSuchUpload, "{:?} is not an upload id of this server", input.upload_id));
            };
            let access_key = req.credentials.as_ref().map(|c| c.access_key.as_str());
            multipart::check_owner(&self.root, &id, access_key).await?;
            let parts: Vec<(i32, Option<String>)> = input
                .multipart_upload
                .and_then(|m| m.parts)
                .unwrap_or_default()
                .into_iter()
                .map(|p| (p.part_number.unwrap_or(0), p.e_tag.map(|e| e.value().to_string())))
                .collect();
            multipart::check_part_list(&parts)?;
            let conditions = Preconditions { if_match: input.if_match, if_none_match: input.if_none_match };
            let (bucket, key) = (input.bucket, input.key);
            let store = self.store.clone();
            let (out_bucket, out_key) = (bucket.clone(), key.clone());
            let e_tag =
                blocking(move || multipart::complete(&store, &id, &parts, (&bucket, &key), &conditions)).await?;
            Ok(S3Response::new(dto::CompleteMultipartUploadOutput {
                bucket: Some(out_bucket),
                key: Some(out_key),
                e_tag: Some(dto::ETag::Strong(e_tag)),
                ..Default::default()
            }))
        }

        fn abort_multipart_upload(&self, req: AbortMultipartUploadInput) -> AbortMultipartUploadOutput {
            let id = multipart::upload_id(&req.input.upload_id);
            let response = self.inner.abort_multipart_upload(req).await?;
            if let Some(id) = id {
                self.store.forget_upload_attributes(&id);
            }
            Ok(response)
        }

        fn upload_part(&self, req: UploadPartInput) -> UploadPartOutput {
            let mut req = req;
            let expected = ExpectedBody::from_headers(req.input.content_length, req.input.content_md5.as_deref())?;
            let fault = BodyFault::default();
            if let Some(body) = req.input.body.take() {
                req.input.body = Some(StreamingBlob::new(GuardedBody::new(body, expected, fault.clone())));
            }
            self.inner.upload_part(req).await.map_err(|e| fault.take().map_or(e, BodyProblem::into_s3_error))
        }
    }
}
