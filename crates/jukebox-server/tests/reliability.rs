//! The reliability suite of issue 10, rerunnable by anyone, bounded in count and time, on
//! loopback only. It starts the three servers and:
//!
//! 1. sends a table of malformed requests to each server, asserting each answer's status (all
//!    4xx) and that the server still answers afterwards;
//! 2. fuzzes the infer endpoint with a fixed number of seeded mutations of a valid request
//!    (no 5xx but 503, always an answer, health still OK after each batch);
//! 3. runs a short load of valid requests from several threads.
//!
//! 4. runs the probe modules under `reliability/` (issue 23 item 7), one per defect of the outside
//!    probe, each given the [`Suite`]: silent connections ([`silent_connections`]), tiny models
//!    that would cost gigabytes ([`costly_models`]).
//!
//! It prints a summary: probes tried, statuses seen (counts), each probe module's lines (e.g.
//! acknowledged vs recovered), crashes (0 or the test fails).
//!
//! A probe module is `reliability/<name>.rs`, declared below with `#[path]`, with
//! `pub fn run(suite: &Suite)`, called once from [`reliability_suite`]. It may use the suite's
//! servers or start its own, and reports through [`Suite::status`], [`Suite::fail`],
//! [`Suite::crash`] and [`Suite::summary`]; `suite.short` says to stay within seconds (CI).
//!
//! Short by default (CI). Longer: `JUKEBOX_RELIABILITY_REQUESTS=20000` (fuzz count; the load run
//! is the same number), `JUKEBOX_RELIABILITY_SEED=<u64>` for another sequence of mutations:
//!
//! ```text
//! JUKEBOX_RELIABILITY_REQUESTS=20000 cargo test --release -p jukebox-server --test reliability -- --nocapture
//! ```
//!
//! The kill -9 during parallel writes check needs the `jukebox up` binary and lives with it.

mod common;
mod tiny_models;

#[path = "reliability/costly_models.rs"]
mod costly_models;
#[path = "reliability/publish.rs"]
mod publish;
#[path = "reliability/s3_integrity.rs"]
mod s3_integrity;
#[path = "reliability/silent_connections.rs"]
mod silent_connections;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use common::{get_request, raw, request, Running};
use jukebox_server::model_server::ModelServerConfig;
use jukebox_server::registry::RegistryConfig;
use jukebox_server::s3::S3Config;

/// Statuses seen, by server; shared by every part of the run.
#[derive(Default, Clone)]
struct Tally(Arc<Mutex<BTreeMap<(String, u16), u64>>>);

impl Tally {
    fn add(&self, server: &str, status: u16) {
        *self.0.lock().unwrap().entry((server.to_string(), status)).or_default() += 1;
    }
    fn total(&self) -> u64 {
        self.0.lock().unwrap().values().sum()
    }
    fn print(&self) {
        let counts = self.0.lock().unwrap();
        for ((server, status), n) in counts.iter() {
            let status = if *status == 0 { "no answer".to_string() } else { status.to_string() };
            println!("  {server:<13} {status:>9}: {n}");
        }
    }
}

/// What every part of the suite shares: the three servers, a scratch folder, the tally of
/// statuses, failures, crashes and the summary lines of the probe modules.
pub struct Suite {
    /// A scratch folder for probes (make a subfolder of your own).
    pub dir: PathBuf,
    pub model_server: Running,
    pub registry: Running,
    /// Bucket `models`, keys `jukebox` / `jukebox-secret`.
    pub s3: Running,
    /// CI mode: each probe stays within seconds.
    pub short: bool,
    tally: Tally,
    failures: Mutex<Vec<String>>,
    crashes: AtomicU64,
    summary: Mutex<Vec<String>>,
}

impl Suite {
    /// Counts one answer: `kind` is the line of the statuses table (e.g. `"s3 race"`); 0 = no answer.
    pub fn status(&self, kind: &str, status: u16) {
        self.tally.add(kind, status);
    }

    /// A mismatch: the suite fails and lists it.
    pub fn fail(&self, message: impl Into<String>) {
        self.failures.lock().unwrap().push(message.into());
    }

    /// A server that stopped answering (or lost acknowledged data): a crash, and a failure.
    pub fn crash(&self, message: impl Into<String>) {
        self.crashes.fetch_add(1, Ordering::SeqCst);
        self.fail(message);
    }

    /// A line of the printed summary (e.g. "s3 concurrent PUTs: acknowledged 20, recovered 20").
    pub fn summary(&self, line: impl Into<String>) {
        self.summary.lock().unwrap().push(line.into());
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

/// xorshift64*: small, seeded, the same sequence everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One malformed request and the status it must get.
struct Probe {
    what: &'static str,
    bytes: Vec<u8>,
    expect: u16,
}

fn probe(what: &'static str, bytes: Vec<u8>, expect: u16) -> Probe {
    Probe { what, bytes, expect }
}

fn json_post(path: &str, body: &str) -> Vec<u8> {
    request("POST", path, &["Content-Type: application/json"], body.as_bytes())
}

/// A valid infer body for the workshop model: every input `[rows, 1]`.
fn infer_body(names: &[String], rows: usize) -> String {
    let data = vec!["0.5"; rows].join(",");
    let inputs: Vec<String> = names
        .iter()
        .map(|name| format!(r#"{{"name":"{name}","shape":[{rows},1],"datatype":"FP32","data":[{data}]}}"#))
        .collect();
    format!(r#"{{"id":"r","inputs":[{}]}}"#, inputs.join(","))
}

fn model_probes(names: &[String]) -> Vec<Probe> {
    let infer = "/v2/models/jukebox/infer";
    let valid = infer_body(names, 2);
    let first = &names[0];
    vec![
        probe("truncated JSON", json_post(infer, &valid[..valid.len() / 2]), 400),
        probe("empty body", json_post(infer, ""), 400),
        probe("not JSON", json_post(infer, "hello"), 400),
        probe("wrong datatype", json_post(infer, &valid.replace("FP32", "INT64")), 400),
        probe("unknown input", json_post(infer, &valid.replacen(first.as_str(), "no_such_input", 1)), 400),
        probe("negative dimension", json_post(infer, &valid.replacen("[2,1]", "[-2,1]", 1)), 400),
        probe(
            "overflowing shape",
            json_post(infer, &valid.replacen("[2,1]", "[9223372036854775807,9223372036854775807]", 1)),
            413,
        ),
        probe("rows over the limit", json_post(infer, &valid.replacen("[2,1]", "[1250000,1]", 1)), 413),
        probe("data shorter than shape", json_post(infer, &valid.replacen("[2,1]", "[3,1]", 1)), 400),
        probe("strings as data", json_post(infer, &valid.replacen("0.5,0.5", "\"a\",\"b\"", 1)), 400),
        probe(
            "nesting 200 deep",
            json_post(infer, &valid.replacen("[0.5,0.5]", &format!("{}0.5{}", "[".repeat(200), "]".repeat(200)), 1)),
            400,
        ),
        probe(
            "duplicate output",
            json_post(infer, &valid.replace(r#""id":"r","#, r#""outputs":[{"name":"output"},{"name":"output"}],"#)),
            400,
        ),
        probe(
            "unknown output",
            json_post(infer, &valid.replace(r#""id":"r","#, r#""outputs":[{"name":"nope"}],"#)),
            400,
        ),
        probe(
            "binary size beyond the body",
            request("POST", infer, &["Inference-Header-Content-Length: 999999"], valid.as_bytes()),
            400,
        ),
        probe("unknown model", json_post("/v2/models/nope/infer", &valid), 404),
        probe("unknown version", json_post("/v2/models/jukebox/versions/abc/infer", &valid), 404),
        probe("GET on infer", get_request(infer), 404),
        probe("body over the limit", json_post(infer, &" ".repeat(2 * 1024 * 1024)), 413),
        probe("unknown route", get_request("/v2/../../etc/passwd"), 404),
    ]
}

fn registry_probes() -> Vec<Probe> {
    let models = "/api/model_registry/v1/registered_models";
    vec![
        probe("text/plain write", request("POST", models, &["Content-Type: text/plain"], br#"{"name":"x"}"#), 415),
        probe(
            "cross-origin write",
            request(
                "POST",
                models,
                &["Content-Type: application/json", "Origin: http://evil.example"],
                br#"{"name":"x"}"#,
            ),
            403,
        ),
        probe("foreign Host", request("GET", models, &["Host: attacker.example"], b""), 403),
        probe("malformed JSON", json_post(models, r#"{"name":"#), 400),
        probe("mistyped field", json_post(models, r#"{"name":5}"#), 400),
        probe("1 MB name", json_post(models, &format!(r#"{{"name":"{}"}}"#, "n".repeat(1_000_000))), 400),
        probe("3 MB body", json_post(models, &format!(r#"{{"name":"{}"}}"#, "n".repeat(3_000_000))), 413),
        probe("unknown id", get_request(&format!("{models}/999999")), 404),
        probe("id that is no number", get_request(&format!("{models}/abc")), 404),
        probe("bad pageSize", get_request(&format!("{models}?pageSize=-1")), 400),
        probe("method not allowed", request("PUT", models, &["Content-Type: application/json"], b"{}"), 405),
        probe(
            "artifact type",
            json_post("/api/model_registry/v1/model_artifacts", r#"{"artifactType":"doc-artifact"}"#),
            400,
        ),
        probe("unknown endpoint", get_request("/api/model_registry/v1/nothing"), 404),
    ]
}

fn s3_probes() -> Vec<Probe> {
    vec![
        probe("unsigned list", get_request("/"), 403),
        probe("garbage Authorization", request("GET", "/models", &["Authorization: AWS4-HMAC-SHA256 garbage"], b""), 400),
        probe("key escaping the bucket", request("PUT", "/models//tmp/escape", &[], b"x"), 400),
        probe("dot-dot key", request("PUT", "/models/a/../../escape", &[], b"x"), 400),
        probe(
            "wrong signature",
            request(
                "PUT",
                "/models/x",
                &[
                    "x-amz-date: 20260101T000000Z",
                    "x-amz-content-sha256: UNSIGNED-PAYLOAD",
                    "Authorization: AWS4-HMAC-SHA256 Credential=jukebox/20260101/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
                ],
                b"x",
            ),
            403,
        ),
    ]
}

/// Sends every probe; returns the mismatches. Checks the server still answers after each.
fn run_table(server_name: &str, server: &Running, probes: &[Probe], alive: &[u8], tally: &Tally) -> Vec<String> {
    let mut failures = Vec::new();
    for probe in probes {
        let (status, body) = raw(server.addr, &probe.bytes);
        tally.add(server_name, status);
        if status != probe.expect {
            failures.push(format!(
                "{server_name}: {}: expected {}, got {status} {}",
                probe.what,
                probe.expect,
                body.trim()
            ));
        }
        let (alive_status, _) = raw(server.addr, alive);
        if alive_status == 0 || alive_status >= 500 {
            failures.push(format!("{server_name}: no answer after probe {:?} ({alive_status})", probe.what));
        }
    }
    failures
}

/// A random mutation of `base` (a valid request).
fn mutate(base: &str, rng: &mut Rng) -> Vec<u8> {
    let mut bytes = base.as_bytes().to_vec();
    let tokens: [&[u8]; 14] = [
        b"-1",
        b"1e308",
        b"NaN",
        b"null",
        b"[]",
        b"{}",
        b"\"x\"",
        b"9223372036854775807",
        b"[[[[[[",
        b"]]]]",
        b",",
        b"\"shape\"",
        b"\"data\"",
        b"true",
    ];
    for _ in 0..=rng.below(4) {
        let at = rng.below(bytes.len() + 1).min(bytes.len());
        match rng.below(6) {
            0 if !bytes.is_empty() => {
                let i = at.min(bytes.len() - 1);
                bytes[i] = (rng.next() & 0xff) as u8;
            }
            1 => bytes.truncate(at),
            2 => {
                let token = tokens[rng.below(tokens.len())];
                bytes.splice(at..at, token.iter().copied());
            }
            3 if !bytes.is_empty() => {
                let end = (at + rng.below(40)).min(bytes.len());
                bytes.drain(at..end);
            }
            4 => {
                // Duplicate a slice (repeated inputs, keys, values).
                let end = (at + rng.below(200)).min(bytes.len());
                let slice = bytes[at..end].to_vec();
                bytes.splice(at..at, slice);
            }
            _ => {
                // Replace a number with a hostile one.
                let token = tokens[rng.below(8)];
                if let Some(pos) = bytes[at..].iter().position(|b| b.is_ascii_digit()) {
                    let start = at + pos;
                    let end = start + bytes[start..].iter().take_while(|b| b.is_ascii_digit() || **b == b'.').count();
                    bytes.splice(start..end, token.iter().copied());
                }
            }
        }
    }
    bytes
}

#[test]
fn reliability_suite() {
    let fuzz_count = env_number("JUKEBOX_RELIABILITY_REQUESTS", 2000);
    let seed = env_number("JUKEBOX_RELIABILITY_SEED", 0x005e_ed10);
    let started = Instant::now();

    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().to_path_buf();
    let models = dir.join("models");
    jukebox_testkit::make_model(&models, "1", "1");
    let mut config = ModelServerConfig::new(&models);
    config.max_body_bytes = 1024 * 1024;
    let suite = Suite {
        model_server: Running::model_server(config),
        registry: Running::registry(RegistryConfig::new(dir.join("registry.db"))),
        s3: Running::s3(S3Config::new(dir.join("s3"), "jukebox", "jukebox-secret").with_bucket("models")),
        dir,
        short: fuzz_count <= 2000,
        tally: Tally::default(),
        failures: Mutex::new(Vec::new()),
        crashes: AtomicU64::new(0),
        summary: Mutex::new(Vec::new()),
    };
    let (model_server, registry, s3, tally) = (&suite.model_server, &suite.registry, &suite.s3, &suite.tally);

    let (_, metadata) = raw(model_server.addr, &get_request("/v2/models/jukebox"));
    let metadata: serde_json::Value = serde_json::from_str(metadata.trim()).expect("model metadata");
    let names: Vec<String> =
        metadata["inputs"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap().to_string()).collect();
    let health = get_request("/v2/health/ready");

    // 1. The malformed-input tables.
    let mut failures = Vec::new();
    failures.extend(run_table("model server", model_server, &model_probes(&names), &health, tally));
    failures.extend(run_table(
        "registry",
        registry,
        &registry_probes(),
        &get_request("/api/model_registry/v1/registered_models"),
        tally,
    ));
    failures.extend(run_table("s3", s3, &s3_probes(), &get_request("/"), tally));

    // 2. Seeded fuzz of the infer endpoint.
    let mut rng = Rng(seed | 1);
    let base = infer_body(&names, 3);
    let fuzz_started = Instant::now();
    for i in 0..fuzz_count {
        let body = mutate(&base, &mut rng);
        let (status, answer) = raw(
            model_server.addr,
            &request("POST", "/v2/models/jukebox/infer", &["Content-Type: application/json"], &body),
        );
        tally.add("infer fuzz", status);
        if status == 0 || (status >= 500 && status != 503) {
            failures.push(format!(
                "fuzz #{i} (seed {seed}): status {status} {} for body {:?}",
                answer.trim(),
                String::from_utf8_lossy(&body[..body.len().min(300)])
            ));
        }
        if i % 100 == 99 && raw(model_server.addr, &health).0 != 200 {
            suite.crash(format!("model server health failed after fuzz #{i}"));
            break;
        }
    }
    let fuzz_time = fuzz_started.elapsed();

    // 3. A short load run: valid requests from 4 threads over keep-alive connections.
    let load_count = fuzz_count.max(100);
    let load_started = Instant::now();
    let url = format!("{}/v2/models/jukebox/infer", model_server.url());
    let body = Arc::new(infer_body(&names, 8));
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (url, body, tally) = (url.clone(), body.clone(), tally.clone());
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
                for _ in (w..load_count as usize).step_by(4) {
                    let status = agent
                        .post(&url)
                        .header("Content-Type", "application/json")
                        .send(body.as_str())
                        .map(|mut r| {
                            let _ = r.body_mut().read_to_vec();
                            r.status().as_u16()
                        })
                        .unwrap_or(0);
                    tally.add("infer load", status);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    let load_time = load_started.elapsed();
    for failure in failures {
        suite.fail(failure);
    }

    // 4. The probe modules (issue 23 item 7).
    s3_integrity::run(&suite);
    silent_connections::run(&suite);
    costly_models::run(&suite);
    publish::run(&suite);

    for (name, server, alive) in [
        ("model server", model_server, health.clone()),
        ("registry", registry, get_request("/api/model_registry/v1/registered_models")),
        ("s3", s3, get_request("/")),
    ] {
        let (status, _) = raw(server.addr, &alive);
        if status == 0 || status >= 500 {
            suite.crash(format!("{name} does not answer at the end ({status})"));
        }
    }

    let crashes = suite.crashes.load(Ordering::SeqCst);
    println!("reliability summary (seed {seed}, {:.1} s):", started.elapsed().as_secs_f64());
    println!("  probes tried: {}", tally.total());
    println!(
        "  fuzz: {fuzz_count} mutated infer requests in {:.1} s; load: {load_count} requests in {:.1} s ({:.0}/s)",
        fuzz_time.as_secs_f64(),
        load_time.as_secs_f64(),
        load_count as f64 / load_time.as_secs_f64()
    );
    for line in suite.summary.lock().unwrap().iter() {
        println!("  {line}");
    }
    println!("  statuses seen:");
    tally.print();
    println!("  crashes: {crashes}");
    let counts = tally.0.lock().unwrap().clone();
    let load_ok = counts.get(&("infer load".to_string(), 200)).copied().unwrap_or(0);
    assert_eq!(load_ok, load_count, "not every load request answered 200: {counts:?}");
    let failures = suite.failures.lock().unwrap().clone();
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
    assert_eq!(crashes, 0);
}
