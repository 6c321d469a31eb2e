"""What leaves for the partner country: each queued crossing as its bundle (crossing,
traveller and document through ``sync.exchange.enforcement.filter_record``, the one
enforcement point), a page at a time for the exchange client, and the audit of each export.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.audit import audit
from registry.models import Crossing, TravelDocument, Traveller
from registry.node import Node
from registry.outbox import RecordView
from sync.batches import OutboxRecord
from sync.exchange.enforcement import filter_record
from sync.exchange.liaison_partner import case_message
from sync.exchange.model import Tier
from sync.exchange.pseudonyms import (
    document_message,
)
from sync.exchange.service import (
    BUNDLE,
    RESOLUTION,
    Exchange,
)
from sync.models import (
    ExchangeOutbox,
)


async def partner_bundle(
    session: AsyncSession,
    exchange: Exchange,
    crossing_id: str,
    cache: dict[str, str] | None = None,
    tier: Tier = "bulk",
) -> dict[str, Any] | None:
    """A crossing with its traveller and document as they may leave (``filter_record``), or
    None when the crossing is unknown, at a post the agreement does not cover, or not shared.
    Traveller values are bound to the crossing's document (``sync.exchange.pseudonyms``);
    ``tier`` ``"detail"`` is for an approved detail release only."""
    crossing = await session.get(Crossing, uuid.UUID(crossing_id))
    if crossing is None or crossing.post not in exchange.our_posts:
        return None
    traveller = await session.get(Traveller, crossing.traveller_id)
    document = await session.get(TravelDocument, crossing.document_id)
    return bundle_of(exchange, crossing, traveller, document, cache, tier)


def bundle_of(
    exchange: Exchange,
    crossing: Crossing,
    traveller: Traveller | None,
    document: TravelDocument | None,
    cache: dict[str, str] | None = None,
    tier: Tier = "bulk",
) -> dict[str, Any] | None:
    """The bundle of loaded rows (see ``partner_bundle``); every part through filter_record."""
    key, agreement = exchange.key, exchange.agreement
    binding = document_message(document.issuing_state, document.number) if document else None
    parts = {
        "crossing": filter_record(
            agreement,
            "crossing",
            RecordView(crossing),
            key=key,
            document=binding,
            cache=cache,
            tier=tier,
        )
    }
    if parts["crossing"] is None:
        return None
    for name, row in (("traveller", traveller), ("travel_document", document)):
        if row is not None:
            parts[name] = filter_record(
                agreement,
                name,
                RecordView(row),
                key=key,
                document=binding,
                cache=cache,
                tier=tier,
            )
    return {k: v for k, v in parts.items() if v is not None}


async def outgoing_records(
    session: AsyncSession, exchange: Exchange, after: int, limit: int = 500
) -> tuple[list[OutboxRecord], int]:
    """The next filtered records for the partner, and the last queue seq they cover."""
    rows = (
        (
            await session.execute(
                select(ExchangeOutbox)
                .where(col(ExchangeOutbox.seq) > after)
                .order_by(col(ExchangeOutbox.seq))
                .limit(limit)
            )
        )
        .scalars()
        .all()
    )
    records: list[OutboxRecord] = []
    cache: dict[str, str] = {}
    for row in rows:
        payload = await _outgoing_payload(session, exchange, row, cache)
        if payload is not None:
            record_id = row.record_id if payload[0] == RESOLUTION else exchange.ref(row.record_id)
            records.append(OutboxRecord(row.seq or 0, payload[0], record_id, payload[1]))
    return records, (rows[-1].seq or after) if rows else after


async def _outgoing_payload(
    session: AsyncSession, exchange: Exchange, row: ExchangeOutbox, cache: dict[str, str]
) -> tuple[str, dict[str, Any]] | None:
    if row.record_type == "crossing":
        bundle = await partner_bundle(session, exchange, row.record_id, cache)
        return (BUNDLE, bundle) if bundle is not None else None
    if row.record_type == "discrepancy":
        message = await case_message(session, exchange.agreement, exchange.ours.node, row.record_id)
        return (RESOLUTION, message) if message is not None else None
    return None


async def audit_export(
    session: AsyncSession, node: Node, exchange: Exchange, records: list[OutboxRecord]
) -> None:
    agreement = exchange.agreement
    await audit(
        session,
        origin=node.settings.node_code,
        officer=None,
        action="export",
        record_type="exchange_batch",
        record_id=exchange.partner.node,
        purpose="exchange",
        detail={
            "agreement": agreement.id,
            "version": agreement.version,
            "records": len(records),
            "range": [records[0].seq, records[-1].seq] if records else None,
        },
    )
