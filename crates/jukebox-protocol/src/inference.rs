//! KServe v2 / Open Inference Protocol (REST) documents, as OpenVINO Model Server, Triton and
//! KServe's Python server speak them.
//!
//! | route | document |
//! |---|---|
//! | `GET /v2` | [`ServerMetadata`] |
//! | `GET /v2/models/{name}[/versions/{v}]` | [`ModelMetadata`] |
//! | `POST /v2/models/{name}[/versions/{v}]/infer` | [`InferRequest`] -> [`InferResponse`] |
//! | any failure | [`ErrorResponse`] `{"error": "..."}` |
//!
//! Tensor `data` is row-major. Clients may send it flat (`[1, 2, 3, 4]`) or nested by shape
//! (`[[1, 2], [3, 4]]`); [`TensorData`] flattens either on the way in.
//!
//! Binary tensor data extension (what `tritonclient` uses by default): the HTTP body is the
//! JSON document followed by raw little-endian tensor bytes, and the header
//! [`HEADER_INFERENCE_CONTENT_LENGTH`] gives the JSON's length. An input whose
//! `parameters.binary_data_size` is set carries its bytes there (in input order) instead of
//! `data`; outputs asked for with `parameters.binary_data: true` (or all outputs, with the
//! request parameter `binary_data_output: true`) come back the same way, each with
//! `parameters.binary_data_size`.

use serde::de::{self, DeserializeSeed, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Free-form `parameters` object of a request, tensor or response.
pub type Parameters = serde_json::Map<String, serde_json::Value>;

/// Header giving the JSON part's length when binary tensor data follows it.
pub const HEADER_INFERENCE_CONTENT_LENGTH: &str = "Inference-Header-Content-Length";
/// Tensor parameter: byte length of this tensor's binary data.
pub const PARAM_BINARY_DATA_SIZE: &str = "binary_data_size";
/// Requested-output parameter: return this output as binary data.
pub const PARAM_BINARY_DATA: &str = "binary_data";
/// Request parameter: return every output as binary data unless an output says otherwise.
pub const PARAM_BINARY_DATA_OUTPUT: &str = "binary_data_output";
/// The `platform` of an ONNX model served by ONNX Runtime (Triton's name, used by OVMS too).
pub const PLATFORM_ONNX: &str = "onnxruntime_onnx";

/// `GET /v2`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerMetadata {
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub extensions: Vec<String>,
}

/// One input or output in [`ModelMetadata`]: `shape` uses `-1` for a dynamic dimension.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorMetadata {
    pub name: String,
    pub datatype: String,
    pub shape: Vec<i64>,
}

/// `GET /v2/models/{name}[/versions/{v}]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMetadata {
    pub name: String,
    #[serde(default)]
    pub versions: Vec<String>,
    pub platform: String,
    pub inputs: Vec<TensorMetadata>,
    pub outputs: Vec<TensorMetadata>,
}

/// Body of `POST .../infer`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct InferRequest {
    pub id: Option<String>,
    pub parameters: Option<Parameters>,
    pub inputs: Vec<InferInput>,
    pub outputs: Option<Vec<RequestedOutput>>,
}

impl InferRequest {
    /// The request-level `binary_data_output` flag (false when absent).
    pub fn binary_data_output(&self) -> bool {
        flag(self.parameters.as_ref(), PARAM_BINARY_DATA_OUTPUT)
    }
}

/// One input tensor of an [`InferRequest`].
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InferInput {
    pub name: String,
    pub shape: Vec<i64>,
    pub datatype: String,
    pub parameters: Option<Parameters>,
    pub data: Option<TensorData>,
}

impl InferInput {
    /// An FP32 input with JSON data.
    pub fn fp32(name: impl Into<String>, shape: Vec<i64>, data: Vec<f32>) -> Self {
        Self { name: name.into(), shape, datatype: "FP32".into(), parameters: None, data: Some(TensorData::F32(data)) }
    }

    /// `parameters.binary_data_size`, when the tensor's bytes follow the JSON.
    pub fn binary_data_size(&self) -> Option<u64> {
        binary_data_size(self.parameters.as_ref())
    }
}

/// An entry of [`InferRequest::outputs`]: which output to return, and how.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestedOutput {
    pub name: String,
    pub parameters: Option<Parameters>,
}

impl RequestedOutput {
    /// `parameters.binary_data` if given.
    pub fn binary_data(&self) -> Option<bool> {
        self.parameters.as_ref()?.get(PARAM_BINARY_DATA)?.as_bool()
    }
}

/// Response to `POST .../infer`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InferResponse {
    pub model_name: String,
    pub model_version: Option<String>,
    pub id: Option<String>,
    pub parameters: Option<Parameters>,
    pub outputs: Vec<InferOutput>,
}

impl InferResponse {
    /// The output called `name`.
    pub fn output(&self, name: &str) -> Option<&InferOutput> {
        self.outputs.iter().find(|o| o.name == name)
    }
}

/// One output tensor of an [`InferResponse`]. `data` is absent when the bytes are sent
/// binary (then `parameters.binary_data_size` is set).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InferOutput {
    pub name: String,
    pub datatype: String,
    pub shape: Vec<i64>,
    pub parameters: Option<Parameters>,
    pub data: Option<TensorData>,
}

/// Every failure: `{"error": "..."}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub error: String,
}

/// Tensor values, flattened row-major.
///
/// Deserialising accepts flat or nested JSON arrays of numbers, booleans or strings and yields
/// `Numbers`, `Bools` or `Strings` (numbers as f64 so INT64 and FP64 values survive; cast per
/// the tensor's `datatype`). `F32` exists for senders that hold f32 values (the model server's
/// outputs, the request client's inputs) and serialises as plain numbers.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    Numbers(Vec<f64>),
    F32(Vec<f32>),
    Bools(Vec<bool>),
    Strings(Vec<String>),
}

impl TensorData {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            Self::Numbers(v) => v.len(),
            Self::F32(v) => v.len(),
            Self::Bools(v) => v.len(),
            Self::Strings(v) => v.len(),
        }
    }

    /// True when there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values as f32 (numbers and booleans), `None` for strings.
    pub fn to_f32(&self) -> Option<Vec<f32>> {
        match self {
            Self::Numbers(v) => Some(v.iter().map(|&x| x as f32).collect()),
            Self::F32(v) => Some(v.clone()),
            Self::Bools(v) => Some(v.iter().map(|&b| if b { 1.0 } else { 0.0 }).collect()),
            Self::Strings(_) => None,
        }
    }
}

impl Serialize for TensorData {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Numbers(v) => v.serialize(serializer),
            Self::F32(v) => v.serialize(serializer),
            Self::Bools(v) => v.serialize(serializer),
            Self::Strings(v) => v.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for TensorData {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Default)]
        struct Gathered {
            numbers: Vec<f64>,
            bools: Vec<bool>,
            strings: Vec<String>,
        }
        impl ScalarSink for Gathered {
            fn number(&mut self, v: f64) {
                self.numbers.push(v);
            }
            fn boolean(&mut self, v: bool) {
                self.bools.push(v);
            }
            fn string(&mut self, v: &str) {
                self.strings.push(v.to_string());
            }
        }
        let mut gathered = Gathered::default();
        Ok(match deserialize_flat(deserializer, &mut gathered)? {
            DataKind::Empty | DataKind::Numbers => TensorData::Numbers(gathered.numbers),
            DataKind::Bools => TensorData::Bools(gathered.bools),
            DataKind::Strings => TensorData::Strings(gathered.strings),
        })
    }
}

/// Where [`deserialize_flat`] puts the scalars of a tensor's `data`, in row-major order. Only
/// one kind arrives per tensor (mixing kinds is refused before the sink sees it). Generic, not
/// `dyn`: the model server's decoder calls it once per value of large requests.
pub trait ScalarSink {
    fn number(&mut self, v: f64);
    fn boolean(&mut self, v: bool);
    fn string(&mut self, v: &str);
}

/// The kind of scalars a tensor's `data` held (`Empty` for `[]`): the first one fixes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataKind {
    Empty,
    Numbers,
    Bools,
    Strings,
}

/// Nesting deeper than this is not a tensor a model takes; refusing it bounds recursion.
pub const MAX_DATA_DEPTH: usize = 32;

/// Reads a tensor's `data`, flat or nested by shape, into `sink` and says what kind it held.
/// Refuses a scalar of another kind than the first ("tensor data mixes numbers with booleans or
/// strings", ...) and nesting deeper than [`MAX_DATA_DEPTH`]. Integers arrive as `f64`. The
/// client types ([`TensorData`]) and the model server's streaming decoder both read `data`
/// with it, so they accept and refuse the same documents.
pub fn deserialize_flat<'de, D: Deserializer<'de>, S: ScalarSink>(
    deserializer: D,
    sink: &mut S,
) -> Result<DataKind, D::Error> {
    let mut kind = DataKind::Empty;
    deserializer.deserialize_any(FlattenSeed { sink, kind: &mut kind, depth: 0 })?;
    Ok(kind)
}

struct FlattenSeed<'a, S> {
    sink: &'a mut S,
    kind: &'a mut DataKind,
    depth: usize,
}

impl<S: ScalarSink> FlattenSeed<'_, S> {
    fn check<E: de::Error>(&mut self, kind: DataKind) -> Result<(), E> {
        if *self.kind != kind {
            if *self.kind != DataKind::Empty {
                return Err(E::custom(match kind {
                    DataKind::Numbers => "tensor data mixes numbers with booleans or strings",
                    DataKind::Bools => "tensor data mixes booleans with numbers or strings",
                    _ => "tensor data mixes strings with numbers or booleans",
                }));
            }
            *self.kind = kind;
        }
        Ok(())
    }

    fn number<E: de::Error>(mut self, v: f64) -> Result<(), E> {
        self.check(DataKind::Numbers)?;
        self.sink.number(v);
        Ok(())
    }
}

impl<'de, S: ScalarSink> DeserializeSeed<'de> for FlattenSeed<'_, S> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, S: ScalarSink> Visitor<'de> for FlattenSeed<'_, S> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array (flat or nested) of numbers, booleans or strings")
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.number(v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.number(v as f64)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.number(v as f64)
    }
    fn visit_bool<E: de::Error>(mut self, v: bool) -> Result<(), E> {
        self.check(DataKind::Bools)?;
        self.sink.boolean(v);
        Ok(())
    }
    fn visit_str<E: de::Error>(mut self, v: &str) -> Result<(), E> {
        self.check(DataKind::Strings)?;
        self.sink.string(v);
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if self.depth >= MAX_DATA_DEPTH {
            return Err(de::Error::custom(format!("tensor data nested deeper than {MAX_DATA_DEPTH} levels")));
        }
        let (sink, kind) = (self.sink, self.kind);
        while seq
            .next_element_seed(FlattenSeed { sink: &mut *sink, kind: &mut *kind, depth: self.depth + 1 })?
            .is_some()
        {}
        Ok(())
    }
}

/// A boolean request parameter (`binary_data_output`, ...): false when absent or not a boolean.
pub fn flag(parameters: Option<&Parameters>, key: &str) -> bool {
    parameters.and_then(|p| p.get(key)).and_then(|v| v.as_bool()).unwrap_or(false)
}

/// An input's `binary_data_size` parameter, when its bytes follow the JSON.
pub fn binary_data_size(parameters: Option<&Parameters>) -> Option<u64> {
    parameters?.get(PARAM_BINARY_DATA_SIZE)?.as_u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_and_nested_data_flatten_row_major() {
        let flat: TensorData = serde_json::from_str("[1, 2.5, -3, 4]").unwrap();
        let nested: TensorData = serde_json::from_str("[[1, 2.5], [-3, 4]]").unwrap();
        assert_eq!(flat, TensorData::Numbers(vec![1.0, 2.5, -3.0, 4.0]));
        assert_eq!(nested, flat);
        let bools: TensorData = serde_json::from_str("[[true], [false]]").unwrap();
        assert_eq!(bools, TensorData::Bools(vec![true, false]));
        let strings: TensorData = serde_json::from_str(r#"["a", "b"]"#).unwrap();
        assert_eq!(strings, TensorData::Strings(vec!["a".into(), "b".into()]));
        assert!(serde_json::from_str::<TensorData>("[1, true]").is_err());
        assert!(serde_json::from_str::<TensorData>(r#"{"a": 1}"#).is_err());
    }

    #[test]
    fn workshop_request_parses() {
        // The body notebook 4 of the workshop sends (one input shown).
        let body = r#"{"inputs": [{"name": "danceability", "shape": [1, 1], "datatype": "FP32", "data": [0.61]}]}"#;
        let request: InferRequest = serde_json::from_str(body).unwrap();
        assert_eq!(request.inputs[0].name, "danceability");
        assert_eq!(request.inputs[0].shape, vec![1, 1]);
        assert_eq!(request.inputs[0].data.as_ref().unwrap().to_f32().unwrap(), vec![0.61f32]);
        assert!(request.id.is_none() && request.outputs.is_none() && !request.binary_data_output());
    }

    #[test]
    fn tritonclient_binary_request_parses() {
        let body = r#"{"id":"7","inputs":[{"name":"tempo","shape":[2,1],"datatype":"FP32","parameters":{"binary_data_size":8}}],"outputs":[{"name":"output","parameters":{"binary_data":true}}],"parameters":{"binary_data_output":true}}"#;
        let request: InferRequest = serde_json::from_str(body).unwrap();
        assert_eq!(request.inputs[0].binary_data_size(), Some(8));
        assert!(request.inputs[0].data.is_none());
        assert_eq!(request.outputs.as_ref().unwrap()[0].binary_data(), Some(true));
        assert!(request.binary_data_output());
    }

    #[test]
    fn response_serializes_without_empty_fields() {
        let response = InferResponse {
            model_name: "jukebox".into(),
            model_version: Some("1".into()),
            id: None,
            parameters: None,
            outputs: vec![InferOutput {
                name: "output".into(),
                datatype: "FP32".into(),
                shape: vec![1, 2],
                parameters: None,
                data: Some(TensorData::F32(vec![0.25, 0.75])),
            }],
        };
        assert_eq!(
            serde_json::to_string(&response).unwrap(),
            r#"{"model_name":"jukebox","model_version":"1","outputs":[{"name":"output","datatype":"FP32","shape":[1,2],"data":[0.25,0.75]}]}"#
        );
    }
}
