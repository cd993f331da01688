//! Shared helpers for the stage-2 tests: where the sample data is, and its merged form.
#![allow(dead_code)]

use jukebox::data::{rankings_path, ChartData, Dataset, PROPERTIES_FILE};
#[allow(unused_imports)] // each test file uses some of them
pub use jukebox_testkit::{python, sample_data_dir as sample_dir};

/// The merged shared sample: 19,699 rows, 72 countries.
pub fn chart() -> ChartData {
    let dir = sample_dir();
    let rankings = rankings_path(&dir);
    Dataset::from_files(&dir.join(PROPERTIES_FILE), &rankings).unwrap().merge().unwrap()
}
