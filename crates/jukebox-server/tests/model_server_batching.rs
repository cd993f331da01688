//! Dynamic batching (issue 15) against real servers on 127.0.0.1: concurrent requests of
//! different row counts, JSON and binary, answered from merged ONNX Runtime calls exactly as
//! in-process ONNX Runtime and an unbatched server answer them; a bad request inside a batch
//! window gets its own 4xx while the requests around it get their 200; requests over the limits
//! are still refused before decoding.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use jukebox_runtime::{InputTensor, OnnxModel};
use jukebox_server::model_server::{Batching, InferLimits, LoadedModel, ModelRepository, ServeOptions};
use jukebox_server::server_thread::ServerThread;
use jukebox_testkit::{make_model, v2_answer, v2_binary_body};

// The workshop model's inputs, in graph order.
use jukebox_protocol::model_folder::WORKSHOP_FEATURES as FEATURES;

/// A server on its own runtime thread, and the loaded model it serves (to read its counters).
struct Server {
    running: ServerThread,
    model: Arc<LoadedModel>,
}

impl Server {
    fn start(repository: &std::path::Path, limits: InferLimits) -> Self {
        let repository = ModelRepository::load(repository, 2).unwrap();
        let model = repository.get("jukebox", None).unwrap().clone();
        let running =
            ServerThread::model_repository(repository, ServeOptions { limits, ..ServeOptions::default() }).unwrap();
        Self { running, model }
    }

    fn infer_url(&self) -> String {
        format!("{}/v2/models/jukebox/infer", self.running.url())
    }
}

fn batching(wait_ms: u64) -> InferLimits {
    InferLimits {
        batching: Some(Batching { max_wait: Duration::from_millis(wait_ms), ..Batching::default() }),
        ..InferLimits::default()
    }
}

/// `rows` rows of the 13 features, distinct per `seed`, column by column.
fn columns(seed: usize, rows: usize) -> Vec<Vec<f32>> {
    (0..FEATURES.len())
        .map(|k| (0..rows).map(|r| ((seed * 131 + r * 17 + k * 7) % 1000) as f32 / 1000.0).collect())
        .collect()
}

fn json_body(columns: &[Vec<f32>]) -> Vec<u8> {
    let inputs: Vec<String> = FEATURES
        .iter()
        .zip(columns)
        .map(|(name, data)| {
            let rows = data.len();
            let data: Vec<String> = data.iter().map(|v| format!("[{v}]")).collect();
            format!(r#"{{"name":"{name}","shape":[{rows},1],"datatype":"FP32","data":[{}]}}"#, data.join(","))
        })
        .collect();
    format!(r#"{{"inputs":[{}]}}"#, inputs.join(",")).into_bytes()
}

/// What `tritonclient` sends by default: JSON header, tensor bytes, output asked for as binary.
fn binary_body(columns: &[Vec<f32>]) -> (Vec<u8>, usize) {
    v2_binary_body(&FEATURES, columns)
}

/// An answer: status, then the output's shape and values, or the error text.
type Answer = (u16, Result<(Vec<i64>, Vec<f32>), String>);

/// POSTs a body (binary data after the JSON when `json_length` is given).
fn post(url: &str, body: &[u8], json_length: Option<usize>) -> Answer {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut request = agent.post(url);
    request = match json_length {
        Some(n) => {
            request.header("Content-Type", "application/octet-stream").header("Inference-Header-Content-Length", n)
        }
        None => request.header("Content-Type", "application/json"),
    };
    let mut response = request.send(body).unwrap();
    let status = response.status().as_u16();
    let answer_json_length: Option<usize> = response
        .headers()
        .get("inference-header-content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let bytes = response.body_mut().read_to_vec().unwrap();
    if status != 200 {
        return (status, Err(String::from_utf8_lossy(&bytes).into_owned()));
    }
    let answer = v2_answer(&bytes, answer_json_length)
        .unwrap_or_else(|| panic!("no first output in the answer: {}", String::from_utf8_lossy(&bytes)));
    (status, Ok(answer))
}

/// The model's output for `columns` (the workshop's inputs in order), run in this process.
fn run_in_process(model: &OnnxModel, columns: &[Vec<f32>]) -> Vec<f32> {
    let inputs: Vec<InputTensor> =
        FEATURES.iter().zip(columns).map(|(name, data)| InputTensor::column(name, data)).collect();
    model.run(&inputs).unwrap().remove(0).data
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn batched_answers_equal_unbatched_and_in_process_onnxruntime() {
    let repository = tempfile::tempdir().unwrap();
    make_model(repository.path(), "1", "1");
    let model_file = repository.path().join("jukebox/1/model.onnx");
    let reference = OnnxModel::load(&model_file).unwrap();
    // A 2 ms window: the concurrent requests below are merged, whatever the machine's speed.
    let batched = Server::start(repository.path(), batching(2));
    // The default (no added wait): merges what happens to queue; its answers must be equal too.
    let default = Server::start(repository.path(), InferLimits::default());
    let unbatched = Server::start(repository.path(), InferLimits { batching: None, ..InferLimits::default() });

    let clients = 12;
    let per_client = 15;
    let barrier = Arc::new(Barrier::new(clients));
    let worst: Vec<(f32, f32)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|client| {
                let (barrier, batched, default, unbatched, reference) =
                    (barrier.clone(), &batched, &default, &unbatched, &reference);
                scope.spawn(move || {
                    let (mut vs_ort, mut vs_unbatched) = (0.0f32, 0.0f32);
                    for round in 0..per_client {
                        let seed = client * 100 + round;
                        let rows = 1 + (client + round) % 7; // 1..=7 rows: batches of mixed sizes
                        let cols = columns(seed, rows);
                        let (body, json_length) = if (client + round) % 3 == 0 {
                            let (body, n) = binary_body(&cols);
                            (body, Some(n))
                        } else {
                            (json_body(&cols), None)
                        };
                        barrier.wait(); // every client sends at once: one batch window
                        let (status, answer) = post(&batched.infer_url(), &body, json_length);
                        let (shape, values) = answer.unwrap_or_else(|e| panic!("HTTP {status}: {e}"));
                        assert_eq!(shape, vec![rows as i64, 72]);
                        let expected = run_in_process(reference, &cols);
                        vs_ort = vs_ort.max(max_abs_diff(&values, &expected));
                        let (_, alone) = post(&unbatched.infer_url(), &body, json_length);
                        vs_unbatched = vs_unbatched.max(max_abs_diff(&values, &alone.unwrap().1));
                        let (_, by_default) = post(&default.infer_url(), &body, json_length);
                        vs_unbatched = vs_unbatched.max(max_abs_diff(&by_default.unwrap().1, &expected));
                    }
                    (vs_ort, vs_unbatched)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let vs_ort = worst.iter().map(|w| w.0).fold(0.0, f32::max);
    let vs_unbatched = worst.iter().map(|w| w.1).fold(0.0, f32::max);
    let merged = batched.model.merged_requests();
    println!(
        "{} requests, {merged} answered from merged calls (default settings: {}); max abs diff vs in-process ONNX Runtime {vs_ort:e}, vs unbatched server and default settings {vs_unbatched:e}",
        clients * per_client,
        default.model.merged_requests()
    );
    assert!(merged > 0, "no request was merged with another");
    assert_eq!(unbatched.model.merged_requests(), 0);
    assert!(vs_ort < 1e-6, "{vs_ort}");
    assert!(vs_unbatched < 1e-6, "{vs_unbatched}");
}

#[test]
fn a_bad_request_in_a_batch_window_gets_its_4xx_and_the_others_their_200() {
    let repository = tempfile::tempdir().unwrap();
    make_model(repository.path(), "1", "1");
    let reference = OnnxModel::load(repository.path().join("jukebox/1/model.onnx")).unwrap();
    let limits = InferLimits { max_rows: 1000, ..batching(20) };
    let server = Server::start(repository.path(), limits);

    // Good requests, and bad ones the model refuses (a value that overflows f32, a shape that
    // does not match the data, an unknown input) or the limits refuse (too many rows).
    let good = |seed: usize| json_body(&columns(seed, 1 + seed % 4));
    let overflow = {
        let mut cols = columns(99, 2);
        cols[4][1] = 0.0;
        String::from_utf8(json_body(&cols)).unwrap().replacen("[0]", "[1e39]", 1).into_bytes()
    };
    let wrong_shape = String::from_utf8(json_body(&columns(98, 2))).unwrap().replacen("[2,1]", "[3,1]", 1).into_bytes();
    let unknown =
        String::from_utf8(json_body(&columns(97, 1))).unwrap().replacen("\"tempo\"", "\"tempi\"", 1).into_bytes();
    let too_many_rows = json_body(&columns(96, 1001));
    let mut bodies: Vec<(Vec<u8>, u16, &str)> = (0..8).map(|seed| (good(seed), 200, "")).collect();
    bodies.insert(2, (overflow, 400, "non-finite"));
    bodies.insert(5, (wrong_shape, 400, "'is_explicit' has shape [3, 1]"));
    bodies.insert(7, (unknown, 400, "unknown input tensor 'tempi'"));
    bodies.insert(9, (too_many_rows, 413, "1,001 rows"));

    for _ in 0..3 {
        let barrier = Arc::new(Barrier::new(bodies.len()));
        let answers: Vec<Answer> = std::thread::scope(|scope| {
            let handles: Vec<_> = bodies
                .iter()
                .map(|(body, _, _)| {
                    let (barrier, url) = (barrier.clone(), server.infer_url());
                    scope.spawn(move || {
                        barrier.wait();
                        post(&url, body, None)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut good_seed = 0;
        for ((_, expected_status, message), (status, answer)) in bodies.iter().zip(answers) {
            assert_eq!(status, *expected_status, "{answer:?}");
            match answer {
                Err(error) => assert!(error.contains(message), "{error}"),
                Ok((_, values)) => {
                    let cols = columns(good_seed, 1 + good_seed % 4);
                    good_seed += 1;
                    let expected = run_in_process(&reference, &cols);
                    assert!(max_abs_diff(&values, &expected) < 1e-6);
                }
            }
        }
    }
    println!("{} of the good requests were answered from merged calls", server.model.merged_requests());
    assert!(server.model.merged_requests() > 0, "the good requests were never merged");
}
