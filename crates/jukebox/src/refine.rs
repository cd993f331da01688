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
//! **Every core.** The runs of a sweep are independent, so they train side by side, one per
//! core ([`workers`]; `JUKEBOX_SWEEP_WORKERS=1` trains them one after another). Each run is
//! single-threaded (the network's matrix products run on the calling thread) and seeded, and
//! the runs share nothing they write, so the table is the same whatever the number of workers
//! and whichever run finishes first: runs are numbered in grid order and listed in that order.
//! They share what they read: one prepared split, and one draw of the training rows.
//! [`SplitComparison`] likewise fits each learner on its two splits at once.
//!
//! **Budgets.** A grid can stop each run early (`patience`: epochs without a lower validation
//! loss, the best epoch's weights kept) and give it a row budget (`max_train_rows`: a stratified
//! subsample of the training rows, the same for every run; see [`crate::train::rows`]). Before the
//! first run starts, the sweep measures how fast each network of the grid trains here and prints
//! the time the whole grid takes at most (no run stopping early), so a participant knows whether
//! to wait or to pick a smaller grid.
//!
//! An interrupt (Ctrl-C, a notebook's stop button) keeps what finished: a sweep stops after the
//! run in progress is dropped and returns the finished runs, its table saying "stopped after 3 of
//! 8 runs" ([`Sweep::is_complete`]); [`SplitComparison`] likewise keeps the models it finished.
//! So `let sweep: Sweep = grid.sweep(&data, seed)?;` in a notebook holds the finished runs, and
//! only an interrupt before the first run finished is an error ([`RefineError::Interrupted`]).
//!
//! [`SplitStrategy::Grouped`]: crate::prepare::SplitStrategy::Grouped
//!
//! **Where things are.** `grid` describes the runs ([`Grid`]), `sweep` trains them (with `plan`
//! saying how long it will take and `progress` showing it), `runs` holds the result and the
//! selection rule ([`Sweep`], [`Run`]), `log` keeps the run log, `overlap` and `comparison`
//! measure what memorising songs is worth, and `pipeline` strings the whole stage together
//! ([`Refinement::run`], what `jukebox refine` runs). Everything public is re-exported here:
//! `use jukebox::refine::{Grid, Sweep, ...}`.

mod comparison;
mod error;
mod grid;
mod log;
mod overlap;
mod pipeline;
mod plan;
mod progress;
mod runs;
mod sweep;

pub use comparison::{SplitComparison, SplitScores};
pub use error::{RefineError, Result};
pub use grid::{Grid, CLASS_GRID, QUICK_GRID};
pub use log::{RunLog, RunRecord};
pub use overlap::SongOverlap;
pub use pipeline::{Refined, Refinement};
pub use runs::{Run, Sweep};
pub use sweep::{workers, WORKERS_ENV};
