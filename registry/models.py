"""SQLModel tables of a Borderpost node: officers, travellers, documents, crossings, photos,
protection referrals, the hash-chained audit log, the sync outbox, and (appended last)
versioned watchlist entries, alerts and their adjudications.

Table models skip validation; the API validates with the schemas in ``registry.schemas``.
Relationships are not declared: services load related rows explicitly.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, LargeBinary, UniqueConstraint, text
from sqlalchemy.types import DateTime, TypeDecorator
from sqlmodel import Field, SQLModel

from registry.ids import uuid7
from registry.vocabulary import (
    AlertEvidence,
    AlertOutcome,
    Decision,
    Direction,
    Mode,
    ReferralCategory,
    ReferralOutcome,
    ReferralStatus,
    Role,
    WatchlistAction,
    WatchlistKind,
)

ROLES = tuple(Role)
DIRECTIONS = tuple(Direction)
MODES = tuple(Mode)
DECISIONS = tuple(Decision)
REFERRAL_CATEGORIES = tuple(ReferralCategory)
# a referral's case: opened by the desk, followed up and closed by protection
REFERRAL_STATUSES = tuple(ReferralStatus)
REFERRAL_OUTCOMES = tuple(ReferralOutcome)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC; always returned timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; store times in UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _ts(**kwargs: Any) -> Any:
    return Field(sa_type=UTCDateTime, **kwargs)


def _json(default_factory: Any = dict) -> Any:
    return Field(default_factory=default_factory, sa_column=Column(JSON, nullable=False))


class Officer(SQLModel, table=True):
    """A person who logs in: border officer, supervisor, protection officer, analyst, admin."""

    __tablename__ = "officer"
    # usernames are unique per post: every post has its own bootstrap "admin"
    __table_args__ = (UniqueConstraint("username", "home_post", name="uq_officer_username_post"),)

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    username: str = Field(max_length=64, index=True)
    full_name: str = Field(max_length=200)
    role: str = Field(max_length=20)
    home_post: str = Field(max_length=32)
    password_hash: str = Field(max_length=200)
    language: str = Field(default="fr", max_length=5)
    active: bool = True
    created_at: datetime = _ts(default_factory=utcnow)
    # set by an administrator's password reset: the pages ask for a new password first
    must_change_password: bool = False


class AuthToken(SQLModel, table=True):
    """A bearer/session token; only its sha256 is stored."""

    __tablename__ = "auth_token"

    token_hash: str = Field(primary_key=True, max_length=64)
    officer_id: uuid.UUID = Field(foreign_key="officer.id", index=True)
    created_at: datetime = _ts(default_factory=utcnow)
    expires_at: datetime = _ts()
    revoked: bool = False


class Traveller(SQLModel, table=True):
    """A person as known at one post (national links records, never merges them)."""

    __tablename__ = "traveller"
    __table_args__ = (
        Index("ix_traveller_dob_name", "date_of_birth", "name_key"),
        Index("ix_traveller_nationality", "nationality"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    origin: str = Field(max_length=32)
    surname: str = Field(max_length=120)
    given_names: str = Field(default="", max_length=200)
    surname_ar: str | None = Field(default=None, max_length=120)
    given_names_ar: str | None = Field(default=None, max_length=200)
    name_key: str = Field(max_length=400, index=True)
    date_of_birth: date | None = None
    sex: str = Field(max_length=1)
    nationality: str = Field(max_length=3)
    created_at: datetime = _ts(default_factory=utcnow)


class TravelDocument(SQLModel, table=True):
    """A passport, ID card or visa presented at a crossing, with its MRZ check results."""

    __tablename__ = "travel_document"
    __table_args__ = (
        UniqueConstraint("origin", "issuing_state", "number_norm", name="uq_document_origin"),
        Index("ix_document_number", "number_norm", "issuing_state"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    origin: str = Field(max_length=32)
    traveller_id: uuid.UUID = Field(foreign_key="traveller.id", index=True)
    issuing_state: str = Field(max_length=3)
    document_type: str = Field(max_length=2)
    number: str = Field(max_length=40)
    number_norm: str = Field(max_length=40)
    expiry_date: date | None = None
    issue_date: date | None = None
    raw_mrz: str | None = Field(default=None, max_length=200)
    mrz_checks: dict[str, Any] = _json()
    created_at: datetime = _ts(default_factory=utcnow)


class Photo(SQLModel, table=True):
    """A portrait stored content-addressed by sha256 (JPEG, EXIF stripped) under data_dir."""

    __tablename__ = "photo"

    sha256: str = Field(primary_key=True, max_length=64)
    origin: str = Field(max_length=32)
    width: int
    height: int
    size_bytes: int
    face_encoding: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    quality_score: int | None = None
    quality: dict[str, Any] = _json()
    created_at: datetime = _ts(default_factory=utcnow)


class BiometricTemplate(SQLModel, table=True):
    """The template one of the node's other biometric modalities (``registry.modalities``)
    extracted from a portrait: ``modality`` is the plug-in's entry-point name,
    ``modality_type`` its type (``BiometricModality.modality``). Written with the photo, by
    the post that stored the photo; immutable. The primary modality's template is
    ``Photo.face_encoding``."""

    __tablename__ = "biometric_template"
    __table_args__ = (
        UniqueConstraint("photo_sha256", "modality", name="uq_biometric_template_photo"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    origin: str = Field(max_length=32)
    photo_sha256: str = Field(foreign_key="photo.sha256", max_length=64)
    modality: str = Field(max_length=40)
    modality_type: str = Field(max_length=20)
    template: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    quality_score: int
    created_at: datetime = _ts(default_factory=utcnow)


class Crossing(SQLModel, table=True):
    """An immutable entry or exit event; a correction is a new version that supersedes it."""

    __tablename__ = "crossing"
    __table_args__ = (
        Index("ix_crossing_occurred", "occurred_at", "direction"),
        Index("ix_crossing_traveller", "traveller_id", "occurred_at"),
        Index(
            "ix_crossing_post_occurred",
            "post",
            "occurred_at",
            postgresql_include=["direction", "decision", "id"],
        ),
        Index("ix_crossing_document", "document_id", "occurred_at"),
        # a correction's lookup (supersedes = :id); first versions are left out (0019)
        Index(
            "ix_crossing_supersedes",
            "supersedes",
            postgresql_where=text("supersedes IS NOT NULL"),
            sqlite_where=text("supersedes IS NOT NULL"),
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    origin: str = Field(max_length=32)
    post: str = Field(max_length=32)  # indexed by ix_crossing_post_occurred (0019)
    direction: str = Field(max_length=5)
    occurred_at: datetime = _ts()
    officer_id: uuid.UUID = Field(foreign_key="officer.id")
    traveller_id: uuid.UUID = Field(foreign_key="traveller.id")
    document_id: uuid.UUID = Field(foreign_key="travel_document.id")
    photo_sha256: str | None = Field(default=None, foreign_key="photo.sha256")
    mode: str = Field(max_length=12)
    vehicle_plate: str | None = Field(default=None, max_length=20)
    purpose: str | None = Field(default=None, max_length=40)
    destination: str | None = Field(default=None, max_length=120)
    guardian_crossing_id: uuid.UUID | None = Field(default=None, foreign_key="crossing.id")
    companions: list[str] = _json(list)
    decision: str = Field(max_length=10)
    remarks: str | None = Field(default=None, max_length=2000)
    checks: list[dict[str, Any]] = _json(list)
    stay_allowed_until: date | None = None
    closes_crossing_id: uuid.UUID | None = Field(default=None, foreign_key="crossing.id")
    overstay_days: int | None = None
    version: int = 1
    supersedes: uuid.UUID | None = Field(default=None, foreign_key="crossing.id")
    correction_reason: str | None = Field(default=None, max_length=500)
    receipt: str = Field(default="", max_length=255)
    recorded_at: datetime = _ts(default_factory=utcnow)


class SupersededCrossing(SQLModel, table=True):
    """The id of every crossing a correction has superseded, kept by triggers on crossing
    (migration 0007). "Is this the current version?" is then one probe of this small table
    instead of a probe of ``crossing.supersedes`` in every monthly partition at national.
    Derived locally on every node; it never travels."""

    __tablename__ = "superseded_crossing"

    id: uuid.UUID = Field(primary_key=True)


class ProtectionReferral(SQLModel, table=True):
    """A confidential protection referral: only protection (and admin, for audit) may read it."""

    __tablename__ = "protection_referral"

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    origin: str = Field(max_length=32)
    crossing_id: uuid.UUID = Field(foreign_key="crossing.id", index=True)
    category: str = Field(max_length=30)
    note: str = Field(max_length=4000)
    created_by: uuid.UUID = Field(foreign_key="officer.id")
    created_at: datetime = _ts(default_factory=utcnow)


class ReferralFollowUp(SQLModel, table=True):
    """One step of a referral's case, written by a protection officer and never changed: a
    follow-up note, the status it leaves the case in, and the outcome when it closes it.
    The case's status is that of its latest step (``open`` without any)."""

    __tablename__ = "referral_follow_up"

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    origin: str = Field(max_length=32)
    referral_id: uuid.UUID = Field(foreign_key="protection_referral.id", index=True)
    officer_id: uuid.UUID = Field(foreign_key="officer.id")
    status: str = Field(max_length=20)
    note: str = Field(max_length=4000)
    outcome: str | None = Field(default=None, max_length=30)
    created_at: datetime = _ts(default_factory=utcnow)


class AuditEvent(SQLModel, table=True):
    """Append-only, hash-chained record of who read or wrote which record, why and when."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_origin_seq", "origin", "seq"),)

    seq: int | None = Field(default=None, primary_key=True)
    id: uuid.UUID = Field(default_factory=uuid7, unique=True)
    origin: str = Field(max_length=32)
    at: datetime = _ts(default_factory=utcnow)
    officer_id: uuid.UUID | None = None
    action: str = Field(max_length=40)
    record_type: str = Field(max_length=40)
    record_id: str = Field(max_length=80)
    purpose: str = Field(max_length=80)
    detail: dict[str, Any] = _json()
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class AuditCheckpoint(SQLModel, table=True):
    """A node's signed statement of how long its audit chain was and which event ended it.

    A node keeps its own; national also keeps every checkpoint its posts send it. The head
    is named by the event's id (the same at every node) and by its seq at its origin.
    ``delivered_at``: on a post, when national stored it; on national, when it arrived.
    """

    __tablename__ = "audit_checkpoint"
    __table_args__ = (Index("ix_audit_checkpoint_origin_made", "origin", "made_at"),)

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    origin: str = Field(max_length=32)
    event_count: int
    head_seq: int
    head_id: uuid.UUID
    head_hash: str = Field(max_length=64)
    made_at: datetime = _ts(default_factory=utcnow)
    signature: str = Field(max_length=100)
    delivered_at: datetime | None = _ts(default=None, nullable=True)


class OutboxEntry(SQLModel, table=True):
    """A record waiting to travel to the national node; appended in the writing transaction."""

    __tablename__ = "outbox"

    seq: int | None = Field(default=None, primary_key=True)
    record_type: str = Field(max_length=40)
    record_id: str = Field(max_length=80)
    payload: dict[str, Any] = _json()
    created_at: datetime = _ts(default_factory=utcnow)


WATCHLIST_KINDS = tuple(WatchlistKind)
WATCHLIST_ACTIONS = tuple(WatchlistAction)
ALERT_EVIDENCE = tuple(AlertEvidence)
ALERT_OUTCOMES = tuple(AlertOutcome)


class WatchlistEntry(SQLModel, table=True):
    """One version of a watchlist entry (wanted person or lost/stolen document).

    Never edited in place: a change, or a removal (``active=False``), is a new row with the
    same ``entry_id`` and the next ``version``. ``entry_id`` is ``uuid5(source, external_id)``
    so re-importing a source's list is idempotent. ``created_by`` carries no foreign key:
    entries travel down from the national node, whose officers a post does not hold.
    """

    __tablename__ = "watchlist_entry"
    __table_args__ = (
        UniqueConstraint("entry_id", "version", name="uq_watchlist_entry_version"),
        Index("ix_watchlist_entry_number", "number_norm", "issuing_state"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    entry_id: uuid.UUID = Field(index=True)
    version: int = 1
    origin: str = Field(max_length=32)
    external_id: str = Field(max_length=120)
    kind: str = Field(max_length=10)
    surname: str = Field(default="", max_length=120)
    given_names: str = Field(default="", max_length=200)
    name_key: str = Field(default="", max_length=400, index=True)
    date_of_birth: date | None = Field(default=None, index=True)
    nationality: str | None = Field(default=None, max_length=3)
    issuing_state: str | None = Field(default=None, max_length=3)
    document_number: str | None = Field(default=None, max_length=40)
    number_norm: str | None = Field(default=None, max_length=40)
    face_template: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    # a small JPEG of the face the template was taken from, for the adjudicating supervisor
    listed_portrait: bytes | None = Field(
        default=None, sa_column=Column(LargeBinary, nullable=True)
    )
    # the templates of the other biometric modalities taken from the same portrait, by
    # entry-point name: {"modality_type", "template" (hex), "quality_score"}
    # (registry.modalities.ModalityTemplate.as_json)
    modality_templates: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSON, nullable=True)
    )
    reason: str = Field(max_length=1000)
    action: str = Field(max_length=20)
    source: str = Field(max_length=80)
    valid_from: date
    valid_to: date | None = None
    active: bool = True
    created_by: uuid.UUID | None = None
    created_at: datetime = _ts(default_factory=utcnow)
    change_reason: str = Field(default="", max_length=500)


class Alert(SQLModel, table=True):
    """A watchlist hit raised at a registration; immutable. A human adjudicates every alert."""

    __tablename__ = "alert"
    __table_args__ = (Index("ix_alert_created_at", "created_at"),)

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    origin: str = Field(max_length=32)
    crossing_id: uuid.UUID = Field(foreign_key="crossing.id", index=True)
    entry_id: uuid.UUID = Field(index=True)
    entry_version: int
    kind: str = Field(max_length=10)
    # AlertEvidence, or the entry-point name of the biometric modality that matched
    evidence: str = Field(max_length=40)
    score: float
    distance: float | None = None
    band: str | None = Field(default=None, max_length=6)
    action: str = Field(max_length=20)
    created_at: datetime = _ts(default_factory=utcnow)


class AlertAdjudication(SQLModel, table=True):
    """The one human decision on an alert (confirmed or dismissed, with a reason); immutable."""

    __tablename__ = "alert_adjudication"

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    origin: str = Field(max_length=32)
    alert_id: uuid.UUID = Field(foreign_key="alert.id", unique=True)
    outcome: str = Field(max_length=10)
    reason: str = Field(max_length=1000)
    officer_id: uuid.UUID = Field(foreign_key="officer.id")
    created_at: datetime = _ts(default_factory=utcnow)


class IdempotencyKey(SQLModel, table=True):
    """The crossing a registration with an ``Idempotency-Key`` header registered: the same
    officer sending the same key again gets that crossing back, and nothing new is
    registered. Written in the registration's own transaction; local to the node (never
    travels)."""

    __tablename__ = "idempotency_key"

    officer_id: uuid.UUID = Field(primary_key=True)
    key: str = Field(primary_key=True, max_length=200)
    crossing_id: uuid.UUID
    created_at: datetime = _ts(default_factory=utcnow)
