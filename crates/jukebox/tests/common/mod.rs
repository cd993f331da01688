//! Shared helpers for the stage-2 tests: where the sample data is, and its merged form.
#![allow(dead_code)]

use jukebox::data::{ChartData, Dataset, PROPERTIES_FILE, RANKINGS_FILE};
#[allow(unused_imports)] // each test file uses some of them
pub use jukebox_testkit::{python, sample_data_dir as sample_dir};

/// The shared folder names the rankings file `song_rankings_sample.parquet`.
const SAMPLE_RANKINGS_FILE: &str = "song_rankings_sample.parquet";

/// The merged shared sample: 19,699 rows, 72 countries.
pub fn chart() -> ChartData {
    let dir = sample_dir();
    let rankings = [RANKINGS_FILE, SAMPLE_RANKINGS_FILE]
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file())
        .expect("no rankings file");
    Dataset::from_files(&dir.join(PROPERTIES_FILE), &rankings).unwrap().merge().unwrap()
}
