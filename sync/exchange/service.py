"""Exchange with the partner country under the data-sharing agreement.

National to partner uses the same signed, acknowledged batches as post to national. What
leaves is decided at send time by ``sync.exchange.enforcement.filter_record`` (the one
enforcement point); what arrives is checked against the same agreement, stored apart from
national records, and purged when retention runs out. Hit/no-hit queries are in
``sync.exchange.hits``. Every export, import, purge and revocation is audited with the
agreement version.

The life cycle of an agreement version (backfill, revocation, erasure, retention) is in
``sync.exchange.lifecycle``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.audit import audit
from registry.models import Crossing, TravelDocument, Traveller, utcnow
from registry.node import Node
from registry.outbox import RecordView
from registry.problems import Problem
from registry.receipts import public_key_from_text
from sync.batches import BatchHeader, BatchRejected, OutboxRecord, verify_batch
from sync.exchange.enforcement import filter_record
from sync.exchange.liaison import case_message, receive_partner_case
from sync.exchange.model import Agreement, Party, Tier
from sync.exchange.parsing import load_agreement
from sync.exchange.pseudonyms import (
    BlindingKey,
    decode_element,
    document_message,
    pseudonymous_id,
    read_blinding_key,
)
from sync.exchange.signing import (
    agreement_status,
)
from sync.models import (
    AgreementRevocation,
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
from sync.records import REFUSED_ROW, insert_missing

BUNDLE = "crossing_bundle"
RESOLUTION = "discrepancy_resolution"
# What the partner may have us blind, against our own traffic (``within_real_traffic``).
TRAFFIC_FACTOR = 1.5
TRAFFIC_SLACK = 1000
SCAN, ACKED = "exchange_scan", "exchange_ack"  # send checkpoints (sync_checkpoint channels)


@dataclass(frozen=True)
class Exchange:
    """The agreement this national node exchanges under, and our own blinding key."""

    agreement: Agreement
    key: BlindingKey
    ours: Party
    partner: Party
    development_urls: bool = False  # BORDERPOST_AGREEMENT_DEVELOPMENT_URLS

    @property
    def our_posts(self) -> set[str]:
        return {ours for ours, _ in self.agreement.pairs_for(self.ours.node)}

    def ref(self, our_id: Any) -> str:
        """The pseudonymous id of one of our records under this agreement."""
        return pseudonymous_id(self.key, self.agreement.id, our_id) or ""


def load_exchange(node: Node) -> Exchange | None:
    """The configured exchange, or None when this node has no agreement."""
    settings = node.settings
    if not settings.agreement_file:
        return None
    agreement = load_agreement(settings.agreement_file)
    key = read_blinding_key(settings.agreement_key_file)
    ours = agreement.party(settings.node_code)
    return Exchange(
        agreement,
        key,
        ours,
        agreement.partner_of(settings.node_code),
        development_urls=settings.agreement_development_urls,
    )


def revocation_text(revocation: AgreementRevocation) -> str:
    """How a revocation is told: when, by which party, and why."""
    by = revocation.party or revocation.revoked_by
    return f"on {revocation.revoked_at.date().isoformat()} by {by}: {revocation.reason}"


async def revocation_of(session: AsyncSession, agreement: Agreement) -> AgreementRevocation | None:
    return await session.get(AgreementRevocation, (agreement.id, agreement.version))


async def require_in_force(session: AsyncSession, exchange: Exchange | None) -> Exchange:
    """Refuse any exchange unless the agreement is valid, signed by both, reachable over
    https (unless the development flag), and not revoked by either party."""
    if exchange is None:
        raise Problem(
            409,
            "No agreement",
            field="agreement",
            detail="this node has no data-sharing agreement configured",
        )
    revoked = await revocation_of(session, exchange.agreement)
    in_force, problems = agreement_status(
        exchange.agreement,
        utcnow().date(),
        revoked=revocation_text(revoked) if revoked is not None else None,
        development_urls=exchange.development_urls,
    )
    if not in_force:
        raise Problem(403, "Agreement not in force", field="agreement", detail="; ".join(problems))
    return exchange


async def queue_for_partner(session: AsyncSession, crossing_ids: list[str]) -> None:
    """National ingest: queue newly stored crossings for the partner (filtered at send)."""
    if crossing_ids:
        await insert_missing(
            session,
            "exchange_outbox",
            [
                {"record_type": "crossing", "record_id": i, "created_at": utcnow()}
                for i in crossing_ids
            ],
        )


# ------------------------------------------------------------------ sending
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
            agreement, "crossing", RecordView(crossing), key=key, document=binding, tier=tier
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


# ------------------------------------------------------------------ receiving
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
