"""National ingest: verify a post's signed batch, upsert its records idempotently in order,
and acknowledge the highest contiguous seq stored. Rejections are audited."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.audit import audit
from registry.models import utcnow
from registry.node import Node
from registry.photos import SanitisedPhoto, write_photo
from registry.receipts import public_key_from_text
from sync.batches import BatchHeader, BatchRejected, OutboxRecord, verify_batch
from sync.models import IngestState, SyncPeer
from sync.records import POST_RECORD_TYPES, decode_row, insert_missing, upsert_authoritative


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


def _decoded_row(origin: str, record: OutboxRecord) -> dict[str, Any]:
    """Decode one record's row, refusing types a post may not push and rows that claim
    another origin than the post that signed the batch."""
    if record.record_type not in POST_RECORD_TYPES:
        raise BatchRejected("forbidden_record", f"{record.record_type} may not be pushed")
    try:
        row = decode_row(record.record_type, record.payload)  # type: ignore[arg-type]
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise BatchRejected("malformed", f"record {record.record_id}: {exc}") from exc
    claimed = row.get("home_post") if record.record_type == "officer" else row.get("origin")
    if claimed != origin:
        raise BatchRejected(
            "forged_origin", f"record {record.record_id} claims origin {claimed}, sent by {origin}"
        )
    return row


async def _apply(
    session: AsyncSession, origin: str, records: list[OutboxRecord], *, exchanging: bool = False
) -> None:
    """Insert records table by table in dependency order (parents before children), one
    multi-row statement per table; within a table the sender's order is kept."""
    by_type: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_type.setdefault(record.record_type, []).append(_decoded_row(origin, record))
    for record_type in POST_RECORD_TYPES:
        rows = by_type.get(record_type, [])
        if record_type == "officer":  # the post's own accounts (provenance checked above)
            await upsert_authoritative(session, record_type, rows)
        else:
            await insert_missing(session, record_type, rows)
    if exchanging:  # queue for the partner country; the agreement filters at send time
        from sync.exchange import queue_for_partner

        await queue_for_partner(session, [str(row["id"]) for row in by_type.get("crossing", [])])


async def ingest_batch(
    session: AsyncSession, *, node: Node, header: BatchHeader, signature: bytes, body: bytes
) -> IngestResult:
    """Apply one batch inside the caller's transaction; raise BatchRejected or BatchGap."""
    peer = await approved_sender(session, header.origin)
    records = verify_batch(
        header,
        signature,
        body,
        public_key_from_text(peer.public_key),
        destination=node.settings.node_code,
    )
    state = await _state_for_update(session, header.origin)
    if header.seq_to <= state.contiguous_seq:
        raise BatchGap(state.contiguous_seq, "replay")
    if header.after_seq > state.contiguous_seq:
        raise BatchGap(state.contiguous_seq, "gap")
    fresh = [r for r in records if r.seq > state.contiguous_seq]
    await _apply(session, header.origin, fresh, exchanging=bool(node.settings.agreement_file))
    state.contiguous_seq = header.seq_to
    state.batches_accepted += 1
    state.last_batch_at = utcnow()
    return IngestResult(state.contiguous_seq, len(fresh))


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
