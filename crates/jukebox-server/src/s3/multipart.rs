//! Multipart uploads: the parts of one object sent separately, then joined into it.
//!
//! s3s-fs keeps the upload's state as files under the data root: `.upload-<id>.json` (the
//! access key that started it, checked on every part) and `.upload_id-<id>.part-<n>` (each part's
//! bytes). This server creates the upload itself ([`start`], with an id of s3s-fs's form, so
//! s3s-fs's `UploadPart` finds it) and completes it itself ([`complete`]): the listed parts are
//! joined into a staged file while each part's MD5 is checked against the ETag the client lists,
//! then committed like any upload (so the object's bytes and metadata change together); the
//! parts and the upload's files go. The ETag is S3's: the MD5 of the parts' MD5s, `-`, the count.

use std::io;
use std::path::Path;

use s3s::crypto::{Checksum as _, Md5};
use s3s::{s3_error, S3Result};

use super::store::{self, Checksums, Preconditions, Record, Store, StoreError};

/// Every part but the last must be at least this long (S3's rule).
const MIN_PART_BYTES: u64 = 5 * 1024 * 1024;

/// A multipart upload id as s3s-fs writes it (a lowercase hyphenated UUID), or `None`.
pub(super) fn upload_id(text: &str) -> Option<String> {
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

/// The file s3s-fs checks on every `UploadPart`: who may add parts to upload `id`.
fn owner_file(root: &Path, id: &str) -> std::path::PathBuf {
    root.join(format!(".upload-{id}.json"))
}

/// Starts an upload for `owner` (the access key that signed the request) and answers its id.
pub(super) async fn start(root: &Path, owner: Option<&str>) -> S3Result<String> {
    let id = new_upload_id()?;
    let owner = serde_json::to_vec(&owner).map_err(|e| s3_error!(InternalError, "{e}"))?;
    let path = owner_file(root, &id);
    tokio::fs::write(&path, owner)
        .await
        .map_err(|e| s3_error!(InternalError, "cannot write {}: {e}", path.display()))?;
    Ok(id)
}

/// Checks that the caller started multipart upload `id` (s3s-fs's `.upload-<id>.json` holds the
/// access key that did).
pub(super) async fn check_owner(root: &Path, id: &str, access_key: Option<&str>) -> S3Result<()> {
    let path = owner_file(root, id);
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

/// The parts a completion lists, `(part number, claimed ETag)`, checked for S3's rules: at
/// least one, in ascending order of number, numbers from 1.
pub(super) fn check_part_list(parts: &[(i32, Option<String>)]) -> S3Result<()> {
    if parts.is_empty() {
        return Err(s3_error!(InvalidPart, "the completion lists no part"));
    }
    if parts.windows(2).any(|w| w[0].0 >= w[1].0) || parts[0].0 < 1 {
        return Err(s3_error!(InvalidPartOrder, "the parts must be listed in ascending order of part number"));
    }
    Ok(())
}

/// Joins `parts` of `upload` into bucket `bucket`'s object `key` (blocking file work) and
/// answers the object's ETag; then removes the upload's parts and files.
pub(super) fn complete(
    store: &Store,
    upload: &str,
    parts: &[(i32, Option<String>)],
    (bucket, key): (&str, &str),
    conditions: &Preconditions,
) -> Result<String, StoreError> {
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
            let n = io::Read::read(&mut part, &mut buf)
                .map_err(|source| StoreError::Io { context: format!("cannot read {}", path.display()), source })?;
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
        if i + 1 < parts.len() && size < MIN_PART_BYTES {
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
        attributes: store.upload_attributes(upload),
    };
    store.commit(bucket, key, staged, record, conditions)?;
    // The upload is over: its parts (listed or not) and its files go.
    let prefix = format!(".upload_id-{upload}.part-");
    if let Ok(entries) = std::fs::read_dir(&root) {
        for entry in entries.flatten() {
            if entry.file_name().to_str().is_some_and(|n| n.starts_with(&prefix)) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    let _ = std::fs::remove_file(owner_file(&root, upload));
    store.forget_upload_attributes(upload);
    Ok(e_tag)
}
