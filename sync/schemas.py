"""Response schemas (msgspec) of the sync endpoints (``sync.api``, ``sync.ingest.controller``):
a post's own sync status, and on national the enrolment answer, the digests a post compares
its crossings with, the peers its admin manages, the acknowledgements of what a post pushes
and national's quarantine of its records. A signed reference page is sent as the bytes
``signed_json`` signed; ``ReferencePage`` documents them. Each mirrors the dict the endpoint
built, so the JSON is unchanged."""

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


class QuarantineEntry(QuarantinedRecord, kw_only=True):
    """A quarantined record as national holds it, with who resolved it and when."""

    resolved_by: str | None
    resolved_at: IsoDateTime | None


class PostQuarantine(msgspec.Struct, kw_only=True):
    """What national holds in quarantine of the calling post's records, newest first."""

    origin: str
    entries: list[QuarantineEntry]


class RecordRefused(msgspec.Struct, kw_only=True):
    """A record national could not store, as the sender is told (no payload: it has it)."""

    seq: int
    record_type: str
    record_id: str
    reason: str
    detail: str


class BatchAck(msgspec.Struct, kw_only=True):
    """National's answer to a batch: the highest contiguous seq it holds from the post, how
    many records it applied, and those it quarantined."""

    ack: int
    applied: int
    quarantined: list[RecordRefused]


class BatchGapAnswer(msgspec.Struct, kw_only=True):
    """409 to a batch that does not follow what national holds from the post: nothing of it
    is stored, and the post resends from ``ack`` (the highest contiguous seq held).
    ``reason``: ``gap`` (records missing before it), ``replay`` (already held) or
    ``deadlock`` (a parallel batch gave way)."""

    ack: int
    reason: str
    detail: str


class PhotoAck(msgspec.Struct, kw_only=True):
    """National's answer to a photo: its SHA-256 once stored (null when quarantined)."""

    stored: str | None
    quarantined: list[RecordRefused]


class CheckpointsAck(msgspec.Struct, kw_only=True):
    """How many audit checkpoints the request held, and how many national newly stored."""

    received: int
    stored: int


class ReferenceChangeView(msgspec.Struct, kw_only=True):
    """One change of reference data (an outbox entry): its seq, record type and row."""

    seq: int
    type: str
    payload: dict[str, object]


class ReferencePage(msgspec.Struct, kw_only=True):
    """A signed page of reference changes after ``since``: the version to ask from next,
    and whether the post is then up to date."""

    version: int
    complete: bool
    changes: list[ReferenceChangeView]


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
