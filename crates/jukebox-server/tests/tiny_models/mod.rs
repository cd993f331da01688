//! Tiny ONNX models that cost a server far more than their size (issue 23 item 5), written with
//! the `onnx` Python package (the workspace venv), for the model server's hardening test and the
//! reliability suite.
#![allow(dead_code)]

use std::path::Path;

/// Where the `Range` node of [`write_range_model`] takes its `limit` from.
#[derive(Debug, Clone, Copy)]
pub enum RangeLimit {
    /// From the request: `y = Cast(Range(0, Cast(ReduceMax(x)), 1))`, the outside probe's
    /// 182-byte model in substance (a request with `x = [136000000]` costs 544 MB).
    Request,
    /// A constant `limit` of 136,000,000: 544 MB computed for every request.
    Constant,
}

/// Writes the model to `path` (creating its folder); returns the file's size in bytes.
pub fn write_range_model(path: &Path, limit: RangeLimit) -> u64 {
    let script = r#"
import sys, onnx
from onnx import helper as h, TensorProto as T
dynamic = sys.argv[2] == "request"
inits = [h.make_tensor("start", T.INT64, [], [0]), h.make_tensor("delta", T.INT64, [], [1])]
if dynamic:
    nodes = [h.make_node("ReduceMax", ["x"], ["m"], keepdims=0),
             h.make_node("Cast", ["m"], ["limit"], to=T.INT64)]
else:
    nodes = []
    inits.append(h.make_tensor("limit", T.INT64, [], [136000000]))
nodes += [h.make_node("Range", ["start", "limit", "delta"], ["r"]),
          h.make_node("Cast", ["r"], ["y"], to=T.FLOAT)]
graph = h.make_graph(nodes, "range", [h.make_tensor_value_info("x", T.FLOAT, ["batch", 1])],
                     [h.make_tensor_value_info("y", T.FLOAT, ["n"])], initializer=inits)
model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
model.ir_version = 8
onnx.checker.check_model(model, full_check=True)
onnx.save(model, sys.argv[1])
"#;
    let which = match limit {
        RangeLimit::Request => "request",
        RangeLimit::Constant => "constant",
    };
    jukebox_testkit::write_with_python(script, path, &[which], "the Range model")
}
