"""Concurrent registrations are committed together: each one is still checked on its own,
sees the others of its batch, and one bad registration never fails the rest."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import func, select

from registry.audit_verification import verify_chain
from registry.models import AuditEvent, Crossing, OutboxEntry, Traveller
from tests.support.factories import td3
from tests.support.nodes import LiveNode, unique_number


async def _post(node: LiveNode, body: dict) -> tuple[int, dict]:
    async with httpx.AsyncClient(base_url=node.url, timeout=30) as client:
        response = await client.post("/api/crossings", json=body, headers=node.auth("officer"))
    return response.status_code, response.json()


async def test_concurrent_registrations_are_all_durable_and_chained(
    live_post: LiveNode,
) -> None:
    bodies = [{"direction": "entry", "mrz": td3(unique_number())} for _ in range(40)]
    async with live_post.db.session() as session:
        outbox_before = await session.scalar(select(func.count()).select_from(OutboxEntry))
    results = await asyncio.gather(*(_post(live_post, b) for b in bodies))
    assert [status for status, _ in results] == [201] * 40
    ids = {body["id"] for _, body in results}
    async with live_post.db.session() as session:
        stored = set((await session.scalars(select(Crossing.id))).all())
        outbox = await session.scalar(select(func.count()).select_from(OutboxEntry))
        verdict = await verify_chain(session, live_post.node.settings.node_code)
    assert {str(i) for i in stored} == ids
    assert outbox - outbox_before == 40 * 4  # traveller, document, crossing and audit event each
    assert verdict.ok and verdict.events_checked >= 40
    writer = live_post.node.registrations
    assert writer.largest_batch > 1  # they really were committed together
    assert writer.batches_written < 40


async def test_one_bad_registration_does_not_fail_its_batch(live_post: LiveNode) -> None:
    good = [{"direction": "entry", "mrz": td3(unique_number())} for _ in range(10)]
    bad = {
        "direction": "entry",
        "mrz": td3(unique_number()),
        "guardian_crossing_id": "01900000-0000-7000-8000-000000000000",
    }
    results = await asyncio.gather(*(_post(live_post, b) for b in [*good[:5], bad, *good[5:]]))
    statuses = [status for status, _ in results]
    assert statuses == [201] * 5 + [422] + [201] * 5
    assert results[5][1]["invalid_params"][0]["name"] == "guardian_crossing_id"
    async with live_post.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Crossing)) == 10


async def test_same_traveller_twice_in_one_batch(live_post: LiveNode) -> None:
    mrz = td3(unique_number())
    entry_status, entry = await _post(live_post, {"direction": "entry", "mrz": mrz})
    assert entry_status == 201
    results = await asyncio.gather(
        _post(live_post, {"direction": "exit", "mrz": mrz}),
        *(_post(live_post, {"direction": "entry", "mrz": td3(unique_number())}) for _ in range(8)),
        _post(live_post, {"direction": "entry", "mrz": mrz}),
    )
    exit_, again = results[0][1], results[-1][1]
    assert exit_["closes_crossing_id"] == entry["id"]
    assert exit_["traveller"]["id"] == again["traveller"]["id"] == entry["traveller"]["id"]
    async with live_post.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Traveller)) == 9


async def test_concurrent_searches_are_each_audited_in_shared_commits(
    live_post: LiveNode,
) -> None:
    """Searches read without the write lock; their audit events are group-committed, each
    one written (and chained, and queued for national) before its answer leaves."""
    number = unique_number()
    status, _ = await _post(live_post, {"direction": "entry", "mrz": td3(number)})
    assert status == 201

    async def search(n: int) -> int:
        async with httpx.AsyncClient(base_url=live_post.url, timeout=30) as client:
            response = await client.get(
                "/api/search/document",
                params={"issuing_state": "MLI", "number": number if n % 2 else f"Z{n:07d}"},
                headers=live_post.auth("officer"),
            )
        assert response.status_code == 200
        return len(response.json())

    async with live_post.db.session() as session:
        before = await session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "search")
        )
    found = await asyncio.gather(*(search(n) for n in range(40)))
    assert found == [1 if n % 2 else 0 for n in range(40)]
    async with live_post.db.session() as session:
        searches = (
            await session.scalars(
                select(AuditEvent).where(AuditEvent.action == "search").order_by(AuditEvent.seq)
            )
        ).all()[before:]
        queued = await session.scalar(
            select(func.count())
            .select_from(OutboxEntry)
            .where(OutboxEntry.record_id.in_([str(e.id) for e in searches]))
        )
        verdict = await verify_chain(session, live_post.node.settings.node_code)
    assert len(searches) == 40 and queued == 40
    assert sum(1 for e in searches if e.detail["results"]) == 20
    assert verdict.ok, verdict
    journal = live_post.node.audit_journal
    assert journal.largest_batch > 1
    assert journal.batches_written < 40


async def test_a_refused_search_writes_no_audit_event(live_post: LiveNode) -> None:
    async with live_post.db.session() as session:
        before = await session.scalar(select(func.count()).select_from(AuditEvent))
    async with httpx.AsyncClient(base_url=live_post.url, timeout=30) as client:
        response = await client.get(
            "/api/search/name", params={"name": "---"}, headers=live_post.auth("officer")
        )
    assert response.status_code == 422
    async with live_post.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(AuditEvent)) == before
