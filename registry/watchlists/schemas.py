"""Watchlist API request bodies (msgspec Structs) and the text rules of entry fields.

The text rules (``registry.text``) are applied by the Structs below after decoding, by the CSV
import per column (``csv_files``) and by adjudication in ``alerts`` (the pages call it
directly).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from msgspec import UNSET, Meta, UnsetType

from registry.schemas import CleanText, CountryCode
from registry.text import (
    document_number_rule,
    given_names_rule,
    identifier,
    paragraphs,
    surname_rule,
)
from registry.vocabulary import AlertOutcome, WatchlistAction, WatchlistKind

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
