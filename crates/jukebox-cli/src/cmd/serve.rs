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
use jukebox_protocol::env;
use jukebox_protocol::model_folder::{S3Location, MODEL_FILE};
use jukebox_server::model_server::{
    serve_repository, Batching, InferLimits, ModelRepository, RepositoryWatch, ServeOptions, DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_ELEMENTS, DEFAULT_MAX_ROWS,
};

/// How much one inference request may ask for (shared by `jukebox serve` and `jukebox up`).
#[derive(clap::Args, Clone, Debug)]
pub struct RequestLimits {
    /// Most rows of any input of one request; larger requests are refused with 413 before decoding.
    #[arg(long, default_value_t = DEFAULT_MAX_ROWS, env = env::MAX_ROWS)]
    pub max_rows: u64,
    /// Most tensor elements of one request, all inputs together (413 beyond).
    #[arg(long, default_value_t = DEFAULT_MAX_ELEMENTS, env = env::MAX_ELEMENTS)]
    pub max_elements: u64,
    /// Requests that may wait while others run inference; one more answers 503.
    #[arg(long, default_value_t = 64, env = env::MAX_QUEUED)]
    pub max_queued: usize,
    /// Larger request bodies are refused with 413.
    #[arg(long, default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    /// Dynamic batching: concurrent small requests for the same model run as one ONNX Runtime
    /// call (their rows stacked, then the outputs split back), as Triton and OpenVINO Model
    /// Server batch. Raises throughput under many concurrent clients and adds no latency to a
    /// lone client. It assumes each row's output depends on that row only (true of the
    /// workshop's models); `--dynamic-batching false` runs every request alone.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "true|false")]
    pub dynamic_batching: bool,
    /// With dynamic batching: microseconds a batch waits for more requests once it has one
    /// (0 = merge only the requests already waiting, which adds no latency).
    #[arg(long, default_value_t = 0)]
    pub batch_wait_us: u64,
    /// With dynamic batching: most rows of one merged call.
    #[arg(long, default_value_t = Batching::default().max_rows)]
    pub max_batch_rows: usize,
}

impl RequestLimits {
    /// The model server's options with these limits and `token`.
    pub fn serve_options(&self, token: Option<String>) -> ServeOptions {
        let limits = InferLimits {
            max_rows: self.max_rows,
            max_elements: self.max_elements,
            max_elements_in_flight: self.max_elements,
            max_waiting: self.max_queued,
            batching: self.dynamic_batching.then(|| Batching {
                max_wait: std::time::Duration::from_micros(self.batch_wait_us),
                max_rows: self.max_batch_rows.max(1),
            }),
            ..InferLimits::default()
        };
        ServeOptions { token, max_body_bytes: self.max_body_bytes, limits, ..ServeOptions::default() }
    }
}

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
    #[arg(long, default_value = "jukebox")]
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

/// Downloads `s3://bucket/prefix[?endpoint=..&defaultRegion=..]` into a repository layout under
/// `into` and returns the repository folder. A prefix holding `model.onnx` directly is one
/// version: it lands in `<name>/<version>/`, named by the prefix's last two segments when the
/// last is an integer (`models/jukebox/1`), else `<model>/1`.
fn download_s3(uri: &str, model: &str, into: &Path) -> anyhow::Result<PathBuf> {
    let location: S3Location = uri.parse()?;
    let prefix = location.key.as_str();
    let config = jukebox::storage::StorageConfig::from_lookup(|name| match name {
        env::AWS_S3_BUCKET => Some(location.bucket.clone()),
        env::AWS_S3_ENDPOINT if location.endpoint.is_some() => location.endpoint.clone(),
        env::AWS_DEFAULT_REGION if location.region.is_some() => location.region.clone(),
        other => std::env::var(other).ok(),
    })
    .context("S3 settings for the model repository")?;
    let storage = jukebox::storage::Storage::open(config)?;
    let staging = into.join(".download");
    let report = storage.download_prefix(prefix, &staging).with_context(|| format!("downloading {uri}"))?;
    eprintln!(
        "# downloaded {} files ({} bytes) from {}",
        report.objects.len(),
        report.total_bytes(),
        uri.split('?').next().unwrap_or(uri)
    );
    let repository = into.join("repository");
    if !staging.join(MODEL_FILE).is_file() && jukebox_protocol::model_folder::version_folder_of(prefix).is_some() {
        // A version folder without its model file: publishers write model.onnx last, so this is
        // an upload still under way or one that failed; serving its artifacts alone is nothing.
        bail!(
            "{} holds no {MODEL_FILE}: its upload is incomplete (model.onnx is written last); wait for it, or save the \
             model again",
            uri.split('?').next().unwrap_or(uri)
        );
    }
    if staging.join(MODEL_FILE).is_file() {
        let segments: Vec<&str> = prefix.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
        let (name, version) = match segments.as_slice() {
            [.., name, version] if version.parse::<u64>().is_ok() => (name.to_string(), version.to_string()),
            _ => (model.to_string(), "1".to_string()),
        };
        let target = repository.join(&name).join(&version);
        std::fs::create_dir_all(target.parent().expect("has a parent"))?;
        std::fs::rename(&staging, &target).with_context(|| format!("moving the download to {}", target.display()))?;
    } else {
        std::fs::rename(&staging, &repository)
            .with_context(|| format!("moving the download to {}", repository.display()))?;
    }
    Ok(repository)
}
