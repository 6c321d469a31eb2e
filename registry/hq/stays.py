"""Stays across posts at headquarters: open stays (the latest movement on a document is an
entry) and overstayers as of a day, a stay being closed by an exit at any post on the same
document (issuing state + normalised number). The allowed stay is computed when read, with
the rules in force. Refused crossings neither open nor close a stay. Audited like a search.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import partial
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.crossings.registration import allowed_until_of, current_version_filter
from registry.crossings.search import audit_search, may_overstay, views_with_people
from registry.hq.shared import REFUSED, check_page, local_bounds
from registry.models import Crossing, Officer, TravelDocument, Traveller
from registry.node import Node
from registry.stays import overstay_days


@dataclass(frozen=True)
class OpenEntry:
    """An entry that is the latest movement on its document (by issuing state and number)."""

    crossing_id: uuid.UUID
    occurred_at: datetime
    nationality: str
    document_key: tuple[str, str]


def _document_key() -> Any:
    return (TravelDocument.issuing_state, TravelDocument.number_norm)


async def _open_entries(
    session: AsyncSession, end: datetime, screen: Any = None
) -> list[OpenEntry]:
    """Latest non-refused current crossing per document key before ``end``, when it is an
    entry; with ``screen`` (a condition on ``Traveller.nationality`` and the entry's
    ``occurred_at``, see ``may_overstay``), only those it lets through.

    One pass over the crossings (window function); what the outer query needs rides through
    it, so crossing is not read twice.
    """
    rank = func.row_number().over(
        partition_by=_document_key(),
        order_by=(col(Crossing.occurred_at).desc(), col(Crossing.id).desc()),
    )
    latest = (
        select(
            col(Crossing.id),
            col(Crossing.direction),
            col(Crossing.occurred_at),
            col(Crossing.traveller_id),
            *_document_key(),
            rank.label("rank"),
        )
        .join(TravelDocument, col(TravelDocument.id) == col(Crossing.document_id))
        .where(
            col(Crossing.occurred_at) < end,
            col(Crossing.decision) != REFUSED,
            current_version_filter(),
        )
        .subquery()
    )
    query = (
        select(
            latest.c.id,
            latest.c.occurred_at,
            col(Traveller.nationality),
            latest.c.issuing_state,
            latest.c.number_norm,
        )
        .join(Traveller, col(Traveller.id) == latest.c.traveller_id)
        .where(latest.c.rank == 1, latest.c.direction == "entry")
        .order_by(latest.c.occurred_at, latest.c.id)
    )
    if screen is not None:
        query = query.where(screen(Traveller.nationality, latest.c.occurred_at))
    rows = (await session.execute(query)).all()
    return [OpenEntry(r[0], r[1], r[2], (r[3], r[4])) for r in rows]


async def _histories(
    session: AsyncSession, keys: Sequence[tuple[str, str]], end: datetime
) -> dict[tuple[str, str], list[Crossing]]:
    """Current non-refused crossings per document key, oldest first."""
    histories: dict[tuple[str, str], list[Crossing]] = defaultdict(list)
    for chunk in (keys[i : i + 500] for i in range(0, len(keys), 500)):
        query = (
            select(col(TravelDocument.issuing_state), col(TravelDocument.number_norm), Crossing)
            .join(TravelDocument, col(TravelDocument.id) == col(Crossing.document_id))
            .where(
                tuple_(*_document_key()).in_(chunk),
                col(Crossing.occurred_at) < end,
                col(Crossing.decision) != REFUSED,
                current_version_filter(),
            )
            .order_by(col(Crossing.occurred_at), col(Crossing.id))
        )
        for state, number, crossing in (await session.execute(query)).all():
            histories[(state, number)].append(crossing)
    return histories


async def _allowances(
    session: AsyncSession, node: Node, entries: list[OpenEntry], end: datetime
) -> dict[uuid.UUID, tuple[date | None, str]]:
    """(allowed_until, source) per entry: ``computed`` from the rules in force now over the
    document's history at every post, or ``unlimited`` (never the limit a post recorded at
    entry, which followed the rules of that day)."""
    keys = sorted({e.document_key for e in entries})
    histories = await _histories(session, keys, end) if keys else {}
    rules, zone = node.stay_rules, node.settings.zone
    result: dict[uuid.UUID, tuple[date | None, str]] = {}
    for entry in entries:
        history = histories.get(entry.document_key, [])
        crossing = next((c for c in history if c.id == entry.crossing_id), None)
        if crossing is None:  # cannot happen: the entry is the latest of its history
            raise LookupError(f"open entry {entry.crossing_id} missing from its history")
        until = allowed_until_of(rules, zone, entry.nationality, crossing, history)
        result[entry.crossing_id] = (until, "computed" if until else "unlimited")
    return result


async def cross_post_stays(
    session: AsyncSession,
    *,
    node: Node,
    officer: Officer,
    as_of: date,
    overstays_only: bool,
    limit: int = 100,
    offset: int = 0,
) -> dict[str, Any]:
    """Open stays (the latest movement on the document is an entry) as of the end of
    ``as_of``, oldest entry first; with ``overstays_only``, those past their allowed stay.

    A stay is linked by document (issuing state + normalised number), not by traveller record,
    so an entry at one post and an exit at another close it. The allowed stay is computed
    when read, with the rules in force (``node.stay_rules``) for the traveller's nationality
    from the document's earlier stays at every post (``unlimited`` when the rule is, as for
    the country's own citizens by default); the limit a post recorded at entry is not used.
    Refused crossings neither open nor close a stay. This reads every crossing up to
    ``as_of``: a report, not a lookup.
    """
    check_page(limit, offset)
    zone = node.settings.zone
    _, end = local_bounds(zone, as_of, as_of)
    screen = partial(may_overstay, node.stay_rules, zone, as_of) if overstays_only else None
    entries = await _open_entries(session, end, screen)
    if overstays_only:
        allowances = await _allowances(session, node, entries, end)
        entries = [e for e in entries if overstay_days(allowances[e.crossing_id][0], as_of) > 0]
        page = entries[offset : offset + limit]
    else:
        page = entries[offset : offset + limit]
        allowances = await _allowances(session, node, page, end)
    views = await views_with_people(
        session, node, await _crossings_by_id(session, [e.crossing_id for e in page])
    )
    for view, entry in zip(views, page, strict=True):
        until, source = allowances[entry.crossing_id]
        view["allowed_until"] = until.isoformat() if until else None
        view["allowed_until_source"] = source
        view["days_overstayed"] = overstay_days(until, as_of)
    kind = "hq_overstays" if overstays_only else "hq_open_stays"
    query = {"as_of": as_of.isoformat(), "limit": limit, "offset": offset}
    await audit_search(session, node, officer, kind, query, [v["id"] for v in views])
    return {
        "as_of": as_of.isoformat(),
        "total": len(entries),
        "limit": limit,
        "offset": offset,
        "items": views,
    }


async def _crossings_by_id(session: AsyncSession, ids: list[uuid.UUID]) -> list[Crossing]:
    if not ids:
        return []
    rows = {
        c.id: c
        for c in (await session.scalars(select(Crossing).where(col(Crossing.id).in_(ids)))).all()
    }
    return [rows[crossing_id] for crossing_id in ids]
