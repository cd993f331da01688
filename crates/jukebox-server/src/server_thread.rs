//! One server on its own thread until dropped: for synchronous programs that need a server for a
//! while (the integration tests of this crate, of the helper library and of the CLI; benchmarks).
//!
//! [`ServerThread`] binds `127.0.0.1:0` (a free port), serves on a tokio runtime with two workers
//! on a thread of its own, and on drop (or [`ServerThread::stop`]) asks the server to stop, which
//! finishes the requests in flight, and joins the thread. `jukebox up` runs its servers on one
//! runtime instead, with [`crate::stack`].
//!
//! ```no_run
//! use jukebox_server::registry::RegistryConfig;
//! use jukebox_server::server_thread::ServerThread;
//!
//! let registry = ServerThread::registry(RegistryConfig::new("/tmp/registry.db")).unwrap();
//! println!("registry at {}", registry.url());
//! registry.stop().unwrap(); // or drop it
//! ```

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use crate::model_server::{ModelRepository, ModelServerConfig, ServeOptions};
use crate::registry::RegistryConfig;
use crate::s3::S3Config;

/// Completes when the [`ServerThread`] is stopped: the `shutdown` future a server is given.
pub type Shutdown = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A server on 127.0.0.1 on its own runtime thread; stopped and joined when dropped.
pub struct ServerThread {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
}

impl ServerThread {
    /// Binds `127.0.0.1:0` on a new thread's runtime and runs `serve(listener, shutdown)` there.
    /// Returns once the port is bound (requests sent from then on wait for the server, they are
    /// not refused). Fails when the runtime cannot be built or the port bound.
    pub fn spawn<F, Fut, E>(serve: F) -> std::io::Result<Self>
    where
        F: FnOnce(tokio::net::TcpListener, Shutdown) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>>,
        E: std::fmt::Display,
    {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel::<std::io::Result<SocketAddr>>();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new().name("jukebox-server".into()).spawn(move || {
            let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
                Ok(runtime) => runtime,
                Err(e) => {
                    let message = e.to_string();
                    let _ = addr_tx.send(Err(e));
                    return Err(message);
                }
            };
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
                    Ok(listener) => listener,
                    Err(e) => {
                        let message = e.to_string();
                        let _ = addr_tx.send(Err(e));
                        return Err(message);
                    }
                };
                let _ = addr_tx.send(listener.local_addr());
                let shutdown: Shutdown = Box::pin(async {
                    let _ = stopped.await;
                });
                serve(listener, shutdown).await.map_err(|e| e.to_string())
            })
        })?;
        let addr = addr_rx.recv().map_err(|_| std::io::Error::other("the server thread ended before listening"))??;
        Ok(Self { addr, stop: Some(stop), thread: Some(thread) })
    }

    /// The KServe v2 model server on `config`'s repository (it answers once the repository is
    /// loaded; `/v2/health/ready` says when).
    pub fn model_server(config: ModelServerConfig) -> std::io::Result<Self> {
        Self::spawn(move |listener, shutdown| crate::model_server::serve(listener, config, shutdown))
    }

    /// The model server on a repository already loaded, with `options` (token, limits, batching).
    pub fn model_repository(repository: ModelRepository, options: ServeOptions) -> std::io::Result<Self> {
        Self::spawn(move |listener, shutdown| {
            crate::model_server::serve_repository(listener, repository, None, options, shutdown)
        })
    }

    /// The model registry.
    pub fn registry(config: RegistryConfig) -> std::io::Result<Self> {
        Self::spawn(move |listener, shutdown| crate::registry::serve(listener, config, shutdown))
    }

    /// The S3 server.
    pub fn s3(config: S3Config) -> std::io::Result<Self> {
        Self::spawn(move |listener, shutdown| crate::s3::serve(listener, config, shutdown))
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server, waits until it has finished (e.g. closed its database) and returns how
    /// it ended: the server's error, or a panic of its thread, as a message.
    pub fn stop(mut self) -> Result<(), String> {
        self.finish()
    }

    fn finish(&mut self) -> Result<(), String> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take() {
            Some(thread) => thread.join().unwrap_or_else(|_| Err("the server thread panicked".into())),
            None => Ok(()),
        }
    }
}

impl Drop for ServerThread {
    /// Stops and joins the server; how it ended is for [`ServerThread::stop`] to report.
    fn drop(&mut self) {
        let _ = self.finish();
    }
}
