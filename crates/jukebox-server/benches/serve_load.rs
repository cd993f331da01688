//! Load test for a KServe v2 model server over loopback: the workshop's one-song request at
//! several concurrencies (default 1, 16 and 64), as JSON and as the binary tensor data that
//! `tritonclient` sends by default. Any non-200 answer counts as an error and the run exits
//! non-zero; every answer is checked against in-process ONNX Runtime.
//!
//! ```text
//! cargo bench --workspace --bench serve_load -- [--url URL | --model-repository DIR]
//!     [--model jukebox] [--requests 20000] [--concurrency 1,16,64] [--latency-requests 5000]
//!     [--body json,binary] [--label NAME] [--reference-model PATH]
//!     [--sessions N] [--batching on|off] [--batch-wait-us N] (in-process server only)
//! ```
//!
//! Without `--url` the jukebox model server runs in this process (2 worker threads) on a
//! repository given by `--model-repository`, or on a workshop-shaped model made with
//! `jukebox-runtime/tests/peers/make_model.py` (needs the venv). With `--url` any v2 server is
//! measured with the same client (`compare_kserve.py` uses that for KServe's Python server).
//!
//! **The load generator** is bounded and cheap, like `wrk -t1 -cN`: one thread runs an event
//! loop over N keep-alive HTTP/1.1 connections, each sending its next request as soon as the
//! answer to the last one is read (closed loop, so at most N requests are in flight). One thread
//! with nonblocking sockets costs the server's two cores far less than N blocking threads would
//! (an earlier version of this bench used one thread per connection: at 64 connections the
//! client's context switches took more CPU than the server). It costs the same for every server
//! it measures.
//!
//! **Correctness**: the answer to every request is compared with the first answer byte for byte;
//! answers that differ (and the first) are decoded and compared with the model run in this
//! process by ONNX Runtime with every graph optimisation (`--reference-model`, default: the
//! served model file); the largest difference is printed as `max_abs_diff`.
//!
//! Prints one `RESULT` line per body and concurrency.

use jukebox_testkit::{make_model, v2_answer};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use jukebox_runtime::{InputTensor, OnnxModel};
use jukebox_server::server_thread::ServerThread;
use tokio::net::TcpStream;

// The workshop model's inputs, in graph order.
use jukebox_protocol::model_folder::WORKSHOP_FEATURES as FEATURES;

/// The workshop's scaled features of one song.
const VALUES: [f32; 13] = [0.0, 0.2, 0.61, 0.73, 0.45, 0.81, 1.0, 0.08, 0.12, 0.0, 0.15, 0.52, 0.47];

struct Options {
    url: Option<String>,
    repository: Option<PathBuf>,
    model: String,
    requests: usize,
    concurrency: Vec<usize>,
    latency_requests: usize,
    bodies: Vec<BodyKind>,
    label: String,
    reference_model: Option<PathBuf>,
    sessions: Option<usize>,
    dynamic_batching: bool,
    batch_wait_us: u64,
}

#[derive(Clone, Copy, PartialEq)]
enum BodyKind {
    /// The workshop notebook's JSON body.
    Json,
    /// What `tritonclient.http` sends by default: JSON header, then the tensors' bytes, and the
    /// output asked for as binary data.
    Binary,
    /// `GET /v2/health/ready`: no inference, the floor our HTTP path and the loopback set.
    Health,
}

impl BodyKind {
    fn name(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Binary => "binary",
            Self::Health => "health",
        }
    }
}

fn options() -> Options {
    let mut o = Options {
        url: None,
        repository: None,
        model: "jukebox".into(),
        requests: 20_000,
        concurrency: vec![1, 16, 64],
        latency_requests: 5_000,
        bodies: vec![BodyKind::Json, BodyKind::Binary],
        label: "jukebox".into(),
        reference_model: None,
        sessions: None,
        dynamic_batching: true,
        batch_wait_us: 0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--url" => o.url = Some(value()),
            "--model-repository" => o.repository = Some(PathBuf::from(value())),
            "--model" => o.model = value(),
            "--requests" => o.requests = value().parse().expect("--requests N"),
            "--concurrency" => {
                o.concurrency = value().split(',').map(|c| c.trim().parse().expect("--concurrency N[,N...]")).collect()
            }
            "--latency-requests" => o.latency_requests = value().parse().expect("--latency-requests N"),
            "--body" => {
                o.bodies = value()
                    .split(',')
                    .map(|b| match b.trim() {
                        "json" => BodyKind::Json,
                        "binary" => BodyKind::Binary,
                        "health" => BodyKind::Health,
                        other => panic!("--body json,binary,health (got {other})"),
                    })
                    .collect()
            }
            "--label" => o.label = value(),
            "--reference-model" => o.reference_model = Some(PathBuf::from(value())),
            "--sessions" => o.sessions = Some(value().parse().expect("--sessions N")),
            "--batching" => o.dynamic_batching = value() != "off",
            "--batch-wait-us" => o.batch_wait_us = value().parse().expect("--batch-wait-us N"),
            "--bench" => {} // added by `cargo bench`
            other => panic!("unknown argument {other}"),
        }
    }
    o
}

/// The request (head and body) for one song, and the head lines that differ by kind.
fn request_bytes(kind: BodyKind, host: &str, path: &str) -> Vec<u8> {
    let (content_type, extra, body) = match kind {
        BodyKind::Health => return format!("GET /v2/health/ready HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes(),
        BodyKind::Json => {
            let inputs: Vec<String> = FEATURES
                .iter()
                .zip(VALUES)
                .map(|(name, v)| format!(r#"{{"name": "{name}", "shape": [1, 1], "datatype": "FP32", "data": [{v}]}}"#))
                .collect();
            ("application/json", String::new(), format!(r#"{{"inputs": [{}]}}"#, inputs.join(", ")).into_bytes())
        }
        BodyKind::Binary => {
            let columns: Vec<Vec<f32>> = VALUES.iter().map(|v| vec![*v]).collect();
            let (body, json_length) = jukebox_testkit::v2_binary_body(&FEATURES, &columns);
            ("application/octet-stream", format!("Inference-Header-Content-Length: {json_length}\r\n"), body)
        }
    };
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n{extra}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    request
}

/// The probabilities in an answer body (JSON `data`, or binary data after the JSON).
fn answer_values(body: &[u8], json_length: Option<usize>) -> Option<Vec<f32>> {
    v2_answer(body, json_length).map(|(_, values)| values)
}

/// The served model file: `<repository>/<model>/<highest version>/model.onnx`.
fn served_model_file(repository: &Path, model: &str) -> PathBuf {
    let versions = std::fs::read_dir(repository.join(model)).expect("model folder");
    let version = versions
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u64>().ok()))
        .max()
        .expect("a version folder");
    repository.join(model).join(version.to_string()).join("model.onnx")
}

/// The model's answer for the song, run in this process (every graph optimisation).
fn reference_answer(model_file: &Path) -> Vec<f32> {
    let model = OnnxModel::load(model_file).expect("load the reference model");
    let columns: Vec<[f32; 1]> = VALUES.iter().map(|&v| [v]).collect();
    let inputs: Vec<InputTensor> = FEATURES.iter().zip(&columns).map(|(n, c)| InputTensor::column(n, c)).collect();
    model.run(&inputs).expect("reference run").remove(0).data
}

/// Starts the jukebox model server in this process (stopped when the returned thread is dropped).
fn start_local_server(o: &Options, repository: PathBuf) -> ServerThread {
    let mut config = jukebox_server::model_server::ModelServerConfig::new(repository);
    if let Some(n) = o.sessions {
        config.sessions_per_model = n;
    }
    config.limits.batching = o.dynamic_batching.then(|| jukebox_server::model_server::Batching {
        max_wait: Duration::from_micros(o.batch_wait_us),
        ..Default::default()
    });
    ServerThread::model_server(config).expect("model server failed to start")
}

/// One answer: status, body, and `Inference-Header-Content-Length` when given.
struct Answer {
    status: u16,
    body_start: usize,
    end: usize,
    json_length: Option<usize>,
}

async fn write_all(stream: &TcpStream, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        stream.writable().await?;
        match stream.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads more bytes into `buf`; an error at end of stream.
async fn read_more(stream: &TcpStream, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        stream.readable().await?;
        match stream.try_read(&mut chunk) {
            Ok(0) => return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed")),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Ok(());
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}

/// Sends the request on a keep-alive connection and reads the whole answer into `buf`.
async fn exchange(stream: &TcpStream, request: &[u8], buf: &mut Vec<u8>) -> std::io::Result<Answer> {
    write_all(stream, request).await?;
    buf.clear();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        read_more(stream, buf).await?;
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(std::io::Error::other)?;
    let status: u16 = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let header = |wanted: &str| {
        head.lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(name, _)| name.eq_ignore_ascii_case(wanted))
            .and_then(|(_, value)| value.trim().parse::<usize>().ok())
    };
    let length = header("content-length").ok_or_else(|| std::io::Error::other("answer without Content-Length"))?;
    let json_length = header("inference-header-content-length");
    while buf.len() < head_end + length {
        read_more(stream, buf).await?;
    }
    Ok(Answer { status, body_start: head_end, end: head_end + length, json_length })
}

async fn connect(host: &str) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect(host).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    errors: usize,
    /// Answers that were not byte-identical to the first one.
    differing: usize,
    max_abs_diff: f32,
}

struct Phase {
    tally: Tally,
    wall: Duration,
}

/// `requests` requests over `concurrency` connections, closed loop, on one thread.
fn run_phase(host: &str, request: &[u8], reference: &[f32], requests: usize, concurrency: usize) -> Phase {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let tally = Rc::new(RefCell::new(Tally::default()));
    let expected_bytes: Rc<RefCell<Option<Vec<u8>>>> = Rc::new(RefCell::new(None));
    let next = Rc::new(std::cell::Cell::new(0usize));
    let start = Instant::now();
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async {
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let (tally, expected_bytes, next) = (tally.clone(), expected_bytes.clone(), next.clone());
            let host = host.to_string();
            let request = request.to_vec();
            let reference = reference.to_vec();
            tasks.push(tokio::task::spawn_local(async move {
                let mut connection: Option<TcpStream> = None;
                let mut buf = Vec::with_capacity(8192);
                while next.replace(next.get() + 1) < requests {
                    if connection.is_none() {
                        connection = connect(&host).await.ok();
                    }
                    let Some(stream) = connection.as_ref() else {
                        tally.borrow_mut().errors += 1;
                        continue;
                    };
                    let t = Instant::now();
                    let answer = exchange(stream, &request, &mut buf).await;
                    let elapsed = t.elapsed();
                    let mut tally = tally.borrow_mut();
                    match answer {
                        Ok(a) if a.status == 200 => {
                            tally.latencies.push(elapsed);
                            let body = &buf[a.body_start..a.end];
                            let mut expected = expected_bytes.borrow_mut();
                            if expected.as_deref() != Some(body) {
                                if expected.is_some() {
                                    tally.differing += 1;
                                }
                                match answer_values(body, a.json_length) {
                                    _ if reference.is_empty() => {}
                                    Some(values) if values.len() == reference.len() => {
                                        let diff = values
                                            .iter()
                                            .zip(&reference)
                                            .map(|(a, b)| (a - b).abs())
                                            .fold(0.0f32, f32::max);
                                        tally.max_abs_diff = tally.max_abs_diff.max(diff);
                                    }
                                    _ => {
                                        eprintln!("unexpected answer: {}", String::from_utf8_lossy(body));
                                        tally.max_abs_diff = f32::INFINITY;
                                    }
                                }
                                expected.get_or_insert_with(|| body.to_vec());
                            }
                        }
                        Ok(a) => {
                            if tally.errors == 0 {
                                eprintln!("HTTP {}: {}", a.status, String::from_utf8_lossy(&buf[a.body_start..a.end]));
                            }
                            tally.errors += 1;
                        }
                        Err(e) => {
                            if tally.errors == 0 {
                                eprintln!("I/O error: {e}");
                            }
                            tally.errors += 1;
                            connection = None;
                        }
                    }
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    });
    let wall = start.elapsed();
    let mut tally = Rc::try_unwrap(tally).ok().expect("tasks done").into_inner();
    tally.latencies.sort();
    Phase { tally, wall }
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
    let mut _keep = None;
    let repository = o.repository.clone().unwrap_or_else(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        make_model(dir.path(), "1", "7"); // make_model.py's defaults
        let path = dir.path().to_path_buf();
        _keep = Some(dir);
        path
    });
    let local_server = o.url.is_none().then(|| start_local_server(&o, repository.clone()));
    let url = match (&o.url, &local_server) {
        (Some(url), _) => url.trim_end_matches('/').to_string(),
        (None, server) => server.as_ref().expect("started when no --url is given").url(),
    };
    let reference_file = o.reference_model.clone().unwrap_or_else(|| served_model_file(&repository, &o.model));
    let reference = reference_answer(&reference_file);
    let host = url.strip_prefix("http://").expect("--url must be http://HOST:PORT").to_string();
    let path = format!("/v2/models/{}/infer", o.model);

    // Wait for the server to answer.
    let deadline = Instant::now() + Duration::from_secs(60);
    let probe = request_bytes(BodyKind::Json, &host, &path);
    loop {
        let phase = run_phase(&host, &probe, &reference, 1, 1);
        if phase.tally.errors == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{url} does not answer");
        std::thread::sleep(Duration::from_millis(200));
    }

    let mut failed = false;
    for &kind in &o.bodies {
        let request = request_bytes(kind, &host, &path);
        // The health answer is not a prediction: only its status is checked.
        let reference: &[f32] = if kind == BodyKind::Health { &[] } else { &reference };
        run_phase(&host, &request, reference, 500, 4); // warm-up
        for &concurrency in &o.concurrency {
            let requests = if concurrency == 1 { o.latency_requests } else { o.requests };
            let r = run_phase(&host, &request, reference, requests, concurrency);
            let t = &r.tally;
            println!(
                "RESULT label={} body={} requests={requests} concurrency={concurrency} errors={} p50_ms={:.3} p99_ms={:.3} max_ms={:.3} rps={:.0} differing={} max_abs_diff={:e}",
                o.label,
                kind.name(),
                t.errors,
                percentile(&t.latencies, 0.50),
                percentile(&t.latencies, 0.99),
                percentile(&t.latencies, 1.0),
                t.latencies.len() as f64 / r.wall.as_secs_f64(),
                t.differing,
                t.max_abs_diff,
            );
            failed |= t.errors > 0 || t.max_abs_diff >= 1e-6;
        }
    }
    if failed {
        std::process::exit(1);
    }
}
