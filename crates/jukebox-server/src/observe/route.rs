//! What a request is, for its metrics labels: the server it came to ([`Kind`]) and the
//! operation it asks for ([`Route`]), named as the real system names it: OpenVINO Model Server's
//! method and model for the model server, MinIO's `api` for S3 (`PutObject`, `ListObjectsV2`,
//! ...), the route with its ids as `{id}` for the registry. Each is one of a fixed set of names
//! (a model only once the server has loaded it), so made-up requests cannot grow the metrics.
//!
//! Also here: a query string as the access line shows it ([`redacted_query`]), with the values
//! of parameters that may carry credentials replaced.

use hyper::Method;

/// Which server an [`Observed`](super::Observed) wraps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    ModelServer,
    Registry,
    S3,
}

impl Kind {
    /// The `service` of the access line.
    pub(super) fn service(self) -> &'static str {
        match self {
            Kind::ModelServer => "model server",
            Kind::Registry => "registry",
            Kind::S3 => "s3",
        }
    }

    /// Where the server answers its metrics (MinIO's path for S3).
    pub(super) fn metrics_path(self) -> &'static str {
        match self {
            Kind::S3 => "/minio/v2/metrics/cluster",
            _ => "/metrics",
        }
    }
}

/// The model server's view of its repository, for model labels: `resolve(name, version)` = the
/// version a request for `name` (and `version`, or the highest) is served by, if loaded.
pub(super) type Resolve = Box<dyn Fn(&str, Option<&str>) -> Option<u64> + Send + Sync>;

/// What a request is, for its labels (fixed sets of names, see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Route {
    /// A model-level model server request for a loaded model: OVMS method, name, version served.
    Model {
        method: &'static str,
        name: String,
        version: Option<u64>,
    },
    /// An S3 operation.
    S3(&'static str),
    /// A registry operation (method and route template).
    Registry(String),
    Other,
}

impl Route {
    /// The route of a request to a server of `kind` (`resolve`: the model server's, see [`Resolve`]).
    pub(super) fn of(
        kind: Kind,
        resolve: Option<&Resolve>,
        method: &Method,
        path: &str,
        query: &str,
        headers: &hyper::HeaderMap,
    ) -> Route {
        match kind {
            Kind::ModelServer => model_route(resolve, method, path),
            Kind::S3 => Route::S3(s3_api(method, path, query, headers)),
            Kind::Registry => registry_operation(method, path).map_or(Route::Other, Route::Registry),
        }
    }
}

/// A model server request for a loaded model, as OVMS names its method.
fn model_route(resolve: Option<&Resolve>, method: &Method, path: &str) -> Route {
    let Some(rest) = path.strip_prefix("/v2/models/") else { return Route::Other };
    let segments: Vec<&str> = rest.split('/').collect();
    let (name, version, tail) = match segments.as_slice() {
        [name, "versions", version, tail @ ..] => (*name, Some(*version), tail),
        [name, tail @ ..] => (*name, None, tail),
        [] => return Route::Other,
    };
    let ovms_method = match (method, tail) {
        (&Method::POST, ["infer"]) => "ModelInfer",
        (&Method::GET, ["ready"]) => "ModelReady",
        (&Method::GET, []) => "ModelMetadata",
        _ => return Route::Other,
    };
    let Some(resolve) = resolve else { return Route::Other };
    // Only loaded models get labels: made-up names must not create series.
    match resolve(name, version) {
        Some(served) => Route::Model {
            method: ovms_method,
            name: name.to_string(),
            version: (ovms_method != "ModelReady").then_some(served),
        },
        None => Route::Other,
    }
}

/// Shows a query string with the values of parameters that may carry credentials replaced.
pub(super) fn redacted_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| {
            let (key, _) = pair.split_once('=').unwrap_or((pair, ""));
            let lower = key.to_ascii_lowercase();
            let secret = ["signature", "credential", "token", "secret", "password", "key", "auth"]
                .iter()
                .any(|word| lower.contains(word));
            if secret && pair.contains('=') {
                format!("{key}=REDACTED")
            } else {
                pair.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The S3 operation of a path-style request (the names MinIO labels `api` with).
fn s3_api(method: &Method, path: &str, query: &str, headers: &hyper::HeaderMap) -> &'static str {
    let has = |name: &str| query.split('&').any(|p| p.split('=').next() == Some(name));
    let trimmed = path.trim_start_matches('/');
    let (bucket, key) = match trimmed.split_once('/') {
        Some((bucket, key)) if !key.is_empty() => (bucket, Some(key)),
        Some((bucket, _)) => (bucket, None),
        None => (trimmed, None),
    };
    if bucket.is_empty() {
        return if *method == Method::GET { "ListBuckets" } else { "Other" };
    }
    match (method, key.is_some()) {
        (&Method::GET, true) if has("uploadId") => "ListParts",
        (&Method::GET, true) => "GetObject",
        (&Method::HEAD, true) => "HeadObject",
        (&Method::PUT, true) if has("uploadId") => "UploadPart",
        (&Method::PUT, true) if headers.contains_key("x-amz-copy-source") => "CopyObject",
        (&Method::PUT, true) => "PutObject",
        (&Method::DELETE, true) if has("uploadId") => "AbortMultipartUpload",
        (&Method::DELETE, true) => "DeleteObject",
        (&Method::POST, true) if has("uploads") => "CreateMultipartUpload",
        (&Method::POST, true) if has("uploadId") => "CompleteMultipartUpload",
        (&Method::GET, false) if has("location") => "GetBucketLocation",
        (&Method::GET, false) if has("uploads") => "ListMultipartUploads",
        (&Method::GET, false) if has("versioning") => "GetBucketVersioning",
        (&Method::GET, false) if query.contains("list-type=2") => "ListObjectsV2",
        (&Method::GET, false) => "ListObjects",
        (&Method::HEAD, false) => "HeadBucket",
        (&Method::PUT, false) => "CreateBucket",
        (&Method::DELETE, false) => "DeleteBucket",
        (&Method::POST, false) if has("delete") => "DeleteObjects",
        _ => "Other",
    }
}

/// `GET /api/model_registry/v1alpha3/model_versions/{id}`: a registry route with its ids as
/// `{id}`; `None` outside the API (the index page, unknown paths).
fn registry_operation(method: &Method, path: &str) -> Option<String> {
    let rest = path.strip_prefix("/api/model_registry/")?;
    let (base, route) = rest.split_once('/')?;
    if !matches!(base, "v1alpha3" | "v1") {
        return None;
    }
    const RESOURCES: [&str; 8] = [
        "registered_models",
        "registered_model",
        "model_versions",
        "model_version",
        "model_artifacts",
        "model_artifact",
        "versions",
        "artifacts",
    ];
    let mut template = String::new();
    for (i, segment) in route.split('/').enumerate() {
        let part = if i % 2 == 1 { "{id}" } else { RESOURCES.iter().find(|r| **r == segment).copied()? };
        template.push('/');
        template.push_str(part);
    }
    let method = match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        _ => return None,
    };
    Some(format!("{method} /api/model_registry/{base}{template}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_that_may_be_credentials_are_redacted() {
        assert_eq!(
            redacted_query(
                "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F&X-Amz-Signature=abc&prefix=models"
            ),
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED&prefix=models"
        );
        assert_eq!(redacted_query("name=jukebox&token=s3cret"), "name=jukebox&token=REDACTED");
        assert_eq!(redacted_query("uploads"), "uploads");
    }

    #[test]
    fn s3_operations_are_named_as_minio_names_them() {
        let none = hyper::HeaderMap::new();
        assert_eq!(s3_api(&Method::GET, "/", "", &none), "ListBuckets");
        assert_eq!(s3_api(&Method::PUT, "/models/a/b.onnx", "", &none), "PutObject");
        assert_eq!(s3_api(&Method::GET, "/models", "list-type=2&prefix=x", &none), "ListObjectsV2");
        assert_eq!(s3_api(&Method::POST, "/models", "delete", &none), "DeleteObjects");
        assert_eq!(s3_api(&Method::PUT, "/models/k", "partNumber=1&uploadId=u", &none), "UploadPart");
        assert_eq!(s3_api(&Method::HEAD, "/models/", "", &none), "HeadBucket");
    }

    #[test]
    fn registry_routes_keep_their_shape_and_lose_their_ids() {
        assert_eq!(
            registry_operation(&Method::GET, "/api/model_registry/v1alpha3/registered_models/12/versions").as_deref(),
            Some("GET /api/model_registry/v1alpha3/registered_models/{id}/versions")
        );
        assert_eq!(registry_operation(&Method::GET, "/api/model_registry/v1alpha3/whatever"), None);
        assert_eq!(registry_operation(&Method::GET, "/"), None);
    }
}
