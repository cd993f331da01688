"""Peer client for the registry tests: drives the embedded registry with the official
`model-registry` Python client (0.3.18 speaks /api/model_registry/v1, 0.3.7 /v1alpha3) and with
raw HTTP, and checks every answer field by field.

Usage: registry_peer.py MODE, with the server in env JUKEBOX_REGISTRY_URL (http://127.0.0.1:PORT)
and, for the modes that need one, the expected model in env JUKEBOX_REGISTRY_SPEC as JSON:
{"name", "version", "uri", "model_format_name", "model_format_version", "storage_key",
 "storage_path", "author", "owner", "description", "metadata": {key: float|int|bool|str}}

Modes:
  register  register the spec'd model with the official client, verify it, then check that a
            second registration of the same version is refused with "already exists"
  verify    read the spec'd model back with the official client and check every field
  paging    create 5 models and page through them 2 at a time with the client's Pager, then
            check orderBy/sortOrder with raw HTTP
  errors    send bad requests with raw HTTP; check status, JSON error body, and that nothing
            changed (needs the spec'd model to exist already)

Prints `IDS {...}` (the record ids it saw) and ends with `PEER OK <mode>`; any failure exits 1
with the reason. A missing package exits 3 saying what to install.
"""

import json
import os
import sys
import urllib.parse

try:
    import model_registry
    from model_registry import ModelRegistry
    from model_registry.exceptions import StoreError
except ImportError as e:  # pragma: no cover - environment problem, reported to the Rust test
    print(f"missing Python package: {e}. Install with: pip install -r kernel/requirements-test.txt "
          f"(or kernel/requirements-mr037.txt for the 0.3.7 venv)", file=sys.stderr)
    sys.exit(3)


def fail(message):
    print(f"PEER FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def check(label, got, expected):
    if got != expected or type(got) is not type(expected):
        fail(f"{label}: expected {expected!r} ({type(expected).__name__}), got {got!r} ({type(got).__name__})")
    print(f"  ok {label} = {got!r}")


URL = os.environ["JUKEBOX_REGISTRY_URL"]
SPEC = json.loads(os.environ.get("JUKEBOX_REGISTRY_SPEC", "{}"))
VERSION = model_registry.__version__
VERSION_TUPLE = tuple(int(part) for part in VERSION.split(".")[:3] if part.isdigit())
# The client switched from the v1alpha3 API to v1 in 0.3.8.
BASE = "/api/model_registry/v1alpha3" if VERSION_TUPLE < (0, 3, 8) else "/api/model_registry/v1"
print(f"model-registry {VERSION}, base path {BASE}, server {URL}")


def client():
    parsed = urllib.parse.urlparse(URL)
    return ModelRegistry(
        server_address=f"{parsed.scheme}://{parsed.hostname}",
        port=parsed.port,
        author="peer-author",
        is_secure=False,
    )


def found(what, record):
    """`record`, which the client answered for `what`; fails when it found none."""
    if record is None:
        fail(f"{what} not found")
    return record


def check_fields(kind, record, expected):
    """Checks each `field: value` of `expected` against `record`'s attribute."""
    for field, value in expected.items():
        check(f"{kind}.{field}", getattr(record, field), value)


def verify(registry):
    name, version = SPEC["name"], SPEC["version"]
    rm = found(f"registered model {name!r}", registry.get_registered_model(name))
    check_fields("registered_model", rm, {"name": name, "owner": SPEC["owner"]})
    if not rm.id or not str(rm.create_time_since_epoch).isdigit():
        fail(f"registered model lacks id or creation time: {rm!r}")

    mv = found(f"model version {name!r}/{version!r}", registry.get_model_version(name, version))
    expected = {"name": version, "registered_model_id": rm.id}
    expected |= {field: SPEC[field] for field in ("author", "description")}
    check_fields("model_version", mv, expected)
    check("model_version.state", str(getattr(mv.state, "value", mv.state)), "LIVE")
    for key, expected in SPEC["metadata"].items():
        check(f"model_version.custom_properties[{key}]", (mv.custom_properties or {}).get(key), expected)
    extra = set(mv.custom_properties or {}) - set(SPEC["metadata"])
    if extra:
        fail(f"unexpected custom properties {sorted(extra)}")

    ma = found(f"model artifact of {name!r}/{version!r}", registry.get_model_artifact(name, version))
    fields = ("uri", "model_format_name", "model_format_version", "storage_key", "storage_path")
    check_fields("model_artifact", ma, {"name": name} | {field: SPEC[field] for field in fields})

    versions = [v.name for v in registry.get_model_versions(name)]
    if version not in versions:
        fail(f"get_model_versions({name!r}) lists {versions}, without {version!r}")
    print(f"  ok versions listed: {versions}")
    print("IDS " + json.dumps({"model": rm.id, "version": mv.id, "artifact": ma.id}))


def register(registry):
    registry.register_model(
        SPEC["name"],
        SPEC["uri"],
        model_format_name=SPEC["model_format_name"],
        model_format_version=SPEC["model_format_version"],
        version=SPEC["version"],
        storage_key=SPEC["storage_key"],
        storage_path=SPEC["storage_path"],
        author=SPEC["author"],
        owner=SPEC["owner"],
        version_description=SPEC["description"],
        metadata=SPEC["metadata"],
    )
    verify(registry)
    try:
        registry.register_model(
            SPEC["name"], SPEC["uri"], model_format_name="onnx", model_format_version="1", version=SPEC["version"]
        )
    except StoreError as e:
        if "already exists" not in str(e):
            fail(f"repeat registration failed, but not with 'already exists': {e}")
        print(f"  ok repeat registration refused: {e}")
    else:
        fail("registering the same version twice was accepted")


def http(method, path, body=None, raw=None):
    import requests

    kwargs = {"timeout": 10}
    if raw is not None:
        kwargs["data"] = raw
        kwargs["headers"] = {"Content-Type": "application/json"}
    elif body is not None:
        kwargs["json"] = body
    return requests.request(method, URL + path, **kwargs)


def paging(registry):
    created = []
    for i in range(5):
        rm = registry.register_model(
            f"paging-model-{i}", f"s3://models/paging/{i}", model_format_name="onnx", model_format_version="1",
            version="1",
        )
        created.append(rm.name)
    seen = [rm.name for rm in registry.get_registered_models().page_size(2)]
    for name in created:
        if seen.count(name) != 1:
            fail(f"paging 2 at a time saw {name!r} {seen.count(name)} times: {seen}")
    print(f"  ok pager (pageSize 2) saw each of {len(created)} models once among {len(seen)}")

    first = http("GET", f"{BASE}/registered_models?pageSize=2&orderBy=ID&sortOrder=ASC").json()
    check("first page size", first["size"], 2)
    check("first page pageSize", first["pageSize"], 2)
    if not first["nextPageToken"]:
        fail("first of several pages has no nextPageToken")
    second = http("GET", f"{BASE}/registered_models?pageSize=2&orderBy=ID&sortOrder=ASC"
                         f"&nextPageToken={first['nextPageToken']}").json()
    ids = [int(m["id"]) for m in first["items"] + second["items"]]
    if ids != sorted(ids) or len(set(ids)) != 4:
        fail(f"two ascending pages by ID are not 4 increasing ids: {ids}")
    print(f"  ok two pages by ID ascending: {ids}")
    desc = http("GET", f"{BASE}/registered_models?orderBy=CREATE_TIME&sortOrder=DESC").json()
    times = [(int(m["createTimeSinceEpoch"]), int(m["id"])) for m in desc["items"]]
    if times != sorted(times, reverse=True):
        fail(f"CREATE_TIME DESC is not descending: {times}")
    check("last page nextPageToken", desc["nextPageToken"], "")
    print(f"  ok CREATE_TIME DESC: {[t[1] for t in times]}")


def errors(registry):
    rm = registry.get_registered_model(SPEC["name"])
    mv = registry.get_model_version(SPEC["name"], SPEC["version"])
    if rm is None or mv is None:
        fail("errors mode needs the spec'd model registered first")

    def counts():
        return tuple(
            http("GET", f"{BASE}/{kind}?pageSize=100000").json()["size"]
            for kind in ("registered_models", "model_versions", "model_artifacts")
        )

    before = counts()
    print(f"  records before: models, versions, artifacts = {before}")
    cases = [
        ("unknown model name", "GET", f"{BASE}/registered_model?name=no-such-model", None, None, 404, "no-such-model"),
        ("unknown model id", "GET", f"{BASE}/registered_models/999999", None, None, 404, "999999"),
        ("unknown version", "GET", f"{BASE}/model_version?name=99&parentResourceId={rm.id}", None, None, 404, "99"),
        ("unknown artifact id", "GET", f"{BASE}/model_artifacts/424242", None, None, 404, "424242"),
        ("malformed JSON", "POST", f"{BASE}/registered_models", None, '{"name": ', 400, "malformed JSON"),
        ("missing name", "POST", f"{BASE}/registered_models", {"description": "x"}, None, 400, "name"),
        ("mistyped name", "POST", f"{BASE}/registered_models", {"name": 5}, None, 400, "name"),
        ("empty name", "POST", f"{BASE}/registered_models", {"name": ""}, None, 400, "name"),
        ("version without model", "POST", f"{BASE}/model_versions", {"name": "9"}, None, 400, "registeredModelId"),
        ("version of unknown model", "POST", f"{BASE}/model_versions",
         {"name": "9", "registeredModelId": "777777"}, None, 400, "777777"),
        ("bad metadata int", "POST", f"{BASE}/model_versions",
         {"name": "9", "registeredModelId": rm.id,
          "customProperties": {"epochs": {"int_value": "many", "metadataType": "MetadataIntValue"}}},
         None, 400, "customProperties"),
        ("duplicate model", "POST", f"{BASE}/registered_models", {"name": SPEC["name"]}, None, 409, SPEC["name"]),
        ("duplicate version", "POST", f"{BASE}/model_versions",
         {"name": SPEC["version"], "registeredModelId": rm.id}, None, 409, "already has a version"),
        ("unsupported artifact type", "POST", f"{BASE}/model_versions/{mv.id}/artifacts",
         {"artifactType": "doc-artifact", "name": "readme", "uri": "s3://x"}, None, 400, "artifactType"),
        ("bad pageSize", "GET", f"{BASE}/registered_models?pageSize=abc", None, None, 400, "pageSize"),
        ("bad orderBy", "GET", f"{BASE}/registered_models?orderBy=NAME", None, None, 400, "orderBy"),
        ("bad page token", "GET", f"{BASE}/registered_models?nextPageToken=zzz", None, None, 400, "nextPageToken"),
        ("unknown endpoint", "GET", f"{BASE}/no_such_things", None, None, 404, "no_such_things"),
        ("unsupported method", "DELETE", f"{BASE}/registered_models/{rm.id}", None, None, 405, "DELETE"),
    ]
    for label, method, path, body, raw, status, needle in cases:
        answer = http(method, path, body=body, raw=raw)
        if answer.status_code != status:
            fail(f"{label}: expected HTTP {status}, got {answer.status_code}: {answer.text}")
        try:
            error = answer.json()
        except ValueError:
            fail(f"{label}: error body is not JSON: {answer.text!r}")
        if set(error) != {"code", "message"} or error["code"] != str(status):
            fail(f"{label}: error body is not {{code, message}} with code {status}: {error}")
        if needle not in error["message"]:
            fail(f"{label}: message does not mention {needle!r}: {error['message']!r}")
        after = counts()
        if after != before:
            fail(f"{label}: record counts changed from {before} to {after}")
        if http("GET", "/").status_code != 200:
            fail(f"{label}: the server stopped answering")
        print(f"  ok {label}: {status} {error['message']!r}")
    # The official client's view of the same refusals.
    if registry.get_registered_model("no-such-model") is not None:
        fail("official client found a model that does not exist")
    print("  ok official client answers None for an unknown model")


MODES = {"register": register, "verify": verify, "paging": paging, "errors": errors}
if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode not in MODES:
        fail(f"unknown mode {mode!r}; one of {sorted(MODES)}")
    MODES[mode](client())
    print(f"PEER OK {mode}")
