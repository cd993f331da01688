//! The version table: the columns a model's versions are compared by, in the order shown, for
//! both places that show them, a notebook (`jukebox::registry::VersionTable`) and the registry's
//! web page (`jukebox-server`), so the two name and fill them alike.
//!
//! [`VERSION_COLUMNS`] lists them: the version's name and state, its metrics (one column per
//! [`VERSION_METRICS`] key, the metadata worth comparing across runs), its author and creation
//! time. [`VersionColumn::headings`] and [`VersionColumn::cells`] give each column's heading(s)
//! and text. Each renderer adds its own columns around these (the notebook: the model's name
//! first and the other fields folded last; the page: the artifacts' format and URI and all
//! metadata), formats numbers its own way if it likes, and escapes with [`crate::html::escape`].

use serde::Serialize;

use crate::registry::{format_epoch_millis, ModelVersion};

/// The metadata keys shown as columns of their own, with their headings (`accuracy`,
/// `F1 (macro)`); every other key stays in the row's metadata.
pub const VERSION_METRICS: [(&str, &str); 2] = [("accuracy", "accuracy"), ("f1_macro", "F1 (macro)")];

/// One column of a version table; [`VersionColumn::Metrics`] stands for one column per
/// [`VERSION_METRICS`] key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionColumn {
    Version,
    State,
    Metrics,
    Author,
    Created,
}

/// The columns of a version table, in the order shown.
pub const VERSION_COLUMNS: [VersionColumn; 5] = [
    VersionColumn::Version,
    VersionColumn::State,
    VersionColumn::Metrics,
    VersionColumn::Author,
    VersionColumn::Created,
];

impl VersionColumn {
    /// The heading of the column (of each metric's column, for [`VersionColumn::Metrics`]).
    pub fn headings(self) -> Vec<&'static str> {
        match self {
            VersionColumn::Version => vec!["version"],
            VersionColumn::State => vec!["state"],
            VersionColumn::Metrics => VERSION_METRICS.iter().map(|(_, heading)| *heading).collect(),
            VersionColumn::Author => vec!["author"],
            VersionColumn::Created => vec!["created"],
        }
    }

    /// The text of `version`'s cell(s) in this column, unescaped: its name, its state as the
    /// API spells it (`LIVE`), each metric's value as the registry holds it (empty where the
    /// version has none), its author, its creation time (`2023-11-14 22:13:20 UTC`).
    pub fn cells(self, version: &ModelVersion) -> Vec<String> {
        match self {
            VersionColumn::Version => vec![version.name.clone()],
            VersionColumn::State => vec![api_name(&version.state)],
            VersionColumn::Metrics => VERSION_METRICS
                .iter()
                .map(|(key, _)| version.custom_properties.get(*key).map(ToString::to_string).unwrap_or_default())
                .collect(),
            VersionColumn::Author => vec![version.author.clone().unwrap_or_default()],
            VersionColumn::Created => vec![format_epoch_millis(version.create_time_since_epoch.as_deref())],
        }
    }
}

/// A state (or any enum of the API) as the API spells it (`LIVE`, `ARCHIVED`, ...); empty when
/// absent.
pub fn api_name<T: Serialize>(state: &Option<T>) -> String {
    state
        .as_ref()
        .and_then(|s| serde_json::to_value(s).ok())
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{MetadataValue, ModelState};

    #[test]
    fn every_column_has_as_many_cells_as_headings_in_the_shown_order() {
        let mut version = ModelVersion {
            name: "2".into(),
            author: Some("ada".into()),
            state: Some(ModelState::Live),
            create_time_since_epoch: Some("1700000000000".into()),
            ..Default::default()
        };
        version.custom_properties.insert("accuracy".into(), MetadataValue::from(0.342));
        let headings: Vec<&str> = VERSION_COLUMNS.iter().flat_map(|c| c.headings()).collect();
        let cells: Vec<String> = VERSION_COLUMNS.iter().flat_map(|c| c.cells(&version)).collect();
        assert_eq!(headings, ["version", "state", "accuracy", "F1 (macro)", "author", "created"]);
        assert_eq!(cells, ["2", "LIVE", "0.342", "", "ada", "2023-11-14 22:13:20 UTC"]);
    }
}
