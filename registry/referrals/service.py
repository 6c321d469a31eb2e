"""Protection referrals: an officer flags a vulnerable traveller; only protection roles
(and admin, for audit) may read the details, and every read is audited.

A referral is a case: the officer who reported it, then the steps protection officers add
(``ReferralFollowUp``: a note, the status it leaves the case in, the outcome that closes
it). Steps are never changed; the case's status is that of its latest step. The front desk
learns only that a referral exists on a crossing (``referral_exists``), nothing of it."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.audit import audit
from registry.crossings.records import (
    KNOWS_REFERRALS_EXIST,
    has_referral,
    load_crossing,
    traveller_view,
)
from registry.models import (
    REFERRAL_OUTCOMES,
    REFERRAL_STATUSES,
    Crossing,
    Officer,
    ProtectionReferral,
    ReferralFollowUp,
    Traveller,
)
from registry.node import Node
from registry.outbox import enqueue
from registry.problems import Problem


def officer_brief(officer: Officer | None) -> dict[str, str] | None:
    if officer is None:
        return None
    return {"id": str(officer.id), "username": officer.username, "full_name": officer.full_name}


def follow_up_view(step: ReferralFollowUp, author: Officer | None) -> dict[str, Any]:
    return {
        "id": str(step.id),
        "status": step.status,
        "note": step.note,
        "outcome": step.outcome,
        "officer": officer_brief(author),
        "created_at": step.created_at.isoformat(),
    }


def referral_view(
    referral: ProtectionReferral,
    crossing: Crossing,
    traveller: Traveller | None,
    *,
    reporter: Officer | None = None,
    steps: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    steps = steps or []
    closing = next((s for s in reversed(steps) if s["status"] == "closed"), None)
    return {
        "id": str(referral.id),
        "category": referral.category,
        "note": referral.note,
        "created_by": str(referral.created_by),
        "reporting_officer": officer_brief(reporter),
        "status": steps[-1]["status"] if steps else "open",
        "outcome": closing["outcome"] if closing else None,
        "closed_at": closing["created_at"] if closing else None,
        "follow_ups": steps,
        "created_at": referral.created_at.isoformat(),
        "crossing_id": str(crossing.id),
        "post": crossing.post,
        "direction": crossing.direction,
        "occurred_at": crossing.occurred_at.isoformat(),
        "traveller": traveller_view(traveller) if traveller else None,
    }


async def create_referral(
    session: AsyncSession,
    *,
    node: Node,
    officer: Officer,
    crossing_id: uuid.UUID,
    category: str,
    note: str,
) -> ProtectionReferral:
    """Attach a referral to a crossing. The caller learns only that it exists."""
    crossing = await load_crossing(session, crossing_id)
    referral = ProtectionReferral(
        origin=node.settings.node_code,
        crossing_id=crossing.id,
        category=category,
        note=note,
        created_by=officer.id,
    )
    session.add(referral)
    await session.flush()
    await enqueue(session, referral)
    await audit(
        session,
        origin=node.settings.node_code,
        officer=officer,
        action="create",
        record_type="protection_referral",
        record_id=referral.id,
        purpose="protection",
        detail={"crossing": str(crossing.id)},
    )
    return referral


async def referral_exists(
    session: AsyncSession, *, officer: Officer, crossing_id: uuid.UUID
) -> bool:
    """Whether a crossing has a referral, for the roles that may know it; False for any
    other role, whatever the truth (callers show nothing then)."""
    if officer.role not in KNOWS_REFERRALS_EXIST:
        return False
    return await has_referral(session, crossing_id)


async def referred_crossings(
    session: AsyncSession, *, officer: Officer, crossing_ids: list[uuid.UUID]
) -> set[uuid.UUID]:
    """Which of these crossings have a referral, for the roles that may know it (an empty
    set for any other role)."""
    if officer.role not in KNOWS_REFERRALS_EXIST or not crossing_ids:
        return set()
    found = await session.scalars(
        select(col(ProtectionReferral.crossing_id)).where(
            col(ProtectionReferral.crossing_id).in_(crossing_ids)
        )
    )
    return set(found.all())


async def _steps(
    session: AsyncSession, referral_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """The case steps of these referrals, oldest first, with their authors."""
    if not referral_ids:
        return {}
    rows = list(
        (
            await session.scalars(
                select(ReferralFollowUp)
                .where(col(ReferralFollowUp.referral_id).in_(referral_ids))
                .order_by(col(ReferralFollowUp.created_at), col(ReferralFollowUp.id))
            )
        ).all()
    )
    authors = await _officers(session, {row.officer_id for row in rows})
    steps: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for row in rows:
        steps.setdefault(row.referral_id, []).append(
            follow_up_view(row, authors.get(row.officer_id))
        )
    return steps


async def _officers(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, Officer]:
    if not ids:
        return {}
    found = await session.scalars(select(Officer).where(col(Officer.id).in_(ids)))
    return {officer.id: officer for officer in found.all()}


async def _views(
    session: AsyncSession, referrals: list[ProtectionReferral]
) -> list[dict[str, Any]]:
    """The referrals with their crossing, traveller, reporting officer and case steps,
    read with one query per table (not per referral)."""
    if not referrals:
        return []
    steps = await _steps(session, [r.id for r in referrals])
    reporters = await _officers(session, {r.created_by for r in referrals})
    crossings = {
        c.id: c
        for c in (
            await session.scalars(
                select(Crossing).where(col(Crossing.id).in_({r.crossing_id for r in referrals}))
            )
        ).all()
    }
    traveller_ids = {c.traveller_id for c in crossings.values()}
    travellers = {
        t.id: t
        for t in (
            await session.scalars(select(Traveller).where(col(Traveller.id).in_(traveller_ids)))
        ).all()
    }
    views = []
    for referral in referrals:
        crossing = crossings[referral.crossing_id]
        views.append(
            referral_view(
                referral,
                crossing,
                travellers.get(crossing.traveller_id),
                reporter=reporters.get(referral.created_by),
                steps=steps.get(referral.id, []),
            )
        )
    return views


async def list_referrals(
    session: AsyncSession, *, node: Node, officer: Officer, limit: int = 200
) -> list[dict[str, Any]]:
    query = (
        select(ProtectionReferral).order_by(col(ProtectionReferral.created_at).desc()).limit(limit)
    )
    referrals = list((await session.scalars(query)).all())
    await audit(
        session,
        origin=node.settings.node_code,
        officer=officer,
        action="read",
        record_type="protection_referral",
        record_id="list",
        purpose="protection",
        detail={"results": [str(r.id) for r in referrals]},
    )
    return await _views(session, referrals)


async def read_referral(
    session: AsyncSession, *, node: Node, officer: Officer, referral_id: uuid.UUID
) -> dict[str, Any]:
    referral = await _load(session, referral_id)
    await audit(
        session,
        origin=node.settings.node_code,
        officer=officer,
        action="read",
        record_type="protection_referral",
        record_id=referral.id,
        purpose="protection",
    )
    return (await _views(session, [referral]))[0]


async def _load(session: AsyncSession, referral_id: uuid.UUID) -> ProtectionReferral:
    referral = await session.get(ProtectionReferral, referral_id)
    if referral is None:
        raise Problem(404, "Not found", field="referral_id", detail="no referral has this id")
    return referral


async def add_follow_up(
    session: AsyncSession,
    *,
    node: Node,
    officer: Officer,
    referral_id: uuid.UUID,
    status: str,
    note: str,
    outcome: str | None,
) -> ReferralFollowUp:
    """A protection officer adds a step to a referral's case: a follow-up note that leaves
    it open or in follow-up, or its closing with an outcome. A closed case takes no more
    steps (409). Audited without the note (the audit log is read more widely)."""
    if status not in REFERRAL_STATUSES:
        raise Problem(
            422,
            "Unknown status",
            field="status",
            detail=f"one of {tuple(map(str, REFERRAL_STATUSES))}",
        )
    if status == "closed" and outcome not in REFERRAL_OUTCOMES:
        raise Problem(
            422, "Outcome missing", field="outcome", detail="closing a case needs its outcome"
        )
    if status != "closed" and outcome is not None:
        raise Problem(
            422, "Outcome only when closing", field="outcome", detail="give it when closing"
        )
    referral = await _load(session, referral_id)
    latest = await session.scalar(
        select(col(ReferralFollowUp.status))
        .where(col(ReferralFollowUp.referral_id) == referral.id)
        .order_by(col(ReferralFollowUp.created_at).desc(), col(ReferralFollowUp.id).desc())
        .limit(1)
    )
    if latest == "closed":
        raise Problem(409, "Case closed", field="referral_id", detail="this case is closed")
    step = ReferralFollowUp(
        origin=node.settings.node_code,
        referral_id=referral.id,
        officer_id=officer.id,
        status=status,
        note=note,
        outcome=outcome,
    )
    session.add(step)
    await session.flush()
    await enqueue(session, step)
    await audit(
        session,
        origin=node.settings.node_code,
        officer=officer,
        action="close" if status == "closed" else "follow_up",
        record_type="protection_referral",
        record_id=referral.id,
        purpose="protection",
        detail={"follow_up": str(step.id), "status": status, "outcome": outcome},
    )
    return step
