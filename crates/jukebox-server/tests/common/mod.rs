//! Helpers shared by the hardening tests and the hardening bench: each server started on
//! 127.0.0.1:0 on its own runtime thread (`jukebox_server::server_thread`, stopped when
//! dropped), a ureq client that reports every status, and raw HTTP/1.1 over a socket for
//! requests a well-behaved client library would never send.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use jukebox_server::http::HttpTimeouts;
use jukebox_server::model_server::ModelServerConfig;
use jukebox_server::registry::RegistryConfig;
use jukebox_server::s3::S3Config;
use jukebox_server::server_thread::ServerThread;

/// One server on its own runtime thread ([`ServerThread`]), stopped when dropped.
pub struct Running {
    pub addr: SocketAddr,
    server: ServerThread,
}

impl Running {
    fn start(server: std::io::Result<ServerThread>) -> Self {
        let server = server.expect("server did not start");
        Self { addr: server.addr(), server }
    }

    /// The model server, once `/v2/health/ready` answers 200 (its repository is loaded).
    pub fn model_server(config: ModelServerConfig) -> Self {
        let running = Self::start(ServerThread::model_server(config));
        running.wait_ready("/v2/health/ready");
        running
    }

    pub fn registry(config: RegistryConfig) -> Self {
        Self::start(ServerThread::registry(config))
    }

    pub fn s3(config: S3Config) -> Self {
        Self::start(ServerThread::s3(config))
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    fn wait_ready(&self, path: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while raw(self.addr, &get_request(path)).0 != 200 {
            assert!(std::time::Instant::now() < deadline, "{path} never answered 200");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The three servers with one header timeout and connection cap (`None`: the default), the
/// rest of their timeouts their own (S3's are the storage ones): the model server on the
/// repository `models`, the registry's database and S3's data in `state`.
pub fn three_servers(
    models: &Path,
    state: &Path,
    header_read: Duration,
    max_connections: Option<usize>,
) -> (Running, Running, Running) {
    let api = HttpTimeouts { header_read, max_connections, ..HttpTimeouts::API };
    let mut config = ModelServerConfig::new(models);
    config.timeouts = api;
    let model_server = Running::model_server(config);
    let mut config = RegistryConfig::new(state.join("registry.db"));
    config.timeouts = api;
    let registry = Running::registry(config);
    let mut config = S3Config::new(state.join("s3"), "jukebox", "jukebox-secret");
    config.timeouts = HttpTimeouts { header_read, max_connections, ..HttpTimeouts::STORAGE };
    (model_server, registry, Running::s3(config))
}

/// A ureq client that returns 4xx/5xx answers instead of failing on them.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).max_response_header_size(1 << 20).build().into()
}

/// POSTs `body` as JSON: (status, the answer's first `keep` bytes). The rest of the answer is
/// read and dropped, so a large answer costs no memory when `keep` is small.
pub fn post_json(url: &str, body: &str, keep: u64) -> (u16, String) {
    let mut response = agent()
        .post(url)
        .header("Content-Type", "application/json")
        .send(body)
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = response.status().as_u16();
    let mut reader = response.body_mut().with_config().limit(1 << 30).reader();
    let mut head = Vec::new();
    reader.by_ref().take(keep).read_to_end(&mut head).unwrap();
    std::io::copy(&mut reader, &mut std::io::sink()).unwrap();
    (status, String::from_utf8_lossy(&head).into_owned())
}

/// A KServe v2 infer body: every input of shape `[rows, 1]` FP32 with `data` (the items of a
/// JSON list, without brackets), then `rest` (e.g. `,"outputs":[...]`).
pub fn infer_body(names: &[String], rows: usize, data: &str, rest: &str) -> String {
    let inputs: Vec<String> = names
        .iter()
        .map(|name| format!(r#"{{"name":"{name}","shape":[{rows},1],"datatype":"FP32","data":[{data}]}}"#))
        .collect();
    format!(r#"{{"inputs":[{}]{rest}}}"#, inputs.join(","))
}

/// The outside probe's oversized request: 1.25 M rows declared, ~31 MB of JSON (just under the
/// 32 MB body limit).
pub fn oversized_infer_body(names: &[String]) -> String {
    let per_input = (31_000_000 / names.len()) / 2;
    infer_body(names, 1_250_000, &vec!["0"; per_input].join(","), "")
}

/// A model's input names from its metadata, once the server answers for it (30 s at most).
pub fn input_names(base_url: &str, model: &str) -> Vec<String> {
    let url = format!("{base_url}/v2/models/{model}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let body = loop {
        let mut response = agent().get(&url).call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let body = response.body_mut().read_to_string().unwrap();
        if response.status() == 200 {
            break body;
        }
        assert!(std::time::Instant::now() < deadline, "GET {url} still answers {}: {body}", response.status());
        std::thread::sleep(Duration::from_millis(50));
    };
    let metadata: serde_json::Value = serde_json::from_str(&body).unwrap();
    metadata["inputs"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap().to_string()).collect()
}

/// `GET path` with `Connection: close`.
pub fn get_request(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").into_bytes()
}

/// A request with a body and `Connection: close`; `headers` are extra `Name: value` lines.
pub fn request(method: &str, path: &str, headers: &[&str], body: &[u8]) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    if !headers.iter().any(|h| h.to_ascii_lowercase().starts_with("host:")) {
        head.push_str("Host: 127.0.0.1\r\n");
    }
    for header in headers {
        head.push_str(header);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Sends `bytes`, reads the answer to its end: (status, body). Status 0 = closed without an answer.
pub fn raw(addr: SocketAddr, bytes: &[u8]) -> (u16, String) {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) else {
        return (0, "connect failed".into());
    };
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    if stream.write_all(bytes).is_err() {
        // The server may answer (413) and close before reading everything.
    }
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    let text = String::from_utf8_lossy(&reply).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}
