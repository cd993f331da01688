//! `jukebox up`: the cluster services of the workshop on this machine, on 127.0.0.1: a thin
//! shell over [`jukebox_server::stack`], which starts the embedded S3 server, the model registry
//! and the KServe v2 model server with their state under one folder (default `.jukebox/`).
//!
//! It prints the environment a data connection would inject, as lines a shell can `eval` (and,
//! with `--env-file`, writes them owner-only to a file to `source`: they hold the S3 secret):
//!
//! ```text
//! export AWS_S3_ENDPOINT=http://127.0.0.1:9000
//! export AWS_ACCESS_KEY_ID=jukebox-3f9c...
//! ...
//! export JUKEBOX_REGISTRY_URL=http://127.0.0.1:8080
//! export JUKEBOX_MODEL_URL=http://127.0.0.1:8000
//! ```
//!
//! plus `JUKEBOX_REGISTRY_TOKEN` and `JUKEBOX_MODEL_TOKEN` when the registry or the model server
//! require a token, so a shell that sources the file can use every service.
//!
//! Runs until Ctrl-C or SIGTERM, then lets in-flight requests finish and exits 0.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::limits::RequestLimits;
use jukebox::storage::DEFAULT_REGION;
use jukebox_protocol::env;
use jukebox_protocol::model_folder::DEFAULT_BUCKET;
use jukebox_server::stack::{self, StackConfig, StackError};

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
    #[arg(long, default_value = DEFAULT_BUCKET)]
    pub bucket: String,
    /// Region announced as AWS_DEFAULT_REGION (the embedded server accepts any).
    #[arg(long, default_value = DEFAULT_REGION)]
    pub region: String,
    /// Port of the KServe v2 model server; 0 picks a free one.
    #[arg(long, default_value_t = 8000, env = env::MODEL_PORT)]
    pub model_port: u16,
    /// Model repository the model server serves (<name>/<version>/model.onnx), watched for new
    /// versions; default: the bucket's `models/` folder, so uploaded models are served.
    #[arg(long)]
    pub model_repository: Option<PathBuf>,
    /// Bearer token the model server requires (default: none). Exported as JUKEBOX_MODEL_TOKEN for
    /// the clients.
    #[arg(long, env = env::MODEL_TOKEN, hide_env_values = true)]
    pub model_token: Option<String>,
    /// Bearer token the model registry requires for writes, as a cluster registry's proxy does
    /// (default: none; reads stay open). Exported as JUKEBOX_REGISTRY_TOKEN for the clients.
    #[arg(long, env = env::REGISTRY_TOKEN, hide_env_values = true)]
    pub registry_token: Option<String>,
    #[command(flatten)]
    pub limits: RequestLimits,
    /// Also write the `export` lines to this file (removed again on shutdown).
    #[arg(long)]
    pub env_file: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    runtime.block_on(up(args))
}

async fn up(args: Args) -> anyhow::Result<()> {
    let mut config = StackConfig::new(&args.state_dir);
    (config.s3_port, config.registry_port, config.model_port) = (args.s3_port, args.registry_port, args.model_port);
    config.credentials = args.access_key.clone().zip(args.secret_key.clone());
    (config.bucket, config.region) = (args.bucket.clone(), args.region.clone());
    config.model_repository = args.model_repository.clone();
    config.model_options = args.limits.serve_options(args.model_token.clone());
    config.registry_token = args.registry_token.clone();
    let running = stack::start(config).await.map_err(|error| match error {
        StackError::PortInUse { server, port } => {
            let flag = match server {
                "S3" => "--s3-port",
                "model registry" => "--registry-port",
                _ => "--model-port",
            };
            anyhow::anyhow!("cannot start the {server} server: port {port} on 127.0.0.1 is in use (pass {flag} 0 to pick a free port)")
        }
        other => other.into(),
    })?;
    eprintln!(
        "jukebox up: the model server serves {} (new versions load within a second)",
        running.repository_dir.display()
    );

    let lines = running.shell_lines();
    if let Some(path) = &args.env_file {
        write_atomically(path, &lines)?;
    }
    print!("{lines}");
    let log = crate::logging::up_log_file(&args.state_dir);
    eprintln!("jukebox up: logs go to {} (RUST_LOG sets what is logged; default info)", log.display());
    use std::io::Write as _;
    std::io::stdout().flush()?;
    eprintln!(
        "jukebox up: {} serving from {}; Ctrl-C to stop",
        running.server_names().join(", "),
        args.state_dir.display()
    );

    let result = running
        .run_until(async {
            if let Err(e) = jukebox_server::http::termination_signal().await {
                eprintln!("jukebox up: cannot listen for Ctrl-C and SIGTERM ({e}): stopping");
            }
        })
        .await;
    if let Some(path) = &args.env_file {
        // Stale variables would point scripts at servers that are gone.
        let _ = std::fs::remove_file(path);
    }
    eprintln!("jukebox up: stopped");
    Ok(result?)
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
    stack::write_private(&temp, text).with_context(|| format!("cannot write {}", temp.display()))?;
    std::fs::rename(&temp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
