"""Response schemas (msgspec) of the sync endpoints of ``sync.api``: a post's own sync status,
and on national the enrolment answer, the digests a post compares its crossings with, and
the peers its admin manages. The signed reference pages (``signed_json``) are bytes, not
these. Each mirrors the dict the endpoint built, so the JSON is unchanged."""

from __future__ import annotations

import uuid
from typing import Literal

import msgspec

from registry.schemas import IsoDateTime

PeerStatus = Literal["pending", "approved", "revoked"]
PeerRole = Literal["post", "national", "partner"]


class QuarantinedRecord(msgspec.Struct, kw_only=True):
    """One of this post's records national could not store, until its admin resolves it."""

    id: int
    origin: str
    seq: int
    record_type: str
    record_id: str
    reason: str
    detail: str
    received_at: IsoDateTime
    status: Literal["pending", "retried", "discarded"]


class ChannelPosition(msgspec.Struct, kw_only=True):
    """How far a sync channel (records, photos, reference) has been acknowledged."""

    position: int
    last_error: str | None


class SyncStatus(msgspec.Struct, kw_only=True):
    """A post's backlog, its last successful sync and a warning once it has been offline
    longer than ``offline_warning_days`` (``sync.status.sync_status``; no personal data)."""

    national: str | None
    backlog_records: int
    newest_seq: int
    acknowledged_seq: int
    last_success_at: IsoDateTime | None
    days_since_sync: float | None
    last_error: str | None
    offline_warning_days: int
    warning: str | None
    quarantined: list[QuarantinedRecord]
    channels: dict[str, ChannelPosition]


class EnrolmentView(msgspec.Struct, kw_only=True):
    """National's answer to a post's enrolment: its code and key, the post's status, and the
    highest contiguous seq national already holds from the post."""

    national_code: str
    public_key: str
    status: PeerStatus
    held_seq: int


class DigestBucket(msgspec.Struct, kw_only=True):
    """The crossings of one day (or hour): how many, and the SHA-256 of their sorted ids."""

    count: int
    hash: str


class DayDigest(msgspec.Struct, kw_only=True):
    """Per-day buckets (keyed YYYY-MM-DD) of the crossings received from the calling post."""

    origin: str
    buckets: dict[str, DigestBucket]


class HourDigest(msgspec.Struct, kw_only=True):
    """Per-hour buckets (keyed HH, UTC) of one day's crossings from the calling post."""

    origin: str
    day: str
    buckets: dict[str, DigestBucket]


class HourIds(msgspec.Struct, kw_only=True):
    """The ids of the calling post's crossings in one UTC hour, sorted."""

    origin: str
    day: str
    hour: str
    ids: list[uuid.UUID]


class PeerView(msgspec.Struct, kw_only=True):
    """An enrolled node (``sync.api.peer_view``), with its key's SHA-256 fingerprint."""

    node_code: str
    role: PeerRole
    status: PeerStatus
    public_key: str
    key_sha256: str
    enrolled_at: IsoDateTime
    decided_by: str | None


class RemovedPeer(PeerView, kw_only=True):
    """A pending or revoked post, deleted."""

    removed: Literal[True]


class Invitation(msgspec.Struct, kw_only=True):
    """A one-time enrolment code for a post code (shown once; only its hash is kept)."""

    node_code: str
    code: str
    expires_at: IsoDateTime
