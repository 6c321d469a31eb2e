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

from sqlalchemy import bindparam, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from registry.models import AuditEvent, Officer, utcnow, uuid7
from registry.outbox import enqueue

GENESIS_HASH = "0" * 64


def event_hash(event: AuditEvent) -> str:
    """The sha256 over an event's content and its predecessor's hash."""
    return _hash_fields({name: getattr(event, name) for name in HASHED_FIELDS})


HASHED_FIELDS = (
    "id",
    "origin",
    "at",
    "officer_id",
    "action",
    "record_type",
    "record_id",
    "purpose",
    "detail",
    "prev_hash",
)


def _canonical(fields: dict[str, Any]) -> str:
    """The text an event's hash covers: its hashed fields as sorted, compact JSON."""
    body = {name: fields[name] for name in HASHED_FIELDS}
    body["id"] = str(body["id"])
    body["at"] = body["at"].isoformat(timespec="microseconds")
    body["officer_id"] = str(body["officer_id"]) if body["officer_id"] else None
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)


def _hash_fields(fields: dict[str, Any]) -> str:
    return hashlib.sha256(_canonical(fields).encode()).hexdigest()


def _canonical_around_prev_hash(fields: dict[str, Any]) -> tuple[str, str]:
    """The canonical text split where the previous hash goes, so that PostgreSQL can hash
    it once it has read the chain head. User text in ``detail`` cannot fake the split:
    JSON escapes every quote inside a string value."""
    marker = '"prev_hash":"' + GENESIS_HASH + '"'
    before, after = _canonical({**fields, "prev_hash": GENESIS_HASH}).rsplit(marker, 1)
    return before + '"prev_hash":"', '"' + after


# PostgreSQL: read the chain head, hash and insert in one round trip (audit() runs on every
# read of personal data). The same canonical text as _hash_fields, hashed by sha256().
_APPEND_ON_POSTGRESQL = text(
    "WITH head AS (SELECT coalesce((SELECT hash FROM audit_event WHERE origin = :origin "
    "ORDER BY seq DESC LIMIT 1), :genesis) AS prev) "
    "INSERT INTO audit_event (id, origin, at, officer_id, action, record_type, record_id, "
    "purpose, detail, prev_hash, hash) "
    "SELECT CAST(:id AS uuid), :origin, CAST(:at AS timestamptz), CAST(:officer_id AS uuid), "
    ":action, :record_type, :record_id, :purpose, CAST(:detail AS json), head.prev, "
    "encode(sha256(convert_to(:before || head.prev || :after, 'UTF8')), 'hex') FROM head "
    "RETURNING prev_hash, hash"
)


async def _append(session: AsyncSession, row: dict[str, Any]) -> None:
    """Link the event to the chain head and insert it; fills ``prev_hash`` and ``hash``."""
    if session.bind.dialect.name == "postgresql":
        before, after = _canonical_around_prev_hash(row)
        values = {**row, "detail": json.dumps(row["detail"]), "genesis": GENESIS_HASH}
        values.update(before=before, after=after)
        linked = (await session.execute(_APPEND_ON_POSTGRESQL, values)).one()
        row["prev_hash"], row["hash"] = linked.prev_hash, linked.hash
        return
    row["prev_hash"] = await chain_head(session, row["origin"])
    row["hash"] = _hash_fields(row)
    await session.execute(_INSERT_EVENT, [row])


# Built once: audit() runs on every read of personal data, so it stays lean.
_CHAIN_HEAD = (
    select(AuditEvent.hash)
    .where(AuditEvent.origin == bindparam("origin"))
    .order_by(AuditEvent.seq.desc())
    .limit(1)
)
_INSERT_EVENT = insert(AuditEvent)


async def chain_head(session: AsyncSession, origin: str) -> str:
    """The hash of the latest event written by ``origin`` (each node keeps its own chain)."""
    head = await session.scalar(_CHAIN_HEAD, {"origin": origin})
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
) -> str:
    """Append one event to the chain (and to the outbox) inside the caller's transaction.

    The caller must hold the node write lock (``Database.write_transaction``) until it commits.
    ``detail`` lists any further records the action read or wrote. A post's events travel
    to national through the outbox; a national node's own events never leave it (no
    peer receives them), so national does not queue them.
    """
    row: dict[str, Any] = {
        "id": uuid7(),
        "origin": origin,
        "at": utcnow(),
        "officer_id": officer.id if officer else None,
        "action": action,
        "record_type": record_type,
        "record_id": str(record_id),
        "purpose": purpose,
        "detail": detail or {},
    }
    await _append(session, row)
    if session.info.get("role") != "national":
        await enqueue(session, AuditEvent(**row))
    return str(row["hash"])


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
