//! Stage 5: refine the model. Try several settings, pick one honestly, and keep a record.
//!
//! A first model is rarely the best one. Refining means going round the loop again: change
//! how the network is built and trained, train again, compare. Done carelessly, it fools you
//! twice, and this module guards against both:
//!
//! 1. **Memorisation.** A song stays in a chart for many days, so the shared sample's 19,699
//!    rows hold only about 4,300 (song, country) pairs. A random split puts rows of the same
//!    song in train and test, and a model that *remembers* songs scores well without having
//!    learned anything about countries. [`SongOverlap`] counts how many test songs the model
//!    already saw in training, and [`SplitComparison`] scores the same learners on a random
//!    split and on a **grouped** split ([`SplitStrategy::Grouped`]: whole songs per split) side
//!    by side. The gap is what memory was worth.
//! 2. **Choosing by the test score.** Trying many settings and keeping the one with the best
//!    *test* score makes the test rows part of training: the score is then optimistic. A
//!    [`Sweep`] trains one run per setting of a [`Grid`] and picks by the **validation** score
//!    only ([`Sweep::SELECTION_RULE`]); the test score of the chosen run is reported once,
//!    afterwards.
//!
//! Every run is kept: [`Sweep::records`] gives one [`RunRecord`] per run (parameters, scores,
//! time), and [`RunLog`] appends them to `runs.jsonl` beside the model repository, so runs of
//! different days compare in one table. The chosen run is exported as the next version folder
//! and registered with its parameters and scores (see `notebooks/5-refine_model.ipynb`).
//!
//! Runs are seeded: the same grid, data and seed give the same scores (not the same seconds).
//!
//! [`SplitStrategy::Grouped`]: crate::prepare::SplitStrategy::Grouped

use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::display::{Cell, Plot, PlotError, Table, ToHtml};
use crate::evaluate::{ClassificationReport, EvaluateError, Metrics};
use crate::prepare::{PrepareError, PreparedData, SONG};
use crate::train::{
    Classifier, DecisionTree, Learner, LogisticRegression, NeuralNetwork, Progress, TrainError, TrainedModel,
};

/// Why refining failed. Variants name the grid field, file and line at fault.
#[derive(Debug, thiserror::Error)]
pub enum RefineError {
    #[error("invalid grid: {0}. A grid is `quick`, `class` or JSON such as {QUICK_GRID}")]
    Grid(String),
    #[error(transparent)]
    Prepare(#[from] PrepareError),
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error(transparent)]
    Evaluate(#[from] EvaluateError),
    #[error(transparent)]
    Plot(#[from] PlotError),
    #[error("the data has no `{SONG}` column: {0}")]
    Songs(PolarsError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}, line {line}: {source}")]
    Json { path: PathBuf, line: usize, source: serde_json::Error },
}

pub type Result<T, E = RefineError> = std::result::Result<T, E>;

/// The grid `quick` names: 8 runs, about 15 s of training on 2 cores (CI, a first try).
pub const QUICK_GRID: &str = r#"{"epochs": [10, 25], "hidden_layers": [[32, 64, 128, 256], [128, 128]], "learning_rate": [0.001, 0.003], "batch_size": [64]}"#;

/// The grid `class` names: 54 runs, a few minutes on a laptop (in class, during the break).
pub const CLASS_GRID: &str = r#"{"epochs": [10, 30, 60], "hidden_layers": [[32, 64, 128, 256], [128, 128], [256, 256, 256]], "learning_rate": [0.0003, 0.001, 0.003], "batch_size": [32, 128]}"#;

/// The settings a sweep tries: every combination of the listed values. Written as data (JSON),
/// so a grid can come from a notebook parameter or a file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grid {
    pub epochs: Vec<usize>,
    /// Each entry is one network: the widths of its hidden layers.
    pub hidden_layers: Vec<Vec<usize>>,
    pub learning_rate: Vec<f32>,
    pub batch_size: Vec<usize>,
}

impl std::str::FromStr for Grid {
    type Err = RefineError;

    /// `quick`, `class`, or a JSON object with the four lists.
    fn from_str(text: &str) -> Result<Grid> {
        let json = match text.trim() {
            "quick" => QUICK_GRID,
            "class" => CLASS_GRID,
            other => other,
        };
        let grid: Grid = serde_json::from_str(json).map_err(|e| RefineError::Grid(e.to_string()))?;
        grid.check()?;
        Ok(grid)
    }
}

impl Grid {
    fn check(&self) -> Result<()> {
        let empty = [
            ("epochs", self.epochs.is_empty()),
            ("hidden_layers", self.hidden_layers.is_empty()),
            ("learning_rate", self.learning_rate.is_empty()),
            ("batch_size", self.batch_size.is_empty()),
        ];
        if let Some((field, _)) = empty.iter().find(|(_, empty)| *empty) {
            return Err(RefineError::Grid(format!("`{field}` lists no value")));
        }
        if self.epochs.contains(&0) || self.batch_size.contains(&0) {
            return Err(RefineError::Grid("`epochs` and `batch_size` must be at least 1".into()));
        }
        if self.hidden_layers.iter().any(|layers| layers.contains(&0)) {
            return Err(RefineError::Grid("a layer in `hidden_layers` has 0 units".into()));
        }
        if let Some(rate) = self.learning_rate.iter().find(|r| !(r.is_finite() && **r > 0.0)) {
            return Err(RefineError::Grid(format!("learning rate {rate} is not a positive number")));
        }
        Ok(())
    }

    /// Number of runs: the product of the list lengths.
    pub fn len(&self) -> usize {
        self.epochs.len() * self.hidden_layers.len() * self.learning_rate.len() * self.batch_size.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One learner per combination, all seeded with `seed` (so runs differ only by settings).
    pub fn learners(&self, seed: u64) -> Vec<NeuralNetwork> {
        let mut learners = Vec::with_capacity(self.len());
        for hidden_layers in &self.hidden_layers {
            for &learning_rate in &self.learning_rate {
                for &batch_size in &self.batch_size {
                    for &epochs in &self.epochs {
                        learners.push(NeuralNetwork {
                            epochs,
                            batch_size,
                            seed,
                            hidden_layers: hidden_layers.clone(),
                            learning_rate,
                            progress: Progress::Silent,
                        });
                    }
                }
            }
        }
        learners
    }

    /// Trains one run per setting on `data` (train rows), scoring each on the validation and
    /// test rows. Prints one line per run as it finishes.
    pub fn sweep(&self, data: &PreparedData, seed: u64) -> Result<Sweep> {
        self.check()?;
        let learners = self.learners(seed);
        let mut runs = Vec::with_capacity(learners.len());
        for (i, learner) in learners.into_iter().enumerate() {
            let model = learner.fit(data)?;
            let score = |x: &[f32], y: &[u32], rows: usize| -> Result<ClassificationReport> {
                let predicted = model.predict(x, rows);
                Ok(ClassificationReport::new(y, &predicted, data.n_classes())?
                    .with_class_names(data.encoder.classes())?)
            };
            let validation = score(&data.x_val, &data.y_val, data.n_val())?;
            let test = score(&data.x_test, &data.y_test, data.n_test())?;
            let run = Run { number: i + 1, model, validation, test };
            println!(
                "run {}/{}: {}, validation accuracy {:.4} ({:.1} s)",
                run.number,
                self.len(),
                run.settings(),
                run.validation.accuracy(),
                run.model.training_seconds
            );
            runs.push(run);
        }
        Ok(Sweep { runs, split: data.options.strategy.name().to_string(), seed })
    }

    /// The grid as a table: one row per setting and the values tried.
    pub fn table(&self) -> Table {
        let list = |values: Vec<String>| Cell::Text(values.join(", "));
        let rows = vec![
            vec![Cell::from("epochs"), list(self.epochs.iter().map(usize::to_string).collect())],
            vec![
                Cell::from("hidden layers"),
                list(
                    self.hidden_layers
                        .iter()
                        .map(|l| l.iter().map(usize::to_string).collect::<Vec<_>>().join("-"))
                        .collect(),
                ),
            ],
            vec![Cell::from("learning rate"), list(self.learning_rate.iter().map(f32::to_string).collect())],
            vec![Cell::from("batch size"), list(self.batch_size.iter().map(usize::to_string).collect())],
        ];
        Table::new(vec!["setting".into(), "values tried".into()], rows)
            .with_caption(format!("grid: {} runs", self.len()))
    }
}

/// One trained setting of a sweep with its validation and test scores.
#[derive(Clone, Debug)]
pub struct Run {
    /// 1-based, in grid order.
    pub number: usize,
    pub model: TrainedModel,
    pub validation: ClassificationReport,
    pub test: ClassificationReport,
}

impl Run {
    pub fn learner(&self) -> &NeuralNetwork {
        &self.model.params
    }

    /// `32-64-128-256, lr 0.001, batch 64, 10 epochs`.
    pub fn settings(&self) -> String {
        let l = self.learner();
        format!("{}, lr {}, batch {}, {} epochs", l.hidden_layers_name(), l.learning_rate, l.batch_size, l.epochs)
    }

    /// Validation loss after the last epoch (the tie-breaker of the selection rule).
    pub fn validation_loss(&self) -> f64 {
        self.model.history.val_loss.last().map(|&l| l as f64).unwrap_or(f64::INFINITY)
    }

    /// What `metrics.json` records for this run when it is exported: test scores, settings and
    /// the validation accuracy it was chosen by.
    pub fn metrics(&self, data: &PreparedData) -> Metrics {
        let mut info = self.model.training_info(data);
        info.val_accuracy = Some(self.validation.accuracy());
        Metrics::new(&self.test, &info)
    }
}

/// The runs of a [`Grid`] on one split.
#[derive(Clone, Debug)]
pub struct Sweep {
    pub runs: Vec<Run>,
    /// The split the runs were trained and scored on (`grouped`, `stratified`, ...).
    pub split: String,
    pub seed: u64,
}

impl Sweep {
    /// How [`Sweep::best`] chooses, in words (shown in the notebook and the terminal).
    pub const SELECTION_RULE: &'static str =
        "the highest validation accuracy; a tie goes to the lower validation loss, \
        then to the earlier run. Test scores play no part in the choice.";

    /// The run [`Sweep::SELECTION_RULE`] picks. Panics on an empty sweep (a grid is never empty).
    pub fn best(&self) -> &Run {
        self.runs
            .iter()
            .reduce(|best, run| {
                let better = run.validation.accuracy() > best.validation.accuracy()
                    || (run.validation.accuracy() == best.validation.accuracy()
                        && run.validation_loss() < best.validation_loss());
                if better {
                    run
                } else {
                    best
                }
            })
            .expect("a sweep has at least one run")
    }

    /// One row per run: settings, parameters, validation and test scores, seconds; the chosen
    /// run is marked.
    pub fn table(&self) -> Table {
        let best = self.best().number;
        let columns = [
            "run",
            "hidden layers",
            "learning rate",
            "batch size",
            "epochs",
            "parameters",
            "val accuracy",
            "val loss",
            "val f1 (macro)",
            "test accuracy",
            "test f1 (macro)",
            "seconds",
            "chosen",
        ];
        let rows = self
            .runs
            .iter()
            .map(|run| {
                let l = run.learner();
                vec![
                    Cell::Number(run.number as f64),
                    Cell::Text(l.hidden_layers_name()),
                    Cell::Number(l.learning_rate_f64()),
                    Cell::Number(l.batch_size as f64),
                    Cell::Number(l.epochs as f64),
                    Cell::Number(run.model.network.parameter_count() as f64),
                    Cell::Number(run.validation.accuracy()),
                    Cell::Number(run.validation_loss()),
                    Cell::Number(run.validation.f1_macro()),
                    Cell::Number(run.test.accuracy()),
                    Cell::Number(run.test.f1_macro()),
                    Cell::Number(run.model.training_seconds),
                    Cell::Text(if run.number == best { "chosen".into() } else { String::new() }),
                ]
            })
            .collect();
        Table::new(columns.map(String::from).to_vec(), rows).with_caption(format!(
            "sweep: {} runs on the {} split, seed {}",
            self.runs.len(),
            self.split,
            self.seed
        ))
    }

    /// Validation accuracy per epoch, one line per run; the chosen run is drawn thicker.
    pub fn validation_plot(&self) -> Result<Plot> {
        use plotters::prelude::*;
        let best = self.best().number;
        let epochs = self.runs.iter().map(|r| r.model.history.val_accuracy.len()).max().unwrap_or(1).max(1);
        let values =
            self.runs.iter().flat_map(|r| r.model.history.val_accuracy.iter().copied()).filter(|v| v.is_finite());
        let (low, high) = values.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let (low, high) = if low.is_finite() { (low as f64, high as f64) } else { (0.0, 1.0) };
        let pad = ((high - low) * 0.1).max(1e-3);
        Ok(Plot::draw(900, 420, |root| -> Result<(), String> {
            let err = |e: &dyn std::fmt::Debug| format!("{e:?}");
            let mut chart = ChartBuilder::on(root)
                .caption(format!("validation accuracy per epoch ({} split)", self.split), ("sans-serif", 18))
                .margin(10)
                .x_label_area_size(35)
                .y_label_area_size(55)
                .build_cartesian_2d(0.5f64..epochs as f64 + 0.5, (low - pad)..(high + pad))
                .map_err(|e| err(&e))?;
            chart
                .configure_mesh()
                .x_desc("epoch")
                .y_desc("val accuracy")
                .x_labels(epochs.min(12))
                .draw()
                .map_err(|e| err(&e))?;
            for run in &self.runs {
                let colour = Palette99::pick(run.number - 1).to_rgba();
                let width = if run.number == best { 4 } else { 1 };
                let points =
                    run.model.history.val_accuracy.iter().enumerate().map(|(i, &v)| ((i + 1) as f64, v as f64));
                let label = format!(
                    "run {}: {}{}",
                    run.number,
                    run.settings(),
                    if run.number == best { " (chosen)" } else { "" }
                );
                chart
                    .draw_series(LineSeries::new(points, colour.stroke_width(width)))
                    .map_err(|e| err(&e))?
                    .label(label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(width)));
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .label_font(("sans-serif", 11))
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| err(&e))?;
            Ok(())
        })?)
    }

    /// One record per run, the chosen one marked, stamped with `recorded_at` (seconds since
    /// 1970) and a sweep id made of it, the split and the seed.
    pub fn records(&self) -> Vec<RunRecord> {
        let recorded_at =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let best = self.best().number;
        self.runs
            .iter()
            .map(|run| {
                let l = run.learner();
                RunRecord {
                    sweep: format!("{recorded_at}-{}-seed{}", self.split, self.seed),
                    recorded_at,
                    run: run.number,
                    split: self.split.clone(),
                    seed: self.seed,
                    epochs: l.epochs,
                    batch_size: l.batch_size,
                    learning_rate: l.learning_rate_f64(),
                    hidden_layers: l.hidden_layers_name(),
                    parameters: run.model.network.parameter_count(),
                    val_accuracy: run.validation.accuracy(),
                    val_loss: run.validation_loss(),
                    val_f1_macro: run.validation.f1_macro(),
                    test_accuracy: run.test.accuracy(),
                    test_f1_macro: run.test.f1_macro(),
                    training_seconds: run.model.training_seconds,
                    chosen: run.number == best,
                }
            })
            .collect()
    }
}

impl ToHtml for Sweep {
    fn to_html(&self) -> String {
        self.table().to_html()
    }
}

/// One line of `runs.jsonl`: a run's settings and scores.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Which sweep the run belonged to: `<recorded_at>-<split>-seed<seed>`.
    pub sweep: String,
    /// Seconds since 1970 (UTC) when the sweep was recorded.
    pub recorded_at: u64,
    pub run: usize,
    pub split: String,
    pub seed: u64,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub hidden_layers: String,
    pub parameters: usize,
    pub val_accuracy: f64,
    pub val_loss: f64,
    pub val_f1_macro: f64,
    pub test_accuracy: f64,
    pub test_f1_macro: f64,
    pub training_seconds: f64,
    /// Picked by the selection rule.
    pub chosen: bool,
}

/// The run log: `runs.jsonl`, one [`RunRecord`] per line, appended to by every sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct RunLog {
    pub path: PathBuf,
}

impl RunLog {
    /// File name of the log inside a model repository.
    pub const FILE: &'static str = "runs.jsonl";

    /// The log kept beside the model versions of repository `model_dir`.
    pub fn beside(model_dir: impl AsRef<Path>) -> RunLog {
        RunLog { path: model_dir.as_ref().join(Self::FILE) }
    }

    fn io(&self) -> impl FnOnce(std::io::Error) -> RefineError + '_ {
        move |source| RefineError::Io { path: self.path.clone(), source }
    }

    /// Appends `records` (one line each), creating the file and its folder if needed. Each
    /// record is one `write` of a whole line, so a crash never leaves half a record before the
    /// next sweep's lines.
    pub fn append(&self, records: &[RunRecord]) -> Result<()> {
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent).map_err(self.io())?;
        }
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&self.path).map_err(self.io())?;
        for record in records {
            let mut line = serde_json::to_vec(record).map_err(|source| RefineError::Json {
                path: self.path.clone(),
                line: 0,
                source,
            })?;
            line.push(b'\n');
            file.write_all(&line).map_err(self.io())?;
        }
        file.sync_data().map_err(self.io())
    }

    /// Every record, oldest first; an absent file is an empty log.
    pub fn load(&self) -> Result<Vec<RunRecord>> {
        let file = match std::fs::File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io()(e)),
        };
        let mut records = Vec::new();
        for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line.map_err(self.io())?;
            if line.trim().is_empty() {
                continue;
            }
            records.push(serde_json::from_str(&line).map_err(|source| RefineError::Json {
                path: self.path.clone(),
                line: i + 1,
                source,
            })?);
        }
        Ok(records)
    }

    /// Every recorded run as a table (the chosen runs marked), oldest first.
    pub fn table(&self) -> Result<Table> {
        let records = self.load()?;
        let columns = [
            "sweep",
            "run",
            "split",
            "seed",
            "hidden layers",
            "learning rate",
            "batch size",
            "epochs",
            "val accuracy",
            "test accuracy",
            "seconds",
            "chosen",
        ];
        let rows = records
            .iter()
            .map(|r| {
                vec![
                    Cell::Text(r.sweep.clone()),
                    Cell::Number(r.run as f64),
                    Cell::Text(r.split.clone()),
                    Cell::Number(r.seed as f64),
                    Cell::Text(r.hidden_layers.clone()),
                    Cell::Number(r.learning_rate),
                    Cell::Number(r.batch_size as f64),
                    Cell::Number(r.epochs as f64),
                    Cell::Number(r.val_accuracy),
                    Cell::Number(r.test_accuracy),
                    Cell::Number(r.training_seconds),
                    Cell::Text(if r.chosen { "chosen".into() } else { String::new() }),
                ]
            })
            .collect();
        Ok(Table::new(columns.map(String::from).to_vec(), rows).with_caption(format!(
            "{} runs recorded in {}",
            records.len(),
            self.path.display()
        )))
    }
}

/// How many songs of the validation and test rows the model already met in training.
#[derive(Clone, Debug, PartialEq)]
pub struct SongOverlap {
    pub split: String,
    /// Distinct songs per split: train, validation, test.
    pub songs: [usize; 3],
    /// Validation and test songs that also have rows in train.
    pub songs_seen_in_training: [usize; 2],
    /// Validation and test rows whose song has rows in train.
    pub rows_seen_in_training: [usize; 2],
    /// Validation and test rows.
    pub rows: [usize; 2],
}

impl SongOverlap {
    /// Counts the songs (`spotify_id`) each split shares with the training rows.
    pub fn of(data: &PreparedData) -> Result<SongOverlap> {
        let ids = |frame: &DataFrame| -> Result<Vec<String>> {
            let column = frame.column(SONG).and_then(|c| c.str().cloned()).map_err(RefineError::Songs)?;
            Ok(column.iter().map(|id| id.unwrap_or_default().to_string()).collect())
        };
        let train: HashSet<String> = ids(&data.splits.train)?.into_iter().collect();
        let mut songs = [train.len(), 0, 0];
        let (mut songs_seen, mut rows_seen, mut rows) = ([0; 2], [0; 2], [0; 2]);
        for (i, frame) in [&data.splits.validation, &data.splits.test].into_iter().enumerate() {
            let ids = ids(frame)?;
            rows[i] = ids.len();
            rows_seen[i] = ids.iter().filter(|id| train.contains(*id)).count();
            let distinct: HashSet<&String> = ids.iter().collect();
            songs[i + 1] = distinct.len();
            songs_seen[i] = distinct.iter().filter(|id| train.contains(**id)).count();
        }
        Ok(SongOverlap {
            split: data.options.strategy.name().to_string(),
            songs,
            songs_seen_in_training: songs_seen,
            rows_seen_in_training: rows_seen,
            rows,
        })
    }

    /// Validation and test: songs, songs also in train, rows, and the share of rows whose song
    /// the model trained on.
    pub fn table(&self) -> Table {
        let row = |name: &str, i: usize| {
            vec![
                Cell::from(name),
                Cell::Number(self.songs[i + 1] as f64),
                Cell::Number(self.songs_seen_in_training[i] as f64),
                Cell::Number(self.rows[i] as f64),
                Cell::Number(self.rows_seen_in_training[i] as f64 / self.rows[i].max(1) as f64),
            ]
        };
        Table::new(
            ["split", "songs", "songs also in train", "rows", "share of rows whose song is in train"]
                .map(String::from)
                .to_vec(),
            vec![row("validation", 0), row("test", 1)],
        )
        .with_caption(format!("{} split: {} songs in train", self.split, self.songs[0]))
    }
}

/// One model's test scores on a random and on a grouped split.
#[derive(Clone, Debug)]
pub struct SplitScores {
    pub model: String,
    pub random: ClassificationReport,
    pub grouped: ClassificationReport,
}

/// The same learners trained and tested on a random split and on a grouped split.
#[derive(Clone, Debug)]
pub struct SplitComparison {
    pub random_split: String,
    pub models: Vec<SplitScores>,
}

impl SplitComparison {
    /// Trains `network` and the two baselines (logistic regression, decision tree) on each
    /// split's training rows and scores them on its test rows. `random` is any ungrouped split
    /// (usually stratified); `grouped` is [`SplitStrategy::Grouped`](crate::prepare::SplitStrategy::Grouped).
    pub fn new(network: &NeuralNetwork, random: &PreparedData, grouped: &PreparedData) -> Result<SplitComparison> {
        let fit_all = |data: &PreparedData| -> Result<Vec<(String, ClassificationReport)>> {
            let models: Vec<Box<dyn Classifier>> = vec![
                Box::new(network.clone().with_progress(Progress::Silent).fit(data)?),
                Box::new(LogisticRegression::default().fit(data)?),
                Box::new(DecisionTree::default().fit(data)?),
            ];
            models.iter().map(|m| Ok((m.name(), crate::train::test_report(m.as_ref(), data)?))).collect()
        };
        let on_random = fit_all(random)?;
        let on_grouped = fit_all(grouped)?;
        let models = on_random
            .into_iter()
            .zip(on_grouped)
            .map(|((model, random), (_, grouped))| SplitScores { model, random, grouped })
            .collect();
        Ok(SplitComparison { random_split: random.options.strategy.name().to_string(), models })
    }

    /// Test accuracy and macro F1 per model on both splits, and how much accuracy the grouped
    /// split loses (percentage points).
    pub fn table(&self) -> Table {
        let columns = [
            "model".to_string(),
            format!("test accuracy ({} split)", self.random_split),
            "test accuracy (grouped split)".to_string(),
            "difference (points)".to_string(),
            format!("f1 macro ({} split)", self.random_split),
            "f1 macro (grouped split)".to_string(),
        ];
        let rows = self
            .models
            .iter()
            .map(|m| {
                vec![
                    Cell::Text(m.model.clone()),
                    Cell::Number(m.random.accuracy()),
                    Cell::Number(m.grouped.accuracy()),
                    Cell::Number(((m.grouped.accuracy() - m.random.accuracy()) * 1000.0).round() / 10.0),
                    Cell::Number(m.random.f1_macro()),
                    Cell::Number(m.grouped.f1_macro()),
                ]
            })
            .collect();
        Table::new(columns.to_vec(), rows)
            .with_caption("the same learners on a random and on a grouped split (whole songs per split)")
    }
}

impl ToHtml for SplitComparison {
    fn to_html(&self) -> String {
        self.table().to_html()
    }
}
