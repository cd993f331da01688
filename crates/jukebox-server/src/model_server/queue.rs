//! Running inference requests: the queue that bounds their cost, slicing large ones, handing
//! small ones to the batcher.
//!
//! A request first has its size checked (the `precheck` scan, or for a small body the decoder
//! itself), then waits in the [`InferQueue`] for its share of the elements in flight. Small
//! requests ([`INLINE_MAX_ELEMENTS`]) then run on the async worker that read them, alone or
//! merged with others by the `batch` module; larger ones are decoded and run on tokio's blocking
//! pool in slices of [`InferLimits::batch_rows`] rows ([`run_in_slices`]), because ONNX Runtime
//! keeps the memory arena a call grew to. The share is released when the answer has been sent
//! ([`PermitBody`]).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::response::Response;
use jukebox_runtime::{InputTensor, RuntimeError};

use super::batch;
use super::config::{Batching, InferLimits, DEFAULT_BATCH_ROWS, INLINE_MAX_ELEMENTS, ONE_PASS_MAX_BYTES};
use super::error::ModelServerError;
use super::precheck;
use super::repository::LoadedModel;
use super::request::{input_tensors, json_length, prepare, respond, DecodedInput, Prepared};

/// The inference queue: requests share a budget of tensor elements in flight
/// ([`InferLimits::max_elements_in_flight`]), so large requests take turns while small ones run
/// side by side, and a bounded number wait ([`InferLimits::max_waiting`], then 503).
pub(super) struct InferQueue {
    limits: InferLimits,
    /// One permit per tensor element in inference, held until the answer is sent: a large
    /// answer (80 MB of JSON for 100,000 rows) is most of a request's memory.
    in_flight: Arc<tokio::sync::Semaphore>,
    /// Requests waiting for permits.
    waiting: AtomicUsize,
}

impl InferQueue {
    pub(super) fn new(limits: InferLimits) -> Self {
        Self {
            limits,
            in_flight: Arc::new(tokio::sync::Semaphore::new(in_flight_budget(&limits) as usize)),
            waiting: AtomicUsize::new(0),
        }
    }

    /// Checks the request's size against the limits (a cheap scan, before any tensor is decoded;
    /// small bodies are decoded at once, checked as they are read), waits for its share of the
    /// in-flight budget (503 when too many already wait), then runs it: small requests on the async
    /// worker that read them, larger ones on the blocking pool so health and metadata requests keep
    /// their async workers.
    pub(super) async fn infer(
        &self,
        loaded: Arc<LoadedModel>,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<Response, ModelServerError> {
        let json_length = json_length(&headers, &body)?;
        let (elements, prepared) = if body.len() <= ONE_PASS_MAX_BYTES {
            let scan = precheck::Scan::new(&self.limits);
            let prepared = prepare(&loaded, &headers, &body, Some(&scan))?;
            (scan.elements(), Some(prepared))
        } else {
            // Scanned in place: the scan allocates nothing and takes milliseconds even for a body at
            // the limit. (Moving it to the blocking pool spread the inference work over more pool
            // threads and so more malloc arenas, and doubled peak memory under load.)
            (precheck::check(&body[..json_length], &self.limits)?, None)
        };
        let weight = elements.clamp(1, u64::from(u32::MAX)).min(in_flight_budget(&self.limits)) as u32;
        // For the metrics (crate::observe): the request's rows, how long it waits for its turn.
        let rows = crate::observe::rows_of(loaded.inputs.iter().map(|i| &i.shape), elements);
        let asked = std::time::Instant::now();
        let permit = match self.in_flight.clone().try_acquire_many_owned(weight) {
            Ok(permit) => permit,
            Err(_) => {
                let waiting = self.waiting.fetch_add(1, Ordering::SeqCst);
                let _ticket = Waiting(&self.waiting);
                if waiting >= self.limits.max_waiting {
                    return Err(ModelServerError::Busy { waiting, limit: self.limits.max_waiting });
                }
                self.in_flight
                    .clone()
                    .acquire_many_owned(weight)
                    .await
                    .map_err(|e| ModelServerError::Io(std::io::Error::other(e)))?
            }
        };
        let (wait, started) = (asked.elapsed(), std::time::Instant::now());
        let response = if elements <= INLINE_MAX_ELEMENTS {
            let prepared = decoded(prepared, &loaded, &headers, body)?;
            answer_small(&loaded, prepared, self.limits.batching).await?
        } else {
            let slice_rows = usize::try_from(self.limits.batch_rows).unwrap_or(usize::MAX);
            tokio::task::spawn_blocking(move || {
                answer(&loaded, decoded(prepared, &loaded, &headers, body)?, slice_rows)
            })
            .await
            .map_err(|e| ModelServerError::Io(std::io::Error::other(format!("inference worker failed: {e}"))))??
        };
        let (mut parts, body) = response.into_parts();
        parts.extensions.insert(crate::observe::Inference { rows, wait, run: started.elapsed() });
        Ok(Response::from_parts(parts, axum::body::Body::new(PermitBody { inner: body, _permit: permit })))
    }
}

/// Runs the model on slices of at most `slice_rows` rows and joins the outputs, when every input
/// and output of the model has a dynamic first (batch) dimension and the request has more rows.
/// ONNX Runtime keeps the memory arena a call grew to, per session: a 100,000-row call would
/// leave hundreds of MB held after it; slices bound that. Otherwise one call.
fn run_in_slices(
    loaded: &LoadedModel,
    inputs: &[InputTensor<'_>],
    slice_rows: usize,
) -> Result<Vec<jukebox_runtime::OutputTensor>, RuntimeError> {
    let batched = loaded.batchable;
    let rows = inputs.first().and_then(|i| i.shape.first()).copied().unwrap_or(0);
    let splittable = batched
        && slice_rows > 0
        && rows > 0
        && rows as u64 > slice_rows as u64
        && inputs.iter().all(|i| {
            i.shape.first() == Some(&rows)
                && i.shape.iter().try_fold(1i64, |acc, &d| acc.checked_mul(d)) == Some(i.data.len() as i64)
        });
    if !splittable {
        return loaded.model.run(inputs);
    }
    // Whole-request validation first, so errors name flat indices of the request, not of a slice.
    loaded.model.check_inputs(inputs)?;
    let rows = rows as usize;
    let mut joined: Vec<jukebox_runtime::OutputTensor> = Vec::new();
    let mut start = 0;
    while start < rows {
        let end = (start + slice_rows).min(rows);
        let shapes: Vec<Vec<i64>> = inputs
            .iter()
            .map(|i| {
                let mut shape = i.shape.to_vec();
                shape[0] = (end - start) as i64;
                shape
            })
            .collect();
        let slice: Vec<InputTensor<'_>> = inputs
            .iter()
            .zip(&shapes)
            .map(|(i, shape)| {
                let per_row = i.data.len() / rows;
                InputTensor::new(i.name, shape, &i.data[start * per_row..end * per_row])
            })
            .collect();
        let outputs = loaded.model.run(&slice)?;
        if joined.is_empty() {
            joined = outputs;
            for output in &mut joined {
                let per_row = output.data.len() / (end - start).max(1);
                output.data.reserve(per_row * (rows - end));
            }
        } else {
            for (joined, output) in joined.iter_mut().zip(outputs) {
                joined.data.extend_from_slice(&output.data);
                if let (Some(total), Some(part)) = (joined.shape.first_mut(), output.shape.first()) {
                    *total += part;
                }
            }
        }
        start = end;
    }
    Ok(joined)
}

/// A response body that keeps its request's share of the in-flight budget until it is sent.
struct PermitBody {
    inner: axum::body::Body,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl http_body::Body for PermitBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The whole in-flight budget, at least one request's worth (a request never asks for more than
/// the budget, or it would wait forever); within `acquire_many`'s u32.
fn in_flight_budget(limits: &InferLimits) -> u64 {
    limits.max_elements_in_flight.max(limits.max_elements).clamp(1, u64::from(u32::MAX))
}

/// Counts a request as waiting for inference while it lives.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Parses an infer request (JSON, optionally followed by binary tensor data), runs the model,
/// and encodes the answer the way the request asked for.
pub fn run_inference(loaded: &LoadedModel, headers: &HeaderMap, body: Bytes) -> Result<Response, ModelServerError> {
    run_inference_with(loaded, headers, body, DEFAULT_BATCH_ROWS as usize)
}

/// [`run_inference`], running the model on slices of at most `slice_rows` rows
/// ([`InferLimits::batch_rows`]; 0 = one call).
pub fn run_inference_with(
    loaded: &LoadedModel,
    headers: &HeaderMap,
    body: Bytes,
    slice_rows: usize,
) -> Result<Response, ModelServerError> {
    answer(loaded, decoded(None, loaded, headers, body)?, slice_rows)
}

/// The request `prepared` already, or else decoded from `body` now; the body is dropped either
/// way, since the decoded tensors are all that is needed from here on.
fn decoded(
    prepared: Option<Prepared>,
    loaded: &LoadedModel,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Prepared, ModelServerError> {
    match prepared {
        Some(prepared) => Ok(prepared),
        None => prepare(loaded, headers, &body, None),
    }
}

/// Runs a decoded request (in slices of at most `slice_rows` rows) and encodes its answer.
fn answer(loaded: &LoadedModel, prepared: Prepared, slice_rows: usize) -> Result<Response, ModelServerError> {
    let Prepared { id, inputs, selected } = prepared;
    let results =
        run_in_slices(loaded, &input_tensors(loaded, &inputs), slice_rows).map_err(ModelServerError::Tensor)?;
    Ok(respond(loaded, id.as_deref(), &selected, &results))
}

/// A small request ([`INLINE_MAX_ELEMENTS`]), decoded, on the async worker that read it: checked,
/// run alone or merged with others ([`Batching`]), answered. A request the model refuses is
/// answered here and never joins a batch.
async fn answer_small(
    loaded: &Arc<LoadedModel>,
    prepared: Prepared,
    batching: Option<Batching>,
) -> Result<Response, ModelServerError> {
    let Prepared { id, inputs, selected } = prepared;
    let results = match batching.filter(|_| loaded.batchable) {
        Some(settings) => match columns_in_model_order(loaded, inputs)? {
            Ok(columns) => batch::run(loaded, columns, settings).await,
            Err(inputs) => run_alone(loaded, &inputs),
        },
        None => run_alone(loaded, &inputs),
    }
    .map_err(ModelServerError::Tensor)?;
    Ok(respond(loaded, id.as_deref(), &selected, &results))
}

fn run_alone(loaded: &LoadedModel, inputs: &[DecodedInput]) -> batch::RunResult {
    loaded.model.run(&input_tensors(loaded, inputs))
}

/// The request's inputs checked against the model (a refusal is this request's 4xx) and put in
/// the model's input order, ready to be stacked with other requests' rows. `Ok(Err(inputs))`
/// hands them back when their shapes are not written out in full (a rank the runtime fills in),
/// so they run alone.
fn columns_in_model_order(
    loaded: &LoadedModel,
    mut inputs: Vec<DecodedInput>,
) -> Result<Result<Vec<batch::Column>, Vec<DecodedInput>>, ModelServerError> {
    loaded.model.check_inputs(&input_tensors(loaded, &inputs)).map_err(ModelServerError::Tensor)?;
    if inputs.iter().any(|(index, shape, _)| loaded.inputs[*index].shape.len() != shape.len()) {
        return Ok(Err(inputs));
    }
    let mut columns = Vec::with_capacity(loaded.inputs.len());
    for k in 0..loaded.inputs.len() {
        // check_inputs saw every model input exactly once.
        let position = inputs.iter().position(|(index, _, _)| *index == k).expect("checked input");
        let (_, shape, data) = inputs.swap_remove(position);
        columns.push(batch::Column { shape, data });
    }
    Ok(Ok(columns))
}
