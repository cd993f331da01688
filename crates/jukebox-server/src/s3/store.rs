//! How the S3 server keeps an object's bytes and its metadata (ETag, checksums, content type)
//! consistent and durable, without a database.
//!
//! An object `K` of bucket `B` is the plain file `<root>/B/K` (people look at it, tests read it).
//! Its metadata lives in `<root>/.jukebox-meta/<sha256 of "B/K">.json`: a name of fixed length
//! whatever the key's (S3 keys reach 1,024 bytes; a file name stops at 255). That file holds one
//! [`Record`] per data file it describes, each tagged with the data file's [`Identity`] (device,
//! inode, size, modification time; a rename keeps all four). A reader opens the data file first,
//! then takes the record whose identity matches the file it opened: a record that does not
//! describe the bytes being served is never used. Without a match (a crash between the two
//! renames below, a store written by an older version) the ETag is computed from the bytes and
//! no checksum is claimed, which is still true.
//!
//! A writer streams the body into a temporary file under `<root>/.jukebox-tmp` while MD5 and
//! the requested checksums are computed; a body that fails a check is dropped there, so the
//! existing object is never touched by a refused upload. The temporary file is fsynced and its
//! identity taken; then, under a per-key lock, the metadata file is replaced (the new record,
//! plus the record of the data file still in place, for readers that opened it a moment ago)
//! and the data file renamed over the old one. Two uploads of one key thus commit one after the
//! other and the last one's bytes and metadata win together. Folders are fsynced before the
//! upload is acknowledged.
//!
//! An object and a folder cannot share a name on a file system: `PUT f` while `f/g` exists, or
//! `PUT h/i` while `h` is an object, is refused with a [`StoreError`] naming both (a 409 to the
//! client). Empty folders left behind by deleted objects do not count.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

use s3s::crypto::{Checksum as _, Md5, Sha256};
use s3s::dto::{ETag, ETagCondition};
use serde::{Deserialize, Serialize};

/// Folder (under the data root) holding the metadata files; not a valid bucket name, so never
/// listed as a bucket.
pub(crate) const META_DIR: &str = ".jukebox-meta";
/// Folder (under the data root, so renames stay on one file system) for uploads in progress.
pub(crate) const TMP_DIR: &str = ".jukebox-tmp";
/// Sub-folder of [`META_DIR`] with the attributes given when a multipart upload was created.
const UPLOADS_DIR: &str = "uploads";
/// S3's limit on a key's length, in bytes.
pub(crate) const MAX_KEY_BYTES: usize = 1024;
/// A file name's limit on the usual file systems: each `/`-separated part of a key is one.
pub(crate) const MAX_SEGMENT_BYTES: usize = 255;
/// Independent commit locks; keys hash onto them.
const LOCK_STRIPES: usize = 64;

/// Why an object operation failed, in terms the S3 layer turns into an answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    #[error("the bucket {bucket:?} does not exist")]
    NoSuchBucket { bucket: String },
    #[error("{0}")]
    KeyTooLong(String),
    #[error(
        "cannot store the object {key:?}: {parent:?} is an object, and on this server an object \
         cannot also be a folder; delete {parent:?} first or choose another key"
    )]
    ParentIsObject { key: String, parent: String },
    #[error(
        "cannot store the object {key:?}: objects exist under the prefix \"{key}/\", and on this \
         server a name cannot be an object and a folder at once; delete them first or choose another key"
    )]
    FolderExists { key: String },
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("{0}")]
    InvalidPart(String),
    #[error("{0}")]
    EntityTooSmall(String),
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
}

fn io_error(context: impl Into<String>) -> impl FnOnce(io::Error) -> StoreError {
    let context = context.into();
    move |source| StoreError::Io { context, source }
}

/// What identifies one data file: any rewrite of the key gives a new file with another inode
/// (or, if the inode number is reused, almost surely another size or modification time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Identity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_s: i64,
    mtime_ns: i64,
}

impl Identity {
    pub(crate) fn of(meta: &fs::Metadata) -> Self {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Self {
                dev: meta.dev(),
                ino: meta.ino(),
                size: meta.len(),
                mtime_s: meta.mtime(),
                mtime_ns: meta.mtime_nsec(),
            }
        }
        #[cfg(not(unix))]
        {
            let since =
                meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).unwrap_or_default();
            Self {
                dev: 0,
                ino: 0,
                size: meta.len(),
                mtime_s: since.as_secs() as i64,
                mtime_ns: i64::from(since.subsec_nanos()),
            }
        }
    }

    pub(crate) fn size(&self) -> u64 {
        self.size
    }
}

/// The standard attributes and user metadata given with an upload, served back on GET/HEAD
/// (absent ones are left out of the metadata file).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Attributes {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub cache_control: Option<String>,
    /// `Expires`, in S3's date-time format.
    pub expires: Option<String>,
    pub website_redirect_location: Option<String>,
    pub user_metadata: Option<HashMap<String, String>>,
}

/// The checksums verified when the object was written (base64, as S3 sends them; absent ones are
/// left out of the metadata file).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Checksums {
    pub crc32: Option<String>,
    pub crc32c: Option<String>,
    pub sha1: Option<String>,
    pub sha256: Option<String>,
    pub crc64nvme: Option<String>,
}

/// The metadata of one data file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Record {
    pub identity: Identity,
    /// Without quotes: the hex MD5, or `<hex>-<parts>` for a multipart upload.
    pub e_tag: String,
    #[serde(default)]
    pub checksums: Checksums,
    #[serde(default)]
    pub attributes: Attributes,
}

/// A metadata file: the key it belongs to (a check against hash collisions and a help to
/// whoever reads the folder) and its records, newest first.
#[derive(Debug, Default, Serialize, Deserialize)]
struct MetaFile {
    bucket: String,
    key: String,
    records: Vec<Record>,
}

/// A data file opened for reading, with the record that describes it if there is one.
#[derive(Debug)]
pub(crate) struct Opened {
    pub file: File,
    pub identity: Identity,
    pub modified: SystemTime,
    pub record: Option<Record>,
}

impl Opened {
    /// The record's ETag, or the MD5 of the bytes (read from the opened file, then rewound).
    pub(crate) fn e_tag(&mut self) -> io::Result<String> {
        if let Some(record) = &self.record {
            return Ok(record.e_tag.clone());
        }
        self.file.seek(SeekFrom::Start(0))?;
        let md5 = md5_of(&mut self.file)?;
        self.file.seek(SeekFrom::Start(0))?;
        Ok(md5)
    }
}

/// A temporary file holding an upload's bytes; removed when dropped unless committed.
#[derive(Debug)]
pub(crate) struct Staged {
    path: PathBuf,
    committed: bool,
}

impl Staged {
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Conditions of a conditional write (`If-Match`, `If-None-Match`), checked at commit time.
#[derive(Debug, Clone, Default)]
pub(crate) struct Preconditions {
    pub if_match: Option<ETagCondition>,
    pub if_none_match: Option<ETagCondition>,
}

/// The objects of every bucket under one data root, with their metadata.
#[derive(Debug)]
pub(crate) struct Store {
    root: PathBuf,
    counter: AtomicU64,
    locks: Vec<Mutex<()>>,
}

impl Store {
    /// Opens the store on `root` (absolute), creating its folders and removing uploads that
    /// were in progress when the previous server stopped.
    pub(crate) fn open(root: &Path) -> io::Result<Self> {
        fs::create_dir_all(root.join(META_DIR).join(UPLOADS_DIR))?;
        let tmp = root.join(TMP_DIR);
        fs::create_dir_all(&tmp)?;
        for entry in fs::read_dir(&tmp)? {
            let _ = fs::remove_file(entry?.path());
        }
        Ok(Self {
            root: root.to_path_buf(),
            counter: AtomicU64::new(0),
            locks: (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
        })
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    fn bucket_dir(&self, bucket: &str) -> Result<PathBuf, StoreError> {
        let dir = self.root.join(bucket);
        if s3s::path::check_bucket_name(bucket) && dir.is_dir() {
            Ok(dir)
        } else {
            Err(StoreError::NoSuchBucket { bucket: bucket.to_string() })
        }
    }

    /// The key's data file (keys are checked not to leave the bucket before they get here).
    pub(crate) fn object_path(&self, bucket: &str, key: &str) -> PathBuf {
        self.root.join(bucket).join(key)
    }

    fn key_hash(bucket: &str, key: &str) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(bucket.as_bytes());
        hasher.update(b"/");
        hasher.update(key.as_bytes());
        hasher.finalize()
    }

    fn meta_path(&self, hash: &[u8; 32]) -> PathBuf {
        self.root.join(META_DIR).join(format!("{}.json", hex(hash)))
    }

    fn lock(&self, hash: &[u8; 32]) -> MutexGuard<'_, ()> {
        let stripe = usize::from(hash[0]) % self.locks.len();
        self.locks[stripe].lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn read_meta(&self, hash: &[u8; 32], bucket: &str, key: &str) -> MetaFile {
        let parsed =
            fs::read(self.meta_path(hash)).ok().and_then(|bytes| serde_json::from_slice::<MetaFile>(&bytes).ok());
        match parsed {
            Some(meta) if meta.bucket == bucket && meta.key == key => meta,
            _ => MetaFile { bucket: bucket.to_string(), key: key.to_string(), records: Vec::new() },
        }
    }

    /// A new temporary file for an upload's bytes.
    pub(crate) fn stage(&self) -> Result<(Staged, File), StoreError> {
        loop {
            let name = format!("{}-{}.part", std::process::id(), self.counter.fetch_add(1, Ordering::Relaxed));
            let path = self.root.join(TMP_DIR).join(name);
            // `create_new`: another store on this folder in this process may use the same names.
            match File::options().write(true).read(true).create_new(true).open(&path) {
                Ok(file) => return Ok((Staged { path, committed: false }, file)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io_error(format!("cannot create the temporary file {}", path.display()))(e)),
            }
        }
    }

    /// Opens the object for reading. `Ok(None)`: there is no such object (including a key that
    /// names a folder, or runs through an object as if it were a folder).
    pub(crate) fn open_object(&self, bucket: &str, key: &str) -> Result<Option<Opened>, StoreError> {
        self.bucket_dir(bucket)?;
        let path = self.object_path(bucket, key);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if is_absent(&e) => return Ok(None),
            Err(e) => return Err(io_error(format!("cannot open {}", path.display()))(e)),
        };
        let meta = file.metadata().map_err(io_error(format!("cannot read the attributes of {}", path.display())))?;
        if !meta.is_file() {
            return Ok(None);
        }
        let identity = Identity::of(&meta);
        let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        let hash = Self::key_hash(bucket, key);
        let record = self.read_meta(&hash, bucket, key).records.into_iter().find(|r| r.identity == identity);
        Ok(Some(Opened { file, identity, modified, record }))
    }

    /// Fsyncs a staged file and returns its identity (kept by the rename of [`Store::commit`]).
    pub(crate) fn seal(staged: &Staged, file: &File) -> Result<Identity, StoreError> {
        file.sync_all().map_err(io_error(format!("cannot flush {} to disk", staged.path.display())))?;
        let meta =
            file.metadata().map_err(io_error(format!("cannot read the attributes of {}", staged.path.display())))?;
        Ok(Identity::of(&meta))
    }

    /// Makes `staged` the object `key`, described by `record`: metadata first, then the data,
    /// both under the key's lock; both durable when this returns.
    pub(crate) fn commit(
        &self,
        bucket: &str,
        key: &str,
        mut staged: Staged,
        record: Record,
        conditions: &Preconditions,
    ) -> Result<(), StoreError> {
        let bucket_dir = self.bucket_dir(bucket)?;
        check_key(key)?;
        let hash = Self::key_hash(bucket, key);
        let meta_path = self.meta_path(&hash);
        let guard = self.lock(&hash);
        let path = self.make_room(&bucket_dir, key)?;

        let mut meta = self.read_meta(&hash, bucket, key);
        let current = match fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() => Some(Identity::of(&m)),
            _ => None,
        };
        let previous = current.and_then(|id| meta.records.iter().find(|r| r.identity == id).cloned());
        self.check_preconditions(&path, current.is_some(), previous.as_ref(), conditions)?;

        meta.records = std::iter::once(record).chain(previous).collect();
        let json = serde_json::to_vec(&meta).map_err(|e| StoreError::Io {
            context: "cannot encode the object's metadata".into(),
            source: io::Error::other(e),
        })?;
        let (mut meta_tmp, mut meta_file) = self.stage()?;
        meta_file
            .write_all(&json)
            .and_then(|()| meta_file.sync_all())
            .map_err(io_error(format!("cannot write {}", meta_tmp.path.display())))?;
        drop(meta_file);
        fs::rename(&meta_tmp.path, &meta_path).map_err(io_error(format!("cannot write {}", meta_path.display())))?;
        meta_tmp.committed = true;

        fs::rename(&staged.path, &path).map_err(|source| match source.kind() {
            io::ErrorKind::IsADirectory | io::ErrorKind::DirectoryNotEmpty => {
                StoreError::FolderExists { key: key.into() }
            }
            _ => StoreError::Io { context: format!("cannot move the upload into place at {}", path.display()), source },
        })?;
        staged.committed = true;
        drop(guard);

        sync_dir(&self.root.join(META_DIR))?;
        self.sync_parents(&path)
    }

    /// Creates the folders above the object and clears the way: every part of the key before
    /// the last `/` must be a folder, and the key itself must not be a folder holding objects.
    fn make_room(&self, bucket_dir: &Path, key: &str) -> Result<PathBuf, StoreError> {
        let path = bucket_dir.join(key);
        let segments: Vec<&str> = key.split('/').collect();
        let mut ancestor = bucket_dir.to_path_buf();
        for (i, segment) in segments[..segments.len() - 1].iter().enumerate() {
            if segment.is_empty() {
                continue;
            }
            ancestor.push(segment);
            match fs::symlink_metadata(&ancestor) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(StoreError::ParentIsObject { key: key.into(), parent: segments[..=i].join("/") });
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                Err(e) => return Err(io_error(format!("cannot inspect {}", ancestor.display()))(e)),
            }
        }
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(io_error(format!("cannot create the folder {}", parent.display())))?;
        }
        if fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
            if holds_files(&path).map_err(io_error(format!("cannot list {}", path.display())))? {
                return Err(StoreError::FolderExists { key: key.trim_end_matches('/').into() });
            }
            // Only empty folders, left by deleted objects: they name no object, so they yield.
            fs::remove_dir_all(&path)
                .map_err(io_error(format!("cannot remove the empty folder {}", path.display())))?;
        }
        Ok(path)
    }

    fn check_preconditions(
        &self,
        path: &Path,
        exists: bool,
        record: Option<&Record>,
        conditions: &Preconditions,
    ) -> Result<(), StoreError> {
        let current_e_tag = || -> Result<String, StoreError> {
            match record {
                Some(r) => Ok(r.e_tag.clone()),
                None => File::open(path)
                    .and_then(|mut f| md5_of(&mut f))
                    .map_err(io_error(format!("cannot read {}", path.display()))),
            }
        };
        if let Some(condition) = &conditions.if_none_match {
            if exists {
                match condition {
                    ETagCondition::Any => {
                        return Err(StoreError::PreconditionFailed(
                            "the object already exists (If-None-Match: *)".into(),
                        ))
                    }
                    ETagCondition::ETag(e_tag) if e_tag.weak_cmp(&ETag::Strong(current_e_tag()?)) => {
                        return Err(StoreError::PreconditionFailed("the object's ETag matches If-None-Match".into()))
                    }
                    ETagCondition::ETag(_) => {}
                }
            }
        }
        if let Some(condition) = &conditions.if_match {
            if !exists {
                return Err(StoreError::PreconditionFailed("the object does not exist (If-Match)".into()));
            }
            if let ETagCondition::ETag(e_tag) = condition {
                if !e_tag.strong_cmp(&ETag::Strong(current_e_tag()?)) {
                    return Err(StoreError::PreconditionFailed("the object's ETag does not match If-Match".into()));
                }
            }
        }
        Ok(())
    }

    /// Fsyncs every folder from the object's own up to the data root, so the entries of folders
    /// an upload created are durable too.
    fn sync_parents(&self, path: &Path) -> Result<(), StoreError> {
        let mut folder = path.parent();
        while let Some(dir) = folder {
            sync_dir(dir)?;
            if dir == self.root {
                break;
            }
            folder = dir.parent().filter(|parent| parent.starts_with(&self.root));
        }
        Ok(())
    }

    /// Creates the folder object `key` (ending in `/`), refusing when a part of it is an object.
    pub(crate) fn make_folder(&self, bucket: &str, key: &str) -> Result<(), StoreError> {
        let bucket_dir = self.bucket_dir(bucket)?;
        check_key(key)?;
        let hash = Self::key_hash(bucket, key);
        let _guard = self.lock(&hash);
        // `make_room` checks the parts before the last `/`, i.e. all of the folder's path.
        let path = bucket_dir.join(key);
        let segments: Vec<&str> = key.trim_end_matches('/').split('/').collect();
        let mut ancestor = bucket_dir.clone();
        for (i, segment) in segments.iter().enumerate() {
            ancestor.push(segment);
            if fs::symlink_metadata(&ancestor).is_ok_and(|m| !m.is_dir()) {
                return Err(StoreError::ParentIsObject { key: key.into(), parent: segments[..=i].join("/") });
            }
        }
        fs::create_dir_all(&path).map_err(io_error(format!("cannot create the folder {}", path.display())))?;
        self.sync_parents(&path.join("."))
    }

    /// Deletes the object `key`; a key that names no object (absent, a folder, or running
    /// through an object) is not an error, as in S3. Durable when this returns.
    pub(crate) fn delete(&self, bucket: &str, key: &str) -> Result<(), StoreError> {
        self.bucket_dir(bucket)?;
        let path = self.object_path(bucket, key);
        let hash = Self::key_hash(bucket, key);
        let guard = self.lock(&hash);
        let is_file = match fs::symlink_metadata(&path) {
            Ok(m) => m.is_file(),
            Err(e) if is_absent(&e) => false,
            Err(e) => return Err(io_error(format!("cannot inspect {}", path.display()))(e)),
        };
        if !is_file {
            return Ok(());
        }
        fs::remove_file(&path).map_err(io_error(format!("cannot delete {}", path.display())))?;
        let _ = fs::remove_file(self.meta_path(&hash));
        drop(guard);
        match path.parent() {
            Some(parent) => sync_dir(parent),
            None => Ok(()),
        }
    }

    /// Where the attributes of multipart upload `upload_id` (already validated) are kept.
    fn upload_attributes_path(&self, upload_id: &str) -> PathBuf {
        self.root.join(META_DIR).join(UPLOADS_DIR).join(format!("{upload_id}.json"))
    }

    pub(crate) fn save_upload_attributes(&self, upload_id: &str, attributes: &Attributes) -> Result<(), StoreError> {
        let path = self.upload_attributes_path(upload_id);
        let json = serde_json::to_vec(attributes).map_err(|e| StoreError::Io {
            context: "cannot encode the upload's attributes".into(),
            source: io::Error::other(e),
        })?;
        fs::write(&path, json).map_err(io_error(format!("cannot write {}", path.display())))
    }

    pub(crate) fn upload_attributes(&self, upload_id: &str) -> Attributes {
        fs::read(self.upload_attributes_path(upload_id))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    pub(crate) fn forget_upload_attributes(&self, upload_id: &str) {
        let _ = fs::remove_file(self.upload_attributes_path(upload_id));
    }
}

/// Refuses keys this store cannot hold: over S3's 1,024 bytes, or with a `/`-separated part
/// longer than a file name may be.
pub(crate) fn check_key(key: &str) -> Result<(), StoreError> {
    if key.len() > MAX_KEY_BYTES {
        return Err(StoreError::KeyTooLong(format!(
            "the key is {} bytes; S3 keys are at most {MAX_KEY_BYTES} bytes",
            key.len()
        )));
    }
    if let Some(segment) = key.split('/').find(|s| s.len() > MAX_SEGMENT_BYTES) {
        let start: String = segment.chars().take(40).collect();
        return Err(StoreError::KeyTooLong(format!(
            "the part of the key starting {start:?} is {} bytes long; this server stores each \
             '/'-separated part of a key as a file name, at most {MAX_SEGMENT_BYTES} bytes: insert a '/'",
            segment.len()
        )));
    }
    Ok(())
}

/// An error that means "no such file here": absent, a path through a file, a name too long.
fn is_absent(error: &io::Error) -> bool {
    matches!(error.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory | io::ErrorKind::InvalidFilename)
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(format!("cannot flush the folder {} to disk", dir.display())))
}

/// True when the folder holds a file anywhere below it.
pub(crate) fn holds_files(folder: &Path) -> io::Result<bool> {
    for entry in fs::read_dir(folder)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if !kind.is_dir() || holds_files(&entry.path())? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The hex MD5 of what `reader` yields.
pub(crate) fn md5_of(reader: &mut impl Read) -> io::Result<String> {
    let mut md5 = Md5::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        md5.update(&buf[..n]);
    }
    Ok(hex(&md5.finalize()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        fs::create_dir_all(root.join("models")).unwrap();
        let store = Store::open(&root).unwrap();
        (dir, store)
    }

    fn put(store: &Store, key: &str, bytes: &[u8]) -> Result<Record, StoreError> {
        let (staged, mut file) = store.stage()?;
        file.write_all(bytes).unwrap();
        let identity = Store::seal(&staged, &file)?;
        let record = Record {
            identity,
            e_tag: hex(&<Md5 as s3s::crypto::Checksum>::checksum(bytes)),
            checksums: Checksums::default(),
            attributes: Attributes::default(),
        };
        store.commit("models", key, staged, record.clone(), &Preconditions::default())?;
        Ok(record)
    }

    #[test]
    fn a_record_is_served_only_with_the_data_file_it_describes() {
        let (_dir, store) = store();
        let record = put(&store, "a/b.bin", b"one").unwrap();
        let opened = store.open_object("models", "a/b.bin").unwrap().unwrap();
        assert_eq!(opened.record.as_ref(), Some(&record));

        // Someone replaces the bytes behind the store's back: the record no longer applies and
        // the ETag is computed from what is actually there.
        let path = store.object_path("models", "a/b.bin");
        fs::remove_file(&path).unwrap();
        fs::write(&path, b"other bytes").unwrap();
        let mut opened = store.open_object("models", "a/b.bin").unwrap().unwrap();
        assert!(opened.record.is_none());
        assert_eq!(opened.e_tag().unwrap(), hex(&<Md5 as s3s::crypto::Checksum>::checksum(b"other bytes")));
    }

    #[test]
    fn the_previous_record_is_kept_for_readers_of_the_previous_file() {
        let (_dir, store) = store();
        let first = put(&store, "k", b"first").unwrap();
        let reader = store.open_object("models", "k").unwrap().unwrap();
        let second = put(&store, "k", b"second").unwrap();
        let meta = store.read_meta(&Store::key_hash("models", "k"), "models", "k");
        assert_eq!(meta.records, vec![second, first.clone()]);
        assert_eq!(reader.record, Some(first));
    }

    #[test]
    fn long_keys_get_short_metadata_names_and_over_long_parts_are_refused() {
        let (_dir, store) = store();
        let key = format!("{}/{}/{}/{}/e", "a".repeat(255), "b".repeat(255), "c".repeat(255), "d".repeat(254));
        assert_eq!(key.len(), 1024);
        put(&store, &key, b"x").unwrap();
        assert!(store.open_object("models", &key).unwrap().unwrap().record.is_some());
        assert!(matches!(put(&store, &"e".repeat(300), b"x"), Err(StoreError::KeyTooLong(_))));
        assert!(matches!(put(&store, &"f/".repeat(513), b"x"), Err(StoreError::KeyTooLong(_))));
    }

    #[test]
    fn objects_and_folders_of_one_name_are_refused_and_empty_folders_yield() {
        let (_dir, store) = store();
        put(&store, "f/g", b"x").unwrap();
        assert!(matches!(put(&store, "f", b"y"), Err(StoreError::FolderExists { .. })));
        put(&store, "h", b"x").unwrap();
        let error = put(&store, "h/i", b"y").unwrap_err();
        assert!(matches!(&error, StoreError::ParentIsObject { parent, .. } if parent == "h"), "{error}");
        assert!(store.open_object("models", "f").unwrap().is_none());
        assert!(store.open_object("models", "h/i").unwrap().is_none());
        store.delete("models", "f").unwrap();
        store.delete("models", "h/i").unwrap();
        assert!(store.open_object("models", "f/g").unwrap().is_some());

        store.delete("models", "f/g").unwrap();
        put(&store, "f", b"now a file").unwrap();
        assert!(store.open_object("models", "f").unwrap().is_some());
    }

    #[test]
    fn conditional_writes_check_the_current_object() {
        let (_dir, store) = store();
        put(&store, "c", b"1").unwrap();
        let (staged, file) = store.stage().unwrap();
        let identity = Store::seal(&staged, &file).unwrap();
        let record =
            Record { identity, e_tag: "x".into(), checksums: Checksums::default(), attributes: Attributes::default() };
        let conditions = Preconditions { if_none_match: Some(ETagCondition::Any), if_match: None };
        assert!(matches!(
            store.commit("models", "c", staged, record, &conditions),
            Err(StoreError::PreconditionFailed(_))
        ));
        assert_eq!(fs::read(store.object_path("models", "c")).unwrap(), b"1");
        assert_eq!(fs::read_dir(store.root().join(TMP_DIR)).unwrap().count(), 0, "the refused upload's file is gone");
    }
}
