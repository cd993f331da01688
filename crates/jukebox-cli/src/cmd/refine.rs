//! `jukebox refine`: the refinement stage from the terminal, what `5-refine_model.ipynb` does.
//!
//! Prints how many validation and test songs the model already met in training on a random and
//! on a grouped split, the same learners scored on both (unless `--no-comparison`), then sweeps
//! the grid on `--split` and prints every run and the one chosen by validation score. With
//! `--model-repository`, every run is appended to `<model-dir>/runs.jsonl` and the chosen run is
//! exported as `<model-dir>/jukebox/<--version-folder>`; with `--register`, that folder is
//! uploaded and registered as in `jukebox save` (settings from `jukebox up`'s environment).
//!
//! The stage itself is [`jukebox::refine::Refinement`]: this command turns its flags into one,
//! runs it and prints what it shows.
//!
//! With `--katib`, nothing is trained here: it prints the same sweep (grid, split, seed) as a
//! Kubeflow Katib `Experiment` whose trials run `jukebox train` on the cluster
//! ([`jukebox::katib`]), for `jukebox refine --katib | oc apply -f -`.

use std::path::PathBuf;

use anyhow::Context;
use jukebox::katib::KatibExperiment;
use jukebox::prepare::SplitStrategy;
use jukebox::refine::{Grid, Refinement};
use jukebox_protocol::model_folder::{DEFAULT_LICENSE, DEFAULT_STORAGE_KEY, MODEL_NAME};

use super::save;

#[derive(clap::Args)]
pub struct Args {
    /// Folder holding song_properties.parquet and song_rankings.parquet (default: JUKEBOX_DATA_DIR, the cache, or a download).
    #[arg(long, alias = "data", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The grid: `quick` (8 runs), `class` (54 runs), JSON such as
    /// `{"epochs":[10],"hidden_layers":[[64,64]],"learning_rate":[0.001],"batch_size":[64]}`, or @FILE holding JSON.
    #[arg(long, default_value = "quick")]
    grid: String,
    /// Split the sweep trains and is scored on: grouped (whole songs per split), stratified, ordered or latest-dates.
    #[arg(long, default_value = "grouped")]
    split: String,
    /// Seeds the split, the initial weights and the shuffling of every run.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Epochs of the workshop network in the random-vs-grouped comparison.
    #[arg(long, default_value_t = 10)]
    compare_epochs: usize,
    /// Skip the random-vs-grouped comparison (it also fits the two baselines twice).
    #[arg(long)]
    no_comparison: bool,
    /// Model repository: append the runs to its runs.jsonl and export the chosen run into it.
    #[arg(long, alias = "model-dir", value_name = "DIR")]
    model_repository: Option<PathBuf>,
    /// Version folder the chosen run is exported as.
    #[arg(long, default_value_t = 2)]
    version_folder: u64,
    /// Upload the exported folder and register it as this version (needs --model-repository).
    #[arg(long, requires = "model_repository")]
    register: Option<String>,
    /// Registered model name.
    #[arg(long, default_value = MODEL_NAME)]
    name: String,
    /// Print the sweep as a Kubeflow Katib Experiment (YAML) whose trials run `jukebox train` on
    /// the cluster, instead of running it here.
    #[arg(long)]
    katib: bool,
    /// The Experiment's name (default: `jukebox-<grid>` for a named grid, else `jukebox-sweep`).
    #[arg(long, requires = "katib", value_name = "NAME")]
    experiment_name: Option<String>,
    /// The Experiment's namespace (default: none, so `oc apply -n` or the current project decides).
    #[arg(long, requires = "katib")]
    namespace: Option<String>,
    /// The image the trials run in; it must hold the `jukebox` command (default: JUPYTER_IMAGE, the
    /// workbench's own image, else the OpenShift AI workbench image `jukebox`).
    #[arg(long, requires = "katib")]
    image: Option<String>,
    /// At most this many trials at once.
    #[arg(long, requires = "katib", default_value_t = 4)]
    parallel_trials: usize,
    /// The data folder inside the trials' container (default: the trial finds the data as `jukebox train` does).
    #[arg(long, requires = "katib", value_name = "DIR")]
    trial_data_dir: Option<String>,
    /// A PersistentVolumeClaim holding the data, mounted read-only at --trial-data-dir.
    #[arg(long, requires = "trial_data_dir", value_name = "CLAIM")]
    trial_data_claim: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let grid: Grid = match args.grid.strip_prefix('@') {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("reading the grid file {path}"))?.parse()?
        }
        None => args.grid.parse()?,
    };
    let split: SplitStrategy = args.split.parse()?;
    if args.katib {
        let defaults = KatibExperiment::new(grid);
        let experiment = KatibExperiment {
            name: args.experiment_name.unwrap_or_else(|| KatibExperiment::name_for_grid(&args.grid)),
            namespace: args.namespace,
            split,
            seed: args.seed,
            parallel_trials: args.parallel_trials,
            image: args.image.unwrap_or(defaults.image.clone()),
            data_dir: args.trial_data_dir,
            data_volume_claim: args.trial_data_claim,
            ..defaults
        };
        print!("{}", experiment.yaml()?);
        return Ok(());
    }
    let refinement = Refinement {
        data_dir: args.data_dir,
        grid,
        split,
        seed: args.seed,
        compare_epochs: (!args.no_comparison).then_some(args.compare_epochs),
        model_repository: args.model_repository,
        version_folder: args.version_folder,
    };
    let refined = refinement.run(&mut |text| println!("{text}"))?;

    let (Some(version), Some(exported)) = (args.register, &refined.exported) else { return Ok(()) };
    save::run(save::Args {
        version_dir: exported.version_dir.clone(),
        name: args.name,
        version,
        description: Some(refined.description()),
        author: None,
        license: DEFAULT_LICENSE.into(),
        storage_key: std::env::var(jukebox_protocol::env::STORAGE_KEY).unwrap_or_else(|_| DEFAULT_STORAGE_KEY.into()),
    })
}
