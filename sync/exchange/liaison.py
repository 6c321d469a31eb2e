"""Liaison notes on discrepancy cases: a liaison officer annotates (and may resolve) a case
that reconciliation found (``sync.reconcile.service``), and the change travels to the
partner through the exchange outbox, so both sides see the same status and notes.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from registry.audit import audit
from registry.models import Officer, utcnow
from registry.node import Node
from registry.problems import Problem, text_refused_problem
from registry.text import TextRefused, clean_text, identifier, paragraphs
from sync.models import Discrepancy
from sync.records import insert_missing

RESOLUTIONS = ("explained", "data_error_corrected", "referred", "false_alarm")
NOTE = paragraphs(2000, min_length=1)  # a liaison note (registry.text)
CASE_ID = identifier(80, min_length=1)


async def annotate(
    session: AsyncSession,
    *,
    node: Node,
    officer: Officer,
    case_id_: str,
    note: str,
    resolution: str | None = None,
) -> Discrepancy:
    """Add a note, optionally resolving; the change travels to the partner, so the note (and
    the case id looked up) must be clean text (``registry.text``), or 422 naming the field."""
    try:
        case_id_ = clean_text(case_id_, CASE_ID, "discrepancy_id")
        note = clean_text(note, NOTE, "note")
    except TextRefused as refused:
        raise text_refused_problem(refused) from refused
    case = await session.get(Discrepancy, case_id_)
    if case is None:
        raise Problem(404, "Unknown discrepancy", field="discrepancy_id")
    if resolution is not None and resolution not in RESOLUTIONS:
        raise Problem(
            422, "Unknown resolution", field="resolution", detail=f"one of {', '.join(RESOLUTIONS)}"
        )
    case.notes = [
        *case.notes,
        {
            "at": utcnow().isoformat(),
            "by": officer.username,
            "origin": node.settings.node_code,
            "text": note,
        },
    ]
    if resolution is not None:
        case.status, case.resolution = "resolved", resolution
    case.updated_at = utcnow()
    await session.flush()
    await insert_missing(
        session,
        "exchange_outbox",
        [{"record_type": "discrepancy", "record_id": case.id, "created_at": utcnow()}],
    )
    await audit(
        session,
        origin=node.settings.node_code,
        officer=officer,
        action="annotate",
        record_type="discrepancy",
        record_id=case.id,
        purpose="liaison",
        detail={"resolution": resolution},
    )
    return case
