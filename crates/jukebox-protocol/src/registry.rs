//! Wire types of the Kubeflow Model Registry REST API (the API OpenShift AI's model registry and
//! the official `model-registry` Python client speak).
//!
//! The registry holds three kinds of record, each owned by the one before it:
//!
//! 1. a [`RegisteredModel`]: a named model ("jukebox"), unique by name;
//! 2. a [`ModelVersion`]: one trained version of it ("1", "2", ...), unique by name within its
//!    model, carrying free-form typed metadata ([`MetadataValue`]) such as metrics;
//! 3. a [`ModelArtifact`]: where that version's files live (a `uri` such as
//!    `s3://models/jukebox/1`) and in which format (`onnx`).
//!
//! Each record comes in a read form (what the server answers, with a server-made `id` and
//! epoch-millisecond times, both as strings) and, where the API has one, a create form (what a
//! client POSTs) and an update form (what a client PATCHes; every field optional, absent fields
//! stay as they are). Lists come as pages ([`ListPage`]); errors as [`ErrorBody`].
//!
//! Deserialization is liberal (unknown fields are ignored, optional fields may be absent) and
//! serialization is exact (absent options are left out, field names are the API's camelCase).
//!
//! Wire types only: how a notebook shows them is `jukebox::registry`'s business, how the embedded
//! server's web page shows them the server's.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The API path prefix of the current API (`model-registry` Python client 0.3.x from 0.3.8 on).
pub const BASE_PATH_V1: &str = "/api/model_registry/v1";
/// The API path prefix of the older alpha API (`model-registry` Python client 0.3.7 and before).
pub const BASE_PATH_V1ALPHA3: &str = "/api/model_registry/v1alpha3";
/// The `artifactType` discriminator of a model artifact.
pub const MODEL_ARTIFACT_TYPE: &str = "model-artifact";

/// Custom properties: user metadata keyed by name, kept in name order.
pub type CustomProperties = BTreeMap<String, MetadataValue>;

/// One typed custom property value, tagged on the wire by `metadataType`:
/// `{"int_value": "5", "metadataType": "MetadataIntValue"}`.
///
/// Integers travel as strings (the API's int64 encoding); they are read from a string or a
/// number. Struct and proto values are base64 text, kept as received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "metadataType")]
pub enum MetadataValue {
    #[serde(rename = "MetadataIntValue")]
    Int {
        #[serde(serialize_with = "int_as_string", deserialize_with = "int_from_string_or_number")]
        int_value: i64,
    },
    #[serde(rename = "MetadataDoubleValue")]
    Double { double_value: f64 },
    #[serde(rename = "MetadataStringValue")]
    String { string_value: String },
    #[serde(rename = "MetadataBoolValue")]
    Bool { bool_value: bool },
    #[serde(rename = "MetadataStructValue")]
    Struct { struct_value: String },
    #[serde(rename = "MetadataProtoValue")]
    Proto {
        #[serde(rename = "type")]
        type_url: String,
        proto_value: String,
    },
}

fn int_as_string<S: Serializer>(value: &i64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&value.to_string())
}

fn int_from_string_or_number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum IntOrString {
        Int(i64),
        String(String),
    }
    match IntOrString::deserialize(deserializer)? {
        IntOrString::Int(value) => Ok(value),
        IntOrString::String(text) => text
            .trim()
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("int_value {text:?} is not a 64-bit integer"))),
    }
}

impl MetadataValue {
    /// The value as a number, when it is one (ints widen to f64); for metric columns.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            MetadataValue::Int { int_value } => Some(*int_value as f64),
            MetadataValue::Double { double_value } => Some(*double_value),
            _ => None,
        }
    }

    /// Converts a JSON scalar: integers become `Int`, other numbers `Double`, booleans `Bool`,
    /// strings `String`. Arrays, objects and null have no metadata type and give `None`.
    pub fn from_json(value: &serde_json::Value) -> Option<MetadataValue> {
        match value {
            serde_json::Value::Bool(b) => Some(MetadataValue::from(*b)),
            serde_json::Value::String(s) => Some(MetadataValue::from(s.as_str())),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Some(MetadataValue::from(i)),
                None => n.as_f64().map(MetadataValue::from),
            },
            _ => None,
        }
    }
}

/// Shows the value plainly: `5`, `0.342`, `true`, `text`.
impl fmt::Display for MetadataValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetadataValue::Int { int_value } => write!(f, "{int_value}"),
            MetadataValue::Double { double_value } => write!(f, "{double_value}"),
            MetadataValue::String { string_value } => f.write_str(string_value),
            MetadataValue::Bool { bool_value } => write!(f, "{bool_value}"),
            MetadataValue::Struct { struct_value } => write!(f, "struct:{struct_value}"),
            MetadataValue::Proto { type_url, proto_value } => write!(f, "{type_url}:{proto_value}"),
        }
    }
}

impl From<i64> for MetadataValue {
    fn from(int_value: i64) -> Self {
        MetadataValue::Int { int_value }
    }
}
impl From<i32> for MetadataValue {
    fn from(value: i32) -> Self {
        MetadataValue::from(i64::from(value))
    }
}
impl From<u32> for MetadataValue {
    fn from(value: u32) -> Self {
        MetadataValue::from(i64::from(value))
    }
}
impl From<usize> for MetadataValue {
    /// Saturates at `i64::MAX` (counts that large do not occur in practice).
    fn from(value: usize) -> Self {
        MetadataValue::from(i64::try_from(value).unwrap_or(i64::MAX))
    }
}
impl From<f64> for MetadataValue {
    fn from(double_value: f64) -> Self {
        MetadataValue::Double { double_value }
    }
}
impl From<f32> for MetadataValue {
    fn from(value: f32) -> Self {
        MetadataValue::from(f64::from(value))
    }
}
impl From<bool> for MetadataValue {
    fn from(bool_value: bool) -> Self {
        MetadataValue::Bool { bool_value }
    }
}
impl From<&str> for MetadataValue {
    fn from(value: &str) -> Self {
        MetadataValue::String { string_value: value.to_owned() }
    }
}
impl From<String> for MetadataValue {
    fn from(string_value: String) -> Self {
        MetadataValue::String { string_value }
    }
}

/// Lifecycle state of a registered model or a model version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ModelState {
    #[default]
    Live,
    Archived,
}

/// Lifecycle state of an artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ArtifactState {
    #[default]
    Unknown,
    Pending,
    Live,
    MarkedForDeletion,
    Deleted,
    Abandoned,
    Reference,
}

fn is_empty(properties: &CustomProperties) -> bool {
    properties.is_empty()
}

/// A registered model as the server returns it.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisteredModel {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub external_id: Option<String>,
    pub owner: Option<String>,
    pub state: Option<ModelState>,
    #[serde(default)]
    pub custom_properties: CustomProperties,
    #[serde(flatten)]
    pub catalog: CatalogFields,
    pub create_time_since_epoch: Option<String>,
    pub last_update_time_since_epoch: Option<String>,
}

/// The model-catalog fields a registered model may carry (client 0.3.18 and later); kept and
/// returned as given, not interpreted.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogFields {
    pub readme: Option<String>,
    pub maturity: Option<String>,
    pub language: Option<Vec<String>>,
    pub tasks: Option<Vec<String>>,
    pub provider: Option<String>,
    pub logo: Option<String>,
    pub license: Option<String>,
    pub license_link: Option<String>,
    pub library_name: Option<String>,
}

/// The body of `POST /registered_models`. `name` is required and must not be empty.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisteredModelCreate {
    pub name: String,
    pub description: Option<String>,
    pub external_id: Option<String>,
    pub owner: Option<String>,
    pub state: Option<ModelState>,
    #[serde(default, skip_serializing_if = "is_empty")]
    pub custom_properties: CustomProperties,
    #[serde(flatten)]
    pub catalog: CatalogFields,
}

/// The body of `PATCH /registered_models/{id}`: present fields replace stored ones
/// (`customProperties` as a whole).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisteredModelUpdate {
    pub description: Option<String>,
    pub external_id: Option<String>,
    pub owner: Option<String>,
    pub state: Option<ModelState>,
    pub custom_properties: Option<CustomProperties>,
}

/// A model version as the server returns it.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelVersion {
    pub id: String,
    pub name: String,
    pub registered_model_id: String,
    pub description: Option<String>,
    pub external_id: Option<String>,
    pub author: Option<String>,
    pub state: Option<ModelState>,
    #[serde(default)]
    pub custom_properties: CustomProperties,
    pub create_time_since_epoch: Option<String>,
    pub last_update_time_since_epoch: Option<String>,
}

/// The body of `POST /model_versions` (and of `POST /registered_models/{id}/versions`, where
/// the path supplies the model and `registeredModelId` may be left out).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelVersionCreate {
    pub name: String,
    pub registered_model_id: Option<String>,
    pub description: Option<String>,
    pub external_id: Option<String>,
    pub author: Option<String>,
    pub state: Option<ModelState>,
    #[serde(default, skip_serializing_if = "is_empty")]
    pub custom_properties: CustomProperties,
}

/// The body of `PATCH /model_versions/{id}`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelVersionUpdate {
    pub description: Option<String>,
    pub external_id: Option<String>,
    pub author: Option<String>,
    pub state: Option<ModelState>,
    pub custom_properties: Option<CustomProperties>,
}

/// The fields a client may set on a model artifact (shared by the read and create forms).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelArtifactFields {
    /// The Python client names a version's artifact after the registered model.
    pub name: Option<String>,
    pub description: Option<String>,
    pub external_id: Option<String>,
    /// Where the model files are, e.g. `s3://models/jukebox/1?endpoint=...`.
    pub uri: Option<String>,
    pub state: Option<ArtifactState>,
    pub model_format_name: Option<String>,
    pub model_format_version: Option<String>,
    /// Name of the data connection (storage secret) holding the credentials.
    pub storage_key: Option<String>,
    /// Path of the model inside the storage named by `storage_key`.
    pub storage_path: Option<String>,
    pub service_account_name: Option<String>,
    pub model_source_kind: Option<String>,
    pub model_source_class: Option<String>,
    pub model_source_group: Option<String>,
    pub model_source_id: Option<String>,
    pub model_source_name: Option<String>,
    pub experiment_id: Option<String>,
    pub experiment_run_id: Option<String>,
    #[serde(default)]
    pub custom_properties: CustomProperties,
}

/// A model artifact as the server returns it (`artifactType` is `model-artifact`).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelArtifact {
    pub id: String,
    #[serde(default = "model_artifact_type")]
    pub artifact_type: String,
    #[serde(flatten)]
    pub fields: ModelArtifactFields,
    pub create_time_since_epoch: Option<String>,
    pub last_update_time_since_epoch: Option<String>,
}

fn model_artifact_type() -> String {
    MODEL_ARTIFACT_TYPE.to_owned()
}

/// The body of `POST /model_versions/{id}/artifacts` (an upsert: with an `id` it updates that
/// artifact, without one it creates a new artifact of the version) and `POST /model_artifacts`.
/// `artifactType` defaults to `model-artifact`, the only type this workbench stores.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelArtifactCreate {
    pub id: Option<String>,
    #[serde(default = "model_artifact_type")]
    pub artifact_type: String,
    #[serde(flatten)]
    pub fields: ModelArtifactFields,
}

impl Default for ModelArtifactCreate {
    fn default() -> Self {
        ModelArtifactCreate { id: None, artifact_type: model_artifact_type(), fields: ModelArtifactFields::default() }
    }
}

/// The body of `PATCH /model_artifacts/{id}`: present fields replace stored ones.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelArtifactUpdate {
    pub description: Option<String>,
    pub external_id: Option<String>,
    pub uri: Option<String>,
    pub state: Option<ArtifactState>,
    pub model_format_name: Option<String>,
    pub model_format_version: Option<String>,
    pub storage_key: Option<String>,
    pub storage_path: Option<String>,
    pub service_account_name: Option<String>,
    pub custom_properties: Option<CustomProperties>,
}

/// One page of a list: `{"items", "nextPageToken", "pageSize", "size"}`. An empty
/// `nextPageToken` means this is the last page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListPage<T> {
    #[serde(default = "Vec::new")]
    pub items: Vec<T>,
    #[serde(default)]
    pub next_page_token: String,
    #[serde(default)]
    pub page_size: i64,
    #[serde(default)]
    pub size: i64,
}

/// Sort key of a list request (`orderBy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderBy {
    #[default]
    Id,
    CreateTime,
    LastUpdateTime,
}

/// Sort direction of a list request (`sortOrder`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SortOrder {
    #[default]
    Asc,
    Desc,
}

/// The query string of a list request; every part optional.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    /// Items per page, as text on the wire (the API's int64 encoding).
    pub page_size: Option<String>,
    pub order_by: Option<OrderBy>,
    pub sort_order: Option<SortOrder>,
    pub next_page_token: Option<String>,
}

/// The query string of a find request (`GET /registered_model`, `/model_version`,
/// `/model_artifact`): by `name` (with `parentResourceId` for versions and artifacts) or by
/// `externalId`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FindQuery {
    pub name: Option<String>,
    pub external_id: Option<String>,
    pub parent_resource_id: Option<String>,
}

/// The error body every failed request answers with, e.g.
/// `{"code": "404", "message": "registered model named \"x\" not found"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The HTTP status code, as text.
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
}

// ---------------------------------------------------------------------------------------------
// Times as people read them.

/// Formats an epoch-millisecond time (as the API sends it) as `YYYY-MM-DD hh:mm:ss UTC`;
/// text that is not a number is returned unchanged, a missing time as an empty string.
pub fn format_epoch_millis(millis: Option<&str>) -> String {
    let Some(text) = millis else { return String::new() };
    let Ok(ms) = text.parse::<i64>() else { return text.to_owned() };
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (Howard Hinnant's algorithm), to avoid a date-time dependency.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn metadata_values_use_the_api_encoding() {
        let properties: CustomProperties = [
            ("accuracy".to_owned(), MetadataValue::from(0.3)),
            ("epochs".to_owned(), MetadataValue::from(5)),
            ("ok".to_owned(), MetadataValue::from(true)),
            ("tag".to_owned(), MetadataValue::from("x")),
        ]
        .into();
        assert_eq!(
            serde_json::to_value(&properties).unwrap(),
            json!({
                "accuracy": {"double_value": 0.3, "metadataType": "MetadataDoubleValue"},
                "epochs": {"int_value": "5", "metadataType": "MetadataIntValue"},
                "ok": {"bool_value": true, "metadataType": "MetadataBoolValue"},
                "tag": {"string_value": "x", "metadataType": "MetadataStringValue"},
            })
        );
        let back: CustomProperties = serde_json::from_value(serde_json::to_value(&properties).unwrap()).unwrap();
        assert_eq!(back, properties);
    }

    #[test]
    fn int_values_are_read_from_strings_or_numbers_and_bad_ones_are_named() {
        let from_number: MetadataValue =
            serde_json::from_value(json!({"int_value": 7, "metadataType": "MetadataIntValue"})).unwrap();
        assert_eq!(from_number, MetadataValue::Int { int_value: 7 });
        let err =
            serde_json::from_value::<MetadataValue>(json!({"int_value": "seven", "metadataType": "MetadataIntValue"}))
                .unwrap_err();
        assert!(err.to_string().contains("int_value \"seven\""), "{err}");
    }

    #[test]
    fn read_forms_ignore_unknown_fields_and_create_forms_omit_absent_ones() {
        let version: ModelVersion = serde_json::from_value(json!({
            "id": "3", "name": "1", "registeredModelId": "1", "somethingNew": [1, 2],
            "createTimeSinceEpoch": "1700000000000"
        }))
        .unwrap();
        assert_eq!(version.registered_model_id, "1");
        assert!(version.custom_properties.is_empty());

        let create =
            RegisteredModelCreate { name: "jukebox".into(), state: Some(ModelState::Live), ..Default::default() };
        assert_eq!(serde_json::to_value(&create).unwrap(), json!({"name": "jukebox", "state": "LIVE"}));

        let artifact = ModelArtifactCreate {
            fields: ModelArtifactFields { uri: Some("s3://b/k".into()), ..Default::default() },
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&artifact).unwrap(),
            json!({"artifactType": "model-artifact", "uri": "s3://b/k", "customProperties": {}})
        );
    }

    #[test]
    fn epoch_millis_read_as_utc_times() {
        assert_eq!(format_epoch_millis(Some("1700000000000")), "2023-11-14 22:13:20 UTC");
        assert_eq!(format_epoch_millis(Some("0")), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_epoch_millis(Some("soon")), "soon");
        assert_eq!(format_epoch_millis(None), "");
    }
}
