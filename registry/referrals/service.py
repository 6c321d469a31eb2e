"""Protection referrals: an officer flags a vulnerable traveller; only protection roles
(and admin, for audit) may read the details, and every read is audited."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.audit import audit
from registry.crossings.records import load_crossing, traveller_view
from registry.models import Crossing, Officer, ProtectionReferral, Traveller
from registry.node import Node
from registry.outbox import enqueue
from registry.problems import Problem


def referral_view(
    referral: ProtectionReferral, crossing: Crossing, traveller: Traveller | None
) -> dict[str, Any]:
    return {
        "id": str(referral.id),
        "category": referral.category,
        "note": referral.note,
        "created_by": str(referral.created_by),
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


async def _with_context(session: AsyncSession, referral: ProtectionReferral) -> dict[str, Any]:
    crossing = await session.get(Crossing, referral.crossing_id)
    assert crossing is not None
    traveller = await session.get(Traveller, crossing.traveller_id)
    return referral_view(referral, crossing, traveller)


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
    return [await _with_context(session, r) for r in referrals]


async def read_referral(
    session: AsyncSession, *, node: Node, officer: Officer, referral_id: uuid.UUID
) -> dict[str, Any]:
    referral = await session.get(ProtectionReferral, referral_id)
    if referral is None:
        raise Problem(404, "Not found", field="referral_id", detail="no referral has this id")
    await audit(
        session,
        origin=node.settings.node_code,
        officer=officer,
        action="read",
        record_type="protection_referral",
        record_id=referral.id,
        purpose="protection",
    )
    return await _with_context(session, referral)
