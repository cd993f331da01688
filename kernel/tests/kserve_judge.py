"""Judges our model server's answers and `jukebox deploy`'s manifests with KServe's own Python
package (`kserve`, with the `kubernetes` client it depends on), run in .venv-kserve:

    .venv-kserve/bin/python kserve_judge.py answers   < exchanges.json > verdict.json
    .venv-kserve/bin/python kserve_judge.py manifests < documents.json > verdict.json
    .venv-kserve/bin/python kserve_judge.py requests  < exchanges.json > verdict.json

answers: a JSON list of {"method", "path", "status", "content_type", "body", "json_length"}
(json_length: the Inference-Header-Content-Length of a binary answer, else null). Each path is
routed through KServe's own v2 router (kserve.protocol.rest.v2_endpoints.register_v2_endpoints: the
Open Inference Protocol as KServe serves it); a 200 answer must validate, strictly, as that route's
response model (kserve.protocol.rest.v2_datamodels; InferenceResponse for the infer routes, whose
route declares none); a failure must be KServe's error object, the body its own exception
handlers (kserve.errors) write. In a binary answer the JSON header is judged, an output's `data`
standing in as [] for its bytes, which the peers compare with ONNX Runtime.

manifests: a JSON list of Kubernetes documents; each ServingRuntime and InferenceService must have
KServe's apiVersion and kind (kserve.constants) and deserialise into KServe's generated models
(kserve.models.V1alpha1ServingRuntime, V1beta1InferenceService, and the kubernetes client's models
they nest), with no key the models do not name, each value of its declared type, the models'
required fields present (their client-side validation), and resource quantities that
kubernetes.utils.parse_quantity reads.

requests: the same exchanges; each JSON request body must be KServe's InferenceRequest.

Output: {"kserve": version, "judged": n, "routes": [...], "errors": [...]}.
"""
import asyncio
import importlib.metadata
import json
import re
import sys

import kubernetes.client.models as k8s_models
from kserve import models as kserve_models
from kserve.constants import constants
from kubernetes.utils.quantity import parse_quantity

PRIMITIVES = {"str": str, "int": int, "bool": bool, "float": (int, float), "object": object, "datetime": str,
              "date": str}


def route_table():
    from fastapi import FastAPI
    from kserve.protocol.rest.v2_datamodels import InferenceResponse
    from kserve.protocol.rest.v2_endpoints import register_v2_endpoints

    routers = []

    class App(FastAPI):
        # The v2 router KServe builds, as it hands it to its app.
        def include_router(self, router, *args, **kwargs):
            routers.append(router)
            return super().include_router(router, *args, **kwargs)

    register_v2_endpoints(App(), dataplane=None, model_repository_extension=None)
    routes = []
    for route in (r for router in routers for r in router.routes):
        if getattr(route, "path", "").startswith("/v2"):
            model = route.response_model or (InferenceResponse if route.path.endswith("/infer") else None)
            routes.append((route, model))
    return routes


def error_shape():
    """The keys and value types of KServe's own error answers (its exception handlers' bodies)."""
    from kserve import errors

    response = asyncio.run(errors.model_not_found_handler(None, errors.ModelNotFound("jukebox")))
    body = json.loads(response.body)
    return {key: type(value) for key, value in body.items()}


def judge_answer(exchange, routes, shape):
    where = f"{exchange['method']} {exchange['path']} -> {exchange['status']}"
    from starlette.routing import Match

    scope = {"type": "http", "path": exchange["path"], "root_path": "", "method": exchange["method"]}
    found = [(route, model) for route, model in routes if route.matches(scope)[0] == Match.FULL]
    if not found:
        return None, [f"{where}: no route of KServe's v2 protocol"]
    route, model = found[0]
    raw = exchange["body"]
    try:
        if exchange.get("json_length") is not None:
            body = json.loads(raw[:exchange["json_length"]])
            for output in body.get("outputs", []):
                if "data" not in output and "binary_data_size" in (output.get("parameters") or {}):
                    output["data"] = []
        else:
            body = json.loads(raw) if raw.strip() else None
    except ValueError as e:
        return route.path, [f"{where}: body is not JSON ({e}): {raw[:200]!r}"]
    errors = []
    if exchange.get("json_length") is None and body is not None and not exchange["content_type"].startswith("application/json"):
        errors.append(f"{where}: content type {exchange['content_type']!r}, not JSON")
    if exchange["status"] == 200:
        if model is not None:
            try:
                model.model_validate_json(json.dumps(body), strict=True)
            except Exception as e:
                errors.append(f"{where}: not KServe's {model.__name__}: {' '.join(str(e).split())[:500]}")
    elif exchange["status"] >= 400:
        if not isinstance(body, dict) or {k: type(v) for k, v in body.items()} != shape:
            errors.append(f"{where}: not KServe's error object {{{', '.join(f'{k}: {t.__name__}' for k, t in shape.items())}}}: {body!r}")
    else:
        errors.append(f"{where}: a status KServe's protocol does not answer")
    return route.path, errors


def model_class(name):
    return getattr(kserve_models, name, None) or getattr(k8s_models, name, None)


def walk(value, kind, where, errors):
    """`value` read as KServe's/Kubernetes' generated type `kind`; errors appended; returns the
    constructed value (None where it could not be)."""
    if value is None:
        return None
    if kind in PRIMITIVES:
        expected = PRIMITIVES[kind]
        if (kind == "int" and isinstance(value, bool)) or not isinstance(value, expected):
            errors.append(f"{where}: {value!r} is not a {kind}")
        return value
    match = re.fullmatch(r"(?:list|List)\[(.+)\]", kind)
    if match:
        if not isinstance(value, list):
            errors.append(f"{where}: {value!r} is not a list")
            return None
        return [walk(v, match.group(1), f"{where}[{i}]", errors) for i, v in enumerate(value)]
    match = re.fullmatch(r"dict\(str, (.+)\)|Dict\[str, (.+)\]", kind)
    if match:
        if not isinstance(value, dict):
            errors.append(f"{where}: {value!r} is not a map")
            return None
        inner = match.group(1) or match.group(2)
        return {k: walk(v, inner, f"{where}.{k}", errors) for k, v in value.items()}
    cls = model_class(kind)
    if cls is None:
        errors.append(f"{where}: type {kind} unknown to kserve and kubernetes")
        return None
    if not isinstance(value, dict):
        errors.append(f"{where}: {value!r} is not a {kind} object")
        return None
    by_json = {json_key: attribute for attribute, json_key in cls.attribute_map.items()}
    kwargs = {}
    for key, item in value.items():
        if key not in by_json:
            errors.append(f"{where}.{key}: no such field in {kind}")
            continue
        attribute = by_json[key]
        kwargs[attribute] = walk(item, cls.openapi_types[attribute], f"{where}.{key}", errors)
    if cls is k8s_models.V1ResourceRequirements:
        for side in ("limits", "requests"):
            for resource, quantity in (value.get(side) or {}).items():
                try:
                    parse_quantity(quantity)
                except Exception as e:
                    errors.append(f"{where}.{side}.{resource}: {quantity!r} is no Kubernetes quantity ({e})")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as e:
        errors.append(f"{where}: {kind} refused it: {e}")
        return None


KINDS = {
    "ServingRuntime": (constants.KSERVE_V1ALPHA1, "V1alpha1ServingRuntime"),
    constants.KSERVE_KIND_INFERENCESERVICE: (constants.KSERVE_V1BETA1, "V1beta1InferenceService"),
}


def judge_manifest(document):
    kind = document.get("kind")
    if kind not in KINDS:
        return []
    api_version, model = KINDS[kind]
    errors = []
    if document.get("apiVersion") != api_version:
        errors.append(f"{kind}: apiVersion {document.get('apiVersion')!r}, KServe's is {api_version!r}")
    walk(document, model, kind, errors)
    if not document.get("spec"):
        errors.append(f"{kind}: no spec")
    return errors


def main():
    mode = sys.argv[1]
    items = json.load(sys.stdin)
    errors, used = [], set()
    if mode == "answers":
        routes, shape = route_table(), error_shape()
        for exchange in items:
            route, found = judge_answer(exchange, routes, shape)
            errors += found
            if route:
                used.add(route)
    elif mode == "requests":
        # The JSON bodies our clients post to infer, as KServe reads them (InferenceRequest).
        from kserve.protocol.rest.v2_datamodels import InferenceRequest

        for exchange in items:
            try:
                InferenceRequest.model_validate_json(exchange["request_body"], strict=True)
            except Exception as e:
                errors.append(f"{exchange['method']} {exchange['path']}: request is not KServe's InferenceRequest: "
                              f"{' '.join(str(e).split())[:500]}")
            used.add(exchange["path"])
    elif mode == "manifests":
        for document in items:
            errors += judge_manifest(document)
            used.add(document.get("kind"))
    else:
        sys.exit(f"unknown mode {mode!r}: answers or manifests")
    json.dump({"kserve": importlib.metadata.version("kserve"), "judged": len(items),
               "routes": sorted(used), "errors": errors}, sys.stdout)


if __name__ == "__main__":
    main()
