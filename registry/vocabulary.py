"""The fixed vocabularies of the border domain, spelled once.

Each is a ``StrEnum``: a member IS its code string (``Direction.ENTRY == "entry"``), so the
database columns, the JSON the API sends, the sync payloads, the audit log and the
templates see plain codes, while the request schemas (msgspec decodes and validates them,
and the OpenAPI document lists the allowed values), the models' tuples
(``registry.models.ROLES`` ...) and the pages' labels (``registry.web.messages``) all come
from here. Adding a code here is the one step; the tests fail until the pages label it.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """An account's role (what it may see and do: ``registry.api.auth``)."""

    OFFICER = "officer"
    SUPERVISOR = "supervisor"
    PROTECTION = "protection"
    HQ_ANALYST = "hq_analyst"
    LIAISON = "liaison"
    ADMIN = "admin"


class Direction(StrEnum):
    """Which way a crossing goes."""

    ENTRY = "entry"
    EXIT = "exit"


class Mode(StrEnum):
    """How the traveller crossed."""

    FOOT = "foot"
    CAR = "car"
    BUS = "bus"
    TRUCK = "truck"
    MOTORCYCLE = "motorcycle"
    ANIMAL = "animal"
    BOAT = "boat"
    OTHER = "other"


class Decision(StrEnum):
    """The officer's decision at the desk. A refused crossing opens and closes no stay."""

    CLEARED = "cleared"
    REFERRED = "referred"
    REFUSED = "refused"


class Sex(StrEnum):
    """As in the MRZ (ICAO 9303): X when unspecified."""

    M = "M"
    F = "F"
    X = "X"


class ReferralCategory(StrEnum):
    """Why a traveller was referred for protection."""

    TRAFFICKING_SUSPECTED = "trafficking_suspected"
    UNACCOMPANIED_MINOR = "unaccompanied_minor"
    SEPARATED_MINOR = "separated_minor"
    OTHER_VULNERABILITY = "other_vulnerability"


class ReferralStatus(StrEnum):
    """A referral's case: opened by the desk, followed up and closed by protection."""

    OPEN = "open"
    IN_FOLLOW_UP = "in_follow_up"
    CLOSED = "closed"


class ReferralOutcome(StrEnum):
    """How a closed referral case ended."""

    PROTECTED = "protected"
    HANDED_TO_SERVICES = "handed_to_services"
    REUNITED_WITH_FAMILY = "reunited_with_family"
    NO_PROTECTION_NEED = "no_protection_need"
    LOST_CONTACT = "lost_contact"


class WatchlistKind(StrEnum):
    """What a watchlist entry lists: a person (names, birth date, face) or a document."""

    PERSON = "person"
    DOCUMENT = "document"


class WatchlistAction(StrEnum):
    """What the desk is told to do on a hit (``registry.watchlists.policy.INSTRUCTIONS``)."""

    REFER_SECONDARY = "refer_secondary"
    NOTIFY = "notify"
    PROTECT = "protect"


class AlertEvidence(StrEnum):
    """What matched the watchlist."""

    DOCUMENT = "document"
    NAME_DOB = "name_dob"
    FACE = "face"


class AlertOutcome(StrEnum):
    """A supervisor's adjudication of an alert."""

    CONFIRMED = "confirmed"
    DISMISSED = "dismissed"
