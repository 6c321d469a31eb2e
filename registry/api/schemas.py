"""Response schemas (msgspec) of the app shell's own endpoints: the verification of this
node's audit chain (``/api/audit/verify``) and the node's health (``/api/health``)."""

from __future__ import annotations

import uuid
from typing import Literal

import msgspec

from registry.schemas import IsoDateTime
from registry.settings import NodeRole


class CheckpointView(msgspec.Struct, kw_only=True):
    """A signed audit checkpoint (``audit_checkpoints.checkpoint_view``)."""

    id: uuid.UUID
    origin: str
    event_count: int
    head_seq: int
    head_id: uuid.UUID
    head_hash: str
    made_at: IsoDateTime
    delivered_at: IsoDateTime | None


class ChainVerdictView(msgspec.Struct, kw_only=True):
    """The audit chain checked against its signed checkpoints (``ChainVerdict.to_dict``):
    ``reason`` is a stable code when it is not ok (``broken_link``, ``altered``,
    ``truncated``, ``missing``, ``rechained``, ``bad_checkpoint_signature``)."""

    ok: bool
    events_checked: int
    first_broken_seq: int | None
    problem: str | None
    reason: str | None
    checkpoint: CheckpointView | None
    checkpoints_checked: int


class Health(msgspec.Struct, kw_only=True):
    """Liveness and identity of this node (no personal data); ``schema`` is the database's
    migration revision."""

    status: Literal["ok"]
    node: str
    role: NodeRole
    country: str
    schema: str | None
