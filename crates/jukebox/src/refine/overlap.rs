//! How many test songs the model already met in training.
//!
//! A song stays in a chart for many days, so a random split puts rows of the same song in train
//! and test, and a model that remembers songs scores well without having learned anything about
//! countries. [`SongOverlap`] counts, for the validation and test rows, the songs (and rows) that
//! also have rows in train: near zero on a grouped split, most of them on a random one.

use std::collections::HashSet;

use polars::prelude::*;

use super::error::{RefineError, Result};
use crate::display::{Cell, Table};
use crate::prepare::{PreparedData, SONG};

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
