"""Headquarters searches across the crossings of every post: by document; by name and date
of birth; and by post, date, direction, nationality and decision combined, newest first and
paginated. Each search is audited with the records it returned.

Name search on PostgreSQL (national) uses pg_trgm over the trigger-maintained dictionary of
distinct name keys (``traveller_name_key``), or the birth-date index; on SQLite (the HQ pages
of a post) the post-side token filter. Both re-score in Python with ``name_similarity``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date
from functools import cache
from typing import Any

from sqlalchemy import Select, String, bindparam, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.crossings.records import crossing_view, traveller_view
from registry.crossings.registration import current_version_filter
from registry.crossings.search import (
    MAX_RESULTS,
    NAME_QUERY,
    NUMBER_QUERY,
    POST_QUERY,
    audit_search,
    name_candidates,
    query_text,
    travellers_by_id,
    views_with_people,
)
from registry.hq.shared import check_choice, check_page, in_range, is_postgresql, local_bounds
from registry.models import DECISIONS, DIRECTIONS, Crossing, Officer, TravelDocument, Traveller
from registry.names import (
    name_similarity,
    normalise_document_number,
    query_form,
    rank_by_query,
)
from registry.node import Node
from registry.problems import Problem

NAME_CUTOFF = 85.0  # names.names_match's threshold; 80 lets different people through
NAME_KEY_CANDIDATES = 100
DOB_CANDIDATES = 5000


@cache
def _document_query() -> Any:
    """Built once (the statement is the hot path of HQ): parameters are bound per call."""
    return (
        select(Crossing, Traveller, TravelDocument)
        .join(TravelDocument, col(TravelDocument.id) == col(Crossing.document_id))
        .join(Traveller, col(Traveller.id) == col(Crossing.traveller_id))
        .where(
            col(TravelDocument.number_norm) == bindparam("number_norm"),
            col(TravelDocument.issuing_state) == bindparam("issuing_state"),
            current_version_filter(),
        )
        .order_by(col(Crossing.occurred_at).desc(), col(Crossing.id).desc())
        .limit(MAX_RESULTS)
    )


async def hq_search_by_document(
    session: AsyncSession, *, node: Node, officer: Officer, issuing_state: str, number: str
) -> list[dict[str, Any]]:
    """Every current crossing on this document (issuing state + normalised number) at every
    post, newest first, with its traveller record and document; audited like the post search.

    The post-side ``search_by_document`` spans origins too, but loads crossings, travellers
    and documents in three round trips; national answers in one, the document lookup being
    the query HQ runs most.
    """
    number = query_text(number, NUMBER_QUERY, "number")
    number_norm = normalise_document_number(number)
    if not number_norm:
        raise Problem(422, "Invalid document number", field="number")
    wanted = {"number_norm": number_norm, "issuing_state": issuing_state.upper()}
    rows = (await session.execute(_document_query(), wanted)).all()
    query_detail = {"issuing_state": issuing_state, "number": number}
    found = [str(crossing.id) for crossing, _, _ in rows]
    await audit_search(session, node, officer, "document", query_detail, found)
    return [crossing_view(node, crossing, person, doc) for crossing, person, doc in rows]


Scored = list[tuple[float, Traveller]]


def score_names(key: str, candidates: Iterable[Traveller], cutoff: float) -> Scored:
    """Candidates whose ``name_similarity`` with ``key`` reaches ``cutoff``, best first."""
    scores: dict[str, float] = {}
    hits = []
    for traveller in candidates:
        if traveller.name_key not in scores:
            scores[traveller.name_key] = name_similarity(key, traveller.name_key)
        if scores[traveller.name_key] >= cutoff:
            hits.append((scores[traveller.name_key], traveller))
    return sorted(hits, key=lambda hit: (-hit[0], hit[1].origin, str(hit[1].id)))


async def _similar_keys(session: AsyncSession, key: str, cutoff: float) -> list[tuple[str, float]]:
    """Distinct name keys close to ``key`` (PostgreSQL): the pg_trgm ``%`` operator on the
    traveller_name_key dictionary (GIN index ix_traveller_name_key_trgm), re-scored."""
    similarity = func.similarity(text("name_key"), key)
    query = (
        select(text("name_key"))
        .select_from(text("traveller_name_key"))
        .where(text("name_key % :key").bindparams(key=key))
        .order_by(similarity.desc())
        .limit(NAME_KEY_CANDIDATES)
    )
    keys = (await session.scalars(query)).all()
    scored = [(candidate, name_similarity(key, candidate)) for candidate in keys]
    return sorted(
        [(k, score) for k, score in scored if score >= cutoff], key=lambda item: (-item[1], item[0])
    )


async def _travellers_with_keys(
    session: AsyncSession, keys: list[tuple[str, float]], limit: int
) -> Scored:
    """Up to ``limit`` travellers, best key first: at most ``limit`` rows are read per key."""
    if not keys:
        return []
    statement = text(
        "SELECT traveller.* FROM unnest(:keys) WITH ORDINALITY AS wanted(key, position) "
        "CROSS JOIN LATERAL (SELECT * FROM traveller WHERE traveller.name_key = wanted.key "
        "LIMIT :limit) AS traveller ORDER BY wanted.position LIMIT :limit"
    ).bindparams(bindparam("keys", [k for k, _ in keys], type_=ARRAY(String)), limit=limit)
    score = dict(keys)
    found = (await session.scalars(select(Traveller).from_statement(statement))).all()
    return sorted(
        ((score[t.name_key], t) for t in found),
        key=lambda hit: (-hit[0], hit[1].origin, str(hit[1].id)),
    )


async def name_matches(
    session: AsyncSession, key: str, date_of_birth: date | None, *, cutoff: float, limit: int
) -> Scored:
    """Traveller records of every post whose name key scores ``cutoff`` or more with
    ``name_similarity`` against ``key`` (best first, then origin), at most ``limit``.

    PostgreSQL, with a birth date: that date's travellers (btree) whose key is ``%``-similar
    (pg_trgm, similarity >= 0.3). Without one: the distinct keys ``%``-similar to ``key`` from
    the trigger-maintained traveller_name_key dictionary, scored, then their travellers
    (twenty times fewer rows to search than traveller itself). SQLite: the post-side candidate
    filter (same birth date, else any name token of 3+ letters), scored in Python.
    """
    if not is_postgresql(session):
        candidates = await name_candidates(session, query_form(key), date_of_birth)
        found = await travellers_by_id(session, (uuid.UUID(i) for i, _ in candidates))
        return score_names(key, found.values(), cutoff)[:limit]
    if date_of_birth is None:
        keys = await _similar_keys(session, key, cutoff)
        return await _travellers_with_keys(session, keys, limit)
    query = (
        select(Traveller)
        .where(col(Traveller.date_of_birth) == date_of_birth, col(Traveller.name_key).op("%")(key))
        .limit(DOB_CANDIDATES)
    )
    return score_names(key, (await session.scalars(query)).all(), cutoff)[:limit]


async def query_matches(
    session: AsyncSession, form: tuple[str, ...], date_of_birth: date | None, *, limit: int
) -> Scored:
    """Traveller records of every post that answer a name query (``names.query_form``: any
    subset of the names, any order, any folded spelling), best first, at most ``limit``.

    PostgreSQL without a birth date: the distinct keys of the traveller_name_key dictionary
    holding a word close to any query part (pg_trgm ``<%``, GIN index), ranked by
    ``names.rank_by_query``, then their travellers. With a birth date: that day's travellers.
    SQLite (the HQ pages at a post): the post's candidate filter."""
    if not is_postgresql(session) or date_of_birth is not None:
        if is_postgresql(session):
            rows = await session.execute(
                select(col(Traveller.id), col(Traveller.name_key))
                .where(col(Traveller.date_of_birth) == date_of_birth)
                .limit(DOB_CANDIDATES)
            )
            candidates = [(str(row[0]), row[1]) for row in rows]
        else:
            candidates = await name_candidates(session, form, date_of_birth)
        ranked = rank_by_query(form, [key for _, key in candidates], limit=limit)
        chosen = [(uuid.UUID(candidates[i][0]), score) for i, score in ranked]
        found = await travellers_by_id(session, (traveller_id for traveller_id, _ in chosen))
        hits = [(score, found[traveller_id]) for traveller_id, score in chosen]
        return sorted(hits, key=lambda hit: (-hit[0], hit[1].origin, str(hit[1].id)))
    parts = {f"part{i}": part for i, part in enumerate(form)}
    close = " OR ".join(f":{name} <% name_key" for name in parts)
    statement = (
        select(text("name_key"))
        .select_from(text("traveller_name_key"))
        .where(text(f"({close})").bindparams(**parts))
        .limit(NAME_KEY_CANDIDATES * 20)
    )
    keys = list((await session.scalars(statement)).all())
    ranked = rank_by_query(form, keys, limit=NAME_KEY_CANDIDATES)
    return await _travellers_with_keys(session, [(keys[i], score) for i, score in ranked], limit)


async def hq_search_by_name(
    session: AsyncSession,
    *,
    node: Node,
    officer: Officer,
    name: str,
    date_of_birth: date | None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Traveller records of every post whose name is close to ``name`` (transliteration-aware,
    order-independent), optionally born on ``date_of_birth``; best score first."""
    name = query_text(name, NAME_QUERY, "name")
    form = query_form(name)
    if not form:
        raise Problem(422, "Invalid name", field="name", detail="the name has no letters")
    check_page(limit, 0)
    hits = await query_matches(session, form, date_of_birth, limit=limit)
    query = {"name": name, "date_of_birth": date_of_birth.isoformat() if date_of_birth else None}
    await audit_search(session, node, officer, "hq_name", query, [str(t.id) for _, t in hits])
    return [{"score": score, "traveller": traveller_view(t)} for score, t in hits]


@dataclass(frozen=True)
class CrossingFilter:
    """Filters of the cross-post crossing search; dates are local days, both inclusive."""

    date_from: date
    date_to: date
    post: str | None = None
    direction: str | None = None
    nationality: str | None = None
    decision: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "date_from": self.date_from.isoformat(),
            "date_to": self.date_to.isoformat(),
            "post": self.post,
            "direction": self.direction,
            "nationality": self.nationality,
            "decision": self.decision,
        }


def _filtered_crossings(node: Node, filters: CrossingFilter) -> Select[Any]:
    check_choice(filters.direction, DIRECTIONS, "direction")
    check_choice(filters.decision, DECISIONS, "decision")
    start, end = local_bounds(node.settings.zone, filters.date_from, filters.date_to)
    query = select(Crossing).where(*in_range(start, end))
    if filters.post:
        query = query.where(col(Crossing.post) == filters.post)
    if filters.direction:
        query = query.where(col(Crossing.direction) == filters.direction)
    if filters.decision:
        query = query.where(col(Crossing.decision) == filters.decision)
    if filters.nationality:
        query = query.join(Traveller, col(Traveller.id) == col(Crossing.traveller_id)).where(
            col(Traveller.nationality) == filters.nationality.upper()
        )
    return query


async def hq_search_crossings(
    session: AsyncSession,
    *,
    node: Node,
    officer: Officer,
    filters: CrossingFilter,
    limit: int = 100,
    offset: int = 0,
) -> dict[str, Any]:
    """One page of crossings matching every given filter, newest first."""
    if filters.post is not None:
        filters = replace(filters, post=query_text(filters.post, POST_QUERY, "post"))
    check_page(limit, offset)
    query = (
        _filtered_crossings(node, filters)
        .order_by(col(Crossing.occurred_at).desc(), col(Crossing.id).desc())
        .limit(limit + 1)
        .offset(offset)
    )
    crossings = list((await session.scalars(query)).all())
    page = crossings[:limit]
    ids = [str(c.id) for c in page]
    await audit_search(session, node, officer, "hq_crossings", filters.as_dict(), ids)
    return {
        "items": await views_with_people(session, node, page),
        "limit": limit,
        "offset": offset,
        "has_more": len(crossings) > limit,
    }
