//! Issue 10's load figure, alone in its own test binary so the resident memory measured is the
//! server's (plus this harness): 8 concurrent large-but-allowed requests (100,000 rows of the
//! workshop model's 13 inputs) while `/v2/health/ready` is polled. Prints health latency
//! percentiles and the peak resident memory; asserts generous bounds (the issue's targets are
//! p99 < 50 ms and < 500 MB; a shared 2-core CI machine adds noise).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jukebox_server::model_server::ModelServerConfig;
use jukebox_server::server_thread::ServerThread;
use jukebox_testkit::{make_model, resident_mb};

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

#[test]
fn health_stays_fast_and_memory_bounded_under_eight_large_requests() {
    let repository = tempfile::tempdir().unwrap();
    make_model(repository.path(), "1", "1");
    let config = ModelServerConfig::new(repository.path()); // default limits
    let server = ServerThread::model_server(config).unwrap();
    let url = server.url();
    let mut metadata = agent().get(&format!("{url}/v2/models/jukebox")).call().unwrap();
    let metadata: serde_json::Value = serde_json::from_str(&metadata.body_mut().read_to_string().unwrap()).unwrap();
    let names: Vec<String> =
        metadata["inputs"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap().to_string()).collect();
    let rows = 100_000;
    let data = (0..rows).map(|i| format!("{:.3}", (i % 997) as f32 / 997.0)).collect::<Vec<_>>().join(",");
    let inputs: Vec<String> = names
        .iter()
        .map(|name| format!(r#"{{"name":"{name}","shape":[{rows},1],"datatype":"FP32","data":[{data}]}}"#))
        .collect();
    let body = Arc::new(format!(r#"{{"inputs":[{}]}}"#, inputs.join(",")));
    println!("request: {rows} rows, {:.1} MB; resident before: {:.0} MB", body.len() as f64 / 1e6, resident_mb());

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
            let mut latencies = Vec::new();
            while !done.load(Ordering::SeqCst) {
                let started = Instant::now();
                let status = agent.get(&format!("{url}/v2/health/ready")).call().unwrap().status().as_u16();
                latencies.push(started.elapsed());
                assert_eq!(status, 200);
                std::thread::sleep(Duration::from_millis(10));
            }
            latencies
        })
    };
    let started = Instant::now();
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (url, body) = (url.clone(), body.clone());
            std::thread::spawn(move || {
                let mut statuses = Vec::new();
                for _ in 0..2 {
                    let mut response = agent()
                        .post(&format!("{url}/v2/models/jukebox/infer"))
                        .header("Content-Type", "application/json")
                        .send(body.as_str())
                        .unwrap();
                    statuses.push(response.status().as_u16());
                    // Streamed away, so the harness's memory does not count the answers.
                    let mut reader = response.body_mut().with_config().limit(1 << 30).reader();
                    std::io::copy(&mut reader, &mut std::io::sink()).unwrap();
                }
                statuses
            })
        })
        .collect();
    let statuses: Vec<u16> = clients.into_iter().flat_map(|c| c.join().unwrap()).collect();
    let elapsed = started.elapsed();
    done.store(true, Ordering::SeqCst);
    let peak = sampler.join().unwrap();
    let mut latencies = prober.join().unwrap();
    latencies.sort();
    let percentile = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e3;
    println!(
        "16 large requests in {:.1} s, statuses {statuses:?}; health: {} probes, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; peak resident {:.0} MB",
        elapsed.as_secs_f64(),
        latencies.len(),
        percentile(0.5),
        percentile(0.99),
        percentile(1.0),
        peak
    );
    assert!(statuses.iter().all(|s| *s == 200 || *s == 503), "{statuses:?}");
    assert!(statuses.contains(&200));
    assert!(percentile(0.99) < 250.0, "health p99 {:.1} ms", percentile(0.99));
    assert!(peak < 500.0, "peak resident memory {peak:.0} MB");
}
