"""The audit log: every read or write of personal data appends a hash-chained event.

Each event's hash covers its own fields and the previous event's hash, so any edit,
deletion or reordering of past events breaks the chain at a nameable link.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.models import AuditEvent, Officer, utcnow
from registry.outbox import enqueue, insert_rows

GENESIS_HASH = "0" * 64


def event_hash(event: AuditEvent) -> str:
    """The sha256 over an event's content and its predecessor's hash."""
    body = {
        "id": str(event.id),
        "origin": event.origin,
        "at": event.at.isoformat(timespec="microseconds"),
        "officer_id": str(event.officer_id) if event.officer_id else None,
        "action": event.action,
        "record_type": event.record_type,
        "record_id": event.record_id,
        "purpose": event.purpose,
        "detail": event.detail,
        "prev_hash": event.prev_hash,
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def chain_head(session: AsyncSession, origin: str) -> str:
    """The hash of the latest event written by ``origin`` (each node keeps its own chain)."""
    query = (
        select(AuditEvent.hash)
        .where(AuditEvent.origin == origin)
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    )
    head = await session.scalar(query)
    return head or GENESIS_HASH


async def audit(
    session: AsyncSession,
    *,
    origin: str,
    officer: Officer | None,
    action: str,
    record_type: str,
    record_id: str | uuid.UUID,
    purpose: str,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the chain (and to the outbox) inside the caller's transaction.

    The caller must hold the node write lock (``Database.write_transaction``) until it commits.
    ``detail`` lists any further records the action read or wrote.
    """
    event = AuditEvent(
        origin=origin,
        at=utcnow(),
        officer_id=officer.id if officer else None,
        action=action,
        record_type=record_type,
        record_id=str(record_id),
        purpose=purpose,
        detail=detail or {},
        prev_hash=await chain_head(session, origin),
        hash="",
    )
    event.hash = event_hash(event)
    await insert_rows(session, event)
    await enqueue(session, event)
    return event


@dataclass(frozen=True)
class ChainVerdict:
    """Result of verifying the audit chain."""

    ok: bool
    events_checked: int
    first_broken_seq: int | None = None
    problem: str | None = None


async def _events_in_order(
    session: AsyncSession, origin: str, batch: int = 5000
) -> AsyncIterator[AuditEvent]:
    last_seq = 0
    while True:
        query = (
            select(AuditEvent)
            .where(AuditEvent.origin == origin, AuditEvent.seq > last_seq)
            .order_by(AuditEvent.seq)
            .limit(batch)
        )
        rows = (await session.scalars(query)).all()
        if not rows:
            return
        for row in rows:
            yield row
        last_seq = rows[-1].seq or last_seq


async def verify_chain(session: AsyncSession, origin: str) -> ChainVerdict:
    """Walk one node's chain from the start and name the first broken link, if any.

    Events received from other nodes keep their order, so a national node can verify
    each post's chain as well as its own.
    """
    prev = GENESIS_HASH
    checked = 0
    async for event in _events_in_order(session, origin):
        if event.prev_hash != prev:
            return ChainVerdict(
                False, checked, event.seq, "prev_hash does not match the preceding event"
            )
        if event_hash(event) != event.hash:
            return ChainVerdict(False, checked, event.seq, "event content does not match its hash")
        prev = event.hash
        checked += 1
    return ChainVerdict(True, checked)
