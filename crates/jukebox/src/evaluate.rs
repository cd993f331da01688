//! Stage 2c: how good are the predictions?
//!
//! [`ClassificationReport`] compares true and predicted class indices and computes the metrics
//! the workshop reports, with scikit-learn's definitions (so numbers match its
//! `classification_report` and `confusion_matrix`):
//!
//! - **accuracy**: share of rows predicted right;
//! - per class **precision** (of the rows predicted as the class, how many are it), **recall**
//!   (of the rows of the class, how many were found) and **F1** (their harmonic mean); a class
//!   that is never predicted gets precision 0 (scikit-learn's `zero_division=0`), never NaN;
//! - **macro** averages: the plain mean over classes, so every country counts the same;
//! - **weighted** averages: the mean weighted by each class's support (its number of true rows).
//!
//! As in scikit-learn, the classes averaged over are those that occur in the truth or in the
//! predictions. The confusion matrix has one row per true class and one column per predicted
//! class; the diagonal holds the right answers.
//!
//! [`Metrics`] is the `metrics.json` saved beside an exported model.
//!
//! Why hand-written, beside linfa (whose models the notebooks use through `crate::linfa`): linfa
//! 0.8's `ConfusionMatrix` computes a different macro F1 (the harmonic mean of macro precision and
//! macro recall, not the mean of per-class F1 that scikit-learn and the workshop report), gives
//! NaN for a class that is never predicted, swaps precision and recall when built from a plain
//! label array, and returns per-class figures without their labels. The numbers here must match
//! scikit-learn's `classification_report`, which `tests/evaluate.rs` checks on fixed examples.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::display::{heatmap, Cell, ColourScale, Plot, PlotError, Table};

/// Why metrics could not be computed or saved.
#[derive(Debug, thiserror::Error)]
pub enum EvaluateError {
    #[error("truth has {truth} labels but predictions have {predicted}")]
    LengthMismatch { truth: usize, predicted: usize },
    #[error("{which} label {label} in row {row} is out of range: there are {n_classes} classes")]
    LabelOutOfRange { which: &'static str, row: usize, label: u32, n_classes: usize },
    #[error("{n_names} class names given for {n_classes} classes")]
    ClassNames { n_names: usize, n_classes: usize },
    #[error(transparent)]
    Plot(#[from] PlotError),
    #[error("{path}: {source}")]
    Io { path: std::path::PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Json { path: std::path::PathBuf, source: serde_json::Error },
}

pub type Result<T, E = EvaluateError> = std::result::Result<T, E>;

/// Precision, recall, F1 and support of one class.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    pub class: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: u64,
}

/// The scores [`ClassificationReport::averages`] returns: the `metrics.json` key (scikit-learn's
/// name) and the label a table shows.
pub const AVERAGES: [(&str, &str); 7] = [
    ("accuracy", "accuracy"),
    ("precision_macro", "precision (macro)"),
    ("recall_macro", "recall (macro)"),
    ("f1_macro", "f1 (macro)"),
    ("precision_weighted", "precision (weighted)"),
    ("recall_weighted", "recall (weighted)"),
    ("f1_weighted", "f1 (weighted)"),
];

/// The averaged scores of a report: `name = mean(metric)` becomes `pub fn name(&self) -> f64`,
/// the per-class `metric` averaged by `mean` (over the present classes, or weighted by support).
macro_rules! averages {
    ($($(#[$doc:meta])* $name:ident = $mean:ident($metric:ident);)*) => {
        $(
            $(#[$doc])*
            pub fn $name(&self) -> f64 {
                self.$mean(|c| self.$metric(c))
            }
        )*
    };
}

/// True versus predicted classes: the confusion matrix and every metric derived from it.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassificationReport {
    /// `confusion[truth][predicted]` = number of rows.
    confusion: Vec<Vec<u64>>,
    class_names: Vec<String>,
}

fn ratio(numerator: u64, denominator: u64) -> f64 {
    if denominator == 0 {
        0.0
    } else {
        numerator as f64 / denominator as f64
    }
}

impl ClassificationReport {
    /// Counts every (truth, prediction) pair. Classes are `0..n_classes`, named by their index
    /// until [`with_class_names`](Self::with_class_names).
    pub fn new(truth: &[u32], predicted: &[u32], n_classes: usize) -> Result<ClassificationReport> {
        if truth.len() != predicted.len() {
            return Err(EvaluateError::LengthMismatch { truth: truth.len(), predicted: predicted.len() });
        }
        let mut confusion = vec![vec![0u64; n_classes]; n_classes];
        for (row, (&t, &p)) in truth.iter().zip(predicted).enumerate() {
            for (which, label) in [("true", t), ("predicted", p)] {
                if label as usize >= n_classes {
                    return Err(EvaluateError::LabelOutOfRange { which, row, label, n_classes });
                }
            }
            confusion[t as usize][p as usize] += 1;
        }
        Ok(ClassificationReport { confusion, class_names: (0..n_classes).map(|i| i.to_string()).collect() })
    }

    /// Names the classes (for example country codes) in tables, plots and `metrics.json`.
    pub fn with_class_names<S: AsRef<str>>(mut self, names: &[S]) -> Result<ClassificationReport> {
        if names.len() != self.n_classes() {
            return Err(EvaluateError::ClassNames { n_names: names.len(), n_classes: self.n_classes() });
        }
        self.class_names = names.iter().map(|n| n.as_ref().to_string()).collect();
        Ok(self)
    }

    pub fn n_classes(&self) -> usize {
        self.confusion.len()
    }
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }
    /// `confusion_matrix()[truth][predicted]`.
    pub fn confusion_matrix(&self) -> &[Vec<u64>] {
        &self.confusion
    }
    /// Number of rows compared.
    pub fn total(&self) -> u64 {
        self.confusion.iter().flatten().sum()
    }

    fn true_positives(&self, class: usize) -> u64 {
        self.confusion[class][class]
    }
    /// Rows whose true class is `class`.
    pub fn support(&self, class: usize) -> u64 {
        self.confusion[class].iter().sum()
    }
    /// Rows predicted as `class`.
    pub fn predicted_count(&self, class: usize) -> u64 {
        self.confusion.iter().map(|row| row[class]).sum()
    }

    pub fn accuracy(&self) -> f64 {
        ratio((0..self.n_classes()).map(|c| self.true_positives(c)).sum(), self.total())
    }
    /// 0 when the class is never predicted.
    pub fn precision(&self, class: usize) -> f64 {
        ratio(self.true_positives(class), self.predicted_count(class))
    }
    /// 0 when the class never occurs in the truth.
    pub fn recall(&self, class: usize) -> f64 {
        ratio(self.true_positives(class), self.support(class))
    }
    /// `2 tp / (2 tp + fp + fn)`, which equals the harmonic mean of precision and recall; 0
    /// when the class is neither present nor predicted.
    pub fn f1(&self, class: usize) -> f64 {
        let tp = self.true_positives(class);
        ratio(2 * tp, self.support(class) + self.predicted_count(class))
    }

    /// Classes occurring in the truth or in the predictions (those scikit-learn averages over).
    pub fn present_classes(&self) -> Vec<usize> {
        (0..self.n_classes()).filter(|&c| self.support(c) + self.predicted_count(c) > 0).collect()
    }

    fn macro_mean(&self, metric: impl Fn(usize) -> f64) -> f64 {
        let classes = self.present_classes();
        if classes.is_empty() {
            return 0.0;
        }
        classes.iter().map(|&c| metric(c)).sum::<f64>() / classes.len() as f64
    }
    fn weighted_mean(&self, metric: impl Fn(usize) -> f64) -> f64 {
        let total = self.total();
        if total == 0 {
            return 0.0;
        }
        self.present_classes().iter().map(|&c| metric(c) * self.support(c) as f64).sum::<f64>() / total as f64
    }

    averages! {
        /// Mean of the per-class precisions.
        precision_macro = macro_mean(precision);
        /// Mean of the per-class recalls.
        recall_macro = macro_mean(recall);
        /// Mean of the per-class F1 scores (not the F1 of the macro precision and recall).
        f1_macro = macro_mean(f1);
        /// Mean of the per-class precisions, each weighted by the class's support.
        precision_weighted = weighted_mean(precision);
        /// Mean of the per-class recalls, each weighted by the class's support.
        recall_weighted = weighted_mean(recall);
        /// Mean of the per-class F1 scores, each weighted by the class's support.
        f1_weighted = weighted_mean(f1);
    }

    /// Accuracy and the six averages under their `metrics.json` keys (scikit-learn's names), in
    /// the order of [`AVERAGES`].
    pub fn averages(&self) -> [(&'static str, f64); 7] {
        let values = [
            self.accuracy(),
            self.precision_macro(),
            self.recall_macro(),
            self.f1_macro(),
            self.precision_weighted(),
            self.recall_weighted(),
            self.f1_weighted(),
        ];
        std::array::from_fn(|i| (AVERAGES[i].0, values[i]))
    }

    /// Precision, recall, F1 and support of every present class.
    pub fn per_class(&self) -> Vec<ClassMetrics> {
        self.present_classes()
            .into_iter()
            .map(|c| ClassMetrics {
                class: self.class_names[c].clone(),
                precision: self.precision(c),
                recall: self.recall(c),
                f1: self.f1(c),
                support: self.support(c),
            })
            .collect()
    }

    /// The per-class metrics as a table, F1 coloured on a blue scale.
    pub fn per_class_table(&self) -> Table {
        let rows = self
            .per_class()
            .into_iter()
            .map(|m| {
                vec![Cell::from(m.class), m.precision.into(), m.recall.into(), m.f1.into(), (m.support as f64).into()]
            })
            .collect();
        let mut table =
            Table::new(vec!["class".into(), "precision".into(), "recall".into(), "f1".into(), "support".into()], rows)
                .with_caption("per-class metrics")
                .with_colour_scale(ColourScale::BLUES, 0.0, 1.0, 1);
        // Only the three scores are on the 0-1 scale; support is a count.
        if let Some(backgrounds) = table.backgrounds.as_mut() {
            for row in backgrounds {
                row[4] = None;
            }
        }
        table
    }

    /// Accuracy and the macro and weighted averages as a one-column table.
    pub fn summary_table(&self) -> Table {
        let rows = AVERAGES
            .iter()
            .zip(self.averages())
            .map(|((_, label), (_, value))| vec![Cell::from(*label), value.into()])
            .collect();
        Table::new(vec!["metric".into(), "value".into()], rows).with_caption(format!("{} rows", self.total()))
    }

    /// The confusion matrix as a heatmap: true classes down, predicted classes across, darker
    /// blue for more rows. Non-zero counts are written in the cells.
    pub fn confusion_heatmap(&self) -> Result<Plot> {
        let values: Vec<Vec<f64>> = self.confusion.iter().map(|row| row.iter().map(|&v| v as f64).collect()).collect();
        let high = values.iter().flatten().copied().fold(1.0, f64::max);
        Ok(heatmap(
            "confusion matrix (rows: true country, columns: predicted country)",
            &self.class_names,
            &self.class_names,
            &values,
            ColourScale::BLUES,
            (0.0, high),
            |v| if v == 0.0 { String::new() } else { format!("{v:.0}") },
        )?)
    }
}

/// How a model was trained, recorded beside its scores in `metrics.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingInfo {
    pub epochs: usize,
    pub batch_size: usize,
    pub seed: u64,
    /// Rows of prepared data (train + validation + test).
    pub data_rows: usize,
    pub training_seconds: f64,
    /// Hidden layer widths, e.g. `32-64-128-256`.
    pub hidden_layers: String,
    pub learning_rate: f64,
    /// How the rows were split (`stratified`, `grouped`, ...): scores on different splits do not
    /// compare.
    pub split: String,
    /// Accuracy on the validation rows after the last epoch (what a sweep picks by).
    pub val_accuracy: Option<f64>,
    /// The feature columns the model reads, in input order, comma-separated (`danceability,
    /// energy, ...`): text, so that the registry can record it as one metadata entry.
    pub features: String,
    /// How many features the model reads.
    pub n_features: usize,
}

/// The contents of `metrics.json`. Other stages read the top-level keys by name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub accuracy: f64,
    pub precision_macro: f64,
    pub recall_macro: f64,
    pub f1_macro: f64,
    pub precision_weighted: f64,
    pub recall_weighted: f64,
    pub f1_weighted: f64,
    pub epochs: usize,
    pub batch_size: usize,
    pub seed: u64,
    pub data_rows: usize,
    pub training_seconds: f64,
    // Added with the refinement stage; absent from older files.
    #[serde(default)]
    pub hidden_layers: String,
    #[serde(default)]
    pub learning_rate: f64,
    #[serde(default)]
    pub split: String,
    #[serde(default)]
    pub val_accuracy: Option<f64>,
    // Added with the feature list in a notebook cell; absent from older files.
    #[serde(default)]
    pub features: String,
    #[serde(default)]
    pub n_features: usize,
    pub per_class: Vec<ClassMetrics>,
}

impl Metrics {
    pub fn new(report: &ClassificationReport, training: &TrainingInfo) -> Metrics {
        Metrics {
            accuracy: report.accuracy(),
            precision_macro: report.precision_macro(),
            recall_macro: report.recall_macro(),
            f1_macro: report.f1_macro(),
            precision_weighted: report.precision_weighted(),
            recall_weighted: report.recall_weighted(),
            f1_weighted: report.f1_weighted(),
            epochs: training.epochs,
            batch_size: training.batch_size,
            seed: training.seed,
            data_rows: training.data_rows,
            training_seconds: training.training_seconds,
            hidden_layers: training.hidden_layers.clone(),
            learning_rate: training.learning_rate,
            split: training.split.clone(),
            val_accuracy: training.val_accuracy,
            features: training.features.clone(),
            n_features: training.n_features,
            per_class: report.per_class(),
        }
    }

    /// Writes the metrics as pretty JSON.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let file =
            std::fs::File::create(path).map_err(|source| EvaluateError::Io { path: path.to_path_buf(), source })?;
        serde_json::to_writer_pretty(std::io::BufWriter::new(file), self)
            .map_err(|source| EvaluateError::Json { path: path.to_path_buf(), source })
    }

    /// Reads a `metrics.json`.
    pub fn load(path: impl AsRef<Path>) -> Result<Metrics> {
        let path = path.as_ref();
        let text = std::fs::read(path).map_err(|source| EvaluateError::Io { path: path.to_path_buf(), source })?;
        serde_json::from_slice(&text).map_err(|source| EvaluateError::Json { path: path.to_path_buf(), source })
    }
}
