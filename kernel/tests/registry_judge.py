"""Judges recorded Model Registry answers with the Kubeflow `model-registry` client's own generated
code: its operations table (mr_openapi.api.ModelRegistryServiceApi: each operation's method,
resource path and `_response_types_map`, status -> model, generated from the upstream OpenAPI
document) and its pydantic models (mr_openapi.models, strict types, required fields, enums).

    PYTHON registry_judge.py < exchanges.json > verdict.json

Runs in whichever venv holds the client (0.3.18 in .venv: /api/model_registry/v1; 0.3.7 in
.venv-mr037: /v1alpha3), so each base path is judged by the client generated for it. Input: a JSON
list of {"method", "path", "status", "content_type", "body"}. Output: {"client": version,
"judged": n, "operations": [...], "unrouted": [...], "errors": [...]}; an exchange that is no
operation of the client (a test's probe of an unknown path or method) is outside the contract:
listed under "unrouted", not judged.
"""
import ast
import inspect
import json
import re
import sys

import model_registry
import mr_openapi.models as models
from mr_openapi.api import model_registry_service_api as service


def operations():
    """[(method, compiled path regex, template, {status: model name or None})] from the source of
    the generated API class (each public operation's `_response_types_map`, and its `_<op>_serialize`
    helper's method and resource_path)."""
    tree = ast.parse(inspect.getsource(service))
    maps, routes = {}, {}
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for stmt in ast.walk(node):
            target = getattr(stmt, "target", None) or (getattr(stmt, "targets", None) or [None])[0]
            if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and getattr(target, "id", "") == "_response_types_map":
                if not node.name.endswith(("_with_http_info", "_without_preload_content")):
                    maps[node.name] = ast.literal_eval(stmt.value)
            if isinstance(stmt, ast.Call) and any(k.arg == "resource_path" for k in stmt.keywords):
                keywords = {k.arg: ast.literal_eval(k.value) for k in stmt.keywords if k.arg in ("method", "resource_path")}
                routes[node.name.removeprefix("_").removesuffix("_serialize")] = keywords
    table = []
    for name, responses in maps.items():
        route = routes[name]
        template = route["resource_path"]
        pattern = "/".join("[^/]+" if s.startswith("{") else re.escape(s) for s in template.split("/"))
        table.append((route["method"], re.compile(f"^{pattern}/?$"), template, responses, name))
    # Literal segments before parameters (`/registered_model` is not `/registered_models/{id}`).
    table.sort(key=lambda t: t[2].count("{"))
    return table


def judge(exchange, table):
    where = f"{exchange['method']} {exchange['path']} -> {exchange['status']}"
    for method, regex, template, responses, name in table:
        if method == exchange["method"] and regex.match(exchange["path"]):
            break
    else:
        return None, []  # not an operation of the API: outside the contract (reported as unrouted)
    model_name = responses.get(str(exchange["status"]), "missing")
    if model_name == "missing":
        return name, [f"{where}: status not among {name}'s documented answers {sorted(responses)}"]
    if model_name is None:
        return name, []
    errors = []
    if not exchange["content_type"].startswith("application/json"):
        errors.append(f"{where}: content type {exchange['content_type']!r}, not JSON")
    try:
        body = json.loads(exchange["body"])
    except ValueError as e:
        return name, errors + [f"{where}: body is not JSON ({e})"]
    model = getattr(models, model_name)
    try:
        # Strict: a number where the document says string is an error, not coerced.
        model.model_validate_json(json.dumps(body), strict=True)
        checked = model.from_dict(body)  # the client's own reading (oneOf custom properties)
        if checked is None:
            errors.append(f"{where}: {model_name}.from_dict gave nothing")
    except Exception as e:  # pydantic.ValidationError, or the oneOf resolver's ValueError
        message = " ".join(str(e).split())
        errors.append(f"{where}: not a {model_name}: {message[:600]}")
    return name, errors


def main():
    exchanges = json.load(sys.stdin)
    table = operations()
    errors, used, unrouted = [], set(), []
    for exchange in exchanges:
        name, found = judge(exchange, table)
        errors += found
        if name:
            used.add(name)
        else:
            unrouted.append(f"{exchange['method']} {exchange['path']} -> {exchange['status']}")
    json.dump({"client": model_registry.__version__, "judged": len(exchanges) - len(unrouted),
               "operations": sorted(used), "known_operations": len(table), "unrouted": unrouted, "errors": errors},
              sys.stdout)


if __name__ == "__main__":
    main()
