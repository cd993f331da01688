"""`jukebox request` against KServe's own Python model server (the `kserve` package, in its venv
.venv-kserve: crates/jukebox-server/benches/kserve_onnx_server.py wraps the same model file in
kserve's ModelServer) and against `jukebox serve` (here `jukebox up`'s model server): the same top
country, probabilities within 1e-6.

KServe's Python server serves one version per model and answers every `/versions/N` path with 501
"Model versioning not supported yet." (test_kserve_refuses_versioned_paths keeps that fact in
view: our client always names the version, so against such a deployment it fails, saying so).
The proxy in front of KServe therefore drops the `/versions/1` segment: what the request is to a
server with that single version.

- JSON: `jukebox request --song "Not Like Us"` runs unchanged against each server through a
  recording proxy. Its request is what notebook 4 sends (the same InferenceClient::predict, to the
  same `/v2/models/jukebox/versions/1/infer` that InferenceClient::for_artifacts addresses), so the
  notebook's client meets KServe here too. KServe's package (kserve_judge.py) reads the
  recorded request as its InferenceRequest.
- Binary: tritonclient sends the same scaled values with the binary tensor data extension both
  ways to each server; the answers agree with each other within 1e-6, and with the JSON ones.
- KServe's own REST client (kserve_client_peer.py) asks our server: ready, model ready, infer.

The negative case: a deliberately wrong server (KServe's answer with two probabilities swapped)
is told apart by the same comparison.
"""
import copy
import json
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as httpclient

from contract_helpers import (REPO, Recorder, jukebox_bin, jukebox_up, kserve_python, kserve_verdict,
                              make_repository, python_env, wait_http)

KSERVE_SERVER = REPO / "crates/jukebox-server/benches/kserve_onnx_server.py"
SONG = "Not Like Us"
TOP = re.compile(r"most likely country (\S+) \(")


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def data_dir():
    path = Path(os.environ.get("JUKEBOX_TEST_DATA", REPO.parent / "shared" / "data"))
    if not (path / "song_properties.parquet").exists():
        pytest.fail(f"no sample data in {path}: set JUKEBOX_TEST_DATA")
    return path


def request(url, repository):
    """`jukebox request` as a participant runs it; returns (top country, stdout)."""
    out = subprocess.run([str(jukebox_bin()), "request", "--url", url, "--song", SONG, "--data-dir", str(data_dir()),
                          "--model-repository", str(repository), "--version", "1"],
                         capture_output=True, text=True, timeout=120, env=python_env())
    assert out.returncode == 0, f"jukebox request against {url} failed:\n{out.stdout}\n{out.stderr}"
    match = TOP.search(out.stdout)
    assert match, f"no top country in:\n{out.stdout}"
    return match.group(1), out.stdout


def probabilities(exchange):
    body = json.loads(exchange.response_body)
    return np.asarray(body["outputs"][0]["data"], dtype=np.float64)


def unversioned(path):
    return re.sub(r"/versions/[^/?]+", "", path)


def binary_infer(url, values, version):
    """tritonclient, binary tensor data in and out, the 13 scaled values as [1, 1] FP32 inputs."""
    client = httpclient.InferenceServerClient(url=url.split("://", 1)[1])
    inputs = []
    for name, value in values.items():
        tensor = httpclient.InferInput(name, [1, 1], "FP32")
        tensor.set_data_from_numpy(np.array([[value]], dtype=np.float32), binary_data=True)
        inputs.append(tensor)
    result = client.infer("jukebox", inputs, model_version=version,
                          outputs=[httpclient.InferRequestedOutput("output", binary_data=True)])
    return result.as_numpy("output").astype(np.float64).ravel()


@pytest.fixture(scope="module")
def answers(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kserve")
    repository = tmp / "models"
    make_repository(repository)
    port, grpc_port = free_port(), free_port()
    log = open(tmp / "kserve.log", "w")
    kserve = subprocess.Popen([str(kserve_python()), str(KSERVE_SERVER), "--model_dir", str(repository / "jukebox" / "1"),
                               "--model_name", "jukebox", "--http_port", str(port), "--grpc_port", str(grpc_port)],
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        with jukebox_up(tmp, model_repository=repository) as settings:
            ours, theirs = settings["JUKEBOX_MODEL_URL"], f"http://127.0.0.1:{port}"
            wait_http(f"{ours}/v2/models/jukebox/versions/1/ready")
            assert kserve.poll() is None, (tmp / "kserve.log").read_text()
            wait_http(f"{theirs}/v2/models/jukebox/ready", timeout=120)
            result = {}
            for label, url, rewrite in (("jukebox", ours, None), ("kserve", theirs, unversioned)):
                with Recorder(url, rewrite) as proxy:
                    top, stdout = request(proxy.url, repository)
                infer = [e for e in proxy.exchanges if e.path.endswith("/infer")]
                assert len(infer) == 1, [str(e) for e in proxy.exchanges]
                result[label] = {"top": top, "stdout": stdout, "exchange": infer[0], "url": url}
            body = json.loads(result["jukebox"]["exchange"].request_body)
            values = {i["name"]: i["data"][0] for i in body["inputs"]}
            result["jukebox"]["binary"] = binary_infer(ours, values, "1")
            # KServe's own client against our server (it names no version: the default, 2, answers).
            peer = subprocess.run([str(kserve_python()), str(Path(__file__).with_name("kserve_client_peer.py")), ours,
                                   json.dumps(values)], capture_output=True, text=True, timeout=120)
            assert peer.returncode == 0, f"KServe's client against jukebox failed:\n{peer.stdout}\n{peer.stderr[-3000:]}"
            result["kserve_client"] = json.loads(peer.stdout.strip().splitlines()[-1])
            result["kserve_client"]["expected"] = binary_infer(ours, values, "2")
            result["kserve"]["binary"] = binary_infer(theirs, values, "")
            # Straight to KServe, the versioned request our client makes.
            with Recorder(theirs) as proxy:
                out = subprocess.run([str(jukebox_bin()), "request", "--url", proxy.url, "--song", SONG,
                                      "--data-dir", str(data_dir()), "--model-repository", str(repository),
                                      "--version", "1"], capture_output=True, text=True, timeout=120, env=python_env())
            result["versioned"] = {"returncode": out.returncode, "stderr": out.stderr, "exchanges": proxy.exchanges}
            yield result
    finally:
        kserve.terminate()
        try:
            kserve.wait(timeout=30)
        except subprocess.TimeoutExpired:
            kserve.kill()
        log.close()


def disagreements(ours, theirs):
    """How two servers' answers to the same `jukebox request` differ: top country, probabilities
    beyond 1e-6, or the printed table (countries and percentages; the URL line aside)."""
    found = []
    if ours["top"] != theirs["top"]:
        found.append(f"top country {ours['top']} vs {theirs['top']}")
    a, b = probabilities(ours["exchange"]), probabilities(theirs["exchange"])
    if a.shape != b.shape:
        found.append(f"{a.size} vs {b.size} probabilities")
    elif float(np.max(np.abs(a - b))) > 1e-6:
        found.append(f"probabilities differ by {float(np.max(np.abs(a - b))):.2e}")
    if ours["stdout"].split("\n", 1)[1] != theirs["stdout"].split("\n", 1)[1]:
        found.append("the printed tables differ")
    return found


def test_jukebox_request_gets_the_same_answer_from_kserve(answers):
    ours, theirs = answers["jukebox"], answers["kserve"]
    for side in (ours, theirs):
        # Notebook 4's InferenceClient::for_artifacts addresses exactly this path.
        assert side["exchange"].path == "/v2/models/jukebox/versions/1/infer", side["exchange"].path
        assert side["exchange"].status == 200, str(side["exchange"])
    # KServe's package reads our client's request as its InferenceRequest (our server's answers are
    # judged in test_contracts_model_server.py).
    assert kserve_verdict("requests", [ours["exchange"]])["errors"] == []

    p_ours, p_theirs = probabilities(ours["exchange"]), probabilities(theirs["exchange"])
    print(f"\njukebox request '{SONG}': top {ours['top']} (jukebox serve) / {theirs['top']} (KServe), "
          f"{p_ours.size} probabilities, JSON max |diff| {float(np.max(np.abs(p_ours - p_theirs))):.2e}")
    assert disagreements(ours, theirs) == [], (ours["stdout"], theirs["stdout"])


def test_binary_tensors_get_the_same_answer_from_kserve(answers):
    b_ours, b_theirs = answers["jukebox"]["binary"], answers["kserve"]["binary"]
    json_ours = probabilities(answers["jukebox"]["exchange"])
    diff = float(np.max(np.abs(b_ours - b_theirs)))
    print(f"\nbinary tensors: max |diff| jukebox vs KServe {diff:.2e}, "
          f"binary vs JSON {float(np.max(np.abs(b_ours - json_ours))):.2e}")
    assert diff <= 1e-6 and float(np.max(np.abs(b_ours - json_ours))) <= 1e-6
    assert int(np.argmax(b_ours)) == int(np.argmax(b_theirs)) == int(np.argmax(json_ours))


def test_a_wrong_server_is_caught(answers):
    """The negative case: KServe's answer with its two most likely countries swapped (a server
    that mixed up its classes), and a printed top country changed, are told apart."""
    swapped = copy.deepcopy(answers["kserve"])
    body = json.loads(swapped["exchange"].response_body)
    data = body["outputs"][0]["data"]
    first, second = np.argsort(data)[::-1][:2]
    data[first], data[second] = data[second], data[first]
    swapped["exchange"].response_body = json.dumps(body).encode()
    assert any("probabilities" in d for d in disagreements(answers["jukebox"], swapped))
    renamed = dict(answers["kserve"], top="ZZ")
    assert any("top country" in d for d in disagreements(answers["jukebox"], renamed))


def test_kserve_refuses_versioned_paths(answers):
    """KServe 0.21's Python server answers 501 to the versioned path notebook 4 and `jukebox
    request` use, and our client reports it (status and KServe's message) instead of guessing."""
    versioned = answers["versioned"]
    assert [e.status for e in versioned["exchanges"] if e.path.endswith("/infer")] == [501], \
        [str(e) for e in versioned["exchanges"]]
    assert versioned["returncode"] != 0
    assert "501" in versioned["stderr"] and "versioning not supported" in versioned["stderr"], versioned["stderr"]


def test_kserve_client_reads_our_server(answers):
    """KServe's own REST client (InferenceRESTClient, v2) against `jukebox serve`: ready, model
    ready, and an inference equal to tritonclient's from the same version."""
    peer = answers["kserve_client"]
    got, expected = np.asarray(peer["probabilities"]), peer["expected"]
    diff = float(np.max(np.abs(got - expected)))
    print(f"\nKServe's InferenceRESTClient against jukebox serve: max |diff| {diff:.2e} from version 2's answer")
    assert peer["ready"] is True and peer["model_ready"] is True
    # (KServe 0.21's InferResponse.from_rest does not keep model_version: the equality says which.)
    assert got.shape == expected.shape and diff <= 1e-6
