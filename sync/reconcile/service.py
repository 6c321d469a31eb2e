"""Reconciliation at a national node: load both sides' crossings, reconcile, keep the cases.

Both sides' crossings are compared on double-blinded keys (``sync.exchange.pseudonyms``):
ours with the keys the partner returned when it acknowledged them (``ExchangeKey``), the
partner's with the keys we made when they arrived (``PartnerRecord``). Every identity element
the agreement pseudonymises is compared: document, name (the person element), birth date,
nationality, expiry. Each discrepancy is stored once as a case, under an id both sides derive
alike from the pseudonymous crossing ids both hold, and keeps its notes and resolution across
runs (``sync.exchange.liaison_notes`` adds ours, ``sync.exchange.liaison_partner`` the
partner's). Every run is audited.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.audit import audit
from registry.models import Crossing, Officer, TravelDocument, Traveller, utcnow
from registry.node import Node
from sync.exchange.receiving import bundle_keys
from sync.exchange.service import BUNDLE, Exchange
from sync.models import Discrepancy, ExchangeKey, PartnerRecord
from sync.reconcile.core import reconcile
from sync.reconcile.model import CrossingFact, ReconcileConfig, ReconcileResult
from sync.reconcile.model import Discrepancy as ReconciledCase

UNEXCHANGED = "unexchanged:"  # the document key of a crossing the partner does not hold
CASE_NAMESPACE = uuid.UUID("6f1c1c3e-8c1e-4a5e-9a53-0b7d3d2f7a10")


def case_id(kind: str, ids: list[str]) -> str:
    """The same id on both sides: derived from the kind and every crossing involved."""
    return str(uuid.uuid5(CASE_NAMESPACE, kind + "|" + ",".join(sorted(ids))))


def _start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _value(keys: dict[str, Any], qualified: str, clear: Any, pseudonymised: frozenset[str]) -> Any:
    """A compared value: its double-blinded key when the agreement pseudonymises it, else
    the clear value (None when the partner gets neither, so it is never compared)."""
    if qualified in pseudonymised:
        return keys.get(qualified)
    return clear


def _name(keys: dict[str, Any], pseudonymised: frozenset[str]) -> str | None:
    """The name to compare: the person element, else the blinded name parts."""
    if "traveller.name_key" in pseudonymised:
        return keys.get("traveller.name_key")
    parts = [keys.get(f"traveller.{n}") for n in ("surname", "given_names")]
    return "|".join(p or "" for p in parts) if any(parts) else None


async def our_facts(
    session: AsyncSession, exchange: Exchange, posts: set[str], since: datetime, until: datetime
) -> tuple[list[CrossingFact], dict[str, str]]:
    """Our crossings at ``posts`` in [since, until), with the double-blinded keys the partner
    returned when it acknowledged them (``ExchangeKey``), and their pseudonymous id -> our
    id. A crossing the partner has not acknowledged has no keys: it can pair with nothing
    and is reported unpaired (or pending), never dropped."""
    agreement = exchange.agreement
    pseudonymised, shared = agreement.pseudonymised, agreement.record_types
    rows = (
        await session.execute(
            select(Crossing, TravelDocument, Traveller)
            .join(TravelDocument, col(TravelDocument.id) == col(Crossing.document_id))
            .join(Traveller, col(Traveller.id) == col(Crossing.traveller_id))
            .where(
                col(Crossing.post).in_(posts),
                col(Crossing.occurred_at) >= since,
                col(Crossing.occurred_at) < until,
            )
        )
    ).all()
    keys: dict[str, ExchangeKey] = {}
    ids = [str(crossing.id) for crossing, _, _ in rows]
    for start in range(0, len(ids), 5000):
        found = await session.scalars(
            select(ExchangeKey).where(
                col(ExchangeKey.agreement_id) == agreement.id,
                col(ExchangeKey.crossing_id).in_(ids[start : start + 5000]),
            )
        )
        keys.update({k.crossing_id: k for k in found})
    facts, refs = [], {}
    for crossing, document, traveller in rows:
        stored = keys.get(str(crossing.id))
        if stored is None or not stored.keys.get("travel_document.number"):
            # not (yet) acknowledged by the partner: it holds nothing to pair it with, so it
            # stays an unpaired crossing of ours under a key nothing else shares
            ref = exchange.ref(crossing.id)
            facts.append(
                CrossingFact(
                    id=ref,
                    post=crossing.post,
                    direction=crossing.direction,
                    occurred_at=crossing.occurred_at,
                    doc_pseudonym=f"{UNEXCHANGED}{ref}",
                )
            )
            refs[ref] = str(crossing.id)
            continue
        doc = stored.keys["travel_document.number"]
        given = stored.keys
        name = _name(given, pseudonymised)
        travels = shared.get("traveller", frozenset())
        documents = shared.get("travel_document", frozenset())
        facts.append(
            CrossingFact(
                id=stored.crossing_ref,
                post=crossing.post,
                direction=crossing.direction,
                occurred_at=crossing.occurred_at,
                doc_pseudonym=doc,
                name_pseudonym=name,
                person_pseudonym=given.get("traveller.name_key"),
                nationality=_value(
                    given,
                    "traveller.nationality",
                    traveller.nationality if "nationality" in travels else None,
                    pseudonymised,
                ),
                date_of_birth=_value(
                    given,
                    "traveller.date_of_birth",
                    traveller.date_of_birth if "date_of_birth" in travels else None,
                    pseudonymised,
                ),
                document_expiry=_value(
                    given,
                    "travel_document.expiry_date",
                    document.expiry_date if "expiry_date" in documents else None,
                    pseudonymised,
                ),
            )
        )
        refs[stored.crossing_ref] = str(crossing.id)
    return facts, refs


async def their_facts(
    session: AsyncSession, exchange: Exchange, since: datetime, until: datetime
) -> list[CrossingFact]:
    """The partner's crossings in [since, until), from the bundles it sent (kept with their
    double-blinded keys)."""
    pseudonymised = exchange.agreement.pseudonymised
    rows = await session.scalars(
        select(PartnerRecord).where(
            col(PartnerRecord.origin) == exchange.partner.node,
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
        given = bundle_keys(exchange, record.payload)
        facts.append(
            CrossingFact(
                id=str(crossing.get("id", record.record_id)),
                post=str(crossing.get("post")),
                direction=str(crossing.get("direction")),
                occurred_at=datetime.fromisoformat(crossing["occurred_at"]),
                doc_pseudonym=doc,
                name_pseudonym=_name(given, pseudonymised),
                person_pseudonym=given.get("traveller.name_key"),
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
    ours, refs = await our_facts(session, exchange, {p for p, _ in pairs}, start, end)
    theirs = await their_facts(session, exchange, start, end)
    config = ReconcileConfig(
        as_of=utcnow(),
        window=window,
        name_is_person=bool(exchange.agreement.person_fields())
        and "traveller.name_key" in exchange.agreement.pseudonymised,
    )
    result = reconcile(ours, theirs, pairs=pairs, config=config)
    # case ids from the pseudonymous ids both sides hold; our ids shown as our own
    identified = [
        (
            case_id(d.kind.value, [*d.our_ids, *d.their_ids]),
            replace(d, our_ids=tuple(refs.get(i, i) for i in d.our_ids)),
        )
        for d in result.discrepancies
    ]
    result.discrepancies[:] = [d for _, d in identified]
    await _record_discrepancies(session, identified)
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


async def _record_discrepancies(
    session: AsyncSession, identified: list[tuple[str, ReconciledCase]]
) -> None:
    for identifier, case in identified:
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
