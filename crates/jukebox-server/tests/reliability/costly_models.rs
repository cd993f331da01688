//! Issue 23 item 5: tiny models that would cost far more than their size. A watched model server
//! (its own, polling every 100 ms) serves the workshop model; then a 200-byte `Range` model sized
//! by the request, one sized by a constant, and a `ConstantOfShape` bomb land in its folder. Each
//! must be refused at load, requests for them must cost nothing (four at once: the outside
//! probe's +1,088 MB), the workshop model must keep serving, and this process's resident memory
//! must not grow (under 100 MB: the suite runs alone in its process).

use std::time::Duration;

use jukebox_server::model_server::ModelServerConfig;
use jukebox_testkit::{resident_mb, write_constant_bomb};

use crate::common::{get_request, raw, request, Running};
use crate::tiny_models::{write_range_model, RangeLimit};
use crate::Suite;

pub fn run(suite: &Suite) {
    let repository = suite.dir.join("costly_models");
    std::fs::create_dir_all(repository.join("jukebox/1")).unwrap();
    std::fs::copy(suite.dir.join("models/jukebox/1/model.onnx"), repository.join("jukebox/1/model.onnx")).unwrap();
    let mut config = ModelServerConfig::new(&repository);
    config.poll_interval = Some(Duration::from_millis(100));
    let server = Running::model_server(config);
    let (_, metadata) = raw(server.addr, &get_request("/v2/models/jukebox"));
    let metadata: serde_json::Value = serde_json::from_str(metadata.trim()).expect("model metadata");
    let names: Vec<String> =
        metadata["inputs"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap().to_string()).collect();
    let jukebox = request(
        "POST",
        "/v2/models/jukebox/infer",
        &["Content-Type: application/json"],
        crate::infer_body(&names, 3).as_bytes(),
    );
    let before = resident_mb();

    let sizes = [
        ("range", write_range_model(&repository.join("range/1/model.onnx"), RangeLimit::Request)),
        ("range_constant", write_range_model(&repository.join("range_constant/1/model.onnx"), RangeLimit::Constant)),
        ("bomb", write_constant_bomb(&repository.join("bomb/1/model.onnx"))),
    ];
    std::thread::sleep(Duration::from_millis(800)); // several polls
    for (model, size) in sizes {
        let (status, body) = raw(server.addr, &get_request(&format!("/v2/models/{model}/ready")));
        suite.status("costly models", status);
        if status != 404 {
            suite.fail(format!("the {size}-byte model '{model}' was loaded ({status} {body})"));
        }
    }
    let addr = server.addr;
    let infer = request(
        "POST",
        "/v2/models/range/infer",
        &["Content-Type: application/json"],
        br#"{"inputs":[{"name":"x","shape":[1,1],"datatype":"FP32","data":[136000000]}]}"#,
    );
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let infer = infer.clone();
            std::thread::spawn(move || raw(addr, &infer).0)
        })
        .collect();
    for thread in threads {
        let status = thread.join().unwrap();
        suite.status("costly models", status);
        if status != 404 {
            suite.fail(format!("a request for the refused Range model answered {status}"));
        }
    }
    let (status, body) = raw(server.addr, &jukebox);
    suite.status("costly models", status);
    if status != 200 {
        suite.crash(format!("the workshop model stopped serving beside the costly models: {status} {body}"));
    }
    let growth = resident_mb() - before;
    suite.summary(format!(
        "costly models: Range sized by the request ({} bytes), by a constant ({} bytes), ConstantOfShape ({} bytes): \
         refused at load; 4 requests at once answered 404; resident memory {growth:+.1} MB (limit +100)",
        sizes[0].1, sizes[1].1, sizes[2].1
    ));
    if growth >= 100.0 {
        suite.fail(format!("resident memory grew {growth:.0} MB with the costly models"));
    }
}
