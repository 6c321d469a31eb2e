"""Searches at a post: by document, by name and date of birth, by date range, a traveller's
history, open stays and overstays. Every search is audited with the records it returned."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any

from rapidfuzz import fuzz, process
from sqlalchemy import and_, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from registry.audit import audit
from registry.models import Crossing, Officer, SupersededCrossing, TravelDocument, Traveller
from registry.names import name_key, normalise_document_number
from registry.node import Node
from registry.problems import Problem
from registry.services.crossings import crossing_view, traveller_view
from registry.services.registration import current_version_filter

MAX_RESULTS = 500
NAME_SCORE_CUTOFF = 80.0


async def _audit_search(
    session: AsyncSession,
    node: Node,
    officer: Officer,
    kind: str,
    query: dict[str, Any],
    results: list[str],
) -> None:
    await audit(
        session,
        origin=node.settings.node_code,
        officer=officer,
        action="search",
        record_type=kind,
        record_id=f"search:{kind}",
        purpose="search",
        detail={"query": query, "results": results},
    )


async def _views_with_people(
    session: AsyncSession, node: Node, crossings: list[Crossing]
) -> list[dict[str, Any]]:
    if not crossings:
        return []
    people = {
        t.id: t
        for t in (
            await session.scalars(
                select(Traveller).where(Traveller.id.in_({c.traveller_id for c in crossings}))
            )
        ).all()
    }
    docs = {
        d.id: d
        for d in (
            await session.scalars(
                select(TravelDocument).where(
                    TravelDocument.id.in_({c.document_id for c in crossings})
                )
            )
        ).all()
    }
    return [
        crossing_view(node, c, people.get(c.traveller_id), docs.get(c.document_id))
        for c in crossings
    ]


async def search_by_document(
    session: AsyncSession,
    *,
    node: Node,
    officer: Officer,
    issuing_state: str,
    number: str,
) -> list[dict[str, Any]]:
    """Crossings made on this document (exact, on the normalised number)."""
    number_norm = normalise_document_number(number)
    if not number_norm:
        raise Problem(422, "Invalid document number", field="number")
    query = (
        select(Crossing)
        .join(TravelDocument, TravelDocument.id == Crossing.document_id)
        .where(
            TravelDocument.number_norm == number_norm,
            TravelDocument.issuing_state == issuing_state.upper(),
            current_version_filter(),
        )
        .order_by(Crossing.occurred_at.desc())
        .limit(MAX_RESULTS)
    )
    crossings = list((await session.scalars(query)).all())
    await _audit_search(
        session,
        node,
        officer,
        "document",
        {"issuing_state": issuing_state, "number": number},
        [str(c.id) for c in crossings],
    )
    return await _views_with_people(session, node, crossings)


@dataclass(frozen=True)
class NameHit:
    traveller: Traveller
    score: float


async def _name_candidates(
    session: AsyncSession, key: str, date_of_birth: date | None
) -> list[Traveller]:
    query = select(Traveller)
    if date_of_birth is not None:
        query = query.where(Traveller.date_of_birth == date_of_birth)
    else:
        tokens = [t for t in key.split() if len(t) >= 3] or key.split()
        query = query.where(or_(*[Traveller.name_key.contains(t) for t in tokens]))
    return list((await session.scalars(query.limit(50_000))).all())


async def search_by_name(
    session: AsyncSession,
    *,
    node: Node,
    officer: Officer,
    name: str,
    date_of_birth: date | None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Travellers whose normalised name is close to the query (transliteration-aware)."""
    key = name_key(name, "")
    if not key:
        raise Problem(422, "Invalid name", field="name", detail="the name has no letters")
    candidates = await _name_candidates(session, key, date_of_birth)
    scored = process.extract(
        key,
        [c.name_key for c in candidates],
        scorer=fuzz.token_sort_ratio,
        score_cutoff=NAME_SCORE_CUTOFF,
        limit=min(limit, MAX_RESULTS),
    )
    hits = [NameHit(candidates[index], score) for _, score, index in scored]
    await _audit_search(
        session,
        node,
        officer,
        "name",
        {"name": name, "date_of_birth": str(date_of_birth) if date_of_birth else None},
        [str(h.traveller.id) for h in hits],
    )
    return [{"score": round(h.score, 1), "traveller": traveller_view(h.traveller)} for h in hits]


async def search_crossings(
    session: AsyncSession,
    *,
    node: Node,
    officer: Officer,
    since: datetime,
    until: datetime,
    direction: str | None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Crossings in a time range, newest first, optionally one direction."""
    if until <= since:
        raise Problem(422, "Invalid range", field="until", detail="until must be after since")
    conditions = [
        Crossing.occurred_at >= since,
        Crossing.occurred_at < until,
        current_version_filter(),
    ]
    if direction is not None:
        conditions.append(Crossing.direction == direction)
    query = (
        select(Crossing)
        .where(*conditions)
        .order_by(Crossing.occurred_at.desc())
        .limit(min(limit, MAX_RESULTS))
        .offset(offset)
    )
    crossings = list((await session.scalars(query)).all())
    await _audit_search(
        session,
        node,
        officer,
        "range",
        {"since": since.isoformat(), "until": until.isoformat(), "direction": direction},
        [str(c.id) for c in crossings],
    )
    return await _views_with_people(session, node, crossings)


async def traveller_history(
    session: AsyncSession,
    *,
    node: Node,
    officer: Officer,
    traveller_id: uuid.UUID,
) -> dict[str, Any]:
    """A traveller and all current versions of their crossings, oldest first."""
    traveller = await session.get(Traveller, traveller_id)
    if traveller is None:
        raise Problem(404, "Not found", field="traveller_id", detail="no traveller has this id")
    query = (
        select(Crossing)
        .where(Crossing.traveller_id == traveller_id, current_version_filter())
        .order_by(Crossing.occurred_at)
    )
    crossings = list((await session.scalars(query)).all())
    await audit(
        session,
        origin=node.settings.node_code,
        officer=officer,
        action="read",
        record_type="traveller",
        record_id=traveller.id,
        purpose="history",
        detail={"crossings": [str(c.id) for c in crossings]},
    )
    views = await _views_with_people(session, node, crossings)
    return {"traveller": traveller_view(traveller), "crossings": views}


@cache
def _open_entry_condition() -> Any:
    later_exit = aliased(Crossing)
    superseded = aliased(SupersededCrossing)
    return and_(
        Crossing.direction == "entry",
        current_version_filter(),
        ~exists().where(
            later_exit.traveller_id == Crossing.traveller_id,
            later_exit.occurred_at > Crossing.occurred_at,
            ~exists().where(superseded.id == later_exit.id),
        ),
    )


async def open_stays(
    session: AsyncSession,
    *,
    node: Node,
    officer: Officer,
    as_of: date,
    overstays_only: bool,
) -> list[dict[str, Any]]:
    """Entries with nothing recorded after them; with overstays_only, those past their limit."""
    conditions = [_open_entry_condition()]
    if overstays_only:
        conditions.append(Crossing.stay_allowed_until < as_of)
    query = select(Crossing).where(*conditions).order_by(Crossing.occurred_at).limit(MAX_RESULTS)
    crossings = list((await session.scalars(query)).all())
    await _audit_search(
        session,
        node,
        officer,
        "overstays" if overstays_only else "open_stays",
        {"as_of": as_of.isoformat()},
        [str(c.id) for c in crossings],
    )
    views = await _views_with_people(session, node, crossings)
    for view in views:
        until = view["stay_allowed_until"]
        view["days_overstayed"] = max(0, (as_of - date.fromisoformat(until)).days) if until else 0
    return views
