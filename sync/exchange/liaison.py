"""Liaison work on discrepancy cases, shared with the partner: who said what, and when.

A liaison officer annotates a case that reconciliation found (``sync.reconcile.service``)
with reason codes from a fixed vocabulary (``REASON_CODES``), references to the crossings
of the case or to other cases, an optional free-text note and, to resolve it, a resolution
(``RESOLUTIONS``). Each annotation is an event in the case's history
(``sync.models.DiscrepancyEvent``). What crosses to the partner is built at send time
(``case_message``): our events' codes, references and resolution, never the officer's
name, and the free text only when the agreement says ``share_note_text = true``.

The partner's events arrive the same way (``receive_partner_case``): every value is checked
against the vocabulary and the agreement, a bad message is refused and audited and never
stored, and an event never overwrites another. The case's status follows from the latest
resolution each side gave (``settle``): none is ``open``, the same is ``resolved``, two
different ones are a ``conflict`` that both teams see with its history. The partner's
events are purged when the agreement's retention runs out (``sync.exchange.lifecycle``).

The liaison API and pages read the case list the same way (``read_cases``: filters, paging
and one audited read); what they answer is typed in ``sync.exchange.schemas``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

import msgspec
from msgspec import Meta
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.audit import audit
from registry.crossings.records import read_crossing
from registry.models import Officer, utcnow
from registry.node import Node
from registry.problems import Problem, text_refused_problem
from registry.text import TextRefused, clean_text, identifier, paragraphs
from sync.batches import BatchRejected
from sync.bulk import insert_missing
from sync.exchange.schemas import ID_PATTERN, CaseEvent, CaseView, CrossingBehindCase, Reference
from sync.models import Discrepancy, DiscrepancyEvent, PartnerRecord
from sync.reconcile.report import discrepancy_view

if TYPE_CHECKING:
    from sync.exchange.model import Agreement

Resolution = Literal["explained", "data_error_corrected", "referred", "false_alarm"]
ReasonCode = Literal[
    "recorded_late",
    "clock_error",
    "data_entry_error",
    "document_replaced",
    "crossed_elsewhere",
    "not_yet_crossed",
    "duplicate_registration",
    "identity_confirmed",
    "referred_to_authorities",
    "under_investigation",
]
RESOLUTIONS: tuple[str, ...] = get_args(Resolution)
REASON_CODES: tuple[str, ...] = get_args(ReasonCode)
STATUSES = ("open", "resolved", "conflict")
NOTE = paragraphs(2000, min_length=1)  # a liaison note (registry.text)
CASE_ID = identifier(80, min_length=1)
MAX_REFERENCES = 20


class PartnerEvent(msgspec.Struct, forbid_unknown_fields=True):
    """One event of the partner's, as it may cross (nothing else is accepted)."""

    id: Annotated[str, Meta(pattern=ID_PATTERN, max_length=40)]
    at: Annotated[datetime, Meta(tz=True)]
    resolution: Resolution | None = None
    reasons: Annotated[list[ReasonCode], Meta(max_length=len(REASON_CODES))] = []
    references: Annotated[list[Reference], Meta(max_length=MAX_REFERENCES)] = []
    text: Annotated[str, Meta(max_length=2000)] | None = None


class PartnerCase(msgspec.Struct, forbid_unknown_fields=True):
    """The partner's events on one case."""

    id: Annotated[str, Meta(pattern=ID_PATTERN, max_length=40)]
    events: Annotated[list[PartnerEvent], Meta(max_length=1000)]


# ------------------------------------------------------------------ history and status
async def history(session: AsyncSession, case_id: str) -> list[DiscrepancyEvent]:
    """The case's events, oldest first."""
    return list(
        (
            await session.scalars(
                select(DiscrepancyEvent)
                .where(col(DiscrepancyEvent.discrepancy_id) == case_id)
                .order_by(col(DiscrepancyEvent.at), col(DiscrepancyEvent.id))
            )
        ).all()
    )


def positions(events: Iterable[DiscrepancyEvent]) -> dict[str, str]:
    """The latest resolution each side (node) gave."""
    latest: dict[str, str] = {}
    for event in events:
        if event.resolution is not None:
            latest[event.origin] = event.resolution
    return latest


def settled(events: list[DiscrepancyEvent]) -> tuple[str, str | None]:
    """Status and resolution from both sides' latest resolutions: none is open, one or the
    same is resolved, two different ones are a conflict (no resolution until they agree)."""
    given = set(positions(events).values())
    if not given:
        return "open", None
    if len(given) == 1:
        return "resolved", given.pop()
    return "conflict", None


def settle(case: Discrepancy, events: list[DiscrepancyEvent]) -> None:
    """Give the case the status its history says (``settled``)."""
    status, resolution = settled(events)
    if (case.status, case.resolution) != (status, resolution):
        case.status, case.resolution = status, resolution
        case.updated_at = utcnow()


async def settle_cases(session: AsyncSession, case_ids: Iterable[str]) -> None:
    """Settle these cases again (after the partner's events were erased or purged)."""
    for case_id in case_ids:
        case = await session.get(Discrepancy, case_id)
        if case is not None:
            settle(case, await history(session, case_id))


def event_view(event: DiscrepancyEvent) -> CaseEvent:
    return CaseEvent(
        id=event.id,
        at=event.at.isoformat(),
        origin=event.origin,
        by=event.author,
        resolution=event.resolution,
        reasons=event.reasons,
        references=[Reference(kind=r["kind"], id=r["id"]) for r in event.references],
        text=event.text,
    )


async def case_view(session: AsyncSession, case: Discrepancy) -> CaseView:
    """A case with its status, the full history of who said what, and each side's latest
    resolution (two different ones: ``status`` is ``conflict``)."""
    events = await history(session, case.id)
    settle(case, events)  # the partner may have spoken before reconciliation found the case
    return CaseView(
        **{
            **discrepancy_view(case),
            "notes": [event_view(e) for e in events],
            "positions": positions(events),
        }
    )


# ------------------------------------------------------------------ our annotations
def _checked_references(
    session_case: Discrepancy, references: list[Reference], known_cases: set[str]
) -> list[dict[str, str]]:
    crossings = {*session_case.our_ids, *session_case.their_ids}
    checked = []
    for reference in references:
        if reference.kind == "crossing" and reference.id not in crossings:
            raise Problem(
                422,
                "Unknown reference",
                field="references",
                detail=f"crossing {reference.id} is not part of this case",
            )
        if reference.kind == "case" and reference.id not in known_cases:
            raise Problem(
                422, "Unknown reference", field="references", detail=f"no case {reference.id}"
            )
        checked.append({"kind": reference.kind, "id": reference.id})
    return checked


async def annotate(
    session: AsyncSession,
    *,
    node: Node,
    officer: Officer,
    case_id_: str,
    note: str | None = None,
    resolution: str | None = None,
    reasons: list[str] | None = None,
    references: list[Reference] | None = None,
) -> Discrepancy:
    """Add an event to a case: reason codes, references, a note (kept in this country
    unless the agreement lets free text cross) and optionally a resolution. Every value is
    checked (422 naming the field); the event travels to the partner."""
    try:
        case_id_ = clean_text(case_id_, CASE_ID, "discrepancy_id")
        note = clean_text(note, NOTE, "note") if note else None
    except TextRefused as refused:
        raise text_refused_problem(refused) from refused
    case = await session.get(Discrepancy, case_id_)
    if case is None:
        raise Problem(404, "Unknown discrepancy", field="discrepancy_id")
    if resolution is not None and resolution not in RESOLUTIONS:
        raise Problem(
            422, "Unknown resolution", field="resolution", detail=f"one of {', '.join(RESOLUTIONS)}"
        )
    codes = list(dict.fromkeys(reasons or []))
    unknown = [code for code in codes if code not in REASON_CODES]
    if unknown:
        raise Problem(
            422, "Unknown reason", field="reasons", detail=f"one of {', '.join(REASON_CODES)}"
        )
    if len(references or []) > MAX_REFERENCES:
        raise Problem(422, "Too many references", field="references", detail="20 at most")
    wanted = {r.id for r in references or [] if r.kind == "case"}
    known = (
        set(
            (
                await session.scalars(
                    select(col(Discrepancy.id)).where(col(Discrepancy.id).in_(wanted))
                )
            ).all()
        )
        if wanted
        else set()
    )
    checked = _checked_references(case, references or [], known)
    if not note and not codes and resolution is None:
        raise Problem(
            422, "Nothing to add", field="note", detail="give a reason, a note or a resolution"
        )
    now = utcnow()
    session.add(
        DiscrepancyEvent(
            id=str(uuid.uuid4()),
            discrepancy_id=case.id,
            origin=node.settings.node_code,
            author=officer.username,
            at=now,
            resolution=resolution,
            reasons=codes,
            references=checked,
            text=note,
        )
    )
    await session.flush()
    before = case.status
    settle(case, await history(session, case.id))
    await insert_missing(
        session,
        "exchange_outbox",
        [{"record_type": "discrepancy", "record_id": case.id, "created_at": now}],
    )
    await audit(
        session,
        origin=node.settings.node_code,
        officer=officer,
        action="annotate",
        record_type="discrepancy",
        record_id=case.id,
        purpose="liaison",
        detail={
            "resolution": resolution,
            "reasons": codes,
            "status": case.status,
            "was": before,
        },
    )
    return case


# ------------------------------------------------------------------ the partner
async def case_message(
    session: AsyncSession, agreement: Agreement, our_node: str, case_id: str
) -> dict[str, Any] | None:
    """What crosses about a case: our events' codes, references and resolutions (the free
    text only if the agreement allows it), never who wrote them."""
    events = [e for e in await history(session, case_id) if e.origin == our_node]
    if not events:
        return None
    message = []
    for event in events:
        item: dict[str, Any] = {
            "id": event.id,
            "at": event.at.isoformat(),
            "resolution": event.resolution,
            "reasons": event.reasons,
            "references": event.references,
        }
        if agreement.share_note_text and event.text:
            item["text"] = event.text
        message.append(item)
    return {"id": case_id, "events": message}


async def _refused(
    session: AsyncSession, our_node: str, partner_node: str, case_id: str, reason: str, why: str
) -> BatchRejected:
    await audit(
        session,
        origin=our_node,
        officer=None,
        action="partner_case_refused",
        record_type="discrepancy",
        record_id=case_id[:80] or "?",
        purpose="exchange",
        detail={"partner": partner_node, "reason": reason, "detail": why[:300]},
    )
    return BatchRejected(reason, why)


async def receive_partner_case(
    session: AsyncSession,
    *,
    agreement: Agreement,
    our_node: str,
    partner_node: str,
    payload: Any,
) -> int:
    """Store the partner's new events on a case; returns how many were new. A message
    outside the vocabulary or the agreement is audited and refused (BatchRejected), and
    nothing of it is stored."""
    case_id = str(payload.get("id", "")) if isinstance(payload, dict) else ""
    try:
        message = msgspec.convert(payload, PartnerCase)
    except msgspec.ValidationError as exc:
        raise await _refused(
            session, our_node, partner_node, case_id, "invalid_resolution", str(exc)
        ) from exc
    for event in message.events:
        if event.text is None:
            continue
        if not agreement.share_note_text:
            raise await _refused(
                session,
                our_node,
                partner_node,
                case_id,
                "outside_agreement",
                "the agreement does not let free-text notes cross",
            )
        try:
            event.text = clean_text(event.text, NOTE, "text")
        except TextRefused as refused:
            raise await _refused(
                session, our_node, partner_node, case_id, "unstorable_text", str(refused)
            ) from refused
    expires = utcnow() + timedelta(days=agreement.retention_days)
    known = set(
        (
            await session.scalars(
                select(col(DiscrepancyEvent.id)).where(
                    col(DiscrepancyEvent.id).in_([e.id for e in message.events])
                )
            )
        ).all()
    )
    fresh = [e for e in message.events if e.id not in known]  # never over another event
    if not fresh:
        return 0
    case = await session.get(Discrepancy, message.id)
    before = case.status if case is not None else None
    try:
        async with session.begin_nested():
            for event in fresh:
                session.add(
                    DiscrepancyEvent(
                        id=event.id,
                        discrepancy_id=message.id,
                        origin=partner_node,
                        author=None,
                        at=event.at,
                        resolution=event.resolution,
                        reasons=list(event.reasons),
                        references=[{"kind": r.kind, "id": r.id} for r in event.references],
                        text=event.text,
                        received_at=utcnow(),
                        expires_at=expires,
                    )
                )
            await session.flush()
    except DBAPIError as exc:
        raise await _refused(
            session, our_node, partner_node, case_id, "refused_by_database", str(exc)
        ) from exc
    if case is not None:
        settle(case, await history(session, case.id))
        if case.status != before:
            await audit(
                session,
                origin=our_node,
                officer=None,
                action="partner_case_status",
                record_type="discrepancy",
                record_id=case.id,
                purpose="exchange",
                detail={"partner": partner_node, "status": case.status, "was": before},
            )
    return len(fresh)


# ------------------------------------------------------------------ finding cases
PAGE_SIZE = 25


async def find_cases(
    session: AsyncSession,
    *,
    status: str | None = None,
    kind: str | None = None,
    pair: tuple[str, str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = PAGE_SIZE,
    offset: int = 0,
) -> tuple[int, list[Discrepancy]]:
    """Cases by status, kind, post pair and time (``since`` inclusive, ``until``
    exclusive), oldest first: how many match, and one page of them."""
    conditions = []
    if status:
        conditions.append(col(Discrepancy.status) == status)
    if kind:
        conditions.append(col(Discrepancy.kind) == kind)
    if pair:
        conditions += [col(Discrepancy.our_post) == pair[0], col(Discrepancy.their_post) == pair[1]]
    if since:
        conditions.append(col(Discrepancy.at) >= since)
    if until:
        conditions.append(col(Discrepancy.at) < until)
    total = await session.scalar(select(func.count()).select_from(Discrepancy).where(*conditions))
    page = (
        await session.scalars(
            select(Discrepancy)
            .where(*conditions)
            .order_by(col(Discrepancy.at), col(Discrepancy.id))
            .limit(limit)
            .offset(offset)
        )
    ).all()
    return int(total or 0), list(page)


@dataclass(frozen=True)
class CaseList:
    """One page of cases (``total`` match the filters), and the case opened beside it."""

    total: int
    cases: list[Discrepancy]
    opened: CaseView | None = None


def _start_of(day: date | None) -> datetime | None:
    return datetime.combine(day, time.min, tzinfo=UTC) if day else None


async def read_cases(
    session: AsyncSession,
    *,
    node: Node,
    officer: Officer,
    status: str | None = None,
    kind: str | None = None,
    pair: tuple[str, str] | None = None,
    since: date | None = None,
    until: date | None = None,
    post: str | None = None,
    limit: int = PAGE_SIZE,
    offset: int = 0,
    opened: str | None = None,
) -> CaseList:
    """The liaison's read of the case list (API and page), audited as one ``read`` of the
    ``discrepancy`` ``list`` naming every case it shows: cases by status, kind, post pair
    and day (``since`` to ``until``, both included), oldest first, one page of them
    (``find_cases``). ``post`` keeps only our post's cases of that page (the total counts
    them all). ``opened`` is a case shown in full beside the page (``case_view``), when it
    exists. The caller holds a write transaction: showing a case settles its status."""
    last = until + timedelta(days=1) if until and until < date.max else None
    total, found = await find_cases(
        session,
        status=status,
        kind=kind,
        pair=pair,
        since=_start_of(since),
        until=_start_of(last),
        limit=limit,
        offset=offset,
    )
    if post:
        found = [c for c in found if c.our_post == post]
    shown = await session.get(Discrepancy, opened) if opened else None
    view = await case_view(session, shown) if shown is not None else None
    await audit(
        session,
        origin=node.settings.node_code,
        officer=officer,
        action="read",
        record_type="discrepancy",
        record_id="list",
        purpose="liaison",
        detail={"cases": [c.id for c in found] + ([view.id] if view is not None else [])},
    )
    return CaseList(total, found, view)


# ------------------------------------------------------------------ the crossing behind a case
async def crossing_behind_case(
    session: AsyncSession,
    *,
    node: Node,
    officer: Officer,
    case_id: str,
    crossing_id: str,
    purpose: str,
    partner_node: str,
) -> CrossingBehindCase:
    """A crossing of one of our cases, for a purpose the agreement lists (the caller checks
    it): ours in full (the read audited with the purpose), the partner's as it sent it
    (audited too). 404 for a crossing that is not behind this case: the liaison role sees
    no other crossing."""
    case = await session.get(Discrepancy, case_id)
    if case is None:
        raise Problem(404, "Unknown discrepancy", field="case_id")
    if crossing_id in case.our_ids:
        try:
            identifier_ = uuid.UUID(crossing_id)
        except ValueError as exc:
            raise Problem(400, "Invalid id", field="crossing_id") from exc
        view = await read_crossing(
            session,
            node=node,
            officer=officer,
            crossing_id=identifier_,
            purpose=f"liaison:{purpose}",
        )
        return CrossingBehindCase(side="ours", case=case.id, crossing=view)
    if crossing_id not in case.their_ids:
        raise Problem(404, "Not in this case", field="crossing_id")
    record = (
        await session.scalars(
            select(PartnerRecord).where(
                col(PartnerRecord.origin) == partner_node,
                col(PartnerRecord.record_id) == crossing_id,
            )
        )
    ).first()
    if record is None:
        raise Problem(404, "No longer held", field="crossing_id")
    await audit(
        session,
        origin=node.settings.node_code,
        officer=officer,
        action="read",
        record_type="partner_record",
        record_id=crossing_id,
        purpose=f"liaison:{purpose}",
        detail={"case": case.id},
    )
    return CrossingBehindCase(side="theirs", case=case.id, crossing=record.payload)
