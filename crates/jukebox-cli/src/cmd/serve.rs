//! `jukebox serve`: run the KServe v2 model server on a model repository.
//!
//! The repository is a local folder (`<name>/<version>/model.onnx`), an `s3://bucket/prefix`
//! downloaded first (credentials from the data-connection variables `AWS_*`; an
//! `?endpoint=...` in the URI wins over `AWS_S3_ENDPOINT`), or the artifact URI that the model
//! registry holds for `--model`/`--version`. Once listening it prints
//! `export JUKEBOX_MODEL_URL=http://127.0.0.1:PORT` (eval-able) and serves until Ctrl-C or
//! SIGTERM, finishing in-flight requests.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use jukebox::storage::repository::{download_repository, location_without_query};
use jukebox_protocol::env;
use jukebox_protocol::model_folder::MODEL_NAME;
use jukebox_server::model_server::{serve_repository, ModelRepository, RepositoryWatch};

use crate::limits::RequestLimits;

#[derive(clap::Args)]
pub struct Args {
    /// Model repository: a folder holding <name>/<version>/model.onnx, or s3://bucket/prefix.
    #[arg(long, conflicts_with = "registry")]
    pub model_repository: Option<String>,
    /// Model registry URL: serve the artifact registered for --model and --version. Without
    /// --model-repository it defaults to JUKEBOX_REGISTRY_URL; with it, that variable is ignored
    /// (so `jukebox up`'s exported environment does not get in the way).
    // Not `env =`: clap would count an exported variable as the flag given, conflicting with
    // --model-repository.
    #[arg(long, requires = "version")]
    pub registry: Option<String>,
    /// Registered model name (with --registry), or the name given to a single-version s3 prefix.
    #[arg(long, default_value = MODEL_NAME)]
    pub model: String,
    /// Registered model version name (with --registry).
    #[arg(long)]
    pub version: Option<String>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0 = any free port).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// Require `Authorization: Bearer <token>` (health routes stay open).
    #[arg(long, env = env::MODEL_TOKEN, hide_env_values = true)]
    pub token: Option<String>,
    #[command(flatten)]
    pub limits: RequestLimits,
    /// Where s3 and registry models are downloaded to (default: a temporary folder).
    #[arg(long)]
    pub download_dir: Option<PathBuf>,
    /// For a local folder: look for new or removed versions every N seconds (0 = load once).
    #[arg(long, default_value_t = 1)]
    pub poll_seconds: u64,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut _temporary = None;
    let mut download_dir = || -> anyhow::Result<PathBuf> {
        Ok(match &args.download_dir {
            Some(dir) => dir.clone(),
            None => {
                let dir = tempfile::tempdir().context("creating a download folder")?;
                let path = dir.path().to_path_buf();
                _temporary = Some(dir);
                path
            }
        })
    };
    // Only a local folder can change under us; a download is a snapshot.
    let mut watched = false;
    let registry = args.registry.clone().or_else(|| {
        args.model_repository
            .is_none()
            .then(|| std::env::var(env::REGISTRY_URL).ok())
            .flatten()
            .filter(|u| !u.is_empty())
    });
    if registry.is_some() && args.model_repository.is_none() && args.version.is_none() {
        bail!("serving from the model registry ({}) needs --version (and --model)", registry.as_deref().unwrap_or(""));
    }
    let repository_dir = match (&args.model_repository, &registry) {
        (Some(location), None) if location.starts_with("s3://") => {
            download_s3(location, &args.model, &download_dir()?)?
        }
        (Some(dir), None) => {
            watched = args.poll_seconds > 0;
            PathBuf::from(dir)
        }
        (None, Some(registry)) => {
            let version = args.version.as_deref().unwrap_or_default();
            let mut client = jukebox::registry::ModelRegistry::new(registry);
            if let Some(token) = std::env::var(env::REGISTRY_TOKEN).ok().filter(|t| !t.trim().is_empty()) {
                client = client.with_token(token.trim());
            }
            let artifact = client
                .get_model_artifact(&args.model, version)
                .with_context(|| format!("looking up {} version {version} in {registry}", args.model))?;
            let uri =
                artifact.fields.uri.with_context(|| format!("{} version {version} has no artifact URI", args.model))?;
            eprintln!("# registry: {} {version} -> {uri}", args.model);
            if !uri.starts_with("s3://") {
                bail!("artifact URI {uri} is not s3://; only S3 artifacts can be served");
            }
            download_s3(&uri, &args.model, &download_dir()?)?
        }
        _ => bail!("give --model-repository DIR|s3://bucket/prefix, or --registry URL --model NAME --version V"),
    };

    let sessions = std::thread::available_parallelism().map_or(1, |n| n.get());
    let repository = ModelRepository::load(&repository_dir, sessions)
        .with_context(|| format!("loading models from {}", repository_dir.display()))?;
    if repository.is_empty() {
        bail!("no models in {} (expected <name>/<integer version>/model.onnx)", repository_dir.display());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port))
            .await
            .with_context(|| format!("listening on {}:{}", args.host, args.port))?;
        let address = listener.local_addr()?;
        for (name, versions) in repository.list() {
            let versions: Vec<String> = versions.iter().map(u64::to_string).collect();
            eprintln!("# serving {name} (versions {}) from {}", versions.join(", "), repository_dir.display());
        }
        if args.token.is_some() {
            eprintln!("# bearer token required");
        }
        println!("export JUKEBOX_MODEL_URL=http://{address}");
        use std::io::Write;
        std::io::stdout().flush().ok();
        let watch = watched.then(|| RepositoryWatch {
            dir: repository_dir.clone(),
            interval: std::time::Duration::from_secs(args.poll_seconds),
            sessions_per_model: sessions,
        });
        serve_repository(listener, repository, watch, args.limits.serve_options(args.token.clone()), async {
            // Without the handlers the server could not be stopped cleanly; stopping at once is the honest failure.
            let _ = jukebox_server::http::termination_signal().await;
        })
        .await?;
        eprintln!("# model server stopped");
        Ok(())
    })
}

/// Downloads `uri` into a repository under `into` (the layout is
/// [`jukebox::storage::repository`]'s) and says what came.
fn download_s3(uri: &str, model: &str, into: &Path) -> anyhow::Result<PathBuf> {
    let downloaded = download_repository(uri, model, into)
        .with_context(|| format!("downloading {}", location_without_query(uri)))?;
    let report = &downloaded.report;
    eprintln!(
        "# downloaded {} files ({} bytes) from {}",
        report.objects.len(),
        report.total_bytes(),
        location_without_query(uri)
    );
    Ok(downloaded.dir)
}
