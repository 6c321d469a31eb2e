"""National ingest: verify a post's signed batch, upsert its records idempotently in order,
and acknowledge the highest contiguous seq stored. Rejections are audited."""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.audit import audit
from registry.models import utcnow
from registry.node import Node
from registry.photos import SanitisedPhoto, write_photo
from registry.receipts import public_key_from_text
from sync.batches import BatchHeader, BatchRejected, OutboxRecord, verify_batch
from sync.models import IngestState, SyncPeer
from sync.records import (
    POST_RECORD_TYPES,
    copy_rows,
    dangling_reference,
    decode_row,
    insert_missing,
    insert_missing_copied,
    upsert_authoritative,
)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector around a synchronous bulk decode.

    Decoding a batch allocates hundreds of thousands of short-lived tracked objects (ids,
    tuples), and the collections they trigger doubled the decode time. Nothing else runs
    meanwhile (no await inside), and the collector resumes straight after.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class BatchGap(Exception):
    """Refused without harm: the batch starts after a seq the receiver lacks (a gap), or
    holds nothing new (a replay). Either way the sender continues from ``ack``."""

    def __init__(self, ack: int, reason: str) -> None:
        super().__init__(f"{reason}: the receiver holds up to seq {ack}")
        self.ack = ack
        self.reason = reason


@dataclass(frozen=True)
class IngestResult:
    ack: int
    applied: int


async def approved_sender(session: AsyncSession, origin: str) -> SyncPeer:
    peer = await session.get(SyncPeer, origin)
    if peer is None or peer.role != "post":
        raise BatchRejected("unknown_sender", f"{origin} is not an enrolled post")
    if peer.status != "approved":
        raise BatchRejected("sender_not_approved", f"{origin} is {peer.status}")
    return peer


async def _state_for_update(session: AsyncSession, origin: str) -> IngestState:
    await insert_missing(
        session,
        "ingest_state",
        [{"origin": origin, "contiguous_seq": 0, "batches_accepted": 0, "batches_rejected": 0}],
    )
    query = select(IngestState).where(IngestState.origin == origin).with_for_update()
    state = await session.scalar(query)
    assert state is not None
    return state


def _claimed_origin(origin: str, record: OutboxRecord, claimed: Any) -> None:
    if claimed != origin:
        raise BatchRejected(
            "forged_origin", f"record {record.record_id} claims origin {claimed}, sent by {origin}"
        )


def _decoded_row(origin: str, record: OutboxRecord) -> dict[str, Any]:
    """Decode one record's row, refusing rows that claim another origin than the post that
    signed the batch."""
    try:
        row = decode_row(record.record_type, record.payload)  # type: ignore[arg-type]
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise BatchRejected("malformed", f"record {record.record_id}: {exc}") from exc
    claimed = row.get("home_post") if record.record_type == "officer" else row.get("origin")
    _claimed_origin(origin, record, claimed)
    return row


def _copy_rows(origin: str, record_type: str, records: list[OutboxRecord]) -> list[tuple[Any, ...]]:
    """Decode one table's records into COPY tuples, with the same checks as ``_decoded_row``."""
    decoder = copy_rows(record_type)
    owner = decoder.owner_index
    rows = []
    for record in records:
        try:
            row = decoder.decode(record.payload)  # type: ignore[arg-type]
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise BatchRejected("malformed", f"record {record.record_id}: {exc}") from exc
        _claimed_origin(origin, record, None if owner is None else row[owner])
        rows.append(row)
    return rows


@dataclass(frozen=True)
class ReceivedBatch:
    """A verified batch, decoded table by table: (seq, row) pairs in the sender's order.

    Rows are COPY tuples on PostgreSQL (``bulk``), column dicts elsewhere and for officers.
    Receiving takes no lock, so national decodes one batch while it applies the one before.
    """

    header: BatchHeader
    tables: dict[str, list[tuple[int, Any]]]
    bulk: bool


def receive_batch(
    header: BatchHeader,
    signature: bytes,
    body: bytes,
    sender_key: Ed25519PublicKey,
    *,
    destination: str,
    bulk: bool,
) -> ReceivedBatch:
    """Verify a post's batch and decode every record; raise BatchRejected."""
    origin = header.origin
    with gc_paused():
        records = verify_batch(header, signature, body, sender_key, destination=destination)
        by_type: dict[str, list[OutboxRecord]] = {}
        for record in records:
            if record.record_type not in POST_RECORD_TYPES:
                raise BatchRejected("forbidden_record", f"{record.record_type} may not be pushed")
            by_type.setdefault(record.record_type, []).append(record)
        tables: dict[str, list[tuple[int, Any]]] = {}
        for record_type, typed in by_type.items():
            if bulk and record_type != "officer":
                rows: list[Any] = _copy_rows(origin, record_type, typed)
            else:
                rows = [_decoded_row(origin, r) for r in typed]
            tables[record_type] = [(r.seq, row) for r, row in zip(typed, rows, strict=True)]
    return ReceivedBatch(header, tables, bulk)


async def _apply(
    session: AsyncSession, batch: ReceivedBatch, after: int, *, exchanging: bool
) -> int:
    """Insert the rows past seq ``after`` table by table in dependency order (parents before
    children), keeping the sender's order within a table; the post's own officer accounts
    are upserted. Returns how many rows were applied."""
    applied = 0
    crossing_ids: list[str] = []
    for record_type in POST_RECORD_TYPES:
        rows = [row for seq, row in batch.tables.get(record_type, []) if seq > after]
        if not rows:
            continue
        applied += len(rows)
        if record_type == "officer":
            await upsert_authoritative(session, record_type, rows)
        elif batch.bulk:
            names = copy_rows(record_type).names
            dangling = await dangling_reference(session, record_type, names, rows)
            if dangling:
                raise BatchRejected("malformed", dangling)
            try:
                await insert_missing_copied(session, record_type, names, rows)
            except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError) as exc:
                raise BatchRejected("malformed", f"{record_type} rows refused: {exc}") from exc
        else:
            await insert_missing(session, record_type, rows)
        if record_type == "crossing" and exchanging:
            key = names.index("id") if batch.bulk else "id"
            crossing_ids = [str(row[key]) for row in rows]
    if exchanging:  # queue for the partner country; the agreement filters at send time
        from sync.exchange import queue_for_partner

        await queue_for_partner(session, crossing_ids)
    return applied


async def apply_received(
    session: AsyncSession, *, node: Node, batch: ReceivedBatch
) -> IngestResult:
    """Apply a received batch inside the caller's transaction; raise BatchGap if it does
    not follow what national holds from that post (a gap) or holds nothing new (a replay)."""
    header = batch.header
    await approved_sender(session, header.origin)  # still approved now that it applies
    state = await _state_for_update(session, header.origin)
    if header.seq_to <= state.contiguous_seq:
        raise BatchGap(state.contiguous_seq, "replay")
    if header.after_seq > state.contiguous_seq:
        raise BatchGap(state.contiguous_seq, "gap")
    exchanging = bool(node.settings.agreement_file)
    applied = await _apply(session, batch, state.contiguous_seq, exchanging=exchanging)
    state.contiguous_seq = header.seq_to
    state.batches_accepted += 1
    state.last_batch_at = utcnow()
    return IngestResult(state.contiguous_seq, applied)


async def ingest_batch(
    session: AsyncSession, *, node: Node, header: BatchHeader, signature: bytes, body: bytes
) -> IngestResult:
    """Receive and apply one batch inside the caller's transaction."""
    peer = await approved_sender(session, header.origin)
    batch = receive_batch(
        header,
        signature,
        body,
        public_key_from_text(peer.public_key),
        destination=node.settings.node_code,
        bulk=session.bind.dialect.name == "postgresql",
    )
    return await apply_received(session, node=node, batch=batch)


async def record_rejection(
    session: AsyncSession, *, node: Node, origin: str, reason: str, detail: str
) -> None:
    """Log a refused batch (audited, counted) in its own transaction."""
    peer = await session.get(SyncPeer, origin)
    if peer is not None:
        state = await _state_for_update(session, origin)
        state.batches_rejected += 1
    await audit(
        session,
        origin=node.settings.node_code,
        officer=None,
        action="sync_rejected",
        record_type="sync_batch",
        record_id=origin[:80],
        purpose="sync",
        detail={"reason": reason, "detail": detail[:500]},
    )


async def ingest_photo(
    session: AsyncSession, *, node: Node, header: BatchHeader, signature: bytes, body: bytes
) -> str:
    """Store a photo file pushed by a post after checking its signature and hash."""
    peer = await approved_sender(session, header.origin)
    try:
        public_key_from_text(peer.public_key).verify(signature, header.canonical())
    except Exception as exc:  # noqa: BLE001 - any failure is a bad signature
        raise BatchRejected("bad_signature", "the photo signature does not verify") from exc
    sha = hashlib.sha256(body).hexdigest()
    if header.kind != "photo" or sha != header.content_sha256:
        raise BatchRejected("altered", "the photo does not match the signed hash")
    if header.destination != node.settings.node_code:
        raise BatchRejected("wrong_destination", f"photo is for {header.destination}")
    write_photo(node.settings.photo_dir, SanitisedPhoto(sha, body, 0, 0))
    return sha
