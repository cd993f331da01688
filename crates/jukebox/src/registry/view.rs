//! The registry's records as a notebook shows them, all through [`crate::display::Table`]: a
//! version table to compare runs by ([`VersionTable`]: one row per version, the metrics people
//! compare as columns, everything else folded one click away), and field/value tables for a
//! single model, version or artifact, with its metadata as extra rows.

use std::collections::BTreeSet;

use jukebox_protocol::registry::{
    format_epoch_millis, CustomProperties, MetadataValue, ModelArtifact, ModelVersion, RegisteredModel,
};
use jukebox_protocol::version_table::{api_name, VersionColumn, VERSION_COLUMNS};
use serde::Serialize;

use crate::display::{Cell, Table, ToHtml};
use crate::storage::TransferReport;

/// What `ModelRegistry::upload_and_register` did: the files it uploaded and the records it
/// created.
#[derive(Debug, Clone)]
pub struct SavedModel {
    pub upload: TransferReport,
    pub registered: RegisteredVersion,
}

crate::display::shown_in_turn!(SavedModel: upload, registered);

/// What one registration created: the (found or new) model, the new version and its artifact.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisteredVersion {
    pub model: RegisteredModel,
    pub version: ModelVersion,
    pub artifact: ModelArtifact,
}

impl ToHtml for RegisteredVersion {
    /// One row: model, version, state, metrics, author, created; ids, format and URI folded.
    fn to_html(&self) -> String {
        let row = VersionRow { version: self.version.clone(), artifacts: vec![self.artifact.clone()] };
        VersionTable { model: self.model.clone(), rows: vec![row] }.to_html()
    }
}

/// One version of a model with its artifacts.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionRow {
    pub version: ModelVersion,
    pub artifacts: Vec<ModelArtifact>,
}

/// All versions of one model, oldest first: the run-tracking table (one metadata key per
/// column, so runs compare side by side).
#[derive(Debug, Clone, PartialEq)]
pub struct VersionTable {
    pub model: RegisteredModel,
    pub rows: Vec<VersionRow>,
}

/// The metadata keys [`VersionTable`] shows as columns (as `accuracy` and `F1 (macro)`); every
/// other key is folded under the row's details. The registry's web page shows the same columns:
/// both take them from `jukebox_protocol::version_table`.
pub use jukebox_protocol::version_table::VERSION_METRICS as VERSION_TABLE_METRICS;

impl VersionTable {
    /// Metadata keys over all versions, sorted: the table's metric columns.
    pub fn metadata_keys(&self) -> Vec<String> {
        let keys: BTreeSet<&String> = self.rows.iter().flat_map(|r| r.version.custom_properties.keys()).collect();
        keys.into_iter().cloned().collect()
    }

    /// The value of metadata `key` for each version (None where a version lacks it or it is
    /// not a number), in row order; handy for plotting a metric across runs.
    pub fn metric(&self, key: &str) -> Vec<Option<f64>> {
        self.rows.iter().map(|r| r.version.custom_properties.get(key).and_then(MetadataValue::as_f64)).collect()
    }

    /// One row per version: the model's name, then the columns a person compares versions by
    /// (`jukebox_protocol::version_table`'s: version, state, accuracy, F1, author, created), then
    /// ids, format, URI, storage path and every other metadata entry folded into the row's last
    /// cell, one click away.
    pub fn table(&self) -> Table {
        let shared = VERSION_COLUMNS.iter().flat_map(|column| column.headings());
        let columns = ["name"].into_iter().chain(shared).chain(["more"]);
        let rows = self.rows.iter().map(|row| self.row(row)).collect();
        let count = self.rows.len();
        Table::new(columns.map(String::from).collect(), rows).with_caption(format!(
            "{count} version{} of {}",
            if count == 1 { "" } else { "s" },
            self.model.name
        ))
    }

    fn row(&self, row: &VersionRow) -> Vec<Cell> {
        let v = &row.version;
        let mut cells: Vec<Cell> = vec![self.model.name.as_str().into()];
        for column in VERSION_COLUMNS {
            match column {
                // Numbers as every table writes them (4 decimals), not as the registry holds them.
                VersionColumn::Metrics => {
                    cells.extend(VERSION_TABLE_METRICS.iter().map(|(key, _)| match v.custom_properties.get(*key) {
                        Some(value) => value.as_f64().map(Cell::Number).unwrap_or_else(|| metadata_text(value).into()),
                        None => Cell::Empty,
                    }))
                }
                other => cells.extend(other.cells(v).into_iter().map(Cell::Text)),
            }
        }
        // The rest: what identifies and locates the version, then the other metadata.
        let mut folded: Vec<(String, String)> = vec![
            ("version id".into(), v.id.clone()),
            ("description".into(), v.description.clone().unwrap_or_default()),
        ];
        for artifact in &row.artifacts {
            let f = &artifact.fields;
            let format =
                format!("{} {}", text_of(&f.model_format_name), text_of(&f.model_format_version)).trim().to_string();
            folded.push(("format".into(), format));
            folded.push(("uri".into(), text_of(&f.uri)));
            folded.push(("storage path".into(), text_of(&f.storage_path)));
        }
        for (key, value) in &v.custom_properties {
            if !VERSION_TABLE_METRICS.iter().any(|(metric, _)| metric == key) {
                folded.push((key.clone(), metadata_text(value)));
            }
        }
        folded.retain(|(_, value)| !value.is_empty());
        let summary = format!("{} fields", folded.len());
        let table = Table::fields(folded.into_iter().map(|(key, value)| (key, Cell::Text(value))));
        cells.push(Cell::Folded { summary, table: Box::new(table) });
        cells
    }
}

impl ToHtml for VersionTable {
    fn to_html(&self) -> String {
        self.table().to_html()
    }
}

/// A metadata value as a table shows it: numbers as [`crate::display::format_number`] writes them
/// (4 decimals, `0.3420`, never 17 digits), the rest as the registry holds it.
pub fn metadata_text(value: &MetadataValue) -> String {
    match value {
        MetadataValue::Double { double_value } => crate::display::format_number(*double_value),
        other => other.to_string(),
    }
}

/// A record's field/value table: `fields` first, then one row per custom property (the
/// metadata, such as metrics).
fn record_table(fields: Vec<(&str, String)>, properties: &CustomProperties) -> Table {
    let fields = fields.into_iter().map(|(field, value)| (field.to_string(), Cell::Text(value)));
    let properties = properties.iter().map(|(key, value)| (key.clone(), Cell::Text(metadata_text(value))));
    Table::fields(fields.chain(properties))
}

/// The rows every record ends with: its state and when it was created and last updated.
fn lifecycle<T: Serialize>(
    state: &Option<T>,
    created: &Option<String>,
    updated: &Option<String>,
) -> [(&'static str, String); 3] {
    [
        ("state", api_name(state)),
        ("created", format_epoch_millis(created.as_deref())),
        ("updated", format_epoch_millis(updated.as_deref())),
    ]
}

fn text_of(value: &Option<String>) -> String {
    value.clone().unwrap_or_default()
}

impl ToHtml for RegisteredModel {
    fn to_html(&self) -> String {
        let mut fields = vec![
            ("registered model", self.name.clone()),
            ("id", self.id.clone()),
            ("description", text_of(&self.description)),
            ("owner", text_of(&self.owner)),
        ];
        fields.extend(lifecycle(&self.state, &self.create_time_since_epoch, &self.last_update_time_since_epoch));
        record_table(fields, &self.custom_properties).to_html()
    }
}

impl ToHtml for ModelVersion {
    fn to_html(&self) -> String {
        let mut fields = vec![
            ("model version", self.name.clone()),
            ("id", self.id.clone()),
            ("registered model id", self.registered_model_id.clone()),
            ("description", text_of(&self.description)),
            ("author", text_of(&self.author)),
        ];
        fields.extend(lifecycle(&self.state, &self.create_time_since_epoch, &self.last_update_time_since_epoch));
        record_table(fields, &self.custom_properties).to_html()
    }
}

impl ToHtml for ModelArtifact {
    fn to_html(&self) -> String {
        let f = &self.fields;
        let mut fields = vec![
            ("model artifact", text_of(&f.name)),
            ("id", self.id.clone()),
            ("uri", text_of(&f.uri)),
            ("model format", text_of(&f.model_format_name)),
            ("model format version", text_of(&f.model_format_version)),
            ("storage key", text_of(&f.storage_key)),
            ("storage path", text_of(&f.storage_path)),
        ];
        fields.extend(lifecycle(&f.state, &self.create_time_since_epoch, &self.last_update_time_since_epoch));
        record_table(fields, &f.custom_properties).to_html()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_render_as_escaped_field_tables_with_readable_times() {
        let model = RegisteredModel {
            id: "1".into(),
            name: "<script>alert('x')</script>".into(),
            create_time_since_epoch: Some("1700000000000".into()),
            ..Default::default()
        };
        let html = model.to_html();
        assert!(html.contains(">registered model</th><td"), "the field name heads its row: {html}");
        assert!(html.contains(">&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;</td>"), "{html}");
        assert!(!html.contains("<script>"));
        assert!(!html.contains("<thead>"), "a record's table has no header row: {html}");
        let text = model.to_text();
        assert!(
            text.lines().any(|l| l.trim_start().starts_with("created") && l.ends_with("2023-11-14 22:13:20 UTC")),
            "{text}"
        );
    }

    #[test]
    fn the_version_table_shows_what_a_person_compares_and_folds_the_rest() {
        let version = |id: &str, accuracy: f64| ModelVersion {
            id: id.into(),
            name: format!("0.0.{id}"),
            registered_model_id: "1".into(),
            author: Some("ada".into()),
            custom_properties: [("accuracy".to_owned(), MetadataValue::from(accuracy))].into(),
            ..Default::default()
        };
        let mut second = version("2", 0.41234567890123);
        second.custom_properties.insert("epochs".into(), MetadataValue::from(30));
        second.custom_properties.insert("training_seconds".into(), MetadataValue::from(12.345678901234));
        second.custom_properties.insert("f1_macro".into(), MetadataValue::from(0.0712345678));
        let table = VersionTable {
            model: RegisteredModel { id: "1".into(), name: "a<b".into(), ..Default::default() },
            rows: vec![
                VersionRow { version: version("1", 0.08), artifacts: vec![] },
                VersionRow { version: second, artifacts: vec![] },
            ],
        };
        assert_eq!(table.metadata_keys(), ["accuracy", "epochs", "f1_macro", "training_seconds"]);
        assert_eq!(table.metric("accuracy"), [Some(0.08), Some(0.41234567890123)]);
        assert_eq!(table.metric("epochs"), [None, Some(30.0)]);
        let shown = table.table();
        assert_eq!(shown.columns, ["name", "version", "state", "accuracy", "F1 (macro)", "author", "created", "more"]);
        let html = table.to_html();
        // Numbers rounded to 4 decimals, in their columns or folded.
        assert!(html.contains(">0.4123<") && html.contains(">0.0712<") && html.contains(">12.3457<"), "{html}");
        assert!(!html.contains("0.41234567"), "no 17-digit floats: {html}");
        // The rest is one click away, not a column.
        assert!(html.contains("<details><summary>3 fields</summary>"), "{html}");
        let Cell::Folded { table: folded, .. } = &shown.rows[1][7] else { panic!("the last cell folds: {shown:?}") };
        assert!(folded.rows.contains(&vec![Cell::from("epochs"), Cell::from("30")]), "{folded:?}");
        assert!(html.contains("a&lt;b") && !html.contains("a<b"));
        // The text alternative opens the folded fields under their summary.
        let text = table.to_text();
        assert!(text.contains("3 fields\nversion id  2\nepochs  30"), "{text}");
    }
}
