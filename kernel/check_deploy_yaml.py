"""Checks the deploy YAML that executed notebook 4 shows: PyYAML parses it, and every field of the
OpenShift AI deploy form carries the workshop's value (name jukebox, OpenVINO Model Server,
onnx - 1, 1 replica, Small, external route on, token authentication off, data connection models,
path models/jukebox).

Usage: check_deploy_yaml.py NOTEBOOK.ipynb
"""
import html
import re
import sys

import nbformat
import yaml

YAML_BLOCK = re.compile(r'<pre class="jukebox language-yaml"[^>]*>(.*?)</pre>', re.S)


def main(path: str) -> int:
    nb = nbformat.read(path, as_version=4)
    blocks = [
        html.unescape(m.group(1))
        for cell in nb.cells
        for output in cell.get("outputs", [])
        for m in YAML_BLOCK.finditer(str(output.get("data", {}).get("text/html", "")))
    ]
    if len(blocks) != 1:
        print(f"{path}: {len(blocks)} deploy YAML blocks in the outputs, 1 wanted")
        return 1
    docs = [d for d in yaml.safe_load_all(blocks[0]) if d]
    kinds = [d["kind"] for d in docs]
    if kinds != ["ServingRuntime", "InferenceService"]:
        print(f"{path}: kinds {kinds}, wanted ServingRuntime and InferenceService (token authentication off)")
        return 1
    runtime, isvc = docs
    p = isvc["spec"]["predictor"]
    checks = {
        "name": isvc["metadata"]["name"] == "jukebox" and runtime["metadata"]["name"] == "jukebox",
        "runtime": p["model"]["runtime"] == "jukebox"
        and runtime["metadata"]["annotations"]["opendatahub.io/template-display-name"] == "OpenVINO Model Server",
        "format and version": p["model"]["modelFormat"] == {"name": "onnx", "version": "1"},
        "replicas": p["minReplicas"] == 1 and p["maxReplicas"] == 1,
        "size": p["model"]["resources"] == {"requests": {"cpu": "1", "memory": "4Gi"}, "limits": {"cpu": "2", "memory": "8Gi"}},
        "route": isvc["metadata"]["labels"].get("networking.kserve.io/visibility") == "exposed",
        "token": isvc["metadata"]["annotations"]["security.opendatahub.io/enable-auth"] == "false"
        and "serviceAccountName" not in p,
        "data connection": p["model"]["storage"]["key"] == "aws-connection-models",
        "path": p["model"]["storage"]["path"] == "models/jukebox",
    }
    bad = [field for field, ok in checks.items() if not ok]
    if bad:
        print(f"{path}: deploy form fields without the workshop's value: {', '.join(bad)}")
        return 1
    print(f"{path}: deploy YAML ok ({', '.join(checks)})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
