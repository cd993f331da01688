//! `jukebox request`: what the workshop's request notebook does, from the shell. Looks a song
//! up by name in song_properties, scales its features with the model's saved scaler, asks the
//! model server, and prints the most likely countries.
//!
//! The scaler and the answering model are always the same version: the request names the version
//! the artifacts belong to (`--version N` reads the artifacts of `<repository>/<model>/N`; without
//! it, the highest local version), and a `--version` that differs from `--artifacts`' own version
//! is refused.

use std::path::{Path, PathBuf};

use anyhow::Context;
use jukebox::request::{song_by_name, InferenceClient, ModelArtifacts, Song};
use jukebox_protocol::env;
use jukebox_protocol::model_folder::{LOCAL_REPOSITORY_DIR, MODEL_NAME};

#[derive(clap::Args)]
pub struct Args {
    /// Model server base URL (what `jukebox serve` prints).
    #[arg(long, env = env::MODEL_URL)]
    pub url: String,
    /// Song name, exactly as in song_properties (e.g. "Not Like Us").
    #[arg(long, required_unless_present = "features")]
    pub song: Option<String>,
    /// Raw feature values instead of a song name: comma-separated numbers in model order, one per
    /// feature of the scaler (13 for the workshop's model).
    // One argument split at commas: `num_args = 13` counted the arguments before the split, so
    // `--features 1,180000,...` was refused; a wrong count is the library's FeatureCount error.
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true, conflicts_with = "song")]
    pub features: Option<Vec<f64>>,
    /// Folder with song_properties.parquet (default: as `jukebox data` finds it).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Bearer token for the model server.
    #[arg(long, env = env::MODEL_TOKEN, hide_env_values = true)]
    pub token: Option<String>,
    /// Model name on the server.
    #[arg(long, default_value = MODEL_NAME)]
    pub model: String,
    /// Model version (version folder number) to ask for; its artifacts are read from
    /// --model-repository/<model>/<version> unless --artifacts is given (default: the version of
    /// the artifacts).
    #[arg(long)]
    pub version: Option<String>,
    /// Folder holding scaler.json and label_encoder.json (default: the --version folder, else the
    /// highest version under --model-repository/<model>/).
    #[arg(long)]
    pub artifacts: Option<PathBuf>,
    /// Local model repository the training stage wrote.
    #[arg(long, alias = "model-dir", default_value = LOCAL_REPOSITORY_DIR, value_name = "DIR")]
    pub model_repository: PathBuf,
    /// How many countries to print.
    #[arg(long, default_value_t = 5)]
    pub top: usize,
    /// Also write the bar chart of probability per country to this SVG file.
    #[arg(long)]
    pub chart: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let model_dir = args.model_repository.join(&args.model);
    let artifacts_dir = match (&args.artifacts, &args.version) {
        (Some(dir), _) => dir.clone(),
        (None, Some(version)) => {
            let dir = model_dir.join(version);
            anyhow::ensure!(
                dir.is_dir(),
                "no local version {version} at {} (train or download it, or pass --artifacts)",
                dir.display()
            );
            dir
        }
        (None, None) => latest_version(&model_dir)?,
    };
    let artifacts = ModelArtifacts::load(&artifacts_dir)?;
    let song = match (&args.song, &args.features) {
        (Some(name), _) => {
            let dataset = jukebox::data::Dataset::load(args.data_dir.as_deref())?;
            song_by_name(&dataset.properties, name, &artifacts.scaler.features)?
        }
        (None, Some(values)) => Song::from_features("(features)", values),
        (None, None) => unreachable!("clap requires --song or --features"),
    };
    // The served name is --model (a deployment may serve the folder under another name); the
    // version is the artifacts' own, checked against --version by the client.
    let mut client = InferenceClient::new(&args.url, &args.model).with_optional_token(args.token.clone());
    if let Some(version) = &args.version {
        client = client.with_version(version.clone());
    }
    let url = client.infer_url_for(&artifacts)?;
    let prediction = client.predict(&artifacts, &song)?;
    let (code, p) = prediction.top();
    println!("{}: most likely country {code} ({:.1}%) from {url}", song.name, p * 100.0);
    println!("{}", prediction.table(args.top));
    if let Some(path) = &args.chart {
        prediction.chart()?.save(path).with_context(|| format!("writing {}", path.display()))?;
        println!("chart written to {}", path.display());
    }
    Ok(())
}

/// `<model folder>/<highest integer version>`.
fn latest_version(model: &Path) -> anyhow::Result<PathBuf> {
    let versions = jukebox_protocol::model_folder::versions(model)?;
    versions.into_iter().next_back().map(|(_, path)| path).with_context(|| {
        format!(
            "no local model at {} (no <version>/model.onnx folder; train one, or pass --artifacts)",
            model.display()
        )
    })
}
