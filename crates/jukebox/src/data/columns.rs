//! The column names of the chart data, each spelled once.
//!
//! The two upstream tables (song_properties and song_rankings) and the merged table every later
//! stage works on share these names. Stages refer to a column through its constant here
//! (`col(columns::COUNTRY)`), never through a string literal of their own, so a renamed column is
//! one edit and a typo is a compile error instead of a "column not found" at run time. The audio
//! features the model reads are listed once as well, in the model folder contract
//! ([`WORKSHOP_FEATURES`](jukebox_protocol::model_folder::WORKSHOP_FEATURES), re-exported as
//! `jukebox::data::FEATURES`).

/// A song's Spotify identifier: the key joining chart entries to song properties.
pub const SPOTIFY_ID: &str = "spotify_id";
/// The song's title.
pub const NAME: &str = "name";
/// The song's artists, comma-separated.
pub const ARTISTS: &str = "artists";
/// Whether the song has explicit lyrics (a model feature).
pub const IS_EXPLICIT: &str = "is_explicit";
/// The song's length in milliseconds (a model feature).
pub const DURATION_MS: &str = "duration_ms";
/// The song's key, 0-11 (a model feature).
pub const KEY: &str = "key";
/// Major (1) or minor (0) (a model feature).
pub const MODE: &str = "mode";
/// Beats per bar (in song_properties, not a model feature).
pub const TIME_SIGNATURE: &str = "time_signature";
/// Spotify's popularity score of the song on that chart day, 0-100.
pub const POPULARITY: &str = "popularity";
/// The song's position in the country's Top-50 on that day.
pub const DAILY_RANK: &str = "daily_rank";
/// Positions moved since the day before.
pub const DAILY_MOVEMENT: &str = "daily_movement";
/// Positions moved since the week before.
pub const WEEKLY_MOVEMENT: &str = "weekly_movement";
/// The chart's country code (ISO 3166 alpha-2); null for the global chart. What the model predicts.
pub const COUNTRY: &str = "country";
/// The chart day (in the full upstream file, not in the sample).
pub const SNAPSHOT_DATE: &str = "snapshot_date";
/// The album's name (full upstream file only).
pub const ALBUM_NAME: &str = "album_name";
/// The album's release date (full upstream file only).
pub const ALBUM_RELEASE_DATE: &str = "album_release_date";
/// When a song was first seen (song_properties; older copies call it [`SNAPSHOT_DATE`]).
pub const EVENT_TIMESTAMP: &str = "event_timestamp";
/// The merged table's number of each country code (`jukebox::data::CountryIndex`).
pub const COUNTRY_INDEX: &str = "country_index";
