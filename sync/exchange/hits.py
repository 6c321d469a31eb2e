"""Hit/no-hit queries between the two national nodes under the agreement.

A liaison officer asks whether the partner has seen a document (or a name and date of
birth): the question travels as a pseudonym, and the answer is yes or no with a reference,
nothing else. Details leave only when the holder's liaison officer approves a request for
them, filtered through the agreement like any export. Every answer and decision is audited
with the agreement version.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.audit import audit
from registry.models import Crossing, Officer, TravelDocument, Traveller
from registry.node import Node
from registry.problems import Problem
from sync.exchange.pseudonyms import pseudonym
from sync.exchange.service import Exchange, partner_bundle
from sync.models import HitQuery


def query_pseudonym(exchange: Exchange, kind: str, query: dict[str, Any]) -> str:
    """The pseudonym a liaison query is made of (never the clear value)."""
    key = exchange.hmac_key
    if kind == "document":
        value = pseudonym(
            "document_number",
            query.get("number"),
            hmac_key=key,
            issuing_state=query.get("issuing_state"),
        )
    else:
        name = pseudonym(
            "name_key", query.get("surname"), hmac_key=key, given_names=query.get("given_names")
        )
        value = f"{name}|{query.get('date_of_birth')}" if name else None
    if not value:
        raise Problem(
            422,
            "Nothing to query",
            field="number" if kind == "document" else "surname",
            detail="the query normalises to nothing",
        )
    return value


async def _local_matches(
    session: AsyncSession, exchange: Exchange, kind: str, value: str
) -> list[str]:
    """Our crossings whose pseudonymised document (or name+DOB) equals the query."""
    key = exchange.hmac_key
    rows = await session.execute(
        select(
            col(Crossing.id),
            col(TravelDocument.issuing_state),
            col(TravelDocument.number_norm),
            col(Traveller.surname),
            col(Traveller.given_names),
            col(Traveller.date_of_birth),
        )
        .join(TravelDocument, col(TravelDocument.id) == col(Crossing.document_id))
        .join(Traveller, col(Traveller.id) == col(Crossing.traveller_id))
        .where(col(Crossing.post).in_(exchange.our_posts))  # only posts the agreement covers
    )
    matches = []
    for crossing_id, state, number, surname, given, dob in rows:
        if kind == "document":
            candidate = pseudonym("document_number", number, hmac_key=key, issuing_state=state)
        else:
            name = pseudonym("name_key", surname, hmac_key=key, given_names=given)
            candidate = f"{name}|{dob.isoformat() if dob else None}"
        if candidate == value:
            matches.append(str(crossing_id))
    return matches


async def answer_hit_query(
    session: AsyncSession, *, node: Node, exchange: Exchange, kind: str, value: str
) -> dict[str, Any]:
    """Incoming query from the partner: yes or no, and a reference. Nothing else."""
    matches = await _local_matches(session, exchange, kind, value)
    reference = str(uuid.uuid4())
    session.add(
        HitQuery(
            reference=reference,
            direction="incoming",
            partner=exchange.partner.node,
            kind=kind,
            pseudonym=value,
            hit=bool(matches),
            matched_ids=matches,
            asked_by=exchange.partner.node,
        )
    )
    await audit(
        session,
        origin=node.settings.node_code,
        officer=None,
        action="hit_query",
        record_type="hit_query",
        record_id=reference,
        purpose="exchange",
        detail={
            "kind": kind,
            "hit": bool(matches),
            "agreement": exchange.agreement.id,
            "version": exchange.agreement.version,
        },
    )
    return {"hit": bool(matches), "reference": reference}


async def release_details(
    session: AsyncSession,
    *,
    node: Node,
    exchange: Exchange,
    officer: Officer,
    reference: str,
    approve: bool,
) -> HitQuery:
    """Our liaison decides on the partner's request for details; approval releases the
    matched crossings, filtered through the agreement like any export."""
    query = await session.get(HitQuery, reference)
    if query is None or query.direction != "incoming":
        raise Problem(404, "Unknown reference", field="reference")
    if query.detail_status != "pending":
        raise Problem(
            409,
            "Nothing to decide",
            field="reference",
            detail=f"the request is {query.detail_status}",
        )
    query.detail_status = "approved" if approve else "refused"
    query.detail_decided_by = officer.username
    if approve:
        bundles = [await partner_bundle(session, exchange, i) for i in query.matched_ids]
        query.released = [b for b in bundles if b is not None]
    await audit(
        session,
        origin=node.settings.node_code,
        officer=officer,
        action="release" if approve else "refuse_release",
        record_type="hit_query",
        record_id=reference,
        purpose="exchange",
        detail={
            "agreement": exchange.agreement.id,
            "version": exchange.agreement.version,
            "records": len(query.released),
        },
    )
    return query
