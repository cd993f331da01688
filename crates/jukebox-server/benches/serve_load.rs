//! Load test for a KServe v2 model server over loopback: the workshop's one-song JSON request,
//! first one at a time (latency), then many at once (throughput). Any non-200 answer counts as
//! an error and the run exits non-zero.
//!
//! ```text
//! cargo bench -p jukebox-server --bench serve_load -- [--url URL | --model-repository DIR]
//!     [--model jukebox] [--requests 10000] [--concurrency 64] [--latency-requests 2000] [--label NAME]
//!     [--sessions N (ONNX Runtime sessions per model, in-process server only)]
//! ```
//!
//! Without `--url` the jukebox model server runs in this process (2 worker threads) on a
//! repository given by `--model-repository`, or on a workshop-shaped model made with
//! `jukebox-runtime/tests/peers/make_model.py` (needs the venv). With `--url` any v2 server is
//! measured with the same client (`compare_kserve.py` uses that for KServe's Python server).
//!
//! The client is deliberately plain: one blocking keep-alive HTTP/1.1 connection per thread, so
//! it costs the same for every server it measures. Prints one `RESULT` line per phase.

use jukebox_testkit::python;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const FEATURES: [&str; 13] = [
    "is_explicit",
    "duration_ms",
    "danceability",
    "energy",
    "key",
    "loudness",
    "mode",
    "speechiness",
    "acousticness",
    "instrumentalness",
    "liveness",
    "valence",
    "tempo",
];

struct Options {
    url: Option<String>,
    repository: Option<PathBuf>,
    model: String,
    requests: usize,
    concurrency: usize,
    latency_requests: usize,
    label: String,
    sessions: Option<usize>,
}

fn options() -> Options {
    let mut o = Options {
        url: None,
        repository: None,
        model: "jukebox".into(),
        requests: 10_000,
        concurrency: 64,
        latency_requests: 2_000,
        label: "jukebox".into(),
        sessions: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--url" => o.url = Some(value()),
            "--model-repository" => o.repository = Some(PathBuf::from(value())),
            "--model" => o.model = value(),
            "--requests" => o.requests = value().parse().expect("--requests N"),
            "--concurrency" => o.concurrency = value().parse().expect("--concurrency N"),
            "--latency-requests" => o.latency_requests = value().parse().expect("--latency-requests N"),
            "--label" => o.label = value(),
            "--sessions" => o.sessions = Some(value().parse().expect("--sessions N")),
            "--bench" => {} // added by `cargo bench`
            other => panic!("unknown argument {other}"),
        }
    }
    o
}

/// The workshop's body for one song: 13 inputs of shape [1, 1] holding scaled features.
fn workshop_body() -> String {
    let values = [0.0, 0.2, 0.61, 0.73, 0.45, 0.81, 1.0, 0.08, 0.12, 0.0, 0.15, 0.52, 0.47];
    let inputs: Vec<String> = FEATURES
        .iter()
        .zip(values)
        .map(|(name, v)| format!(r#"{{"name": "{name}", "shape": [1, 1], "datatype": "FP32", "data": [{v}]}}"#))
        .collect();
    format!(r#"{{"inputs": [{}]}}"#, inputs.join(", "))
}

/// Starts the jukebox model server in this process and returns its URL.
fn start_local_server(
    repository: Option<PathBuf>,
    sessions: Option<usize>,
    keep: &mut Option<tempfile::TempDir>,
) -> String {
    let repository = repository.unwrap_or_else(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let maker = Path::new(env!("CARGO_MANIFEST_DIR")).join("../jukebox-runtime/tests/peers/make_model.py");
        let status = std::process::Command::new(python()).arg(maker).arg(dir.path()).status().expect("run python");
        assert!(status.success(), "make_model.py failed: is the venv installed (kernel/requirements-test.txt)?");
        let path = dir.path().to_path_buf();
        *keep = Some(dir);
        path
    });
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let mut config = jukebox_server::model_server::ModelServerConfig::new(repository);
    if let Some(n) = sessions {
        config.sessions_per_model = n;
    }
    std::thread::spawn(move || {
        runtime
            .block_on(jukebox_server::model_server::serve(listener, config, std::future::pending()))
            .expect("model server failed");
    });
    url
}

/// One keep-alive connection.
struct Connection {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    request: Vec<u8>,
}

impl Connection {
    fn open(host: &str, path: &str, body: &str) -> std::io::Result<Self> {
        let stream = TcpStream::connect(host)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes();
        Ok(Self { reader: BufReader::new(stream.try_clone()?), writer: stream, request })
    }

    /// Sends the request, reads the whole answer, returns (status, body).
    fn send(&mut self) -> std::io::Result<(u16, Vec<u8>)> {
        self.writer.write_all(&self.request)?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status: u16 = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let mut length = None;
        loop {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed"));
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse::<usize>().ok();
                }
            }
        }
        let length = length.ok_or_else(|| std::io::Error::other("answer without Content-Length"))?;
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body)?;
        Ok((status, body))
    }
}

struct Phase {
    latencies: Vec<Duration>,
    errors: usize,
    wall: Duration,
}

fn run_phase(host: &str, path: &str, body: &str, requests: usize, concurrency: usize) -> Phase {
    let next = AtomicUsize::new(0);
    let start = Instant::now();
    let results: Vec<(Vec<Duration>, usize)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..concurrency)
            .map(|_| {
                let next = &next;
                scope.spawn(move || {
                    let mut latencies = Vec::new();
                    let mut errors = 0;
                    let mut connection = None;
                    while next.fetch_add(1, Ordering::Relaxed) < requests {
                        if connection.is_none() {
                            connection = Connection::open(host, path, body).ok();
                        }
                        let Some(conn) = connection.as_mut() else {
                            errors += 1;
                            continue;
                        };
                        let t = Instant::now();
                        match conn.send() {
                            Ok((200, _)) => latencies.push(t.elapsed()),
                            Ok((status, answer)) => {
                                if errors == 0 {
                                    eprintln!("HTTP {status}: {}", String::from_utf8_lossy(&answer));
                                }
                                errors += 1;
                            }
                            Err(e) => {
                                if errors == 0 {
                                    eprintln!("I/O error: {e}");
                                }
                                errors += 1;
                                connection = None;
                            }
                        }
                    }
                    (latencies, errors)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let wall = start.elapsed();
    let mut latencies: Vec<Duration> = results.iter().flat_map(|(l, _)| l.iter().copied()).collect();
    latencies.sort();
    Phase { latencies, errors: results.iter().map(|(_, e)| e).sum(), wall }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1e3
}

fn main() {
    let o = options();
    let mut keep = None;
    let url = match &o.url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => start_local_server(o.repository.clone(), o.sessions, &mut keep),
    };
    let host = url.strip_prefix("http://").expect("--url must be http://HOST:PORT").to_string();
    let path = format!("/v2/models/{}/infer", o.model);
    let body = workshop_body();

    // Wait for the server, check one answer carries probabilities, then warm up.
    let deadline = Instant::now() + Duration::from_secs(60);
    let answer = loop {
        match Connection::open(&host, &path, &body).and_then(|mut c| c.send()) {
            Ok((200, answer)) => break answer,
            Ok((status, answer)) if Instant::now() > deadline => {
                panic!("{url} answered {status}: {}", String::from_utf8_lossy(&answer))
            }
            Err(e) if Instant::now() > deadline => panic!("{url} unreachable: {e}"),
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    };
    let answer: serde_json::Value = serde_json::from_slice(&answer).expect("JSON answer");
    let probabilities = answer["outputs"][0]["data"].as_array().expect("outputs[0].data");
    let total: f64 = probabilities.iter().filter_map(|v| v.as_f64()).sum();
    assert!((total - 1.0).abs() < 1e-4, "probabilities sum to {total}");
    run_phase(&host, &path, &body, 500, 4);

    let mut failed = false;
    for (phase, requests, concurrency) in
        [("latency", o.latency_requests, 1), ("throughput", o.requests, o.concurrency)]
    {
        let r = run_phase(&host, &path, &body, requests, concurrency);
        println!(
            "RESULT label={} phase={phase} requests={requests} concurrency={concurrency} errors={} p50_ms={:.3} p99_ms={:.3} max_ms={:.3} rps={:.0}",
            o.label,
            r.errors,
            percentile(&r.latencies, 0.50),
            percentile(&r.latencies, 0.99),
            percentile(&r.latencies, 1.0),
            r.latencies.len() as f64 / r.wall.as_secs_f64(),
        );
        failed |= r.errors > 0;
    }
    if failed {
        std::process::exit(1);
    }
}
