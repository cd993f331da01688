//! The three servers together, as `jukebox up` runs them: the cluster of the workshop on one
//! machine, on 127.0.0.1.
//!
//! [`start`] binds the S3 server (for MinIO), the model registry (for the Kubeflow Model
//! Registry) and the KServe v2 model server (for OpenVINO Model Server), with their state under
//! one folder (`s3/`, `registry.db`, `credentials`). The model server serves what the bucket holds
//! under `models/` and loads new versions as they are uploaded, as KServe's OVMS does with its
//! storage. [`RunningStack::exports`] are the variables a data connection would inject, which
//! clients read; [`RunningStack::run_until`] serves until asked to stop, or until one server stops
//! by itself (an error), and then stops the others and waits for them.
//!
//! S3 credentials are made up on the first start and kept in `<state>/credentials` (owner-only),
//! so every state folder has its own secret; [`StackConfig::credentials`] sets them instead.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use jukebox_protocol::{env, model_folder};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::model_server::{ModelRepository, RepositoryWatch, ServeOptions};
use crate::registry::RegistryConfig;
use crate::s3::S3Config;

/// File in the state folder holding its S3 credentials (`access_key=...`, `secret_key=...`).
pub const CREDENTIALS_FILE: &str = "credentials";

/// How to start the stack. [`StackConfig::new`] gives the defaults of `jukebox up`.
#[derive(Debug, Clone)]
pub struct StackConfig {
    /// Folder for all server state: `s3/` (one folder per bucket), `registry.db`, `credentials`.
    pub state_dir: PathBuf,
    /// Ports on 127.0.0.1; 0 picks a free one.
    pub s3_port: u16,
    pub registry_port: u16,
    pub model_port: u16,
    /// `(access key, secret key)`; `None` uses the state folder's (made up on first start).
    pub credentials: Option<(String, String)>,
    /// Bucket created at start and announced as `AWS_S3_BUCKET`.
    pub bucket: String,
    /// Region announced as `AWS_DEFAULT_REGION` (the server accepts any).
    pub region: String,
    /// Repository the model server watches; `None`: the bucket's `models/` folder.
    pub model_repository: Option<PathBuf>,
    /// The model server's token, request limits and timeouts.
    pub model_options: ServeOptions,
    /// Bearer token the registry requires for writes.
    pub registry_token: Option<String>,
}

impl StackConfig {
    /// State in `state_dir`, ports 9000 (S3), 8080 (registry) and 8000 (models), bucket `models`.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        StackConfig {
            state_dir: state_dir.into(),
            s3_port: 9000,
            registry_port: 8080,
            model_port: 8000,
            credentials: None,
            bucket: model_folder::DEFAULT_BUCKET.into(),
            region: "us-east-1".into(),
            model_repository: None,
            model_options: ServeOptions::default(),
            registry_token: None,
        }
    }
}

/// Why the stack did not start or stopped. Messages name the server, port or file at fault.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error(
        "cannot start the {server} server: port {port} on 127.0.0.1 is in use (pick another port, or 0 for a free one)"
    )]
    PortInUse { server: &'static str, port: u16 },
    #[error("cannot start the {server} server on {address}: {source}")]
    Bind { server: &'static str, address: SocketAddr, source: std::io::Error },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} lacks an access_key= or secret_key= line; fix or delete it (a new pair is made up then)")]
    Credentials { path: PathBuf },
    #[error("no random source for the S3 secret: {0}")]
    Random(String),
    #[error(transparent)]
    S3(#[from] crate::s3::S3Error),
    #[error("the {server} server stopped unexpectedly")]
    Stopped { server: &'static str },
    #[error("the {server} server failed: {message}")]
    Failed { server: &'static str, message: String },
}

/// One server's task.
struct Service {
    name: &'static str,
    task: tokio::task::JoinHandle<Result<(), String>>,
}

/// The started stack: its URLs and the variables clients need.
pub struct RunningStack {
    pub s3_url: String,
    pub registry_url: String,
    pub model_url: String,
    /// The folder the model server watches.
    pub repository_dir: PathBuf,
    exports: Vec<(&'static str, String)>,
    services: Vec<Service>,
    stop: watch::Sender<bool>,
}

/// Binds the three servers and starts serving; returns once all listen.
pub async fn start(config: StackConfig) -> Result<RunningStack, StackError> {
    let state_dir = &config.state_dir;
    std::fs::create_dir_all(state_dir).map_err(|source| StackError::Io { path: state_dir.clone(), source })?;
    let (access_key, secret_key) = match &config.credentials {
        Some(pair) => pair.clone(),
        None => state_credentials(state_dir)?,
    };
    let (stop, stopped) = watch::channel(false);
    let shutdown = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }
    };
    let mut services = Vec::new();

    let s3_listener = bind(config.s3_port, "S3").await?;
    let s3_url = url_of(&s3_listener, "S3")?;
    let s3_config = S3Config::new(state_dir.join("s3"), &access_key, &secret_key).with_bucket(&config.bucket);
    // Checks the bucket name and folder now, so a mistake fails before anything is announced.
    crate::s3::service(&s3_config)?;
    services.push(spawn("S3", crate::s3::serve(s3_listener, s3_config, shutdown())));

    let registry_listener = bind(config.registry_port, "model registry").await?;
    let registry_url = url_of(&registry_listener, "model registry")?;
    let mut registry_config = RegistryConfig::new(state_dir.join("registry.db"));
    registry_config.token = config.registry_token.clone();
    services.push(spawn("model registry", crate::registry::serve(registry_listener, registry_config, shutdown())));

    let repository_dir = config
        .model_repository
        .clone()
        .unwrap_or_else(|| state_dir.join("s3").join(&config.bucket).join(model_folder::BUCKET_MODELS_DIR));
    let model_listener = bind(config.model_port, "model").await?;
    let model_url = url_of(&model_listener, "model")?;
    let watch = RepositoryWatch {
        dir: repository_dir.clone(),
        interval: Duration::from_secs(1),
        sessions_per_model: std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let serving = crate::model_server::serve_repository(
        model_listener,
        ModelRepository::default(),
        Some(watch),
        config.model_options.clone(),
        shutdown(),
    );
    services.push(spawn("model", serving));

    let mut exports = vec![
        (env::AWS_S3_ENDPOINT, s3_url.clone()),
        (env::AWS_ACCESS_KEY_ID, access_key),
        (env::AWS_SECRET_ACCESS_KEY, secret_key),
        (env::AWS_DEFAULT_REGION, config.region.clone()),
        (env::AWS_S3_BUCKET, config.bucket.clone()),
        (env::REGISTRY_URL, registry_url.clone()),
    ];
    if let Some(token) = &config.registry_token {
        exports.push((env::REGISTRY_TOKEN, token.clone()));
    }
    exports.push((env::MODEL_URL, model_url.clone()));
    // The clients (`jukebox request`, notebook 4) need the model server's token as much as its URL.
    if let Some(token) = &config.model_options.token {
        exports.push((env::MODEL_TOKEN, token.clone()));
    }
    Ok(RunningStack { s3_url, registry_url, model_url, repository_dir, exports, services, stop })
}

impl RunningStack {
    /// The variables clients read, in the order `jukebox up` prints them.
    pub fn exports(&self) -> &[(&'static str, String)] {
        &self.exports
    }

    /// The exports as `export NAME=value` lines a POSIX shell can `eval` or `source`.
    pub fn shell_lines(&self) -> String {
        self.exports.iter().map(|(name, value)| format!("export {name}={}\n", shell_quote(value))).collect()
    }

    /// The names of the running servers, for messages.
    pub fn server_names(&self) -> Vec<&'static str> {
        self.services.iter().map(|s| s.name).collect()
    }

    /// Serves until `stop` completes (Ok) or a server stops by itself (an error naming it); then
    /// stops the other servers, lets in-flight requests finish, and waits for them.
    pub async fn run_until(mut self, stop: impl Future<Output = ()>) -> Result<(), StackError> {
        let failure = tokio::select! {
            () = stop => None,
            (index, finished) = first_to_finish(&mut self.services) => Some((index, finished)),
        };
        let _ = self.stop.send(true);
        let mut result = Ok(());
        if let Some((index, finished)) = &failure {
            let server = self.services[*index].name;
            result = Err(match finished {
                Ok(Ok(())) => StackError::Stopped { server },
                Ok(Err(message)) => StackError::Failed { server, message: message.clone() },
                Err(e) => StackError::Failed { server, message: format!("crashed: {e}") },
            });
        }
        for (index, service) in self.services.into_iter().enumerate() {
            if matches!(failure, Some((failed, _)) if failed == index) {
                continue; // already finished and reported above
            }
            match service.task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!("jukebox up: the {} server reported an error while stopping: {e}", service.name)
                }
                Err(e) => tracing::error!("jukebox up: the {} server crashed while stopping: {e}", service.name),
            }
        }
        result
    }
}

fn spawn<E: std::fmt::Display>(
    name: &'static str,
    server: impl Future<Output = Result<(), E>> + Send + 'static,
) -> Service {
    Service { name, task: tokio::spawn(async move { server.await.map_err(|e| e.to_string()) }) }
}

/// Waits for the first service task to finish: `(its index, its result)`.
#[allow(clippy::type_complexity)] // a join result of a task result, read once below
fn first_to_finish(
    services: &mut [Service],
) -> impl Future<Output = (usize, Result<Result<(), String>, tokio::task::JoinError>)> + '_ {
    std::future::poll_fn(move |cx| {
        for (index, service) in services.iter_mut().enumerate() {
            if let std::task::Poll::Ready(result) = Pin::new(&mut service.task).poll(cx) {
                return std::task::Poll::Ready((index, result));
            }
        }
        std::task::Poll::Pending
    })
}

async fn bind(port: u16, server: &'static str) -> Result<TcpListener, StackError> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpListener::bind(address).await.map_err(|source| match source.kind() {
        std::io::ErrorKind::AddrInUse => StackError::PortInUse { server, port },
        _ => StackError::Bind { server, address, source },
    })
}

fn url_of(listener: &TcpListener, server: &'static str) -> Result<String, StackError> {
    let address = listener.local_addr().map_err(|source| StackError::Bind {
        server,
        address: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        source,
    })?;
    Ok(format!("http://{address}"))
}

/// Quotes a value for POSIX shells when it holds anything beyond a safe set.
pub fn shell_quote(value: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./:@%+=,".contains(c);
    if !value.is_empty() && value.chars().all(safe) {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

/// Creates (or truncates) `path` readable and writable by its owner only, writes `text` and
/// syncs it: for files that hold a secret (credentials, env files).
pub fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    // `mode` only applies to a new file; an existing one keeps its bits unless set here.
    #[cfg(unix)]
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// The state folder's S3 credentials: read from `<state_dir>/credentials`, or made up (from the
/// operating system's random source) and written there on first use, owner-only.
pub fn state_credentials(state_dir: &Path) -> Result<(String, String), StackError> {
    let path = state_dir.join(CREDENTIALS_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let value = |key: &str| {
                text.lines()
                    .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(String::from)
            };
            match (value("access_key"), value("secret_key")) {
                (Some(access), Some(secret)) => Ok((access, secret)),
                _ => Err(StackError::Credentials { path }),
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 24];
            getrandom::fill(&mut bytes).map_err(|e| StackError::Random(e.to_string()))?;
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            let (access, secret) = (format!("jukebox-{}", &hex[..8]), hex[8..].to_string());
            write_private(&path, &format!("access_key={access}\nsecret_key={secret}\n"))
                .map_err(|source| StackError::Io { path: path.clone(), source })?;
            Ok((access, secret))
        }
        Err(source) => Err(StackError::Io { path, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn values_are_quoted_only_when_needed() {
        assert_eq!(shell_quote("http://127.0.0.1:9000"), "http://127.0.0.1:9000");
        assert_eq!(shell_quote("se cret"), "'se cret'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
