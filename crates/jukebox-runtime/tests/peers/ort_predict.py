"""Run a model with the Python onnxruntime, the reference the Rust runtime is judged against.

    python ort_predict.py MODEL.onnx < {"input name": [[v], [v], ...], ...}

Prints {"output name": [[...], ...], ...} as JSON on stdout.
"""
import json
import sys

import numpy as np
import onnxruntime as ort

session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
feeds = {k: np.asarray(v, dtype=np.float32) for k, v in json.load(sys.stdin).items()}
names = [o.name for o in session.get_outputs()]
print(json.dumps({n: v.tolist() for n, v in zip(names, session.run(names, feeds))}))
