"""Hit/no-hit queries between the two national nodes, as an oblivious PRF.

A liaison officer asks whether the partner has seen a document (or a name and date of
birth). The asker hashes the question to the group, ``P = H(x)`` (``pseudonyms.query_message``),
and sends ``P^r`` with a one-time scalar ``r``: the partner learns nothing of ``x``. The
partner raises it to its own scalar and returns ``P^(ra)`` (``evaluate_for_partner``: one
unit of the agreement's ``daily_hit_budget``, audited with the agreement version); the asker
unblinds it to ``P^a`` (``unblind``) and asks with that. The partner looks ``P^a`` up among its
WHOLE registry's documents and name+birth dates blinded with its scalar (``BlindedIndex``,
kept current by ``refresh_index``), and answers yes or no with a reference, nothing else.
Without the partner's scalar, ``P^a`` cannot be computed offline: every guess is one
budgeted, signed, audited request. Details leave only when the holder's liaison officer
approves a request for them, filtered through the agreement like any export.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, Final

import rbcl
from sqlalchemy import select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.audit import audit
from registry.models import Crossing, Officer, TravelDocument, Traveller, utcnow
from registry.node import Node
from registry.problems import Problem
from sync.bulk import insert_missing
from sync.exchange.pseudonyms import (
    decode_point,
    document_message,
    element_point,
    encode_point,
    query_message,
)
from sync.exchange.receiving import spend_budget
from sync.exchange.sending import partner_bundle
from sync.exchange.service import Exchange
from sync.models import BlindedIndex, HitQuery

HIT_KINDS: Final = ("document", "name_dob")
_INDEX_PAGE: Final = 5000
# Start of the last complete refresh of the index in this process, per key fingerprint: a
# query then only indexes rows stored since (with a margin), not the day's whole traffic.
_REFRESHED: dict[str, datetime] = {}
_MARGIN: Final = timedelta(minutes=5)


def blind_query(kind: str, query: dict[str, Any]) -> tuple[bytes, str]:
    """The asker's first step: ``(r, H(x)^r)`` with a fresh one-time scalar ``r``."""
    message = query_message(kind, query)
    if message is None:
        raise Problem(
            422,
            "Nothing to query",
            field="number" if kind == "document" else "surname",
            detail="the query normalises to nothing",
        )
    r = bytes(rbcl.crypto_core_ristretto255_scalar_random())
    blinded = bytes(rbcl.crypto_scalarmult_ristretto255(r, element_point(message)))
    return r, encode_point(blinded)


def unblind(r: bytes, evaluated: Any) -> str:
    """The asker's second step: ``(P^(ra))^(1/r) = P^a`` (SyncError-free: ValueError)."""
    point = decode_point(evaluated)
    inverse = bytes(rbcl.crypto_core_ristretto255_scalar_invert(r))
    return encode_point(bytes(rbcl.crypto_scalarmult_ristretto255(inverse, point)))


async def evaluate_for_partner(
    session: AsyncSession, *, node: Node, exchange: Exchange, kind: str, blinded: str
) -> dict[str, Any]:
    """The partner's blinded question raised to our scalar: one unit of its daily budget."""
    try:
        point = decode_point(blinded)
    except ValueError as exc:
        raise Problem(400, "Invalid blinded value", field="blinded", detail=str(exc)) from exc
    left = await spend_budget(session, exchange, "hit", 1, exchange.agreement.daily_hit_budget)
    await audit(
        session,
        origin=node.settings.node_code,
        officer=None,
        action="hit_evaluate",
        record_type="hit_query",
        record_id=exchange.partner.node,
        purpose="exchange",
        detail={
            "kind": kind,
            "agreement": exchange.agreement.id,
            "version": exchange.agreement.version,
            "budget_left": left,
        },
    )
    return {"evaluated": encode_point(exchange.key.evaluate(point)), "budget_left": left}


async def refresh_index(
    session: AsyncSession, exchange: Exchange, since: datetime | None = None
) -> int:
    """Blind, with our scalar, every document and traveller of the registry not yet in the
    hit index (all posts, not only the paired ones), or only those stored ``since``; returns
    how many were added. The exchange runner refreshes everything each cycle; a query
    first indexes what was stored since the last complete refresh (at most a day back), so
    a crossing synced a moment ago is found."""
    key = exchange.key
    started = utcnow()
    recent_documents = col(TravelDocument.created_at) >= since if since else true()
    recent_travellers = col(Traveller.created_at) >= since if since else true()
    fingerprint = key.fingerprint
    added = 0
    indexed = select(col(BlindedIndex.record_id)).where(
        col(BlindedIndex.fingerprint) == fingerprint
    )
    while True:
        documents = (
            await session.execute(
                select(
                    col(TravelDocument.id),
                    col(TravelDocument.issuing_state),
                    col(TravelDocument.number_norm),
                )
                .where(
                    recent_documents,
                    col(TravelDocument.id).not_in(
                        indexed.where(col(BlindedIndex.kind) == "document")
                    ),
                )
                .limit(_INDEX_PAGE)
            )
        ).all()
        travellers = (
            await session.execute(
                select(
                    col(Traveller.id),
                    col(Traveller.surname),
                    col(Traveller.given_names),
                    col(Traveller.date_of_birth),
                )
                .where(
                    recent_travellers,
                    col(Traveller.id).not_in(indexed.where(col(BlindedIndex.kind) == "name_dob")),
                )
                .limit(_INDEX_PAGE)
            )
        ).all()
        rows = []
        for document_id, state, number in documents:
            message = document_message(state, number)
            value = key.evaluate_message(message) if message else "-"
            rows.append((document_id, "document", value))
        for traveller_id, surname, given, dob in travellers:
            query = {"surname": surname, "given_names": given, "date_of_birth": dob}
            message = query_message("name_dob", query)
            rows.append(
                (traveller_id, "name_dob", key.evaluate_message(message) if message else "-")
            )
        if not rows:
            if since is None:
                _REFRESHED[fingerprint] = started
            return added
        await insert_missing(
            session,
            "blinded_index",
            [
                {"fingerprint": fingerprint, "kind": kind, "record_id": i, "value": v}
                for i, kind, v in rows
            ],
        )
        added += len(rows)


async def _local_matches(
    session: AsyncSession, exchange: Exchange, kind: str, value: str
) -> list[str]:
    """Our crossings (any post) of the documents or travellers whose blinded key is ``value``."""
    day_ago = utcnow() - timedelta(days=1)
    last = _REFRESHED.get(exchange.key.fingerprint)
    await refresh_index(session, exchange, since=max(day_ago, last - _MARGIN) if last else day_ago)
    ids = (
        await session.scalars(
            select(col(BlindedIndex.record_id)).where(
                col(BlindedIndex.fingerprint) == exchange.key.fingerprint,
                col(BlindedIndex.kind) == kind,
                col(BlindedIndex.value) == value,
            )
        )
    ).all()
    if not ids:
        return []
    column = col(Crossing.document_id) if kind == "document" else col(Crossing.traveller_id)
    crossings = await session.scalars(select(col(Crossing.id)).where(column.in_(ids)).limit(1000))
    return [str(i) for i in crossings] or [str(i) for i in ids]


async def answer_hit_query(
    session: AsyncSession, *, node: Node, exchange: Exchange, kind: str, value: str
) -> dict[str, Any]:
    """Incoming query from the partner (``P^a``, unblinded by the partner after
    ``evaluate_for_partner``): yes or no, and a reference. Nothing else."""
    try:
        decode_point(value)
    except ValueError as exc:
        raise Problem(400, "Invalid blinded value", field="pseudonym", detail=str(exc)) from exc
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
        bundles = [
            await partner_bundle(session, exchange, i, tier="detail") for i in query.matched_ids
        ]
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
            "purpose": query.detail_purpose,
        },
    )
    return query
