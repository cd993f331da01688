//! Infer requests decoded straight into f32 tensors, and answers written into one buffer.
//!
//! The generic route, `serde_json` into [`jukebox_protocol::inference::InferRequest`], builds
//! every number as an f64 inside a [`jukebox_protocol::inference::TensorData`] and then copies
//! it into the f32 vector ONNX Runtime takes: two vectors and a conversion pass per input, twice
//! the memory of the tensor at its peak. This decoder is a serde visitor that pushes each JSON
//! number into a `Vec<f32>` sized from the input's `shape` as it is read (flat or nested `data`,
//! row-major, the same rules as `TensorData`: the first scalar fixes the kind, numbers and
//! booleans may not mix, strings are refused later by name). Everything else of the request is
//! small and decoded as the protocol types decode it.
//!
//! The answer is written field by field into a buffer sized up front, in the order
//! [`jukebox_protocol::inference::InferResponse`] serialises, so clients see the same bytes.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use jukebox_protocol::inference::{
    binary_data_size, deserialize_flat, flag, DataKind, Parameters, RequestedOutput, ScalarSink,
    PARAM_BINARY_DATA_OUTPUT, PARAM_BINARY_DATA_SIZE,
};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::Deserializer;

use super::precheck::{EachInput, Scan, Str};

/// An infer request with its tensors already f32; names borrowed from the body.
#[derive(Debug, Default)]
pub struct Request<'a> {
    pub id: Option<String>,
    /// The request parameter `binary_data_output` (false when absent or not a boolean).
    pub binary_data_output: bool,
    pub inputs: Vec<Input<'a>>,
    pub outputs: Option<Vec<RequestedOutput>>,
}

/// One input tensor of a [`Request`].
#[derive(Debug)]
pub struct Input<'a> {
    pub name: Cow<'a, str>,
    pub shape: Vec<i64>,
    pub datatype: Cow<'a, str>,
    /// `parameters.binary_data_size`: the tensor's bytes follow the JSON.
    pub binary_data_size: Option<u64>,
    pub data: Option<Data>,
}

/// The `data` of an input.
#[derive(Debug, PartialEq)]
pub enum Data {
    /// Numbers (or booleans as 1 and 0), row-major.
    Values(Vec<f32>),
    /// Strings: no model served here takes them; the caller names the input in its refusal.
    Strings,
}

/// Decodes the JSON part of an infer request.
pub fn decode(json: &[u8]) -> Result<Request<'_>, serde_json::Error> {
    decode_within(json, None)
}

/// [`decode`], checking the request's limits as each `shape` and `data` is read, in the same
/// order as the size check before decoding: after an error, `scan` holds the limit broken, if
/// that was the cause.
pub fn decode_checked<'j>(json: &'j [u8], scan: &Scan<'_>) -> Result<Request<'j>, serde_json::Error> {
    decode_within(json, Some(scan))
}

fn decode_within<'j>(json: &'j [u8], scan: Option<&Scan<'_>>) -> Result<Request<'j>, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let reading = Reading { budget: reserve_budget(json), scan };
    let request = deserializer.deserialize_map(RequestVisitor(&reading))?;
    deserializer.end()?;
    Ok(request)
}

/// What decoding carries down to each input: the values it may still reserve, and the limits
/// to check (none for [`decode`]).
struct Reading<'b> {
    budget: Cell<usize>,
    scan: Option<&'b Scan<'b>>,
}

/// Values reserved ahead from declared shapes, over all inputs: each JSON value takes at least
/// two bytes (`0,`), so more than half the body's length cannot arrive. The size check before
/// decoding bounds what the server accepts; this keeps a shape (the client's word) from
/// reserving more than the body could fill when decoding is called without it.
fn reserve_budget(json: &[u8]) -> Cell<usize> {
    Cell::new(json.len() / 2)
}

struct RequestVisitor<'b>(&'b Reading<'b>);

impl<'de> Visitor<'de> for RequestVisitor<'_> {
    type Value = Request<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an inference request object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Request<'de>, A::Error> {
        let mut request = Request::default();
        let (mut seen_id, mut seen_parameters, mut seen_inputs, mut seen_outputs) = (false, false, false, false);
        while let Some(key) = map.next_key::<Str<'de>>()? {
            match key.0.as_ref() {
                "id" => {
                    once(&mut seen_id, "id")?;
                    request.id = map.next_value()?;
                }
                "parameters" => {
                    once(&mut seen_parameters, "parameters")?;
                    let parameters: Option<Parameters> = map.next_value()?;
                    request.binary_data_output = flag(parameters.as_ref(), PARAM_BINARY_DATA_OUTPUT);
                }
                "inputs" => {
                    once(&mut seen_inputs, "inputs")?;
                    request.inputs = map.next_value_seed(EachInput(|index| InputVisitor { reading: self.0, index }))?;
                }
                "outputs" => {
                    once(&mut seen_outputs, "outputs")?;
                    request.outputs = map.next_value()?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if !seen_inputs {
            return Err(de::Error::missing_field("inputs"));
        }
        Ok(request)
    }
}

/// A field given twice is an error, as serde's derived decoders make it.
fn once<E: de::Error>(seen: &mut bool, field: &'static str) -> Result<(), E> {
    if std::mem::replace(seen, true) {
        return Err(E::duplicate_field(field));
    }
    Ok(())
}

struct InputVisitor<'b> {
    reading: &'b Reading<'b>,
    /// Its place among the request's inputs (for refusals that cannot name it).
    index: usize,
}

impl<'de> Visitor<'de> for InputVisitor<'_> {
    type Value = Input<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an input tensor object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Input<'de>, A::Error> {
        let mut name: Option<Str<'de>> = None;
        let mut shape: Option<Vec<i64>> = None;
        let mut datatype: Option<Str<'de>> = None;
        let mut parameters: Option<Option<Parameters>> = None;
        let mut data: Option<Option<Data>> = None;
        while let Some(key) = map.next_key::<Str<'de>>()? {
            match key.0.as_ref() {
                "name" if name.is_some() => return Err(de::Error::duplicate_field("name")),
                "name" => name = Some(map.next_value()?),
                "shape" if shape.is_some() => return Err(de::Error::duplicate_field("shape")),
                "shape" => {
                    let value: Vec<i64> = map.next_value()?;
                    if let Some(scan) = self.reading.scan {
                        scan.check_input_shape(self.index, name.as_ref().map(|n| n.0.as_ref()), &value)?;
                    }
                    shape = Some(value);
                }
                "datatype" if datatype.is_some() => return Err(de::Error::duplicate_field("datatype")),
                "datatype" => datatype = Some(map.next_value()?),
                "parameters" if parameters.is_some() => return Err(de::Error::duplicate_field("parameters")),
                "parameters" => parameters = Some(map.next_value()?),
                "data" if data.is_some() => return Err(de::Error::duplicate_field("data")),
                "data" => {
                    // Clients send `shape` before `data`, so the vector is sized once.
                    let expected = shape.as_ref().map_or(0, |s| {
                        s.iter().try_fold(1usize, |acc, &d| acc.checked_mul(usize::try_from(d).ok()?)).unwrap_or(0)
                    });
                    let budget = &self.reading.budget;
                    let reserve = expected.min(budget.get());
                    budget.set(budget.get() - reserve);
                    data = Some(map.next_value_seed(DataSeed { reserve, scan: self.reading.scan })?);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let parameters = parameters.flatten();
        Ok(Input {
            name: name.ok_or_else(|| de::Error::missing_field("name"))?.0,
            shape: shape.ok_or_else(|| de::Error::missing_field("shape"))?,
            datatype: datatype.ok_or_else(|| de::Error::missing_field("datatype"))?.0,
            binary_data_size: binary_data_size(parameters.as_ref()),
            data: data.flatten(),
        })
    }
}

/// `data`: `null` (absent) or a flat or nested array.
struct DataSeed<'b> {
    reserve: usize,
    scan: Option<&'b Scan<'b>>,
}

impl<'de> DeserializeSeed<'de> for DataSeed<'_> {
    type Value = Option<Data>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<Data>, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for DataSeed<'_> {
    type Value = Option<Data>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array (flat or nested) of numbers, booleans or strings")
    }

    fn visit_none<E: de::Error>(self) -> Result<Option<Data>, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<Data>, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<Data>, D::Error> {
        let mut values = Values { values: Vec::with_capacity(self.reserve), strings: 0 };
        let kind = deserialize_flat(deserializer, &mut values)?;
        if let Some(scan) = self.scan {
            scan.count_values(values.values.len() as u64 + values.strings)?;
        }
        Ok(Some(match kind {
            DataKind::Strings => Data::Strings,
            DataKind::Empty | DataKind::Numbers | DataKind::Bools => Data::Values(values.values),
        }))
    }
}

/// The values of a `data` array as the model takes them: numbers as f32 (through f64, as
/// `TensorData` reads them, so both routes give the same f32), booleans as 0/1; strings are
/// only counted (the answer refuses them by datatype).
struct Values {
    values: Vec<f32>,
    strings: u64,
}

impl ScalarSink for Values {
    fn number(&mut self, v: f64) {
        self.values.push(v as f32);
    }
    fn boolean(&mut self, v: bool) {
        self.values.push(if v { 1.0 } else { 0.0 });
    }
    fn string(&mut self, _: &str) {
        self.strings += 1;
    }
}

/// One output of an answer: JSON `data`, or bytes after the JSON (`binary_data_size`).
pub struct Answer<'a> {
    pub name: &'a str,
    pub datatype: &'a str,
    pub shape: &'a [i64],
    pub data: &'a [f32],
    pub binary: bool,
}

/// Writes an infer answer: the JSON document, then the bytes of the outputs sent as binary.
/// Returns the buffer and the JSON part's length (`Inference-Header-Content-Length` when
/// binary data follows).
pub fn encode(model_name: &str, model_version: u64, id: Option<&str>, outputs: &[Answer<'_>]) -> (Vec<u8>, usize) {
    // Sized up front (an f32 prints in at most 15 bytes plus a comma): growing by doubling would
    // hold the old and the new buffer at once, 190 MB for a 100,000-row answer. Untouched
    // capacity costs address space, not resident memory.
    let json_values: usize = outputs.iter().filter(|o| !o.binary).map(|o| o.data.len()).sum();
    let binary_bytes: usize = outputs.iter().filter(|o| o.binary).map(|o| o.data.len() * 4).sum();
    let mut body =
        Vec::with_capacity(json_values.saturating_mul(16).saturating_add(256 * (outputs.len() + 1)) + binary_bytes);
    body.extend_from_slice(b"{\"model_name\":");
    write_str(&mut body, model_name);
    body.extend_from_slice(b",\"model_version\":\"");
    body.extend_from_slice(model_version.to_string().as_bytes());
    body.push(b'"');
    // Always an id ("" when the request had none), as KServe answers: its InferenceResponse
    // model requires the field (kernel/tests/test_contracts_model_server.py).
    body.extend_from_slice(b",\"id\":");
    write_str(&mut body, id.unwrap_or(""));
    body.extend_from_slice(b",\"outputs\":[");
    for (i, output) in outputs.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(b"{\"name\":");
        write_str(&mut body, output.name);
        body.extend_from_slice(b",\"datatype\":");
        write_str(&mut body, output.datatype);
        body.extend_from_slice(b",\"shape\":");
        serde_json::to_writer(&mut body, output.shape).expect("writing to a Vec cannot fail");
        if output.binary {
            body.extend_from_slice(b",\"parameters\":{\"");
            body.extend_from_slice(PARAM_BINARY_DATA_SIZE.as_bytes());
            body.extend_from_slice(b"\":");
            body.extend_from_slice((output.data.len() * 4).to_string().as_bytes());
            body.push(b'}');
        } else {
            // serde_json prints each f32 in its shortest round-trip form (and a non-finite one
            // as null), as the protocol types do.
            body.extend_from_slice(b",\"data\":");
            serde_json::to_writer(&mut body, output.data).expect("writing to a Vec cannot fail");
        }
        body.push(b'}');
    }
    body.extend_from_slice(b"]}");
    let json_length = body.len();
    for output in outputs.iter().filter(|o| o.binary) {
        for value in output.data {
            body.extend_from_slice(&value.to_le_bytes());
        }
    }
    (body, json_length)
}

/// A JSON string, escaped as serde_json escapes it.
fn write_str(body: &mut Vec<u8>, text: &str) {
    serde_json::to_writer(body, text).expect("writing to a Vec cannot fail");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model_server::config::InferLimits;
    use crate::model_server::precheck;
    use jukebox_protocol::inference::{InferOutput, InferRequest, InferResponse, TensorData};

    #[test]
    fn decodes_as_the_protocol_types_do() {
        let body = br#"{"id":"7","parameters":{"binary_data_output":true,"x":[1]},"extra":{"a":1},
            "inputs":[{"name":"a","shape":[2,2],"datatype":"FP32","data":[[1,2.5],[-3,0.1]]},
                      {"name":"b","shape":[2],"datatype":"BOOL","data":[true,false]},
                      {"name":"c\u0063","shape":[1],"datatype":"BYTES","data":["x"]},
                      {"name":"d","shape":[2,1],"datatype":"FP32","parameters":{"binary_data_size":8}}],
            "outputs":[{"name":"output","parameters":{"binary_data":false}}]}"#;
        let ours = decode(body).unwrap();
        let theirs: InferRequest = serde_json::from_slice(body).unwrap();
        assert_eq!(ours.id, theirs.id);
        assert_eq!(ours.binary_data_output, theirs.binary_data_output());
        assert_eq!(ours.outputs, theirs.outputs);
        for (a, b) in ours.inputs.iter().zip(&theirs.inputs) {
            assert_eq!(
                (a.name.as_ref(), &a.shape, a.datatype.as_ref()),
                (b.name.as_str(), &b.shape, b.datatype.as_str())
            );
            assert_eq!(a.binary_data_size, b.binary_data_size());
            let expected = b.data.as_ref().map(|d| match d.to_f32() {
                Some(values) => Data::Values(values),
                None => Data::Strings,
            });
            assert_eq!(a.data, expected);
        }
    }

    #[test]
    fn refuses_what_the_protocol_types_refuse() {
        for body in [
            r#"{"inputs":[{"name":"a","shape":[2],"datatype":"FP32","data":[1,true]}]}"#,
            r#"{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":{"x":1}}]}"#,
            r#"{"inputs":[{"name":"a","datatype":"FP32","data":[1]}]}"#,
            r#"{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1]}],"inputs":[]}"#,
            r#"{"outputs":[]}"#,
            r#"{"inputs":[]} trailing"#,
            r#"[1]"#,
        ] {
            assert!(decode(body.as_bytes()).is_err(), "{body}");
            assert!(serde_json::from_str::<InferRequest>(body).is_err(), "{body}");
        }
        let deep = format!(
            r#"{{"inputs":[{{"name":"a","shape":[1],"datatype":"FP32","data":{}1{}}}]}}"#,
            "[".repeat(40),
            "]".repeat(40)
        );
        assert!(decode(deep.as_bytes()).is_err());
    }

    #[test]
    fn a_shape_reserves_no_more_than_the_body_can_fill() {
        let input = r#"{"name":"a","shape":[100000000,1000],"datatype":"FP32","data":[1]}"#;
        let body = format!(r#"{{"inputs":[{}]}}"#, vec![input; 50].join(","));
        let request = decode(body.as_bytes()).unwrap();
        let reserved: usize = request
            .inputs
            .iter()
            .map(|i| match &i.data {
                Some(Data::Values(v)) => v.capacity(),
                _ => 0,
            })
            .sum();
        // At most half the body up front; the rest is growth from values that arrived (4 each).
        assert!(reserved <= body.len() / 2 + 4 * 50, "{reserved} values reserved for a {}-byte body", body.len());
    }

    #[test]
    fn encodes_what_the_protocol_types_serialise() {
        let data = [0.25f32, 0.75, 1e-8, f32::NAN];
        for id in [None, Some("q\"1")] {
            for binary in [false, true] {
                let (body, json_length) = encode(
                    "jukebox",
                    3,
                    id,
                    &[Answer { name: "output", datatype: "FP32", shape: &[1, 4], data: &data, binary }],
                );
                let mut parameters = Parameters::new();
                parameters.insert(PARAM_BINARY_DATA_SIZE.to_string(), 16.into());
                let expected = InferResponse {
                    model_name: "jukebox".into(),
                    model_version: Some("3".into()),
                    id: Some(id.unwrap_or("").to_string()),
                    parameters: None,
                    outputs: vec![InferOutput {
                        name: "output".into(),
                        datatype: "FP32".into(),
                        shape: vec![1, 4],
                        parameters: binary.then_some(parameters),
                        data: (!binary).then(|| TensorData::F32(data.to_vec())),
                    }],
                };
                assert_eq!(&body[..json_length], serde_json::to_vec(&expected).unwrap().as_slice());
                let tail: Vec<u8> = if binary { data.iter().flat_map(|v| v.to_le_bytes()).collect() } else { vec![] };
                assert_eq!(&body[json_length..], tail.as_slice());
            }
        }
    }

    #[test]
    fn decoding_small_bodies_refuses_with_the_same_words_as_the_scan() {
        let values = vec!["1"; 1001].join(",");
        let rank = vec!["1"; 33].join(",");
        let bodies = [
            r#"{"inputs":[{"name":"a","shape":[101,1],"datatype":"FP32","data":[1]}]}"#.to_string(),
            r#"{"inputs":[{"shape":[101,1],"name":"a","datatype":"FP32","data":[1]}]}"#.to_string(),
            r#"{"inputs":[{"name":"a","shape":[100,6],"datatype":"FP32"},{"name":"b","shape":[100,6],"datatype":"FP32"}]}"#.to_string(),
            format!(r#"{{"inputs":[{{"name":"x","datatype":"FP32","data":[[{values}]],"shape":[1,1001]}}]}}"#),
            format!(r#"{{"inputs":[{{"name":"x","datatype":"FP32","shape":[{rank}],"data":[1]}}]}}"#),
        ];
        let limits = InferLimits { max_rows: 100, max_elements: 1000, ..InferLimits::default() };
        for body in &bodies {
            let scanned = precheck::check(body.as_bytes(), &limits).unwrap_err().to_string();
            let scan = Scan::new(&limits);
            assert!(decode_checked(body.as_bytes(), &scan).is_err(), "{body}");
            let decoded = scan.take_violation().expect("a limit broken").to_string();
            assert_eq!(decoded, scanned, "{body}");
        }
        // Within the limits: decoded, and weighed as the scan weighs it.
        let ok = r#"{"id":"x","inputs":[{"name":"a","shape":[10,6],"datatype":"FP32","data":[[1,2,3,4,5,6]]}]}"#;
        let scan = Scan::new(&limits);
        assert!(decode_checked(ok.as_bytes(), &scan).is_ok());
        assert!(scan.take_violation().is_none());
        assert_eq!(scan.elements(), precheck::check(ok.as_bytes(), &limits).unwrap());
    }
}
