"""The receiving side of signed, acknowledged batches, shared by national's ingest of its
posts' batches (``sync.ingest``) and its receipt of the partner's (``sync.exchange``): each
sender's ingest state (the highest contiguous seq held, locked while a batch applies), the
harmless refusal of a batch that does not follow it (``BatchGap``), and the audited count of
refused batches. Here, so that neither receiver imports the other for them."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.audit import audit
from registry.node import Node
from sync.bulk import insert_missing
from sync.models import IngestState, SyncPeer


class BatchGap(Exception):
    """Refused without harm: the batch starts after a seq the receiver lacks (a gap), or
    holds nothing new (a replay). Either way the sender continues from ``ack``."""

    def __init__(self, ack: int, reason: str) -> None:
        super().__init__(f"{reason}: the receiver holds up to seq {ack}")
        self.ack = ack
        self.reason = reason


async def locked_ingest_state(session: AsyncSession, origin: str) -> IngestState:
    """The sender's ingest state (created at seq 0 if it is new), locked until the caller's
    transaction ends."""
    await insert_missing(
        session,
        "ingest_state",
        [{"origin": origin, "contiguous_seq": 0, "batches_accepted": 0, "batches_rejected": 0}],
    )
    query = select(IngestState).where(col(IngestState.origin) == origin).with_for_update()
    state = await session.scalar(query)
    assert state is not None
    return state


async def held_seq(session: AsyncSession, origin: str) -> int:
    """The highest contiguous seq national holds from ``origin`` (no lock taken)."""
    state = await session.get(IngestState, origin)
    return state.contiguous_seq if state else 0


async def record_rejection(
    session: AsyncSession, *, node: Node, origin: str, reason: str, detail: str
) -> None:
    """Log a refused batch (audited, counted) in its own transaction."""
    peer = await session.get(SyncPeer, origin)
    if peer is not None:
        state = await locked_ingest_state(session, origin)
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
