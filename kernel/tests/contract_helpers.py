"""What the contract tests (test_contracts_*.py) share: the built `jukebox` command, `jukebox up`
on free ports, a recording proxy that sits between a peer client and one of our servers and keeps
every exchange, and the call of the KServe judge (kserve_judge.py, run in .venv-kserve).

Why a proxy: the contract is about every answer a real client gets, so the tests run the real
peers (the Kubeflow `model-registry` client, tritonclient, `jukebox request`) unchanged, pointed at
the proxy, and validate afterwards what went over the wire.
"""
import contextlib
import copy
import http.client
import http.server
import json
import os
import subprocess
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from lab_helpers import read_env_file

REPO = Path(__file__).resolve().parents[2]
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade", "content-length", "host"}


def env_sh(expression):
    """A value kernel/env.sh computes (the build's paths)."""
    out = subprocess.run(["bash", "-c", f'source "{REPO}/kernel/env.sh" && {expression}'], check=True,
                         capture_output=True, text=True)
    return out.stdout.strip()


def jukebox_bin():
    import pytest

    path = Path(env_sh("echo $JUKEBOX_BIN"))
    if not path.exists():
        pytest.fail(f"{path} is missing: build the workspace (kernel/setup.sh)")
    return path


def python_env():
    env = dict(os.environ)
    env.setdefault("ORT_DYLIB_PATH", env_sh("jukebox_ort_lib"))
    return env


@contextlib.contextmanager
def jukebox_up(tmp, model_repository=None, extra=()):
    """`jukebox up` on free ports with its state under `tmp`; yields the settings it exports
    (AWS_*, JUKEBOX_REGISTRY_URL, JUKEBOX_MODEL_URL) without touching os.environ."""
    env_file = Path(tmp) / "up.env"
    command = [str(jukebox_bin()), "up", "--state-dir", str(Path(tmp) / "state"), "--s3-port", "0",
               "--registry-port", "0", "--model-port", "0", "--env-file", str(env_file), *extra]
    if model_repository is not None:
        command += ["--model-repository", str(model_repository)]
    log_path = Path(tmp) / "up.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=python_env())
        try:
            deadline = time.monotonic() + 60
            while not (env_file.exists() and env_file.stat().st_size > 0):
                assert process.poll() is None, f"jukebox up exited: {log_path.read_text()}"
                assert time.monotonic() < deadline, f"jukebox up did not start in 60 s: {log_path.read_text()}"
                time.sleep(0.1)
            settings = read_env_file(env_file)
            yield settings
        finally:
            process.terminate()
            process.wait(timeout=30)


def make_repository(root):
    """A model repository of two workshop-shaped versions (jukebox/1 and jukebox/2, different
    seeds) with their artifacts, by crates/jukebox-runtime/tests/peers/make_model.py."""
    maker = REPO / "crates/jukebox-runtime/tests/peers/make_model.py"
    for version, seed in (("1", "7"), ("2", "11")):
        subprocess.run([str(REPO / ".venv/bin/python"), str(maker), str(root), "--version", version, "--seed", seed],
                       check=True, capture_output=True)


def wait_http(url, timeout=60.0, ok=(200,)):
    """Polls `url` until it answers one of `ok` (a server that is still starting)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            parsed = urllib.parse.urlsplit(url)
            conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=5)
            conn.request("GET", parsed.path or "/")
            status = conn.getresponse().status
            conn.close()
            if status in ok:
                return
            last = f"status {status}"
        except OSError as e:
            last = str(e)
        time.sleep(0.2)
    raise AssertionError(f"{url} not ready after {timeout:.0f} s ({last})")


@dataclass
class Exchange:
    method: str
    path: str
    query: str
    request_headers: dict
    request_body: bytes
    status: int = 0
    response_headers: dict = field(default_factory=dict)
    response_body: bytes = b""

    def __str__(self):
        body = self.response_body[:300].decode("utf-8", "replace")
        return f"{self.method} {self.path}{'?' + self.query if self.query else ''} -> {self.status} {body}"


class Recorder:
    """A plain HTTP proxy on 127.0.0.1 in front of `target` (http://127.0.0.1:PORT) that forwards
    every request unchanged (or with its path changed by `rewrite`, a function of the path and
    query) and keeps each exchange, as the client sent it, in `exchanges`. Use as a context
    manager."""

    def __init__(self, target, rewrite=None):
        parsed = urllib.parse.urlsplit(target)
        self.target = (parsed.hostname, parsed.port)
        self.exchanges = []
        self.lock = threading.Lock()
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path, _, query = self.path.partition("?")
                exchange = Exchange(self.command, path, query, dict(self.headers.items()), body)
                conn = http.client.HTTPConnection(*recorder.target, timeout=120)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                try:
                    conn.request(self.command, rewrite(self.path) if rewrite else self.path, body=body,
                                 headers=headers)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # a server may answer (413) and close before reading a large body
                response = conn.getresponse()
                exchange.status = response.status
                exchange.response_headers = {k.lower(): v for k, v in response.getheaders()}
                exchange.response_body = response.read()
                conn.close()
                with recorder.lock:
                    recorder.exchanges.append(exchange)
                self.send_response(response.status)
                for name, value in response.getheaders():
                    if name.lower() not in HOP_BY_HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(exchange.response_body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(exchange.response_body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


KSERVE_PYTHON = Path(os.environ.get("KSERVE_PYTHON", REPO / ".venv-kserve/bin/python"))


def kserve_python():
    import pytest

    if not KSERVE_PYTHON.exists():
        pytest.fail(f"{KSERVE_PYTHON} is missing (KServe's package, the judge): run kernel/setup.sh --with-tests")
    return KSERVE_PYTHON


def as_judged(exchange):
    """An exchange as the judges read it (JSON)."""
    length = exchange.response_headers.get("inference-header-content-length")
    return {"method": exchange.method, "path": exchange.path, "status": exchange.status,
            "content_type": exchange.response_headers.get("content-type", ""),
            "body": exchange.response_body.decode("latin-1" if length else "utf-8", "replace"),
            "json_length": int(length) if length is not None else None,
            "request_body": exchange.request_body.decode("utf-8", "replace")}


def kserve_verdict(mode, items):
    """kernel/tests/kserve_judge.py's verdict (KServe's own package, in .venv-kserve) on recorded
    exchanges (`answers`, `requests`) or Kubernetes documents (`manifests`)."""
    payload = items if mode == "manifests" else [as_judged(i) for i in items]
    out = subprocess.run([str(kserve_python()), str(Path(__file__).with_name("kserve_judge.py")), mode],
                         input=json.dumps(payload), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


def made_wrong(exchange, mutate, **changes):
    """A copy of a recorded exchange with its JSON answer changed by `mutate` (which edits the
    body in place or returns a new one) and any other field set from `changes` (e.g. status=418):
    the negative cases a contract judge must refuse."""
    bad = copy.deepcopy(exchange)
    body = json.loads(bad.response_body)
    body = mutate(body) or body
    bad.response_body = json.dumps(body).encode()
    for key, value in changes.items():
        setattr(bad, key, value)
    return bad
