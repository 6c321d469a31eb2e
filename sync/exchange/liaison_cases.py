"""The liaison's reads of discrepancy cases: the case list, and the crossing behind a case.

The liaison API and pages read the case list the same way (``read_cases``: filters, paging
and one audited read, a case opened beside the page shown with its history by
``sync.exchange.liaison.case_view``); ``crossing_behind_case`` shows one crossing of a case,
ours in full or the partner's as it sent it, for a purpose the agreement lists, and no
other crossing. What they answer is typed in ``sync.exchange.schemas``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.audit import audit
from registry.crossings.records import read_crossing
from registry.models import Officer
from registry.node import Node
from registry.problems import Problem
from sync.exchange.liaison import case_view
from sync.exchange.schemas import CaseView, CrossingBehindCase
from sync.models import Discrepancy, PartnerRecord

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
