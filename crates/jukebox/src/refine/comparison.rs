//! What memorising songs is worth: the same learners on a random and on a grouped split.
//!
//! [`SplitComparison`] trains the network and the two baselines on a random split and on a
//! grouped split (whole songs per split) and puts their test scores side by side. The accuracy a
//! learner loses on the grouped split is what remembering songs was worth on the random one; the
//! grouped split's score is the honest estimate for songs the model has never seen.

use super::error::{RefineError, Result};
use super::sweep::workers;
use crate::display::{Cell, Table};
use crate::evaluate::ClassificationReport;
use crate::prepare::PreparedData;
use crate::train::{
    Classifier, DecisionTree, InterruptWatch, Learner, LogisticRegression, NeuralNetwork, Progress, TrainError,
};

/// One model's test scores on a random and on a grouped split.
#[derive(Clone, Debug)]
pub struct SplitScores {
    pub model: String,
    pub random: ClassificationReport,
    /// `None` when the comparison was interrupted before this model was fitted on the grouped split.
    pub grouped: Option<ClassificationReport>,
}

/// The same learners trained and tested on a random split and on a grouped split.
#[derive(Clone, Debug)]
pub struct SplitComparison {
    pub random_split: String,
    pub models: Vec<SplitScores>,
    /// Fits the comparison asked for (each learner on each split): more than were made when
    /// it was interrupted.
    pub planned_fits: usize,
}

impl SplitComparison {
    /// Trains `network` and the two baselines (logistic regression, decision tree) on each
    /// split's training rows and scores them on its test rows, one learner at a time, its two
    /// fits (random split, grouped split) at once when there are two cores ([`workers`]).
    /// `random` is any ungrouped split (usually stratified); `grouped` is
    /// [`SplitStrategy::Grouped`](crate::prepare::SplitStrategy::Grouped).
    ///
    /// An interrupt stops it after the fits in progress (the network's at once, a baseline's when
    /// it ends) and keeps the scores finished so far; the table says where it stopped.
    pub fn new(network: &NeuralNetwork, random: &PreparedData, grouped: &PreparedData) -> Result<SplitComparison> {
        Self::new_on(network, random, grouped, workers())
    }

    /// [`SplitComparison::new`] with `workers` fits at a time (1: one after another; 2 or more:
    /// a learner's two fits at once). The scores are the same either way.
    pub fn new_on(
        network: &NeuralNetwork,
        random: &PreparedData,
        grouped: &PreparedData,
        workers: usize,
    ) -> Result<SplitComparison> {
        // Held across the fits: an interrupt during a baseline's fit (which does not watch for
        // one) or between fits stops the comparison instead of ending the process.
        let interrupt = InterruptWatch::start();
        Self::new_until(network, random, grouped, workers, |_| interrupt.requested())
    }

    /// [`SplitComparison::new_on`], starting no further fit once `stop(fits finished)` says so
    /// (an interrupt; tests stop after a given fit). With one worker it is asked before every
    /// fit, else before every learner's pair of fits.
    fn new_until(
        network: &NeuralNetwork,
        random: &PreparedData,
        grouped: &PreparedData,
        workers: usize,
        mut stop: impl FnMut(usize) -> bool,
    ) -> Result<SplitComparison> {
        type Fit = Box<dyn Fn(&PreparedData) -> Result<Box<dyn Classifier + Send>, TrainError> + Sync>;
        let network = network.clone().with_progress(Progress::Silent);
        fn boxed<C: Classifier + Send + 'static>(
            fitted: Result<C, TrainError>,
        ) -> Result<Box<dyn Classifier + Send>, TrainError> {
            Ok(Box::new(fitted?))
        }
        let learners: [Fit; 3] = [
            Box::new(move |data: &PreparedData| boxed(network.fit(data))),
            Box::new(|data: &PreparedData| boxed(LogisticRegression::default().fit(data))),
            Box::new(|data: &PreparedData| boxed(DecisionTree::default().fit(data))),
        ];
        let planned_fits = 2 * learners.len();
        // A fit and its test scores; `None` when it was interrupted.
        let fit_and_score = |fit: &Fit, data: &PreparedData| -> Result<Option<(String, ClassificationReport)>> {
            match fit(data) {
                Ok(model) => Ok(Some((model.name(), crate::train::test_report(model.as_ref(), data)?))),
                Err(TrainError::Interrupted { .. }) => Ok(None),
                Err(other) => Err(other.into()),
            }
        };
        let mut fits = 0;
        let mut models = Vec::new();
        for fit in &learners {
            if stop(fits) {
                break;
            }
            let (on_random, on_grouped) = if workers >= 2 {
                // Each fit is single-threaded and seeded: side by side, the same scores.
                std::thread::scope(|scope| {
                    let on_grouped = scope.spawn(|| fit_and_score(fit, grouped));
                    let on_random = fit_and_score(fit, random);
                    let on_grouped = on_grouped.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                    (on_random, on_grouped)
                })
            } else {
                let on_random = fit_and_score(fit, random);
                let on_grouped = match &on_random {
                    Ok(Some(_)) if !stop(fits + 1) => fit_and_score(fit, grouped),
                    _ => Ok(None),
                };
                (on_random, on_grouped)
            };
            let (on_random, on_grouped) = (on_random?, on_grouped?);
            let Some((model, on_random)) = on_random else { break };
            fits += 1 + usize::from(on_grouped.is_some());
            let stopped = on_grouped.is_none();
            models.push(SplitScores { model, random: on_random, grouped: on_grouped.map(|(_, report)| report) });
            if stopped {
                break;
            }
        }
        if models.is_empty() {
            return Err(RefineError::Interrupted { what: "the split comparison", planned: planned_fits });
        }
        let comparison =
            SplitComparison { random_split: random.options.strategy.name().to_string(), models, planned_fits };
        if !comparison.is_complete() {
            println!("{}", comparison.status());
        }
        Ok(comparison)
    }

    /// Fits finished: two per model, one when its grouped fit was interrupted.
    pub fn fits(&self) -> usize {
        self.models.iter().map(|m| 1 + usize::from(m.grouped.is_some())).sum()
    }

    /// Whether every fit finished (false after an interrupt).
    pub fn is_complete(&self) -> bool {
        self.fits() >= self.planned_fits
    }

    /// What the caption says: the splits, and where an interrupted comparison stopped.
    pub fn status(&self) -> String {
        let what = "the same learners on a random and on a grouped split (whole songs per split)";
        if self.is_complete() {
            what.to_string()
        } else {
            format!("{what}: stopped after {} of {} fits (interrupted)", self.fits(), self.planned_fits)
        }
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
                let grouped = |score: fn(&ClassificationReport) -> f64| {
                    m.grouped.as_ref().map(|g| Cell::Number(score(g))).unwrap_or(Cell::Empty)
                };
                let difference = m
                    .grouped
                    .as_ref()
                    .map(|g| Cell::Number(((g.accuracy() - m.random.accuracy()) * 1000.0).round() / 10.0));
                vec![
                    Cell::Text(m.model.clone()),
                    Cell::Number(m.random.accuracy()),
                    grouped(ClassificationReport::accuracy),
                    difference.unwrap_or(Cell::Empty),
                    Cell::Number(m.random.f1_macro()),
                    grouped(ClassificationReport::f1_macro),
                ]
            })
            .collect();
        Table::new(columns.to_vec(), rows).with_caption(self.status())
    }
}

crate::display::shown_as_table!(SplitComparison);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prepare::SplitStrategy;
    use crate::refine::sweep::tests::prepared;

    #[test]
    fn an_interrupted_split_comparison_keeps_the_models_it_finished() {
        let (random, grouped) = (prepared(SplitStrategy::Stratified), prepared(SplitStrategy::Grouped));
        let network = NeuralNetwork::new(1, 256, 42);
        // One fit at a time, stopped after the network's two fits and the logistic regression's
        // first.
        let stopped = SplitComparison::new_until(&network, &random, &grouped, 1, |fits| fits == 3).unwrap();
        assert_eq!((stopped.fits(), stopped.planned_fits), (3, 6));
        assert!(!stopped.is_complete());
        assert_eq!(stopped.models.len(), 2);
        assert!(stopped.models[0].grouped.is_some() && stopped.models[1].grouped.is_none());
        let table = stopped.table();
        assert!(table.caption.as_deref().unwrap_or("").contains("stopped after 3 of 6 fits"), "{table}");
        assert_eq!(table.rows[1][2], Cell::Empty, "no grouped score for a fit that never ran");
        let nothing = SplitComparison::new_until(&network, &random, &grouped, 1, |_| true).unwrap_err();
        assert!(matches!(nothing, RefineError::Interrupted { planned: 6, .. }), "{nothing}");

        // Two at a time: a learner's two fits together, the same scores as one after another.
        let together = SplitComparison::new_until(&network, &random, &grouped, 2, |fits| fits >= 2).unwrap();
        assert_eq!((together.fits(), together.models.len()), (2, 1));
        assert_eq!(together.models[0].random, stopped.models[0].random);
        assert_eq!(together.models[0].grouped, stopped.models[0].grouped);
    }
}
