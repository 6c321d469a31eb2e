"""Watchlist API request bodies and responses (msgspec Structs) and the text rules of entry
fields. The responses are the views of ``service`` and ``alerts`` as the API sends them.

The text rules (``registry.text``) are applied by the Structs below after decoding, by the CSV
import per column (``csv_files``) and by adjudication in ``alerts`` (the pages call it
directly).
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, UnsetType

from registry.schemas import CleanText, CountryCode, Evidence, IsoDateTime
from registry.text import (
    document_number_rule,
    given_names_rule,
    identifier,
    paragraphs,
    surname_rule,
)
from registry.vocabulary import (
    AlertOutcome,
    Decision,
    Direction,
    WatchlistAction,
    WatchlistKind,
)

Kind = WatchlistKind
Action = WatchlistAction
Outcome = AlertOutcome
# Text rules (registry.text): the schemas below apply them after decoding, the CSV import
# per column, adjudication in the service (the pages call it directly).
SURNAME = surname_rule(120)
GIVEN_NAMES = given_names_rule(200)
LISTING_REASON = paragraphs(1000, min_length=1)
CHANGE_REASON = paragraphs(500, min_length=3)
ADJUDICATION_REASON = paragraphs(1000, min_length=3)
SOURCE = identifier(80, min_length=1)
EXTERNAL_ID = identifier(120, min_length=1)
DOCUMENT_NUMBER = document_number_rule(40)
Surname = Annotated[str, Meta(max_length=120), SURNAME]
GivenNames = Annotated[str, Meta(max_length=200), GIVEN_NAMES]
ListingReason = Annotated[str, Meta(min_length=1, max_length=1000), LISTING_REASON]
ChangeReason = Annotated[str, Meta(min_length=3, max_length=500), CHANGE_REASON]
DocumentNumber = Annotated[
    str, Meta(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9 <\-/.]+$"), DOCUMENT_NUMBER
]


class WatchlistEntryCreate(CleanText, forbid_unknown_fields=True):
    """A new watchlist entry; ``external_id`` is the source's own reference, if it has one."""

    kind: Kind
    reason: ListingReason
    action: Action
    source: Annotated[str, Meta(min_length=1, max_length=80), SOURCE] = "national"
    external_id: Annotated[str, Meta(min_length=1, max_length=120), EXTERNAL_ID] | None = None
    surname: Surname = ""
    given_names: GivenNames = ""
    date_of_birth: date | None = None
    nationality: CountryCode | None = None
    issuing_state: CountryCode | None = None
    document_number: DocumentNumber | None = None
    valid_from: date | None = None
    valid_to: date | None = None


class WatchlistEntryChange(CleanText, forbid_unknown_fields=True):
    """A new version: the fields given replace the current ones (null clears optional ones)."""

    change_reason: ChangeReason
    kind: Kind | UnsetType = UNSET
    reason: ListingReason | UnsetType = UNSET
    action: Action | UnsetType = UNSET
    surname: Surname | UnsetType = UNSET
    given_names: GivenNames | UnsetType = UNSET
    date_of_birth: date | None | UnsetType = UNSET
    nationality: CountryCode | None | UnsetType = UNSET
    issuing_state: CountryCode | None | UnsetType = UNSET
    document_number: DocumentNumber | None | UnsetType = UNSET
    valid_from: date | UnsetType = UNSET
    valid_to: date | None | UnsetType = UNSET
    active: bool | UnsetType = UNSET

    def changes(self) -> dict[str, Any]:
        """The fields actually given, without the change reason."""
        return {
            name: getattr(self, name)
            for name in self.__struct_fields__
            if name != "change_reason" and getattr(self, name) is not UNSET
        }


class DeactivationRequest(CleanText, forbid_unknown_fields=True):
    reason: ChangeReason


class AdjudicationRequest(CleanText, forbid_unknown_fields=True):
    outcome: Outcome
    reason: Annotated[str, Meta(min_length=3, max_length=1000), ADJUDICATION_REASON]


class EntryView(msgspec.Struct, kw_only=True):
    """A watchlist entry version (``service.entry_view``); the face template and the listed
    portrait themselves are never sent, only whether the entry holds them."""

    id: uuid.UUID
    entry_id: uuid.UUID
    version: int
    origin: str
    external_id: str
    source: str
    kind: Kind
    surname: str
    given_names: str
    date_of_birth: date | None
    nationality: str | None
    issuing_state: str | None
    document_number: str | None
    reason: str
    action: Action
    valid_from: date | None
    valid_to: date | None
    active: bool
    has_face_template: bool
    has_listed_portrait: bool
    created_by: uuid.UUID | None
    created_at: IsoDateTime
    change_reason: str


class ListedView(msgspec.Struct, kw_only=True):
    """What an alert shows of the entry version it was raised on (full disclosure only)."""

    external_id: str
    source: str
    surname: str
    given_names: str
    date_of_birth: date | None
    nationality: str | None
    issuing_state: str | None
    document_number: str | None
    reason: str
    valid_from: date | None
    valid_to: date | None


class AlertCrossing(msgspec.Struct, kw_only=True):
    """The crossing an open alert was raised on."""

    id: uuid.UUID
    post: str
    direction: Direction
    occurred_at: IsoDateTime
    occurred_at_local: IsoDateTime
    decision: Decision
    has_photo: bool


class AlertDocument(msgspec.Struct, kw_only=True):
    """The document an alerted traveller crossed on."""

    issuing_state: str
    number: str


class AlertTraveller(msgspec.Struct, kw_only=True):
    """The traveller of an open alert, for the roles told more than the instruction."""

    id: uuid.UUID
    surname: str
    given_names: str
    date_of_birth: date | None
    nationality: str
    document: AlertDocument


class AlertView(msgspec.Struct, kw_only=True):
    """An alert as the reader's role may see it (``alerts.alert_view``, ``policy.disclosure``):
    the instruction always; the match (``crossing_id`` to ``reason``) from the summary level;
    the entry (``entry_id``, ``entry_version``, ``entry``) at the full level. The desk that
    registers sees the instruction only."""

    id: uuid.UUID
    evidence: Evidence
    instruction: str
    crossing_id: uuid.UUID | UnsetType = UNSET
    created_at: IsoDateTime | UnsetType = UNSET
    kind: Kind | UnsetType = UNSET
    action: Action | UnsetType = UNSET
    score: float | UnsetType = UNSET
    band: str | None | UnsetType = UNSET
    distance: float | None | UnsetType = UNSET
    reason: str | None | UnsetType = UNSET
    entry_id: uuid.UUID | UnsetType = UNSET
    entry_version: int | UnsetType = UNSET
    entry: ListedView | None | UnsetType = UNSET


class OpenAlert(AlertView, kw_only=True):
    """An unadjudicated alert at this post (``alerts.open_alerts``), with its crossing; the
    traveller and whether a listed portrait exists beyond the instruction level."""

    crossing: AlertCrossing
    traveller: AlertTraveller | UnsetType = UNSET
    has_listed_portrait: bool | UnsetType = UNSET


class AdjudicationView(msgspec.Struct, kw_only=True):
    """The one adjudication of an alert."""

    id: uuid.UUID
    alert_id: uuid.UUID
    outcome: Outcome
    reason: str
    officer_id: uuid.UUID
    created_at: IsoDateTime


class AlertCounts(msgspec.Struct, kw_only=True):
    """Alerts of one kind of evidence: raised, and how many were confirmed, dismissed or are
    still open."""

    raised: int
    confirmed: int
    dismissed: int
    open: int


class AlertFigures(msgspec.Struct, kw_only=True):
    """Alert counts per kind of evidence (``alerts.alert_figures``); ``modalities``: those
    of the node's other biometric modalities, by modality name."""

    document: AlertCounts
    name_dob: AlertCounts
    face: AlertCounts
    modalities: dict[str, AlertCounts] = msgspec.field(default_factory=dict)
