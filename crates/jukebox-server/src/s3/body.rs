//! Request and answer bodies of the S3 server, as streams.
//!
//! An upload's body is checked while it streams ([`GuardedBody`]): against its `Content-Length`
//! (too short or too long), its `Content-MD5`, and s3s's `x-amz-content-sha256` check. A body
//! that fails ends in an error instead of its end-of-stream, so whoever consumes it (our
//! `PutObject`, or s3s-fs's `UploadPart`) stops before storing anything, and the reason is kept in
//! a [`BodyFault`] for the operation to answer with the right S3 error ([`BodyProblem`]).
//!
//! A download's body is [`FileBody`]: the bytes of an open file from where it was seeked to, a
//! given count of them (a ranged GET sends part of the object).

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use s3s::crypto::{Checksum as _, Md5};
use s3s::dto::StreamingBlob;
use s3s::stream::{ByteStream, RemainingLength};
use s3s::{s3_error, S3ErrorCode, S3Result, StdError};
// AsyncRead needs tokio's `io-util`, which s3s-fs always enables.
use tokio::io::AsyncRead;

/// An object's bytes from where its file is seeked to, `remaining` of them, as a response body.
pub(super) struct FileBody {
    file: tokio::fs::File,
    remaining: u64,
    buf: Vec<u8>,
}

impl FileBody {
    pub(super) fn new(file: std::fs::File, remaining: u64) -> Self {
        Self { file: tokio::fs::File::from_std(file), remaining, buf: vec![0; 64 * 1024] }
    }
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

/// What the headers promise about a request body.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct ExpectedBody {
    length: Option<u64>,
    md5: Option<[u8; 16]>,
}

impl ExpectedBody {
    pub(super) fn from_headers(content_length: Option<i64>, content_md5: Option<&str>) -> S3Result<Self> {
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
pub(super) enum BodyProblem {
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
    pub(super) fn into_s3_error(self) -> s3s::S3Error {
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
pub(super) struct BodyFault(Arc<Mutex<Option<BodyProblem>>>);

impl BodyFault {
    fn set(&self, problem: BodyProblem) {
        *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(problem);
    }
    pub(super) fn take(&self) -> Option<BodyProblem> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take()
    }
}

/// Passes a body through while counting and hashing it; at its end, yields an error instead of
/// the end-of-stream when the body is not what its headers promised. s3s-fs then drops its
/// temporary file instead of renaming it into place.
pub(super) struct GuardedBody {
    inner: StreamingBlob,
    expected: ExpectedBody,
    received: u64,
    md5: Option<Md5>,
    fault: BodyFault,
    done: bool,
}

impl GuardedBody {
    pub(super) fn new(inner: StreamingBlob, expected: ExpectedBody, fault: BodyFault) -> Self {
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
