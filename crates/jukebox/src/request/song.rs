//! The songs to ask about: raw feature values, by hand or by name from song_properties.

use polars::prelude::{DataFrame, DataType};

use super::error::RequestError;
use crate::data::columns::{ARTISTS, NAME};

/// A song to predict: its name (for display) and raw feature values in the scaler's order.
#[derive(Debug, Clone, PartialEq)]
pub struct Song {
    pub name: String,
    pub artists: Option<String>,
    pub features: Vec<f64>,
}

impl Song {
    /// A song from raw (unscaled) feature values, in the model's feature order
    /// (`is_explicit, duration_ms, danceability, energy, key, loudness, mode, speechiness,
    /// acousticness, instrumentalness, liveness, valence, tempo`).
    pub fn from_features(name: impl Into<String>, features: &[f64]) -> Self {
        Self { name: name.into(), artists: None, features: features.to_vec() }
    }
}

/// Every song called `name` (exact match) in a song_properties table, features in `features`
/// order (booleans as 0/1).
pub fn songs_by_name(properties: &DataFrame, name: &str, features: &[String]) -> Result<Vec<Song>, RequestError> {
    let data_error = |e: polars::prelude::PolarsError| RequestError::Data { message: e.to_string() };
    let names = properties.column(NAME).map_err(data_error)?.str().map_err(data_error)?;
    let rows: Vec<usize> = (0..names.len()).filter(|&i| names.get(i) == Some(name)).collect();
    if rows.is_empty() {
        let wanted = name.to_lowercase();
        let mut suggestions: Vec<String> = (0..names.len())
            .filter_map(|i| names.get(i))
            .filter(|n| {
                n.to_lowercase().contains(&wanted) || (n.chars().count() >= 4 && wanted.contains(&n.to_lowercase()))
            })
            .map(str::to_string)
            .collect();
        suggestions.sort();
        suggestions.dedup();
        suggestions.truncate(5);
        return Err(RequestError::UnknownSong { name: name.to_string(), suggestions });
    }
    let artists = properties.column(ARTISTS).ok().and_then(|c| c.str().ok().cloned());
    let mut columns = Vec::with_capacity(features.len());
    for feature in features {
        let column = properties
            .column(feature)
            .and_then(|c| c.cast(&DataType::Float64))
            .map_err(|e| RequestError::Data { message: format!("column '{feature}': {e}") })?;
        columns.push(column);
    }
    rows.into_iter()
        .map(|row| {
            let mut values = Vec::with_capacity(features.len());
            for (feature, column) in features.iter().zip(&columns) {
                let value = column.f64().ok().and_then(|c| c.get(row)).filter(|v| v.is_finite());
                values.push(
                    value
                        .ok_or_else(|| RequestError::BadFeature { song: name.to_string(), feature: feature.clone() })?,
                );
            }
            Ok(Song {
                name: name.to_string(),
                artists: artists.as_ref().and_then(|a| a.get(row)).map(str::to_string),
                features: values,
            })
        })
        .collect()
}

/// The first song called `name` in a song_properties table; an unknown name is an error
/// listing similar names.
pub fn song_by_name(properties: &DataFrame, name: &str, features: &[String]) -> Result<Song, RequestError> {
    Ok(songs_by_name(properties, name, features)?.remove(0))
}
