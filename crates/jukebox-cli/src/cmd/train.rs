//! `jukebox train`: prepare the data, train the network and the baselines, export the network
//! as ONNX with its artifacts, check the export through ONNX Runtime, and print the scores.
//!
//! It ends its scores with the line `validation-accuracy=0.412300`
//! ([`jukebox::katib::metric_line`]): a trial of a Katib Experiment (`jukebox refine --katib`) is
//! this command, and Katib's stdout metrics collector reads its score from that line. Without
//! `--model-repository` nothing is exported (what a trial wants: the score, not a model).

use std::path::PathBuf;

use anyhow::Context;
use jukebox::data::ChartData;
use jukebox::evaluate::ClassificationReport;
use jukebox::evaluate::Metrics;
use jukebox::export::export;
use jukebox::katib::{metric_line, METRIC};
use jukebox::prepare::{PreparedData, SplitOptions, SplitStrategy};
use jukebox::train::{Classifier, Comparison, DecisionTree, Learner, LogisticRegression, NeuralNetwork, Progress};

#[derive(clap::Args)]
pub struct Args {
    /// Folder holding song_properties.parquet and song_rankings.parquet (default: JUKEBOX_DATA_DIR, the cache, or a download).
    #[arg(long, alias = "data", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Model repository to write `jukebox/<version>/model.onnx` and its artifacts into; without it
    /// nothing is exported (a Katib trial only reports its score).
    #[arg(long, alias = "model-dir", value_name = "DIR")]
    model_repository: Option<PathBuf>,
    /// Passes over the training rows (fewer with --patience).
    #[arg(long, default_value_t = 2)]
    epochs: usize,
    /// Rows per gradient step (mini-batch size).
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Seeds the split, the initial weights and the shuffling.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Version folder to write.
    #[arg(long, default_value_t = 1)]
    version: u64,
    /// How the rows are split: stratified (a seeded 20 % of each country's rows as test), grouped
    /// (whole songs per split, as `jukebox refine` sweeps), ordered or latest-dates.
    #[arg(long, default_value = "stratified")]
    split: String,
    /// Hold out the latest chart dates as test (needs snapshot_date); the same as --split latest-dates.
    #[arg(long, conflicts_with = "split")]
    latest_dates_as_test: bool,
    /// Skip the logistic-regression and decision-tree baselines.
    #[arg(long)]
    no_baselines: bool,
    /// The feature columns the model reads, in order, comma-separated (default: the workshop's 13).
    #[arg(long, value_delimiter = ',', value_name = "COLUMN,...")]
    features: Vec<String>,
    /// Units of each hidden layer, comma-separated (default: 32,64,128,256).
    #[arg(long, value_delimiter = ',', value_name = "UNITS,...")]
    hidden_layers: Vec<usize>,
    /// Adam's step size.
    #[arg(long, default_value_t = 0.001)]
    learning_rate: f32,
    /// Early stopping: stop after this many epochs without a lower validation loss, keeping the
    /// best epoch's weights (as a grid's "patience").
    #[arg(long, value_name = "EPOCHS")]
    patience: Option<usize>,
    /// Train on at most this many rows, a stratified subsample of the training rows drawn from
    /// the seed (as a grid's "max_train_rows"); the baselines keep their own budget.
    #[arg(long, value_name = "ROWS")]
    max_train_rows: Option<usize>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let chart = ChartData::load(args.data_dir.as_deref()).context("loading the chart data")?;
    let strategy: SplitStrategy =
        if args.latest_dates_as_test { SplitStrategy::LatestDates } else { args.split.parse()? };
    let features = if args.features.is_empty() { jukebox::data::workshop_features() } else { args.features.clone() };
    let data = PreparedData::new(&chart, &features, &SplitOptions { seed: args.seed, strategy, ..Default::default() })
        .context("preparing the data")?;
    println!("{}", data.summary());

    let defaults = NeuralNetwork::default();
    let learner = NeuralNetwork {
        epochs: args.epochs,
        batch_size: args.batch_size,
        seed: args.seed,
        hidden_layers: if args.hidden_layers.is_empty() {
            defaults.hidden_layers.clone()
        } else {
            args.hidden_layers.clone()
        },
        learning_rate: args.learning_rate,
        progress: Progress::Auto,
        patience: args.patience,
        max_train_rows: args.max_train_rows,
        ..defaults
    };
    println!("{}\n", learner.summary(&data));
    let model = learner.fit(&data).context("training the network")?;
    println!("trained in {:.2} s ({:.0} samples/s)\n", model.training_seconds, model.history.samples_per_second);

    let mut fitted: Vec<Box<dyn Classifier>> = Vec::new();
    if !args.no_baselines {
        println!("fitting baselines (logistic regression, decision tree) ...");
        fitted.push(Box::new(LogisticRegression::default().fit(&data).context("fitting logistic regression")?));
        fitted.push(Box::new(DecisionTree::default().fit(&data).context("fitting the decision tree")?));
    }
    let mut models: Vec<&dyn Classifier> = vec![&model];
    models.extend(fitted.iter().map(|m| m.as_ref()));
    let comparison = Comparison::new(&models, &data)?;
    println!("{}", comparison.table());
    // The network's validation score, as a sweep chooses by it; Katib's collector reads this line.
    let validation =
        ClassificationReport::new(&data.y_val, &model.predict(&data.x_val, data.n_val()), data.n_classes())?;
    println!("{}", metric_line(METRIC, validation.accuracy()));

    let Some(model_repository) = args.model_repository else {
        println!("not exported (no --model-repository)");
        return Ok(());
    };
    let metrics = Metrics::new(&comparison.models[0].report, &model.training_info(&data));
    let exported = export(&model, &data, &metrics, &model_repository, args.version).context("exporting the model")?;
    println!("wrote {} and {}", exported.model_path.display(), exported.artifacts_dir.display());

    let evaluation = exported.evaluate(&data).context("running the exported model in ONNX Runtime")?;
    let parity = evaluation.parity(&model, &data);
    println!("{}", parity.table());
    println!("exported model test accuracy (ONNX Runtime): {:.4}", evaluation.report.accuracy());
    anyhow::ensure!(parity.holds(1e-5), "the exported model disagrees with the trained network: {parity:?}");
    Ok(())
}
