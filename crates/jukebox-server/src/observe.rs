//! What an operator sees of the three servers: one **access line** per request in the log, and
//! **Prometheus metrics** under the names the systems they stand in for use, so the dashboards
//! and alerts written for those work here too.
//!
//! Each server wraps its service in [`Observed`] where it is built ([`model_server`],
//! [`registry`], [`s3`]). The wrapper sees every request and answer, and nothing else:
//!
//! - **access line**: `tracing` event with target `jukebox_server::access` when the answer's
//!   body is sent (or the client went away): `service`, `method`, `path` (query values that
//!   could be secrets, such as a presigned URL's `X-Amz-Signature`, shown as `REDACTED`;
//!   headers never, so no `Authorization`), `status`, `bytes` (of the answer's body),
//!   `duration_us` (from the request head to the last byte handed to the connection), and for an
//!   inference `model`, `version` and `rows`. A 4xx or 2xx is logged at INFO, a 5xx at ERROR with
//!   its `cause`;
//! - **5xx cause**: a handler that fails internally answers a short message and attaches the
//!   cause with [`with_cause`], which the access line logs (the pattern of axum's
//!   error-handling example): the client learns that the server failed, the log says why;
//! - **metrics**: `GET /metrics` (model server, registry) or `GET /minio/v2/metrics/cluster`
//!   (S3, MinIO's path) answers the Prometheus text exposition format (version 0.0.4), written by
//!   hand here: a few counters and histograms need no library. Each server has
//!   `jukebox_http_requests_total{method,code}`, `jukebox_http_request_duration_seconds{method}`,
//!   `jukebox_http_response_bytes_total` and `jukebox_http_requests_in_flight`; then:
//!   - model server, OpenVINO Model Server's names and labels: `ovms_requests_success` and
//!     `ovms_requests_fail` `{api="KServe",interface="REST",method,name[,version]}` (method
//!     `ModelInfer`, `ModelMetadata`, `ModelReady`; no version on `ModelReady`, as OVMS),
//!     `ovms_request_time_us{interface,name,version}`, `ovms_inference_time_us{name,version}`,
//!     `ovms_wait_for_infer_req_time_us{name,version}` (histograms in microseconds with OVMS's
//!     buckets), `ovms_current_requests{name,version}` (every loaded version, 0 when idle), plus
//!     `jukebox_infer_batch_rows{name,version}` (rows per inference request) and
//!     `jukebox_model_versions_loaded`;
//!   - S3, MinIO's (v2) names: `minio_s3_requests_total{api}`, `minio_s3_requests_errors_total{api}`,
//!     `minio_s3_requests_4xx_errors_total{api}`, `minio_s3_requests_5xx_errors_total{api}`,
//!     `minio_s3_requests_inflight_total{api}`, `minio_s3_traffic_received_bytes`,
//!     `minio_s3_traffic_sent_bytes` (`api` = the S3 operation, e.g. `PutObject`);
//!   - registry: `jukebox_registry_requests_total{operation,code}` (`operation` = method and
//!     route with ids as `{id}`, e.g. `GET /api/model_registry/v1alpha3/model_versions/{id}`).
//!
//!   Model labels are only made for models the server has loaded, and routes are reduced to
//!   fixed sets, so a client asking for made-up names cannot grow the metrics without bound.
//!
//! Scrapes are open like the health routes (OVMS's `/metrics` is too; MinIO's needs a token unless
//! `MINIO_PROMETHEUS_AUTH_TYPE=public`): they tell request counts and model names, no data.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::{Method, Request, Response, StatusCode};
use tracing::Instrument as _;

/// The `tracing` target of access lines (`RUST_LOG=jukebox_server::access=off` silences them).
pub const ACCESS_TARGET: &str = "jukebox_server::access";

/// The content type of the Prometheus text exposition format.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Why a request failed inside the server: attached to a 5xx answer by [`with_cause`], logged in
/// its access line, never sent.
#[derive(Debug, Clone)]
pub struct Cause(pub Arc<str>);

/// Attaches `cause` to a (short, public) 5xx `response` for the access line to log.
pub fn with_cause<B>(mut response: Response<B>, cause: impl std::fmt::Display) -> Response<B> {
    response.extensions_mut().insert(Cause(cause.to_string().into()));
    response
}

/// What the model server adds to an inference answer for the metrics and the access line.
#[derive(Debug, Clone, Copy)]
pub struct Inference {
    /// Rows of the request (its batch size), when the model's inputs tell it.
    pub rows: Option<u64>,
    /// Time the request waited for its share of the inference budget.
    pub wait: Duration,
    /// Time from then until its answer was encoded: decoding, ONNX Runtime, encoding.
    pub run: Duration,
}

/// Rows of a request of `elements` tensor elements for a model with these input shapes: each
/// input's elements per row (its shape past the batch dimension) summed; `None` when a shape
/// past the first dimension is not fixed.
pub fn rows_of(input_shapes: impl IntoIterator<Item = impl AsRef<[i64]>>, elements: u64) -> Option<u64> {
    let mut per_row: u64 = 0;
    for shape in input_shapes {
        let rest = shape.as_ref().get(1..)?;
        let mut n: u64 = 1;
        for &d in rest {
            n = n.checked_mul(u64::try_from(d).ok().filter(|&d| d > 0)?)?;
        }
        per_row = per_row.checked_add(n)?;
    }
    (per_row > 0).then(|| elements / per_row)
}

/// Which server an [`Observed`] wraps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    ModelServer,
    Registry,
    S3,
}

impl Kind {
    fn service(self) -> &'static str {
        match self {
            Kind::ModelServer => "model server",
            Kind::Registry => "registry",
            Kind::S3 => "s3",
        }
    }

    fn metrics_path(self) -> &'static str {
        match self {
            Kind::S3 => "/minio/v2/metrics/cluster",
            _ => "/metrics",
        }
    }
}

/// The model server's view of its repository, for model labels: `resolve(name, version)` = the
/// version a request for `name` (and `version`, or the highest) is served by, if loaded;
/// `list()` = every loaded model and its versions.
type Resolve = Box<dyn Fn(&str, Option<&str>) -> Option<u64> + Send + Sync>;
type List = Box<dyn Fn() -> Vec<(String, Vec<u64>)> + Send + Sync>;

struct Shared {
    kind: Kind,
    resolve: Option<Resolve>,
    list: Option<List>,
    metrics: Mutex<Metrics>,
    in_flight: AtomicI64,
}

/// A server's service with its access log and metrics; see the module docs.
pub struct Observed<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S: Clone> Clone for Observed<S> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone(), shared: self.shared.clone() }
    }
}

fn observed<S>(inner: S, kind: Kind, resolve: Option<Resolve>, list: Option<List>) -> Observed<S> {
    let shared = Shared { kind, resolve, list, metrics: Mutex::default(), in_flight: AtomicI64::new(0) };
    Observed { inner, shared: Arc::new(shared) }
}

/// The model server's service, observed; `resolve` and `list` read its repository (see
/// [`Observed`]'s module docs for what they are for).
pub fn model_server<S>(
    inner: S,
    resolve: impl Fn(&str, Option<&str>) -> Option<u64> + Send + Sync + 'static,
    list: impl Fn() -> Vec<(String, Vec<u64>)> + Send + Sync + 'static,
) -> Observed<S> {
    observed(inner, Kind::ModelServer, Some(Box::new(resolve)), Some(Box::new(list)))
}

/// The registry's service, observed.
pub fn registry<S>(inner: S) -> Observed<S> {
    observed(inner, Kind::Registry, None, None)
}

/// The S3 service, observed.
pub fn s3<S>(inner: S) -> Observed<S> {
    observed(inner, Kind::S3, None, None)
}

/// What a request is, for its labels (fixed sets of names, see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
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

impl Shared {
    fn route(&self, method: &Method, path: &str, query: &str, headers: &hyper::HeaderMap) -> Route {
        match self.kind {
            Kind::ModelServer => self.model_route(method, path),
            Kind::S3 => Route::S3(s3_api(method, path, query, headers)),
            Kind::Registry => registry_operation(method, path).map_or(Route::Other, Route::Registry),
        }
    }

    fn model_route(&self, method: &Method, path: &str) -> Route {
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
        let Some(resolve) = &self.resolve else { return Route::Other };
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
}

impl<S, B, RB> tower::Service<Request<B>> for Observed<S>
where
    S: tower::Service<Request<B>, Response = Response<RB>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    RB: Body<Data = Bytes> + Send + Unpin + 'static,
{
    type Response = Response<ObservedBody<RB>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let started = Instant::now();
        let method = request.method().clone();
        let path = request.uri().path().to_string();
        let query = request.uri().query().unwrap_or("");
        let shown_path = match query {
            "" => path.clone(),
            query => format!("{path}?{}", redacted_query(query)),
        };
        let shared = self.shared.clone();
        if method == Method::GET && path == shared.kind.metrics_path() {
            let text = shared.render();
            let mut response = Response::new(ObservedBody::own(Bytes::from(text)));
            response
                .headers_mut()
                .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static(PROMETHEUS_CONTENT_TYPE));
            let record = Record::new(shared, method, shown_path, Route::Other, started, 0);
            return Box::pin(std::future::ready(Ok(response.map(|body| body.with_record(record)))));
        }
        let route = shared.route(&method, &path, query, request.headers());
        let received = request
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        shared.in_flight.fetch_add(1, Ordering::Relaxed);
        shared.lock().started(&route);
        let mut record = Record::new(shared, method, shown_path, route, started, received);
        // Metrics scrapes answered above never enter the in-flight count; this one leaves it on drop.
        record.counted_in_flight = true;
        // Library events while the request runs (s3s's, at debug) carry the service name.
        let span = tracing::debug_span!("request", service = record.shared.kind.service());
        let future = self.inner.call(request).instrument(span);
        Box::pin(async move {
            match future.await {
                Ok(response) => {
                    let (mut parts, body) = response.into_parts();
                    let mut record = record;
                    record.status = Some(parts.status);
                    record.cause = parts.extensions.remove::<Cause>();
                    record.inference = parts.extensions.get::<Inference>().copied();
                    Ok(Response::from_parts(parts, ObservedBody::inner(body).with_record(record)))
                }
                // The record logs on drop, with no status: the connection fails without an answer.
                Err(error) => Err(error),
            }
        })
    }
}

/// One request on its way: logged and counted once, when the answer's body is done or dropped.
struct Record {
    shared: Arc<Shared>,
    method: Method,
    path: String,
    route: Route,
    started: Instant,
    received: u64,
    status: Option<StatusCode>,
    cause: Option<Cause>,
    inference: Option<Inference>,
    sent: u64,
    counted_in_flight: bool,
}

impl Record {
    fn new(shared: Arc<Shared>, method: Method, path: String, route: Route, started: Instant, received: u64) -> Self {
        Self {
            shared,
            method,
            path,
            route,
            started,
            received,
            status: None,
            cause: None,
            inference: None,
            sent: 0,
            counted_in_flight: false,
        }
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        let elapsed = self.started.elapsed();
        let service = self.shared.kind.service();
        let duration_us = elapsed.as_micros() as u64;
        let status = self.status.map_or(0, |s| s.as_u16());
        let (model, version) = match &self.route {
            Route::Model { name, version, .. } => (Some(name.as_str()), *version),
            _ => (None, None),
        };
        if status >= 500 || status == 0 {
            let cause = self.cause.as_ref().map_or("(none given)", |c| &*c.0);
            tracing::error!(
                target: ACCESS_TARGET,
                service,
                method = %self.method,
                path = %self.path,
                status,
                bytes = self.sent,
                duration_us,
                model,
                version,
                cause
            );
        } else if let Some(inference) = &self.inference {
            tracing::info!(
                target: ACCESS_TARGET,
                service,
                method = %self.method,
                path = %self.path,
                status,
                bytes = self.sent,
                duration_us,
                model,
                version,
                rows = inference.rows
            );
        } else {
            tracing::info!(
                target: ACCESS_TARGET,
                service,
                method = %self.method,
                path = %self.path,
                status,
                bytes = self.sent,
                duration_us,
                model,
                version
            );
        }
        if self.counted_in_flight {
            self.shared.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
        self.shared.lock().finished(self, elapsed);
    }
}

/// An answer's body, counting its bytes; the request's [`Record`] goes with it.
pub struct ObservedBody<B> {
    inner: Option<B>,
    own: Option<Bytes>,
    record: Option<Record>,
}

impl<B> ObservedBody<B> {
    fn inner(body: B) -> Self {
        Self { inner: Some(body), own: None, record: None }
    }

    fn own(bytes: Bytes) -> Self {
        Self { inner: None, own: Some(bytes), record: None }
    }

    fn with_record(mut self, mut record: Record) -> Self {
        if self.inner.is_none() {
            record.status = Some(StatusCode::OK);
        }
        self.record = Some(record);
        self
    }

    fn count(&mut self, n: usize) {
        if let Some(record) = &mut self.record {
            record.sent += n as u64;
        }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for ObservedBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = &mut *self;
        let polled = match &mut this.inner {
            Some(inner) => Pin::new(inner).poll_frame(cx),
            None => Poll::Ready(this.own.take().map(|bytes| Ok(Frame::data(bytes)))),
        };
        match polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let n = data.len();
                    this.count(n);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) => {
                // Logged now rather than when hyper drops the body.
                this.record.take();
                Poll::Ready(None)
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Some(inner) => inner.is_end_stream(),
            None => self.own.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Some(inner) => inner.size_hint(),
            None => SizeHint::with_exact(self.own.as_ref().map_or(0, |b| b.len() as u64)),
        }
    }
}

/// Shows a query string with the values of parameters that may carry credentials replaced.
fn redacted_query(query: &str) -> String {
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

// --- metrics ------------------------------------------------------------------------------

/// OpenVINO Model Server's histogram buckets (microseconds): 10 × 1.8^i, i = 0..32, rounded down.
fn ovms_buckets() -> &'static [f64] {
    static BUCKETS: std::sync::OnceLock<Vec<f64>> = std::sync::OnceLock::new();
    BUCKETS.get_or_init(|| (0..33).map(|i| (10.0 * 1.8f64.powi(i)).floor()).collect())
}

/// Request duration buckets in seconds (Prometheus client libraries' defaults, from 100 µs).
const SECONDS_BUCKETS: &[f64] =
    &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Rows per inference request: powers of two up to the default row limit.
const ROWS_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0, 16384.0, 32768.0,
    65536.0, 131072.0,
];

#[derive(Debug, Clone, Default)]
struct Histogram {
    /// Observations per bucket (not cumulative; summed when written).
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, bounds: &[f64], value: f64) {
        if self.counts.len() != bounds.len() {
            self.counts = vec![0; bounds.len()];
        }
        if let Some(i) = bounds.iter().position(|&b| value <= b) {
            self.counts[i] += 1;
        }
        self.sum += value;
        self.count += 1;
    }
}

/// A model version's labels: name and version (absent for OVMS's `ModelReady`).
type ModelKey = (String, Option<u64>);

#[derive(Default)]
struct Metrics {
    /// (method, code) -> requests.
    requests: BTreeMap<(String, u16), u64>,
    /// method -> duration histogram (seconds).
    durations: BTreeMap<String, Histogram>,
    sent_bytes: u64,
    received_bytes: u64,
    /// (OVMS method, model, version, success) -> requests.
    ovms_requests: BTreeMap<(&'static str, ModelKey, bool), u64>,
    ovms_request_time: BTreeMap<ModelKey, Histogram>,
    ovms_inference_time: BTreeMap<ModelKey, Histogram>,
    ovms_wait_time: BTreeMap<ModelKey, Histogram>,
    batch_rows: BTreeMap<ModelKey, Histogram>,
    ovms_current: BTreeMap<ModelKey, i64>,
    /// S3 api -> (requests, 4xx, 5xx, in flight).
    s3: BTreeMap<&'static str, [i64; 4]>,
    /// (registry operation, code) -> requests.
    registry: BTreeMap<(String, u16), u64>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Metrics> {
        // Counting never panics midway; a poisoned lock still holds consistent numbers.
        self.metrics.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The whole exposition: every family with its HELP and TYPE lines.
    fn render(&self) -> String {
        let loaded = self.list.as_ref().map(|list| list()).unwrap_or_default();
        let metrics = self.lock();
        let in_flight = self.in_flight.load(Ordering::Relaxed);
        let mut out = String::new();
        let w = &mut out;

        family(w, "jukebox_http_requests_total", "counter", "HTTP requests answered, by method and status code.");
        for ((method, code), n) in &metrics.requests {
            sample(
                w,
                "jukebox_http_requests_total",
                &[("method", method.as_str()), ("code", &code.to_string())],
                *n as f64,
            );
        }
        family(
            w,
            "jukebox_http_request_duration_seconds",
            "histogram",
            "Time from a request's head to the last byte of its answer, by method.",
        );
        for (method, h) in &metrics.durations {
            histogram(w, "jukebox_http_request_duration_seconds", &[("method", method.as_str())], SECONDS_BUCKETS, h);
        }
        family(w, "jukebox_http_response_bytes_total", "counter", "Bytes of answer bodies sent.");
        sample(w, "jukebox_http_response_bytes_total", &[], metrics.sent_bytes as f64);
        family(w, "jukebox_http_requests_in_flight", "gauge", "Requests being answered now.");
        sample(w, "jukebox_http_requests_in_flight", &[], in_flight as f64);

        match self.kind {
            Kind::ModelServer => render_model_server(w, &metrics, &loaded),
            Kind::S3 => render_s3(w, &metrics),
            Kind::Registry => {
                family(
                    w,
                    "jukebox_registry_requests_total",
                    "counter",
                    "Model registry API requests, by operation (method and route) and status code.",
                );
                for ((operation, code), n) in &metrics.registry {
                    let code = code.to_string();
                    sample(
                        w,
                        "jukebox_registry_requests_total",
                        &[("operation", operation.as_str()), ("code", &code)],
                        *n as f64,
                    );
                }
            }
        }
        out
    }
}

impl Metrics {
    fn started(&mut self, route: &Route) {
        match route {
            Route::Model { method: "ModelInfer", name, version, .. } => {
                *self.ovms_current.entry((name.clone(), *version)).or_default() += 1;
            }
            Route::S3(api) => self.s3.entry(*api).or_default()[3] += 1,
            _ => {}
        }
    }

    fn finished(&mut self, record: &Record, elapsed: Duration) {
        let code = record.status.map_or(0, |s| s.as_u16());
        let method = record.method.as_str();
        *self.requests.entry((method.to_string(), code)).or_default() += 1;
        match self.durations.get_mut(method) {
            Some(h) => h.observe(SECONDS_BUCKETS, elapsed.as_secs_f64()),
            None => {
                let mut h = Histogram::default();
                h.observe(SECONDS_BUCKETS, elapsed.as_secs_f64());
                self.durations.insert(method.to_string(), h);
            }
        }
        self.sent_bytes += record.sent;
        self.received_bytes += record.received;
        let success = (200..300).contains(&code);
        match &record.route {
            Route::Model { method, name, version } => {
                let method: &'static str = method;
                let key = (name.clone(), *version);
                *self.ovms_requests.entry((method, key.clone(), success)).or_default() += 1;
                if method == "ModelInfer" {
                    if let Some(current) = self.ovms_current.get_mut(&key) {
                        *current -= 1;
                    }
                    let micros = elapsed.as_secs_f64() * 1e6;
                    self.ovms_request_time.entry(key.clone()).or_default().observe(ovms_buckets(), micros);
                    if let Some(inference) = record.inference {
                        let wait = inference.wait.as_secs_f64() * 1e6;
                        let run = inference.run.as_secs_f64() * 1e6;
                        self.ovms_wait_time.entry(key.clone()).or_default().observe(ovms_buckets(), wait);
                        self.ovms_inference_time.entry(key.clone()).or_default().observe(ovms_buckets(), run);
                        if let Some(rows) = inference.rows {
                            self.batch_rows.entry(key).or_default().observe(ROWS_BUCKETS, rows as f64);
                        }
                    }
                }
            }
            Route::S3(api) => {
                let entry = self.s3.entry(*api).or_default();
                entry[0] += 1;
                if (400..500).contains(&code) {
                    entry[1] += 1;
                }
                if code >= 500 || code == 0 {
                    entry[2] += 1;
                }
                entry[3] -= 1;
            }
            Route::Registry(operation) => *self.registry.entry((operation.clone(), code)).or_default() += 1,
            Route::Other => {}
        }
    }
}

fn render_model_server(w: &mut String, metrics: &Metrics, loaded: &[(String, Vec<u64>)]) {
    let labels = |name: &str, version: Option<u64>| {
        let mut labels = vec![("name", name.to_string())];
        if let Some(version) = version {
            labels.push(("version", version.to_string()));
        }
        labels
    };
    for (metric, success, help) in [
        ("ovms_requests_success", true, "Number of successful requests to a model."),
        ("ovms_requests_fail", false, "Number of failed requests to a model."),
    ] {
        family(w, metric, "counter", help);
        for ((method, (name, version), ok), n) in &metrics.ovms_requests {
            if *ok != success {
                continue;
            }
            let mut all = vec![("api", "KServe".to_string()), ("interface", "REST".to_string())];
            all.push(("method", method.to_string()));
            all.extend(labels(name, *version));
            sample(w, metric, &borrowed(&all), *n as f64);
        }
    }
    for (metric, help, series, with_interface) in [
        (
            "ovms_request_time_us",
            "Processing time of inference requests to a model (microseconds).",
            &metrics.ovms_request_time,
            true,
        ),
        (
            "ovms_inference_time_us",
            "Inference time of a request: decoding, ONNX Runtime and encoding (microseconds).",
            &metrics.ovms_inference_time,
            false,
        ),
        (
            "ovms_wait_for_infer_req_time_us",
            "Time a request waited for its share of the inference budget (microseconds).",
            &metrics.ovms_wait_time,
            false,
        ),
    ] {
        family(w, metric, "histogram", help);
        for ((name, version), h) in series {
            let mut all = if with_interface { vec![("interface", "REST".to_string())] } else { Vec::new() };
            all.extend(labels(name, *version));
            histogram(w, metric, &borrowed(&all), ovms_buckets(), h);
        }
    }
    family(w, "jukebox_infer_batch_rows", "histogram", "Rows (batch size) of each answered inference request.");
    for ((name, version), h) in &metrics.batch_rows {
        histogram(w, "jukebox_infer_batch_rows", &borrowed(&labels(name, *version)), ROWS_BUCKETS, h);
    }
    family(
        w,
        "ovms_current_requests",
        "gauge",
        "Number of inference requests being processed now, per loaded model version.",
    );
    let mut current: BTreeMap<ModelKey, i64> =
        loaded.iter().flat_map(|(name, versions)| versions.iter().map(|v| ((name.clone(), Some(*v)), 0))).collect();
    for (key, n) in &metrics.ovms_current {
        current.insert(key.clone(), *n);
    }
    for ((name, version), n) in &current {
        sample(w, "ovms_current_requests", &borrowed(&labels(name, *version)), *n as f64);
    }
    family(w, "jukebox_model_versions_loaded", "gauge", "Model versions loaded and served.");
    let versions: usize = loaded.iter().map(|(_, versions)| versions.len()).sum();
    sample(w, "jukebox_model_versions_loaded", &[], versions as f64);
}

fn render_s3(w: &mut String, metrics: &Metrics) {
    for (metric, kind, help, index) in [
        ("minio_s3_requests_total", "counter", "Total number of S3 requests.", Some(0)),
        ("minio_s3_requests_errors_total", "counter", "Total number of S3 requests with (4xx and 5xx) errors.", None),
        ("minio_s3_requests_4xx_errors_total", "counter", "Total number of S3 requests with (4xx) errors.", Some(1)),
        ("minio_s3_requests_5xx_errors_total", "counter", "Total number of S3 requests with (5xx) errors.", Some(2)),
        ("minio_s3_requests_inflight_total", "gauge", "Total number of S3 requests currently in flight.", Some(3)),
    ] {
        family(w, metric, kind, help);
        for (api, counts) in &metrics.s3 {
            let value = match index {
                Some(i) => counts[i],
                None => counts[1] + counts[2],
            };
            sample(w, metric, &[("api", *api)], value as f64);
        }
    }
    family(
        w,
        "minio_s3_traffic_received_bytes",
        "counter",
        "Total number of S3 bytes received (request bodies' Content-Length).",
    );
    sample(w, "minio_s3_traffic_received_bytes", &[], metrics.received_bytes as f64);
    family(w, "minio_s3_traffic_sent_bytes", "counter", "Total number of S3 bytes sent (answer bodies).");
    sample(w, "minio_s3_traffic_sent_bytes", &[], metrics.sent_bytes as f64);
}

fn borrowed<'a>(labels: &'a [(&'a str, String)]) -> Vec<(&'a str, &'a str)> {
    labels.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn family(w: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(w, "# HELP {name} {help}");
    let _ = writeln!(w, "# TYPE {name} {kind}");
}

fn sample(w: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    w.push_str(name);
    if !labels.is_empty() {
        w.push('{');
        for (i, (key, value)) in labels.iter().enumerate() {
            if i > 0 {
                w.push(',');
            }
            let _ = write!(w, "{key}=\"");
            for c in value.chars() {
                match c {
                    '\\' => w.push_str("\\\\"),
                    '"' => w.push_str("\\\""),
                    '\n' => w.push_str("\\n"),
                    c => w.push(c),
                }
            }
            w.push('"');
        }
        w.push('}');
    }
    let _ = writeln!(w, " {}", number(value));
}

fn histogram(w: &mut String, name: &str, labels: &[(&str, &str)], bounds: &[f64], h: &Histogram) {
    let mut cumulative = 0;
    let bucket = format!("{name}_bucket");
    for (i, bound) in bounds.iter().enumerate() {
        cumulative += h.counts.get(i).copied().unwrap_or(0);
        let le = number(*bound);
        let mut all = labels.to_vec();
        all.push(("le", &le));
        sample(w, &bucket, &all, cumulative as f64);
    }
    let mut all = labels.to_vec();
    all.push(("le", "+Inf"));
    sample(w, &bucket, &all, h.count as f64);
    sample(w, &format!("{name}_sum"), labels, h.sum);
    sample(w, &format!("{name}_count"), labels, h.count as f64);
}

/// A sample value as Prometheus writes it: integers without a fraction.
fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
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

    #[test]
    fn ovms_buckets_match_its_exposition() {
        let buckets = ovms_buckets();
        assert_eq!(buckets.len(), 33);
        assert_eq!(&buckets[..6], &[10.0, 18.0, 32.0, 58.0, 104.0, 188.0]);
        assert_eq!(buckets[32], 1_474_755_971.0);
    }

    #[test]
    fn rows_come_from_elements_and_the_shapes_past_the_batch_dimension() {
        let thirteen: Vec<Vec<i64>> = (0..13).map(|_| vec![-1, 1]).collect();
        assert_eq!(rows_of(&thirteen, 65), Some(5));
        assert_eq!(rows_of([vec![-1i64, -1]], 10), None);
    }

    #[test]
    fn histograms_are_cumulative_and_end_with_inf_sum_and_count() {
        let mut h = Histogram::default();
        h.observe(&[1.0, 2.0], 0.5);
        h.observe(&[1.0, 2.0], 1.5);
        h.observe(&[1.0, 2.0], 7.0);
        let mut out = String::new();
        histogram(&mut out, "x", &[("name", "m\"q")], &[1.0, 2.0], &h);
        assert_eq!(
            out,
            "x_bucket{name=\"m\\\"q\",le=\"1\"} 1\nx_bucket{name=\"m\\\"q\",le=\"2\"} 2\n\
             x_bucket{name=\"m\\\"q\",le=\"+Inf\"} 3\nx_sum{name=\"m\\\"q\"} 9\nx_count{name=\"m\\\"q\"} 3\n"
        );
    }
}
