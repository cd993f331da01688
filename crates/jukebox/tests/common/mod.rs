//! Shared helpers for the stage-2 tests: where the sample data is, and its merged form.
#![allow(dead_code)]

use jukebox::data::{ChartData, Dataset};
#[allow(unused_imports)] // each test file uses some of them
pub use jukebox_testkit::{python, sample_data_dir as sample_dir};

/// The merged shared sample: 19,699 rows, 72 countries.
pub fn chart() -> ChartData {
    Dataset::from_dir(&sample_dir()).unwrap().merge().unwrap()
}
