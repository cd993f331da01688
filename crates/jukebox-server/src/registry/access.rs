//! Who may call the registry: the checks every request passes before its handler (see the
//! `registry` module docs, "Who may write"). On a loopback address, the `Host` and any `Origin`
//! must be loopback names (against DNS rebinding and cross-site requests); a write must carry the
//! bearer token when one is set, and declare a JSON body.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::RegistryError;

/// What [`router_with`](super::router_with) checks on every request.
#[derive(Debug, Clone, Default)]
pub struct AccessRules {
    /// Bearer token for writes.
    pub token: Option<String>,
    /// Apply the loopback `Host`/`Origin` rule (the server is bound to a loopback address).
    pub loopback_only: bool,
    /// Request body limit; 0 = [`DEFAULT_MAX_BODY_BYTES`](super::DEFAULT_MAX_BODY_BYTES).
    pub max_body_bytes: usize,
}

/// The checks every request passes before its handler: loopback `Host`/`Origin` (when bound to
/// loopback), then for writes the token and a JSON content type.
pub(super) async fn guard(State(rules): State<Arc<AccessRules>>, request: Request, next: Next) -> Response {
    match check_access(&rules, request.method(), request.headers()) {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

fn check_access(rules: &AccessRules, method: &Method, headers: &HeaderMap) -> Result<(), RegistryError> {
    if rules.loopback_only {
        if let Some(host) = headers.get(header::HOST) {
            let host = host.to_str().unwrap_or("");
            if !is_loopback_authority(host) {
                return Err(RegistryError::Forbidden(format!(
                    "Host {host:?} is not a loopback name; this registry listens on loopback and answers only localhost, 127.0.0.1 or [::1]"
                )));
            }
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("");
            let authority = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"));
            if !authority.is_some_and(is_loopback_authority) {
                return Err(RegistryError::Forbidden(format!(
                    "requests from the web origin {origin:?} are refused; only pages served from localhost may call this registry"
                )));
            }
        }
    }
    let writes = matches!(*method, Method::POST | Method::PATCH | Method::PUT | Method::DELETE);
    if !writes {
        return Ok(());
    }
    if let Some(expected) = &rules.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim);
        if !given.is_some_and(|given| constant_time_eq(given.as_bytes(), expected.as_bytes())) {
            return Err(RegistryError::Unauthorized);
        }
    }
    // A write without a body (DELETE) has nothing to declare.
    let has_body = headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().parse::<u64>().map_or(true, |n| n > 0));
    if !has_body {
        return Ok(());
    }
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return Err(RegistryError::UnsupportedMediaType(format!(
            "writes must be sent as `Content-Type: application/json`, not {:?}",
            if content_type.is_empty() { "(none)" } else { content_type }
        )));
    }
    Ok(())
}

/// `localhost`, `127.0.0.1` or `[::1]`, with or without a port (the host part of a `Host`
/// header or an origin).
fn is_loopback_authority(authority: &str) -> bool {
    let host = if let Some(rest) = authority.strip_prefix('[') {
        match rest.split_once(']') {
            Some((host, port)) if port.is_empty() || port.strip_prefix(':').is_some_and(is_port) => host,
            _ => return false,
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) if is_port(port) => host,
            Some(_) => return false,
            None => authority,
        }
    };
    host.eq_ignore_ascii_case("localhost") || host == "127.0.0.1" || host == "::1"
}

fn is_port(text: &str) -> bool {
    !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit())
}

/// Compares without an early exit so response time does not reveal how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
