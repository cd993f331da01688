"""Judge the jukebox model server with real KServe v2 clients.

Environment: JUKEBOX_MODEL_URL (http://127.0.0.1:PORT), MODEL_DIR (the repository folder,
holding jukebox/1 and jukebox/2), optional JUKEBOX_MODEL_TOKEN (server runs with that token).

Checks, printing one `ok ...` line each (exit status 1 with a message on the first failure):
- tritonclient[http] with binary data on (its default) and off, and plain `requests` with the
  workshop's JSON body (13 inputs of shape [1, 1]) and with nested batch data, all agree with
  the Python onnxruntime on the same model file (max abs diff < 1e-6);
- model metadata matches the model file;
- every error case answers its status with {"error": ...} naming the fault, and the server
  still answers correctly afterwards.
With a token: requests without it or with a wrong one get 401, health stays open, and
tritonclient with the header works.
"""
import json
import os
import sys

import numpy as np
import onnxruntime as ort
import requests
import tritonclient.http as httpclient

URL = os.environ["JUKEBOX_MODEL_URL"].rstrip("/")
MODEL_DIR = os.environ["MODEL_DIR"]
TOKEN = os.environ.get("JUKEBOX_MODEL_TOKEN")
HEADERS = {"Authorization": f"Bearer {TOKEN}"} if TOKEN else {}
FEATURES = ["is_explicit", "duration_ms", "danceability", "energy", "key", "loudness", "mode",
            "speechiness", "acousticness", "instrumentalness", "liveness", "valence", "tempo"]


def fail(message):
    print(f"FAIL {message}")
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def reference(version, batch):
    session = ort.InferenceSession(os.path.join(MODEL_DIR, "jukebox", str(version), "model.onnx"),
                                   providers=["CPUExecutionProvider"])
    return session, session.run(["output"], {f: batch[:, i:i + 1] for i, f in enumerate(FEATURES)})[0]


def max_diff(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    check(a.shape == b.shape, f"shape {a.shape} != {b.shape}")
    return float(np.max(np.abs(a - b)))


rng = np.random.default_rng(42)
batch = rng.random((5, 13), dtype=np.float32)
session2, expected2 = reference(2, batch)
_, expected1 = reference(1, batch)
check(max_diff(expected1, expected2) > 1e-3, "versions 1 and 2 should differ")

host = URL.split("://", 1)[1]
client = httpclient.InferenceServerClient(url=host)
check(client.is_server_live(), "server not live")

# Metadata matches the model file.
meta = client.get_model_metadata("jukebox", headers=dict(HEADERS))
check(meta["name"] == "jukebox" and meta["versions"] == ["1", "2"], f"metadata {meta}")
check(meta["platform"] == "onnxruntime_onnx", f"platform {meta['platform']}")
check([i["name"] for i in meta["inputs"]] == [i.name for i in session2.get_inputs()], "input names")
check(all(i["datatype"] == "FP32" and i["shape"] == [-1, 1] for i in meta["inputs"]), f"inputs {meta['inputs']}")
check(meta["outputs"] == [{"name": "output", "datatype": "FP32", "shape": [-1, 72]}], f"outputs {meta['outputs']}")
v1 = requests.get(f"{URL}/v2/models/jukebox/versions/1", headers=HEADERS).json()
check(v1["versions"] == ["1"], f"version metadata {v1}")
check(client.is_model_ready("jukebox", headers=HEADERS), "model not ready")
check(client.is_model_ready("jukebox", "1", headers=HEADERS), "version 1 not ready")
server_meta = requests.get(f"{URL}/v2", headers=HEADERS).json()
check("binary_tensor_data" in server_meta["extensions"], f"server metadata {server_meta}")
print("ok metadata")


def triton_infer(binary, version=""):
    inputs = []
    for i, f in enumerate(FEATURES):
        t = httpclient.InferInput(f, [batch.shape[0], 1], "FP32")
        t.set_data_from_numpy(np.ascontiguousarray(batch[:, i:i + 1]), binary_data=binary)
        inputs.append(t)
    outputs = None if binary else [httpclient.InferRequestedOutput("output", binary_data=False)]
    result = client.infer("jukebox", inputs, model_version=version, outputs=outputs,
                          request_id="req-7", headers=dict(HEADERS))  # tritonclient mutates headers
    check(result.get_response()["id"] == "req-7", "request id not echoed")
    return result.as_numpy("output"), result.get_response()


out, response = triton_infer(True)
check("data" not in response["outputs"][0], "binary output should carry no JSON data")
d = max_diff(out, expected2)
check(d < 1e-6, f"tritonclient binary differs by {d}")
print(f"ok tritonclient binary max_abs_diff={d:.3g}")

out, response = triton_infer(False)
check("data" in response["outputs"][0], "JSON output expected")
d = max_diff(out, expected2)
check(d < 1e-6, f"tritonclient JSON differs by {d}")
print(f"ok tritonclient json max_abs_diff={d:.3g}")

out, response = triton_infer(True, version="1")
check(response["model_version"] == "1", f"model_version {response['model_version']}")
d = max_diff(out, expected1)
check(d < 1e-6, f"tritonclient version 1 differs by {d}")
print(f"ok tritonclient version 1 max_abs_diff={d:.3g}")

# The workshop's request: one song, 13 inputs of shape [1, 1], plain JSON.
def workshop_body(row):
    return {"inputs": [{"name": f, "shape": [1, 1], "datatype": "FP32", "data": [float(row[i])]}
                       for i, f in enumerate(FEATURES)]}


for r in range(batch.shape[0]):
    resp = requests.post(f"{URL}/v2/models/jukebox/infer", json=workshop_body(batch[r]), headers=HEADERS)
    check(resp.status_code == 200, f"workshop request {resp.status_code} {resp.text}")
    body = resp.json()
    check(body["model_name"] == "jukebox" and body["outputs"][0]["shape"] == [1, 72], f"response {body}")
    d = max_diff(body["outputs"][0]["data"], expected2[r])
    check(d < 1e-6, f"workshop JSON row {r} differs by {d}")
print("ok requests workshop body (5 songs)")

nested = {"id": "nested", "inputs": [{"name": f, "shape": [5, 1], "datatype": "FP32",
                                      "data": batch[:, i:i + 1].tolist()} for i, f in enumerate(FEATURES)],
          "outputs": [{"name": "output"}]}
resp = requests.post(f"{URL}/v2/models/jukebox/versions/2/infer", json=nested, headers=HEADERS)
check(resp.status_code == 200, f"nested {resp.status_code} {resp.text}")
d = max_diff(np.asarray(resp.json()["outputs"][0]["data"]).reshape(5, 72), expected2)
check(d < 1e-6 and resp.json()["id"] == "nested", f"nested batch differs by {d}")
print(f"ok requests nested batch max_abs_diff={d:.3g}")

# Error cases: status, {"error": ...} naming the fault, and the server keeps serving.
good = workshop_body(batch[0])


def mutate(fn):
    body = json.loads(json.dumps(good))
    fn(body)
    return body


cases = [
    ("unknown input", mutate(lambda b: b["inputs"][0].update(name="explicitness")), 400, "explicitness"),
    ("missing input", mutate(lambda b: b["inputs"].pop(3)), 400, "energy"),
    ("wrong datatype", mutate(lambda b: b["inputs"][2].update(datatype="INT64")), 400, "danceability"),
    ("shape vs data", mutate(lambda b: b["inputs"][4].update(shape=[2, 1])), 400, "key"),
    ("shape vs model", mutate(lambda b: b["inputs"][5].update(shape=[1, 1, 1])), 400, "loudness"),
    ("no data", mutate(lambda b: b["inputs"][6].pop("data")), 400, "mode"),
    ("strings", mutate(lambda b: b["inputs"][7].update(data=["x"])), 400, "speechiness"),
    ("unknown output", mutate(lambda b: b.update(outputs=[{"name": "probabilities"}])), 400, "probabilities"),
]
for label, body, status, needle in cases:
    resp = requests.post(f"{URL}/v2/models/jukebox/infer", json=body, headers=HEADERS)
    check(resp.status_code == status, f"{label}: status {resp.status_code} {resp.text}")
    check(needle in resp.json()["error"], f"{label}: error {resp.json()} does not name {needle}")

def with_binary(inputs, blob):
    """(body, JSON length) in the binary data extension's framing."""
    header = json.dumps({"inputs": inputs}).encode()
    return header + blob, len(header)


def binary_input(i, size):
    return dict({k: v for k, v in i.items() if k != "data"}, parameters={"binary_data_size": size})


nan_body = with_binary([binary_input(i, 4) if i["name"] == "tempo" else i for i in good["inputs"]],
                       np.array([np.nan], dtype=np.float32).tobytes())
short_body = with_binary([binary_input(i, 400) for i in good["inputs"]], b"")
plain = json.dumps(good).encode()
raw_cases = [
    ("malformed JSON", f"{URL}/v2/models/jukebox/infer", (b'{"inputs": [', None), 400, "JSON"),
    ("NaN in binary data", f"{URL}/v2/models/jukebox/infer", nan_body, 400, "tempo"),
    ("binary size beyond body", f"{URL}/v2/models/jukebox/infer", short_body, 400, "is_explicit"),
    ("unknown model", f"{URL}/v2/models/nope/infer", (plain, None), 404, "nope"),
    ("unknown version", f"{URL}/v2/models/jukebox/versions/9/infer", (plain, None), 404, "9"),
    ("oversize body", f"{URL}/v2/models/jukebox/infer", (b" " * (2 * 1024 * 1024), None), 413, "limit"),
]
for label, url, (data, json_length), status, needle in raw_cases:
    headers = dict(HEADERS, **{"Content-Type": "application/json"})
    if json_length is not None:
        headers["Inference-Header-Content-Length"] = str(json_length)
    resp = requests.post(url, data=data, headers=headers)
    check(resp.status_code == status, f"{label}: status {resp.status_code} {resp.text}")
    check(needle in resp.json()["error"], f"{label}: error {resp.json()} does not name {needle}")
for label, url, status in [("unknown model metadata", f"{URL}/v2/models/nope", 404),
                           ("unknown version ready", f"{URL}/v2/models/jukebox/versions/3/ready", 404),
                           ("unknown route", f"{URL}/v3/anything", 404)]:
    resp = requests.get(url, headers=HEADERS)
    check(resp.status_code == status and "error" in resp.json(), f"{label}: {resp.status_code} {resp.text}")
out, _ = triton_infer(True)
check(max_diff(out, expected2) < 1e-6, "server answers wrongly after errors")
print(f"ok {len(cases) + len(raw_cases) + 3} error cases answered, server still serving")

if TOKEN:
    for label, headers in [("no token", {}), ("wrong token", {"Authorization": "Bearer nope"})]:
        for method, url in [("post", f"{URL}/v2/models/jukebox/infer"), ("get", f"{URL}/v2/models/jukebox")]:
            resp = getattr(requests, method)(url, json=good, headers=headers)
            check(resp.status_code == 401 and "token" in resp.json()["error"], f"{label}: {resp.status_code} {resp.text}")
    check(requests.get(f"{URL}/v2/health/ready").status_code == 200, "health must stay open")
    print("ok token enforced (401 without or with a wrong token, health open)")
print("ALL OK")
