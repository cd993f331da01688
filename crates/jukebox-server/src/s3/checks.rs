//! What the S3 server checks an upload's bytes and a read's conditions against.
//!
//! A client may declare checksums of an upload (`x-amz-checksum-crc32` and its siblings, as a
//! header or as a trailer after the body, or only the algorithm it wants computed):
//! [`checksum_hasher`] computes what was asked for while the body streams in, and
//! [`verify_checksums`] refuses the upload (400 `BadDigest`, nothing stored) unless every declared
//! value matches. A read's `If-Match` / `If-None-Match` are weighed against the object's ETag by
//! [`check_read_conditions`] (412 `PreconditionFailed`, 304 `NotModified`).

use s3s::checksum::ChecksumHasher;
use s3s::crypto::Checksum;
use s3s::dto;
use s3s::{s3_error, S3Result};

use super::store::Checksums;

/// The checksums an upload asks for (a value in a header, the algorithm header, or a trailer
/// announced in `x-amz-trailer`), ready to be computed while the body streams in.
pub(super) fn checksum_hasher(
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
pub(super) fn verify_checksums(key: &str, declared: &Checksums, computed: &dto::Checksum) -> S3Result<Checksums> {
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
pub(super) fn check_read_conditions(
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
