//! The whole refinement stage in one call: what `jukebox refine` runs.
//!
//! Notebook 5 walks through refining cell by cell; [`Refinement::run`] does the same steps in
//! order, for the terminal and for scripts:
//!
//! 1. load the chart data and prepare the split the sweep runs on;
//! 2. unless skipped, show how many validation and test songs a model meets again in training on
//!    a random and on a grouped split ([`SongOverlap`]), and the same learners scored on both
//!    ([`SplitComparison`]);
//! 3. sweep the grid and show every run and the one the selection rule chose ([`Sweep`]);
//! 4. with a model repository, append the runs to its run log ([`RunLog`]), export the chosen run
//!    as the next version folder and check that ONNX Runtime agrees with the trained network.
//!
//! An interrupt keeps what finished (the tables shown so far) and stops there: a choice among
//! some of the runs is neither recorded nor exported. Registering the exported folder is the
//! save stage's job (`jukebox refine --register` hands it [`Refined::description`]).

use std::path::PathBuf;

use super::comparison::SplitComparison;
use super::error::{RefineError, Result};
use super::grid::Grid;
use super::log::RunLog;
use super::overlap::SongOverlap;
use super::runs::Sweep;
use crate::data::{ChartData, FEATURES};
use crate::export::{export, ExportedModel};
use crate::prepare::{PreparedData, SplitOptions, SplitStrategy};
use crate::train::NeuralNetwork;

/// The refinement stage's settings (the flags of `jukebox refine`).
#[derive(Clone, Debug)]
pub struct Refinement {
    /// Folder holding the chart data; `None`: `JUKEBOX_DATA_DIR`, the cache, or a download.
    pub data_dir: Option<PathBuf>,
    /// The settings to sweep.
    pub grid: Grid,
    /// The split the sweep trains on and is scored on (grouped: whole songs per split).
    pub split: SplitStrategy,
    /// Seeds the split, the initial weights and the shuffling of every run.
    pub seed: u64,
    /// Epochs of the workshop network in the random-vs-grouped comparison; `None` skips the
    /// comparison (it also fits the two baselines twice).
    pub compare_epochs: Option<usize>,
    /// Model repository: the runs are appended to its `runs.jsonl` and the chosen run is exported
    /// into it. `None`: nothing is written.
    pub model_repository: Option<PathBuf>,
    /// Version folder the chosen run is exported as.
    pub version_folder: u64,
}

/// What a refinement leaves: the data the sweep ran on, the sweep, and the exported chosen run.
#[derive(Clone)]
pub struct Refined {
    pub data: PreparedData,
    pub sweep: Sweep,
    /// The chosen run's version folder, when a model repository was given.
    pub exported: Option<ExportedModel>,
}

impl Refined {
    /// What the registry records about the chosen run: which run, its settings, and how it was
    /// chosen.
    pub fn description(&self) -> String {
        let best = self.sweep.best();
        format!(
            "sweep run {} ({}), chosen by validation accuracy on the {} split",
            best.number,
            best.settings(),
            self.sweep.split
        )
    }
}

impl Refinement {
    /// Runs the stage (see the module doc), handing each table and line to `show` as soon as it
    /// is ready (the sweep shows its own progress as it trains).
    pub fn run(&self, show: &mut dyn FnMut(String)) -> Result<Refined> {
        let chart = ChartData::load(self.data_dir.as_deref())?;
        let options = |strategy| SplitOptions { strategy, ..SplitOptions::with_seed(self.seed) };
        let data = PreparedData::new(&chart, &FEATURES, &options(self.split))?;
        if let Some(epochs) = self.compare_epochs {
            self.compare_splits(&chart, &data, epochs, show)?;
        }

        show(self.grid.table().to_string());
        let sweep = self.grid.sweep(&data, self.seed)?;
        show(sweep.table().to_string());
        if !sweep.is_complete() {
            return Err(RefineError::Stopped(format!("{}: nothing recorded, exported or registered", sweep.status())));
        }
        let best = sweep.best();
        show(format!("chosen: run {} ({}) by {}", best.number, best.settings(), Sweep::SELECTION_RULE));
        show(format!("its test scores: accuracy {:.4}, f1 (macro) {:.4}", best.test.accuracy(), best.test.f1_macro()));

        let Some(model_dir) = &self.model_repository else { return Ok(Refined { data, sweep, exported: None }) };
        let log = RunLog::beside(model_dir);
        log.append(&sweep.records())?;
        show(format!("recorded {} runs in {}", sweep.runs.len(), log.path.display()));
        let exported = export(&best.model, &data, &best.metrics(&data), model_dir, self.version_folder)?;
        let parity = exported.evaluate(&data)?.parity(&best.model, &data);
        if !parity.holds(1e-5) {
            return Err(RefineError::Parity(format!("{parity:?}")));
        }
        show(format!("wrote {} (ONNX Runtime agrees with the network)", exported.model_path.display()));
        Ok(Refined { data, sweep, exported: Some(exported) })
    }

    /// Step 2: the songs each split shares with training, and the same learners on a random and
    /// on a grouped split. An interrupted comparison stops the stage.
    fn compare_splits(
        &self,
        chart: &ChartData,
        data: &PreparedData,
        epochs: usize,
        show: &mut dyn FnMut(String),
    ) -> Result<()> {
        let random = PreparedData::new(chart, &FEATURES, &SplitOptions::with_seed(self.seed))?;
        let grouped = match self.split {
            SplitStrategy::Grouped => data.clone(),
            _ => PreparedData::new(
                chart,
                &FEATURES,
                &SplitOptions { strategy: SplitStrategy::Grouped, ..SplitOptions::with_seed(self.seed) },
            )?,
        };
        show(SongOverlap::of(&random)?.table().to_string());
        show(SongOverlap::of(&grouped)?.table().to_string());
        show(format!("training the network ({epochs} epochs) and the baselines on both splits ..."));
        // The grid's early stopping and row budget (the quick and class grids set both) keep the
        // comparison's network as quick as a run of the sweep on the full data.
        let network = NeuralNetwork {
            patience: self.grid.patience,
            max_train_rows: self.grid.max_train_rows,
            ..NeuralNetwork::new(epochs, 32, self.seed)
        };
        let comparison = SplitComparison::new(&network, &random, &grouped)?;
        show(comparison.table().to_string());
        // Ctrl-C stops the comparison with the finished fits (shown above); the stage stops there.
        if !comparison.is_complete() {
            return Err(RefineError::Stopped(comparison.status()));
        }
        Ok(())
    }
}
