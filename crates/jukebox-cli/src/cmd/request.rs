//! `jukebox request`: what the workshop's request notebook does, from the shell. Looks a song
//! up by name in song_properties, scales its features with the model's saved scaler, asks the
//! model server, and prints the most likely countries.

use std::path::{Path, PathBuf};

use anyhow::Context;
use jukebox::request::{song_by_name, InferenceClient, ModelArtifacts, Song};
use jukebox_protocol::env;

#[derive(clap::Args)]
pub struct Args {
    /// Model server base URL (what `jukebox serve` prints).
    #[arg(long, env = env::MODEL_URL)]
    pub url: String,
    /// Song name, exactly as in song_properties (e.g. "Not Like Us").
    #[arg(long, required_unless_present = "features")]
    pub song: Option<String>,
    /// Raw feature values instead of a song name: 13 comma-separated numbers in model order.
    #[arg(long, value_delimiter = ',', num_args = 13, conflicts_with = "song")]
    pub features: Option<Vec<f64>>,
    /// Folder with song_properties.parquet (default: as `jukebox data` finds it).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Bearer token for the model server.
    #[arg(long, env = env::MODEL_TOKEN, hide_env_values = true)]
    pub token: Option<String>,
    /// Model name on the server.
    #[arg(long, default_value = "jukebox")]
    pub model: String,
    /// Model version on the server (default: the server's default).
    #[arg(long)]
    pub version: Option<String>,
    /// Folder holding scaler.json and label_encoder.json (default: the highest version under
    /// --model-repository/<model>/).
    #[arg(long)]
    pub artifacts: Option<PathBuf>,
    /// Local model repository the training stage wrote.
    #[arg(long, alias = "model-dir", default_value = "models", value_name = "DIR")]
    pub model_repository: PathBuf,
    /// How many countries to print.
    #[arg(long, default_value_t = 5)]
    pub top: usize,
    /// Also write the bar chart of probability per country to this SVG file.
    #[arg(long)]
    pub chart: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let artifacts_dir = match &args.artifacts {
        Some(dir) => dir.clone(),
        None => latest_version(&args.model_repository.join(&args.model))?,
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
    let mut client = InferenceClient::new(&args.url, &args.model);
    if let Some(token) = &args.token {
        client = client.with_token(token.clone());
    }
    if let Some(version) = &args.version {
        client = client.with_version(version.clone());
    }
    let prediction = client.predict(&artifacts, &song)?;
    let (code, p) = prediction.top();
    println!("{}: most likely country {code} ({:.1}%)", song.name, p * 100.0);
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
