"""The post's OpenAPI document names every answer (issue 15): each /api operation documents a
success response, and a JSON one has a schema with named fields (a msgspec Struct, or a list
of them), never a bare object; images and the receipt slip say their media type. The problem
answers that ``registry.openapi`` completes are there too."""

from __future__ import annotations

from typing import Any

from tests.conftest import NodeUnderTest

METHODS = {"get", "post", "put", "patch", "delete"}
JSON = "application/json"
NOT_JSON = {"image/png", "image/svg+xml", "image/jpeg", "text/html"}
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
