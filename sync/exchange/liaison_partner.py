"""Discrepancy cases between the partners: what crosses about a case, and what comes back.

What crosses to the partner is built at send time (``case_message``): our events' codes,
references and resolution, never the officer's name, and the free text only when the
agreement says ``share_note_text = true``. The partner's events arrive the same way
(``receive_partner_case``): every value is checked against the vocabulary
(``sync.exchange.liaison``) and the agreement, a bad message is refused and audited and
never stored, and an event never overwrites another; the case's status is settled again.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from msgspec import Meta
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.audit import audit
from registry.models import utcnow
from registry.text import TextRefused, clean_text
from sync.batches import BatchRejected
from sync.exchange.liaison import (
    MAX_REFERENCES,
    NOTE,
    REASON_CODES,
    ReasonCode,
    Resolution,
    history,
    settle,
)
from sync.exchange.schemas import ID_PATTERN, Reference
from sync.models import Discrepancy, DiscrepancyEvent

if TYPE_CHECKING:
    from sync.exchange.model import Agreement


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
