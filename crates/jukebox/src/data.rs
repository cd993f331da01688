//! Stage 1: get the Spotify chart data and shape it into one table.
//!
//! The workshop uses two tables, published as parquet files next to the upstream workshop:
//!
//! - **song_properties**: one row per song (`spotify_id`) with its audio features
//!   (danceability, energy, loudness, ...);
//! - **song_rankings**: one row per chart entry: a song's daily position in a country's Top-50
//!   (`country` is null for the global chart).
//!
//! [`DataLocator`] finds the files (an explicit folder, then `JUKEBOX_DATA_DIR`, then a local
//! cache, then a download from the upstream URLs into that cache). [`Dataset`] loads and checks
//! them (or splits the raw Kaggle CSV into the same two tables), and [`Dataset::merge`] joins them
//! into the [`ChartData`] every later stage works on, with the country codes numbered in
//! first-seen order by a [`CountryIndex`]. [`ChartData::load`] does both in one step and reads
//! only what the merged table keeps (`benches/data_pipeline.rs` measures it beside pandas).
//! [`SongTable`] is the song table alone, for looking songs up by name.
//!
//! Parts: `columns` (every column name, one constant each), `files` (the file names and where
//! they are published), `download` (an atomic download with progress), `error` ([`DataError`]).

use std::fs::File;
use std::path::{Path, PathBuf};

use polars::prelude::*;

pub mod columns;
mod download;
mod error;
mod files;
use columns::{
    ALBUM_NAME, ALBUM_RELEASE_DATE, ARTISTS, COUNTRY, COUNTRY_INDEX, DAILY_MOVEMENT, DAILY_RANK, EVENT_TIMESTAMP,
    IS_EXPLICIT, NAME, POPULARITY, SNAPSHOT_DATE, SPOTIFY_ID, TIME_SIGNATURE, WEEKLY_MOVEMENT,
};
pub use download::{download_atomically, DownloadProgress};
use error::polars_err;
pub use error::{DataError, Result};
pub use files::{
    rankings_path, KAGGLE_CSV_FILE, PROPERTIES_FILE, RANKINGS_FILE, RANKINGS_SAMPLE_FILE, UPSTREAM_BASE_URL,
};

/// The 13 audio features the model reads, in the order its inputs are declared (the model
/// folder contract's [`WORKSHOP_FEATURES`](jukebox_protocol::model_folder::WORKSHOP_FEATURES)).
pub const FEATURES: [&str; 13] = jukebox_protocol::model_folder::WORKSHOP_FEATURES;

/// The workshop's 13 features as the `Vec<String>` a notebook's `features` cell holds.
pub fn workshop_features() -> Vec<String> {
    FEATURES.iter().map(|f| f.to_string()).collect()
}

/// A notebook's text parameter for a folder: `""` (or only spaces) means "not given".
fn explicit_dir(data_dir: &str) -> Option<&Path> {
    let trimmed = data_dir.trim();
    (!trimmed.is_empty()).then(|| Path::new(trimmed))
}

/// Finds the folder that holds the chart data, in this order of precedence:
/// an explicit folder; `JUKEBOX_DATA_DIR`; the local cache (`JUKEBOX_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/jukebox/data`, else `~/.cache/jukebox/data`); a download of the upstream
/// files into that cache.
#[derive(Debug, Clone)]
pub struct DataLocator {
    pub explicit_dir: Option<PathBuf>,
    pub env_dir: Option<PathBuf>,
    pub cache_dir: PathBuf,
    pub base_url: String,
}

impl DataLocator {
    /// The locator a notebook or the CLI uses: `explicit_dir` (if any) and the environment.
    pub fn from_env(explicit_dir: Option<&Path>) -> Self {
        let env_path = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let cache_dir = env_path(jukebox_protocol::env::CACHE_DIR)
            .or_else(|| env_path("XDG_CACHE_HOME").map(|d| d.join("jukebox").join("data")))
            .or_else(|| env_path("HOME").map(|d| d.join(".cache").join("jukebox").join("data")))
            .unwrap_or_else(|| PathBuf::from(".jukebox-data"));
        DataLocator {
            explicit_dir: explicit_dir.map(Path::to_path_buf),
            env_dir: env_path(jukebox_protocol::env::DATA_DIR),
            cache_dir,
            base_url: std::env::var(jukebox_protocol::env::DATA_URL).unwrap_or_else(|_| UPSTREAM_BASE_URL.into()),
        }
    }

    /// The folder to load from, downloading into the cache when no local copy exists.
    /// An explicit folder or `JUKEBOX_DATA_DIR` is used as given: when it lacks the files, the
    /// error says so rather than silently falling back to other data.
    pub fn resolve(&self) -> Result<PathBuf> {
        if let Some(dir) = self.explicit_dir.as_ref().or(self.env_dir.as_ref()) {
            return if holds_data(dir) {
                Ok(dir.clone())
            } else {
                Err(DataError::MissingFile { path: dir.join(PROPERTIES_FILE) })
            };
        }
        if holds_data(&self.cache_dir) {
            return Ok(self.cache_dir.clone());
        }
        let download = || -> Result<()> {
            for file in [PROPERTIES_FILE, RANKINGS_FILE] {
                download_atomically(&format!("{}/{file}", self.base_url), &self.cache_dir.join(file))?;
            }
            Ok(())
        };
        match download() {
            Ok(()) => Ok(self.cache_dir.clone()),
            Err(err) => Err(DataError::NoData {
                tried: format!("no explicit folder, JUKEBOX_DATA_DIR unset, cache {}", self.cache_dir.display()),
                url: self.base_url.clone(),
                reason: match err {
                    DataError::Download { reason, .. } => reason,
                    other => other.to_string(),
                },
            }),
        }
    }
}

fn holds_data(dir: &Path) -> bool {
    (dir.join(PROPERTIES_FILE).is_file() && rankings_path(dir).is_file()) || dir.join(KAGGLE_CSV_FILE).is_file()
}

/// The kind of values a column must hold; any physical type of that kind is accepted.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Text,
    Integer,
    Number,
    Boolean,
    Date,
}

impl Kind {
    fn describe(self) -> &'static str {
        match self {
            Kind::Text => "a string",
            Kind::Integer => "an integer",
            Kind::Number => "a number",
            Kind::Boolean => "a boolean",
            Kind::Date => "a date, datetime or date string",
        }
    }
    fn accepts(self, dtype: &DataType) -> bool {
        match self {
            Kind::Text => matches!(dtype, DataType::String),
            Kind::Integer => dtype.is_integer(),
            Kind::Number => dtype.is_primitive_numeric(),
            // Some exports store booleans as 0/1 integers.
            Kind::Boolean => matches!(dtype, DataType::Boolean) || dtype.is_integer(),
            Kind::Date => matches!(dtype, DataType::Date | DataType::Datetime(..) | DataType::String),
        }
    }
}

/// song_properties' columns: the song, the model's features ([`FEATURES`]: `is_explicit` a
/// boolean, the others numbers) and `time_signature`.
const PROPERTY_COLUMNS: [(&str, Kind); 17] = {
    let mut columns = [(SPOTIFY_ID, Kind::Text); 17];
    columns[1] = (NAME, Kind::Text);
    columns[2] = (ARTISTS, Kind::Text);
    let mut i = 0;
    while i < FEATURES.len() {
        let kind = if same_name(FEATURES[i], IS_EXPLICIT) { Kind::Boolean } else { Kind::Number };
        columns[3 + i] = (FEATURES[i], kind);
        i += 1;
    }
    columns[16] = (TIME_SIGNATURE, Kind::Number);
    columns
};

/// `a == b` for the constants above (`str`'s `==` is not usable in a `const`).
const fn same_name(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

const RANKING_COLUMNS: [(&str, Kind); 8] = [
    (SPOTIFY_ID, Kind::Text),
    (NAME, Kind::Text),
    (ARTISTS, Kind::Text),
    (POPULARITY, Kind::Integer),
    (DAILY_RANK, Kind::Integer),
    (DAILY_MOVEMENT, Kind::Integer),
    (WEEKLY_MOVEMENT, Kind::Integer),
    (COUNTRY, Kind::Text),
];

/// Ranking columns the full upstream file has and the sample lacks.
const OPTIONAL_RANKING_COLUMNS: [(&str, Kind); 3] =
    [(SNAPSHOT_DATE, Kind::Date), (ALBUM_NAME, Kind::Text), (ALBUM_RELEASE_DATE, Kind::Date)];

/// Older copies of song_properties call the first-seen date `snapshot_date`.
const PROPERTY_DATE_COLUMNS: [&str; 2] = [EVENT_TIMESTAMP, SNAPSHOT_DATE];

/// Columns of song_properties the merge leaves out: names and artists (the chart entries carry
/// their own) and the dates above.
fn unused_property_column(name: &str) -> bool {
    [NAME, ARTISTS].contains(&name) || PROPERTY_DATE_COLUMNS.contains(&name)
}

fn check_columns(df: &DataFrame, file: &Path, required: &[(&str, Kind)]) -> Result<()> {
    check_schema(df.schema(), file, required)
}

fn check_schema(schema: &Schema, file: &Path, required: &[(&str, Kind)]) -> Result<()> {
    for &(column, kind) in required {
        match schema.get(column) {
            None => {
                return Err(DataError::MissingColumn {
                    file: file.to_path_buf(),
                    column: column.into(),
                    present: schema.iter_names().map(|c| c.as_str()).collect::<Vec<_>>().join(", "),
                })
            }
            Some(dtype) if !kind.accepts(dtype) => {
                return Err(DataError::WrongType {
                    file: file.to_path_buf(),
                    column: column.into(),
                    expected: kind.describe(),
                    found: dtype.to_string(),
                })
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// The columns a rankings file must have right: the required ones and the optional ones it has.
fn ranking_checks(schema: &Schema) -> Vec<(&'static str, Kind)> {
    RANKING_COLUMNS.iter().chain(OPTIONAL_RANKING_COLUMNS.iter().filter(|(c, _)| schema.contains(c))).copied().collect()
}

fn unreadable_parquet(path: &Path) -> impl Fn(PolarsError) -> DataError + '_ {
    move |e| DataError::Unreadable { file: path.to_path_buf(), format: "parquet", reason: e.to_string() }
}

fn read_parquet(path: &Path) -> Result<DataFrame> {
    read_parquet_checked(path, |_| Ok(None))
}

/// Reads a parquet file after `project` has seen its schema (read from the footer alone): it
/// checks the columns and names those to read, `None` for all. Unread columns are never decoded.
fn read_parquet_checked(
    path: &Path,
    project: impl FnOnce(&Schema) -> Result<Option<Vec<String>>>,
) -> Result<DataFrame> {
    let file = File::open(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => DataError::MissingFile { path: path.to_path_buf() },
        _ => DataError::Io { path: path.to_path_buf(), source },
    })?;
    let mut reader = ParquetReader::new(file);
    let schema = Schema::from_arrow_schema(&*reader.schema().map_err(unreadable_parquet(path))?);
    reader.with_columns(project(&schema)?).finish().map_err(unreadable_parquet(path))
}

/// Refuses song properties in which a feature column is null in every row: the merge drops rows
/// with a null feature, so it would leave no row and later stages would only say "empty".
fn check_no_empty_feature(properties: &DataFrame, file: &Path) -> Result<()> {
    let rows = properties.height();
    if rows == 0 {
        return Ok(());
    }
    for feature in FEATURES {
        if properties.column(feature).is_ok_and(|c| c.null_count() == rows) {
            return Err(DataError::EmptyFeature { file: file.to_path_buf(), column: feature.to_string(), rows });
        }
    }
    Ok(())
}

/// The merge of [`Dataset::merge`] as one lazy query. Each table's nulls are dropped *before* the
/// join: dropping them after it would copy every column of the 1.1 M joined rows once more. Of
/// song_properties only `spotify_id` and the numeric columns are kept (its name, artists and dates
/// would duplicate the chart entries').
fn merge_plan(
    properties: LazyFrame,
    properties_schema: &Schema,
    rankings: LazyFrame,
    rankings_schema: &Schema,
) -> LazyFrame {
    let drop_from_properties: Vec<String> =
        properties_schema.iter_names().filter(|c| unused_property_column(c)).map(|c| c.to_string()).collect();
    let properties = properties.drop(cols(drop_from_properties)).drop_nulls(Some(cols(FEATURES))).with_columns(
        FEATURES.iter().chain([TIME_SIGNATURE].iter()).map(|c| col(*c).cast(DataType::Float64)).collect::<Vec<_>>(),
    );
    let mut rankings = rankings.drop_nulls(Some(cols(RANKING_COLUMNS.map(|(c, _)| c))));
    if let Some(dtype) = rankings_schema.get(SNAPSHOT_DATE) {
        rankings = rankings.with_column(as_date(SNAPSHOT_DATE, dtype).alias(SNAPSHOT_DATE));
    }
    // A left join keeps the chart entries in their order and, when each song has one row of
    // properties, leaves the entries' own columns uncopied.
    rankings.join(
        properties,
        [col(SPOTIFY_ID)],
        [col(SPOTIFY_ID)],
        JoinArgs { maintain_order: MaintainOrderJoin::Left, ..JoinArgs::new(JoinType::Left) },
    )
}

/// Runs a [`merge_plan`], drops the chart entries whose song has no properties and numbers the
/// countries.
fn finish_merge(plan: LazyFrame, context: impl FnOnce() -> String) -> Result<ChartData> {
    let mut frame = plan.collect().map_err(|source| DataError::Polars { context: context(), source })?;
    // Both tables' nulls were dropped before the join, so a null feature now means a song missing
    // from song_properties. The shared data has none; filter (a copy of every column) only if so.
    if FEATURES.iter().any(|f| frame.column(f).is_ok_and(|c| c.null_count() > 0)) {
        frame = frame
            .lazy()
            .drop_nulls(Some(cols(FEATURES)))
            .collect()
            .map_err(polars_err("dropping chart entries of songs without properties"))?;
    }
    let countries = CountryIndex::first_seen(&frame)?;
    let frame = countries.add_index_column(frame)?;
    // The tables read and joined are freed; give them back (see crate::memory).
    crate::memory::release_freed_memory();
    Ok(ChartData { frame, countries })
}

/// An expression turning a date-like column (date, datetime or `YYYY-MM-DD` text) into a date.
fn as_date(name: &str, dtype: &DataType) -> Expr {
    match dtype {
        DataType::String => col(name).str().to_date(StrptimeOptions {
            format: Some("%Y-%m-%d".into()),
            strict: false,
            ..Default::default()
        }),
        _ => col(name).cast(DataType::Date),
    }
}

/// `load` and `load_from` of a type read by its `from_dir`: the folder found as
/// [`DataLocator::from_env`] finds it, for [`Dataset`] and [`ChartData`] alike.
macro_rules! loaders {
    ($type:ident, $what:literal) => {
        impl $type {
            #[doc = concat!("Finds the data as [`DataLocator::from_env`] does and ", $what, ".")]
            pub fn load(explicit_dir: Option<&Path>) -> Result<$type> {
                Self::from_dir(&DataLocator::from_env(explicit_dir).resolve()?)
            }

            #[doc = concat!(
                "[`", stringify!($type), "::load`] for a notebook's `data_dir` parameter: a folder, or `\"\"` for ",
                "the default (`JUKEBOX_DATA_DIR`, else the local cache, else a download into it)."
            )]
            pub fn load_from(data_dir: &str) -> Result<$type> {
                Self::load(explicit_dir(data_dir))
            }
        }
    };
}
loaders!(Dataset, "loads it");
loaders!(ChartData, "loads and merges it in one step");
loaders!(SongTable, "loads its song table");

/// The song table alone, for a stage that looks songs up by name (notebook 5's last step) and
/// needs none of the chart entries: on the full data, loading the whole [`Dataset`] for that held
/// ~1.1 M chart entries in memory beside the prepared splits.
#[derive(Clone)]
pub struct SongTable {
    /// One row per song, as [`Dataset::properties`].
    pub properties: DataFrame,
    /// Where the table was read from (a folder or the Kaggle CSV).
    pub source: PathBuf,
}

impl SongTable {
    /// `song_properties.parquet` of `dir`, checked as [`Dataset::from_files`] checks it; from a
    /// folder holding only the Kaggle CSV, the songs it lists (the CSV holds both tables at once).
    pub fn from_dir(dir: &Path) -> Result<SongTable> {
        let path = dir.join(PROPERTIES_FILE);
        if !path.exists() && dir.join(KAGGLE_CSV_FILE).exists() {
            let dataset = Dataset::from_dir(dir)?;
            return Ok(SongTable { properties: dataset.properties, source: dataset.source });
        }
        let properties = read_parquet(&path)?;
        check_columns(&properties, &path, &PROPERTY_COLUMNS)?;
        check_no_empty_feature(&properties, &path)?;
        Ok(SongTable { properties, source: dir.to_path_buf() })
    }
}

/// The two raw tables, checked: every required column is present with a usable type.
#[derive(Clone)]
pub struct Dataset {
    /// One row per song: `spotify_id`, name, artists, first-seen date (if any) and audio features.
    pub properties: DataFrame,
    /// One row per chart entry; `country` null means the global Top-50.
    pub rankings: DataFrame,
    /// Where the tables were read from (a folder or the Kaggle CSV).
    pub source: PathBuf,
}

impl Dataset {
    /// Loads `song_properties.parquet` and `song_rankings.parquet` from `dir`, or the Kaggle CSV
    /// when the folder holds only that.
    pub fn from_dir(dir: &Path) -> Result<Dataset> {
        let properties = dir.join(PROPERTIES_FILE);
        let csv = dir.join(KAGGLE_CSV_FILE);
        if !properties.exists() && csv.exists() {
            return Self::from_kaggle_csv(&csv);
        }
        let mut dataset = Self::from_files(&properties, &rankings_path(dir))?;
        dataset.source = dir.to_path_buf();
        Ok(dataset)
    }

    /// Loads the two parquet files and checks their columns.
    pub fn from_files(properties_path: &Path, rankings_path: &Path) -> Result<Dataset> {
        let properties = read_parquet(properties_path)?;
        check_columns(&properties, properties_path, &PROPERTY_COLUMNS)?;
        check_no_empty_feature(&properties, properties_path)?;
        let rankings = read_parquet(rankings_path)?;
        check_columns(&rankings, rankings_path, &ranking_checks(rankings.schema()))?;
        let source = properties_path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(Dataset { properties, rankings, source })
    }

    /// Splits the raw Kaggle CSV (one row per chart entry, features inline) into the same two
    /// tables: the chart entries, and one row per song with the date it was first seen.
    pub fn from_kaggle_csv(path: &Path) -> Result<Dataset> {
        if !path.is_file() {
            return Err(DataError::MissingFile { path: path.to_path_buf() });
        }
        let raw = CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(Some(10_000))
            .try_into_reader_with_file_path(Some(path.to_path_buf()))
            .and_then(|reader| reader.finish())
            .map_err(|e| DataError::Unreadable { file: path.to_path_buf(), format: "CSV", reason: e.to_string() })?;
        let mut required: Vec<(&str, Kind)> = RANKING_COLUMNS.to_vec();
        required.extend(PROPERTY_COLUMNS.iter().skip(3).copied());
        required.push((SNAPSHOT_DATE, Kind::Date));
        check_columns(&raw, path, &required)?;

        let date = as_date(SNAPSHOT_DATE, raw.column(SNAPSHOT_DATE).map_err(polars_err(SNAPSHOT_DATE))?.dtype());
        // The CSV writes the global chart's country as an empty field.
        let entries = raw.lazy().with_columns([
            date.alias(SNAPSHOT_DATE),
            when(col(COUNTRY).eq(lit("")))
                .then(lit(NULL).cast(DataType::String))
                .otherwise(col(COUNTRY))
                .alias(COUNTRY),
        ]);
        let mut ranking_cols: Vec<Expr> = RANKING_COLUMNS.iter().map(|(c, _)| col(*c)).collect();
        ranking_cols.push(col(SNAPSHOT_DATE));
        for (optional, _) in &OPTIONAL_RANKING_COLUMNS[1..] {
            ranking_cols.push(col(*optional));
        }
        let rankings =
            entries.clone().select(ranking_cols).collect().map_err(polars_err(path.display().to_string()))?;

        let mut property_cols: Vec<Expr> = PROPERTY_COLUMNS.iter().map(|(c, _)| col(*c)).collect();
        property_cols
            .push(col(SNAPSHOT_DATE).cast(DataType::Datetime(TimeUnit::Nanoseconds, None)).alias(EVENT_TIMESTAMP));
        let properties = entries
            .sort([SNAPSHOT_DATE], SortMultipleOptions::default().with_maintain_order(true))
            .unique_stable(Some(cols([SPOTIFY_ID])), UniqueKeepStrategy::First)
            .select(property_cols)
            .collect()
            .map_err(polars_err(path.display().to_string()))?;
        check_no_empty_feature(&properties, path)?;
        Ok(Dataset { properties, rankings, source: path.to_path_buf() })
    }

    /// Joins chart entries with song properties: rankings left-joined on `spotify_id` (the
    /// properties' own name/artists/date columns dropped), rows with a null in any column the
    /// workshop uses dropped (this removes the global chart), `snapshot_date` as a date when
    /// present, and `country_index` numbering the countries in first-seen order.
    pub fn merge(&self) -> Result<ChartData> {
        // Cloning a frame into a lazy query copies no data: the columns are shared.
        let plan = merge_plan(
            self.properties.clone().lazy(),
            self.properties.schema(),
            self.rankings.clone().lazy(),
            self.rankings.schema(),
        );
        finish_merge(plan, || "merging song_rankings with song_properties".into())
    }
}

/// Country codes numbered in the order they first appear in the data (as the upstream notebook
/// does), and back.
#[derive(Clone, Debug, PartialEq)]
pub struct CountryIndex {
    codes: Vec<String>,
}

impl CountryIndex {
    /// Numbers the distinct values of the `country` column in first-seen order.
    pub fn first_seen(frame: &DataFrame) -> Result<CountryIndex> {
        let unique = frame
            .clone()
            .lazy()
            .select([col(COUNTRY).drop_nulls().unique_stable()])
            .collect()
            .map_err(polars_err("listing countries"))?;
        let column = unique.column(COUNTRY).map_err(polars_err("listing countries"))?;
        let codes =
            column.str().map_err(polars_err("listing countries"))?.iter().flatten().map(str::to_string).collect();
        Ok(CountryIndex { codes })
    }

    pub fn from_codes(codes: Vec<String>) -> CountryIndex {
        CountryIndex { codes }
    }
    /// The index of a country code, if the data has it.
    pub fn index_of(&self, code: &str) -> Option<u32> {
        self.codes.iter().position(|c| c == code).map(|i| i as u32)
    }
    /// The country code of an index.
    pub fn code_of(&self, index: u32) -> Option<&str> {
        self.codes.get(index as usize).map(String::as_str)
    }
    pub fn codes(&self) -> &[String] {
        &self.codes
    }
    pub fn len(&self) -> usize {
        self.codes.len()
    }
    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    /// Adds `country_index` (UInt32) computed from `country` with this mapping.
    pub fn add_index_column(&self, frame: DataFrame) -> Result<DataFrame> {
        let codes = Series::new("codes".into(), &self.codes);
        let indices = Series::new("indices".into(), (0..self.codes.len() as u32).collect::<Vec<_>>());
        frame
            .lazy()
            .with_column(
                col(COUNTRY)
                    .replace_strict(lit(codes), lit(indices), None::<Expr>, Some(DataType::UInt32))
                    .alias(COUNTRY_INDEX),
            )
            .collect()
            .map_err(polars_err("numbering countries"))
    }

    /// The mapping as a two-column table (`country`, `country_index`).
    pub fn table(&self) -> crate::display::Table {
        crate::display::Table::new(
            vec![COUNTRY.into(), COUNTRY_INDEX.into()],
            self.codes.iter().enumerate().map(|(i, c)| vec![c.clone().into(), (i as f64).into()]).collect(),
        )
    }
}

/// The merged chart data every later stage works on.
#[derive(Clone)]
pub struct ChartData {
    /// Chart entries with their songs' audio features and `country_index`.
    pub frame: DataFrame,
    /// The country-code numbering used for `country_index`.
    pub countries: CountryIndex,
}

impl ChartData {
    /// The merged table of the files in `dir` (the two parquet files, else the Kaggle CSV), the
    /// same as [`Dataset::from_dir`] then [`Dataset::merge`] with less read.
    pub fn from_dir(dir: &Path) -> Result<ChartData> {
        let properties = dir.join(PROPERTIES_FILE);
        if !properties.exists() && dir.join(KAGGLE_CSV_FILE).exists() {
            return Dataset::from_dir(dir)?.merge();
        }
        Self::from_files(&properties, &rankings_path(dir))
    }

    /// The merged table of the two parquet files, the same as [`Dataset::from_files`] then
    /// [`Dataset::merge`] (same checks, same errors), reading only what the merge keeps: of
    /// song_properties, `spotify_id` and the numeric columns. Neither table is kept afterwards.
    ///
    /// Why eager reads and not a lazy `scan_parquet` (whose projection and null filters would run
    /// inside the reader): on 1.1 M chart entries polars 0.55's scan took 30-60 ms for the
    /// rankings against 12-20 ms for `ParquetReader`, and the whole merge over two scans
    /// 0.18-0.24 s against 0.09-0.13 s (crates/jukebox/benches/data_pipeline.rs).
    pub fn from_files(properties_path: &Path, rankings_path: &Path) -> Result<ChartData> {
        let properties = read_parquet_checked(properties_path, |schema| {
            check_schema(schema, properties_path, &PROPERTY_COLUMNS)?;
            Ok(Some(schema.iter_names().filter(|c| !unused_property_column(c)).map(|c| c.to_string()).collect()))
        })?;
        let rankings = read_parquet_checked(rankings_path, |schema| {
            check_schema(schema, rankings_path, &ranking_checks(schema))?;
            Ok(None)
        })?;
        check_no_empty_feature(&properties, properties_path)?;
        let (properties_schema, rankings_schema) = (properties.schema().clone(), rankings.schema().clone());
        let plan = merge_plan(properties.lazy(), &properties_schema, rankings.lazy(), &rankings_schema);
        finish_merge(plan, || format!("merging {} with {}", rankings_path.display(), properties_path.display()))
    }

    pub fn rows(&self) -> usize {
        self.frame.height()
    }
    /// Whether the data carries chart dates (the full upstream file does, the sample does not).
    pub fn has_dates(&self) -> bool {
        self.frame.schema().contains(SNAPSHOT_DATE)
    }
    /// The first rows as an inline table.
    pub fn head(&self, n: usize) -> crate::display::Table {
        crate::display::Table::from_frame(&self.frame.head(Some(n)))
    }
}

impl Dataset {
    /// The first `n` songs of song_properties as an inline table.
    pub fn properties_head(&self, n: usize) -> crate::display::Table {
        crate::display::Table::from_frame(&self.properties.head(Some(n))).with_caption("song_properties")
    }
    /// The first `n` chart entries of song_rankings as an inline table.
    pub fn rankings_head(&self, n: usize) -> crate::display::Table {
        crate::display::Table::from_frame(&self.rankings.head(Some(n))).with_caption("song_rankings")
    }

    /// A short text summary: where the data came from, table sizes and merged size.
    pub fn summary(&self) -> Result<String> {
        Ok(self.summary_of(&self.merge()?))
    }

    /// [`Dataset::summary`] with the merged table already at hand (merging again would double
    /// the work of `jukebox data --describe`).
    pub fn summary_of(&self, merged: &ChartData) -> String {
        format!(
            "source:          {}\nsong_properties: {} songs, columns: {}\nsong_rankings:   {} chart entries, columns: {}\nmerged:          {} rows with a country, {} countries{}",
            self.source.display(),
            self.properties.height(),
            self.properties.get_column_names().iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", "),
            self.rankings.height(),
            self.rankings.get_column_names().iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", "),
            merged.rows(),
            merged.countries.len(),
            if merged.has_dates() { "" } else { " (no chart dates in this data)" },
        )
    }
}
