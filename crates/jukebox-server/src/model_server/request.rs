//! An infer request checked against its model, and its answer.
//!
//! [`prepare`] turns a body (JSON, optionally followed by the binary tensor data extension's
//! bytes, see [`jukebox_protocol::inference`]) into a [`Prepared`] request: inputs decoded into
//! f32 tensors by the `tensors` module (checking the request limits as they are read when given
//! a `precheck::Scan`), matched to the model's inputs by name, datatype and binary size, and the
//! outputs to answer chosen and checked. Every refusal names the tensor at fault and answers 4xx
//! before the model runs. [`respond`] writes the outputs back the way the request asked: JSON
//! `data`, or binary data after the JSON with the protocol's length header.

use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use jukebox_protocol::inference::{HEADER_INFERENCE_CONTENT_LENGTH, PARAM_BINARY_DATA_SIZE};
use jukebox_runtime::{InputTensor, RuntimeError};

use super::error::ModelServerError;
use super::precheck;
use super::repository::LoadedModel;
use super::tensors;

/// An input of a decoded request: its index among the model's inputs (whose name it has), shape,
/// values.
pub(super) type DecodedInput = (usize, Vec<i64>, Vec<f32>);

/// The request's inputs as the runtime takes them, named by the model's own strings.
pub(super) fn input_tensors<'a>(loaded: &'a LoadedModel, inputs: &'a [DecodedInput]) -> Vec<InputTensor<'a>> {
    inputs.iter().map(|(index, shape, data)| InputTensor::new(&loaded.inputs[*index].name, shape, data)).collect()
}

/// Length of the JSON part of an infer body (`Inference-Header-Content-Length`, or all of it).
pub(super) fn json_length(headers: &HeaderMap, body: &Bytes) -> Result<usize, ModelServerError> {
    match headers.get(HEADER_INFERENCE_CONTENT_LENGTH) {
        None => Ok(body.len()),
        Some(value) => {
            value.to_str().ok().and_then(|v| v.trim().parse::<usize>().ok()).filter(|&n| n <= body.len()).ok_or_else(
                || {
                    ModelServerError::BadRequest(format!(
                    "header {HEADER_INFERENCE_CONTENT_LENGTH} must be a byte count no larger than the body ({} bytes)",
                    body.len()
                ))
                },
            )
        }
    }
}

/// A decoded infer request checked against the model's signature, before it runs.
pub(super) struct Prepared {
    pub(super) id: Option<String>,
    /// Inputs in request order.
    pub(super) inputs: Vec<DecodedInput>,
    /// The outputs to answer, in answer order: (index among the model's outputs, as binary data).
    pub(super) selected: Vec<(usize, bool)>,
}

/// Decodes an infer body (JSON, optionally followed by binary tensor data) into f32 tensors and
/// checks names, datatypes, binary sizes and the outputs asked for; with `scan`, also the
/// request limits, as its JSON is read (the size check of small bodies).
pub(super) fn prepare(
    loaded: &LoadedModel,
    headers: &HeaderMap,
    body: &Bytes,
    scan: Option<&precheck::Scan<'_>>,
) -> Result<Prepared, ModelServerError> {
    let json_length = json_length(headers, body)?;
    let (json, mut binary) = body.split_at(json_length);
    let request = match scan {
        Some(scan) => tensors::decode_checked(json, scan),
        None => tensors::decode(json),
    }
    .map_err(|e| {
        // A broken limit ends decoding with an error of its own; the refusal says which limit.
        scan.and_then(precheck::Scan::take_violation)
            .unwrap_or_else(|| ModelServerError::BadRequest(format!("invalid inference request JSON: {e}")))
    })?;

    // Decode every input to f32, in request order (binary sections follow that order).
    let mut inputs: Vec<DecodedInput> = Vec::with_capacity(request.inputs.len());
    for input in request.inputs {
        let Some(index) = loaded.inputs.iter().position(|i| i.name == input.name) else {
            let known = loaded.inputs.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(", ");
            return Err(ModelServerError::Tensor(RuntimeError::UnknownInput {
                name: input.name.into_owned(),
                expected: known,
            }));
        };
        let expected = &loaded.inputs[index];
        if input.datatype != expected.datatype {
            return Err(ModelServerError::BadRequest(format!(
                "input tensor '{}' has datatype {} but the model expects {}",
                input.name, input.datatype, expected.datatype
            )));
        }
        if let Some(&bad) = input.shape.iter().find(|&&d| d < 0) {
            return Err(ModelServerError::BadRequest(format!(
                "input tensor '{}' has a negative dimension ({bad}) in shape {:?}",
                input.name, input.shape
            )));
        }
        let data = if let Some(size) = input.binary_data_size {
            let size = usize::try_from(size).unwrap_or(usize::MAX);
            if size > binary.len() {
                return Err(ModelServerError::BadRequest(format!(
                    "input tensor '{}' declares {size} bytes of binary data but only {} remain in the body",
                    input.name,
                    binary.len()
                )));
            }
            if size % 4 != 0 {
                return Err(ModelServerError::BadRequest(format!(
                    "input tensor '{}' has {size} bytes of binary data, not a whole number of FP32 values",
                    input.name
                )));
            }
            let (bytes, rest) = binary.split_at(size);
            binary = rest;
            bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
        } else {
            match input.data {
                Some(tensors::Data::Values(values)) => values,
                Some(tensors::Data::Strings) => {
                    return Err(ModelServerError::BadRequest(format!(
                        "input tensor '{}' holds strings, not FP32 numbers",
                        input.name
                    )))
                }
                None => {
                    return Err(ModelServerError::BadRequest(format!(
                        "input tensor '{}' has neither `data` nor parameters.{PARAM_BINARY_DATA_SIZE}",
                        input.name
                    )))
                }
            }
        };
        inputs.push((index, input.shape, data));
    }
    if !binary.is_empty() {
        return Err(ModelServerError::BadRequest(format!(
            "{} bytes of binary data follow the JSON but no input claims them (parameters.{PARAM_BINARY_DATA_SIZE})",
            binary.len()
        )));
    }

    // Which outputs to return, and which of them as binary data; checked before running.
    let binary_default = request.binary_data_output;
    let selected: Vec<(usize, bool)> = match &request.outputs {
        None => (0..loaded.outputs.len()).map(|i| (i, binary_default)).collect(),
        Some(requested) => requested
            .iter()
            .enumerate()
            .map(|(i, r)| {
                if requested[..i].iter().any(|earlier| earlier.name == r.name) {
                    return Err(ModelServerError::DuplicateOutput { name: r.name.clone() });
                }
                let index = loaded.outputs.iter().position(|o| o.name == r.name).ok_or_else(|| {
                    let known = loaded.outputs.iter().map(|o| o.name.as_str()).collect::<Vec<_>>().join(", ");
                    ModelServerError::BadRequest(format!(
                        "unknown output tensor '{}'; the model gives: {known}",
                        r.name
                    ))
                })?;
                Ok((index, r.binary_data().unwrap_or(binary_default)))
            })
            .collect::<Result<_, ModelServerError>>()?,
    };
    Ok(Prepared { id: request.id, inputs, selected })
}

/// The answer to a request: the selected outputs, as JSON data or binary data after the JSON.
pub(super) fn respond(
    loaded: &LoadedModel,
    id: Option<&str>,
    selected: &[(usize, bool)],
    results: &[jukebox_runtime::OutputTensor],
) -> Response {
    let answers: Vec<tensors::Answer<'_>> = selected
        .iter()
        .map(|&(index, binary)| tensors::Answer {
            name: &loaded.outputs[index].name,
            datatype: &loaded.outputs[index].datatype,
            shape: &results[index].shape,
            data: &results[index].data,
            binary,
        })
        .collect();
    let (body, json_length) = tensors::encode(&loaded.name, loaded.version, id, &answers);
    if json_length == body.len() {
        return ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    }
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream")),
            (inference_header_content_length(), HeaderValue::from(json_length)),
        ],
        body,
    )
        .into_response()
}

/// The protocol's [`HEADER_INFERENCE_CONTENT_LENGTH`] as a header name (`HeaderName::from_static`
/// takes lower case only; HTTP header names are case-insensitive, so this is the same header).
fn inference_header_content_length() -> header::HeaderName {
    header::HeaderName::from_bytes(HEADER_INFERENCE_CONTENT_LENGTH.as_bytes())
        .expect("the protocol's header name is valid")
}
