"""Run the jukebox model server and KServe's Python server on the same model in one run, measure
them with the same load client (serve_load.rs) at concurrency 1, 16 and 64, with the workshop's
JSON body and with tritonclient's binary tensor body, and print p50/p99 latency, requests/s and
errors side by side. Every answer of every server is compared with the model run in-process by
ONNX Runtime (max abs diff), and tritonclient itself (binary data in and out) is checked against
each server once.

    source kernel/env.sh
    python crates/jukebox-server/benches/compare_kserve.py [--requests 20000] [--kserve-requests 3000]
        [--concurrency 1,16,64]

Servers: `jukebox` (defaults: dynamic batching on), `jukebox-alone` (--batching off: every
request its own ONNX Runtime call), `kserve` (kserve 0.21's
ModelServer wrapping onnxruntime, one worker: kserve_onnx_server.py). Needs .venv (onnx,
onnxruntime, tritonclient) and .venv-kserve (pip install -r kernel/requirements-kserve.txt).
Exit status 1 if any server had errors or answered differently from ONNX Runtime.
"""
import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "../../.."))
MAKE_MODEL = os.path.join(ROOT, "crates/jukebox-runtime/tests/peers/make_model.py")
KSERVE_PYTHON = os.environ.get("KSERVE_PYTHON", os.path.join(ROOT, ".venv-kserve/bin/python"))
PYTHON = os.environ.get("JUKEBOX_PYTHON", os.path.join(ROOT, ".venv/bin/python"))
FEATURES = ["is_explicit", "duration_ms", "danceability", "energy", "key", "loudness", "mode",
            "speechiness", "acousticness", "instrumentalness", "liveness", "valence", "tempo"]
VALUES = [0.0, 0.2, 0.61, 0.73, 0.45, 0.81, 1.0, 0.08, 0.12, 0.0, 0.15, 0.52, 0.47]

# tritonclient with binary data both ways against one server, compared with onnxruntime in-process.
TRITON_CHECK = r"""
import sys
import numpy as np, onnxruntime as ort, tritonclient.http as httpclient
url, model_file, features, values = sys.argv[1], sys.argv[2], sys.argv[3].split(","), [float(v) for v in sys.argv[4].split(",")]
session = ort.InferenceSession(model_file, providers=["CPUExecutionProvider"])
rng = np.random.default_rng(7)
batch = np.vstack([np.array(values, dtype=np.float32), rng.random((4, len(features)), dtype=np.float32)])
expected = session.run(["output"], {f: batch[:, i:i + 1] for i, f in enumerate(features)})[0]
client = httpclient.InferenceServerClient(url=url)
worst = 0.0
for rows in (1, 5):
    inputs = []
    for i, f in enumerate(features):
        tensor = httpclient.InferInput(f, [rows, 1], "FP32")
        tensor.set_data_from_numpy(np.ascontiguousarray(batch[:rows, i:i + 1]), binary_data=True)
        inputs.append(tensor)
    result = client.infer("jukebox", inputs, outputs=[httpclient.InferRequestedOutput("output", binary_data=True)])
    worst = max(worst, float(np.max(np.abs(result.as_numpy("output") - expected[:rows]))))
print(f"{worst:e}")
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load(args, extra, label, requests):
    # --workspace, as every build here: `-p` resolves features differently and rebuilds polars.
    command = ["cargo", "bench", "--quiet", "--workspace", "--bench", "serve_load", "--",
               "--requests", str(requests), "--latency-requests", str(min(requests, 5000)),
               "--concurrency", args.concurrency, "--body", "json,binary", "--label", label] + extra
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    results = {}
    for line in out.stdout.splitlines():
        if line.startswith("RESULT"):
            print(line, flush=True)
            fields = dict(re.findall(r"(\w+)=(\S+)", line))
            results[(fields["body"], int(fields["concurrency"]))] = fields
    if not results:
        sys.exit(f"load run for {label} failed:\n{out.stdout}\n{out.stderr[-3000:]}")
    if out.returncode:
        sys.stderr.write(out.stderr[-2000:])
    return results


def triton_check(url, model_file):
    out = subprocess.run([PYTHON, "-c", TRITON_CHECK, url.split("://", 1)[1], model_file, ",".join(FEATURES),
                          ",".join(map(str, VALUES))], capture_output=True, text=True)
    if out.returncode:
        return f"failed: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}"
    return out.stdout.strip()


def wait_ready(url):
    for _ in range(240):
        try:
            if urllib.request.urlopen(f"{url}/v2/models/jukebox/ready", timeout=1).status == 200:
                return
        except OSError:
            time.sleep(0.5)
    sys.exit(f"{url} did not become ready")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20000, help="per phase, for the jukebox server")
    parser.add_argument("--kserve-requests", type=int, default=3000, help="per phase, for KServe (~500 req/s)")
    parser.add_argument("--concurrency", default="1,16,64")
    args = parser.parse_args()
    for python, what in [(PYTHON, "the project venv (.venv)"), (KSERVE_PYTHON, "the KServe venv (.venv-kserve: "
                                                                  "pip install -r kernel/requirements-kserve.txt)")]:
        if not os.path.exists(python):
            sys.exit(f"missing {python}: create {what}")
    rows = {}
    checks = {}
    with tempfile.TemporaryDirectory() as repo:
        subprocess.run([PYTHON, MAKE_MODEL, repo], check=True, stdout=subprocess.DEVNULL)
        model_file = os.path.join(repo, "jukebox", "1", "model.onnx")
        reference = ["--reference-model", model_file]
        rows["jukebox"] = load(args, ["--model-repository", repo] + reference, "jukebox", args.requests)
        rows["jukebox-alone"] = load(args, ["--model-repository", repo, "--batching", "off"] + reference,
                                     "jukebox-alone", args.requests)
        # tritonclient against our server (the same code as the in-process one, via `jukebox serve`
        # would need the CLI built; the in-process server is what serve_load measured).
        port = free_port()
        ours = subprocess.Popen([os.environ.get("JUKEBOX_BIN", "jukebox"), "serve", "--model-repository", repo,
                                 "--port", str(port), "--poll-seconds", "0"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) \
            if os.path.exists(os.environ.get("JUKEBOX_BIN", "")) else None
        if ours:
            try:
                wait_ready(f"http://127.0.0.1:{port}")
                checks["jukebox"] = triton_check(f"http://127.0.0.1:{port}", model_file)
            finally:
                ours.terminate()
                ours.wait(timeout=30)
        port, grpc_port = free_port(), free_port()
        kserve = subprocess.Popen(
            [KSERVE_PYTHON, os.path.join(HERE, "kserve_onnx_server.py"), "--model_dir",
             os.path.join(repo, "jukebox", "1"), "--model_name", "jukebox", "--http_port", str(port),
             "--grpc_port", str(grpc_port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_ready(url)
            checks["kserve"] = triton_check(url, model_file)
            rows["kserve"] = load(args, ["--url", url] + reference, "kserve", args.kserve_requests)
        finally:
            kserve.terminate()
            kserve.wait(timeout=30)

    print()
    print(f"{'server':<14} {'body':<7} {'conc':>4} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8} {'errors':>6} "
          f"{'max|diff| vs ORT':>17}")
    bad = False
    for label, results in rows.items():
        for (body, concurrency), r in sorted(results.items(), key=lambda kv: (kv[0][0] != "json", kv[0][1])):
            errors = int(r["errors"])
            diff = float(r["max_abs_diff"])
            bad |= errors > 0 or not diff < 1e-6
            print(f"{label:<14} {body:<7} {concurrency:>4} {float(r['p50_ms']):>8.3f} {float(r['p99_ms']):>8.3f} "
                  f"{float(r['rps']):>8.0f} {errors:>6} {diff:>17.1e}")
    print()
    for label, result in checks.items():
        print(f"tritonclient (binary data in and out, 1 and 5 rows) vs {label}: max |diff| vs ORT {result}")
    if "jukebox" not in checks:
        print("tritonclient vs jukebox: skipped (set JUKEBOX_BIN, as kernel/env.sh does, after jukebox_build)")
    top = max(int(c) for c in args.concurrency.split(","))
    for label in ("jukebox", "jukebox-alone"):
        ours, theirs = rows[label].get(("json", top)), rows["kserve"].get(("json", top))
        ours1, theirs1 = rows[label].get(("json", 1)), rows["kserve"].get(("json", 1))
        if ours and theirs and ours1 and theirs1:
            print(f"{label} vs kserve (JSON): {float(ours['rps']) / float(theirs['rps']):.1f}x requests/s at c={top}, "
                  f"{float(theirs1['p50_ms']) / float(ours1['p50_ms']):.1f}x lower p50 latency at c=1")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
