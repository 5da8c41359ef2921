"""The API's contract where FastAPI's generated OpenAPI document needs help, and the methods a path answers.

:func:`install_contract` makes ``app.openapi()`` return FastAPI's document refined, so that it says
exactly what the server does (a contract tester, schemathesis, runs against it in the tests):

- **links**: the answer of a POST that creates a resource (its ``id``) leads to every operation on that resource
  (``POST /v1/generations`` -> ``GET``/``DELETE /v1/generations/{generation_id}``, its files, its events ...);
- **files**: a multipart ``file`` has at least one byte (an empty one is refused);
- **models**: ``model`` of ``POST /v1/generations`` is one of the models this server serves (read after start-up);
- **errors**: the common errors the routers declare are kept where an operation can answer them (404 where the
  path names a resource, 422 where there is a body or a query to refuse).

:func:`allowed_methods` is what an ``Allow`` header lists: the error handlers answer OPTIONS with it and put it on
every 405 (RFC 9110 9.3.7 and 15.5.6).
"""

from __future__ import annotations

import copy
import re
from typing import Any

from fastapi import FastAPI, routing

METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
RESOURCE_PATH = re.compile(r"^(?P<collection>.+)/\{(?P<param>[^}/]+)\}(?:/.*)?$")


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """The methods the app's routes answer on ``path`` (OPTIONS included when any route matches), in a fixed
    order; empty when no route matches the path."""
    found: set[str] = set()
    for route in _routes(app):
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(path):
            found |= set(getattr(route, "methods", None) or ())
    if found:
        found.add("OPTIONS")
    return [m for m in METHOD_ORDER if m in found] + sorted(found - set(METHOD_ORDER))


def _routes(app: FastAPI) -> list[Any]:
    """The app's routes, with those of included routers flattened (FastAPI >= 0.16x keeps them nested)."""
    flatten = getattr(routing, "iter_route_contexts", None)
    return list(flatten(app.routes)) if flatten is not None else list(app.routes)


# ------------------------------------------------------------------------------------------ the document


def install_contract(app: FastAPI) -> None:
    """``app.openapi()`` returns FastAPI's document refined (made once per set of served models: the app knows
    them after start-up)."""
    made: dict[tuple[str, ...] | None, dict[str, Any]] = {}

    def openapi() -> dict[str, Any]:
        models = served_models(app)
        key = tuple(models) if models is not None else None
        if key not in made:
            made[key] = refine(copy.deepcopy(FastAPI.openapi(app)), models)
        return made[key]

    app.openapi = openapi  # type: ignore[method-assign]


def served_models(app: FastAPI) -> list[str] | None:
    """The ids of the models the running app serves; None before start-up (the document then names none)."""
    services = getattr(app.state, "services", None)
    return sorted(services.catalog.models) if services is not None else None


def refine(schema: dict[str, Any], models: list[str] | None) -> dict[str, Any]:
    """Add links, non-empty files and the served models to a generated OpenAPI document (in place)."""
    add_links(schema)
    drop_impossible_errors(schema)
    require_file_content(schema)
    if models is not None:
        name_served_models(schema, models)
    return schema


def add_links(schema: dict[str, Any]) -> None:
    """Link the 2xx answers of every POST on a collection to each operation on ``{collection}/{id}...``, with the
    path parameter taken from the answer's ``id``."""
    paths: dict[str, dict[str, Any]] = schema.get("paths", {})
    for collection, operations in paths.items():
        create = operations.get("post")
        if create is None:
            continue
        links: dict[str, Any] = {}
        for path, targets in paths.items():
            match = RESOURCE_PATH.match(path)
            if match is None or match["collection"] != collection:
                continue
            for method, operation in targets.items():
                if "operationId" not in operation:
                    continue
                links[_link_name(method, path, collection)] = {
                    "operationId": operation["operationId"],
                    "parameters": {match["param"]: "$response.body#/id"},
                    "description": f"{method.upper()} {path} of the resource this answer made",
                }
        if not links:
            continue
        for status, response in create.get("responses", {}).items():
            if str(status).startswith("2"):
                response.setdefault("links", {}).update(links)


def drop_impossible_errors(schema: dict[str, Any]) -> None:
    """The routers declare their common errors on every operation; keep only those an operation can answer:
    404 where the path names a resource, 422 where there is a body or a query parameter to refuse."""
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if "{" not in path:
                responses.pop("404", None)
            checked = [p for p in operation.get("parameters", []) if p.get("in") == "query"]
            if "requestBody" not in operation and not checked:
                responses.pop("422", None)


def _link_name(method: str, path: str, collection: str) -> str:
    """``get``, ``/v1/generations/{generation_id}/audio`` -> ``GetAudio``; the resource itself: ``GetItem``."""
    rest = [part for part in path.removeprefix(collection).split("/") if part and not part.startswith("{")]
    words = [method, *(rest or ["item"])]
    return "".join(word.replace("-", " ").title().replace(" ", "") for word in words)


def require_file_content(schema: dict[str, Any]) -> None:
    """Multipart file fields (``contentMediaType``) take at least one byte: the server refuses an empty file."""
    for component in schema.get("components", {}).get("schemas", {}).values():
        for field in component.get("properties", {}).values():
            if field.get("type") == "string" and "contentMediaType" in field:
                field.setdefault("minLength", 1)


def name_served_models(schema: dict[str, Any], models: list[str]) -> None:
    """``model`` of a generation request: one of the served models' ids (or null, to let the prompt choose)."""
    body = schema.get("components", {}).get("schemas", {}).get("GenerationCreate")
    if body is None or "model" not in body.get("properties", {}):
        return
    served = [{"type": "string", "enum": list(models)}] if models else []
    body["properties"]["model"]["anyOf"] = [*served, {"type": "null"}]
