"""Judge an exported jukebox model folder with the reference tools.

Usage: check_export.py VERSION_DIR EXPECTED_JSON

VERSION_DIR is `<model_dir>/jukebox/<version>` written by `jukebox::export::export`.
EXPECTED_JSON holds {"rows": N, "probabilities": [row-major N x classes from the Rust network],
"tolerance": t}: the network's output on the first N rows of artifacts/X_test.parquet.

Checks: onnx.checker (full_check); metadata_props carry the features and classes matching the
artifacts; inputs are the features in order, each FLOAT [batch, 1]; the first N rows of
X_test.parquet (read with pyarrow, as another language would) run in ONNX Runtime and OpenVINO
(f32 inference precision; its CPU default is bf16) and match the expected probabilities.
Prints one JSON line of measured differences; exits 1 with a reason on failure.
"""

import json
import pathlib
import sys

import numpy as np
import onnx
import onnxruntime
import openvino as ov
import pyarrow.parquet as pq


def fail(message):
    print(f"check_export.py: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def main(version_dir, expected_path):
    version_dir = pathlib.Path(version_dir)
    model_path = version_dir / "model.onnx"
    artifacts = version_dir / "artifacts"
    expected_case = json.loads(pathlib.Path(expected_path).read_text())
    n_rows, tolerance = expected_case["rows"], expected_case["tolerance"]

    model = onnx.load(str(model_path))
    onnx.checker.check_model(model, full_check=True)
    metadata = {p.key: p.value for p in model.metadata_props}
    scaler = json.loads((artifacts / "scaler.json").read_text())
    classes = json.loads((artifacts / "label_encoder.json").read_text())["classes"]
    features = scaler["features"]
    if json.loads(metadata.get("features", "null")) != features:
        fail(f"metadata features {metadata.get('features')} != scaler.json features {features}")
    if json.loads(metadata.get("classes", "null")) != classes:
        fail("metadata classes differ from label_encoder.json")
    graph_inputs = [i.name for i in model.graph.input]
    if graph_inputs != features:
        fail(f"graph inputs {graph_inputs} != features {features}")
    for value in model.graph.input:
        dims = value.type.tensor_type.shape.dim
        if value.type.tensor_type.elem_type != onnx.TensorProto.FLOAT or len(dims) != 2 or dims[1].dim_value != 1:
            fail(f"{value.name}: expected FLOAT [batch, 1], got {value.type}")
    if [o.name for o in model.graph.output] != ["output"]:
        fail(f"graph outputs {[o.name for o in model.graph.output]}")

    table = pq.read_table(artifacts / "X_test.parquet")
    if table.column_names != features:
        fail(f"X_test.parquet columns {table.column_names} != {features}")
    y_test = json.loads((artifacts / "y_test.json").read_text())
    if len(y_test["label"]) != table.num_rows:
        fail(f"y_test.json has {len(y_test['label'])} labels for {table.num_rows} rows")
    feeds = {f: np.asarray(table.column(f).to_numpy()[:n_rows], dtype=np.float32).reshape(n_rows, 1) for f in features}
    expected = np.asarray(expected_case["probabilities"], dtype=np.float32).reshape(n_rows, len(classes))

    session = onnxruntime.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    ort_out = session.run(["output"], feeds)[0]
    compiled = ov.Core().compile_model(str(model_path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    ov_out = compiled(feeds)[compiled.output(0)]

    report = {"rows": n_rows, "classes": len(classes)}
    for runtime, out in (("onnxruntime", ort_out), ("openvino", ov_out)):
        if out.shape != expected.shape:
            fail(f"{runtime}: output shape {out.shape}, expected {expected.shape}")
        diff = float(np.max(np.abs(out - expected)))
        report[f"{runtime}_max_abs_diff"] = diff
        if diff > tolerance:
            fail(f"{runtime}: max abs diff {diff} exceeds {tolerance}")
        report[f"{runtime}_class_mismatches"] = int((out.argmax(axis=1) != expected.argmax(axis=1)).sum())
    print(json.dumps(report))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        fail("usage: check_export.py VERSION_DIR EXPECTED_JSON")
    main(sys.argv[1], sys.argv[2])
