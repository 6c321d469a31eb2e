"""Reconciliation at a national node: load both sides' crossings, reconcile, keep the cases.

Our crossings at the paired posts are read from the registry with their document
pseudonyms (the agreement's HMAC key); the partner's come from the records it sent under the
agreement (``sync.exchange``). Each discrepancy is stored once as a case, under an id both
sides derive alike, and keeps its notes and resolution across runs (``sync.exchange.liaison``
adds them). Every run is audited.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.audit import audit
from registry.models import Crossing, Officer, TravelDocument, Traveller, utcnow
from registry.node import Node
from sync.exchange.pseudonyms import pseudonym
from sync.exchange.service import BUNDLE, Exchange
from sync.models import Discrepancy, PartnerRecord
from sync.reconcile.core import reconcile
from sync.reconcile.model import CrossingFact, ReconcileConfig, ReconcileResult

CASE_NAMESPACE = uuid.UUID("6f1c1c3e-8c1e-4a5e-9a53-0b7d3d2f7a10")


def case_id(kind: str, ids: list[str]) -> str:
    """The same id on both sides: derived from the kind and every crossing involved."""
    return str(uuid.uuid5(CASE_NAMESPACE, kind + "|" + ",".join(sorted(ids))))


def _start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


async def our_facts(
    session: AsyncSession, exchange: Exchange, posts: set[str], since: datetime, until: datetime
) -> list[CrossingFact]:
    """Our crossings at ``posts`` in [since, until), with their document pseudonyms."""
    rows = await session.execute(
        select(Crossing, TravelDocument, Traveller)
        .join(TravelDocument, col(TravelDocument.id) == col(Crossing.document_id))
        .join(Traveller, col(Traveller.id) == col(Crossing.traveller_id))
        .where(
            col(Crossing.post).in_(posts),
            col(Crossing.occurred_at) >= since,
            col(Crossing.occurred_at) < until,
        )
    )
    facts = []
    for crossing, document, traveller in rows:
        doc = pseudonym(
            "document_number",
            document.number_norm,
            hmac_key=exchange.hmac_key,
            issuing_state=document.issuing_state,
        )
        if doc is None:
            continue
        facts.append(
            CrossingFact(
                id=str(crossing.id),
                post=crossing.post,
                direction=crossing.direction,
                occurred_at=crossing.occurred_at,
                doc_pseudonym=doc,
                nationality=traveller.nationality,
                date_of_birth=traveller.date_of_birth,
                document_expiry=document.expiry_date,
            )
        )
    return facts


async def their_facts(
    session: AsyncSession, since: datetime, until: datetime
) -> list[CrossingFact]:
    """The partner's crossings in [since, until), from the bundles it sent."""
    rows = await session.scalars(
        select(PartnerRecord).where(
            col(PartnerRecord.record_type) == BUNDLE,
            col(PartnerRecord.occurred_at) >= since,
            col(PartnerRecord.occurred_at) < until,
        )
    )
    facts = []
    for record in rows:
        crossing = record.payload.get("crossing", {})
        document = record.payload.get("travel_document", {})
        traveller = record.payload.get("traveller", {})
        doc = document.get("number")
        if not doc or not crossing.get("occurred_at"):
            continue
        facts.append(
            CrossingFact(
                id=str(crossing.get("id", record.record_id)),
                post=str(crossing.get("post")),
                direction=str(crossing.get("direction")),
                occurred_at=datetime.fromisoformat(crossing["occurred_at"]),
                doc_pseudonym=doc,
                nationality=traveller.get("nationality"),
                date_of_birth=traveller.get("date_of_birth"),
                document_expiry=document.get("expiry_date"),
            )
        )
    return facts


async def run_reconciliation(
    session: AsyncSession,
    *,
    node: Node,
    exchange: Exchange,
    since: date,
    until: date,
    officer: Officer | None,
    window: timedelta = timedelta(hours=24),
) -> ReconcileResult:
    """Reconcile a period (with a window's margin on each side) and record discrepancies."""
    pairs = exchange.agreement.pairs_for(exchange.ours.node)
    start, end = _start(since) - window, _start(until) + window
    ours = await our_facts(session, exchange, {p for p, _ in pairs}, start, end)
    theirs = await their_facts(session, start, end)
    result = reconcile(
        ours, theirs, pairs=pairs, config=ReconcileConfig(as_of=utcnow(), window=window)
    )
    await _record_discrepancies(session, result)
    await audit(
        session,
        origin=node.settings.node_code,
        officer=officer,
        action="reconcile",
        record_type="reconciliation",
        record_id=f"{since}:{until}",
        purpose="liaison",
        detail={
            "ours": len(ours),
            "theirs": len(theirs),
            "discrepancies": len(result.discrepancies),
        },
    )
    return result


async def _record_discrepancies(session: AsyncSession, result: ReconcileResult) -> None:
    for case in result.discrepancies:
        identifier = case_id(case.kind.value, [*case.our_ids, *case.their_ids])
        if await session.get(Discrepancy, identifier) is not None:
            continue  # kept with its notes and status
        session.add(
            Discrepancy(
                id=identifier,
                our_post=case.pair[0],
                their_post=case.pair[1],
                kind=case.kind.value,
                our_ids=list(case.our_ids),
                their_ids=list(case.their_ids),
                doc_pseudonym=case.doc_pseudonym,
                reason=case.reason,
                at=case.at,
            )
        )
    await session.flush()


async def list_discrepancies(
    session: AsyncSession, *, our_post: str | None = None, status: str | None = None
) -> list[Discrepancy]:
    """Stored discrepancy cases in time order, optionally of one post and status."""
    query = select(Discrepancy).order_by(col(Discrepancy.at))
    if our_post:
        query = query.where(col(Discrepancy.our_post) == our_post)
    if status:
        query = query.where(col(Discrepancy.status) == status)
    return list((await session.scalars(query)).all())
