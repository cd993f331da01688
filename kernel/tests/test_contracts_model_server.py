"""Contract: every answer the embedded model server gives its peers is one KServe itself would give
under the Open Inference Protocol (v2 REST), judged by KServe's own package.

Judge (PyPI `kserve` 0.21.0 in .venv-kserve, pinned by kernel/constraints-kserve.txt):
kernel/tests/kserve_judge.py routes each request through KServe's v2 router
(kserve.protocol.rest.v2_endpoints) and validates a 200 answer, strictly, as that route's response
model (kserve.protocol.rest.v2_datamodels: ServerMetadataResponse, ServerLiveResponse,
ServerReadyResponse, ModelMetadataResponse, ModelReadyResponse, InferenceResponse), and a failure
as the error object KServe's exception handlers write. KServe's own REST client reads those bodies
(`response.json().get("ready")`, ...), so this is what its clients rely on.

`jukebox up` serves a model repository of two versions (crates/jukebox-runtime/tests/peers/
make_model.py); a recording proxy sits in front of its model server, and the model server peer the
Rust tests use (crates/jukebox-server/tests/peers/model_server_peer.py: tritonclient binary and
JSON, plain `requests`, metadata, every error case) runs through it, plus raw requests for the
server and health endpoints. Answers on paths outside the protocol (the peer's /v3 probe) are not
judged.
"""
import re
import subprocess

import pytest
import requests

from contract_helpers import REPO, Recorder, made_wrong, jukebox_up, kserve_verdict, make_repository, python_env, wait_http

PEER = REPO / "crates/jukebox-server/tests/peers/model_server_peer.py"
# Deviations the judge found and that are not fixed yet, each with why: they are reported, not
# failed on, and the test fails once one no longer occurs (then delete its entry).
KNOWN_DEVIATIONS = {}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("model-server")
    repository = tmp / "models"
    make_repository(repository)
    # The body limit of the Rust model server tests, which the peer's oversize case expects.
    with jukebox_up(tmp, model_repository=repository, extra=["--max-body-bytes", str(1024 * 1024)]) as settings, \
            Recorder(settings["JUKEBOX_MODEL_URL"]) as proxy:
        wait_http(f"{settings['JUKEBOX_MODEL_URL']}/v2/models/jukebox/versions/2/ready")
        out = subprocess.run([str(REPO / ".venv/bin/python"), str(PEER)], capture_output=True, text=True, timeout=300,
                             env=dict(python_env(), JUKEBOX_MODEL_URL=proxy.url, MODEL_DIR=str(repository)))
        assert out.returncode == 0 and "ALL OK" in out.stdout, f"model server peer failed:\n{out.stdout}\n{out.stderr}"
        for path in ("/v2", "/v2/health/live", "/v2/health/ready", "/v2/models/jukebox",
                     "/v2/models/jukebox/versions/1", "/v2/models/jukebox/ready", "/v2/models/jukebox/versions/2/ready",
                     "/v2/models/nope/ready", "/v2/models/nope"):
            requests.get(proxy.url + path, timeout=10)
        yield [e for e in proxy.exchanges if e.path.startswith("/v2")]


def test_every_model_server_answer_is_one_kserve_gives(recorded):
    result = kserve_verdict("answers", recorded)
    statuses = sorted({e.status for e in recorded})
    binary = sum("inference-header-content-length" in e.response_headers for e in recorded)
    print(f"\nmodel server contract, judged by kserve {result['kserve']}: {result['judged']} answers ({binary} binary), "
          f"{len(result['routes'])} routes, statuses {statuses}")
    known = {pattern: [e for e in result["errors"] if re.search(pattern, e)] for pattern in KNOWN_DEVIATIONS}
    errors = [e for e in result["errors"] if not any(re.search(p, e) for p in KNOWN_DEVIATIONS)]
    for pattern, hits in known.items():
        print(f"known deviation, {len(hits)} answers: {KNOWN_DEVIATIONS[pattern]}")
    assert not errors, f"{len(errors)} answers KServe would not give:\n" + "\n".join(errors[:40])
    assert all(known.values()), f"a known deviation no longer occurs, delete its entry: {[p for p, h in known.items() if not h]}"
    # Every part of the protocol was asked: server and model metadata, health, readiness, infer
    # (with and without a version), binary and JSON, successes and failures.
    assert len(result["routes"]) >= 8, result["routes"]
    assert binary > 0 and {200, 400, 404} <= set(statuses), statuses


def test_a_wrong_answer_is_caught(recorded):
    """The negative case: recorded answers made wrong one way each are all refused by the judge."""
    infer = next(e for e in recorded if e.path.endswith("/infer") and e.status == 200
                 and "inference-header-content-length" not in e.response_headers)
    metadata = next(e for e in recorded if e.path == "/v2/models/jukebox" and e.status == 200)
    ready = next(e for e in recorded if e.path == "/v2/health/ready" and e.status == 200)
    failure = next(e for e in recorded if e.path.endswith("/infer") and e.status == 400)
    assert kserve_verdict("answers", [infer, metadata, ready, failure])["errors"] == []

    cases = {
        "an inference answer without model_name": made_wrong(infer, lambda b: b.pop("model_name")),
        "an output without its shape": made_wrong(infer, lambda b: b["outputs"][0].pop("shape")),
        "a shape of strings": made_wrong(infer, lambda b: b["outputs"][0].update(shape=["1", "72"])),
        "metadata without a platform": made_wrong(metadata, lambda b: b.pop("platform")),
        "a metadata tensor without a datatype": made_wrong(metadata, lambda b: b["inputs"][0].pop("datatype")),
        "readiness as a string": made_wrong(ready, lambda b: {"ready": "yes"}),
        "an error as a bare string": made_wrong(failure, lambda b: b["error"]),
        "an error under another key": made_wrong(failure, lambda b: {"message": b["error"]}),
        "a JSON answer labelled as text": made_wrong(infer, lambda b: None, response_headers={"content-type": "text/plain"}),
    }
    verdicts = {case: kserve_verdict("answers", [bad])["errors"] for case, bad in cases.items()}
    accepted = [case for case, errors in verdicts.items() if not errors]
    assert not accepted, f"wrong answers accepted: {accepted}"
