"""Issue 22's route through the notebooks, headless, as a participant would take it: train with a
feature dropped and register the result as a second version, beside the first.

With `jukebox up` started on free ports (as kernel/run-notebooks does) and a model repository of
the test's own:

1. notebook 2 with the workshop's 13 features into version folder 1, notebook 3 registers it as
   0.0.1; the bytes of its objects in the bucket are recorded;
2. notebook 2 with `-p features` naming 12 features (no `loudness`) and `-p version_folder 2`:
   the ONNX file has 12 inputs and scaler.json lists the 12;
3. notebook 3 registers folder 2 as 0.0.2; registering 0.0.3 from folder 1 stores it in the next
   free bucket folder, 3 (bucket folder 1 is 0.0.1's and is never written again);
4. notebook 4 asks 0.0.2 (a request of 12 values) and 0.0.1 (13 values): both versions answer;
5. 0.0.1's objects in the bucket are byte-identical to step 1.

Needs the sample data (JUKEBOX_TEST_DATA, default ../shared/data) and the built workspace; it runs
six notebooks, about a minute and a half warm.
"""
import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

import boto3
import nbformat
import onnx
import papermill
import pytest
from lab_helpers import read_env_file
from notebook_text import outputs_text

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
WORKSHOP_FEATURES = [
    "is_explicit", "duration_ms", "danceability", "energy", "key", "loudness", "mode",
    "speechiness", "acousticness", "instrumentalness", "liveness", "valence", "tempo",
]
TWELVE = [f for f in WORKSHOP_FEATURES if f != "loudness"]


def env_sh(expression):
    """A value kernel/env.sh computes (the build's paths)."""
    out = subprocess.run(["bash", "-c", f'source "{REPO}/kernel/env.sh" && {expression}'], check=True, capture_output=True, text=True)
    return out.stdout.strip()


@pytest.fixture(scope="module")
def data_dir():
    path = Path(os.environ.get("JUKEBOX_TEST_DATA", REPO.parent / "shared" / "data"))
    if not (path / "song_properties.parquet").exists():
        pytest.fail(f"no sample data in {path}: set JUKEBOX_TEST_DATA")
    return str(path.resolve())


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """`jukebox up` on free ports with its state in a temporary folder; its settings exported."""
    tmp = tmp_path_factory.mktemp("up")
    env_file = tmp / "up.env"
    env = dict(os.environ)
    env.setdefault("ORT_DYLIB_PATH", env_sh("jukebox_ort_lib"))
    log = open(tmp / "up.log", "w")
    process = subprocess.Popen(
        [env_sh("echo $JUKEBOX_BIN"), "up", "--state-dir", str(tmp / "state"), "--s3-port", "0", "--registry-port", "0",
         "--model-port", "0", "--env-file", str(env_file)],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )
    try:
        for _ in range(300):
            if env_file.exists() and env_file.stat().st_size > 0:
                break
            assert process.poll() is None, (tmp / "up.log").read_text()
            time.sleep(0.1)
        settings = read_env_file(env_file)
        saved = {name: os.environ.get(name) for name in settings}
        os.environ.update(settings)
        yield settings
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
        for name, value in locals().get("saved", {}).items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(autouse=True)
def our_kernelspec(monkeypatch):
    monkeypatch.setenv("JUPYTER_PATH", str(REPO / ".venv/share/jupyter"))


def run(notebook, out_dir, name, **parameters):
    output = out_dir / name
    papermill.execute_notebook(
        str(NOTEBOOKS / notebook), str(output), parameters=parameters, kernel_name="rust", progress_bar=False, cwd=str(NOTEBOOKS)
    )
    return nbformat.read(output, as_version=4)


def bucket_objects(settings, prefix):
    s3 = boto3.client(
        "s3",
        endpoint_url=settings["AWS_S3_ENDPOINT"],
        aws_access_key_id=settings["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=settings["AWS_SECRET_ACCESS_KEY"],
        region_name=settings.get("AWS_DEFAULT_REGION", "us-east-1"),
    )
    bucket = settings["AWS_S3_BUCKET"]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
    return {key: hashlib.sha256(s3.get_object(Bucket=bucket, Key=key)["Body"].read()).hexdigest() for key in keys}


def test_twelve_features_as_a_second_version_beside_the_first(stack, data_dir, tmp_path):
    models = tmp_path / "models"
    out = tmp_path / "out"
    out.mkdir()
    common = dict(data_dir=data_dir, model_dir=str(models), epochs=1)

    # 1. The first model, 13 features, folder 1, registered as 0.0.1.
    run("2-experiment_train.ipynb", out, "2-first.ipynb", **common)
    run("3-save_model.ipynb", out, "3-first.ipynb", version="0.0.1", model_dir=str(models), version_folder=1)
    first_objects = bucket_objects(stack, "models/jukebox/1/")
    assert any(key.endswith("model.onnx") for key in first_objects), first_objects

    # 2. Twelve features, given as papermill gives them (JSON text), into folder 2.
    trained = run("2-experiment_train.ipynb", out, "2-twelve.ipynb", features=json.dumps(TWELVE), version_folder=2, **common)
    folder = models / "jukebox" / "2"
    graph = onnx.load(str(folder / "model.onnx")).graph
    assert [i.name for i in graph.input] == TWELVE
    scaler = json.loads((folder / "artifacts" / "scaler.json").read_text())
    assert scaler["features"] == TWELVE and len(scaler["min"]) == 12
    assert "12 features" in outputs_text(trained)
    assert json.loads((models / "jukebox" / "1" / "artifacts" / "scaler.json").read_text())["features"] == WORKSHOP_FEATURES

    # 3. Registered as 0.0.2 from folder 2; 0.0.3 from folder 1 goes to the next free bucket folder.
    registered = run("3-save_model.ipynb", out, "3-second.ipynb", version="0.0.2", model_dir=str(models), version_folder=2)
    assert "models/jukebox/2" in outputs_text(registered)
    third = run("3-save_model.ipynb", out, "3-third.ipynb", version="0.0.3", model_dir=str(models), version_folder=1)
    assert "this version is stored in models/jukebox/3/" in outputs_text(third)
    third_objects = bucket_objects(stack, "models/jukebox/3/")
    assert sorted(third_objects.values()) == sorted(first_objects.values()), "folder 1's bytes, stored apart"

    # 4. Both versions serve; each request carries its own model's features.
    for version, features in [("0.0.2", TWELVE), ("0.0.1", WORKSHOP_FEATURES)]:
        asked = outputs_text(run("4-request_model.ipynb", out, f"4-{version}.ipynb", version=version, data_dir=data_dir))
        assert f"{len(features)} features, 72 countries" in asked
        assert "Not Like Us: most likely in the Top 50 of" in asked
        inputs_in_body = asked.count('"datatype": "FP32"') or asked.count("&quot;datatype&quot;: &quot;FP32&quot;")
        assert inputs_in_body == len(features), f"{version}: {inputs_in_body} inputs in the request body"
        assert ("loudness" in asked) == (version == "0.0.1")

    # 5. The first version's objects never changed.
    assert bucket_objects(stack, "models/jukebox/1/") == first_objects
