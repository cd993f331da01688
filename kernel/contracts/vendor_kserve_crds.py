"""Cut KServe's CRD files down to the schemas `jukebox deploy`'s manifests are checked against.

    python kernel/contracts/vendor_kserve_crds.py \
        serving.kserve.io_servingruntimes.yaml serving.kserve.io_inferenceservices.yaml \
        --source "kserve/kserve v0.20.0 (1fb781055dd1567164358233e1125142ca6ef1fe)" \
        > kernel/contracts/kserve-crd-schemas.json

The inputs are kserve/kserve's `config/crd/full/` files (1.9 MB for the InferenceService alone).
The output keeps, per kind, the storage version's `openAPIV3Schema` with every validation keyword
(types, required, enums, patterns, `x-kubernetes-*`), and drops two things only:
- `description` texts (most of the size);
- the schemas of properties `jukebox deploy` never sets and that are whole pod specs or other
  components (STUBBED below), which become `{"type": ..., "x-jukebox-stubbed": true}`: their
  names stay, so a misspelt or unknown field is still caught, and their type is still checked.
To check a newly set field in depth, remove it from STUBBED and run this again.
"""
import argparse
import hashlib
import json
import sys

import yaml

# Property paths (dot-separated, from the schema root) replaced by a stub keeping their type.
STUBBED = {
    "ServingRuntime": [
        "spec.workerSpec", "spec.volumes", "spec.affinity", "spec.tolerations", "spec.builtInAdapter",
        "status",
    ],
    "InferenceService": [
        "spec.canary", "spec.explainer", "spec.transformer", "status",
        "spec.predictor.workerSpec", "spec.predictor.volumes", "spec.predictor.affinity",
        "spec.predictor.containers", "spec.predictor.initContainers", "spec.predictor.tolerations",
        "spec.predictor.topologySpreadConstraints", "spec.predictor.securityContext",
        "spec.predictor.dnsConfig", "spec.predictor.resourceClaims",
        # The framework-specific predictors: the form writes `model` with a modelFormat instead.
        *(f"spec.predictor.{framework}" for framework in [
            "huggingface", "lightgbm", "onnx", "paddle", "pmml", "pytorch", "sklearn", "tensorflow",
            "triton", "xgboost",
        ]),
        # Probes and lifecycle hooks of the model container.
        *(f"spec.predictor.model.{field}" for field in [
            "livenessProbe", "readinessProbe", "startupProbe", "lifecycle", "securityContext",
            "volumeDevices", "resizePolicy", "restartPolicyRules",
        ]),
    ],
}


def strip_descriptions(node):
    if isinstance(node, dict):
        return {k: strip_descriptions(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [strip_descriptions(v) for v in node]
    return node


def stub(schema, dotted):
    parent, _, name = dotted.rpartition(".")
    node = schema
    for part in filter(None, parent.split(".")):
        node = node["properties"][part]
    original = node["properties"][name]
    kept = {k: v for k, v in original.items() if k == "type" or k.startswith("x-kubernetes-")}
    node["properties"][name] = {**kept, "x-jukebox-stubbed": True}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("crds", nargs="+")
    parser.add_argument("--source", required=True, help="repository, tag and commit the files come from")
    args = parser.parse_args()
    out = {
        "source": args.source,
        "derived": "kernel/contracts/vendor_kserve_crds.py: descriptions removed; properties listed in "
                   "its STUBBED reduced to their type",
        "licence": "Apache-2.0 (LICENSE-Apache-2.0)",
        "kinds": {},
    }
    for path in args.crds:
        raw = open(path, "rb").read()
        crd = yaml.safe_load(raw)
        kind = crd["spec"]["names"]["kind"]
        version = next(v for v in crd["spec"]["versions"] if v.get("storage"))
        schema = strip_descriptions(version["schema"]["openAPIV3Schema"])
        for dotted in STUBBED.get(kind, []):
            stub(schema, dotted)
        out["kinds"][kind] = {
            "file": f"config/crd/full/{path.rsplit('/', 1)[-1]}",
            "sha256": hashlib.sha256(raw).hexdigest(),
            "apiVersion": f"{crd['spec']['group']}/{version['name']}",
            "openAPIV3Schema": schema,
        }
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
