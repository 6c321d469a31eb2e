"""Stays across posts at headquarters: open stays (the latest movement on a document is an
entry) and overstayers as of a day, a stay being closed by an exit at any post on the same
document (issuing state + normalised number). The allowed stay is computed when read, with
the rules in force. Refused crossings neither open nor close a stay. Audited like a search.
"""

from __future__ import annotations

import uuid
from datetime import date
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.crossings.open_stays import allowances, open_entries
from registry.crossings.search import audit_search, may_overstay, views_with_people
from registry.hq.shared import check_page, local_bounds
from registry.models import Crossing, Officer
from registry.node import Node
from registry.stays import overstay_days


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
    entries = await open_entries(
        session, by="document", end=end, screen=screen, with_earlier=overstays_only
    )
    limits = partial(allowances, session, rules=node.stay_rules, zone=zone, by="document", end=end)
    if overstays_only:
        until_of = await limits(entries=entries)
        entries = [e for e in entries if overstay_days(until_of[e.crossing_id], as_of) > 0]
        page = entries[offset : offset + limit]
    else:
        page = entries[offset : offset + limit]
        until_of = await limits(entries=page)
    views = await views_with_people(
        session, node, await _crossings_by_id(session, [e.crossing_id for e in page])
    )
    for view, entry in zip(views, page, strict=True):
        until = until_of[entry.crossing_id]
        view["allowed_until"] = until.isoformat() if until else None
        view["allowed_until_source"] = "computed" if until else "unlimited"
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
