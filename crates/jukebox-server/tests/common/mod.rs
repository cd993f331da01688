//! Helpers shared by the hardening tests: each server started on 127.0.0.1:0 on its own runtime
//! thread (stopped when dropped), and raw HTTP/1.1 over a socket for requests a well-behaved
//! client library would never send.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use jukebox_server::model_server::{ModelRepository, ModelServerConfig, ServeOptions};
use jukebox_server::registry::RegistryConfig;
use jukebox_server::s3::S3Config;

/// One server on its own runtime thread.
pub struct Running {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    fn start<F, Fut>(serve: F) -> Self
    where
        F: FnOnce(tokio::net::TcpListener, tokio::sync::oneshot::Receiver<()>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()>,
    {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                serve(listener, stopped).await;
            });
        });
        let addr = addr_rx.recv_timeout(Duration::from_secs(60)).expect("server did not start");
        Self { addr, stop: Some(stop), thread: Some(thread) }
    }

    pub fn model_server(config: ModelServerConfig) -> Self {
        let running = Self::start(move |listener, stopped| async move {
            jukebox_server::model_server::serve(listener, config, async {
                stopped.await.ok();
            })
            .await
            .unwrap();
        });
        running.wait_ready("/v2/health/ready");
        running
    }

    /// A model server on a repository already loaded, with `options` (limits, batching); not
    /// waited for (the repository is loaded, so it answers as soon as it listens).
    pub fn model_repository(repository: ModelRepository, options: ServeOptions) -> Self {
        Self::start(move |listener, stopped| async move {
            jukebox_server::model_server::serve_repository(listener, repository, None, options, async {
                stopped.await.ok();
            })
            .await
            .unwrap();
        })
    }

    pub fn registry(config: RegistryConfig) -> Self {
        Self::start(move |listener, stopped| async move {
            jukebox_server::registry::serve(listener, config, async {
                stopped.await.ok();
            })
            .await
            .unwrap();
        })
    }

    pub fn s3(config: S3Config) -> Self {
        Self::start(move |listener, stopped| async move {
            jukebox_server::s3::serve(listener, config, async {
                stopped.await.ok();
            })
            .await
            .unwrap();
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn wait_ready(&self, path: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while raw(self.addr, &get_request(path)).0 != 200 {
            assert!(std::time::Instant::now() < deadline, "{path} never answered 200");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
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
