"""Tables of node-to-node sync: enrolled peers and their keys, send checkpoints, receive
state, and the versioned reference-data log that national publishes to its posts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

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
