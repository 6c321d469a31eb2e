"""The OpenAPI document, completed: the problem+json answers every operation can give, the
request bodies that handlers read themselves (registration: JSON or multipart), and the CSV
form of the answers that have one.

Litestar documents a handler's success response and the body it decodes. Refusals come from
guards, the body-size limit, the content-type check and the services, which Litestar cannot
see; so a client (and the fuzzing test) would meet status codes the document never named.
``complete_openapi`` adds them once, from rules that follow what the node actually does:

- every operation: 400 (malformed request);
- every operation behind a login: 401 (no or expired login) and 403 (role);
- an operation with a path parameter: 404 (no such record, or one the role may not see) and
  409 (the record's state forbids it, e.g. details of a hit not yet approved);
- an operation with query parameters: 422 (a value refused, e.g. a range that ends first);
- an operation with a body: 413 (too large), 415 (content type) and 422 (refused content);
- a POST: 409 (conflict with what is stored: a superseded crossing, a reused key), and
  every exchange and liaison operation: 409 while no agreement is in force;
- login and node-to-node endpoints: 429 (throttled, with ``Retry-After``);
- registration: 503 (too many photos decoding at once; try again).

A handler documents one media type per answer. Those that also answer CSV (a path ending in
``.csv``: CSV only; a ``format`` query parameter offering ``csv``: JSON or CSV) get their
``text/csv`` answer here too.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Litestar
from litestar._openapi.plugin import OpenAPIPlugin  # private in Litestar 2

from registry.crossings.schemas import RegistrationRequest

PROBLEM_SCHEMA = "Problem"
PUBLIC = {"/api/health", "/api/auth/login"}
THROTTLED_PREFIXES = ("/api/auth/login", "/api/sync/", "/api/exchange/")
AGREEMENT_PREFIXES = ("/api/exchange/", "/api/liaison/")  # 409 while no agreement is in force
REGISTRATION = ("/api/crossings", "post")
REASONS = {
    400: "Malformed request: the problem names the field",
    401: "Not logged in, or the login has expired",
    403: "The role may not use this operation",
    404: "No such record (or one this role may not see)",
    409: "Conflicts with what is stored",
    413: "Request body too large",
    415: "Unsupported content type",
    422: "Refused: the problem names the field and the reason",
    429: "Too many attempts: wait for Retry-After seconds",
    503: "Busy: try again shortly",
}
WRITE_METHODS = {"post", "put", "patch", "delete"}
CSV = {"text/csv": {"schema": {"type": "string", "description": "CSV, header row first"}}}


def _problem_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "RFC 9457 problem details",
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "invalid_params": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "reason": {"type": "string"},
                        "code": {
                            "type": "string",
                            "description": "why text was refused (registry.text): "
                            "control_character, line_break, format_character, surrogate, "
                            "noncharacter, private_use, required, too_short, too_long, "
                            "derived_too_long, not_text",
                        },
                        "char": {"type": "string", "description": "the refused character"},
                        "limit": {"type": "string", "description": "the length limit"},
                        "derived": {"type": "string", "description": "the derived form"},
                    },
                },
            },
        },
        "required": ["title", "status"],
    }


def _codes(path: str, method: str, operation: dict[str, Any]) -> set[int]:
    codes = {400}
    if path not in PUBLIC:
        codes |= {401, 403}
    places = {parameter.get("in") for parameter in operation.get("parameters", [])}
    if "path" in places:
        codes |= {404, 409}
    if "query" in places:
        codes.add(422)
    if method in WRITE_METHODS:
        codes |= {413, 415, 422}
    if method == "post" or path.startswith(AGREEMENT_PREFIXES):
        codes.add(409)
    if path.startswith(THROTTLED_PREFIXES):
        codes.add(429)
    if (path, method) == REGISTRATION:
        codes.add(503)
    return codes


def _offers_csv(schema: Any) -> bool:
    """Whether a parameter's schema (an enum, maybe inside oneOf/anyOf) allows ``csv``."""
    if isinstance(schema, dict):
        return "csv" in schema.get("enum", ()) or any(
            _offers_csv(option) for key in ("oneOf", "anyOf") for option in schema.get(key, ())
        )
    return False


def _add_csv(path: str, operation: dict[str, Any]) -> None:
    """Document the CSV answer of an operation that has one (see the module's docstring)."""
    success = operation.get("responses", {}).get("200")
    if success is None:
        return
    if path.endswith(".csv"):
        success["content"] = dict(CSV)
        return
    formats = [
        p
        for p in operation.get("parameters", [])
        if p.get("in") == "query" and p["name"] == "format"
    ]
    if any(_offers_csv(p.get("schema")) for p in formats):
        success["content"] = {**(success.get("content") or {}), **CSV}


def _registration_body(schemas: dict[str, Any]) -> dict[str, Any]:
    """The registration body, JSON or multipart, with RegistrationRequest's schema."""
    (ref,), components = msgspec.json.schema_components(
        [RegistrationRequest], ref_template="#/components/schemas/{name}"
    )
    for name, schema in components.items():
        schemas.setdefault(name, schema)
    return {
        "required": True,
        "content": {
            "application/json": {"schema": ref},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["crossing"],
                    "properties": {
                        "crossing": {
                            "type": "string",
                            "description": "the RegistrationRequest as JSON",
                        },
                        "photo": {"type": "string", "format": "binary"},
                    },
                },
                "encoding": {"crossing": {"contentType": "application/json"}},
            },
        },
    }


def complete_document(document: dict[str, Any]) -> dict[str, Any]:
    """Add the problem answers and the registration body to an OpenAPI document (in place)."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault(PROBLEM_SCHEMA, _problem_schema())
    problem = {
        "application/problem+json": {"schema": {"$ref": f"#/components/schemas/{PROBLEM_SCHEMA}"}}
    }
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            _add_csv(path, operation)
            responses = operation.setdefault("responses", {})
            for code in sorted(_codes(path, method, operation)):
                responses.setdefault(str(code), {"description": REASONS[code], "content": problem})
            if (path, method) == REGISTRATION:
                operation["requestBody"] = _registration_body(schemas)
    return document


def complete_openapi(app: Litestar) -> None:
    """Complete the app's cached OpenAPI document; the served JSON and YAML are built from it."""
    complete_document(app.plugins.get(OpenAPIPlugin).provide_openapi_schema())
