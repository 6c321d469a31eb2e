"""Request and response schemas of the crossings slice (msgspec): a registration and a
correction; a crossing as the API shows it (``CrossingView``, with its traveller and document),
a registration's answer, search hits, a traveller's history and open stays.

The document and traveller parts (``DocumentInput``, ``TravellerInput``) stay in
``registry.schemas``: the watchlists match a traveller on them too.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

import msgspec
from msgspec import UNSET, Meta, UnsetType

from registry.schemas import CleanText, DocumentInput, IsoDateTime, TravellerInput
from registry.text import free_line, paragraphs
from registry.vocabulary import Decision, Direction, Mode, Sex
from registry.watchlists.schemas import AlertView

MRZ_TEXT = paragraphs(300, min_length=1)
VEHICLE_PLATE = free_line(20)
PURPOSE = free_line(40)
DESTINATION = free_line(120)
REMARKS = paragraphs(2000)
OVERRIDE_REASON = free_line(300, min_length=3)
CORRECTION_REASON = paragraphs(500, min_length=3)


class RegistrationRequest(CleanText, forbid_unknown_fields=True):
    """One crossing: the document (typed and/or raw MRZ), the traveller and the context."""

    direction: Direction
    mode: Mode = Mode.FOOT
    decision: Decision = Decision.CLEARED
    mrz: Annotated[str, Meta(min_length=1, max_length=300), MRZ_TEXT] | None = None
    document: DocumentInput | None = None
    traveller: TravellerInput | None = None
    vehicle_plate: Annotated[str, Meta(max_length=20), VEHICLE_PLATE] | None = None
    purpose: Annotated[str, Meta(max_length=40), PURPOSE] | None = None
    destination: Annotated[str, Meta(max_length=120), DESTINATION] | None = None
    remarks: Annotated[str, Meta(max_length=2000), REMARKS] | None = None
    guardian_crossing_id: uuid.UUID | None = None
    companions: Annotated[list[uuid.UUID], Meta(max_length=30)] = []
    occurred_at: datetime | None = None
    photo_quality_override: (
        Annotated[str, Meta(min_length=3, max_length=300), OVERRIDE_REASON] | None
    ) = None
    # The officer confirms a typed name that differs from the MRZ (registration check
    # "name_mismatch"); without it such a registration is refused with 422.
    name_mismatch_acknowledged: bool = False


class CorrectionRequest(CleanText, forbid_unknown_fields=True):
    """Fields a superseding version may change, with the reason for the correction."""

    reason: Annotated[str, Meta(min_length=3, max_length=500), CORRECTION_REASON]
    decision: Decision | None = None
    mode: Mode | None = None
    direction: Direction | None = None
    vehicle_plate: Annotated[str, Meta(max_length=20), VEHICLE_PLATE] | None = None
    purpose: Annotated[str, Meta(max_length=40), PURPOSE] | None = None
    destination: Annotated[str, Meta(max_length=120), DESTINATION] | None = None
    remarks: Annotated[str, Meta(max_length=2000), REMARKS] | None = None


class TravellerView(msgspec.Struct, kw_only=True):
    """A traveller as the API shows them (``records.traveller_view``)."""

    id: uuid.UUID
    origin: str
    surname: str
    given_names: str
    surname_ar: str | None
    given_names_ar: str | None
    date_of_birth: date | None
    sex: Sex
    nationality: str


class DocumentView(msgspec.Struct, kw_only=True):
    """A travel document as the API shows it (``records.document_view``)."""

    id: uuid.UUID
    issuing_state: str
    document_type: str
    number: str
    expiry_date: date | None
    issue_date: date | None
    raw_mrz: str | None


class CheckView(msgspec.Struct, kw_only=True):
    """One integrity check stored with a crossing (``registration.Check``): warnings never
    block a registration."""

    code: str
    field: str
    message: str
    severity: str


class CrossingView(msgspec.Struct, kw_only=True):
    """A crossing version (``records.crossing_view``): times in UTC and in the post's local
    time. ``traveller`` and ``document`` are there when the answer carries them;
    ``has_protection_referral`` only for a role that may know (its absence says nothing)."""

    id: uuid.UUID
    version: int
    supersedes: uuid.UUID | None
    correction_reason: str | None
    post: str
    direction: Direction
    occurred_at: IsoDateTime
    occurred_at_local: IsoDateTime
    officer_id: uuid.UUID
    mode: Mode
    vehicle_plate: str | None
    purpose: str | None
    destination: str | None
    guardian_crossing_id: uuid.UUID | None
    companions: list[uuid.UUID]
    decision: Decision
    remarks: str | None
    checks: list[CheckView]
    stay_allowed_until: date | None
    closes_crossing_id: uuid.UUID | None
    overstay_days: int | None
    photo_sha256: str | None
    receipt: str
    traveller_id: uuid.UUID
    document_id: uuid.UUID
    has_protection_referral: bool | UnsetType = UNSET
    traveller: TravellerView | UnsetType = UNSET
    document: DocumentView | UnsetType = UNSET


class RegisteredCrossing(CrossingView, kw_only=True):
    """A registration's answer: the crossing with its traveller and document, and the
    watchlist alerts it raised as the desk sees them (the instruction only)."""

    alerts: list[AlertView]


class NameMatch(msgspec.Struct, kw_only=True):
    """A traveller who answers a name search, with the match score (0-100)."""

    score: float
    traveller: TravellerView


class TravellerHistory(msgspec.Struct, kw_only=True):
    """A traveller and the current versions of their crossings, oldest first."""

    traveller: TravellerView
    crossings: list[CrossingView]


class OpenStay(CrossingView, kw_only=True):
    """An entry with nothing recorded after it: ``allowed_until`` by the rules in force now
    (null: unlimited) and the days overstayed on the day asked about."""

    allowed_until: date | None
    days_overstayed: int
