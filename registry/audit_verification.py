"""Verifying an audit chain against its signed checkpoints (``borderpost audit verify``).

``verify_chain`` walks one node's chain (``registry.audit``) from the start, checks every
link and every event's hash, and checks the chain against every checkpoint held for it
(``registry.audit_checkpoints``): signatures first when a key is given, then the head hash
at each checkpoint's count and a length at least the longest checkpoint's. Its
``ChainVerdict`` names what went wrong: ``truncated``, ``missing``, ``rechained``,
``bad_checkpoint_signature``, ``broken_link`` or ``altered``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.audit import GENESIS_HASH, event_hash
from registry.audit_checkpoints import checkpoint_signed_by, checkpoint_view
from registry.models import AuditCheckpoint, AuditEvent


@dataclass(frozen=True)
class ChainVerdict:
    """Result of verifying an audit chain against its signed checkpoints.

    ``reason`` is a stable code (None when ok): ``broken_link``, ``altered``,
    ``truncated``, ``missing``, ``rechained`` or ``bad_checkpoint_signature``.
    ``checkpoint`` is the checkpoint the chain was checked against (the one with the most
    events), or the one that the chain contradicts.
    """

    ok: bool
    events_checked: int
    first_broken_seq: int | None = None
    problem: str | None = None
    reason: str | None = None
    checkpoint: AuditCheckpoint | None = None
    checkpoints_checked: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events_checked": self.events_checked,
            "first_broken_seq": self.first_broken_seq,
            "problem": self.problem,
            "reason": self.reason,
            "checkpoint": checkpoint_view(self.checkpoint),
            "checkpoints_checked": self.checkpoints_checked,
        }


async def _events_in_order(
    session: AsyncSession, origin: str, batch: int = 5000
) -> AsyncIterator[AuditEvent]:
    last_seq = 0
    while True:
        query = (
            select(AuditEvent)
            .where(col(AuditEvent.origin) == origin, col(AuditEvent.seq) > last_seq)
            .order_by(col(AuditEvent.seq))
            .limit(batch)
        )
        rows = (await session.scalars(query)).all()
        if not rows:
            return
        for row in rows:
            yield row
        last_seq = rows[-1].seq or last_seq


async def verify_chain(
    session: AsyncSession,
    origin: str,
    *,
    public_key: Ed25519PublicKey | None = None,
    require_signatures: bool = False,
) -> ChainVerdict:
    """Walk one node's chain from the start and name the first problem, if any.

    Events received from other nodes keep their order, so a national node can verify
    each post's chain as well as its own. The chain is checked against every checkpoint
    held for ``origin``: the event at each checkpoint's count must carry its head hash,
    and the chain must be at least as long as the longest checkpoint. With
    ``public_key`` every checkpoint's signature is checked first; ``require_signatures``
    fails checkpoints when there is no key to check them with. (Unchecked checkpoints can
    only make the verdict stricter, never hide a problem.)
    """
    checkpoints = list(
        (
            await session.scalars(
                select(AuditCheckpoint)
                .where(col(AuditCheckpoint.origin) == origin)
                .order_by(col(AuditCheckpoint.made_at), col(AuditCheckpoint.event_count))
            )
        ).all()
    )
    held = len(checkpoints)
    if public_key is not None or require_signatures:
        for checkpoint in checkpoints:
            if public_key is None or not checkpoint_signed_by(checkpoint, public_key):
                return ChainVerdict(
                    False,
                    0,
                    None,
                    f"no key of {origin} is known to check its checkpoints"
                    if public_key is None
                    else f"the checkpoint of {checkpoint.made_at.isoformat()} is not signed "
                    f"by {origin}'s key: the checkpoints were altered or forged",
                    "bad_checkpoint_signature",
                    checkpoint,
                    held,
                )
    at_count: dict[int, list[AuditCheckpoint]] = {}
    for checkpoint in checkpoints:
        at_count.setdefault(checkpoint.event_count, []).append(checkpoint)
    longest = max(checkpoints, key=lambda c: (c.event_count, c.made_at), default=None)

    prev = GENESIS_HASH
    checked = 0
    async for event in _events_in_order(session, origin):
        if event.prev_hash != prev:
            return ChainVerdict(
                False,
                checked,
                event.seq,
                "prev_hash does not match the preceding event",
                "broken_link",
                longest,
                held,
            )
        if event_hash(event) != event.hash:
            return ChainVerdict(
                False,
                checked,
                event.seq,
                "event content does not match its hash",
                "altered",
                longest,
                held,
            )
        prev = event.hash
        checked += 1
        for checkpoint in at_count.get(checked, ()):
            if event.hash != checkpoint.head_hash:
                return ChainVerdict(
                    False,
                    checked,
                    event.seq,
                    f"event {checked} is not the one the checkpoint of "
                    f"{checkpoint.made_at.isoformat()} signed: events before it were "
                    "deleted or changed and the chain was rebuilt",
                    "rechained",
                    checkpoint,
                    held,
                )
    if longest is not None and checked < longest.event_count:
        return await _shorter_than(session, origin, checked, longest, held)
    return ChainVerdict(True, checked, None, None, None, longest, held)


async def _shorter_than(
    session: AsyncSession, origin: str, checked: int, checkpoint: AuditCheckpoint, held: int
) -> ChainVerdict:
    """The verdict on an intact chain with fewer events than ``checkpoint`` counted."""
    signed = f"the checkpoint of {checkpoint.made_at.isoformat()} counted {checkpoint.event_count}"
    if checked == 0:
        problem = f"the chain is empty but {signed}: every event was deleted"
        return ChainVerdict(False, 0, None, problem, "missing", checkpoint, held)
    head = await session.scalar(
        select(AuditEvent).where(
            col(AuditEvent.origin) == origin, col(AuditEvent.id) == checkpoint.head_id
        )
    )
    if head is not None:
        problem = (
            f"the chain holds {checked} events but {signed}, ending with event "
            f"{checkpoint.head_id}, which now has another hash: events were deleted and "
            "the chain was rebuilt"
        )
        return ChainVerdict(False, checked, head.seq, problem, "rechained", checkpoint, held)
    problem = (
        f"the chain holds {checked} events but {signed}, ending with event "
        f"{checkpoint.head_id}: {checkpoint.event_count - checked} events were cut from its end"
    )
    return ChainVerdict(False, checked, None, problem, "truncated", checkpoint, held)
