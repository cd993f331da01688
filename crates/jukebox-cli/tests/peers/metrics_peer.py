"""Judge the metrics of `jukebox up`'s three servers with Prometheus's own Python parser.

Environment: what `jukebox up` exports (JUKEBOX_MODEL_URL, JUKEBOX_REGISTRY_URL, AWS_S3_ENDPOINT,
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION, AWS_S3_BUCKET); the model server
serves model `jukebox` version 1 (13 FP32 inputs of shape [-1, 1]).

The judge is `prometheus_client.parser.text_string_to_metric_families` (PyPI `prometheus-client`,
the parser of Prometheus's Python client): every scrape must parse whole, with the content type
of the text format 0.0.4. Then one request to each server must be counted exactly once, under
the names and labels OpenVINO Model Server (model server) and MinIO (S3) users chart.
Prints one `ok ...` line per check and `PEER OK metrics`; exits 1 on the first failure.
"""
import os
import sys
from importlib.metadata import version

import boto3
import requests
from botocore.config import Config
from prometheus_client.parser import text_string_to_metric_families

MODEL = os.environ["JUKEBOX_MODEL_URL"].rstrip("/")
REGISTRY = os.environ["JUKEBOX_REGISTRY_URL"].rstrip("/")
S3 = os.environ["AWS_S3_ENDPOINT"].rstrip("/")
FEATURES = ["is_explicit", "duration_ms", "danceability", "energy", "key", "loudness", "mode",
            "speechiness", "acousticness", "instrumentalness", "liveness", "valence", "tempo"]


def fail(message):
    print(f"FAIL {message}")
    sys.exit(1)


def scrape(url):
    """Every sample of the exposition at `url`, as {(name, sorted labels): value}."""
    answer = requests.get(url, timeout=10)
    if answer.status_code != 200:
        fail(f"GET {url} answered {answer.status_code}: {answer.text[:200]}")
    if not answer.headers.get("content-type", "").startswith("text/plain; version=0.0.4"):
        fail(f"GET {url}: content type {answer.headers.get('content-type')!r}, not the text format 0.0.4")
    samples = {}
    try:
        for family in text_string_to_metric_families(answer.text):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    except Exception as error:  # the parser raises ValueError and others on malformed text
        fail(f"GET {url}: the Prometheus parser refused the exposition: {error!r}\n{answer.text[:2000]}")
    return samples


def value(samples, metric, **labels):
    return samples.get((metric, tuple(sorted(labels.items()))), 0.0)


def expect_delta(before, after, metric, delta, **labels):
    got = value(after, metric, **labels) - value(before, metric, **labels)
    if got != delta:
        fail(f"{metric}{labels} went up by {got}, expected {delta}")
    print(f"ok {metric}{labels} +{delta:g}")


# --- model server: OpenVINO Model Server's families --------------------------------------
before = scrape(f"{MODEL}/metrics")
if value(before, "jukebox_model_versions_loaded") != 1:
    fail(f"jukebox_model_versions_loaded is {value(before, 'jukebox_model_versions_loaded')}, expected 1")
if ("ovms_current_requests", (("name", "jukebox"), ("version", "1"))) not in before:
    fail("ovms_current_requests has no series for the loaded model jukebox version 1")
body = {"inputs": [{"name": f, "shape": [2, 1], "datatype": "FP32", "data": [0.5, 0.25]} for f in FEATURES]}
answer = requests.post(f"{MODEL}/v2/models/jukebox/versions/1/infer", json=body, timeout=10)
if answer.status_code != 200:
    fail(f"inference answered {answer.status_code}: {answer.text[:200]}")
missing = requests.get(f"{MODEL}/v2/models/no-such-model/ready", timeout=10)
if missing.status_code != 404:
    fail(f"an unknown model's ready answered {missing.status_code}")
after = scrape(f"{MODEL}/metrics")
rest = dict(api="KServe", interface="REST", method="ModelInfer", name="jukebox", version="1")
expect_delta(before, after, "ovms_requests_success_total", 1, **rest)
expect_delta(before, after, "ovms_requests_fail_total", 0, **rest)
expect_delta(before, after, "ovms_request_time_us_count", 1, interface="REST", name="jukebox", version="1")
expect_delta(before, after, "ovms_inference_time_us_count", 1, name="jukebox", version="1")
expect_delta(before, after, "ovms_wait_for_infer_req_time_us_count", 1, name="jukebox", version="1")
expect_delta(before, after, "jukebox_infer_batch_rows_sum", 2, name="jukebox", version="1")
expect_delta(before, after, "jukebox_http_requests_total", 1, method="POST", code="200")
if any(name.startswith("ovms_") and dict(labels).get("name") == "no-such-model" for name, labels in after):
    fail("a request for an unknown model created a model series")
print("ok an unknown model creates no series")
if value(after, "ovms_current_requests", name="jukebox", version="1") != 0:
    fail("ovms_current_requests is not back to 0 once the request is answered")

# --- registry --------------------------------------------------------------------------------
before = scrape(f"{REGISTRY}/metrics")
listing = requests.get(f"{REGISTRY}/api/model_registry/v1alpha3/registered_models", timeout=10)
if listing.status_code != 200:
    fail(f"registry listing answered {listing.status_code}")
after = scrape(f"{REGISTRY}/metrics")
expect_delta(before, after, "jukebox_registry_requests_total", 1,
             operation="GET /api/model_registry/v1alpha3/registered_models", code="200")
# The listing and the first scrape (counted once its answer was sent; Prometheus's own clients
# count scrapes too).
expect_delta(before, after, "jukebox_http_request_duration_seconds_count", 2, method="GET")

# --- S3: MinIO's families, at MinIO's path ------------------------------------------------------
metrics_url = f"{S3}/minio/v2/metrics/cluster"
before = scrape(metrics_url)
s3 = boto3.client("s3", endpoint_url=S3, region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
                  config=Config(s3={"addressing_style": "path"}))
s3.list_objects_v2(Bucket=os.environ["AWS_S3_BUCKET"])
after = scrape(metrics_url)
expect_delta(before, after, "minio_s3_requests_total", 1, api="ListObjectsV2")
expect_delta(before, after, "minio_s3_requests_errors_total", 0, api="ListObjectsV2")
# The parser names every counter's sample `<name>_total`, as OpenMetrics does.
if value(after, "minio_s3_traffic_sent_bytes_total") <= value(before, "minio_s3_traffic_sent_bytes_total"):
    fail("minio_s3_traffic_sent_bytes did not grow with the listing's answer")
print("ok minio_s3_traffic_sent_bytes grew")

print(f"judge: prometheus-client {version('prometheus-client')}")
print("PEER OK metrics")
