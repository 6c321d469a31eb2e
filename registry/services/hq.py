"""Headquarters queries on the national node, across the crossings of every post.

- searches: by document; by name and date of birth (PostgreSQL: pg_trgm over the dictionary
  of distinct name keys, or the birth-date index; SQLite: the post-side token filter; re-scored
  in Python with ``name_similarity`` on both); by post/date/direction/nationality/decision,
  newest first and paginated;
- a person's timeline over the traveller records LINKED to it (same document, close face, or
  same date of birth and a close name), each with its evidence: records are never merged;
- statistics (flows per post and period, net flow, nationality/sex/age band, alerts);
- open stays and overstayers, with stays closed across posts by the document;
- ``ensure_month_partitions``, which adds the monthly crossing partitions ahead of time.

Only current versions of crossings count. Refused crossings are not movements: they are
counted apart (``refused``) and neither open nor close a stay. Dates are days in the national
node's time zone (``settings.timezone``): PostgreSQL buckets with ``date_trunc`` on
``occurred_at AT TIME ZONE tz``; SQLite fetches the matching rows and buckets them in Python
with the same zone rules (exact, daylight saving included; fine for post-sized data).
Every read of personal data is audited, statistics included (small cells identify people).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import cache, partial
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import (
    Date,
    Select,
    String,
    bindparam,
    case,
    cast,
    func,
    select,
    text,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from registry.audit import audit
from registry.crossings.records import crossing_view, traveller_view
from registry.crossings.registration import age_on, allowed_until_of, current_version_filter
from registry.crossings.search import (
    MAX_RESULTS,
    NAME_QUERY,
    NUMBER_QUERY,
    POST_QUERY,
    _audit_search,
    _name_candidates,
    _views_with_people,
    may_overstay,
    query_text,
    travellers_by_id,
)
from registry.models import (
    DECISIONS,
    DIRECTIONS,
    Alert,
    AlertAdjudication,
    Crossing,
    Officer,
    Photo,
    TravelDocument,
    Traveller,
)
from registry.names import name_key, name_similarity, normalise_document_number
from registry.node import Node
from registry.problems import Problem
from registry.stays import overstay_days
from registry.watchlists import template_vector

PERIODS = ("day", "week", "month")
AGE_BANDS: tuple[tuple[int, str], ...] = ((18, "0-17"), (30, "18-29"), (45, "30-44"), (60, "45-59"))
OLDEST_BAND = "60+"
UNKNOWN_BAND = "unknown"
NAME_CUTOFF = 85.0  # names.names_match's threshold; 80 lets different people through
NAME_LINK_THRESHOLD = 90.0
NAME_KEY_CANDIDATES = 100
DOB_CANDIDATES = 5000
FACE_NAME_CANDIDATES = 1000
REFUSED = "refused"
PARTITION_LOCK = 7214002
DEFAULT_PARTITION = "crossing_default"
FLOW_COLUMNS = ("post", "period_start", "entries", "exits", "refused", "net")
NET_FLOW_COLUMNS = ("post", "period_start", "net")
DEMOGRAPHIC_COLUMNS = ("nationality", "sex", "age_band", "entries", "exits", "refused")
ALERT_COLUMNS = ("post", "evidence", "raised", "confirmed", "dismissed", "pending")


# ============================================================================ small helpers
def is_postgresql(session: AsyncSession) -> bool:
    return session.bind.dialect.name == "postgresql"


def local_bounds(zone: ZoneInfo, date_from: date, date_to: date) -> tuple[datetime, datetime]:
    """UTC instants of the start of ``date_from`` and the end of ``date_to`` (local days)."""
    if date_to < date_from:
        raise Problem(422, "Invalid range", field="date_to", detail="date_to is before date_from")
    start = datetime.combine(date_from, time(), zone).astimezone(UTC)
    end = datetime.combine(date_to + timedelta(days=1), time(), zone).astimezone(UTC)
    return start, end


def period_start(day: date, period: str) -> date:
    """The first day of the day/week (ISO, Monday)/month bucket holding ``day``."""
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day


def age_band(date_of_birth: date | None, day: date) -> str:
    """0-17, 18-29, 30-44, 45-59 or 60+ on ``day``; ``unknown`` without a birth date."""
    if date_of_birth is None:
        return UNKNOWN_BAND
    age = age_on(date_of_birth, day)
    return next((band for limit, band in AGE_BANDS if age < limit), OLDEST_BAND)


def _band_order(band: str) -> int:
    names = [band for _, band in AGE_BANDS] + [OLDEST_BAND, UNKNOWN_BAND]
    return names.index(band)


def _check_choice(value: str | None, choices: Sequence[str], name: str) -> None:
    if value is not None and value not in choices:
        raise Problem(422, f"Invalid {name}", field=name, detail=f"{name} must be one of {choices}")


def _check_page(limit: int, offset: int) -> None:
    if not 1 <= limit <= MAX_RESULTS:
        raise Problem(422, "Invalid limit", field="limit", detail=f"1 to {MAX_RESULTS}")
    if offset < 0:
        raise Problem(422, "Invalid offset", field="offset", detail="offset must be >= 0")


def _in_range(start: datetime, end: datetime) -> list[Any]:
    return [Crossing.occurred_at >= start, Crossing.occurred_at < end, current_version_filter()]


@dataclass(frozen=True)
class StatTable:
    """One statistic: its column names, rows (JSON-safe values) and the query it answers."""

    name: str
    columns: tuple[str, ...]
    rows: list[dict[str, Any]]
    parameters: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "statistic": self.name,
            **self.parameters,
            "columns": list(self.columns),
            "rows": self.rows,
        }


async def _audit_statistic(
    session: AsyncSession, node: Node, officer: Officer, table: StatTable
) -> None:
    await audit(
        session,
        origin=node.settings.node_code,
        officer=officer,
        action="statistics",
        record_type="statistic",
        record_id=f"statistic:{table.name}",
        purpose="statistics",
        detail={"query": table.parameters, "rows": len(table.rows)},
    )


# ============================================================================ searches
@cache
def _document_query() -> Any:
    """Built once (the statement is the hot path of HQ): parameters are bound per call."""
    return (
        select(Crossing, Traveller, TravelDocument)
        .join(TravelDocument, TravelDocument.id == Crossing.document_id)
        .join(Traveller, Traveller.id == Crossing.traveller_id)
        .where(
            TravelDocument.number_norm == bindparam("number_norm"),
            TravelDocument.issuing_state == bindparam("issuing_state"),
            current_version_filter(),
        )
        .order_by(Crossing.occurred_at.desc(), Crossing.id.desc())
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
    await _audit_search(session, node, officer, "document", query_detail, found)
    return [crossing_view(node, crossing, person, doc) for crossing, person, doc in rows]


Scored = list[tuple[float, Traveller]]


def _scored(key: str, candidates: Iterable[Traveller], cutoff: float) -> Scored:
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
        candidates = await _name_candidates(session, key, date_of_birth)
        found = await travellers_by_id(session, (i for i, _ in candidates))
        return _scored(key, found.values(), cutoff)[:limit]
    if date_of_birth is None:
        keys = await _similar_keys(session, key, cutoff)
        return await _travellers_with_keys(session, keys, limit)
    query = (
        select(Traveller)
        .where(Traveller.date_of_birth == date_of_birth, Traveller.name_key.op("%")(key))
        .limit(DOB_CANDIDATES)
    )
    return _scored(key, (await session.scalars(query)).all(), cutoff)[:limit]


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
    key = name_key(name, "")
    if not key:
        raise Problem(422, "Invalid name", field="name", detail="the name has no letters")
    _check_page(limit, 0)
    hits = await name_matches(session, key, date_of_birth, cutoff=NAME_CUTOFF, limit=limit)
    query = {"name": name, "date_of_birth": date_of_birth.isoformat() if date_of_birth else None}
    await _audit_search(session, node, officer, "hq_name", query, [str(t.id) for _, t in hits])
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
    _check_choice(filters.direction, DIRECTIONS, "direction")
    _check_choice(filters.decision, DECISIONS, "decision")
    start, end = local_bounds(node.settings.zone, filters.date_from, filters.date_to)
    query = select(Crossing).where(*_in_range(start, end))
    if filters.post:
        query = query.where(Crossing.post == filters.post)
    if filters.direction:
        query = query.where(Crossing.direction == filters.direction)
    if filters.decision:
        query = query.where(Crossing.decision == filters.decision)
    if filters.nationality:
        query = query.join(Traveller, Traveller.id == Crossing.traveller_id).where(
            Traveller.nationality == filters.nationality.upper()
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
    _check_page(limit, offset)
    query = (
        _filtered_crossings(node, filters)
        .order_by(Crossing.occurred_at.desc(), Crossing.id.desc())
        .limit(limit + 1)
        .offset(offset)
    )
    crossings = list((await session.scalars(query)).all())
    page = crossings[:limit]
    ids = [str(c.id) for c in page]
    await _audit_search(session, node, officer, "hq_crossings", filters.as_dict(), ids)
    return {
        "items": await _views_with_people(session, node, page),
        "limit": limit,
        "offset": offset,
        "has_more": len(crossings) > limit,
    }


# ============================================================================ timeline
@dataclass
class Link:
    """A traveller record linked to the one asked about, with every piece of evidence."""

    traveller: Traveller
    evidence: list[dict[str, Any]] = field(default_factory=list)

    @property
    def confidence(self) -> float:
        return max(item["confidence"] for item in self.evidence)

    def as_json(self) -> dict[str, Any]:
        order = {"document": 0, "face": 1, "name_dob": 2}
        evidence = sorted(self.evidence, key=lambda item: order[item["kind"]])
        return {
            "traveller": traveller_view(self.traveller),
            "confidence": self.confidence,
            "evidence": evidence,
        }


async def _load_traveller(session: AsyncSession, traveller_id: uuid.UUID) -> Traveller:
    traveller = await session.get(Traveller, traveller_id)
    if traveller is None:
        raise Problem(404, "Not found", field="traveller_id", detail="no traveller has this id")
    return traveller


Evidence = list[tuple[uuid.UUID, dict[str, Any]]]


async def _document_links(session: AsyncSession, root: Traveller) -> Evidence:
    """Other records holding a document with the same issuing state and normalised number."""
    mine = select(TravelDocument.issuing_state, TravelDocument.number_norm).where(
        TravelDocument.traveller_id == root.id
    )
    query = select(TravelDocument).where(
        tuple_(TravelDocument.issuing_state, TravelDocument.number_norm).in_(mine),
        TravelDocument.traveller_id != root.id,
    )
    documents = (await session.scalars(query)).all()
    return [
        (
            document.traveller_id,
            {
                "kind": "document",
                "confidence": 1.0,
                "issuing_state": document.issuing_state,
                "number": document.number_norm,
            },
        )
        for document in documents
    ]


async def _same_birth_date(session: AsyncSession, root: Traveller) -> list[Traveller]:
    if root.date_of_birth is None:
        return []
    query = (
        select(Traveller)
        .where(Traveller.date_of_birth == root.date_of_birth, Traveller.id != root.id)
        .limit(DOB_CANDIDATES)
    )
    return list((await session.scalars(query)).all())


def _name_dob_evidence(root: Traveller, others: Iterable[Traveller]) -> Evidence:
    return [
        (
            other.id,
            {
                "kind": "name_dob",
                "confidence": round(score / 100, 4),
                "similarity": score,
                "date_of_birth": other.date_of_birth.isoformat() if other.date_of_birth else None,
            },
        )
        for score, other in _scored(root.name_key, others, NAME_LINK_THRESHOLD)
    ]


async def _face_templates(
    session: AsyncSession, traveller_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, np.ndarray]:
    """Every face encoding seen on each traveller's crossings, as one matrix per traveller."""
    ids = list(set(traveller_ids))
    vectors: dict[uuid.UUID, dict[str, np.ndarray]] = defaultdict(dict)
    for chunk in (ids[i : i + 500] for i in range(0, len(ids), 500)):
        query = (
            select(Crossing.traveller_id, Photo.sha256, Photo.face_encoding)
            .join(Photo, Photo.sha256 == Crossing.photo_sha256)
            .where(Crossing.traveller_id.in_(chunk), Photo.face_encoding.is_not(None))
        )
        for traveller_id, sha256, encoding in (await session.execute(query)).all():
            vectors[traveller_id][sha256] = template_vector(encoding)
    return {tid: np.stack(list(rows.values())) for tid, rows in vectors.items()}


def _face_evidence(
    root: np.ndarray | None, others: dict[uuid.UUID, np.ndarray], tolerance: float
) -> Evidence:
    """Records whose closest pair of encodings is within ``tolerance`` (confidence 1 - d)."""
    if root is None:
        return []
    evidence = []
    for traveller_id, matrix in others.items():
        distances = np.linalg.norm(matrix[:, None, :] - root[None, :, :], axis=2)
        distance = round(float(distances.min()), 4)
        if distance <= tolerance:
            confidence = round(max(0.0, 1.0 - distance), 4)
            evidence.append(
                (traveller_id, {"kind": "face", "confidence": confidence, "distance": distance})
            )
    return evidence


async def _travellers_by_id(
    session: AsyncSession, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, Traveller]:
    wanted = list(set(ids))
    if not wanted:
        return {}
    rows = await session.scalars(select(Traveller).where(Traveller.id.in_(wanted)))
    return {t.id: t for t in rows.all()}


async def _face_links(
    session: AsyncSession, node: Node, root: Traveller, people: dict[uuid.UUID, Traveller]
) -> Evidence:
    """Face evidence against the known candidates plus the records with a similar name;
    nothing to do (no query) when the root record has no face encoding."""
    root_faces = (await _face_templates(session, [root.id])).get(root.id)
    if root_faces is None:
        return []
    matches = await name_matches(
        session, root.name_key, None, cutoff=NAME_CUTOFF, limit=FACE_NAME_CANDIDATES
    )
    people.update({t.id: t for _, t in matches if t.id != root.id})
    others = await _face_templates(session, people)
    return _face_evidence(root_faces, others, node.settings.face_tolerance)


async def linked_records(session: AsyncSession, node: Node, root: Traveller) -> list[Link]:
    """Traveller records of any post linked to ``root`` (one hop, no transitive chains).

    Evidence: ``document`` (same issuing state and normalised number, confidence 1.0);
    ``name_dob`` (same date of birth, ``name_similarity`` >= 90, confidence similarity/100);
    ``face`` (closest face encodings within ``settings.face_tolerance``, confidence
    1 - distance). Faces are compared with the records found by document, by date of birth
    or by a name scoring 85 or more, not with the whole national gallery (that needs an
    in-memory 1:N index, biometrics.index.FaceIndex, which national does not hold yet).
    """
    by_document = await _document_links(session, root)
    same_dob = await _same_birth_date(session, root)
    people = {t.id: t for t in same_dob}
    people.update(await _travellers_by_id(session, (tid for tid, _ in by_document)))
    by_name = _name_dob_evidence(root, same_dob)
    by_face = await _face_links(session, node, root, people)
    links: dict[uuid.UUID, Link] = {}
    for traveller_id, evidence in [*by_document, *by_name, *by_face]:
        links.setdefault(traveller_id, Link(people[traveller_id])).evidence.append(evidence)
    return sorted(links.values(), key=lambda link: (-link.confidence, str(link.traveller.id)))


async def person_timeline(
    session: AsyncSession, *, node: Node, officer: Officer, traveller_id: uuid.UUID
) -> dict[str, Any]:
    """Every current crossing, at every post, of a traveller and of the records linked to it,
    oldest first; the linked records are listed apart with their evidence, never merged."""
    root = await _load_traveller(session, traveller_id)
    links = await linked_records(session, node, root)
    ids = [root.id, *(link.traveller.id for link in links)]
    query = (
        select(Crossing)
        .where(Crossing.traveller_id.in_(ids), current_version_filter())
        .order_by(Crossing.occurred_at, Crossing.id)
    )
    crossings = list((await session.scalars(query)).all())
    await audit(
        session,
        origin=node.settings.node_code,
        officer=officer,
        action="read",
        record_type="traveller",
        record_id=root.id,
        purpose="hq_timeline",
        detail={
            "linked": [str(link.traveller.id) for link in links],
            "crossings": [str(c.id) for c in crossings],
        },
    )
    return {
        "traveller": traveller_view(root),
        "linked": [link.as_json() for link in links],
        "crossings": await _views_with_people(session, node, crossings),
    }


# ============================================================================ statistics
def _movement(direction: str, decision: str) -> str:
    return REFUSED if decision == REFUSED else direction


def _movement_sql() -> Any:
    return case((Crossing.decision == REFUSED, REFUSED), else_=Crossing.direction)


async def _flow_counts(
    session: AsyncSession, node: Node, start: datetime, end: datetime, period: str, post: str | None
) -> dict[tuple[str, date], dict[str, int]]:
    """{(post, period start): {"entry": n, "exit": n, "refused": n}}."""
    conditions = _in_range(start, end)
    if post:
        conditions.append(Crossing.post == post)
    counts: dict[tuple[str, date], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    if is_postgresql(session):
        local = func.timezone(node.settings.timezone, Crossing.occurred_at)
        bucket = cast(func.date_trunc(period, local), Date)
        query = (
            select(
                Crossing.post, bucket.label("bucket"), _movement_sql().label("kind"), func.count()
            )
            .where(*conditions)
            .group_by(Crossing.post, "bucket", "kind")
        )
        for post_code, day, kind, count in (await session.execute(query)).all():
            counts[(post_code, day)][kind] += count
        return counts
    zone = node.settings.zone
    query = select(Crossing.post, Crossing.occurred_at, Crossing.direction, Crossing.decision)
    for post_code, when, direction, decision in (
        await session.execute(query.where(*conditions))
    ).all():
        day = period_start(when.astimezone(zone).date(), period)
        counts[(post_code, day)][_movement(direction, decision)] += 1
    return counts


async def flow_statistics(
    session: AsyncSession,
    *,
    node: Node,
    officer: Officer,
    date_from: date,
    date_to: date,
    period: str = "day",
    post: str | None = None,
    net_only: bool = False,
) -> StatTable:
    """Entries, exits (refused apart) and net flow per post and day/week/month.

    Buckets are local days, ISO weeks labelled by their Monday, or months labelled by their
    first day; a bucket cut by the range counts only the days inside it. Posts and periods
    with no crossing are absent.
    """
    _check_choice(period, PERIODS, "period")
    start, end = local_bounds(node.settings.zone, date_from, date_to)
    counts = await _flow_counts(session, node, start, end, period, post)
    rows = []
    for (post_code, day), kinds in sorted(counts.items()):
        entries, exits = kinds.get("entry", 0), kinds.get("exit", 0)
        row = {
            "post": post_code,
            "period_start": day.isoformat(),
            "entries": entries,
            "exits": exits,
            "refused": kinds.get(REFUSED, 0),
            "net": entries - exits,
        }
        rows.append({k: row[k] for k in NET_FLOW_COLUMNS} if net_only else row)
    parameters = {
        "date_from": date_from.isoformat(),
        "date_to": date_to.isoformat(),
        "period": period,
        "post": post,
        "timezone": node.settings.timezone,
    }
    name, columns = ("net_flow", NET_FLOW_COLUMNS) if net_only else ("flows", FLOW_COLUMNS)
    table = StatTable(name, columns, rows, parameters)
    await _audit_statistic(session, node, officer, table)
    return table


def _age_band_sql(local_day: Any) -> Any:
    years = func.date_part("year", func.age(local_day, Traveller.date_of_birth))
    whens = [(Traveller.date_of_birth.is_(None), UNKNOWN_BAND)]
    whens += [(years < limit, band) for limit, band in AGE_BANDS]
    return case(*whens, else_=OLDEST_BAND)


async def _demographic_counts(
    session: AsyncSession, node: Node, start: datetime, end: datetime, post: str | None
) -> dict[tuple[str, str, str], dict[str, int]]:
    conditions = _in_range(start, end)
    if post:
        conditions.append(Crossing.post == post)
    counts: dict[tuple[str, str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    if is_postgresql(session):
        local_day = cast(func.timezone(node.settings.timezone, Crossing.occurred_at), Date)
        query = (
            select(
                Traveller.nationality,
                Traveller.sex,
                _age_band_sql(local_day).label("band"),
                _movement_sql().label("kind"),
                func.count(),
            )
            .join_from(Crossing, Traveller, Traveller.id == Crossing.traveller_id)
            .where(*conditions)
            .group_by(Traveller.nationality, Traveller.sex, "band", "kind")
        )
        for nationality, sex, band, kind, count in (await session.execute(query)).all():
            counts[(nationality, sex, band)][kind] += count
        return counts
    zone = node.settings.zone
    query = (
        select(
            Traveller.nationality,
            Traveller.sex,
            Traveller.date_of_birth,
            Crossing.occurred_at,
            Crossing.direction,
            Crossing.decision,
        )
        .join_from(Crossing, Traveller, Traveller.id == Crossing.traveller_id)
        .where(*conditions)
    )
    for nationality, sex, birth, when, direction, decision in (await session.execute(query)).all():
        band = age_band(birth, when.astimezone(zone).date())
        counts[(nationality, sex, band)][_movement(direction, decision)] += 1
    return counts


async def demographic_statistics(
    session: AsyncSession,
    *,
    node: Node,
    officer: Officer,
    date_from: date,
    date_to: date,
    post: str | None = None,
) -> StatTable:
    """Crossings by nationality, sex and age band (age on the local day of the crossing)."""
    start, end = local_bounds(node.settings.zone, date_from, date_to)
    counts = await _demographic_counts(session, node, start, end, post)
    ordered = sorted(
        counts.items(), key=lambda item: (item[0][0], item[0][1], _band_order(item[0][2]))
    )
    rows = [
        {
            "nationality": nationality,
            "sex": sex,
            "age_band": band,
            "entries": kinds.get("entry", 0),
            "exits": kinds.get("exit", 0),
            "refused": kinds.get(REFUSED, 0),
        }
        for (nationality, sex, band), kinds in ordered
    ]
    parameters = {
        "date_from": date_from.isoformat(),
        "date_to": date_to.isoformat(),
        "post": post,
        "timezone": node.settings.timezone,
    }
    table = StatTable("demographics", DEMOGRAPHIC_COLUMNS, rows, parameters)
    await _audit_statistic(session, node, officer, table)
    return table


async def alert_statistics(
    session: AsyncSession,
    *,
    node: Node,
    officer: Officer,
    date_from: date,
    date_to: date,
    post: str | None = None,
) -> StatTable:
    """Alerts raised per post (the alert's origin) and evidence kind, with their outcome.

    Counted by the alert's creation day; an alert stays counted when its crossing is later
    corrected (it was raised all the same).
    """
    start, end = local_bounds(node.settings.zone, date_from, date_to)
    query = (
        select(Alert.origin, Alert.evidence, AlertAdjudication.outcome, func.count())
        .outerjoin(AlertAdjudication, AlertAdjudication.alert_id == Alert.id)
        .where(Alert.created_at >= start, Alert.created_at < end)
        .group_by(Alert.origin, Alert.evidence, AlertAdjudication.outcome)
    )
    if post:
        query = query.where(Alert.origin == post)
    counts: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for origin, evidence, outcome, count in (await session.execute(query)).all():
        counts[(origin, evidence)][outcome or "pending"] += count
    rows = [
        {
            "post": origin,
            "evidence": evidence,
            "raised": sum(outcomes.values()),
            "confirmed": outcomes.get("confirmed", 0),
            "dismissed": outcomes.get("dismissed", 0),
            "pending": outcomes.get("pending", 0),
        }
        for (origin, evidence), outcomes in sorted(counts.items())
    ]
    parameters = {"date_from": date_from.isoformat(), "date_to": date_to.isoformat(), "post": post}
    table = StatTable("alerts", ALERT_COLUMNS, rows, parameters)
    await _audit_statistic(session, node, officer, table)
    return table


# ============================================================================ stays
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
        partition_by=_document_key(), order_by=(Crossing.occurred_at.desc(), Crossing.id.desc())
    )
    latest = (
        select(
            Crossing.id,
            Crossing.direction,
            Crossing.occurred_at,
            Crossing.traveller_id,
            *_document_key(),
            rank.label("rank"),
        )
        .join(TravelDocument, TravelDocument.id == Crossing.document_id)
        .where(Crossing.occurred_at < end, Crossing.decision != REFUSED, current_version_filter())
        .subquery()
    )
    query = (
        select(
            latest.c.id,
            latest.c.occurred_at,
            Traveller.nationality,
            latest.c.issuing_state,
            latest.c.number_norm,
        )
        .join(Traveller, Traveller.id == latest.c.traveller_id)
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
            select(TravelDocument.issuing_state, TravelDocument.number_norm, Crossing)
            .join(TravelDocument, TravelDocument.id == Crossing.document_id)
            .where(
                tuple_(*_document_key()).in_(chunk),
                Crossing.occurred_at < end,
                Crossing.decision != REFUSED,
                current_version_filter(),
            )
            .order_by(Crossing.occurred_at, Crossing.id)
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
    _check_page(limit, offset)
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
    views = await _views_with_people(
        session, node, await _crossings_by_id(session, [e.crossing_id for e in page])
    )
    for view, entry in zip(views, page, strict=True):
        until, source = allowances[entry.crossing_id]
        view["allowed_until"] = until.isoformat() if until else None
        view["allowed_until_source"] = source
        view["days_overstayed"] = overstay_days(until, as_of)
    kind = "hq_overstays" if overstays_only else "hq_open_stays"
    query = {"as_of": as_of.isoformat(), "limit": limit, "offset": offset}
    await _audit_search(session, node, officer, kind, query, [v["id"] for v in views])
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
        c.id: c for c in (await session.scalars(select(Crossing).where(Crossing.id.in_(ids)))).all()
    }
    return [rows[crossing_id] for crossing_id in ids]


# ============================================================================ partitions
def _add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def partition_name(month: date) -> str:
    """Same naming as migration 0004: crossing_yYYYYmMM."""
    return f"crossing_y{month.year:04d}m{month.month:02d}"


async def _is_partitioned(session: AsyncSession) -> bool:
    query = text(
        "SELECT count(*) FROM pg_partitioned_table WHERE partrelid = to_regclass('crossing')"
    )
    return bool(await session.scalar(query))


async def _partitions(session: AsyncSession) -> set[str]:
    query = text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'crossing'::regclass"
    )
    return set((await session.scalars(query)).all())


async def _create_partition(session: AsyncSession, month: date) -> None:
    """Create one month, moving in any rows the default partition holds for it, then attach."""
    name = partition_name(month)
    lower = f"{month.isoformat()} 00:00:00+00"
    upper = f"{_add_months(month, 1).isoformat()} 00:00:00+00"
    await session.execute(
        text(f"CREATE TABLE {name} (LIKE crossing INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    )
    await session.execute(
        text(
            f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} WHERE occurred_at >= '{lower}' "
            f"AND occurred_at < '{upper}' RETURNING *) INSERT INTO {name} SELECT * FROM moved"
        )
    )
    await session.execute(
        text(
            f"ALTER TABLE crossing ATTACH PARTITION {name} "
            f"FOR VALUES FROM ('{lower}') TO ('{upper}')"
        )
    )


async def _months_in_default(session: AsyncSession) -> set[date]:
    query = text(
        f"SELECT DISTINCT date_trunc('month', occurred_at AT TIME ZONE 'UTC')::date "
        f"FROM {DEFAULT_PARTITION}"
    )
    return set((await session.scalars(query)).all())


async def ensure_month_partitions(
    session: AsyncSession,
    months_ahead: int = 12,
    *,
    since: date | None = None,
    today: date | None = None,
) -> list[str]:
    """Create the missing monthly crossing partitions and return their names, oldest first:
    every month from ``since`` (default: this month) through ``months_ahead`` months ahead,
    and every month the default partition holds rows for (the rows move into it).

    Call it at national start-up, and with ``since=`` before importing older history. Does
    nothing on SQLite or when crossing is not partitioned. Runs in the caller's transaction,
    under an advisory lock so two starting workers do not race.
    """
    if not is_postgresql(session) or not await _is_partitioned(session):
        return []
    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PARTITION_LOCK})
    existing = await _partitions(session)
    this_month = (today or datetime.now(UTC).date()).replace(day=1)
    first = min(this_month, (since or this_month).replace(day=1))
    wanted = set()
    month = first
    while month <= _add_months(this_month, months_ahead):
        wanted.add(month)
        month = _add_months(month, 1)
    wanted |= await _months_in_default(session)
    created = []
    for month in sorted(wanted):
        if partition_name(month) not in existing:
            await _create_partition(session, month)
            created.append(partition_name(month))
    return created
