//! Issue 10, all servers: a half-sent request head, a half-sent body and an idle keep-alive
//! connection are closed within the configured timeout (short here: 500 ms), and the server keeps
//! answering others meanwhile.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::Running;
use jukebox_server::http::HttpTimeouts;
use jukebox_server::model_server::ModelServerConfig;
use jukebox_server::registry::RegistryConfig;
use jukebox_server::s3::S3Config;

const LIMIT: Duration = Duration::from_millis(500);
/// Generous: the timeout plus scheduling noise on a busy 2-core machine.
const CLOSED_WITHIN: Duration = Duration::from_secs(3);

/// Sends `bytes`, then waits until the server closes the connection; returns how long that took
/// and what it answered before closing.
fn time_until_closed(addr: SocketAddr, bytes: &[u8]) -> (Duration, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let started = Instant::now();
    stream.write_all(bytes).unwrap();
    let mut reply = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => reply.extend_from_slice(&buffer[..n]),
        }
    }
    (started.elapsed(), String::from_utf8_lossy(&reply).into_owned())
}

fn check_server(name: &str, server: &Running, health: &str, body_path: Option<&str>) {
    // 1. Half a request head.
    let (elapsed, reply) =
        time_until_closed(server.addr, format!("GET {health} HTTP/1.1\r\nHost: 127.0.0.1\r\n").as_bytes());
    println!("{name}: half-sent head closed after {:.0} ms", elapsed.as_secs_f64() * 1e3);
    assert!(elapsed < CLOSED_WITHIN, "{name}: half-sent head open for {elapsed:?}");
    assert!(!reply.contains(" 200 "), "{name}: {reply}");

    // 2. An idle keep-alive connection after one complete request.
    let (elapsed, reply) =
        time_until_closed(server.addr, format!("GET {health} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes());
    println!("{name}: idle keep-alive closed after {:.0} ms", elapsed.as_secs_f64() * 1e3);
    assert!(reply.starts_with("HTTP/1.1 200") || reply.starts_with("HTTP/1.1 4"), "{name}: {reply}");
    assert!(elapsed < CLOSED_WITHIN, "{name}: idle connection open for {elapsed:?}");

    // 3. A body that stops halfway.
    if let Some(path) = body_path {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"inputs\":"
        );
        let (elapsed, reply) = time_until_closed(server.addr, head.as_bytes());
        let status = reply.split(' ').nth(1).unwrap_or("(closed)");
        println!("{name}: half-sent body answered {status} and closed after {:.0} ms", elapsed.as_secs_f64() * 1e3);
        assert!(elapsed < CLOSED_WITHIN, "{name}: half-sent body open for {elapsed:?}");
        assert!(reply.is_empty() || reply.starts_with("HTTP/1.1 408"), "{name}: {reply}");
    }

    // The server still answers.
    let (status, _) = common::raw(server.addr, &common::get_request(health));
    assert!(status == 200 || status == 403, "{name}: {status}");
}

#[test]
fn half_sent_and_idle_connections_are_closed_on_every_server() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    jukebox_testkit::make_model(&models, "1", "1");
    let mut config = ModelServerConfig::new(&models);
    config.timeouts = HttpTimeouts::uniform(LIMIT);
    let model_server = Running::model_server(config);
    check_server("model server", &model_server, "/v2/health/ready", Some("/v2/models/jukebox/infer"));

    let mut config = RegistryConfig::new(dir.path().join("registry.db"));
    config.timeouts = HttpTimeouts::uniform(LIMIT);
    let registry = Running::registry(config);
    check_server(
        "registry",
        &registry,
        "/api/model_registry/v1/registered_models",
        Some("/api/model_registry/v1/registered_models"),
    );

    let mut config = S3Config::new(dir.path().join("s3"), "jukebox", "jukebox-secret");
    config.timeouts = HttpTimeouts::uniform(LIMIT);
    let s3 = Running::s3(config);
    // Unsigned S3 requests are refused before any body is read: only head and idle apply.
    check_server("s3", &s3, "/", None);
}
