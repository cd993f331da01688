//! What a sweep shows while it runs.
//!
//! A sweep can take minutes, so it says what it is doing: first the expected time
//! ([`super::plan`]), then one line per finished run and, for each run in flight, its epoch and
//! batch. In Jupyter (through the Rust kernel's relay, [`LiveDisplay`]) that is one output redrawn
//! in place, with a progress bar per run in flight, and left at the end with the finished runs in
//! grid order; in a terminal or a log it is plain lines, each run's as it finishes. The sweep's
//! workers report to [`SweepDisplay`] through the thread that collects the runs, so only that
//! thread draws.

use std::collections::BTreeMap;

use jukebox_nn::EpochProgress;

use super::plan::duration;
use super::runs::{settings, Run, Sweep};
use crate::display::LiveDisplay;
use crate::train::NeuralNetwork;

/// A sweep's progress: the expected time, a line per finished run, and the runs in flight. In
/// Jupyter (the kernel's relay) one output redrawn in place, left with the finished runs in grid
/// order; elsewhere lines, each run's as it finishes.
pub(super) struct SweepDisplay {
    planned: usize,
    header: String,
    live: Option<LiveDisplay>,
    /// (run number, line) of the finished runs, in the order they finished.
    finished: Vec<(usize, String)>,
    /// Runs in flight: settings and the latest progress.
    in_flight: BTreeMap<usize, (String, Option<EpochProgress>)>,
}

impl SweepDisplay {
    pub(super) fn new(planned: usize, header: String) -> SweepDisplay {
        let live = LiveDisplay::start();
        if live.is_none() {
            println!("{header}");
        }
        let mut display = SweepDisplay { planned, header, live, finished: Vec::new(), in_flight: BTreeMap::new() };
        display.draw(None);
        display
    }

    pub(super) fn started(&mut self, i: usize, learner: &NeuralNetwork) {
        self.in_flight.insert(i + 1, (settings(learner), None));
        self.draw(None);
    }

    pub(super) fn progress(&mut self, i: usize, p: &EpochProgress) {
        if let Some((_, latest)) = self.in_flight.get_mut(&(i + 1)) {
            // Keep the validation scores of the last finished epoch on the mid-epoch updates.
            let mut p = p.clone();
            if let (None, Some(previous)) = (p.val_accuracy, latest.as_ref()) {
                (p.val_loss, p.val_accuracy) = (previous.val_loss, previous.val_accuracy);
            }
            *latest = Some(p);
        }
        if self.live.as_ref().is_some_and(LiveDisplay::redraw_due) {
            self.draw(None);
        }
    }

    pub(super) fn finished(&mut self, run: &Run) {
        self.in_flight.remove(&run.number);
        let stopped = if run.model.history.stopped_early {
            format!("stopped at epoch {}, kept epoch {}; ", run.epochs_run(), run.epoch_kept())
        } else if run.model.history.best_epoch.is_some() {
            format!("kept epoch {}; ", run.epoch_kept())
        } else {
            String::new()
        };
        let line = format!(
            "run {}/{}: {}, validation accuracy {:.4} ({stopped}{:.1} s)",
            run.number,
            self.planned,
            run.settings(),
            run.validation.accuracy(),
            run.model.training_seconds
        );
        if self.live.is_none() {
            println!("{line}");
        }
        self.finished.push((run.number, line));
        self.draw(None);
    }

    pub(super) fn dropped(&mut self, i: usize) {
        self.in_flight.remove(&(i + 1));
        self.draw(None);
    }

    /// The last word: the finished runs in grid order and how long the sweep took.
    pub(super) fn close(&mut self, sweep: &Sweep) {
        let mut summary = format!(
            "{} in {}, {} at a time (expected at most {})",
            sweep.status(),
            duration(sweep.seconds),
            sweep.workers,
            duration(sweep.expected_seconds)
        );
        if !sweep.is_complete() {
            summary = sweep.status();
        }
        if self.live.is_none() {
            println!("{summary}");
            return;
        }
        self.finished.sort_by_key(|(number, _)| *number);
        self.draw(Some(summary));
    }

    /// Redraws the live output (a no-op without one).
    fn draw(&mut self, closing: Option<String>) {
        let Some(live) = self.live.as_mut() else { return };
        let mut lines = vec![self.header.clone()];
        lines.extend(self.finished.iter().map(|(_, line)| line.clone()));
        lines.extend(closing);
        let done = lines.len();
        let mut bars = String::new();
        for (number, (settings, latest)) in &self.in_flight {
            let state = match latest {
                None => "starting".to_string(),
                Some(p) => {
                    let scores = match p.val_accuracy {
                        Some(accuracy) => format!(", val_accuracy {accuracy:.4}"),
                        None => String::new(),
                    };
                    format!("epoch {}/{}, batch {}/{}{scores}", p.epoch, p.epochs, p.batch, p.batches)
                }
            };
            let line = format!("run {number}/{}: {settings}: {state}", self.planned);
            let (value, max) =
                latest.as_ref().map_or((0, 1), |p| ((p.epoch - 1) * p.batches + p.batch, p.epochs * p.batches));
            bars.push_str(&format!(
                "<div style=\"display:flex;align-items:center;gap:8px\"><progress max=\"{max}\" value=\"{value}\" \
                 style=\"width:160px\"></progress><span>{}</span></div>",
                crate::display::escape(&line)
            ));
            lines.push(line);
        }
        let text = lines.join("\n");
        let html = format!(
            "<pre style=\"margin:0;font-size:12px;line-height:1.3\">{}</pre>{bars}",
            crate::display::escape(&lines[..done].join("\n"))
        );
        live.show(&text, &html);
    }
}
