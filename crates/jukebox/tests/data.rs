//! Loading, checking and merging the chart data, on the shared sample and on files derived from it.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;

use jukebox::data::{ChartData, DataError, DataLocator, Dataset, SongTable, PROPERTIES_FILE, RANKINGS_FILE};
use jukebox_testkit::sample_data_dir as sample_dir;
use polars::prelude::*;

fn write_parquet(path: &Path, mut frame: DataFrame) {
    ParquetWriter::new(std::fs::File::create(path).unwrap()).finish(&mut frame).unwrap();
}

fn copy_sample_with(dir: &Path, edit_properties: impl FnOnce(LazyFrame) -> LazyFrame) {
    let sample = Dataset::from_dir(&sample_dir()).unwrap();
    write_parquet(&dir.join(PROPERTIES_FILE), edit_properties(sample.properties.lazy()).collect().unwrap());
    write_parquet(&dir.join(RANKINGS_FILE), sample.rankings);
}

#[test]
fn sample_merges_into_19699_rows_with_72_countries() {
    let data = Dataset::from_dir(&sample_dir()).unwrap();
    assert_eq!(data.properties.height(), 14_245);
    assert_eq!(data.rankings.height(), 19_999);
    let merged = data.merge().unwrap();
    assert_eq!(merged.rows(), 19_699, "the 300 global-chart rows (null country) are dropped");
    assert_eq!(merged.countries.len(), 72);
    assert!(!merged.has_dates(), "the sample has no snapshot_date");
    // The properties' own name/artists/date columns are not duplicated by the join.
    let names: Vec<String> = merged.frame.get_column_names().iter().map(|c| c.to_string()).collect();
    assert!(!names.iter().any(|c| c.ends_with("_right")), "{names:?}");
    assert!(!names.contains(&"event_timestamp".to_string()));
    for feature in jukebox::data::FEATURES {
        assert_eq!(merged.frame.column(feature).unwrap().null_count(), 0, "{feature}");
    }
    // The song table alone is the same table, read without the chart entries.
    let songs = SongTable::from_dir(&sample_dir()).unwrap();
    assert!(songs.properties.equals_missing(&data.properties), "SongTable and Dataset read different songs");
}

#[test]
fn country_mapping_is_first_seen_order_and_round_trips() {
    let merged = Dataset::from_dir(&sample_dir()).unwrap().merge().unwrap();
    let countries = merged.frame.column("country").unwrap().str().unwrap().clone();
    let first = countries.get(0).unwrap();
    assert_eq!(merged.countries.index_of(first), Some(0), "the first row's country is number 0");
    for (i, code) in merged.countries.codes().iter().enumerate() {
        assert_eq!(merged.countries.index_of(code), Some(i as u32));
        assert_eq!(merged.countries.code_of(i as u32), Some(code.as_str()));
    }
    assert_eq!(merged.countries.code_of(72), None);
    assert_eq!(merged.countries.index_of("XX"), None);
    // The country_index column agrees with the mapping on every row.
    let check = merged
        .frame
        .clone()
        .lazy()
        .select([col("country_index").max().alias("max"), col("country_index").null_count().alias("nulls")])
        .collect()
        .unwrap();
    assert_eq!(check.column("max").unwrap().get(0).unwrap().extract::<u32>(), Some(71));
    assert_eq!(check.column("nulls").unwrap().get(0).unwrap().extract::<u32>(), Some(0));
    let indices = merged.frame.column("country_index").unwrap().u32().unwrap().clone();
    for (code, index) in countries.iter().zip(indices.iter()).step_by(97) {
        assert_eq!(merged.countries.code_of(index.unwrap()), code);
    }
}

#[test]
fn older_schema_with_snapshot_date_in_properties_loads_the_same() {
    let dir = tempfile::tempdir().unwrap();
    copy_sample_with(dir.path(), |p| p.rename(["event_timestamp"], ["snapshot_date"], true));
    let merged = Dataset::from_dir(dir.path()).unwrap().merge().unwrap();
    assert_eq!(merged.rows(), 19_699);
    assert!(!merged.frame.schema().contains("snapshot_date"), "a property date is not a chart date");
}

#[test]
fn kaggle_csv_is_split_into_the_two_tables() {
    let sample = Dataset::from_dir(&sample_dir()).unwrap();
    // Build a Kaggle-shaped CSV from the sample: one row per chart entry with features inline,
    // a chart date, and an empty country for the global chart.
    let properties = sample.properties.clone().lazy().drop(cols(["name", "artists", "event_timestamp"]));
    let mut raw = sample
        .rankings
        .clone()
        .lazy()
        .with_row_index("row", None)
        .join(properties, [col("spotify_id")], [col("spotify_id")], JoinArgs::new(JoinType::Left))
        .with_columns([
            (lit("2024-05-") + (col("row") % lit(6) + lit(10)).cast(DataType::String)).alias("snapshot_date"),
            col("country").fill_null(lit("")),
            lit("An album").alias("album_name"),
            lit("2024-01-01").alias("album_release_date"),
        ])
        .drop(cols(["row"]))
        .collect()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join(jukebox::data::KAGGLE_CSV_FILE);
    CsvWriter::new(std::fs::File::create(&csv).unwrap()).finish(&mut raw).unwrap();

    let split = Dataset::from_dir(dir.path()).unwrap();
    assert_eq!(split.rankings.height(), 19_999);
    // The CSV only holds songs that charted: one properties row per distinct charting song.
    let charting_songs = sample.rankings.column("spotify_id").unwrap().n_unique().unwrap();
    assert_eq!(split.properties.height(), charting_songs, "one row per song");
    assert!(split.properties.schema().contains("event_timestamp"));
    assert_eq!(split.rankings.column("country").unwrap().null_count(), 300, "empty country -> null");
    let merged = split.merge().unwrap();
    assert_eq!(merged.rows(), 19_699);
    assert!(merged.has_dates());
    let top = jukebox::explore::top_songs(&merged.frame, 3, "2024-05-10", "2024-05-11").unwrap();
    assert_eq!(top.height(), 3);
    assert!(top.caption.unwrap().contains("2024-05-10 to 2024-05-11"));
}

fn error_text<T>(result: Result<T, DataError>) -> String {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

/// The error of both ways to load a folder (read both tables, or one lazy query over the files):
/// they must agree.
fn error_of_both(dir: &Path) -> String {
    let read = error_text(Dataset::from_dir(dir));
    assert_eq!(read, error_text(ChartData::from_dir(dir)), "Dataset::from_dir and ChartData::from_dir disagree");
    read
}

#[test]
fn missing_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (missing, rankings) = (dir.path().join("nope.parquet"), dir.path().join("r.parquet"));
    let message = error_text(Dataset::from_files(&missing, &rankings));
    assert!(message.contains("data file not found") && message.contains("nope.parquet"), "{message}");
    assert_eq!(message, error_text(ChartData::from_files(&missing, &rankings)));
}

#[test]
fn missing_column_is_named_with_its_file() {
    let dir = tempfile::tempdir().unwrap();
    copy_sample_with(dir.path(), |p| p.drop(cols(["danceability"])));
    let message = error_of_both(dir.path());
    assert_eq!(message, error_text(SongTable::from_dir(dir.path())), "the song table alone is checked the same way");
    assert!(message.contains(PROPERTIES_FILE), "{message}");
    assert!(message.contains("required column `danceability` is missing"), "{message}");
}

#[test]
fn wrong_type_is_named_with_expected_and_found() {
    let dir = tempfile::tempdir().unwrap();
    copy_sample_with(dir.path(), |p| p.with_column(col("energy").cast(DataType::String)));
    let message = error_of_both(dir.path());
    assert!(message.contains("column `energy` has type str, expected a number"), "{message}");
}

#[test]
fn a_feature_null_in_every_song_is_named_not_an_empty_table() {
    let dir = tempfile::tempdir().unwrap();
    copy_sample_with(dir.path(), |p| p.with_column(lit(NULL).cast(DataType::Float64).alias("tempo")));
    let message = error_of_both(dir.path());
    assert!(message.contains(PROPERTIES_FILE) && message.contains("column `tempo` is null in all"), "{message}");
}

#[test]
fn corrupt_parquet_is_reported_as_unreadable() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(PROPERTIES_FILE), b"PAR1 this is not parquet").unwrap();
    std::fs::copy(jukebox::data::rankings_path(&sample_dir()), dir.path().join(RANKINGS_FILE)).unwrap();
    let message = error_text(Dataset::from_dir(dir.path()));
    assert!(message.contains("not a readable parquet file") && message.contains(PROPERTIES_FILE), "{message}");
    let message = error_text(ChartData::from_dir(dir.path()));
    assert!(message.contains("not a readable parquet file") && message.contains(PROPERTIES_FILE), "{message}");
}

#[test]
fn one_query_over_the_files_equals_reading_then_merging() {
    let sample = sample_dir();
    let merged = Dataset::from_dir(&sample).unwrap().merge().unwrap();
    let loaded = ChartData::from_dir(&sample).unwrap();
    assert!(loaded.frame.equals_missing(&merged.frame), "{:?}\n{:?}", loaded.frame.head(Some(3)), merged.frame);
    assert_eq!(loaded.countries, merged.countries);

    // Songs missing from song_properties and songs with a null feature: their chart entries are
    // dropped the same way on both paths.
    let dir = tempfile::tempdir().unwrap();
    copy_sample_with(dir.path(), |p| {
        p.slice(500, u32::MAX).with_column(
            when(col("danceability").gt(lit(0.8))).then(lit(NULL)).otherwise(col("danceability")).alias("danceability"),
        )
    });
    let merged = Dataset::from_dir(dir.path()).unwrap().merge().unwrap();
    let loaded = ChartData::from_dir(dir.path()).unwrap();
    assert!(merged.rows() < 19_000, "{} rows", merged.rows());
    assert!(loaded.frame.equals_missing(&merged.frame));
    assert_eq!(loaded.countries, merged.countries);
    assert_eq!(loaded.frame.column("danceability").unwrap().null_count(), 0);
}

/// A one-shot HTTP server on loopback that answers every request with `body`, optionally
/// claiming a longer Content-Length and closing early (a cut-off download).
fn serve(body: Vec<u8>, claimed_len: usize, requests: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let mut stream = stream.unwrap();
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {claimed_len}\r\nConnection: close\r\n\r\n");
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    url
}

fn locator(cache: &Path, base_url: String) -> DataLocator {
    DataLocator { explicit_dir: None, env_dir: None, cache_dir: cache.to_path_buf(), base_url }
}

#[test]
fn download_fills_the_cache_then_the_cache_is_used() {
    let bytes = std::fs::read(sample_dir().join(PROPERTIES_FILE)).unwrap();
    let url = serve(bytes.clone(), bytes.len(), 2);
    let cache = tempfile::tempdir().unwrap();
    let dir = locator(cache.path(), url.clone()).resolve().unwrap();
    assert_eq!(dir, cache.path());
    assert_eq!(std::fs::read(cache.path().join(PROPERTIES_FILE)).unwrap(), bytes);
    assert!(cache.path().join(RANKINGS_FILE).is_file());
    // The server is gone now (it answered two requests); the cache alone must suffice.
    assert_eq!(locator(cache.path(), url).resolve().unwrap(), cache.path());
}

#[test]
fn a_cut_off_download_leaves_nothing_behind() {
    let url = serve(vec![7u8; 1000], 5000, 1);
    let cache = tempfile::tempdir().unwrap();
    let err =
        jukebox::data::download_atomically(&format!("{url}/x.parquet"), &cache.path().join("x.parquet")).unwrap_err();
    assert!(err.to_string().contains("x.parquet"), "{err}");
    let left: Vec<_> = std::fs::read_dir(cache.path()).unwrap().collect();
    assert!(left.is_empty(), "no partial file may remain: {left:?}");
}

#[test]
fn no_network_and_no_data_says_how_to_point_at_data() {
    // Port 9 on loopback: nothing listens, the connection is refused like an offline machine.
    let cache = tempfile::tempdir().unwrap();
    let err = locator(cache.path(), "http://127.0.0.1:9".into()).resolve().unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, DataError::NoData { .. }), "{message}");
    assert!(message.contains("JUKEBOX_DATA_DIR") && message.contains("song_properties.parquet"), "{message}");
    assert!(std::fs::read_dir(cache.path()).map(|d| d.count()).unwrap_or(0) == 0);
}

#[test]
fn an_explicit_folder_without_data_is_an_error_not_a_fallback() {
    let empty = tempfile::tempdir().unwrap();
    let mut loc = locator(Path::new("/nonexistent-cache"), "http://127.0.0.1:9".into());
    loc.explicit_dir = Some(empty.path().to_path_buf());
    let message = loc.resolve().unwrap_err().to_string();
    assert!(message.contains(&empty.path().join(PROPERTIES_FILE).display().to_string()), "{message}");
}

#[test]
fn download_progress_reads_as_megabytes_of_the_whole_with_a_bar() {
    use jukebox::data::DownloadProgress;
    let (text, html) = DownloadProgress::render("song_rankings.parquet", 3_200_000, Some(12_000_000), 2.0);
    assert_eq!(text, "Downloading song_rankings.parquet: 3.2 MB of 12.0 MB (1.6 MB/s)");
    assert!(html.contains("<progress max=\"12000000\" value=\"3200000\""), "{html}");
    // Without a Content-Length there is no whole to show a bar of.
    let (text, html) = DownloadProgress::render("x.parquet", 500_000, None, 0.5);
    assert_eq!(text, "Downloading x.parquet: 0.5 MB (1.0 MB/s)");
    assert!(!html.contains("<progress"), "{html}");
}
