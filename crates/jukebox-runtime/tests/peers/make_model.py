"""Write a model folder shaped like the workshop's, for tests and benchmarks.

    python make_model.py ROOT [--name jukebox] [--version 1] [--classes 72] [--seed 7]

Creates ROOT/NAME/VERSION/model.onnx (13 FP32 inputs named after the song features, each
[N, 1] -> Concat -> Gemm/Relu (64) -> Gemm/Relu (32) -> Gemm -> Softmax -> `output` [N, classes])
with seeded random weights, plus artifacts/{scaler.json, label_encoder.json, metrics.json}.
The scaler's min/max come from the shared song_properties data ranges so scaled values land
in [0, 1]. Prints the model path.
"""
import argparse
import json
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FEATURES = ["is_explicit", "duration_ms", "danceability", "energy", "key", "loudness", "mode",
            "speechiness", "acousticness", "instrumentalness", "liveness", "valence", "tempo"]
# Observed ranges of the 13 features in song_properties.parquet (rounded outward).
MINS = [0, 30000, 0.0, 0.0, 0, -40.0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
MAXS = [1, 900000, 1.0, 1.0, 11, 5.0, 1, 1.0, 1.0, 1.0, 1.0, 1.0, 250.0]
COUNTRIES = sorted(["AE", "AR", "AT", "AU", "BE", "BG", "BO", "BR", "BY", "CA", "CH", "CL", "CO",
                    "CR", "CZ", "DE", "DK", "DO", "EC", "EE", "EG", "ES", "FI", "FR", "GB", "GR",
                    "GT", "HK", "HN", "HU", "ID", "IE", "IL", "IN", "IS", "IT", "JP", "KR", "KZ",
                    "LT", "LU", "LV", "MA", "MX", "MY", "NG", "NI", "NL", "NO", "NZ", "PA", "PE",
                    "PH", "PK", "PL", "PT", "PY", "RO", "SA", "SE", "SG", "SK", "SV", "TH", "TR",
                    "TW", "UA", "US", "UY", "VE", "VN", "ZA"])


def build(classes: int, seed: int) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    sizes = [len(FEATURES), 64, 32, classes]
    inputs = [helper.make_tensor_value_info(f, TensorProto.FLOAT, ["batch", 1]) for f in FEATURES]
    output = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", classes])
    nodes = [helper.make_node("Concat", FEATURES, ["x0"], axis=1)]
    inits = []
    for i in range(3):
        limit = np.sqrt(6.0 / (sizes[i] + sizes[i + 1]))
        w = rng.uniform(-limit, limit, (sizes[i], sizes[i + 1])).astype(np.float32)
        b = rng.uniform(-0.1, 0.1, sizes[i + 1]).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        nodes.append(helper.make_node("Gemm", [f"x{i}", f"w{i}", f"b{i}"], [f"g{i}"]))
        if i < 2:
            nodes.append(helper.make_node("Relu", [f"g{i}"], [f"x{i + 1}"]))
    nodes.append(helper.make_node("Softmax", ["g2"], ["output"], axis=-1))
    graph = helper.make_graph(nodes, "jukebox", inputs, [output], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="jukebox-tests")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("root")
    p.add_argument("--name", default="jukebox")
    p.add_argument("--version", default="1")
    p.add_argument("--classes", type=int, default=72)
    p.add_argument("--seed", type=int, default=7)
    a = p.parse_args()
    folder = os.path.join(a.root, a.name, a.version)
    os.makedirs(os.path.join(folder, "artifacts"), exist_ok=True)
    path = os.path.join(folder, "model.onnx")
    onnx.save(build(a.classes, a.seed), path)
    classes = COUNTRIES[: a.classes] if a.classes <= len(COUNTRIES) else [f"C{i:03}" for i in range(a.classes)]
    with open(os.path.join(folder, "artifacts", "scaler.json"), "w") as f:
        json.dump({"features": FEATURES, "min": MINS, "max": MAXS}, f)
    with open(os.path.join(folder, "artifacts", "label_encoder.json"), "w") as f:
        json.dump({"classes": classes}, f)
    with open(os.path.join(folder, "artifacts", "metrics.json"), "w") as f:
        json.dump({"accuracy": 0.0, "precision_macro": 0.0, "recall_macro": 0.0, "f1_macro": 0.0,
                   "f1_weighted": 0.0, "epochs": 0, "batch_size": 32, "seed": a.seed,
                   "data_rows": 0, "training_seconds": 0.0}, f)
    print(path)


if __name__ == "__main__":
    main()
