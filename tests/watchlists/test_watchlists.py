"""Watchlist entries over HTTP, on SQLite and PostgreSQL: versioned entries, role rules, the
running matcher and its refresh; and the fixtures and helpers the other watchlist test modules
share (``test_watchlist_csv``: the CSV import and export; ``test_watchlist_alerts``: alerts and
their adjudication)."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path

from registry.models import WatchlistEntry
from registry.watchlists.content import watchlist_entry_id
from registry.watchlists.matcher import WatchlistMatcher, matcher_of, refresh_periodically
from tests.support.nodes import NodeUnderTest
from tests.support.watchlists import (
    PERSON_BODY,
    count,
    create_entry,
    local_node,
    run_cli,
    stolen,
    write_csv,
)


# ---------------------------------------------------------------- entries over HTTP
async def test_entries_are_versioned_never_edited(watch_node: NodeUnderTest) -> None:
    created = await create_entry(watch_node, PERSON_BODY, "supervisor")
    assert created["version"] == 1 and created["active"] is True
    entry_id = created["entry_id"]
    base = f"/api/watchlist/entries/{entry_id}"
    changed = await watch_node.client.post(
        f"{base}/versions",
        json={"change_reason": "warrant renewed", "valid_to": "2030-12-31"},
        headers=watch_node.auth("supervisor"),
    )
    assert changed.status_code == 201, changed.text
    assert changed.json()["version"] == 2 and changed.json()["valid_to"] == "2030-12-31"
    removed = await watch_node.client.post(
        f"{base}/deactivate", json={"reason": "warrant lifted"}, headers=watch_node.auth("admin")
    )
    assert removed.status_code == 201 and removed.json()["active"] is False
    again = await watch_node.client.post(
        f"{base}/deactivate", json={"reason": "warrant lifted"}, headers=watch_node.auth("admin")
    )
    assert again.status_code == 409
    history = await watch_node.client.get(f"{base}/history", headers=watch_node.auth("supervisor"))
    versions = history.json()
    assert [(v["version"], v["active"]) for v in versions] == [(1, True), (2, True), (3, False)]
    assert versions[0]["valid_to"] is None  # the first version is untouched
    assert len({v["id"] for v in versions}) == 3
    assert await count(watch_node, WatchlistEntry) == 3
    listed = await watch_node.client.get(
        "/api/watchlist/entries", headers=watch_node.auth("supervisor")
    )
    assert listed.json() == []
    with_inactive = await watch_node.client.get(
        "/api/watchlist/entries?include_inactive=true", headers=watch_node.auth("supervisor")
    )
    assert [e["version"] for e in with_inactive.json()] == [3]


async def test_created_entry_reaches_the_running_matcher(watch_node: NodeUnderTest) -> None:
    body = {"kind": "document", "issuing_state": "MLI", "document_number": "A 12-345"}
    created = await create_entry(
        watch_node, {**body, "reason": "stolen", "action": "notify"}, "supervisor"
    )
    matcher = matcher_of(watch_node.node)
    assert matcher is not None
    hits = matcher.match(
        day=date.today(), issuing_state="MLI", number_norm="A12345", name_key="", date_of_birth=None
    )
    assert [str(hit.entry_id) for hit in hits] == [created["entry_id"]]


async def test_invalid_entries_name_the_field(watch_node: NodeUnderTest) -> None:
    headers = watch_node.auth("supervisor")
    cases = [
        ({"kind": "document", "reason": "x", "action": "notify"}, "document_number"),
        ({"kind": "person", "reason": "x", "action": "notify"}, "surname"),
        ({**PERSON_BODY, "action": "arrest"}, "action"),
        ({**PERSON_BODY, "valid_from": "2025-01-01", "valid_to": "2024-01-01"}, "valid_to"),
        ({**PERSON_BODY, "nationality": "mauritania"}, "nationality"),
    ]
    for body, field in cases:
        response = await watch_node.client.post(
            "/api/watchlist/entries", json=body, headers=headers
        )
        assert response.status_code in (400, 422), (body, response.text)
        names = [p["name"] for p in response.json().get("invalid_params", [])]
        assert field in names, (body, response.json())
    assert await count(watch_node, WatchlistEntry) == 0


async def test_protect_entries_belong_to_protection(watch_node: NodeUnderTest) -> None:
    protect = {**PERSON_BODY, "action": "protect", "reason": "suspected trafficking victim"}
    refused = await watch_node.client.post(
        "/api/watchlist/entries", json=protect, headers=watch_node.auth("supervisor")
    )
    assert refused.status_code == 403
    created = await create_entry(watch_node, protect, "protection")
    ordinary = await create_entry(watch_node, PERSON_BODY, "supervisor")

    async def listed(role: str) -> set[str]:
        response = await watch_node.client.get(
            "/api/watchlist/entries", headers=watch_node.auth(role)
        )
        assert response.status_code == 200, response.text
        return {entry["entry_id"] for entry in response.json()}

    assert await listed("supervisor") == {ordinary["entry_id"]}
    assert await listed("protection") == {created["entry_id"]}
    assert await listed("admin") == {ordinary["entry_id"], created["entry_id"]}
    hidden = await watch_node.client.get(
        f"/api/watchlist/entries/{created['entry_id']}/history",
        headers=watch_node.auth("supervisor"),
    )
    assert hidden.status_code == 404
    escalate = await watch_node.client.post(
        f"/api/watchlist/entries/{ordinary['entry_id']}/versions",
        json={"change_reason": "now a protection case", "action": "protect"},
        headers=watch_node.auth("supervisor"),
    )
    assert escalate.status_code == 403
    for role in ("officer", "hq_analyst", "liaison"):
        response = await watch_node.client.get(
            "/api/watchlist/entries", headers=watch_node.auth(role)
        )
        assert response.status_code == 403


async def test_same_external_id_twice_is_a_conflict(watch_node: NodeUnderTest) -> None:
    body = {**PERSON_BODY, "external_id": "W-1", "source": "national"}
    created = await create_entry(watch_node, body, "admin")
    assert created["entry_id"] == str(watchlist_entry_id("national", "W-1"))
    again = await watch_node.client.post(
        "/api/watchlist/entries", json=body, headers=watch_node.auth("admin")
    )
    assert again.status_code == 409


async def test_matcher_refresh_sees_rows_written_elsewhere(
    watch_node: NodeUnderTest, tmp_path: Path
) -> None:
    async with watch_node.db.session() as session:
        matcher = await WatchlistMatcher.load(session)
        assert not await matcher.refresh(session)
    await run_cli(watch_node, "import", str(write_csv(tmp_path / "x.csv", [stolen("D", "Q1")])))
    async with watch_node.db.session() as session:
        assert await matcher.refresh(session)
        assert not await matcher.refresh(session)
    assert len(matcher) == 1


async def test_periodic_refresh_reaches_a_running_matcher(
    watch_node: NodeUnderTest, tmp_path: Path
) -> None:
    node = local_node(watch_node)
    node.watchlists = WatchlistMatcher()  # type: ignore[attr-defined]
    task = asyncio.create_task(refresh_periodically(node, every_seconds=0.05))
    try:
        await run_cli(watch_node, "import", str(write_csv(tmp_path / "r.csv", [stolen("D", "R1")])))
        for _ in range(100):
            if len(node.watchlists) == 1:  # type: ignore[attr-defined]
                break
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
    assert len(node.watchlists) == 1  # type: ignore[attr-defined]


async def test_openapi_schema_still_builds(watch_node: NodeUnderTest) -> None:
    response = await watch_node.client.get("/schema/openapi.json")
    assert response.status_code == 200
    assert "/api/watchlist/entries/{entry_id}/versions" in response.json()["paths"]
