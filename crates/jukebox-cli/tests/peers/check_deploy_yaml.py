"""Parse `jukebox deploy` output (stdin) with PyYAML and check every form field landed.

Expects the flags used by tests/deploy_yaml.rs. Prints `ok <kinds>` or exits 1 naming the field.
"""
import sys

import yaml

docs = [d for d in yaml.safe_load_all(sys.stdin) if d]
kinds = [d["kind"] for d in docs]
expected = ["ServingRuntime", "InferenceService", "ServiceAccount", "Role", "RoleBinding", "Secret"]
if kinds != expected:
    sys.exit(f"kinds {kinds} != {expected}")
runtime, isvc = docs[0], docs[1]
p = isvc["spec"]["predictor"]
checks = {
    "name": isvc["metadata"]["name"] == "songs" and runtime["metadata"]["name"] == "songs",
    "namespace": isvc["metadata"]["namespace"] == "user1-jukebox",
    "runtime": p["model"]["runtime"] == "songs"
    and runtime["metadata"]["annotations"]["opendatahub.io/template-display-name"] == "OpenVINO Model Server",
    "model format": p["model"]["modelFormat"] == {"name": "onnx", "version": "1"},
    "replicas": p["minReplicas"] == 3 and p["maxReplicas"] == 3,
    "size": p["model"]["resources"] == {"requests": {"cpu": "4", "memory": "8Gi"},
                                        "limits": {"cpu": "8", "memory": "10Gi"}},
    "external route": isvc["metadata"]["labels"].get("networking.kserve.io/visibility") == "exposed",
    "token auth": isvc["metadata"]["annotations"]["security.opendatahub.io/enable-auth"] == "true"
    and p["serviceAccountName"] == "reader-sa",
    "data connection": p["model"]["storage"] == {"key": "aws-connection-models", "path": "models/songs"},
    "deployment mode": isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "RawDeployment",
    "dashboard label": isvc["metadata"]["labels"]["opendatahub.io/dashboard"] == "true",
}
bad = [k for k, ok in checks.items() if not ok]
if bad:
    sys.exit(f"fields wrong in the YAML: {bad}")
print("ok", " ".join(kinds))
