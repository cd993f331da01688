//! Stage 2b: train the workshop's neural network, and classic baselines to compare it with.
//!
//! Every model here speaks one vocabulary, as in linfa: a *learner* (its settings) is
//! [`Learner::fit`] on [`PreparedData`] and returns a fitted [`Classifier`] that can
//! [`Classifier::predict`] class indices for row-major scaled features.
//!
//! | learner | fitted model | what it is |
//! |---|---|---|
//! | [`NeuralNetwork`] | [`TrainedModel`] | the workshop's dense network (13 -> 32 -> 64 -> 128 -> 256 -> classes), trained with Adam via `jukebox-nn` |
//! | [`LogisticRegression`] | [`FittedLogisticRegression`] | multinomial logistic regression (L-BFGS): a linear model |
//! | [`DecisionTree`] | [`FittedDecisionTree`] | an unpruned CART decision tree (Gini) |
//!
//! The two baselines live in [`baselines`], which says how they are fitted and why they are
//! written here rather than taken from linfa.
//!
//! Training the network shows a progress bar per epoch in a terminal, or epoch lines (at most
//! about ten) and a summary line elsewhere (notebooks, logs), with the running loss and accuracy;
//! Ctrl-C or a notebook's stop button ends it with [`TrainError::Interrupted`]. [`TrainedModel`] keeps the
//! per-epoch history ([`TrainedModel::history_plot`]) and the Keras-like layer summary.
//! [`Comparison`] scores several fitted models on the test split side by side.
//!
//! Every fitted model remembers what it was fitted on ([`Classifier::fitted_on`], the
//! [`DataFingerprint`] of the prepared data: split, seed, features, rows). A comparison or a test
//! report refuses a model fitted on other data ([`TrainError::FittedOnOtherData`] names it and what
//! differs): after preparing the data again with another split, a model fitted before would
//! otherwise sit in the table with scores that do not compare.
//!
//! Baselines matter: a network is only worth its cost if it beats simple models on the same
//! split. Reference (scikit-learn, same split of the shared sample): logistic regression 0.115,
//! decision tree 0.429 test accuracy.
//!
//! **Where things are.** This file holds the network ([`NeuralNetwork`], [`TrainedModel`]) and
//! [`Comparison`]; `learner` the vocabulary ([`Learner`], [`Classifier`], [`test_report`]),
//! `error` [`TrainError`], `progress` how training shows its progress and stops on an interrupt,
//! [`rows`] the row budget's subsample, `chart` the per-epoch line chart, and [`baselines`] the
//! two baselines. Everything public is re-exported here: `use jukebox::train::{...}`.

use std::time::Instant;

use jukebox_nn::{EpochProgress, FitOptions, History, Network, Samples, Summary};
use plotters::style::RGBColor;

use crate::display::{Cell, Plot, Table};
use crate::evaluate::{ClassificationReport, TrainingInfo};
use crate::prepare::{DataFingerprint, PreparedData};

pub mod baselines;
pub(crate) mod chart;
mod error;
mod learner;
mod progress;
pub mod rows;
pub use baselines::{DecisionTree, FittedDecisionTree, FittedLogisticRegression, LogisticRegression};
use chart::{EpochChart, Line, Panel};
pub use error::{Result, TrainError};
pub use learner::{check_fitted_on, test_report, Classifier, Learner};
pub use progress::Progress;
use progress::ProgressReporter;
pub(crate) use progress::Watch as InterruptWatch;
pub use rows::TrainingRows;

/// The workshop's hidden layers: 32, 64, 128 and 256 ReLU units.
pub const WORKSHOP_HIDDEN_LAYERS: [usize; 4] = [32, 64, 128, 256];

/// The activation of a layer: [`Activation::Relu`] (Keras's `"relu"`), [`Activation::Identity`]
/// (`"linear"`) or [`Activation::Softmax`] (the output layer's).
pub use jukebox_nn::Activation;

/// A dense network and how to train it; the defaults are the workshop's.
///
/// Written in a notebook cell as a struct literal, it reads like the Keras model it stands for
/// (`..NeuralNetwork::default()` fills in every field not written):
///
/// ```
/// # use jukebox::train::{Activation, NeuralNetwork};
/// let learner = NeuralNetwork {
///     hidden_layers: vec![32, 64, 128, 256], // Dense(32, "relu"), Dense(64, "relu"), ...
///     activation: Activation::Relu,          // of every hidden layer
///     learning_rate: 0.001,                  // Adam(learning_rate=0.001)
///     batch_size: 32,                        // model.fit(batch_size=32, ...)
///     epochs: 2,                             // model.fit(epochs=2, ...)
///     ..NeuralNetwork::default()
/// };
/// assert_eq!(learner.keras_like(), "Dense(32, relu) -> Dense(64, relu) -> Dense(128, relu) -> Dense(256, relu) -> Dense(classes, softmax)");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct NeuralNetwork {
    pub epochs: usize,
    pub batch_size: usize,
    /// Seeds the initial weights and the per-epoch shuffling.
    pub seed: u64,
    /// Units of each hidden layer; a softmax layer with one unit per class follows.
    pub hidden_layers: Vec<usize>,
    /// The hidden layers' activation ([`Activation::Relu`] in the workshop; softmax is only
    /// for the output layer).
    pub activation: Activation,
    /// Adam's step size (Keras's default 0.001).
    pub learning_rate: f32,
    pub progress: Progress,
    /// Early stopping (Keras's `EarlyStopping(monitor="val_loss", patience=N,
    /// restore_best_weights=True)`): stop once the validation loss has not improved for this
    /// many epochs, and keep the weights of the best epoch. `None`: train every epoch, keep the
    /// last.
    pub patience: Option<usize>,
    /// A row budget: train on at most this many rows, a stratified subsample of the training
    /// rows drawn from the seed (see [`rows`]). `None`: every training row.
    pub max_train_rows: Option<usize>,
}

impl Default for NeuralNetwork {
    fn default() -> Self {
        NeuralNetwork {
            epochs: 2,
            batch_size: 32,
            seed: 42,
            hidden_layers: WORKSHOP_HIDDEN_LAYERS.to_vec(),
            activation: Activation::Relu,
            learning_rate: 1e-3,
            progress: Progress::Auto,
            patience: None,
            max_train_rows: None,
        }
    }
}

impl NeuralNetwork {
    /// The workshop's network, trained for `epochs` in batches of `batch_size`.
    pub fn new(epochs: usize, batch_size: usize, seed: u64) -> Self {
        NeuralNetwork { epochs, batch_size, seed, ..Default::default() }
    }
    pub fn with_progress(mut self, progress: Progress) -> Self {
        self.progress = progress;
        self
    }
    /// With early stopping after `patience` epochs without a lower validation loss.
    pub fn with_patience(mut self, patience: usize) -> Self {
        self.patience = Some(patience);
        self
    }
    /// With a row budget of `rows` training rows (a stratified subsample).
    pub fn with_max_train_rows(mut self, rows: usize) -> Self {
        self.max_train_rows = Some(rows);
        self
    }
    /// The untrained network for `data` (to show its summary before training).
    pub fn network(&self, data: &PreparedData) -> Network {
        let mut layers: Vec<(usize, Activation)> =
            self.hidden_layers.iter().map(|&units| (units, self.activation)).collect();
        layers.push((data.n_classes(), Activation::Softmax));
        Network::new(data.n_features(), &layers, self.seed)
    }
    /// The layers as Keras would list them: `Dense(32, relu) -> ... -> Dense(classes, softmax)`.
    pub fn keras_like(&self) -> String {
        let hidden = self.hidden_layers.iter().map(|units| format!("Dense({units}, {})", self.activation.keras_name()));
        hidden.chain(["Dense(classes, softmax)".to_string()]).collect::<Vec<_>>().join(" -> ")
    }
    /// What the next cell will train on `data`: the layer table of the untrained network (Keras's
    /// `model.summary()`) and the training settings below it.
    pub fn summary(&self, data: &PreparedData) -> NetworkSummary {
        NetworkSummary { layers: self.network(data).summary(), settings: self.settings_table(data) }
    }
    /// The settings as a table: inputs, layers, activation, optimiser, learning rate, batch size,
    /// epochs, seed.
    pub fn settings_table(&self, data: &PreparedData) -> Table {
        let row = |setting: &str, value: String| vec![Cell::from(setting), Cell::Text(value)];
        Table::new(
            vec!["setting".into(), "value".into()],
            vec![
                row("inputs", format!("{} features: {}", data.n_features(), data.features.join(", "))),
                row("layers", self.keras_like().replace("classes", &data.n_classes().to_string())),
                row("hidden activation", self.activation.keras_name().to_string()),
                row("optimiser, loss", "Adam, categorical cross-entropy".to_string()),
                row("learning rate", self.learning_rate_f64().to_string()),
                row("batch size", self.batch_size.to_string()),
                row("epochs", self.epochs.to_string()),
                row("seed", self.seed.to_string()),
            ]
            .into_iter()
            .chain(self.patience.map(|p| {
                row("early stopping", format!("after {p} epochs without a lower val_loss; the best epoch is kept"))
            }))
            .chain(self.max_train_rows.map(|budget| {
                let rows = budget.min(data.n_train());
                row("training rows", format!("{rows} of {} (a stratified subsample)", data.n_train()))
            }))
            .collect(),
        )
        .with_caption("training settings")
    }
    /// The learning rate as the f64 it was written as (0.001, not 0.0010000000474974513).
    pub fn learning_rate_f64(&self) -> f64 {
        // f32's Display is the shortest decimal that reads back as the same f32.
        self.learning_rate.to_string().parse().unwrap_or(self.learning_rate as f64)
    }
    /// The hidden layers written as `32-64-128-256` (tables, run logs, registry metadata).
    pub fn hidden_layers_name(&self) -> String {
        self.hidden_layers.iter().map(usize::to_string).collect::<Vec<_>>().join("-")
    }
}

/// A network before training: its layers (Keras's `model.summary()`) and how it will be trained.
#[derive(Clone, Debug)]
pub struct NetworkSummary {
    pub layers: Summary,
    pub settings: Table,
}

crate::display::shown_in_turn!(NetworkSummary: layers, settings);

impl std::fmt::Display for NetworkSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}", self.layers)?;
        for row in &self.settings.rows {
            let text: Vec<String> = row.iter().map(|c| c.to_string()).collect();
            writeln!(f, "{}", text.join(": "))?;
        }
        Ok(())
    }
}

/// A trained network with its training history and timings.
#[derive(Clone, Debug)]
pub struct TrainedModel {
    pub network: Network,
    pub history: History,
    /// Wall time of `fit` (training and per-epoch validation).
    pub training_seconds: f64,
    pub params: NeuralNetwork,
    /// The data it was fitted on.
    pub fitted_on: DataFingerprint,
    /// Training rows it trained on: fewer than the split's under a row budget.
    pub train_rows: usize,
}

impl Learner for NeuralNetwork {
    type Fitted = TrainedModel;

    fn fit(&self, data: &PreparedData) -> Result<TrainedModel> {
        self.fit_rows(data, &TrainingRows::new(data, self.max_train_rows, self.seed), &mut |_| {})
    }
}

impl NeuralNetwork {
    /// Fits on `rows` (drawn from `data` with this learner's budget and seed; a sweep draws them
    /// once for all its runs), handing every progress report to `observe` as well (a sweep shows
    /// its runs in flight).
    pub(crate) fn fit_rows(
        &self,
        data: &PreparedData,
        rows: &TrainingRows,
        observe: &mut dyn FnMut(&EpochProgress),
    ) -> Result<TrainedModel> {
        let mut network = self.network(data);
        let validation = (!rows.y_val.is_empty()).then(|| Samples::new(&rows.x_val, &rows.y_val));
        let options = FitOptions {
            epochs: self.epochs,
            batch_size: self.batch_size,
            seed: self.seed,
            learning_rate: self.learning_rate,
            // Early stopping watches the validation loss: without validation rows it is off.
            patience: self.patience.filter(|_| validation.is_some()),
            validation,
            ..FitOptions::default()
        };
        let mut reporter = ProgressReporter::new(self.progress);
        let started = Instant::now();
        let history = network.fit_with_control(Samples::new(&rows.x_train, &rows.y_train), &options, &mut |p| {
            observe(p);
            reporter.update(p)
        })?;
        if let Some(interrupted) = reporter.interrupted() {
            return Err(interrupted);
        }
        reporter.finish(&history);
        Ok(TrainedModel {
            network,
            history,
            training_seconds: started.elapsed().as_secs_f64(),
            params: self.clone(),
            fitted_on: data.fingerprint(),
            train_rows: rows.n_train(),
        })
    }

    /// Measured speed of this network on `rows`: (training rows per second, validation rows
    /// scored per second), from about `seconds` of training on a copy (the weights of the run
    /// itself are untouched). What a sweep's expected time is computed from.
    pub(crate) fn measure_speed(&self, data: &PreparedData, rows: &TrainingRows, seconds: f64) -> (f64, f64) {
        let mut network = self.network(data);
        let n_features = data.n_features();
        // A first slice to find the pace, then one sized to last about `seconds`.
        let mut slice = (self.batch_size * 8).min(rows.n_train()).max(1);
        let mut train_speed = 0.0;
        for _ in 0..2 {
            let options = FitOptions {
                epochs: 1,
                batch_size: self.batch_size,
                seed: self.seed,
                learning_rate: self.learning_rate,
                progress_every: 0,
                ..FitOptions::default()
            };
            let samples = Samples::new(&rows.x_train[..slice * n_features], &rows.y_train[..slice]);
            let Ok(history) = network.fit(samples, &options, &mut |_| {}) else { return (0.0, 0.0) };
            train_speed = history.samples_per_second;
            let wanted = (train_speed * seconds) as usize;
            if wanted <= slice || slice == rows.n_train() {
                break;
            }
            slice = wanted.min(rows.n_train());
        }
        let scored = rows.y_val.len().min(((train_speed * seconds) as usize).max(256));
        let started = Instant::now();
        let _ = network.evaluate(&rows.x_val[..scored * n_features], &rows.y_val[..scored]);
        let elapsed = started.elapsed().as_secs_f64();
        let score_speed = if scored == 0 || elapsed <= 0.0 { f64::INFINITY } else { scored as f64 / elapsed };
        (train_speed, score_speed)
    }
}

impl Classifier for TrainedModel {
    fn name(&self) -> String {
        format!("neural network ({} epochs)", self.params.epochs)
    }
    fn predict(&self, x: &[f32], n_rows: usize) -> Vec<u32> {
        self.network.predict(x, n_rows)
    }
    fn fit_seconds(&self) -> f64 {
        self.training_seconds
    }
    fn fitted_on(&self) -> &DataFingerprint {
        &self.fitted_on
    }
}

impl TrainedModel {
    /// The Keras-like layer table (renders inline in Jupyter).
    pub fn summary(&self) -> Summary {
        self.network.summary()
    }

    /// Class probabilities, row-major `n_rows x n_classes`.
    pub fn predict_proba(&self, x: &[f32], n_rows: usize) -> Vec<f32> {
        self.network.predict_proba(x, n_rows)
    }

    /// Scores on the test split, classes named by country code.
    pub fn test_report(&self, data: &PreparedData) -> Result<ClassificationReport> {
        test_report(self, data)
    }

    /// What `metrics.json` records about this training run.
    pub fn training_info(&self, data: &PreparedData) -> TrainingInfo {
        TrainingInfo {
            epochs: self.params.epochs,
            batch_size: self.params.batch_size,
            seed: self.params.seed,
            data_rows: data.n_rows(),
            training_seconds: self.training_seconds,
            hidden_layers: self.params.hidden_layers_name(),
            learning_rate: self.params.learning_rate_f64(),
            split: data.options.strategy.name().to_string(),
            val_accuracy: self.history.val_accuracy.last().map(|&a| a as f64),
            features: data.features.join(", "),
            n_features: data.n_features(),
        }
    }

    /// Per-epoch loss and accuracy, training and validation, as a table.
    pub fn history_table(&self) -> Table {
        let h = &self.history;
        let value = |v: &[f32], i: usize| v.get(i).map(|&x| Cell::Number(x as f64)).unwrap_or(Cell::Empty);
        let rows = (0..h.loss.len())
            .map(|i| {
                vec![
                    Cell::Number((i + 1) as f64),
                    value(&h.loss, i),
                    value(&h.accuracy, i),
                    value(&h.val_loss, i),
                    value(&h.val_accuracy, i),
                    h.epoch_seconds.get(i).map(|&s| Cell::Number(s)).unwrap_or(Cell::Empty),
                ]
            })
            .collect();
        Table::new(
            ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"].map(String::from).to_vec(),
            rows,
        )
        .with_caption(format!("training history ({:.0} samples/s)", h.samples_per_second))
    }

    /// Two charts side by side: loss and val_loss, accuracy and val_accuracy per epoch (whole
    /// epochs on the x axis), with the legend to their right.
    pub fn history_plot(&self) -> Result<Plot> {
        let h = &self.history;
        let (training, validation) = (crate::display::series_colour(0), crate::display::series_colour(1));
        fn panel<'a>(title: &str, lines: [(&'a [f32], RGBColor); 2]) -> Panel<'a> {
            let lines = lines.into_iter().map(|(values, colour)| Line { values, colour, width: 2 }).collect();
            Panel { title: title.to_string(), y_desc: None, lines }
        }
        let chart = EpochChart {
            height: 340,
            panel_height: 340,
            panels: vec![
                panel("loss", [(&h.loss, training), (&h.val_loss, validation)]),
                panel("accuracy", [(&h.accuracy, training), (&h.val_accuracy, validation)]),
            ],
            title_size: 18,
            y_label_width: 50,
            points: true,
            // Keras's names for the history's series.
            legend: vec![
                ("loss, accuracy".to_string(), training, 2),
                ("val_loss, val_accuracy".to_string(), validation, 2),
            ],
            legend_width: 170,
            legend_font: 11,
            legend_top: 40,
        };
        Ok(chart.draw()?)
    }
}

/// One model's scores in a [`Comparison`].
#[derive(Clone, Debug)]
pub struct ComparedModel {
    pub name: String,
    pub report: ClassificationReport,
    pub fit_seconds: f64,
}

/// Several models scored on the same test split, each fitted on the same training rows.
#[derive(Clone, Debug, Default)]
pub struct Comparison {
    pub models: Vec<ComparedModel>,
    /// The data every model was fitted and scored on (`None` for an empty comparison).
    pub data: Option<DataFingerprint>,
}

impl Comparison {
    /// Scores every model on the test split of `data`. Every model must have been fitted on
    /// `data` (the same split, features and rows): a model fitted before the data was prepared
    /// again differently (another split strategy or seed, another feature list) is refused with
    /// [`TrainError::FittedOnOtherData`] naming it and what differs, since its scores would sit
    /// in the table as if they compared.
    pub fn new(models: &[&dyn Classifier], data: &PreparedData) -> Result<Comparison> {
        let fingerprint = data.fingerprint();
        // All checked before any is scored, so the error names every stale model at once.
        let stale: Vec<&&dyn Classifier> =
            models.iter().filter(|m| !m.fitted_on().differences(&fingerprint).is_empty()).collect();
        if let Some(first) = stale.first() {
            return Err(TrainError::FittedOnOtherData {
                model: stale.iter().map(|m| m.name()).collect::<Vec<_>>().join(" and "),
                differences: first.fitted_on().differences(&fingerprint).join("; "),
                fitted_on: first.fitted_on().to_string(),
            });
        }
        let models = models
            .iter()
            .map(|m| -> Result<ComparedModel> {
                let predicted = m.predict(&data.x_test, data.n_test());
                let report = ClassificationReport::new(&data.y_test, &predicted, data.n_classes())?
                    .with_class_names(data.encoder.classes())?;
                Ok(ComparedModel { name: m.name(), report, fit_seconds: m.fit_seconds() })
            })
            .collect::<Result<_>>()?;
        Ok(Comparison { models, data: Some(fingerprint) })
    }

    /// The scores of the model called `name`, if compared.
    pub fn get(&self, name: &str) -> Option<&ComparedModel> {
        self.models.iter().find(|m| m.name == name)
    }

    /// Accuracy, macro and weighted precision/recall/F1 and fit time per model.
    pub fn table(&self) -> Table {
        let columns = [
            "model",
            "accuracy",
            "precision (macro)",
            "recall (macro)",
            "f1 (macro)",
            "precision (weighted)",
            "recall (weighted)",
            "f1 (weighted)",
            "fit seconds",
        ]
        .map(String::from)
        .to_vec();
        let rows = self
            .models
            .iter()
            .map(|m| {
                let r = &m.report;
                vec![
                    Cell::from(m.name.clone()),
                    r.accuracy().into(),
                    r.precision_macro().into(),
                    r.recall_macro().into(),
                    r.f1_macro().into(),
                    r.precision_weighted().into(),
                    r.recall_weighted().into(),
                    r.f1_weighted().into(),
                    m.fit_seconds.into(),
                ]
            })
            .collect();
        let rows_tested = self.models.first().map(|m| m.report.total()).unwrap_or(0);
        let fitted_on = self.data.as_ref().map(|d| format!("; every model fitted on the {d}")).unwrap_or_default();
        Table::new(columns, rows).with_caption(format!("test split ({rows_tested} rows){fitted_on}"))
    }
}

crate::display::shown_as_table!(Comparison);
