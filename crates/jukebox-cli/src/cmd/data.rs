//! `jukebox data`: load the dataset and print what it holds.

use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Folder with song_properties.parquet and song_rankings.parquet (or the Kaggle CSV).
    /// Default: JUKEBOX_DATA_DIR, else the local cache, else a download of the workshop's files.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Also print summary statistics of every numeric column.
    #[arg(long)]
    pub describe: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let dataset = jukebox::data::Dataset::load(args.data_dir.as_deref())?;
    // One merge serves the summary and the statistics.
    let merged = dataset.merge()?;
    println!("{}", dataset.summary_of(&merged));
    if args.describe {
        println!("\n{}", jukebox::explore::describe(&merged.frame)?);
    }
    Ok(())
}
