"""Run the jukebox model server and KServe's Python server on the same model in one run, measure
both with the same load client (serve_load.rs), and print p50 latency and requests/s side by side.

    python crates/jukebox-server/benches/compare_kserve.py [--requests 10000] [--concurrency 64]

Needs .venv (onnx, for the model) and .venv-kserve (kserve + onnxruntime, see
kernel/requirements-kserve.txt). Set CARGO_TARGET_DIR as for any build. Exit status 1 if either
server had errors.
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


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load(args, extra, label):
    command = ["cargo", "bench", "--quiet", "-p", "jukebox-server", "--bench", "serve_load", "--",
               "--requests", str(args.requests), "--concurrency", str(args.concurrency),
               "--label", label] + extra
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    sys.stderr.write(out.stderr[-2000:] if out.returncode else "")
    results = {}
    for line in out.stdout.splitlines():
        if line.startswith("RESULT"):
            print(line)
            fields = dict(re.findall(r"(\w+)=(\S+)", line))
            results[fields["phase"]] = fields
    if len(results) != 2:
        sys.exit(f"load run for {label} failed:\n{out.stdout}\n{out.stderr[-3000:]}")
    return results


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=10000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    for python, what in [(PYTHON, "the project venv (.venv)"), (KSERVE_PYTHON, "the KServe venv (.venv-kserve: "
                                                                  "pip install -r kernel/requirements-kserve.txt)")]:
        if not os.path.exists(python):
            sys.exit(f"missing {python}: create {what}")
    with tempfile.TemporaryDirectory() as repo:
        subprocess.run([PYTHON, MAKE_MODEL, repo], check=True, stdout=subprocess.DEVNULL)
        port, grpc_port = free_port(), free_port()
        kserve = subprocess.Popen(
            [KSERVE_PYTHON, os.path.join(HERE, "kserve_onnx_server.py"), "--model_dir",
             os.path.join(repo, "jukebox", "1"), "--model_name", "jukebox", "--http_port", str(port),
             "--grpc_port", str(grpc_port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(120):
                try:
                    if urllib.request.urlopen(f"{url}/v2/models/jukebox/ready", timeout=1).status == 200:
                        break
                except OSError:
                    time.sleep(0.5)
            else:
                sys.exit("KServe server did not become ready")
            ours = load(args, ["--model-repository", repo], "jukebox")
            theirs = load(args, ["--url", url], "kserve")
        finally:
            kserve.terminate()
            kserve.wait(timeout=30)
    print()
    print(f"{'server':<10} {'p50 ms (1 song, c=1)':>22} {'p99 ms (c=1)':>13} {'req/s (c=%d)' % args.concurrency:>14} {'errors':>7}")
    for label, r in [("jukebox", ours), ("kserve", theirs)]:
        errors = int(r["latency"]["errors"]) + int(r["throughput"]["errors"])
        print(f"{label:<10} {float(r['latency']['p50_ms']):>22.3f} {float(r['latency']['p99_ms']):>13.3f} "
              f"{float(r['throughput']['rps']):>14.0f} {errors:>7}")
    speedup = float(ours["throughput"]["rps"]) / float(theirs["throughput"]["rps"])
    latency = float(theirs["latency"]["p50_ms"]) / float(ours["latency"]["p50_ms"])
    print(f"\njukebox vs kserve: {speedup:.1f}x requests/s, {latency:.1f}x lower p50 latency")
    bad = int(ours["throughput"]["errors"]) + int(theirs["throughput"]["errors"])
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
