"""Contract: `jukebox deploy`'s ServingRuntime and InferenceService are objects KServe's own package
reads, for every flag combination of the form.

Judge (PyPI `kserve` 0.21.0 with its `kubernetes` client, in .venv-kserve, pinned by
kernel/constraints-kserve.txt): kernel/tests/kserve_judge.py deserialises each manifest into
KServe's generated models (kserve.models.V1alpha1ServingRuntime, V1beta1InferenceService and the
Kubernetes models they nest): KServe's apiVersion and kind (kserve.constants), no key the models do
not name (what `kubectl apply --validate=strict` refuses), each value of its declared type, the
models' required fields, and resource quantities Kubernetes parses (kubernetes.utils.parse_quantity).
On top, KServe's runtime selection: the InferenceService names the runtime, and that runtime lists
the model's format and version and speaks the v2 protocol.

Not judged here: the OpenShift AI dashboard's annotations and labels. They are documented only in
the dashboard's source (opendatahub-io/odh-dashboard), which no package ships;
kernel/check_deploy_yaml.py checks the workshop's values field by field.
"""
import copy
import subprocess

import pytest
import yaml

from contract_helpers import jukebox_bin, kserve_verdict

FORMS = {
    "workshop form (defaults)": [],
    "token auth, namespace, 2 replicas, Medium": ["--token-auth", "--namespace", "user1-mlops", "--replicas", "2",
                                                  "--size", "medium"],
    "raw deployment, external route": ["--deployment-mode", "raw-deployment"],
    "serverless, no external route": ["--no-external-route"],
    "raw deployment, no external route, Large": ["--deployment-mode", "raw-deployment", "--no-external-route",
                                                 "--size", "large", "--name", "songs"],
}


def deploy(flags):
    out = subprocess.run([str(jukebox_bin()), "deploy", *flags], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def selection_errors(documents):
    """KServe's runtime selection for the InferenceService: the runtime it names exists, lists the
    model's format and version, and speaks v2."""
    by_kind = {d.get("kind"): d for d in documents}
    runtime, isvc = by_kind.get("ServingRuntime"), by_kind.get("InferenceService")
    if not runtime or not isvc:
        return [f"kinds {sorted(by_kind)}: a ServingRuntime and an InferenceService wanted"]
    model = isvc.get("spec", {}).get("predictor", {}).get("model", {})
    errors = []
    if model.get("runtime") != runtime["metadata"]["name"]:
        errors.append(f"the InferenceService asks for runtime {model.get('runtime')!r}, the runtime is "
                      f"{runtime['metadata']['name']!r}")
    wanted = model.get("modelFormat", {})
    if not any(f.get("name") == wanted.get("name") and f.get("version") == wanted.get("version")
               for f in runtime["spec"].get("supportedModelFormats", [])):
        errors.append(f"the runtime does not list the model format {wanted}")
    if "v2" not in runtime["spec"].get("protocolVersions", []):
        errors.append("the runtime does not speak the v2 protocol")
    if isvc["metadata"].get("namespace") != runtime["metadata"].get("namespace"):
        errors.append("the runtime and the InferenceService are in different namespaces")
    return errors


@pytest.fixture(scope="module")
def manifests():
    return {form: deploy(flags) for form, flags in FORMS.items()}


def test_deploy_manifests_are_objects_kserve_reads(manifests):
    errors = []
    for form, documents in manifests.items():
        result = kserve_verdict("manifests", documents)
        assert {"InferenceService", "ServingRuntime"} <= set(result["routes"]), result["routes"]
        errors += [f"{form}: {e}" for e in result["errors"] + selection_errors(documents)]
    print(f"\ndeploy contract, judged by kserve {result['kserve']}: {len(manifests)} forms")
    assert not errors, "\n".join(errors)


def test_a_wrong_manifest_is_caught(manifests):
    """The negative case: the workshop's manifests made wrong one way each are all refused."""
    good = manifests["workshop form (defaults)"]
    assert kserve_verdict("manifests", good)["errors"] == [] and selection_errors(good) == []

    def predictor(isvc):
        return isvc["spec"]["predictor"]

    cases = {
        "replicas as a string": lambda sr, isvc: predictor(isvc).update(minReplicas="1"),
        "a misspelt model field": lambda sr, isvc: predictor(isvc)["model"].update(storagePath="models/jukebox"),
        "memory that is no quantity": lambda sr, isvc: predictor(isvc)["model"]["resources"]["limits"].update(memory="8 GB"),
        "a runtime container without a name": lambda sr, isvc: sr["spec"]["containers"][0].pop("name"),
        "the wrong API version": lambda sr, isvc: isvc.update(apiVersion="serving.kserve.io/v1alpha1"),
        "a misspelt spec field of the runtime": lambda sr, isvc: sr["spec"].update(supportedModelFormat=[]),
        "a runtime of another name": lambda sr, isvc: predictor(isvc)["model"].update(runtime="ovms"),
        "a format the runtime does not list": lambda sr, isvc: predictor(isvc)["model"].update(
            modelFormat={"name": "onnx", "version": "7"}),
    }
    accepted = []
    for case, change in cases.items():
        documents = copy.deepcopy(good)
        change(*documents[:2])
        if not kserve_verdict("manifests", documents)["errors"] and not selection_errors(documents):
            accepted.append(case)
    assert not accepted, f"wrong manifests accepted: {accepted}"
