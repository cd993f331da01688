//! The counts behind the metrics and the families they are written as, per server: the
//! generic `jukebox_http_*` families every server has, then OpenVINO Model Server's names for the
//! model server, MinIO's for S3 and `jukebox_registry_requests_total` for the registry (the module
//! docs of `observe` list them). [`Metrics::started`] and [`Metrics::finished`] count a request
//! when it starts and when its answer is done; [`Metrics::render`] writes the exposition for a
//! scrape.

use std::collections::BTreeMap;
use std::time::Duration;

use super::exposition::{borrowed, family, histogram, sample, Histogram};
use super::route::{Kind, Route};

#[derive(Debug, Clone, Copy)]
pub struct Inference {
    /// Rows of the request (its batch size), when the model's inputs tell it.
    pub rows: Option<u64>,
    /// Time the request waited for its share of the inference budget.
    pub wait: Duration,
    /// Time from then until its answer was encoded: decoding, ONNX Runtime, encoding.
    pub run: Duration,
}

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

/// What [`Metrics::finished`] counts of a request whose answer is done (or was dropped).
pub(super) struct Finished<'a> {
    pub method: &'a str,
    /// The answer's status code; 0 when the connection failed without one.
    pub code: u16,
    pub route: &'a Route,
    /// Bytes of the answer's body sent, and the request's `Content-Length`.
    pub sent: u64,
    pub received: u64,
    pub inference: Option<Inference>,
    pub elapsed: Duration,
}

/// A model version's labels: name and version (absent for OVMS's `ModelReady`).
type ModelKey = (String, Option<u64>);

#[derive(Default)]
pub(super) struct Metrics {
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

impl Metrics {
    /// The whole exposition, every family with its HELP and TYPE lines, of a server of `kind`
    /// answering `in_flight` requests now (the model server: with its `loaded` models' versions).
    pub(super) fn render(&self, kind: Kind, in_flight: i64, loaded: &[(String, Vec<u64>)]) -> String {
        let metrics = self;
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

        match kind {
            Kind::ModelServer => render_model_server(w, metrics, loaded),
            Kind::S3 => render_s3(w, metrics),
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

    /// Counts a request in flight (per model version, per S3 operation).
    pub(super) fn started(&mut self, route: &Route) {
        match route {
            Route::Model { method: "ModelInfer", name, version, .. } => {
                *self.ovms_current.entry((name.clone(), *version)).or_default() += 1;
            }
            Route::S3(api) => self.s3.entry(*api).or_default()[3] += 1,
            _ => {}
        }
    }

    /// Counts a request whose answer is done (or dropped), and takes it out of the in-flight counts.
    pub(super) fn finished(&mut self, record: Finished<'_>) {
        let Finished { method, code, elapsed, .. } = record;
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
        match record.route {
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

/// OpenVINO Model Server's families (and the rows per request, the loaded versions).
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

/// MinIO's (v2) S3 families.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ovms_buckets_match_its_exposition() {
        let buckets = ovms_buckets();
        assert_eq!(buckets.len(), 33);
        assert_eq!(&buckets[..6], &[10.0, 18.0, 32.0, 58.0, 104.0, 188.0]);
        assert_eq!(buckets[32], 1_474_755_971.0);
    }
}
