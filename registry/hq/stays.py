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
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.crossings.registration import (
    CrossingFacts,
    allowed_until_of,
    current_version_filter,
)
from registry.crossings.search import audit_search, may_overstay, views_with_people
from registry.hq.shared import REFUSED, check_page, local_bounds
from registry.models import Crossing, Officer, TravelDocument, Traveller, UTCDateTime
from registry.node import Node
from registry.stays import StayRules, overstay_days

# Earlier movements read with each open entry in the same pass (``lead`` 1..N): enough to
# compute almost every limit without reading the document's history again.
EARLIER_MOVEMENTS = 4


@dataclass(frozen=True)
class Movement:
    """An admitted movement on a document, as stays are computed from it (``CrossingFacts``)."""

    occurred_at: datetime
    direction: str
    decision: str = "admitted"


@dataclass(frozen=True)
class OpenEntry:
    """An entry that is the latest movement on its document (by issuing state and number),
    with the admitted movements before it on that document, most recent first (at most
    ``EARLIER_MOVEMENTS``; fewer means there are no more)."""

    crossing_id: uuid.UUID
    occurred_at: datetime
    nationality: str
    document_key: tuple[str, str]
    earlier: tuple[Movement, ...] = ()
    direction: str = "entry"
    decision: str = "admitted"


def _document_key() -> Any:
    return (TravelDocument.issuing_state, TravelDocument.number_norm)


async def _open_entries(
    session: AsyncSession, end: datetime, screen: Any = None
) -> list[OpenEntry]:
    """Latest non-refused current crossing per document key before ``end``, when it is an
    entry; with ``screen`` (a condition on ``Traveller.nationality``, the entry's
    ``occurred_at`` and the movement before it, see ``may_overstay``), only those it lets
    through.

    One pass over the crossings (window functions over one ordering); what the outer query
    needs rides through it, so crossing is not read twice. The ``EARLIER_MOVEMENTS``
    movements before each open entry come along (``lead`` in newest-first order), so that
    ``_allowances`` reads the history only of the few documents whose window holds more.
    """
    newest_first = {
        "partition_by": _document_key(),
        "order_by": (col(Crossing.occurred_at).desc(), col(Crossing.id).desc()),
    }
    rank = func.row_number().over(**newest_first)
    earlier = []
    for n in range(1, EARLIER_MOVEMENTS + 1):
        direction = func.lead(col(Crossing.direction), n).over(**newest_first)
        at = func.lead(col(Crossing.occurred_at), n, type_=UTCDateTime()).over(**newest_first)
        earlier += [direction.label(f"earlier_direction_{n}"), at.label(f"earlier_at_{n}")]
    latest = (
        select(
            col(Crossing.id),
            col(Crossing.direction),
            col(Crossing.occurred_at),
            col(Crossing.traveller_id),
            *_document_key(),
            rank.label("rank"),
            *earlier,
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
            *(latest.c[column.name] for column in earlier),
        )
        .join(Traveller, col(Traveller.id) == latest.c.traveller_id)
        .where(latest.c.rank == 1, latest.c.direction == "entry")
        .order_by(latest.c.occurred_at, latest.c.id)
    )
    if screen is not None:

        def earlier_presence(bound: datetime) -> Any:
            return or_(latest.c.earlier_direction_1 == "entry", latest.c.earlier_at_1 >= bound)

        query = query.where(
            screen(Traveller.nationality, latest.c.occurred_at, earlier_presence=earlier_presence)
        )
    rows = (await session.execute(query)).all()
    return [
        OpenEntry(
            r[0],
            r[1],
            r[2],
            (r[3], r[4]),
            tuple(Movement(at, d) for d, at in zip(r[5::2], r[6::2], strict=True) if d),
        )
        for r in rows
    ]


async def _histories(
    session: AsyncSession, keys: Sequence[tuple[str, str]], end: datetime
) -> dict[tuple[str, str], list[Any]]:
    """Current non-refused crossings per document key, oldest first, as rows of the columns
    stays are computed from (``CrossingFacts``).

    Two indexed steps: the documents by number (``ix_document_number``), then their
    crossings by document (``ix_crossing_document``). A join filtered on the key tuple lets
    SQLite walk every crossing by time instead (seconds on a post's year of crossings)."""
    wanted = set(keys)
    document_keys: dict[uuid.UUID, tuple[str, str]] = {}
    numbers = sorted({number for _, number in wanted})
    for chunk in (numbers[i : i + 500] for i in range(0, len(numbers), 500)):
        documents = select(
            col(TravelDocument.id),
            col(TravelDocument.issuing_state),
            col(TravelDocument.number_norm),
        ).where(col(TravelDocument.number_norm).in_(chunk))
        for document_id, state, number in (await session.execute(documents)).all():
            if (state, number) in wanted:
                document_keys[document_id] = (state, number)
    histories: dict[tuple[str, str], list[Any]] = defaultdict(list)
    ids = list(document_keys)
    for id_chunk in (ids[i : i + 500] for i in range(0, len(ids), 500)):
        query = select(
            col(Crossing.id),
            col(Crossing.document_id),
            col(Crossing.occurred_at),
            col(Crossing.direction),
            col(Crossing.decision),
        ).where(
            col(Crossing.document_id).in_(id_chunk),
            col(Crossing.occurred_at) < end,
            col(Crossing.decision) != REFUSED,
            current_version_filter(),
        )
        for crossing in (await session.execute(query)).all():
            histories[document_keys[crossing.document_id]].append(crossing)
    for history in histories.values():
        history.sort(key=lambda c: (c.occurred_at, c.id))
    return histories


async def _allowances(
    session: AsyncSession, node: Node, entries: list[OpenEntry], end: datetime
) -> dict[uuid.UUID, tuple[date | None, str]]:
    """(allowed_until, source) per entry: ``computed`` from the rules in force now over the
    document's history at every post, or ``unlimited`` (never the limit a post recorded at
    entry, which followed the rules of that day)."""
    rules, zone = node.stay_rules, node.settings.zone
    result: dict[uuid.UUID, tuple[date | None, str]] = {}
    unknown: list[OpenEntry] = []
    for entry in entries:
        known = _history_that_counts(entry, rules, zone)
        if known is None:
            unknown.append(entry)
            continue
        until = allowed_until_of(rules, zone, entry.nationality, entry, known)
        result[entry.crossing_id] = (until, "computed" if until else "unlimited")
    keys = sorted({e.document_key for e in unknown})
    histories = await _histories(session, keys, end) if keys else {}
    for entry in unknown:
        history = histories[entry.document_key]
        crossing = next((c for c in history if c.id == entry.crossing_id), None)
        if crossing is None:  # cannot happen: the entry is the latest of its history
            raise LookupError(f"open entry {entry.crossing_id} missing from its history")
        until = allowed_until_of(rules, zone, entry.nationality, crossing, history)
        result[entry.crossing_id] = (until, "computed" if until else "unlimited")
    return result


def _history_that_counts(
    entry: OpenEntry, rules: StayRules, zone: Any
) -> list[CrossingFacts] | None:
    """The movements that decide this entry's limit, oldest first and ending with the entry,
    when the movements read with it hold them all; None when the history must be read.

    Only stays that reach into the rule's window count. Once a movement falls before the
    window, nothing before it can: an earlier stay ended on or before its day (an exit ends
    a stay, an entry closes the one before), so the list starts there."""
    rule = rules.rule_for(entry.nationality)
    if rule.max_days is None:
        return [entry]
    window_start = entry.occurred_at.astimezone(zone).date() - timedelta(days=rule.window_days - 1)
    kept: list[CrossingFacts] = [entry]
    for movement in entry.earlier:
        kept.append(movement)
        if movement.occurred_at.astimezone(zone).date() < window_start:
            return kept[::-1]
    if len(entry.earlier) < EARLIER_MOVEMENTS:  # the document's whole history
        return kept[::-1]
    return None


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
