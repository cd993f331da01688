//! `jukebox up`: the cluster services of the workshop on this machine, on 127.0.0.1.
//!
//! Starts the embedded S3 server (stands in for MinIO), the model registry (stands in for the
//! Kubeflow Model Registry) and the KServe v2 model server (stands in for OpenVINO Model Server)
//! with their data under one folder (default `.jukebox/`: `s3/` and `registry.db`). The model
//! server serves what the bucket holds under `models/` (`models/<name>/<version>/model.onnx`, the
//! layout `jukebox save` and notebook 3 upload to) and picks up new versions as they are uploaded,
//! as KServe's OVMS does with its storage. Then it prints the environment a data connection would inject, as lines a shell
//! can `eval` (and, with `--env-file`, writes them to a file to `source`):
//!
//! ```text
//! export AWS_S3_ENDPOINT=http://127.0.0.1:9000
//! export AWS_ACCESS_KEY_ID=jukebox-3f9c...
//! ...
//! export JUKEBOX_REGISTRY_URL=http://127.0.0.1:8080
//! ```
//!
//! The S3 credentials are made up on the first start and kept in `<data folder>/credentials`
//! (readable by the owner only), so every state folder has its own secret and a well-known pair
//! never guards the models; `--access-key`/`--secret-key` (or their environment variables) set
//! them instead. The env file is written owner-only too: it holds the secret.
//!
//! Runs until Ctrl-C or SIGTERM, then lets in-flight requests finish and exits 0.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;

use anyhow::{bail, Context};
use jukebox_protocol::env;
use jukebox_server::registry::RegistryConfig;
use jukebox_server::s3::S3Config;
use tokio::net::TcpListener;
use tokio::sync::watch;

#[derive(clap::Args)]
pub struct Args {
    /// Folder for all server data: `s3/` (one sub-folder per bucket) and `registry.db`.
    // Not JUKEBOX_DATA_DIR: that names the chart data folder, which must never receive server state.
    #[arg(long, alias = "data-dir", default_value = ".jukebox", env = env::STATE_DIR, value_name = "DIR")]
    pub state_dir: PathBuf,
    /// Port of the S3 server; 0 picks a free one.
    #[arg(long, default_value_t = 9000, env = env::S3_PORT)]
    pub s3_port: u16,
    /// Port of the model registry; 0 picks a free one.
    #[arg(long, default_value_t = 8080, env = env::REGISTRY_PORT)]
    pub registry_port: u16,
    /// The S3 access key clients must sign with (default: the state folder's, made up on first start).
    #[arg(long, env = env::S3_ACCESS_KEY, requires = "secret_key")]
    pub access_key: Option<String>,
    /// Its secret (default: the state folder's, made up on first start).
    #[arg(long, env = env::S3_SECRET_KEY, hide_env_values = true, requires = "access_key")]
    pub secret_key: Option<String>,
    /// Bucket created at start and announced as AWS_S3_BUCKET.
    #[arg(long, default_value = "models")]
    pub bucket: String,
    /// Region announced as AWS_DEFAULT_REGION (the embedded server accepts any).
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// Port of the KServe v2 model server; 0 picks a free one.
    #[arg(long, default_value_t = 8000, env = env::MODEL_PORT)]
    pub model_port: u16,
    /// Model repository the model server serves (<name>/<version>/model.onnx), watched for new
    /// versions; default: the bucket's `models/` folder, so uploaded models are served.
    #[arg(long)]
    pub model_repository: Option<PathBuf>,
    /// Bearer token the model server requires (default: none).
    #[arg(long, env = env::MODEL_TOKEN, hide_env_values = true)]
    pub model_token: Option<String>,
    /// Bearer token the model registry requires for writes, as a cluster registry's proxy does
    /// (default: none; reads stay open). Exported as JUKEBOX_REGISTRY_TOKEN for the clients.
    #[arg(long, env = env::REGISTRY_TOKEN, hide_env_values = true)]
    pub registry_token: Option<String>,
    #[command(flatten)]
    pub limits: super::serve::RequestLimits,
    /// Also write the `export` lines to this file (removed again on shutdown).
    #[arg(long)]
    pub env_file: Option<PathBuf>,
}

/// A running server: its name for messages and the task serving it.
struct Service {
    name: &'static str,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    runtime.block_on(up(args))
}

async fn up(args: Args) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.state_dir)
        .with_context(|| format!("cannot create the data folder {}", args.state_dir.display()))?;
    let (stop, stopped) = watch::channel(false);
    let shutdown = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }
    };
    let mut services = Vec::new();
    let mut exports: Vec<(&str, String)> = Vec::new();
    let (access_key, secret_key) = match (&args.access_key, &args.secret_key) {
        (Some(access), Some(secret)) => (access.clone(), secret.clone()),
        _ => state_credentials(&args.state_dir)?,
    };

    // S3 storage.
    let s3_listener = bind(args.s3_port, "S3", "--s3-port").await?;
    let s3_url = url_of(&s3_listener)?;
    let s3_config = S3Config::new(args.state_dir.join("s3"), &access_key, &secret_key).with_bucket(&args.bucket);
    // Checks the configuration (bucket name, folder) now, so a mistake fails before anything is printed.
    jukebox_server::s3::service(&s3_config)?;
    services.push(spawn("S3", jukebox_server::s3::serve(s3_listener, s3_config, shutdown())));
    exports.extend([
        (env::AWS_S3_ENDPOINT, s3_url),
        (env::AWS_ACCESS_KEY_ID, access_key),
        (env::AWS_SECRET_ACCESS_KEY, secret_key),
        (env::AWS_DEFAULT_REGION, args.region.clone()),
        (env::AWS_S3_BUCKET, args.bucket.clone()),
    ]);

    // Model registry.
    let registry_listener = bind(args.registry_port, "model registry", "--registry-port").await?;
    let registry_url = url_of(&registry_listener)?;
    let mut registry_config = RegistryConfig::new(args.state_dir.join("registry.db"));
    registry_config.token = args.registry_token.clone();
    services
        .push(spawn("model registry", jukebox_server::registry::serve(registry_listener, registry_config, shutdown())));
    exports.push((env::REGISTRY_URL, registry_url));
    if let Some(token) = &args.registry_token {
        exports.push((env::REGISTRY_TOKEN, token.clone()));
    }

    // Model server, on the bucket's models/ folder (or --model-repository), watching for new
    // versions, so a model uploaded after start is served without a restart.
    let repository_dir =
        args.model_repository.clone().unwrap_or_else(|| args.state_dir.join("s3").join(&args.bucket).join("models"));
    let sessions = std::thread::available_parallelism().map_or(1, |n| n.get());
    let model_listener = bind(args.model_port, "model", "--model-port").await?;
    let model_url = url_of(&model_listener)?;
    services.push(spawn(
        "model",
        jukebox_server::model_server::serve_repository(
            model_listener,
            jukebox_server::model_server::ModelRepository::default(),
            Some(jukebox_server::model_server::RepositoryWatch {
                dir: repository_dir.clone(),
                interval: std::time::Duration::from_secs(1),
                sessions_per_model: sessions,
            }),
            args.limits.serve_options(args.model_token.clone()),
            shutdown(),
        ),
    ));
    exports.push((env::MODEL_URL, model_url));
    eprintln!("jukebox up: the model server serves {} (new versions load within a second)", repository_dir.display());

    let lines: String = exports.iter().map(|(name, value)| format!("export {name}={}\n", shell_quote(value))).collect();
    if let Some(path) = &args.env_file {
        write_atomically(path, &lines)?;
    }
    print!("{lines}");
    use std::io::Write as _;
    std::io::stdout().flush()?;
    eprintln!(
        "jukebox up: {} serving from {}; Ctrl-C to stop",
        services.iter().map(|s| s.name).collect::<Vec<_>>().join(", "),
        args.state_dir.display()
    );

    // Run until a signal arrives or a server stops by itself (which is an error).
    let failure = tokio::select! {
        signal = jukebox_server::http::termination_signal() => { signal.context("cannot listen for Ctrl-C and SIGTERM")?; None }
        (index, finished) = first_to_finish(&mut services) => Some((index, finished)),
    };
    let _ = stop.send(true);
    let mut result = Ok(());
    if let Some((index, finished)) = &failure {
        let name = services[*index].name;
        result = Err(match finished {
            Ok(Ok(())) => anyhow::anyhow!("the {name} server stopped unexpectedly"),
            Ok(Err(e)) => anyhow::anyhow!("the {name} server failed: {e:#}"),
            Err(e) => anyhow::anyhow!("the {name} server crashed: {e}"),
        });
    }
    for (index, service) in services.into_iter().enumerate() {
        if matches!(failure, Some((failed, _)) if failed == index) {
            continue; // already finished and reported above
        }
        match service.task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("jukebox up: the {} server reported an error while stopping: {e:#}", service.name),
            Err(e) => eprintln!("jukebox up: the {} server crashed while stopping: {e}", service.name),
        }
    }
    if let Some(path) = &args.env_file {
        // Stale variables would point scripts at servers that are gone.
        let _ = std::fs::remove_file(path);
    }
    eprintln!("jukebox up: stopped");
    result
}

fn spawn<E>(name: &'static str, server: impl Future<Output = Result<(), E>> + Send + 'static) -> Service
where
    E: std::error::Error + Send + Sync + 'static,
{
    Service { name, task: tokio::spawn(async move { server.await.map_err(anyhow::Error::from) }) }
}

/// Waits for the first service task to finish: `(its index, its result)`.
fn first_to_finish(
    services: &mut [Service],
) -> impl Future<Output = (usize, Result<anyhow::Result<()>, tokio::task::JoinError>)> + '_ {
    std::future::poll_fn(move |cx| {
        for (index, service) in services.iter_mut().enumerate() {
            if let std::task::Poll::Ready(result) = Pin::new(&mut service.task).poll(cx) {
                return std::task::Poll::Ready((index, result));
            }
        }
        std::task::Poll::Pending
    })
}

async fn bind(port: u16, what: &str, flag: &str) -> anyhow::Result<TcpListener> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpListener::bind(address).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            anyhow::anyhow!("cannot start the {what} server: port {port} on 127.0.0.1 is in use (pass {flag} 0 to pick a free port)")
        } else {
            anyhow::anyhow!("cannot start the {what} server on {address}: {e}")
        }
    })
}

fn url_of(listener: &TcpListener) -> anyhow::Result<String> {
    Ok(format!("http://{}", listener.local_addr()?))
}

/// Quotes a value for POSIX shells when it holds anything beyond a safe set.
fn shell_quote(value: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./:@%+=,".contains(c);
    if !value.is_empty() && value.chars().all(safe) {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

/// Writes through a temporary file and a rename, so a script sourcing the file never reads half.
fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    if path.is_dir() {
        bail!("--env-file {} is a folder", path.display());
    }
    let folder = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(folder).with_context(|| format!("cannot create {}", folder.display()))?;
    let temp = folder.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("env"),
        std::process::id()
    ));
    write_private(&temp, text)?;
    std::fs::rename(&temp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Creates (or truncates) `path` readable and writable by its owner only, then writes `text`.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("cannot write {}", path.display()))?;
    // `mode` only applies to a new file; an existing one keeps its bits unless set here.
    #[cfg(unix)]
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    file.write_all(text.as_bytes()).with_context(|| format!("cannot write {}", path.display()))?;
    file.sync_all().with_context(|| format!("cannot write {}", path.display()))
}

/// File in the state folder holding its S3 credentials (`access_key=...` and `secret_key=...`).
const CREDENTIALS_FILE: &str = "credentials";

/// The state folder's S3 credentials: read from `<data_dir>/credentials`, or made up (from the
/// operating system's random source) and written there on first use, owner-only.
fn state_credentials(state_dir: &Path) -> anyhow::Result<(String, String)> {
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
                _ => bail!(
                    "{} lacks an access_key= or secret_key= line; fix or delete it (a new pair is made up then)",
                    path.display()
                ),
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 24];
            getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no random source for the S3 secret: {e}"))?;
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            let (access, secret) = (format!("jukebox-{}", &hex[..8]), hex[8..].to_string());
            write_private(&path, &format!("access_key={access}\nsecret_key={secret}\n"))?;
            Ok((access, secret))
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
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
