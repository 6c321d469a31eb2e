"""The audit log: every read or write of personal data appends a hash-chained event.

Each event's hash covers its own fields and the previous event's hash, so any edit,
deletion or reordering of past events breaks the chain at a nameable link.

A chain alone cannot show that its end was cut off, or that it was rebuilt after a
deletion (anyone can recompute the hashes). So each node also signs **checkpoints** of
its chain with its Ed25519 key: how many events it held and which event ended it. A node
makes one at every sync and at least daily (``keep_checkpoints``); a post sends its
checkpoints to national, which verifies and keeps them. ``verify_chain`` checks a chain
against every checkpoint it holds for it and names what went wrong: ``truncated``,
``missing``, ``rechained``, ``bad_checkpoint_signature``, ``broken_link`` or ``altered``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.db import Database, dialect_name, lock_for_write
from registry.group_commit import GroupCommit
from registry.models import AuditEvent, Officer, utcnow, uuid7
from registry.outbox import enqueue

if TYPE_CHECKING:
    from registry.node import Node

log = logging.getLogger("borderpost.audit")

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


async def _append_on_postgresql(session: AsyncSession, row: dict[str, Any]) -> None:
    """Link the event to the chain head and insert it in one round trip; fills
    ``prev_hash`` and ``hash``."""
    before, after = _canonical_around_prev_hash(row)
    values = {**row, "detail": json.dumps(row["detail"]), "genesis": GENESIS_HASH}
    values.update(before=before, after=after)
    linked = (await session.execute(_APPEND_ON_POSTGRESQL, values)).one()
    row["prev_hash"], row["hash"] = linked.prev_hash, linked.hash


def chain_rows(head: str, rows: Sequence[dict[str, Any]]) -> str:
    """Link events (column dicts, in order) after the chain head ``head``: fills each one's
    ``prev_hash`` and ``hash``; returns the new head."""
    for row in rows:
        row["prev_hash"] = head
        head = row["hash"] = _hash_fields(row)
    return head


# Built once: audit() runs on every read of personal data, so it stays lean.
_CHAIN_HEAD = (
    select(col(AuditEvent.hash))
    .where(col(AuditEvent.origin) == bindparam("origin"))
    .order_by(col(AuditEvent.seq).desc())
    .limit(1)
)
_INSERT_EVENT = insert(AuditEvent)


async def chain_head(session: AsyncSession, origin: str) -> str:
    """The hash of the latest event written by ``origin`` (each node keeps its own chain)."""
    head = await session.scalar(_CHAIN_HEAD, {"origin": origin})
    return head or GENESIS_HASH


def event_row(
    *,
    origin: str,
    officer: Officer | None,
    action: str,
    record_type: str,
    record_id: str | uuid.UUID,
    purpose: str,
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A new audit event's columns, not yet linked to the chain."""
    return {
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


async def append_events(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Append events (one node's, in order) to the chain and, on a post, to the outbox,
    inside the caller's transaction; the caller holds the node write lock."""
    if not rows:
        return
    if dialect_name(session) == "postgresql":
        for row in rows:
            await _append_on_postgresql(session, row)
    else:
        chain_rows(await chain_head(session, rows[0]["origin"]), rows)
        await session.execute(_INSERT_EVENT, list(rows))
    if session.info.get("role") != "national":
        await enqueue(session, *(AuditEvent(**row) for row in rows))


_DEFERRED = "audit_deferred"  # session.info key: events of an audited read, written after it


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
) -> None:
    """Append one event to the chain (and to the outbox) inside the caller's transaction.

    The caller must hold the node write lock (``Database.write_transaction``) until it commits,
    or read in an ``audited_read`` session (the event is then written, with those of other
    reads, once the read is done, and before its answer leaves).
    ``detail`` lists any further records the action read or wrote. A post's events travel
    to national through the outbox; a national node's own events never leave it (no
    peer receives them), so national does not queue them.
    """
    row = event_row(
        origin=origin,
        officer=officer,
        action=action,
        record_type=record_type,
        record_id=record_id,
        purpose=purpose,
        detail=detail,
    )
    deferred = session.info.get(_DEFERRED)
    if deferred is not None:
        deferred.append(row)
        return
    await append_events(session, [row])


class AuditJournal(GroupCommit[list[dict[str, Any]], None]):
    """Writes the audit events of reads by group commit: the searches, lists and views
    running at once share one transaction and one fsync, instead of each holding the write
    lock for its whole query and committing alone."""

    def __init__(self, db: Database, max_batch: int = 256) -> None:
        super().__init__(db, max_batch)

    async def transaction(self, items: list[list[dict[str, Any]]]) -> list[None | BaseException]:
        async with self.db.sessions() as session, session.begin():
            await lock_for_write(session)
            await append_events(session, [row for rows in items for row in rows])
        return [None] * len(items)


@asynccontextmanager
async def audited_read(node: Node) -> AsyncIterator[AsyncSession]:
    """A session for a read of personal data that takes no write lock: the ``audit`` events
    the read appends are written by the node's ``AuditJournal`` when the block ends without
    error, and the block's caller gets its answer only once they are committed. A read
    that fails writes nothing (as a rolled-back write transaction would)."""
    events: list[dict[str, Any]] = []
    async with node.db.sessions() as session:
        session.info[_DEFERRED] = events
        yield session
    if events:
        await node.audit_journal.submit(events)
