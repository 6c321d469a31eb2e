"""Tables of node-to-node sync: enrolled peers and their keys, send checkpoints, receive
state, and the versioned reference-data log that national publishes to its posts."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from registry.models import _json, _ts, utcnow

PEER_STATUSES = ("pending", "approved", "revoked")


class SyncPeer(SQLModel, table=True):
    """Another node this one talks to: on national its posts (and the partner), on a post
    its national node. Batches are verified with ``public_key``."""

    __tablename__ = "sync_peer"

    node_code: str = Field(primary_key=True, max_length=32)
    role: str = Field(max_length=10)  # post | national | partner
    url: str | None = Field(default=None, max_length=300)
    public_key: str = Field(max_length=64)
    status: str = Field(default="pending", max_length=10)
    enrolled_at: datetime = _ts(default_factory=utcnow)
    decided_at: datetime | None = _ts(default=None, nullable=True)
    decided_by: str | None = Field(default=None, max_length=64)
    # a post: the SHA-256 of national's TLS certificate, when the link pins it (hex)
    tls_cert_sha256: str | None = Field(default=None, max_length=64)


class EnrolmentInvitation(SQLModel, table=True):
    """National side: a one-time enrolment code that an admin issued for one post code.

    Only the SHA-256 of the code is kept. A code enrols (and approves) its post once,
    before ``expires_at``; ``used_at`` and the fingerprint of the key it enrolled record
    that use."""

    __tablename__ = "enrolment_invitation"

    code_sha256: str = Field(primary_key=True, max_length=64)
    node_code: str = Field(max_length=32, index=True)
    issued_at: datetime = _ts(default_factory=utcnow)
    issued_by: str = Field(max_length=64)
    expires_at: datetime = _ts()
    used_at: datetime | None = _ts(default=None, nullable=True)
    used_key_sha256: str | None = Field(default=None, max_length=64)


class SyncCheckpoint(SQLModel, table=True):
    """Sender side: how far a channel to a peer has been acknowledged."""

    __tablename__ = "sync_checkpoint"

    peer: str = Field(primary_key=True, max_length=32)
    channel: str = Field(primary_key=True, max_length=16)  # records | photos | reference
    position: int = 0
    last_attempt_at: datetime | None = _ts(default=None, nullable=True)
    last_success_at: datetime | None = _ts(default=None, nullable=True)
    last_error: str | None = Field(default=None, max_length=500)


class IngestState(SQLModel, table=True):
    """Receiver side: the highest contiguous outbox seq stored from each origin."""

    __tablename__ = "ingest_state"

    origin: str = Field(primary_key=True, max_length=32)
    contiguous_seq: int = 0
    batches_accepted: int = 0
    batches_rejected: int = 0
    last_batch_at: datetime | None = _ts(default=None, nullable=True)


class ReferenceChange(SQLModel, table=True):
    """National side: every change to reference data (officers, watchlists, stay rules,
    post keys), numbered so that posts pull only what changed since their last pull."""

    __tablename__ = "reference_change"

    version: int | None = Field(default=None, primary_key=True)
    record_type: str = Field(max_length=40)
    record_id: str = Field(max_length=80)
    payload: dict[str, Any] = _json()
    created_at: datetime = _ts(default_factory=utcnow)


class ExchangeOutbox(SQLModel, table=True):
    """National side: what waits to go to the partner country. Only ids are queued; the
    row is read and filtered through the agreement at send time, so a changed or revoked
    agreement applies to everything not yet sent."""

    __tablename__ = "exchange_outbox"
    # the backfill queues a crossing once (migration 0014)
    __table_args__ = (Index("ix_exchange_outbox_record", "record_type", "record_id"),)

    seq: int | None = Field(default=None, primary_key=True)
    record_type: str = Field(max_length=40)  # crossing | discrepancy
    record_id: str = Field(max_length=80)
    created_at: datetime = _ts(default_factory=utcnow)


class PartnerRecord(SQLModel, table=True):
    """What the partner country sent under an agreement: stored apart from national
    records, and purged when the agreement's retention runs out."""

    __tablename__ = "partner_record"

    origin: str = Field(primary_key=True, max_length=32)
    record_type: str = Field(primary_key=True, max_length=40)
    record_id: str = Field(primary_key=True, max_length=80)
    agreement_id: str = Field(max_length=80)
    agreement_version: int
    payload: dict[str, Any] = _json()
    occurred_at: datetime | None = _ts(default=None, nullable=True, index=True)
    received_at: datetime = _ts(default_factory=utcnow)
    expires_at: datetime = _ts(index=True)


class ExchangeKey(SQLModel, table=True):
    """National side: the double-blinded identity keys of one of our crossings, as the
    partner returned them in its signed acknowledgement (``sync.exchange.pseudonyms``).
    Reconciliation compares them with the keys of the partner's records; they reveal
    nothing without both countries' secret scalars."""

    __tablename__ = "exchange_key"

    agreement_id: str = Field(primary_key=True, max_length=80)
    crossing_id: str = Field(primary_key=True, max_length=40)  # our UUID
    crossing_ref: str = Field(max_length=40, index=True)  # its pseudonymous id
    agreement_version: int
    keys: dict[str, Any] = _json()  # "record_type.field" -> double-blinded key
    acked_at: datetime = _ts(default_factory=utcnow)


class BlindedIndex(SQLModel, table=True):
    """National side: our whole registry's documents and name+birth dates blinded with our
    own scalar (``fingerprint`` names it), to answer hit/no-hit queries without a scan."""

    __tablename__ = "blinded_index"

    fingerprint: str = Field(primary_key=True, max_length=16)
    kind: str = Field(primary_key=True, max_length=16)  # document | name_dob
    record_id: uuid.UUID = Field(primary_key=True)  # a document's or traveller's id
    value: str = Field(max_length=43, index=True)


class ExchangeBudget(SQLModel, table=True):
    """How much of an agreement's daily budget the partner used: records blinded in our
    acknowledgements (``blinding``) and hit/no-hit evaluations (``hit``)."""

    __tablename__ = "exchange_budget"

    partner: str = Field(primary_key=True, max_length=32)
    day: str = Field(primary_key=True, max_length=10)  # ISO date, UTC
    kind: str = Field(primary_key=True, max_length=16)
    used: int = 0


class AgreementRevocation(SQLModel, table=True):
    """A party's revocation of an agreement version: exchange stops at once.

    ``party`` is the country that revoked (ours, or the partner's when its signed notice
    arrived); ``statement`` is the signed notice (canonical JSON) and ``signature`` its
    Ed25519 signature by that party's national node key. ``notified_at`` is when the
    partner acknowledged our notice (None until then: the exchange runner keeps sending
    it); ``erased`` counts the partner records erased here under the revoked version."""

    __tablename__ = "agreement_revocation"

    agreement_id: str = Field(primary_key=True, max_length=80)
    version: int = Field(primary_key=True)
    revoked_at: datetime = _ts(default_factory=utcnow)
    revoked_by: str = Field(max_length=64)
    reason: str = Field(max_length=500)
    party: str | None = Field(default=None, max_length=3)
    statement: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    signature: str | None = Field(default=None, max_length=100)
    notified_at: datetime | None = _ts(default=None, nullable=True)
    erased: int = 0


class AgreementActivation(SQLModel, table=True):
    """When this node first found an agreement version in force, and the backfill then:
    crossings ingested before (within the agreement's posts and period) queued once,
    and records queued during an earlier version's revocation dropped."""

    __tablename__ = "agreement_activation"

    agreement_id: str = Field(primary_key=True, max_length=80)
    version: int = Field(primary_key=True)
    content_sha256: str = Field(max_length=64)
    activated_at: datetime = _ts(default_factory=utcnow)
    backfilled: int = 0
    dropped: int = 0


class HitQuery(SQLModel, table=True):
    """A Prüm-style hit/no-hit query, asked by us (outgoing) or by the partner (incoming).
    Details leave only through an explicit request that the holder approves."""

    __tablename__ = "hit_query"

    reference: str = Field(primary_key=True, max_length=40)
    direction: str = Field(max_length=8)  # outgoing | incoming
    partner: str = Field(max_length=32)
    kind: str = Field(max_length=16)  # document | name_dob
    pseudonym: str = Field(max_length=128)
    hit: bool = False
    matched_ids: list[str] = _json(list)
    asked_by: str = Field(max_length=64)
    created_at: datetime = _ts(default_factory=utcnow)
    detail_status: str = Field(default="none", max_length=10)  # none|pending|approved|refused
    detail_decided_by: str | None = Field(default=None, max_length=64)
    released: list[dict[str, Any]] = _json(list)
    detail_purpose: str | None = Field(default=None, max_length=64)


class Discrepancy(SQLModel, table=True):
    """A reconciliation case needing a liaison team's attention. Its id is derived from the
    crossings involved, so both countries compute the same id and share one status."""

    __tablename__ = "discrepancy"

    id: str = Field(primary_key=True, max_length=40)
    our_post: str = Field(max_length=32, index=True)
    their_post: str = Field(max_length=32)
    kind: str = Field(max_length=24)
    our_ids: list[str] = _json(list)
    their_ids: list[str] = _json(list)
    doc_pseudonym: str = Field(max_length=128)
    reason: str = Field(max_length=500)
    at: datetime = _ts()
    status: str = Field(default="open", max_length=10)  # open | resolved | conflict
    resolution: str | None = Field(default=None, max_length=30)
    notes: list[dict[str, Any]] = _json(list)
    updated_at: datetime = _ts(default_factory=utcnow)


class DiscrepancyEvent(SQLModel, table=True):
    """Who said what about a discrepancy case, in order: a note (reason codes and references
    to crossings or cases, free text only when it is ours or the agreement lets it cross)
    and, when it resolves, the resolution. Our events name the liaison officer (``author``);
    the partner's name only its node (``origin``), and are purged at ``expires_at``."""

    __tablename__ = "discrepancy_event"

    id: str = Field(primary_key=True, max_length=40)
    discrepancy_id: str = Field(max_length=40, index=True)
    origin: str = Field(max_length=32)
    author: str | None = Field(default=None, max_length=64)
    at: datetime = _ts()
    resolution: str | None = Field(default=None, max_length=30)
    reasons: list[str] = _json(list)
    references: list[dict[str, Any]] = _json(list)
    text: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    received_at: datetime | None = _ts(default=None, nullable=True)
    expires_at: datetime | None = _ts(default=None, nullable=True, index=True)


QUARANTINE_STATUSES = ("pending", "retried", "discarded")


class SyncQuarantine(SQLModel, table=True):
    """A received record this node could not store, kept with its reason and its payload as
    received, so that the rest of its batch is stored and acknowledged past it.

    On national: what a post (or the partner) sent, until an admin retries it (through the
    normal idempotent ingest path) or discards it. On a post: national's answer about the
    post's own records (``origin`` is the post itself), mirrored at every sync, which the
    status, the pages and ``sync status`` show until national resolves it. A record is
    identified by its sender's ``(origin, seq, record_type)``; ``record_type`` is
    ``photo_file`` for a photo's file pushed apart from its row."""

    __tablename__ = "sync_quarantine"
    __table_args__ = (
        UniqueConstraint("origin", "seq", "record_type", name="uq_sync_quarantine_record"),
    )

    id: int | None = Field(default=None, primary_key=True)
    origin: str = Field(max_length=32, index=True)
    seq: int
    record_type: str = Field(max_length=40)
    record_id: str = Field(max_length=80)
    reason: str = Field(max_length=40)
    detail: str = Field(default="", max_length=500)
    payload: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    received_at: datetime = _ts(default_factory=utcnow)
    status: str = Field(default="pending", max_length=10, index=True)
    resolved_by: str | None = Field(default=None, max_length=64)
    resolved_at: datetime | None = _ts(default=None, nullable=True)
