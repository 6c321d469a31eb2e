"""Searches at a post: by document, by name and date of birth, by date range, a traveller's
history, open stays and overstays. Every search is audited with the records it returned."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache, partial
from typing import Any

from sqlalchemy import String, and_, exists, false, or_, select, true, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from registry.audit import audit
from registry.crossings.open_stays import OpenEntry, allowances
from registry.crossings.records import crossing_view, traveller_view
from registry.crossings.registration import REFUSED, current_version_filter
from registry.models import Crossing, Officer, SupersededCrossing, TravelDocument, Traveller
from registry.names import (
    candidate_patterns,
    normalise_document_number,
    query_form,
    rank_by_query,
)
from registry.node import Node
from registry.problems import Problem, text_refused_problem
from registry.stays import StayRules, overstay_days, stored_nationality_forms
from registry.text import TextRefused, TextRule, clean_text, identifier, person_name

MAX_RESULTS = 500
NAME_QUERY = person_name(200)
NUMBER_QUERY = identifier(40, min_length=1)
POST_QUERY = identifier(32, min_length=1)


def query_text(value: str, rule: TextRule, field: str) -> str:
    """A search term as clean text (``registry.text``): searches are audited with their
    terms, so a term must be storable text, or the search is refused (422) before it runs."""
    try:
        return clean_text(value, rule, field)
    except TextRefused as refused:
        raise text_refused_problem(refused) from refused


NAME_SCORE_CUTOFF = 80.0


async def audit_search(
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


async def views_with_people(
    session: AsyncSession, node: Node, crossings: list[Crossing]
) -> list[dict[str, Any]]:
    if not crossings:
        return []
    people = {
        t.id: t
        for t in (
            await session.scalars(
                select(Traveller).where(col(Traveller.id).in_({c.traveller_id for c in crossings}))
            )
        ).all()
    }
    docs = {
        d.id: d
        for d in (
            await session.scalars(
                select(TravelDocument).where(
                    col(TravelDocument.id).in_({c.document_id for c in crossings})
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
    number = query_text(number, NUMBER_QUERY, "number")
    number_norm = normalise_document_number(number)
    if not number_norm:
        raise Problem(422, "Invalid document number", field="number")
    query = (
        select(Crossing)
        .join(TravelDocument, col(TravelDocument.id) == col(Crossing.document_id))
        .where(
            col(TravelDocument.number_norm) == number_norm,
            col(TravelDocument.issuing_state) == issuing_state.upper(),
            current_version_filter(),
        )
        .order_by(col(Crossing.occurred_at).desc())
        .limit(MAX_RESULTS)
    )
    crossings = list((await session.scalars(query)).all())
    await audit_search(
        session,
        node,
        officer,
        "document",
        {"issuing_state": issuing_state, "number": number},
        [str(c.id) for c in crossings],
    )
    return await views_with_people(session, node, crossings)


@dataclass(frozen=True)
class NameHit:
    traveller: Traveller
    score: float


_TRAVELLER = Traveller.__table__.c  # type: ignore[attr-defined]


async def name_candidates(
    session: AsyncSession, query: tuple[str, ...], date_of_birth: date | None
) -> list[tuple[str, str]]:
    """(traveller id as text, name key) of every traveller who holds a part of the query
    (``names.candidate_patterns``), or was born on ``date_of_birth``: two columns, not whole
    travellers, since a common name part (SEKOU, MOHAMED) matches a large share of them. The
    ids stay text (a Core query, no UUID built per row): only the few ranked first become
    UUIDs (``uuid.UUID(text)``) to load their travellers."""
    statement = select(type_coerce(_TRAVELLER.id, String), _TRAVELLER.name_key)
    if date_of_birth is not None:
        statement = statement.where(_TRAVELLER.date_of_birth == date_of_birth)
    else:
        patterns = candidate_patterns(query)
        statement = statement.where(or_(*[_TRAVELLER.name_key.like(p) for p in patterns]))
    rows = await session.execute(statement.limit(50_000))
    return [(str(row[0]), row[1]) for row in rows]


async def travellers_by_id(
    session: AsyncSession, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, Traveller]:
    wanted = set(ids)
    if not wanted:
        return {}
    query = select(Traveller).where(col(Traveller.id).in_(wanted))
    return {t.id: t for t in await session.scalars(query)}


async def search_by_name(
    session: AsyncSession,
    *,
    node: Node,
    officer: Officer,
    name: str,
    date_of_birth: date | None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Travellers who answer a name query: any subset of their names, in any order, in any
    spelling the name key folds (accents, transliteration variants, Arabic script), best
    first (``names.rank_by_query``); with ``date_of_birth``, only people born that day."""
    name = query_text(name, NAME_QUERY, "name")
    form = query_form(name)
    if not form:
        raise Problem(422, "Invalid name", field="name", detail="the name has no letters")
    candidates = await name_candidates(session, form, date_of_birth)
    ranked = rank_by_query(form, [key for _, key in candidates], limit=min(limit, MAX_RESULTS))
    chosen = [(uuid.UUID(candidates[index][0]), score) for index, score in ranked]
    travellers = await travellers_by_id(session, {traveller_id for traveller_id, _ in chosen})
    hits = [NameHit(travellers[traveller_id], score) for traveller_id, score in chosen]
    await audit_search(
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
        .order_by(col(Crossing.occurred_at).desc())
        .limit(min(limit, MAX_RESULTS))
        .offset(offset)
    )
    crossings = list((await session.scalars(query)).all())
    await audit_search(
        session,
        node,
        officer,
        "range",
        {"since": since.isoformat(), "until": until.isoformat(), "direction": direction},
        [str(c.id) for c in crossings],
    )
    return await views_with_people(session, node, crossings)


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
        .where(col(Crossing.traveller_id) == traveller_id, current_version_filter())
        .order_by(col(Crossing.occurred_at))
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
    views = await views_with_people(session, node, crossings)
    return {"traveller": traveller_view(traveller), "crossings": views}


def _movements_of_the_same_traveller(other: Any, after: bool) -> tuple[Any, ...]:
    """Conditions on ``other`` (an alias of crossing): an admitted, current crossing of the
    entry's traveller record, after it (``after``) or before it."""
    superseded = aliased(SupersededCrossing)
    when = col(other.occurred_at)
    return (
        col(other.traveller_id) == col(Crossing.traveller_id),
        when > col(Crossing.occurred_at) if after else when < col(Crossing.occurred_at),
        col(other.decision) != REFUSED,  # a refused crossing neither opens nor closes a stay
        ~exists().where(col(superseded.id) == col(other.id)),
    )


@cache
def _open_entry_condition() -> Any:
    """An admitted, current entry with no admitted, current crossing of the same traveller
    record after it."""
    return and_(
        col(Crossing.direction) == "entry",
        col(Crossing.decision) != REFUSED,  # a refused entry opened no stay
        current_version_filter(),
        ~exists().where(*_movements_of_the_same_traveller(aliased(Crossing), after=True)),
    )


def _earlier_presence(bound: datetime) -> Any:
    """``may_overstay``'s ``earlier_presence`` for an open entry read by the indexed lookup
    (``ix_crossing_traveller``): an admitted, current movement of the same traveller record
    on or after ``bound`` and before the entry, or an earlier stay still open at the entry
    (the movement just before it is an entry)."""
    earlier = aliased(Crossing)
    same_and_before = _movements_of_the_same_traveller(earlier, after=False)
    previous = (
        select(col(earlier.direction))
        .where(*same_and_before)
        .order_by(col(earlier.occurred_at).desc())
        .limit(1)
        .scalar_subquery()
    )
    recent = exists().where(*same_and_before, col(earlier.occurred_at) >= bound)
    return or_(previous == "entry", recent)


async def _oldest_open_entries(
    session: AsyncSession,
    limit: int,
    *,
    screen: Callable[..., Any] | None = None,
    after: tuple[datetime, uuid.UUID] | None = None,
) -> list[OpenEntry]:
    """The ``limit`` oldest open entries at this post (by traveller record), after the
    ``(occurred_at, id)`` cursor ``after``, without their earlier movements (``allowances``
    reads the histories of these few); with ``screen`` (``may_overstay`` without its
    ``earlier_presence``), only those it lets through. Every step is an indexed lookup that
    stops at ``limit``: no pass over every crossing."""
    query = (
        select(
            col(Crossing.id),
            col(Crossing.occurred_at),
            col(Traveller.nationality),
            col(Crossing.traveller_id),
        )
        .join(Traveller, col(Traveller.id) == col(Crossing.traveller_id))
        .where(_open_entry_condition())
        .order_by(col(Crossing.occurred_at), col(Crossing.id))
        .limit(limit)
    )
    if screen is not None:
        query = query.where(
            screen(
                col(Traveller.nationality),
                col(Crossing.occurred_at),
                earlier_presence=_earlier_presence,
            )
        )
    if after is not None:
        at, crossing_id = after
        query = query.where(
            or_(
                col(Crossing.occurred_at) > at,
                and_(col(Crossing.occurred_at) == at, col(Crossing.id) > crossing_id),
            )
        )
    return [OpenEntry(*row) for row in (await session.execute(query)).all()]


async def _oldest_overstays(
    session: AsyncSession, *, rules: StayRules, zone: Any, as_of: date, limit: int
) -> tuple[list[OpenEntry], dict[uuid.UUID, date | None]]:
    """The ``limit`` oldest open entries at this post that are past their limit at the end
    of ``as_of``, with every limit: screened candidates are read oldest first, a page at a
    time, until ``limit`` overstays are found. Almost every candidate is one (an entry older
    than its nationality's longest stay, or one with earlier days counting against it), so
    a post with many overstayers stops after the first page, and one with few reads only
    its candidates, never every crossing."""
    screen = partial(may_overstay, rules, zone, as_of)
    found: list[OpenEntry] = []
    limits: dict[uuid.UUID, date | None] = {}
    after: tuple[datetime, uuid.UUID] | None = None
    while len(found) < limit:
        page = await _oldest_open_entries(session, limit, screen=screen, after=after)
        if not page:
            break
        page_limits = await allowances(
            session, rules=rules, zone=zone, by="traveller", entries=page
        )
        for entry in page:
            if overstay_days(page_limits[entry.crossing_id], as_of) > 0:
                found.append(entry)
                limits[entry.crossing_id] = page_limits[entry.crossing_id]
        last = page[-1]
        after = (last.occurred_at, last.crossing_id)
    return found[:limit], limits


def may_overstay(
    rules: StayRules,
    zone: Any,
    as_of: date,
    nationality: Any,
    occurred_at: Any,
    *,
    earlier_presence: Callable[[datetime], Any],
) -> Any:
    """SQL screen for entries that can be past their limit at the end of ``as_of`` under
    ``rules``; unlimited nationalities (the node's citizens, by default) never are. The
    limit itself is then computed for each candidate (``allowed_until_of``).

    With nothing earlier in its window a stay's limit ends ``max_days - 1`` days after its
    entry day, so such an entry can be past it only when at least ``max_days`` days old. A
    more recent entry can be past it only when earlier days count against it (a traveller
    who re-enters with the allowance used up overstays from the first day):
    ``earlier_presence(bound)`` is the caller's condition "earlier movements on or after
    ``bound``, or an earlier stay still open at the entry", and ``bound`` is the first day
    of the earliest window such a recent entry can have."""

    def day_start(day: date) -> datetime:
        return datetime.combine(day, time(), zone).astimezone(UTC)

    def screen(max_days: int, window_days: int) -> Any:
        entered_by = occurred_at < day_start(as_of - timedelta(days=max_days - 1))
        bound = day_start(as_of - timedelta(days=max_days + window_days))
        return or_(entered_by, earlier_presence(bound))

    conditions: list[Any] = []
    named: list[str] = []
    for code, rule in rules.by_nationality.items():
        forms = stored_nationality_forms(code)
        named.extend(forms)
        if rule.max_days is not None:
            conditions.append(and_(nationality.in_(forms), screen(rule.max_days, rule.window_days)))
    if rules.citizens is not None and rules.citizens not in rules.by_nationality:
        named.extend(stored_nationality_forms(rules.citizens))
    default = rules.default
    if default.max_days is not None:
        others = nationality.not_in(named) if named else true()
        conditions.append(and_(others, screen(default.max_days, default.window_days)))
    return or_(*conditions) if conditions else false()


async def open_stays(
    session: AsyncSession,
    *,
    node: Node,
    officer: Officer,
    as_of: date,
    overstays_only: bool,
) -> list[dict[str, Any]]:
    """Entries with nothing recorded after them; with overstays_only, those past their limit.

    Each view's ``allowed_until`` is computed from the rules in force now (not the limit
    recorded at entry) over the traveller's earlier stays at this post; ``None`` is
    unlimited.
    """
    rules, zone = node.stay_rules, node.settings.zone
    if overstays_only:  # screened candidates, oldest first, until MAX_RESULTS overstays
        entries, limits = await _oldest_overstays(
            session, rules=rules, zone=zone, as_of=as_of, limit=MAX_RESULTS
        )
    else:  # the oldest open entries only: an indexed lookup that stops at MAX_RESULTS
        entries = await _oldest_open_entries(session, MAX_RESULTS)
        limits = await allowances(session, rules=rules, zone=zone, by="traveller", entries=entries)
    chosen = [
        entry.crossing_id
        for entry in entries
        if not overstays_only or overstay_days(limits[entry.crossing_id], as_of) > 0
    ][:MAX_RESULTS]
    loaded = (
        {
            c.id: c
            for c in await session.scalars(select(Crossing).where(col(Crossing.id).in_(chosen)))
        }
        if chosen
        else {}
    )
    crossings = [loaded[i] for i in chosen]
    await audit_search(
        session,
        node,
        officer,
        "overstays" if overstays_only else "open_stays",
        {"as_of": as_of.isoformat()},
        [str(c.id) for c in crossings],
    )
    views = await views_with_people(session, node, crossings)
    for view, crossing in zip(views, crossings, strict=True):
        until = limits[crossing.id]
        view["allowed_until"] = until.isoformat() if until else None
        view["days_overstayed"] = overstay_days(until, as_of)
    return views
