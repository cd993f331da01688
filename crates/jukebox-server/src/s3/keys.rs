//! Object keys the S3 server refuses before any storage code sees them.
//!
//! s3s-fs maps bucket `B`'s key `K` to the file `<root>/B/K`, so a key that starts with `/`, has a
//! `.` or `..` segment, or holds a NUL byte would name a file outside the bucket's folder (or no
//! file at all). s3s-fs refuses those too, but as a 500; here they are a client's mistake, a 400
//! `InvalidArgument` naming the key: [`KeyCheck`] for the key in the request path, before s3s
//! parses the request, and [`check_inside`] for keys that travel elsewhere (a copy's source, the
//! keys of a `DeleteObjects` body).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use s3s::service::S3Service;
use s3s::{s3_error, S3Result};

/// Refuses, before s3s sees them, object keys that s3s-fs cannot map into the bucket folder
/// (a leading `/`, `.` or `..` segments): s3s-fs refuses them too, but as a 500.
#[derive(Clone)]
pub(super) struct KeyCheck(pub(super) S3Service);

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
    key_problem(path.strip_prefix('/')?.split_once('/')?.1)
}

/// Why `key` cannot name a file inside its bucket's folder, if it cannot: the one rule of both
/// checks.
fn key_problem(key: &str) -> Option<String> {
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

/// Refuses a key that would leave its bucket's folder (for keys not in the URI path, such as a
/// copy's source).
pub(super) fn check_inside(key: &str) -> S3Result<()> {
    match key_problem(key) {
        Some(problem) => Err(s3_error!(InvalidArgument, "{problem}")),
        None => Ok(()),
    }
}
