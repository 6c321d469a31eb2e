"""Our annotations on a discrepancy case: reason codes, references, a note, a resolution.

``annotate`` checks every value a liaison officer gives (the vocabulary of
``sync.exchange.liaison``; a 422 names the field), adds the event to the case's history,
settles the case's status again, queues the case for the partner (``exchange_outbox``) and
audits the annotation. The note stays in this country unless the agreement lets free text
cross (``sync.exchange.liaison_partner.case_message``).
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.audit import audit
from registry.models import Officer, utcnow
from registry.node import Node
from registry.problems import Problem, text_refused_problem
from registry.text import TextRefused, clean_text
from sync.bulk import insert_missing
from sync.exchange.liaison import (
    CASE_ID,
    MAX_REFERENCES,
    NOTE,
    REASON_CODES,
    RESOLUTIONS,
    history,
    settle,
)
from sync.exchange.schemas import Reference
from sync.models import Discrepancy, DiscrepancyEvent


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
