"""Open stays, computed in one pass: the entries that are the latest admitted movement of
their group, and the limit of each under the rules in force when read.

A group is a document (issuing state + normalised number, across every post: HQ's stays)
or a traveller record (a post's own stays). ``open_entries`` reads them with window
functions in one pass over the crossings, each with the few movements before it;
``allowances`` computes each limit from those movements, and reads a group's whole history
only when its window holds more. Refused crossings neither open nor close a stay. The SQL
screen for overstays is ``registry.crossings.search.may_overstay``.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.crossings.registration import (
    REFUSED,
    CrossingFacts,
    allowed_until_of,
    current_version_filter,
)
from registry.models import Crossing, TravelDocument, Traveller, UTCDateTime
from registry.stays import StayRules

# Earlier movements read with each open entry in the same pass (``lead`` 1..N): enough to
# compute almost every limit without reading the document's history again.
EARLIER_MOVEMENTS = 4


@dataclass(frozen=True)
class Movement:
    """An admitted movement, as stays are computed from it (``CrossingFacts``)."""

    occurred_at: datetime
    direction: str
    decision: str = "admitted"


@dataclass(frozen=True)
class OpenEntry:
    """An entry that is the latest admitted movement of its group (a document by issuing
    state and number, or a traveller record), with the admitted movements before it in the
    group, most recent first (at most ``EARLIER_MOVEMENTS``; fewer means there are no more;
    None when they were not read)."""

    crossing_id: uuid.UUID
    occurred_at: datetime
    nationality: str
    group: Any  # (issuing state, number) or a traveller id
    earlier: tuple[Movement, ...] | None = None
    direction: str = "entry"
    decision: str = "admitted"


Grouping = Literal["document", "traveller"]


def _group_columns(by: Grouping) -> tuple[Any, ...]:
    if by == "document":
        return (col(TravelDocument.issuing_state), col(TravelDocument.number_norm))
    return (col(Crossing.traveller_id),)


async def open_entries(
    session: AsyncSession,
    *,
    by: Grouping,
    end: datetime | None = None,
    screen: Any = None,
    limit: int | None = None,
    with_earlier: bool = True,
) -> list[OpenEntry]:
    """Entries that are the latest admitted (non-refused, current) crossing of their group
    before ``end`` (no bound when None), oldest first: ``by="document"`` groups by document
    (issuing state + normalised number) across every post, ``by="traveller"`` by traveller
    record. With ``screen`` (``may_overstay`` without its ``earlier_presence``), only those
    it lets through; with ``limit``, at most that many. ``with_earlier=False`` leaves out
    the earlier movements (a listing that computes few limits: they are read by
    ``allowances`` from the histories); a screen always reads them.

    One pass over the crossings (window functions over one ordering); what the outer query
    needs rides through it, so crossing is not read twice. The ``EARLIER_MOVEMENTS``
    movements before each open entry come along (``lead`` in newest-first order), so that
    ``allowances`` reads the history only of the few groups whose window holds more.
    """
    group = _group_columns(by)
    newest_first: dict[str, Any] = {
        "partition_by": group,
        "order_by": (col(Crossing.occurred_at).desc(), col(Crossing.id).desc()),
    }
    rank = func.row_number().over(**newest_first)
    earlier = []
    leads = EARLIER_MOVEMENTS if with_earlier or screen is not None else 0
    for n in range(1, leads + 1):
        direction = func.lead(col(Crossing.direction), n).over(**newest_first)
        at = func.lead(col(Crossing.occurred_at), n, type_=UTCDateTime()).over(**newest_first)
        earlier += [direction.label(f"earlier_direction_{n}"), at.label(f"earlier_at_{n}")]
    crossings = select(
        col(Crossing.id),
        col(Crossing.direction),
        col(Crossing.occurred_at),
        *(g.label(f"group_{n}") for n, g in enumerate(group)),
        col(Crossing.traveller_id).label("entry_traveller_id"),
        rank.label("rank"),
        *earlier,
    ).where(col(Crossing.decision) != REFUSED, current_version_filter())
    if by == "document":
        crossings = crossings.join(
            TravelDocument, col(TravelDocument.id) == col(Crossing.document_id)
        )
    if end is not None:
        crossings = crossings.where(col(Crossing.occurred_at) < end)
    latest = crossings.subquery()
    query = (
        select(
            latest.c.id,
            latest.c.occurred_at,
            col(Traveller.nationality),
            *(latest.c[f"group_{n}"] for n in range(len(group))),
            *(latest.c[column.name] for column in earlier),
        )
        .join(Traveller, col(Traveller.id) == latest.c.entry_traveller_id)
        .where(latest.c.rank == 1, latest.c.direction == "entry")
        .order_by(latest.c.occurred_at, latest.c.id)
    )
    if screen is not None:

        def earlier_presence(bound: datetime) -> Any:
            return or_(latest.c.earlier_direction_1 == "entry", latest.c.earlier_at_1 >= bound)

        query = query.where(
            screen(Traveller.nationality, latest.c.occurred_at, earlier_presence=earlier_presence)
        )
    if limit is not None:
        query = query.limit(limit)
    rows = (await session.execute(query)).all()
    width = len(group)
    return [
        OpenEntry(
            r[0],
            r[1],
            r[2],
            tuple(r[3 : 3 + width]) if width > 1 else r[3],
            tuple(
                Movement(at, d)
                for d, at in zip(r[3 + width :: 2], r[4 + width :: 2], strict=True)
                if d
            )
            if leads
            else None,
        )
        for r in rows
    ]


async def _histories(
    session: AsyncSession, by: Grouping, keys: Sequence[Any], end: datetime | None
) -> dict[Any, list[Any]]:
    """Current admitted crossings per group, oldest first (``CrossingFacts`` rows)."""
    if by == "document":
        return await _document_histories(session, keys, end)
    histories: dict[Any, list[Any]] = defaultdict(list)
    ids = list(keys)
    for chunk in (ids[i : i + 500] for i in range(0, len(ids), 500)):
        query = select(
            col(Crossing.id),
            col(Crossing.traveller_id),
            col(Crossing.occurred_at),
            col(Crossing.direction),
            col(Crossing.decision),
        ).where(
            col(Crossing.traveller_id).in_(chunk),
            col(Crossing.decision) != REFUSED,
            current_version_filter(),
        )
        if end is not None:
            query = query.where(col(Crossing.occurred_at) < end)
        for crossing in (await session.execute(query)).all():
            histories[crossing.traveller_id].append(crossing)
    for history in histories.values():
        history.sort(key=lambda c: (c.occurred_at, c.id))
    return histories


async def _document_histories(
    session: AsyncSession, keys: Sequence[tuple[str, str]], end: datetime | None
) -> dict[Any, list[Any]]:
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
    histories: dict[Any, list[Any]] = defaultdict(list)
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
            col(Crossing.decision) != REFUSED,
            current_version_filter(),
        )
        if end is not None:
            query = query.where(col(Crossing.occurred_at) < end)
        for crossing in (await session.execute(query)).all():
            histories[document_keys[crossing.document_id]].append(crossing)
    for history in histories.values():
        history.sort(key=lambda c: (c.occurred_at, c.id))
    return histories


async def allowances(
    session: AsyncSession,
    *,
    rules: StayRules,
    zone: Any,
    by: Grouping,
    entries: list[OpenEntry],
    end: datetime | None = None,
) -> dict[uuid.UUID, date | None]:
    """The limit of each open entry's stay (None: unlimited), from the rules given (those in
    force when read, never the limit recorded at entry) over its group's earlier stays."""
    result: dict[uuid.UUID, date | None] = {}
    unknown: list[OpenEntry] = []
    for entry in entries:
        known = _history_that_counts(entry, rules, zone)
        if known is None:
            unknown.append(entry)
            continue
        result[entry.crossing_id] = allowed_until_of(rules, zone, entry.nationality, entry, known)
    keys = sorted({e.group for e in unknown})
    histories = await _histories(session, by, keys, end) if keys else {}
    for entry in unknown:
        history = histories[entry.group]
        crossing = next((c for c in history if c.id == entry.crossing_id), None)
        if crossing is None:  # cannot happen: the entry is the latest of its history
            raise LookupError(f"open entry {entry.crossing_id} missing from its history")
        result[entry.crossing_id] = allowed_until_of(
            rules, zone, entry.nationality, crossing, history
        )
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
    if entry.earlier is None:  # not read with the entry
        return None
    window_start = entry.occurred_at.astimezone(zone).date() - timedelta(days=rule.window_days - 1)
    kept: list[CrossingFacts] = [entry]
    for movement in entry.earlier:
        kept.append(movement)
        if movement.occurred_at.astimezone(zone).date() < window_start:
            return kept[::-1]
    if len(entry.earlier) < EARLIER_MOVEMENTS:  # the group's whole history
        return kept[::-1]
    return None
