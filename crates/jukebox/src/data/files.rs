//! The data files: their names as the upstream workshop publishes them, where it publishes them,
//! and which rankings file of a folder is read.

use std::path::{Path, PathBuf};

/// File names of the two tables, as the upstream workshop publishes them.
pub const PROPERTIES_FILE: &str = "song_properties.parquet";
pub const RANKINGS_FILE: &str = "song_rankings.parquet";
/// The smaller rankings sample the upstream workshop also publishes; used when the full file is absent.
pub const RANKINGS_SAMPLE_FILE: &str = "song_rankings_sample.parquet";
/// The raw Kaggle export ("Top Spotify Songs in 73 Countries"), one row per chart entry.
pub const KAGGLE_CSV_FILE: &str = "universal_top_spotify_songs.csv";
/// Where the upstream workshop publishes the two parquet files.
pub const UPSTREAM_BASE_URL: &str = "https://github.com/rhoai-mlops/jukebox/raw/refs/heads/main/99-data_prep";

/// The rankings file in `dir`: the full `song_rankings.parquet`, else the sample.
pub fn rankings_path(dir: &Path) -> PathBuf {
    let full = dir.join(RANKINGS_FILE);
    let sample = dir.join(RANKINGS_SAMPLE_FILE);
    if !full.exists() && sample.exists() {
        sample
    } else {
        full
    }
}
