"""Judges `jukebox refine --katib`'s Experiment with Katib's own API models.

The judge is PyPI's `kubeflow-katib-api` (0.19.0): the Katib project's generated pydantic models
of its OpenAPI spec (the Katib 0.19 SDK's models moved into this package). Katib's CRD itself
validates nothing (its openAPIV3Schema is `type: object` with unknown fields preserved); the
Go types these models are generated from are what Katib decodes an Experiment into, and a field
they do not know is silently dropped there. So an Experiment passes when:

1. `V1beta1Experiment.from_dict` accepts it (strict types: an integer written as a string fails);
2. no key anywhere is unknown to the model at that place (walking every nested model), and the
   trial's pod spec passes the same test with `IoK8sApiCoreV1PodSpec`;
3. the rules of Katib's validating webhook (pkg/webhook/v1beta1/experiment/validator/validator.go)
   and of its grid suggestion service (pkg/suggestion/v1beta1/optuna/service.py) that concern
   this Experiment hold: name, counts, objective, algorithm, parameter types, trial parameters and
   their `${trialParameters.NAME}` substitutions, primary container, success/failure conditions,
   collector kind, and for `grid` at most as many trials as combinations.

Usage:
  check_katib_experiment.py check < experiment.yaml
      prints "ok Experiment <name>: <n> trials", then one broken variant per line, each
      "refused <what>: <reason>" (every variant must be refused), then the first trial's command
      as JSON ("trial [...]"), substituted as Katib substitutes it.
  check_katib_experiment.py metrics FILE NAME...
      parses FILE as Katib's StdOut collector does and prints "NAME=VALUE" per metric found.
"""

import copy
import itertools
import json
import re
import sys
import typing

import yaml
from pydantic import BaseModel, ValidationError

from kubeflow_katib_api.models import IoK8sApiCoreV1PodSpec, V1beta1Experiment

# Katib's default StdOut/File collector filter (pkg/metricscollector/v1beta1/common/const.go).
DEFAULT_FILTER = r"([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)"
# The algorithms katib-config.yaml of 0.19.0 configures a suggestion service for.
ALGORITHMS = {"random", "tpe", "grid", "hyperband", "bayesianoptimization", "cmaes", "sobol",
              "multivariate-tpe", "enas", "darts", "pbt"}
SUBSTITUTION = re.compile(r"\$\{trialParameters\.(.+?)\}")


def unknown_keys(model, data, path):
    """Keys of `data` (and below) that `model` has no field for."""
    if not isinstance(data, dict):
        return []
    fields = {(info.alias or name): info for name, info in model.model_fields.items()}
    found = []
    for key, value in data.items():
        info = fields.get(key)
        if info is None:
            found.append(f"{path}.{key} is not a field of {model.__name__}")
        else:
            found += unknown_in(info.annotation, value, f"{path}.{key}")
    return found


def unknown_in(annotation, value, path):
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Union:
        return next((unknown_in(a, value, path) for a in args if a is not type(None)), [])
    if origin is list and isinstance(value, list):
        return [e for i, v in enumerate(value) for e in unknown_in(args[0], v, f"{path}[{i}]")]
    if origin is dict and isinstance(value, dict) and len(args) == 2:
        return [e for k, v in value.items() for e in unknown_in(args[1], v, f"{path}.{k}")]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return unknown_keys(annotation, value, path)
    return []


def webhook_rules(doc):
    """The rules of Katib's validating webhook and grid service this Experiment must meet."""
    problems = []
    name = doc.get("metadata", {}).get("name", "")
    if not re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", name) or len(name) > 40:
        problems.append(f"metadata.name {name!r} is not a Katib experiment name")
    spec = doc.get("spec", {})
    max_trials = spec.get("maxTrialCount")
    parallel = spec.get("parallelTrialCount")
    failed = spec.get("maxFailedTrialCount")
    if max_trials is not None and max_trials <= 0:
        problems.append("spec.maxTrialCount must be greater than 0")
    if parallel is not None and (parallel <= 0 or (max_trials is not None and parallel > max_trials)):
        problems.append("spec.parallelTrialCount must be in 1..maxTrialCount")
    if failed is not None and (failed < 0 or (max_trials is not None and failed > max_trials)):
        problems.append("spec.maxFailedTrialCount must be in 0..maxTrialCount")
    objective = spec.get("objective") or {}
    if objective.get("type") not in ("minimize", "maximize"):
        problems.append("spec.objective.type must be minimize or maximize")
    if not objective.get("objectiveMetricName"):
        problems.append("spec.objective.objectiveMetricName must be specified")
    algorithm = (spec.get("algorithm") or {}).get("algorithmName")
    if algorithm not in ALGORITHMS:
        problems.append(f"spec.algorithm.algorithmName {algorithm!r} has no suggestion service")
    parameters = spec.get("parameters") or []
    if not parameters:
        problems.append("spec.parameters must be specified")
    for i, p in enumerate(parameters):
        kind, space = p.get("parameterType"), p.get("feasibleSpace") or {}
        if kind not in ("int", "double", "categorical", "discrete"):
            problems.append(f"spec.parameters[{i}].parameterType {kind!r} is not supported")
        elif kind in ("categorical", "discrete"):
            if not space.get("list") or any(k in space for k in ("min", "max", "step")):
                problems.append(f"spec.parameters[{i}].feasibleSpace needs a list (and no min/max/step) for {kind}")
        elif "list" in space or "min" not in space or "max" not in space:
            problems.append(f"spec.parameters[{i}].feasibleSpace needs min and max (and no list) for {kind}")
    if algorithm == "grid" and max_trials is not None and parameters:
        if any(p.get("parameterType") in ("int", "double") for p in parameters):
            problems.append("this check only counts list parameters for the grid")
        else:
            combinations = 1
            for p in parameters:
                combinations *= len((p.get("feasibleSpace") or {}).get("list") or [])
            if max_trials > combinations:
                problems.append(f"grid: maxTrialCount {max_trials} > all possible combinations {combinations}")
    template = spec.get("trialTemplate") or {}
    if not template.get("successCondition") or not template.get("failureCondition"):
        problems.append("spec.trialTemplate: successCondition and failureCondition must be specified")
    trial_spec = template.get("trialSpec") or {}
    if trial_spec.get("metadata", {}).get("name") or trial_spec.get("metadata", {}).get("namespace"):
        problems.append("spec.trialTemplate.trialSpec: metadata.name and namespace must be omitted")
    if not trial_spec.get("apiVersion") or not trial_spec.get("kind"):
        problems.append("spec.trialTemplate.trialSpec: apiVersion and kind must be specified")
    containers = (((trial_spec.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
    if template.get("primaryContainerName") not in [c.get("name") for c in containers]:
        problems.append("spec.trialTemplate.primaryContainerName names no container of the trial")
    text = json.dumps(trial_spec)
    names = [p.get("name") for p in parameters]
    for i, t in enumerate(template.get("trialParameters") or []):
        if t.get("reference") not in names:
            problems.append(f"spec.trialTemplate.trialParameters[{i}].reference {t.get('reference')!r} "
                            "is not in spec.parameters")
        marker = "${trialParameters.%s}" % t.get("name")
        if marker not in text:
            problems.append(f"spec.trialTemplate.trialParameters[{i}]: {marker} is not in the trial spec")
        text = text.replace(marker, "test-value")
    left = SUBSTITUTION.findall(text)
    if left:
        problems.append(f"spec.trialTemplate: ${{trialParameters.{left[0]}}} is not in trialParameters")
    kind = ((spec.get("metricsCollectorSpec") or {}).get("collector") or {}).get("kind")
    if kind not in ("StdOut", "File", "TensorFlowEvent", "PrometheusMetric", "Custom", "None", "Push"):
        problems.append(f"spec.metricsCollectorSpec.collector.kind {kind!r} is not a collector kind")
    return problems


def judge(doc):
    """Every reason the Experiment `doc` would be refused or lose a field; empty if none."""
    if doc.get("apiVersion") != "kubeflow.org/v1beta1" or doc.get("kind") != "Experiment":
        return ["not a kubeflow.org/v1beta1 Experiment"]
    try:
        V1beta1Experiment.from_dict(doc)
    except ValidationError as e:
        return [f"Katib's V1beta1Experiment refuses it: {e.errors()[0]['loc']}: {e.errors()[0]['msg']}"]
    problems = unknown_keys(V1beta1Experiment, doc, "")
    pod = ((((doc["spec"].get("trialTemplate") or {}).get("trialSpec") or {}).get("spec") or {})
           .get("template") or {}).get("spec")
    if pod is not None:
        try:
            IoK8sApiCoreV1PodSpec.from_dict(pod)
        except ValidationError as e:
            problems.append(f"the trial's pod spec is refused: {e.errors()[0]['loc']}: {e.errors()[0]['msg']}")
        problems += unknown_keys(IoK8sApiCoreV1PodSpec, pod, ".spec.trialTemplate.trialSpec.spec.template.spec")
    return problems + webhook_rules(doc)


def broken_variants(doc):
    """Experiments each broken in one way Katib would refuse or silently lose."""
    def variant(what, change):
        broken = copy.deepcopy(doc)
        change(broken)
        return what, broken
    spec = lambda d: d["spec"]  # noqa: E731
    container = lambda d: d["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]  # noqa: E731
    return [
        variant("maxTrialCount as a string", lambda d: spec(d).update(maxTrialCount=str(spec(d)["maxTrialCount"]))),
        variant("a misspelt field (parallelTrialCounts)",
                lambda d: spec(d).update(parallelTrialCounts=spec(d).pop("parallelTrialCount"))),
        variant("a misspelt container field (comand)", lambda d: container(d).update(comand=container(d).pop("command"))),
        variant("a trial parameter referring to no parameter",
                lambda d: spec(d)["trialTemplate"]["trialParameters"][0].update(reference="epoch")),
        variant("more trials than grid combinations", lambda d: spec(d).update(maxTrialCount=spec(d)["maxTrialCount"] + 1)),
    ]


def first_trial_command(doc):
    """The primary container's command of the trial taking each parameter's first value."""
    spec = doc["spec"]
    first = {p["name"]: p["feasibleSpace"]["list"][0] for p in spec["parameters"]}
    values = {t["name"]: first[t["reference"]] for t in spec["trialTemplate"]["trialParameters"]}
    pod = spec["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]
    primary = next(c for c in pod["containers"] if c["name"] == spec["trialTemplate"]["primaryContainerName"])
    return [SUBSTITUTION.sub(lambda m: values[m.group(1)], word) for word in primary["command"]]


def parse_metrics(text, names):
    """Katib's text-format collector (file-metricscollector.go): lines that mention a metric,
    every `name=value` match of the filter whose name is one of the metrics."""
    found = []
    for line in text.split("\n"):
        if not any(n in line for n in names):
            continue
        for match in re.finditer(DEFAULT_FILTER, line):
            if match.group(1).strip() in names:
                found.append((match.group(1).strip(), match.group(2).strip()))
    return found


def main():
    if sys.argv[1:2] == ["metrics"]:
        text = open(sys.argv[2]).read()
        for name, value in parse_metrics(text, sys.argv[3:]):
            print(f"{name}={value}")
        return 0
    documents = [d for d in yaml.safe_load_all(sys.stdin) if d is not None]
    if len(documents) != 1:
        print(f"expected one YAML document, got {len(documents)}", file=sys.stderr)
        return 1
    doc = documents[0]
    problems = judge(doc)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    combinations = len(list(itertools.product(*[p["feasibleSpace"]["list"] for p in doc["spec"]["parameters"]])))
    print(f"ok Experiment {doc['metadata']['name']}: {doc['spec']['maxTrialCount']} trials of {combinations} combinations")
    for what, broken in broken_variants(doc):
        problems = judge(broken)
        if not problems:
            print(f"NOT refused: {what}", file=sys.stderr)
            return 1
        print(f"refused {what}: {problems[0]}")
    print("trial " + json.dumps(first_trial_command(doc)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
