"""Judge a jukebox-nn ONNX export with the reference tools.

Usage: check_onnx.py DIR, where DIR holds `model.onnx` and `case.json` written by
tests/onnx_python.rs: {"input_names": [graph input order], "inputs": {name: [one value per row]}, "n_rows", "n_outputs",
"output_name", "expected": [row-major probabilities from predict_proba], "metadata": {k: v},
"tolerance"}.

Checks: onnx.checker (full_check), IR/opset/producer/metadata/shapes, then runs the model in
ONNX Runtime and in OpenVINO (f32 inference precision; its CPU default is bf16) on all rows and
on a single row (the batch dimension must be dynamic), comparing with Rust's predict_proba.
Prints one JSON line with the measured differences; exits 1 with a reason on any failure.
"""

import json
import pathlib
import sys

import numpy as np
import onnx
import onnxruntime
import openvino as ov


def fail(message):
    print(f"check_onnx.py: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def main(directory):
    directory = pathlib.Path(directory)
    model_path = directory / "model.onnx"
    case = json.loads((directory / "case.json").read_text())
    n_rows, n_outputs, tolerance = case["n_rows"], case["n_outputs"], case["tolerance"]
    expected = np.asarray(case["expected"], dtype=np.float32).reshape(n_rows, n_outputs)
    feeds = {name: np.asarray(values, dtype=np.float32).reshape(n_rows, 1) for name, values in case["inputs"].items()}

    model = onnx.load(str(model_path))
    onnx.checker.check_model(model, full_check=True)
    if model.ir_version != 8:
        fail(f"ir_version {model.ir_version}, expected 8")
    opsets = {o.domain: o.version for o in model.opset_import}
    if opsets.get("", None) != 17:
        fail(f"opset_import {opsets}, expected default domain 17")
    if model.producer_name != "jukebox":
        fail(f"producer_name {model.producer_name!r}")
    metadata = {p.key: p.value for p in model.metadata_props}
    if metadata != case["metadata"]:
        fail(f"metadata_props {metadata} != {case['metadata']}")
    graph_inputs = [i.name for i in model.graph.input]
    if graph_inputs != case["input_names"]:
        fail(f"graph inputs {graph_inputs} != {case['input_names']}")
    for value in list(model.graph.input) + list(model.graph.output):
        dims = value.type.tensor_type.shape.dim
        if value.type.tensor_type.elem_type != onnx.TensorProto.FLOAT or len(dims) != 2 or not dims[0].dim_param:
            fail(f"{value.name}: expected FLOAT [batch, n], got {value.type}")
    if [o.name for o in model.graph.output] != [case["output_name"]]:
        fail(f"graph outputs {[o.name for o in model.graph.output]}")

    results = {}
    session = onnxruntime.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    ort_all = session.run([case["output_name"]], feeds)[0]
    ort_one = session.run([case["output_name"]], {k: v[:1] for k, v in feeds.items()})[0]
    results["onnxruntime"] = (ort_all, ort_one)

    core = ov.Core()
    compiled = core.compile_model(str(model_path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    ov_all = compiled(feeds)[compiled.output(0)]
    ov_one = compiled({k: v[:1] for k, v in feeds.items()})[compiled.output(0)]
    results["openvino"] = (ov_all, ov_one)

    report = {"n_rows": n_rows, "n_outputs": n_outputs}
    for runtime, (all_rows, one_row) in results.items():
        if all_rows.shape != expected.shape:
            fail(f"{runtime}: output shape {all_rows.shape}, expected {expected.shape}")
        if one_row.shape != (1, n_outputs):
            fail(f"{runtime}: single-row output shape {one_row.shape}")
        diff = float(np.max(np.abs(all_rows - expected)))
        diff_one = float(np.max(np.abs(one_row - expected[:1])))
        report[f"{runtime}_max_abs_diff"] = diff
        if not (diff <= tolerance and diff_one <= tolerance):
            fail(f"{runtime}: max abs diff {diff} (single row {diff_one}) exceeds {tolerance}")
        if not np.array_equal(all_rows.argmax(axis=1), expected.argmax(axis=1)):
            # Ties within float noise could flip an argmax; report how many differ.
            report[f"{runtime}_argmax_mismatches"] = int((all_rows.argmax(axis=1) != expected.argmax(axis=1)).sum())
    report["versions"] = {"onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__, "openvino": ov.__version__}
    print(json.dumps(report))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        fail("usage: check_onnx.py DIR")
    main(sys.argv[1])
