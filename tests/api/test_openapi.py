"""The OpenAPI documents of a post and of a national node (on PostgreSQL) name every answer
(issue 15): each /api operation documents a success response, and a JSON one has a schema
with named fields (a msgspec Struct, or a list of them), never a bare object; images, the
receipt slip and CSV files say their media type, and signed answers name the fields of the
body that was signed. The problem answers that ``registry.openapi`` completes are there too."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from litestar.testing import AsyncTestClient

from registry.app import create_app
from tests.support.hq_dataset import require_postgres
from tests.support.nodes import (
    NodeUnderTest,
    create_pg_database,
    drop_pg_database,
    migrate,
    national_settings,
    pg_url,
)

METHODS = {"get", "post", "put", "patch", "delete"}
JSON = "application/json"
NOT_JSON = {"image/png", "image/svg+xml", "image/jpeg", "text/html", "text/csv"}
PROBLEM = {"$ref": "#/components/schemas/Problem"}


def resolved(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The schema a ``$ref`` points to (one level: components hold no bare references)."""
    ref = schema.get("$ref")
    if ref is None:
        return schema
    name = ref.removeprefix("#/components/schemas/")
    found: dict[str, Any] = document["components"]["schemas"][name]
    return found


def names_its_fields(document: dict[str, Any], schema: dict[str, Any]) -> bool:
    """An object with documented properties, or an array of such objects."""
    schema = resolved(document, schema)
    if schema.get("type") == "array":
        return names_its_fields(document, schema.get("items", {}))
    return schema.get("type") == "object" and bool(schema.get("properties"))


def undocumented_answers(document: dict[str, Any]) -> tuple[int, list[str]]:
    """How many /api operations there are, and what is wrong with their success answers."""
    operations, wrong = 0, []
    for path, item in document["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method, operation in item.items():
            if method not in METHODS:
                continue
            operations += 1
            name = f"{method.upper()} {path}"
            successes = {c: r for c, r in operation["responses"].items() if c.startswith("2")}
            if not successes:
                wrong.append(f"{name}: no 2xx response")
            for code, response in successes.items():
                content = response.get("content") or {}
                if not content:
                    wrong.append(f"{name} {code}: no content")
                for media, body in content.items():
                    schema = body.get("schema") or {}
                    if media == JSON and not names_its_fields(document, schema):
                        wrong.append(f"{name} {code}: {schema} names no fields")
                    elif media != JSON and media not in NOT_JSON:
                        wrong.append(f"{name} {code}: unexpected media type {media}")
    return operations, wrong


async def test_every_api_operation_documents_its_answer(post_node: NodeUnderTest) -> None:
    response = await post_node.client.get("/schema/openapi.json")
    assert response.status_code == 200
    document = response.json()
    operations, wrong = undocumented_answers(document)
    assert operations >= 35  # the walk really saw the post's API
    assert wrong == []
    paths = document["paths"]
    # a few answers by name, and the vocabularies they carry
    crossing = paths["/api/crossings/{crossing_id}"]["get"]["responses"]["200"]
    assert crossing["content"][JSON]["schema"] == {"$ref": "#/components/schemas/CrossingView"}
    fields = document["components"]["schemas"]["CrossingView"]["properties"]
    assert set(resolved(document, fields["direction"])["enum"]) == {"entry", "exit"}
    assert fields["occurred_at"]["format"] == "date-time"
    png = paths["/api/crossings/{crossing_id}/receipt.png"]["get"]["responses"]["200"]
    assert set(png["content"]) == {"image/png"}
    # registry.openapi still completes the document with the problem answers
    me = paths["/api/auth/me"]["get"]["responses"]
    assert me["401"]["content"]["application/problem+json"]["schema"] == PROBLEM
    registration = paths["/api/crossings"]["post"]
    assert registration["responses"]["503"]["content"]["application/problem+json"]["schema"] == (
        PROBLEM
    )
    assert "multipart/form-data" in registration["requestBody"]["content"]


async def national_document(data_dir: Path) -> dict[str, Any]:
    """The OpenAPI document of a national node on a freshly migrated PostgreSQL database."""
    require_postgres()
    database = f"bp_openapi_{os.getpid()}"
    await create_pg_database(database)
    try:
        url = pg_url(database)
        await migrate(url, data_dir)
        async with AsyncTestClient(app=create_app(national_settings(data_dir, url))) as client:
            response = await client.get("/schema/openapi.json")
    finally:
        await drop_pg_database(database)
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


async def test_every_national_operation_documents_its_answer(tmp_path: Path) -> None:
    document = await national_document(tmp_path)
    operations, wrong = undocumented_answers(document)
    assert operations >= 70  # the walk saw the sync, exchange, liaison and HQ operations
    assert wrong == []
    paths, schemas = document["paths"], document["components"]["schemas"]

    def success(path: str, method: str = "get") -> dict[str, Any]:
        content: dict[str, Any] = paths[path][method]["responses"]["200"]["content"]
        return content

    # signed answers name the fields of the signed body
    reference = success("/api/sync/reference")[JSON]["schema"]
    assert set(resolved(document, reference)["properties"]) == {"version", "complete", "changes"}
    ack = success("/api/exchange/batches", "post")[JSON]["schema"]
    assert set(resolved(document, ack)["properties"]) == {"ack", "stored", "keys"}
    refusal = paths["/api/exchange/batches"]["post"]["responses"]["409"]["content"][JSON]
    assert set(resolved(document, refusal["schema"])["properties"]) == {"ack", "reason", "keys"}
    # statistics: JSON or, with ?format=csv, CSV; the .csv route only CSV
    assert set(success("/api/hq/stats/flows")) == {JSON, "text/csv"}
    assert set(success("/api/hq/stats/flows.csv")) == {"text/csv"}
    rows = schemas["DemographicRow"]["properties"]
    assert set(resolved(document, rows["sex"])["enum"]) == {"M", "F", "X"}
    # evidence: document, name_dob, face, or the name of any installed biometric modality
    evidence = resolved(document, schemas["AlertRow"]["properties"]["evidence"])
    assert (evidence["type"], evidence["maxLength"]) == ("string", 40)
    assert "enum" not in evidence and "biometric modality" in evidence["description"]
    timeline = success("/api/hq/travellers/{traveller_id}/timeline")[JSON]["schema"]
    assert timeline == {"$ref": "#/components/schemas/Timeline"}
