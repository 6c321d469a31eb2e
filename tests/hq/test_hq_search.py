"""National headquarters (role=national): searches across posts, by document, by name (fuzzy and
transliteration-aware) and over crossings (filters combined, pages), each read audited.

The national node and its hand-made dataset (posts MR-GOGUI (G) and MR-KOBENI (K), October
2026) are tests/hq_node.py and tests/hq_dataset.py, on PostgreSQL and on SQLite.
"""

from __future__ import annotations

from typing import Any

from tests.support.hq_dataset import G, K
from tests.support.hq_node import OCTOBER, Hq, ids_of


async def test_document_search_spans_posts(national_node: Hq) -> None:
    node, world = national_node, national_node.world
    before = await node.audit_count()
    found = await node.get("/api/hq/search/document", issuing_state="MLI", number="p-1000001")
    assert ids_of(found, world) == ["c2", "c1"]
    assert [c["post"] for c in found] == [K, G]
    assert {c["traveller"]["origin"] for c in found} == {G, K}
    sen = await node.get("/api/hq/search/document", issuing_state="SEN", number="B7654321")
    assert ids_of(sen, world) == ["c8", "c7"]
    assert await node.audit_count() == before + 2


async def test_name_search_is_fuzzy_and_transliteration_aware(national_node: Hq) -> None:
    node, world = national_node, national_node.world

    async def names(**params: Any) -> list[str]:
        hits = await node.get("/api/hq/search/name", **params)
        return sorted(world.labels([h["traveller"]["id"] for h in hits]))

    ould_ahmed = ["T1", "T2", "T3"]
    assert await names(name="Mohamed Ould Ahmed", date_of_birth="1979-05-02") == ould_ahmed
    assert await names(name="Muhammad ould Ahmad") == ould_ahmed
    assert await names(name="محمد ولد أحمد") == ould_ahmed
    assert await names(name="Ahmed, Mohammed O.", date_of_birth="1979-05-02") == ould_ahmed
    assert await names(name="Diarra Moussa") == ["T4", "T5"]
    assert await names(name="Fatoumata Sow", date_of_birth="1965-01-20") == ["T7", "T8"]
    assert await names(name="Mohamed Ould Ahmed", date_of_birth="1990-03-10") == []
    hits = await node.get("/api/hq/search/name", name="Mohamed Ould Ahmed")
    assert all(h["score"] == 100.0 for h in hits)
    response = await node.client.get(
        "/api/hq/search/name", params={"name": "1234"}, headers=node.auth()
    )
    assert response.status_code == 422
    assert response.json()["invalid_params"][0]["name"] == "name"


async def test_crossing_search_filters_combine_and_paginate(national_node: Hq) -> None:
    node, world = national_node, national_node.world

    async def labels(**params: Any) -> list[str]:
        page = await node.get("/api/hq/crossings", **{**OCTOBER, **params})
        return ids_of(page["items"], world)

    assert await labels(post=G) == ["c12", "c11", "c4", "c7", "c1"]  # c10 superseded
    assert await labels(direction="exit") == ["c8", "c14", "c11", "c5", "c2"]
    assert await labels(nationality="SEN") == ["c8", "c7"]
    assert await labels(decision="refused") == ["c12"]
    assert await labels(post=K, direction="entry", nationality="MLI") == ["c13", "c3"]
    assert await labels(post=G, date_from="2026-06-01", date_to="2026-07-31") == ["c9", "c6"]
    first = await node.get("/api/hq/crossings", **OCTOBER, post=G, limit=2)
    second = await node.get("/api/hq/crossings", **OCTOBER, post=G, limit=2, offset=2)
    last = await node.get("/api/hq/crossings", **OCTOBER, post=G, limit=2, offset=4)
    assert [ids_of(p["items"], world) for p in (first, second, last)] == [
        ["c12", "c11"],
        ["c4", "c7"],
        ["c1"],
    ]
    assert [p["has_more"] for p in (first, second, last)] == [True, True, False]
    bad = await node.client.get(
        "/api/hq/crossings",
        params={"date_from": "2026-10-31", "date_to": "2026-10-01"},
        headers=node.auth(),
    )
    assert bad.status_code == 422
    assert bad.json()["invalid_params"][0]["name"] == "date_to"
