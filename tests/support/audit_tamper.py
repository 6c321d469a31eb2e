"""What an attacker with write access to a node's database does to its audit chain: cut
its tail, wipe it, or delete some events and rebuild the chain with the project's own hash
function. Shared by the post (SQLite) and national (PostgreSQL) audit tests."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from registry.audit import GENESIS_HASH, event_hash
from registry.models import AuditEvent
from tests.support.cluster import mrz
from tests.support.servers import bearer

REFERRAL_READ = (AuditEvent.record_type == "protection_referral", AuditEvent.action == "read")


def _run(url: str, work: Any) -> int:
    async def go() -> int:
        engine = create_async_engine(url)
        try:
            async with AsyncSession(engine, expire_on_commit=False) as session, session.begin():
                return int(await work(session))
        finally:
            await engine.dispose()

    return asyncio.run(go())


def count_events(url: str, origin: str, *conditions: Any) -> int:
    async def work(session: AsyncSession) -> int:
        query = select(func.count()).where(AuditEvent.origin == origin, *conditions)
        return int(await session.scalar(query) or 0)

    return _run(url, work)


def delete_tail(url: str, origin: str, count: int) -> int:
    """Delete the chain's last ``count`` events."""

    async def work(session: AsyncSession) -> int:
        tail = (
            select(AuditEvent.seq)
            .where(AuditEvent.origin == origin)
            .order_by(AuditEvent.seq.desc())
            .limit(count)
        )
        seqs = list((await session.scalars(tail)).all())
        await session.execute(delete(AuditEvent).where(AuditEvent.seq.in_(seqs)))  # type: ignore[union-attr]
        return len(seqs)

    return _run(url, work)


def wipe(url: str, origin: str) -> int:
    async def work(session: AsyncSession) -> int:
        result = await session.execute(delete(AuditEvent).where(AuditEvent.origin == origin))
        return int(result.rowcount)  # type: ignore[attr-defined]

    return _run(url, work)


def delete_referral_reads_and_rechain(url: str, origin: str) -> int:
    """Delete every referral-read event, then re-link and re-hash the events that are left
    with ``registry.audit.event_hash``, so that the chain itself verifies again."""

    async def work(session: AsyncSession) -> int:
        removed = await session.execute(
            delete(AuditEvent).where(AuditEvent.origin == origin, *REFERRAL_READ)
        )
        events = await session.scalars(
            select(AuditEvent).where(AuditEvent.origin == origin).order_by(AuditEvent.seq)
        )
        prev = GENESIS_HASH
        for event in events.all():
            event.prev_hash = prev
            event.hash = event_hash(event)
            prev = event.hash
        return int(removed.rowcount)  # type: ignore[attr-defined]

    return _run(url, work)


def make_events(url: str, password: str, *, referral_reads: int, searches: int) -> None:
    """A working day in small, over HTTP: ``desk`` (an officer) registers a crossing and
    refers it to protection, ``guard`` (a protection officer) reads the referrals again
    and again, then ``desk`` searches (so the chain does not end with a referral read)."""
    desk = bearer(url, "desk", password)
    guard = bearer(url, "guard", password) if referral_reads else {}
    with httpx.Client(base_url=url, timeout=30) as http:
        crossing = http.post(
            "/api/crossings",
            headers=desk,
            json={"direction": "entry", "mrz": mrz("A" + uuid.uuid4().hex[:7].upper())},
        )
        assert crossing.status_code == 201, crossing.text
        referral = http.post(
            f"/api/crossings/{crossing.json()['id']}/referrals",
            headers=desk,
            json={"category": "unaccompanied_minor", "note": "alone, aged about 12"},
        )
        assert referral.status_code == 201, referral.text
        for n in range(referral_reads):
            path = "/api/referrals/" + ("" if n % 2 else referral.json()["referral_id"])
            assert http.get(path, headers=guard).status_code == 200
        for n in range(searches):
            found = http.get("/api/search/name", params={"name": f"KEITA{n}"}, headers=desk)
            assert found.status_code == 200, found.text
