"""Reading and correcting crossings: views with role-aware detail, superseding versions."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from functools import cache
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.audit import audit
from registry.crossings.registration import (
    compute_stay,
    sign_crossing_receipt,
    traveller_crossings,
)
from registry.crossings.schemas import CrossingView, DocumentView, TravellerView
from registry.models import Crossing, Officer, ProtectionReferral, TravelDocument, Traveller
from registry.node import Node
from registry.outbox import enqueue
from registry.problems import Problem


def _json_ready(value: Any) -> Any:
    """A stored value as its view carries it: ids as text, dates and times in ISO 8601."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


@cache
def _stored_fields(view: type[msgspec.Struct]) -> tuple[str, ...]:
    """The fields of a view Struct that its record stores under the same name: the Struct
    is the one list of them (a new column shown by the API is added there only)."""
    return tuple(name for name in view.__struct_fields__ if name not in _COMPUTED)


# View fields computed here, not read from the record.
_COMPUTED = frozenset({"occurred_at_local", "has_protection_referral", "traveller", "document"})


def _view_of(view: type[msgspec.Struct], record: Any) -> dict[str, Any]:
    return {name: _json_ready(getattr(record, name)) for name in _stored_fields(view)}


def traveller_view(traveller: Traveller) -> dict[str, Any]:
    """A traveller as ``TravellerView`` shows them."""
    return _view_of(TravellerView, traveller)


def document_view(document: TravelDocument) -> dict[str, Any]:
    """A travel document as ``DocumentView`` shows it."""
    return _view_of(DocumentView, document)


def crossing_view(
    node: Node,
    crossing: Crossing,
    traveller: Traveller | None = None,
    document: TravelDocument | None = None,
    *,
    has_referral: bool | None = None,
) -> dict[str, Any]:
    """The JSON shape of a crossing (``CrossingView``); times in UTC plus the post's local
    time. ``has_protection_referral`` is there only when the caller checked it for a role
    that may know (``KNOWS_REFERRALS_EXIST``): its absence says nothing."""
    view = _view_of(CrossingView, crossing)
    view["occurred_at_local"] = crossing.occurred_at.astimezone(node.settings.zone).isoformat()
    if has_referral is not None:
        view["has_protection_referral"] = has_referral
    if traveller is not None:
        view["traveller"] = traveller_view(traveller)
    if document is not None:
        view["document"] = document_view(document)
    return view


# roles that may know whether a crossing has a protection referral (never what it says): the
# desk that attaches one and hands the traveller over, and protection
KNOWS_REFERRALS_EXIST = ("officer", "supervisor", "protection")


async def has_referral(session: AsyncSession, crossing_id: uuid.UUID) -> bool:
    query = select(col(ProtectionReferral.id)).where(
        col(ProtectionReferral.crossing_id) == crossing_id
    )
    return (await session.scalar(query.limit(1))) is not None


async def load_crossing(session: AsyncSession, crossing_id: uuid.UUID) -> Crossing:
    crossing = await session.get(Crossing, crossing_id)
    if crossing is None:
        raise Problem(404, "Not found", field="crossing_id", detail="no crossing has this id")
    return crossing


async def audited_crossing_rows(
    session: AsyncSession,
    *,
    node: Node,
    officer: Officer,
    crossing_id: uuid.UUID,
    purpose: str,
    naming_traveller: bool = False,
) -> tuple[Crossing, Traveller, TravelDocument]:
    """A crossing's row with its traveller's and document's, the read audited as
    ``purpose`` in the caller's session (with the traveller's id in the event's detail if
    ``naming_traveller``); 404 if there is no such crossing."""
    crossing = await load_crossing(session, crossing_id)
    traveller = await session.get(Traveller, crossing.traveller_id)
    document = await session.get(TravelDocument, crossing.document_id)
    await audit(
        session,
        origin=node.settings.node_code,
        officer=officer,
        action="read",
        record_type="crossing",
        record_id=crossing.id,
        purpose=purpose,
        detail={"traveller": str(crossing.traveller_id)} if naming_traveller else None,
    )
    assert traveller is not None and document is not None, "a crossing's rows travel together"
    return crossing, traveller, document


async def read_crossing(
    session: AsyncSession, *, node: Node, officer: Officer, crossing_id: uuid.UUID, purpose: str
) -> dict[str, Any]:
    """One crossing with its traveller and document; the read is audited."""
    crossing, traveller, document = await audited_crossing_rows(
        session,
        node=node,
        officer=officer,
        crossing_id=crossing_id,
        purpose=purpose,
        naming_traveller=True,
    )
    referral = (
        await has_referral(session, crossing.id)
        if officer.role in KNOWS_REFERRALS_EXIST
        else None  # an analyst is not told whether a referral exists
    )
    return crossing_view(node, crossing, traveller, document, has_referral=referral)


async def successor_of(session: AsyncSession, crossing_id: uuid.UUID) -> Crossing | None:
    query = select(Crossing).where(col(Crossing.supersedes) == crossing_id)
    return await session.scalar(query)


STAY_FIELDS = frozenset({"decision", "direction", "occurred_at"})


async def _recompute_stay(
    session: AsyncSession, node: Node, original: Crossing, corrected: Crossing
) -> None:
    """A correction of the decision, direction or time computes the version's stay again,
    from the traveller's crossings before it: an entry corrected to refused opens no stay,
    one corrected from refused opens one; a refused exit closes nothing."""
    traveller = await session.get(Traveller, original.traveller_id)
    assert traveller is not None
    history = [
        c
        for c in await traveller_crossings(session, original.traveller_id)
        if c.id != original.id and c.occurred_at < corrected.occurred_at
    ]
    stay = compute_stay(
        node,
        corrected.direction,
        traveller.nationality,
        history,
        corrected.occurred_at,
        corrected.decision,
    )
    corrected.stay_allowed_until = stay.allowed_until
    corrected.closes_crossing_id = stay.closes
    corrected.overstay_days = stay.overstay


async def correct_crossing(
    session: AsyncSession,
    *,
    node: Node,
    officer: Officer,
    crossing_id: uuid.UUID,
    changes: dict[str, Any],
    reason: str,
) -> Crossing:
    """Write a new version that supersedes the crossing; the original is never touched."""
    original = await load_crossing(session, crossing_id)
    if await successor_of(session, original.id) is not None:
        raise Problem(
            409,
            "Already corrected",
            field="crossing_id",
            detail="this version has been superseded; correct the latest version",
        )
    data = original.model_dump(
        exclude={"id", "receipt", "recorded_at", "version", "supersedes", "correction_reason"}
    )
    data.update({k: v for k, v in changes.items() if v is not None})
    corrected = Crossing(
        **data, version=original.version + 1, supersedes=original.id, correction_reason=reason
    )
    if STAY_FIELDS & {k for k, v in changes.items() if v is not None}:
        await _recompute_stay(session, node, original, corrected)
    document = await session.get(TravelDocument, original.document_id)
    assert document is not None
    corrected.receipt = sign_crossing_receipt(node, corrected, document)
    session.add(corrected)
    await session.flush()
    await enqueue(session, corrected)
    await audit(
        session,
        origin=node.settings.node_code,
        officer=officer,
        action="correct",
        record_type="crossing",
        record_id=corrected.id,
        purpose="correction",
        detail={
            "supersedes": str(original.id),
            "reason": reason,
            "fields": sorted(k for k, v in changes.items() if v is not None),
        },
    )
    return corrected


async def crossing_versions(session: AsyncSession, crossing_id: uuid.UUID) -> list[Crossing]:
    """Every version of a crossing, from the original to the latest."""
    current = await load_crossing(session, crossing_id)
    chain = [current]
    while chain[0].supersedes is not None:
        older = await session.get(Crossing, chain[0].supersedes)
        if older is None:
            break
        chain.insert(0, older)
    while (newer := await successor_of(session, chain[-1].id)) is not None:
        chain.append(newer)
    return chain


async def read_crossing_versions(
    session: AsyncSession, *, node: Node, officer: Officer, crossing_id: uuid.UUID
) -> list[dict[str, Any]]:
    """Every version of a crossing as views, oldest first; the read is audited (purpose
    ``versions``) in the caller's transaction. Raises 404 if there is no such crossing."""
    chain = await crossing_versions(session, crossing_id)
    await audit(
        session,
        origin=node.settings.node_code,
        officer=officer,
        action="read",
        record_type="crossing",
        record_id=crossing_id,
        purpose="versions",
    )
    return [crossing_view(node, c) for c in chain]
