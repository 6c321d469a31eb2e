"""Exchange with the partner country under the data-sharing agreement.

National to partner uses the same signed, acknowledged batches as post to national. What
leaves is decided at send time by ``sync.exchange.enforcement.filter_record`` (the one
enforcement point); what arrives is checked against the same agreement, stored apart from
national records, and purged when retention runs out. Hit/no-hit queries are in
``sync.exchange.hits``. Every export, import, purge and revocation is audited with the
agreement version.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import delete, func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.audit import audit
from registry.models import Crossing, Officer, TravelDocument, Traveller, utcnow
from registry.node import Node
from registry.outbox import record_payload
from registry.problems import Problem
from registry.receipts import public_key_from_text
from sync.batches import BatchHeader, BatchRejected, OutboxRecord, verify_batch
from sync.exchange.enforcement import filter_record
from sync.exchange.model import Agreement, Party, Tier
from sync.exchange.parsing import load_agreement
from sync.exchange.pseudonyms import (
    BlindingKey,
    decode_point,
    document_message,
    pseudonymous_id,
    read_blinding_key,
)
from sync.exchange.signing import agreement_status
from sync.models import (
    AgreementRevocation,
    Discrepancy,
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


@dataclass(frozen=True)
class Exchange:
    """The agreement this national node exchanges under, and our own blinding key."""

    agreement: Agreement
    key: BlindingKey
    ours: Party
    partner: Party

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
    return Exchange(agreement, key, ours, agreement.partner_of(settings.node_code))


async def require_in_force(session: AsyncSession, exchange: Exchange | None) -> Exchange:
    """Refuse any exchange unless the agreement is valid, signed by both, and not revoked."""
    if exchange is None:
        raise Problem(
            409,
            "No agreement",
            field="agreement",
            detail="this node has no data-sharing agreement configured",
        )
    in_force, problems = agreement_status(exchange.agreement, utcnow().date())
    revoked = await session.get(
        AgreementRevocation, (exchange.agreement.id, exchange.agreement.version)
    )
    if revoked is not None:
        problems.append(f"revoked on {revoked.revoked_at.date()} by {revoked.revoked_by}")
    if not in_force or revoked is not None:
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
            agreement, "crossing", record_payload(crossing), key=key, document=binding, tier=tier
        )
    }
    if parts["crossing"] is None:
        return None
    for name, row in (("traveller", traveller), ("travel_document", document)):
        if row is not None:
            parts[name] = filter_record(
                agreement,
                name,
                record_payload(row),
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
        case = await session.get(Discrepancy, row.record_id)
        if case is None:
            return None
        return RESOLUTION, {
            "id": case.id,
            "status": case.status,
            "resolution": case.resolution,
            "notes": case.notes,
        }
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
                decode_point(value)
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
                async with session.begin_nested():
                    await apply_partner_resolution(session, payload)
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


async def apply_partner_resolution(session: AsyncSession, payload: dict[str, Any]) -> None:
    """The partner resolved a discrepancy we share: take its status and notes."""
    case = await session.get(Discrepancy, str(payload.get("id", "")))
    if case is None:
        return
    case.status = str(payload.get("status", case.status))
    case.resolution = payload.get("resolution")
    known = {(n.get("at"), n.get("text")) for n in case.notes}
    case.notes = case.notes + [
        n for n in payload.get("notes", []) if (n.get("at"), n.get("text")) not in known
    ]
    case.updated_at = utcnow()


# ------------------------------------------------------------------ retention
async def purge_expired(session: AsyncSession, *, node: Node, exchange: Exchange | None) -> int:
    """Delete partner records past their retention; audited with the agreement version."""
    now = utcnow()
    doomed = await session.scalar(
        select(func.count()).select_from(PartnerRecord).where(col(PartnerRecord.expires_at) < now)
    )
    if not doomed:
        return 0
    await session.execute(delete(PartnerRecord).where(col(PartnerRecord.expires_at) < now))
    agreement = exchange.agreement if exchange else None
    await audit(
        session,
        origin=node.settings.node_code,
        officer=None,
        action="purge",
        record_type="partner_record",
        record_id="retention",
        purpose="retention",
        detail={
            "purged": doomed,
            "agreement": agreement.id if agreement else None,
            "version": agreement.version if agreement else None,
        },
    )
    return int(doomed)


async def revoke_agreement(
    session: AsyncSession, *, node: Node, exchange: Exchange, officer: Officer | None, reason: str
) -> None:
    agreement = exchange.agreement
    session.add(
        AgreementRevocation(
            agreement_id=agreement.id,
            version=agreement.version,
            revoked_by=officer.username if officer else "cli",
            reason=reason,
        )
    )
    await audit(
        session,
        origin=node.settings.node_code,
        officer=officer,
        action="revoke",
        record_type="agreement",
        record_id=agreement.id,
        purpose="exchange",
        detail={"version": agreement.version, "reason": reason},
    )
