//! Shared helpers for the stage-2 tests: where the sample data is, and its merged form.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use jukebox::data::{ChartData, Dataset, PROPERTIES_FILE, RANKINGS_FILE};

/// The shared folder names the rankings file `song_rankings_sample.parquet`.
const SAMPLE_RANKINGS_FILE: &str = "song_rankings_sample.parquet";

/// The shared sample data (never copied into the repo): `JUKEBOX_TEST_DATA` or ../shared/data.
pub fn sample_dir() -> PathBuf {
    let dir = std::env::var_os("JUKEBOX_TEST_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    assert!(dir.join(PROPERTIES_FILE).is_file(), "sample data not found in {}: set JUKEBOX_TEST_DATA", dir.display());
    dir
}

/// The merged shared sample: 19,699 rows, 72 countries.
pub fn chart() -> ChartData {
    let dir = sample_dir();
    let rankings = [RANKINGS_FILE, SAMPLE_RANKINGS_FILE].iter().map(|f| dir.join(f)).find(|p| p.is_file()).expect("no rankings file");
    Dataset::from_files(&dir.join(PROPERTIES_FILE), &rankings).unwrap().merge().unwrap()
}

/// The workspace venv's Python (or `JUKEBOX_PYTHON`).
pub fn python() -> PathBuf {
    let python = std::env::var_os("JUKEBOX_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python"));
    assert!(python.exists(), "Python {} not found: create .venv or set JUKEBOX_PYTHON", python.display());
    python
}
