"""Liaison work on discrepancy cases, shared with the partner: who said what, and when.

A liaison officer annotates a case that reconciliation found (``sync.reconcile.service``)
with reason codes from a fixed vocabulary (``REASON_CODES``), references to the crossings
of the case or to other cases, an optional free-text note and, to resolve it, a resolution
(``RESOLUTIONS``). Each annotation is an event in the case's history
(``sync.models.DiscrepancyEvent``). The case's status follows from the latest resolution
each side gave (``settle``): none is ``open``, the same is ``resolved``, two different ones
are a ``conflict`` that both teams see with its history.

This module holds that vocabulary and the history and status of a case, which the others
share: ``sync.exchange.liaison_notes`` (our annotations), ``sync.exchange.liaison_partner``
(what crosses to the partner and what it sends back) and ``sync.exchange.liaison_cases``
(the liaison's case list and the crossing behind a case). The partner's events are purged
when the agreement's retention runs out (``sync.exchange.lifecycle``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, get_args

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.models import utcnow
from registry.text import identifier, paragraphs
from sync.exchange.schemas import CaseEvent, CaseView, Reference
from sync.models import Discrepancy, DiscrepancyEvent
from sync.reconcile.report import discrepancy_view

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
