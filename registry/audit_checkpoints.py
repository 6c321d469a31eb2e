"""Signed checkpoints of the audit chain: made at every node, carried to national, kept there.

A hash chain alone cannot show that its end was cut off, or that it was rebuilt after a
deletion (anyone can recompute the hashes). So each node signs **checkpoints** of its chain
(``registry.audit``) with its Ed25519 key: how many events it held and which event ended it.
A node makes one at every sync and at least daily (``keep_checkpoints``), and refuses to sign
over a chain that no longer holds what its latest checkpoint signed (``CheckpointRefused``).
A post sends its checkpoints to national (``checkpoints_for_sync``, ``checkpoint_upload``),
which checks and keeps them (``read_checkpoint_upload``, ``store_received_checkpoints``).
Verifying a chain against its checkpoints is ``registry.audit_verification``.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.base64url import b64url, unb64url
from registry.models import AuditCheckpoint, AuditEvent, utcnow
from registry.problems import Problem, field_from_message

if TYPE_CHECKING:
    from registry.node import Node

log = logging.getLogger("borderpost.audit")

# ------------------------------------------------------------------------------------------
# Signed checkpoints
# ------------------------------------------------------------------------------------------
CHECKPOINT_MAX_AGE = timedelta(hours=24)  # a node checkpoints at least this often
CHECKPOINT_POLL_SECONDS = 3600.0  # how often the background task looks
CHECKPOINT_UPLOAD_MAX = 500  # checkpoints in one request to national
_CHECKPOINT_DOMAIN = "borderpost-audit-checkpoint-1"


def checkpoint_message(checkpoint: AuditCheckpoint) -> bytes:
    """The bytes a checkpoint's signature covers (the same at the post and at national)."""
    made_at = checkpoint.made_at.astimezone(UTC).isoformat(timespec="microseconds")
    fields = (
        _CHECKPOINT_DOMAIN,
        checkpoint.origin,
        str(checkpoint.event_count),
        str(checkpoint.head_seq),
        str(checkpoint.head_id),
        checkpoint.head_hash,
        made_at,
    )
    return "\n".join(fields).encode()


def checkpoint_signed_by(checkpoint: AuditCheckpoint, public_key: Ed25519PublicKey) -> bool:
    try:
        public_key.verify(unb64url(checkpoint.signature), checkpoint_message(checkpoint))
    except (InvalidSignature, ValueError):
        return False
    return True


class CheckpointRefused(RuntimeError):
    """The chain no longer holds what its latest checkpoint signed: no new checkpoint is
    signed over it (that would vouch for a chain cut short). ``reason`` is a verdict code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


async def _last_event(session: AsyncSession, origin: str) -> Any:
    """(seq, id, hash) of the chain's last event, or None; one index read. Counts run up
    to its seq (``_count_up_to``), so events appended meanwhile do not skew them."""
    return (
        await session.execute(
            select(col(AuditEvent.seq), col(AuditEvent.id), col(AuditEvent.hash))
            .where(col(AuditEvent.origin) == origin)
            .order_by(col(AuditEvent.seq).desc())
            .limit(1)
        )
    ).first()


async def _count_up_to(session: AsyncSession, origin: str, seq: int) -> int:
    query = select(func.count()).where(col(AuditEvent.origin) == origin, col(AuditEvent.seq) <= seq)
    return int(await session.scalar(query) or 0)


async def latest_checkpoint(session: AsyncSession, origin: str) -> AuditCheckpoint | None:
    return await session.scalar(
        select(AuditCheckpoint)
        .where(col(AuditCheckpoint.origin) == origin)
        .order_by(col(AuditCheckpoint.made_at).desc(), col(AuditCheckpoint.event_count).desc())
        .limit(1)
    )


async def _departure(session: AsyncSession, checkpoint: AuditCheckpoint) -> str | None:
    """How the chain departs from what ``checkpoint`` signed (a verdict code), if it does."""
    event = await session.scalar(
        select(AuditEvent).where(
            col(AuditEvent.origin) == checkpoint.origin, col(AuditEvent.id) == checkpoint.head_id
        )
    )
    if event is None:
        empty = await _last_event(session, checkpoint.origin) is None
        return "missing" if empty else "truncated"
    if event.hash != checkpoint.head_hash:
        return "rechained"
    if await _count_up_to(session, checkpoint.origin, event.seq or 0) != checkpoint.event_count:
        return "broken_link"
    return None


async def make_checkpoint(
    session: AsyncSession,
    *,
    origin: str,
    key: Ed25519PrivateKey,
    max_age: timedelta | None = CHECKPOINT_MAX_AGE,
    force: bool = False,
) -> AuditCheckpoint | None:
    """Sign a checkpoint of ``origin``'s chain when it moved since the latest one or that
    one is older than ``max_age`` (always with ``force``); None when none is due or the
    chain is empty. Raises ``CheckpointRefused`` if the chain no longer holds what the
    latest checkpoint signed. Run it in a write transaction.
    """
    last = await _last_event(session, origin)
    previous = await latest_checkpoint(session, origin)
    if last is None:
        if previous is not None:
            raise CheckpointRefused(
                "missing",
                f"the chain is empty but the checkpoint of {previous.made_at.isoformat()} "
                f"counted {previous.event_count} events; run `borderpost audit verify`",
            )
        return None
    if previous is not None:
        moved = previous.head_id != last.id  # counting waits until a checkpoint is due
        stale = max_age is not None and utcnow() - previous.made_at >= max_age
        if not (force or moved or stale):
            return None
        departure = await _departure(session, previous)
        if departure is not None:
            raise CheckpointRefused(
                departure,
                f"the chain no longer holds the {previous.event_count} events ending with "
                f"{previous.head_id} that the checkpoint of {previous.made_at.isoformat()} "
                "signed; run `borderpost audit verify`",
            )
    checkpoint = AuditCheckpoint(
        origin=origin,
        event_count=await _count_up_to(session, origin, last.seq),
        head_seq=last.seq,
        head_id=last.id,
        head_hash=last.hash,
        made_at=utcnow(),
        signature="",
    )
    checkpoint.signature = b64url(key.sign(checkpoint_message(checkpoint)))
    session.add(checkpoint)
    await session.flush()
    return checkpoint


async def checkpoint_if_due(
    node: Node, *, max_age: timedelta | None = CHECKPOINT_MAX_AGE, force: bool = False
) -> AuditCheckpoint | None:
    """``make_checkpoint`` of this node's own chain, in its own write transaction."""
    async with node.db.write_transaction() as session:
        return await make_checkpoint(
            session,
            origin=node.settings.node_code,
            key=node.signing_key,
            max_age=max_age,
            force=force,
        )


async def keep_checkpoints(node: Node, *, every_seconds: float = CHECKPOINT_POLL_SECONDS) -> None:
    """Run as a lifespan task on every node: checkpoint the chain whenever it moved, and at
    least daily, even while a post is offline. Errors are logged and the loop goes on."""
    while True:
        try:
            made = await checkpoint_if_due(node)
            if made is not None:
                log.info("audit checkpoint: %d events, head %s", made.event_count, made.head_id)
        except CheckpointRefused as exc:
            log.error("audit checkpoint refused: %s", exc)
        except Exception:  # noqa: BLE001 - a background loop must survive a bad moment
            log.exception("audit checkpoint failed")
        await asyncio.sleep(every_seconds)


# ---------------------------------------------------------------- a post's checkpoints to national
async def checkpoints_for_sync(node: Node) -> list[AuditCheckpoint]:
    """Post side, before a push: checkpoint the chain if it moved, then every checkpoint
    national has not stored yet. The push that follows carries every event they count,
    so national receives them only after the events (see ``SyncClient.sync_once``).
    Checkpoints this node's key did not sign (altered, or signed with a key since lost)
    stay behind: national would refuse them, and with them the others."""
    try:
        await checkpoint_if_due(node)
    except CheckpointRefused as exc:
        log.error("audit checkpoint refused: %s", exc)
    async with node.db.session() as session:
        query = (
            select(AuditCheckpoint)
            .where(
                col(AuditCheckpoint.origin) == node.settings.node_code,
                AuditCheckpoint.delivered_at.is_(None),  # type: ignore[union-attr]
            )
            .order_by(col(AuditCheckpoint.made_at))
        )
        undelivered = list((await session.scalars(query)).all())
    own_key = node.signing_key.public_key()
    sendable = [c for c in undelivered if checkpoint_signed_by(c, own_key)]
    if len(sendable) < len(undelivered):  # signed by a key this post no longer has
        log.error(
            "%d audit checkpoints are not signed by this node's key and stay here; "
            "run `borderpost audit verify`",
            len(undelivered) - len(sendable),
        )
    return sendable


async def mark_delivered(node: Node, checkpoints: Sequence[AuditCheckpoint]) -> None:
    """Post side: national has stored these checkpoints."""
    async with node.db.write_transaction() as session:
        for checkpoint in checkpoints:
            stored = await session.get(AuditCheckpoint, checkpoint.id)
            if stored is not None:
                stored.delivered_at = utcnow()


# ---------------------------------------------------------------- checkpoints on the wire
class CheckpointPayload(msgspec.Struct, forbid_unknown_fields=True):
    """One signed checkpoint as a post sends it to national."""

    id: uuid.UUID
    origin: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}-[A-Z0-9-]{2,28}$")]
    event_count: Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)]
    head_seq: Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)]
    head_id: uuid.UUID
    head_hash: Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$")]
    made_at: Annotated[datetime, msgspec.Meta(tz=True)]
    signature: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{86}$")]


class CheckpointUpload(msgspec.Struct, forbid_unknown_fields=True):
    checkpoints: Annotated[
        list[CheckpointPayload], msgspec.Meta(min_length=1, max_length=CHECKPOINT_UPLOAD_MAX)
    ]


def checkpoint_upload(checkpoints: Sequence[AuditCheckpoint]) -> bytes:
    """The JSON body that carries checkpoints to national."""
    payloads = [
        CheckpointPayload(
            id=c.id,
            origin=c.origin,
            event_count=c.event_count,
            head_seq=c.head_seq,
            head_id=c.head_id,
            head_hash=c.head_hash,
            made_at=c.made_at,
            signature=c.signature,
        )
        for c in checkpoints
    ]
    return msgspec.json.encode(CheckpointUpload(payloads))


def read_checkpoint_upload(body: bytes) -> list[AuditCheckpoint]:
    """Decode an upload; a malformed one is a 400 naming the field."""
    try:
        upload = msgspec.json.decode(body, type=CheckpointUpload)
    except msgspec.ValidationError as exc:
        raise Problem(
            400, "Invalid request", field=field_from_message(str(exc)) or "body", detail=str(exc)
        ) from exc
    except msgspec.DecodeError as exc:
        raise Problem(400, "Invalid request", field="body", detail="the body is not JSON") from exc
    return [
        AuditCheckpoint(
            id=p.id,
            origin=p.origin,
            event_count=p.event_count,
            head_seq=p.head_seq,
            head_id=p.head_id,
            head_hash=p.head_hash,
            made_at=p.made_at.astimezone(UTC),
            signature=p.signature,
        )
        for p in upload.checkpoints
    ]


async def store_received_checkpoints(
    session: AsyncSession,
    *,
    sender: str,
    public_key: Ed25519PublicKey,
    checkpoints: Sequence[AuditCheckpoint],
) -> int:
    """National side: keep a post's checkpoints once every one is its own and signed by its
    enrolled key; otherwise refuse them all (nothing stored). Replays are harmless.
    Returns how many were new."""
    for index, checkpoint in enumerate(checkpoints):
        if checkpoint.origin != sender:
            raise Problem(
                403,
                "Checkpoint refused",
                field=f"checkpoints[{index}].origin",
                detail=f"{sender} may send only its own checkpoints, not {checkpoint.origin}'s",
            )
        if not checkpoint_signed_by(checkpoint, public_key):
            raise Problem(
                422,
                "Checkpoint refused",
                field=f"checkpoints[{index}].signature",
                detail=f"the checkpoint is not signed by {sender}'s enrolled key",
            )
    ids = [c.id for c in checkpoints]
    known = select(col(AuditCheckpoint.id)).where(col(AuditCheckpoint.id).in_(ids))
    held = set((await session.scalars(known)).all())
    fresh = [c for c in checkpoints if c.id not in held]
    arrived = utcnow()
    for checkpoint in fresh:
        checkpoint.delivered_at = arrived
        session.add(checkpoint)
    await session.flush()
    return len(fresh)


# ---------------------------------------------------------------- a checkpoint as it is shown
def checkpoint_view(checkpoint: AuditCheckpoint | None) -> dict[str, Any] | None:
    if checkpoint is None:
        return None
    return {
        "id": str(checkpoint.id),
        "origin": checkpoint.origin,
        "event_count": checkpoint.event_count,
        "head_seq": checkpoint.head_seq,
        "head_id": str(checkpoint.head_id),
        "head_hash": checkpoint.head_hash,
        "made_at": checkpoint.made_at.isoformat(),
        "delivered_at": checkpoint.delivered_at.isoformat() if checkpoint.delivered_at else None,
    }
