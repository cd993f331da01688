//! Issue 10's figures for the model server under its default limits, measured against a real
//! server on 127.0.0.1 in this process and printed beside their targets:
//!
//! 1. **Refusal**: the probe's 31 MB, 1.25 M-row JSON request is answered 413 (from the shapes,
//!    before any tensor is decoded): time from the first byte sent to the answer, over 5 tries.
//! 2. **Health under heavy load**: 8 clients each send 2 large-but-allowed requests (100,000 rows
//!    of the workshop model's 13 inputs, ~8 MB) while `/v2/health/ready` is polled every 10 ms:
//!    its p50/p99/max latency, the statuses of the large requests (200, or 503 when the queue is
//!    full), and the peak resident memory of this process (server plus harness; the answers are
//!    streamed away so they do not count).
//!
//! ```text
//! cargo bench --workspace --bench hardening
//! ```
//!
//! Exits non-zero when a large request gets anything but 200/503, the refusal is not a 413, or
//! a health probe fails: those are errors. Missing a speed or memory target is printed, not
//! fatal, because a shared machine's noise is not a defect.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jukebox_server::model_server::ModelServerConfig;
use jukebox_server::server_thread::ServerThread;
use jukebox_testkit::{make_model, resident_mb};

#[path = "../tests/common/mod.rs"]
mod common;
use common::{agent, infer_body, input_names, oversized_infer_body, post_json};

const REFUSAL_TARGET_MS: f64 = 100.0;
const HEALTH_P99_TARGET_MS: f64 = 50.0;
const RESIDENT_TARGET_MB: f64 = 500.0;

fn post(url: &str, body: &str) -> (u16, String) {
    post_json(url, body, 200)
}

fn milliseconds(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "NOT met"
    }
}

fn main() {
    let repository = tempfile::tempdir().unwrap();
    make_model(repository.path(), "1", "1");
    let server = ServerThread::model_server(ModelServerConfig::new(repository.path())).expect("model server");
    let url = server.url();
    let names = input_names(&url, "jukebox");
    let infer = format!("{url}/v2/models/jukebox/infer");
    let mut failures = Vec::new();

    // 1. The probe's oversized request: ~31 MB of JSON, just under the 32 MB body limit.
    let oversized = oversized_infer_body(&names);
    let mut refusals = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let (status, answer) = post(&infer, &oversized);
        refusals.push(milliseconds(started.elapsed()));
        if status != 413 {
            failures.push(format!("the 1.25 M-row request got {status}: {answer}"));
        }
    }
    refusals.sort_by(f64::total_cmp);
    let refusal_p50 = refusals[refusals.len() / 2];
    let refusal_max = refusals[refusals.len() - 1];

    // 2. Eight clients with large-but-allowed requests while health is polled.
    let large_rows = 100_000;
    let data = (0..large_rows).map(|i| format!("{:.3}", (i % 997) as f32 / 997.0)).collect::<Vec<_>>().join(",");
    let large = Arc::new(infer_body(&names, large_rows, &data, ""));
    let resident_before = resident_mb();
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut peak: f64 = 0.0;
            while !done.load(Ordering::SeqCst) {
                peak = peak.max(resident_mb());
                std::thread::sleep(Duration::from_millis(20));
            }
            peak
        })
    };
    let prober = {
        let (done, url) = (done.clone(), url.clone());
        std::thread::spawn(move || {
            let agent = agent();
            let (mut latencies, mut failed) = (Vec::new(), 0usize);
            while !done.load(Ordering::SeqCst) {
                let started = Instant::now();
                let ok = agent.get(&format!("{url}/v2/health/ready")).call().map(|r| r.status().as_u16() == 200);
                latencies.push(milliseconds(started.elapsed()));
                failed += usize::from(!matches!(ok, Ok(true)));
                std::thread::sleep(Duration::from_millis(10));
            }
            (latencies, failed)
        })
    };
    let started = Instant::now();
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (infer, body) = (infer.clone(), large.clone());
            std::thread::spawn(move || (0..2).map(|_| post(&infer, &body).0).collect::<Vec<u16>>())
        })
        .collect();
    let statuses: Vec<u16> = clients.into_iter().flat_map(|c| c.join().unwrap()).collect();
    let load_seconds = started.elapsed().as_secs_f64();
    done.store(true, Ordering::SeqCst);
    let peak = sampler.join().unwrap();
    let (mut latencies, health_failed) = prober.join().unwrap();
    latencies.sort_by(f64::total_cmp);
    let percentile = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    if !statuses.iter().all(|s| *s == 200 || *s == 503) || !statuses.contains(&200) {
        failures.push(format!("large requests answered {statuses:?}"));
    }
    if health_failed > 0 {
        failures.push(format!("{health_failed} health probes failed"));
    }

    println!(
        "hardening: jukebox model server, default limits, {} inputs; large request {:.1} MB x 16 (8 clients) in {load_seconds:.1} s",
        names.len(),
        large.len() as f64 / 1e6
    );
    println!("{:<48} {:>12} {:>10}  verdict", "figure", "measured", "target");
    println!(
        "{:<48} {:>9.1} ms {:>7.0} ms  {}",
        format!("413 for {:.1} MB / 1.25 M rows (slowest of 5)", oversized.len() as f64 / 1e6),
        refusal_max,
        REFUSAL_TARGET_MS,
        verdict(refusal_max < REFUSAL_TARGET_MS)
    );
    println!("{:<48} {:>9.1} ms", "  p50 of the 5", refusal_p50);
    println!(
        "{:<48} {:>9.1} ms {:>7.0} ms  {}",
        format!("health p99 under load ({} probes)", latencies.len()),
        percentile(0.99),
        HEALTH_P99_TARGET_MS,
        verdict(percentile(0.99) < HEALTH_P99_TARGET_MS)
    );
    println!("{:<48} {:>9.1} ms", "  health p50", percentile(0.5));
    println!("{:<48} {:>9.1} ms", "  health max", percentile(1.0));
    println!(
        "{:<48} {:>9.0} MB {:>7.0} MB  {}",
        format!("peak resident (server + harness; {resident_before:.0} MB before)"),
        peak,
        RESIDENT_TARGET_MB,
        verdict(peak < RESIDENT_TARGET_MB)
    );
    let served = statuses.iter().filter(|s| **s == 200).count();
    println!("{:<48} {:>12}", "large requests: 200 / 503", format!("{served} / {}", statuses.len() - served));
    server.stop().expect("model server stopped with an error");
    if !failures.is_empty() {
        eprintln!("hardening: errors:\n  {}", failures.join("\n  "));
        std::process::exit(1);
    }
}
