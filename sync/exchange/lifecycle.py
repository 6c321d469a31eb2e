"""The life cycle of an agreement version at this national node: backfill, revocation,
erasure and retention.

The first time this node finds a version in force, it queues once every crossing of its
paired posts and period that was ingested before (``activate_agreement``), leaving out what
happened during a revocation of an earlier version, and drops what was queued during that
revocation. A revocation (ours, ``revoke_agreement``, or the partner's signed notice,
``accept_partner_revocation``) stops the exchange at once, drops what is still queued and
erases what this node holds from the partner under that version (``erase_partner_data``).
What the partner sent is purged when its retention runs out (``purge_expired``). Every step
is audited with the agreement version. Sending and receiving are in
``sync.exchange.service``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import String, cast, delete, exists, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.audit import audit
from registry.db import dialect_name
from registry.models import Crossing, Officer, utcnow
from registry.node import Node
from registry.problems import Problem
from sync.exchange.liaison import settle_cases
from sync.exchange.model import Agreement
from sync.exchange.service import SCAN, Exchange, queue_for_partner, revocation_of
from sync.exchange.signing import (
    revocation_notice,
    sign_revocation,
    verify_revocation,
)
from sync.models import (
    AgreementActivation,
    AgreementRevocation,
    DiscrepancyEvent,
    ExchangeKey,
    ExchangeOutbox,
    HitQuery,
    PartnerRecord,
    SyncCheckpoint,
)

# ------------------------------------------------------------------ life cycle
Progress = Callable[[int, int], None]  # (done, total)
BACKFILL_CHUNK = 5000


async def _scan_position(session: AsyncSession, exchange: Exchange) -> int:
    checkpoint = await session.get(SyncCheckpoint, (exchange.partner.node, SCAN))
    return checkpoint.position if checkpoint else 0


async def revocation_gaps(
    session: AsyncSession, agreement: Agreement, now: datetime
) -> list[tuple[datetime, datetime]]:
    """The periods during which an earlier version of this agreement stood revoked: from
    each revocation to the activation of the next version (or ``now``)."""
    revocations = (
        await session.scalars(
            select(AgreementRevocation).where(
                col(AgreementRevocation.agreement_id) == agreement.id,
                col(AgreementRevocation.version) < agreement.version,
            )
        )
    ).all()
    activations = (
        await session.scalars(
            select(AgreementActivation).where(col(AgreementActivation.agreement_id) == agreement.id)
        )
    ).all()
    gaps = []
    for revocation in revocations:
        later = [a.activated_at for a in activations if a.version > revocation.version]
        gaps.append((revocation.revoked_at, min(later, default=now)))
    return gaps


def _in_gaps(column: Any, gaps: list[tuple[datetime, datetime]]) -> list[Any]:
    return [~((column >= start) & (column < end)) for start, end in gaps]


DROPPED = "dropped_"  # the prefix of a queued record's type once it was dropped


async def drop_unsent(
    session: AsyncSession, exchange: Exchange, *, queued_since: datetime | None = None
) -> int:
    """Drop what waits in the queue (queued since ``queued_since``, else all of it): each
    row stays, marked ``dropped_<type>``, so that it is never sent (not even when the
    partner asks to resend from an earlier point) and never backfilled again."""
    conditions = [
        col(ExchangeOutbox.seq) > await _scan_position(session, exchange),
        ~col(ExchangeOutbox.record_type).startswith(DROPPED),
    ]
    if queued_since is not None:
        conditions.append(col(ExchangeOutbox.created_at) >= queued_since)
    doomed = await session.scalar(
        select(func.count()).select_from(ExchangeOutbox).where(*conditions)
    )
    if doomed:
        await session.execute(
            update(ExchangeOutbox)
            .where(*conditions)
            .values(record_type=literal(DROPPED) + col(ExchangeOutbox.record_type))
        )
    return int(doomed or 0)


@dataclass(frozen=True)
class Backfill:
    """What one backfill did: the version's activation, and what this run queued."""

    activation: AgreementActivation
    queued: int


async def activate_agreement(
    session: AsyncSession,
    *,
    node: Node,
    exchange: Exchange,
    progress: Progress | None = None,
    again: bool = False,
) -> Backfill:
    """When an agreement version is first found in force: drop what was queued while an
    earlier version stood revoked, then queue every crossing of our paired posts that
    occurred within the agreement's period (outside any revocation) and was never queued
    (sent or dropped). With ``again`` (a service start, ``agreement backfill``), the queueing
    runs again for what was ingested while no agreement was configured; it never queues a
    crossing twice. Serialised between processes; audited when it queues anything."""
    agreement = exchange.agreement
    if dialect_name(session) == "postgresql":  # one backfill at a time (service and CLI)
        await session.execute(select(func.pg_advisory_xact_lock(_BACKFILL_LOCK)))
    done = await session.get(AgreementActivation, (agreement.id, agreement.version))
    if done is not None and not again:
        return Backfill(done, 0)
    now = utcnow()
    gaps = await revocation_gaps(session, agreement, done.activated_at if done else now)
    dropped = 0
    if done is None and gaps:
        dropped = await drop_unsent(session, exchange, queued_since=gaps[-1][0])
    queued = await _backfill(session, exchange, gaps, progress)
    fresh = done is None
    if done is None:
        done = AgreementActivation(
            agreement_id=agreement.id,
            version=agreement.version,
            content_sha256=agreement.content_sha256,
            activated_at=now,
            dropped=dropped,
        )
        session.add(done)
    done.backfilled += queued
    if queued or fresh:
        await audit(
            session,
            origin=node.settings.node_code,
            officer=None,
            action="backfill",
            record_type="agreement",
            record_id=agreement.id,
            purpose="exchange",
            detail={
                "version": agreement.version,
                "queued": queued,
                "dropped": dropped,
                "period": [agreement.valid_from.isoformat(), agreement.valid_to.isoformat()],
            },
        )
    return Backfill(done, queued)


_BACKFILL_LOCK = 0x42505F4246  # "BP_BF": the advisory lock of the backfill


async def _backfill(
    session: AsyncSession,
    exchange: Exchange,
    gaps: list[tuple[datetime, datetime]],
    progress: Progress | None,
) -> int:
    agreement = exchange.agreement
    start = datetime.combine(agreement.valid_from, time.min, tzinfo=UTC)
    end = datetime.combine(agreement.valid_to + timedelta(days=1), time.min, tzinfo=UTC)
    queued = exists().where(  # queued before, sent or dropped
        col(ExchangeOutbox.record_type).in_(("crossing", f"{DROPPED}crossing")),
        col(ExchangeOutbox.record_id) == cast(col(Crossing.id), String),
    )
    conditions = [
        col(Crossing.post).in_(sorted(exchange.our_posts)),
        col(Crossing.occurred_at) >= start,
        col(Crossing.occurred_at) < end,
        ~queued,
        *_in_gaps(col(Crossing.occurred_at), gaps),
    ]
    total = int(
        await session.scalar(select(func.count()).select_from(Crossing).where(*conditions)) or 0
    )
    backfilled = 0
    if progress is not None:
        progress(0, total)
    while backfilled < total:
        ids = (
            await session.scalars(
                select(col(Crossing.id))
                .where(*conditions)
                .order_by(col(Crossing.occurred_at))
                .limit(BACKFILL_CHUNK)
            )
        ).all()
        if not ids:
            break
        await queue_for_partner(session, [str(i) for i in ids])
        await session.flush()
        backfilled += len(ids)
        if progress is not None:
            progress(backfilled, total)
    return backfilled


async def erase_partner_data(
    session: AsyncSession, *, node: Node, exchange: Exchange, officer: Officer | None = None
) -> int:
    """Erase what this node holds from the partner under the agreement version: its
    records, the double-blinded keys of ours it returned, its notes and resolutions on our
    cases, the details it released to us.
    Audited; returns the records erased."""
    agreement = exchange.agreement
    under = (
        col(PartnerRecord.agreement_id) == agreement.id,
        col(PartnerRecord.agreement_version) == agreement.version,
    )
    records = int(
        await session.scalar(select(func.count()).select_from(PartnerRecord).where(*under)) or 0
    )
    await session.execute(delete(PartnerRecord).where(*under))
    # our crossings' keys as the partner's scalar made them: its share of the blinding
    keys = await session.execute(
        delete(ExchangeKey).where(
            col(ExchangeKey.agreement_id) == agreement.id,
            col(ExchangeKey.agreement_version) == agreement.version,
        )
    )
    theirs = col(DiscrepancyEvent.origin) == exchange.partner.node
    cases = set(
        (await session.scalars(select(col(DiscrepancyEvent.discrepancy_id)).where(theirs))).all()
    )
    await session.execute(delete(DiscrepancyEvent).where(theirs))
    released = await session.execute(
        update(HitQuery)
        .where(col(HitQuery.direction) == "outgoing", col(HitQuery.detail_status) == "approved")
        .values(released=[], detail_status="erased")
    )
    await settle_cases(session, cases)
    await audit(
        session,
        origin=node.settings.node_code,
        officer=officer,
        action="erase",
        record_type="partner_record",
        record_id=agreement.id,
        purpose="revocation",
        detail={
            "agreement": agreement.id,
            "version": agreement.version,
            "records": records,
            "keys": int(getattr(keys, "rowcount", 0) or 0),
            "cases": len(cases),
            "released_details": int(getattr(released, "rowcount", 0) or 0),
        },
    )
    return records


# ------------------------------------------------------------------ retention
async def purge_expired(session: AsyncSession, *, node: Node, exchange: Exchange | None) -> int:
    """Delete what the partner sent once its retention has run out: its records, its notes
    and resolutions on our cases, and the details it released to us. Audited with the
    agreement version; returns the records purged."""
    now = utcnow()
    doomed = await session.scalar(
        select(func.count()).select_from(PartnerRecord).where(col(PartnerRecord.expires_at) < now)
    )
    expired_events = col(DiscrepancyEvent.expires_at) < now
    cases = set(
        (
            await session.scalars(
                select(col(DiscrepancyEvent.discrepancy_id)).where(expired_events)
            )
        ).all()
    )
    released = 0
    if exchange is not None:
        horizon = now - timedelta(days=exchange.agreement.retention_days)
        result = await session.execute(
            update(HitQuery)
            .where(
                col(HitQuery.direction) == "outgoing",
                col(HitQuery.detail_status) == "approved",
                col(HitQuery.created_at) < horizon,
            )
            .values(released=[], detail_status="expired")
        )
        released = int(getattr(result, "rowcount", 0) or 0)
    if not doomed and not cases and not released:
        return 0
    await session.execute(delete(PartnerRecord).where(col(PartnerRecord.expires_at) < now))
    events = await session.execute(delete(DiscrepancyEvent).where(expired_events))
    await settle_cases(session, cases)
    agreement = exchange.agreement if exchange else None
    await audit(
        session,
        origin=node.settings.node_code,
        officer=None,
        action="purge",
        record_type="partner_record",
        record_id="retention",
        purpose="retention",
        detail={
            "purged": int(doomed or 0),
            "case_events": int(getattr(events, "rowcount", 0) or 0),
            "released_details": released,
            "agreement": agreement.id if agreement else None,
            "version": agreement.version if agreement else None,
        },
    )
    return int(doomed or 0)


async def revoke_agreement(
    session: AsyncSession, *, node: Node, exchange: Exchange, officer: Officer | None, reason: str
) -> AgreementRevocation:
    """Revoke the agreement version in force: a notice signed with this node's key (sent to
    the partner by ``sync.exchange.client.deliver_revocation``), exchange stopped at once,
    the queue dropped and the partner's data erased here. Audited."""
    agreement = exchange.agreement
    if await revocation_of(session, agreement) is not None:
        raise Problem(
            409,
            "Already revoked",
            field="agreement",
            detail=f"{agreement.id} v{agreement.version} is already revoked",
        )
    now = utcnow()
    notice = revocation_notice(agreement, exchange.ours.country, now, reason)
    revocation = AgreementRevocation(
        agreement_id=agreement.id,
        version=agreement.version,
        revoked_at=now,
        revoked_by=officer.username if officer else "cli",
        reason=reason,
        party=exchange.ours.country,
        statement=notice.decode(),
        signature=sign_revocation(notice, node.signing_key),
    )
    return await _stop_under(session, node, exchange, revocation, officer, "revoke")


async def _stop_under(
    session: AsyncSession,
    node: Node,
    exchange: Exchange,
    revocation: AgreementRevocation,
    officer: Officer | None,
    action: str,
) -> AgreementRevocation:
    """Record a revocation (ours or the partner's), drop what waits to be sent, audit it
    and erase what we hold from the partner under that version."""
    session.add(revocation)
    dropped = await drop_unsent(session, exchange)
    await audit(
        session,
        origin=node.settings.node_code,
        officer=officer,
        action=action,
        record_type="agreement",
        record_id=revocation.agreement_id,
        purpose="exchange",
        detail={
            "version": revocation.version,
            "reason": revocation.reason,
            "party": revocation.party,
            "dropped": dropped,
        },
    )
    revocation.erased = await erase_partner_data(
        session, node=node, exchange=exchange, officer=officer
    )
    return revocation


async def accept_partner_revocation(
    session: AsyncSession, *, node: Node, exchange: Exchange, notice: bytes, signature: str
) -> AgreementRevocation:
    """The partner's signed notice that it revoked the agreement version: checked with the
    key the agreement gives it, then exchange stops here too, the queue is dropped and what
    we hold from the partner under that version is erased. Audited; a repeated notice
    changes nothing. ValueError when the notice does not verify."""
    decoded = verify_revocation(exchange.agreement, notice, signature)
    if decoded["party"] != exchange.partner.country:
        raise ValueError("the notice must come from the partner")
    held = await revocation_of(session, exchange.agreement)
    if held is not None:
        return held
    agreement = exchange.agreement
    revocation = AgreementRevocation(
        agreement_id=agreement.id,
        version=agreement.version,
        revoked_at=datetime.fromisoformat(decoded["revoked_at"]),
        revoked_by=exchange.partner.node,
        reason=str(decoded["reason"])[:500],
        party=exchange.partner.country,
        statement=notice.decode(),
        signature=signature,
        notified_at=utcnow(),
    )
    return await _stop_under(session, node, exchange, revocation, None, "revoked_by_partner")
