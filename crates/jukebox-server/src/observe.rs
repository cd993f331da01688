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
//! Where each part lives: this module wraps the services and writes the access line; `route`
//! names each request for its labels; `metrics` counts and renders the families; `exposition`
//! writes Prometheus's text format.
//!
//! Scrapes are open like the health routes (OVMS's `/metrics` is too; MinIO's needs a token unless
//! `MINIO_PROMETHEUS_AUTH_TYPE=public`): they tell request counts and model names, no data.
mod exposition;
mod metrics;
mod route;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::{Method, Request, Response, StatusCode};
use tracing::Instrument as _;

pub use self::metrics::Inference;
use self::metrics::{Finished, Metrics};
use self::route::{redacted_query, Kind, Resolve, Route};

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

/// The model server's loaded models and their versions, for `ovms_current_requests`.
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

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Metrics> {
        // Counting never panics midway; a poisoned lock still holds consistent numbers.
        self.metrics.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The metrics exposition, for a scrape.
    fn render(&self) -> String {
        let loaded = self.list.as_ref().map(|list| list()).unwrap_or_default();
        self.lock().render(self.kind, self.in_flight.load(Ordering::Relaxed), &loaded)
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
        let route = Route::of(shared.kind, shared.resolve.as_ref(), &method, &path, query, request.headers());
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
        // One field list for both levels (an event's level must be a constant): `rows` only on
        // an inference, `cause` only on a failure; an absent option is left out of the line.
        macro_rules! access_line {
            ($event:ident, $($extra:tt)*) => {
                tracing::$event!(
                    target: ACCESS_TARGET,
                    service,
                    method = %self.method,
                    path = %self.path,
                    status,
                    bytes = self.sent,
                    duration_us,
                    model,
                    version,
                    $($extra)*
                )
            };
        }
        if status >= 500 || status == 0 {
            let cause = self.cause.as_ref().map_or("(none given)", |c| &*c.0);
            access_line!(error, cause);
        } else {
            access_line!(info, rows = self.inference.and_then(|inference| inference.rows));
        }
        if self.counted_in_flight {
            self.shared.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
        self.shared.lock().finished(Finished {
            method: self.method.as_str(),
            code: status,
            route: &self.route,
            sent: self.sent,
            received: self.received,
            inference: self.inference,
            elapsed,
        });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_come_from_elements_and_the_shapes_past_the_batch_dimension() {
        let thirteen: Vec<Vec<i64>> = (0..13).map(|_| vec![-1, 1]).collect();
        assert_eq!(rows_of(&thirteen, 65), Some(5));
        assert_eq!(rows_of([vec![-1i64, -1]], 10), None);
    }
}
