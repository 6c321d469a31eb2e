"""What arrives from the partner country: its signed batches checked against the
agreement field by field (what fails is quarantined), its blinded values raised to our own
scalar before anything is kept (``reblind_bundle``), the budget and the bound of our own
real traffic that limit what it may have us blind, the acknowledged keys of our own
crossings, and its case resolutions.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.audit import audit
from registry.models import Crossing, utcnow
from registry.node import Node
from registry.problems import Problem
from registry.receipts import public_key_from_text
from sync.batches import BatchHeader, BatchRejected, OutboxRecord, verify_batch
from sync.bulk import REFUSED_ROW, insert_missing
from sync.exchange.liaison_partner import receive_partner_case
from sync.exchange.pseudonyms import (
    decode_element,
)
from sync.exchange.service import (
    BUNDLE,
    RESOLUTION,
    TRAFFIC_FACTOR,
    TRAFFIC_SLACK,
    Exchange,
    load_exchange,
    require_in_force,
)
from sync.models import (
    ExchangeBudget,
    ExchangeOutbox,
    PartnerRecord,
)
from sync.quarantine import (
    RECORD_ID_MAX,
    Quarantined,
    keep,
    payload_text,
    quarantined,
    refused_text,
)
from sync.receiver import BatchGap, locked_ingest_state


def _check_fields(exchange: Exchange, record: OutboxRecord) -> dict[str, Any]:
    """A received record must hold nothing the agreement does not allow."""
    payload: Any = record.payload
    if isinstance(payload, msgspec.Raw | bytes | str):
        try:
            payload = msgspec.json.decode(payload)
        except msgspec.DecodeError as exc:
            raise BatchRejected("malformed", f"record {record.record_id}: {exc}") from exc
    if not isinstance(payload, dict) or record.record_type not in (BUNDLE, RESOLUTION):
        raise BatchRejected("forbidden_record", f"{record.record_type} is not exchanged")
    if record.record_type == RESOLUTION:
        return payload
    allowed = exchange.agreement.record_types
    for part, row in payload.items():
        if part not in allowed or not isinstance(row, dict) or set(row) - allowed[part]:
            raise BatchRejected(
                "outside_agreement", f"{part} carries fields the agreement does not allow"
            )
    return payload


def _occurred(payload: dict[str, Any]) -> datetime | None:
    text = payload.get("crossing", {}).get("occurred_at")
    return datetime.fromisoformat(text) if text else None


class Replay(BatchGap):
    """A batch we already hold: refused without harm, with the double-blinded keys we keep
    for its records so that the sender, whose acknowledgement was lost, gets them again."""

    def __init__(self, ack: int, keys: dict[str, dict[str, str]]) -> None:
        super().__init__(ack, "replay")
        self.keys = keys


async def spend_budget(
    session: AsyncSession, exchange: Exchange, kind: str, amount: int, limit: int
) -> int:
    """Take ``amount`` from the partner's daily ``kind`` budget (``limit`` a day, UTC) and
    return what is left; Problem 429 when it would overdraw (nothing is taken then)."""
    day = utcnow().date().isoformat()
    key = {"partner": exchange.partner.node, "day": day, "kind": kind}
    await insert_missing(session, "exchange_budget", [{**key, "used": 0}])
    budget = (
        await session.scalars(
            select(ExchangeBudget)
            .where(
                col(ExchangeBudget.partner) == key["partner"],
                col(ExchangeBudget.day) == day,
                col(ExchangeBudget.kind) == kind,
            )
            .with_for_update()
        )
    ).one()
    if budget.used + amount > limit:
        raise Problem(
            429,
            "Daily budget spent",
            field="agreement",
            detail=f"{kind}: {budget.used} of {limit} used today under the agreement",
        )
    budget.used += amount
    return limit - budget.used


async def within_real_traffic(session: AsyncSession, exchange: Exchange, incoming: int) -> None:
    """Bound what the partner can have us blind by our own traffic at the paired posts.

    Each bundle we store has its elements raised to our scalar and returned: an online
    oracle for the partner. Besides the daily budget, the partner records we hold under
    retention (plus ``incoming``) may not exceed ``TRAFFIC_FACTOR`` times our crossings at
    the paired posts over the same retention period, plus ``TRAFFIC_SLACK``: both sides see
    the same travellers (an exit there is an entry here), so real traffic fits, and made-up
    bundles can test at most about as many guesses as the border has crossings (and each
    shows here as a partner crossing nobody matches). BatchRejected ``over_budget``: the
    partner's sender retries, so a lag of our own posts' sync only delays its batches."""
    if not incoming:
        return
    horizon = utcnow() - timedelta(days=exchange.agreement.retention_days)
    ours = int(
        await session.scalar(
            select(func.count())
            .select_from(Crossing)
            .where(
                col(Crossing.post).in_(sorted(exchange.our_posts)),
                col(Crossing.occurred_at) >= horizon,
            )
        )
        or 0
    )
    held = int(
        await session.scalar(
            select(func.count())
            .select_from(PartnerRecord)
            .where(
                col(PartnerRecord.origin) == exchange.partner.node,
                col(PartnerRecord.record_type) == BUNDLE,
                col(PartnerRecord.expires_at) >= utcnow(),
            )
        )
        or 0
    )
    allowed = int(TRAFFIC_FACTOR * ours) + TRAFFIC_SLACK
    if held + incoming > allowed:
        raise BatchRejected(
            "over_budget",
            f"{held} partner crossings held and {incoming} more would exceed {allowed}, "
            f"{TRAFFIC_FACTOR} times our {ours} crossings at the paired posts plus {TRAFFIC_SLACK}",
        )


def reblind_bundle(
    exchange: Exchange, payload: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """A partner's bundle with every pseudonymised value raised to our scalar (what we
    keep: ``H(x)^ab``, never ``H(x)^a``), and those keys by ``record_type.field``."""
    pseudonymised = exchange.agreement.pseudonymised
    keys: dict[str, str] = {}
    out: dict[str, Any] = {}
    for part, row in payload.items():
        kept = dict(row)
        for name, value in row.items():
            qualified = f"{part}.{name}"
            if qualified not in pseudonymised or value is None:
                continue
            try:
                kept[name] = keys[qualified] = exchange.key.reblind(value)
            except ValueError as exc:
                raise BatchRejected("malformed", f"{qualified}: {exc}") from exc
        out[part] = kept
    return out, keys


async def receive_from_partner(
    session: AsyncSession,
    *,
    node: Node,
    exchange: Exchange,
    header: BatchHeader,
    signature: bytes,
    body: bytes,
) -> tuple[int, int, dict[str, dict[str, str]]]:
    """Verify and store a partner batch apart from national records.

    Returns (ack, stored, keys): ``keys`` maps each stored bundle's record id to its
    double-blinded keys, for the signed acknowledgement. The bundles count against the
    agreement's ``daily_blinding_budget`` (BatchRejected ``over_budget`` past it)."""
    if header.origin != exchange.partner.node:
        raise BatchRejected("unknown_sender", f"{header.origin} is not party to the agreement")
    records = verify_batch(
        header,
        signature,
        body,
        public_key_from_text(exchange.partner.public_key),
        destination=node.settings.node_code,
    )
    state = await locked_ingest_state(session, header.origin)
    if header.seq_to <= state.contiguous_seq:
        raise Replay(state.contiguous_seq, await _kept_keys(session, exchange, records))
    if header.after_seq > state.contiguous_seq:
        raise BatchGap(state.contiguous_seq, "gap")
    bundles = sum(1 for r in records if r.record_type == BUNDLE)
    await within_real_traffic(session, exchange, bundles)
    try:
        await spend_budget(
            session, exchange, "blinding", bundles, exchange.agreement.daily_blinding_budget
        )
    except Problem as exc:
        raise BatchRejected("over_budget", str(exc.detail)) from exc
    keys: dict[str, dict[str, str]] = {}
    kept = await store_partner_records(session, exchange, header.origin, records, keys)
    await keep(session, header.origin, kept)
    state.contiguous_seq = header.seq_to
    state.batches_accepted += 1
    await audit(
        session,
        origin=node.settings.node_code,
        officer=None,
        action="import",
        record_type="exchange_batch",
        record_id=header.origin,
        purpose="exchange",
        detail={
            "agreement": exchange.agreement.id,
            "version": exchange.agreement.version,
            "records": len(records),
            "quarantined": len(kept),
            "blinded": len(keys),
        },
    )
    return state.contiguous_seq, len(records) - len(kept), keys


async def _kept_keys(
    session: AsyncSession, exchange: Exchange, records: list[OutboxRecord]
) -> dict[str, dict[str, str]]:
    """The double-blinded keys we already keep for these partner records."""
    ids = [r.record_id for r in records if r.record_type == BUNDLE][:1000]
    if not ids:
        return {}
    rows = await session.scalars(
        select(PartnerRecord).where(
            col(PartnerRecord.origin) == exchange.partner.node,
            col(PartnerRecord.record_type) == BUNDLE,
            col(PartnerRecord.record_id).in_(ids),
        )
    )
    return {row.record_id: bundle_keys(exchange, row.payload) for row in rows}


def bundle_keys(exchange: Exchange, payload: dict[str, Any]) -> dict[str, str]:
    """The pseudonymised values of a stored bundle, by ``record_type.field``."""
    pseudonymised = exchange.agreement.pseudonymised
    return {
        f"{part}.{name}": value
        for part, row in payload.items()
        if isinstance(row, dict)
        for name, value in row.items()
        if f"{part}.{name}" in pseudonymised and isinstance(value, str)
    }


async def store_acknowledged_keys(
    session: AsyncSession,
    exchange: Exchange,
    records: list[OutboxRecord],
    keys: Any,
) -> int:
    """Keep the double-blinded keys the partner returned for our bundles (sender side).

    Only keys of bundles we sent, for fields the agreement pseudonymises, and only valid
    group elements are kept; returns how many crossings got their keys."""
    if not isinstance(keys, dict):
        return 0
    sent = {r.seq: r.record_id for r in records if r.record_type == BUNDLE}
    if not sent:
        return 0
    rows = await session.scalars(
        select(ExchangeOutbox).where(col(ExchangeOutbox.seq).in_(list(sent)))
    )
    pseudonymised = exchange.agreement.pseudonymised
    stored = []
    for row in rows:
        ref = sent[row.seq or 0]
        given = keys.get(ref)
        if not isinstance(given, dict):
            continue
        valid: dict[str, str] = {}
        for field_name, value in given.items():
            if field_name not in pseudonymised:
                continue
            try:
                decode_element(value)
            except ValueError:
                continue
            valid[field_name] = value
        stored.append(
            {
                "agreement_id": exchange.agreement.id,
                "crossing_id": row.record_id,
                "crossing_ref": ref,
                "agreement_version": exchange.agreement.version,
                "keys": valid,
                "acked_at": utcnow(),
            }
        )
    await insert_missing(session, "exchange_key", stored)
    return len(stored)


PARTNER_TYPES = (BUNDLE, RESOLUTION)  # what a partner sends (quarantined entries too)


async def store_partner_records(
    session: AsyncSession,
    exchange: Exchange,
    origin: str,
    records: list[OutboxRecord],
    keys: dict[str, dict[str, str]] | None = None,
) -> list[Quarantined]:
    """Store a partner's records apart from national records, record by record: a record
    the agreement does not allow or the database cannot store is returned to quarantine,
    and the rest is stored (one insert for all when none is refused). Bundles are kept
    double-blinded (``reblind_bundle``); their keys go into ``keys`` by record id."""
    retention = timedelta(days=exchange.agreement.retention_days)
    kept: list[Quarantined] = []
    rows: list[tuple[OutboxRecord, dict[str, Any]]] = []

    def refuse(record: OutboxRecord, reason: str, detail: str) -> None:
        payload = payload_text(record.payload)
        kept.append(
            quarantined(record.seq, record.record_type, record.record_id, reason, detail, payload)
        )

    for record in records:
        try:
            payload = _check_fields(exchange, record)
            if len(record.record_id) > RECORD_ID_MAX or refused_text(record.record_id, None):
                raise BatchRejected("unstorable_text", "the record id cannot be stored")
            if record.record_type == RESOLUTION:
                await apply_partner_resolution(session, exchange, payload)
                continue
            occurred = _occurred(payload)
            payload, blinded = reblind_bundle(exchange, payload)
        except BatchRejected as exc:
            refuse(record, exc.reason, str(exc))
            continue
        except (ValueError, TypeError, AttributeError, DBAPIError) as exc:
            refuse(record, "malformed", f"{type(exc).__name__}: {str(exc)[:300]}")
            continue
        row = {
            "origin": origin,
            "record_type": record.record_type,
            "record_id": record.record_id,
            "agreement_id": exchange.agreement.id,
            "agreement_version": exchange.agreement.version,
            "payload": payload,
            "occurred_at": occurred,
            "received_at": utcnow(),
            "expires_at": (occurred or utcnow()) + retention,
        }
        rows.append((record, row))
        if keys is not None:
            keys[record.record_id] = blinded
    try:
        async with session.begin_nested():
            await insert_missing(session, "partner_record", [row for _, row in rows])
        return kept
    except (DBAPIError, *REFUSED_ROW):
        pass
    for record, row in rows:  # find the rows the database refuses
        try:
            async with session.begin_nested():
                await insert_missing(session, "partner_record", [row])
        except (DBAPIError, *REFUSED_ROW) as exc:
            refuse(record, "refused_by_database", f"{type(exc).__name__}: {str(exc)[:300]}")
            if keys is not None:
                keys.pop(record.record_id, None)
    return kept


async def retry_partner_record(
    session: AsyncSession, *, node: Node, entry: Any
) -> Quarantined | None:
    """Store a quarantined partner record again (under the agreement in force now)."""
    exchange = await require_in_force(session, load_exchange(node))
    raw = msgspec.Raw((entry.payload or "null").encode())
    record = OutboxRecord(entry.seq, entry.record_type, entry.record_id, raw)
    found = await store_partner_records(session, exchange, entry.origin, [record])
    return found[0] if found else None


async def apply_partner_resolution(
    session: AsyncSession, exchange: Exchange, payload: dict[str, Any]
) -> None:
    """The partner's notes and resolutions on a case we share: checked against the fixed
    vocabulary and the agreement (a bad one is refused, audited, and never stored), then
    added to the case's history; differing resolutions make the case a conflict."""
    await receive_partner_case(
        session,
        agreement=exchange.agreement,
        our_node=exchange.ours.node,
        partner_node=exchange.partner.node,
        payload=payload,
    )
