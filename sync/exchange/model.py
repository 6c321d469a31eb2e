"""The structure of a data-sharing agreement: its parties, paired posts and what may leave.

An agreement is a versioned TOML file that both national nodes hold (example:
``deploy/agreements/mr-ml-2026.toml``). Top-level keys, then tables::

    id = "MR-ML-2026"                  # [A-Za-z0-9._-], 1..64
    version = 1                        # >= 1; bump it on every change (parties re-sign)
    title = "..."                      # optional
    valid_from = 2026-01-01            # TOML local dates, both inclusive
    valid_to = 2027-12-31
    purposes = ["border_management", "migration_statistics"]
    retention_days = 180               # 1..3650: the receiver purges partner records past it
    share_photos = false               # default false: photo rows AND image bytes
    share_protection_referrals = false # default false
    daily_blinding_budget = 50000      # records of the partner's batches we blind per day
    daily_hit_budget = 500             # hit/no-hit evaluations we answer per day
    share_note_text = false            # default false: liaison notes cross as reason codes
                                       # and references only, their free text stays here
    pseudonymised = ["travel_document.number", "traveller.name_key", "traveller.date_of_birth"]

    [[parties]]                        # exactly two
    country = "MRT"                    # ISO 3166 alpha-3
    node = "MR-NATIONAL"               # national node code
    url = "https://borderpost.example.mr"
    public_key = "<43 chars>"          # Ed25519, registry.receipts.public_key_to_text

    [[paired_posts]]                   # keys are the two party countries
    MRT = "MR-GOGUI"
    MLI = "ML-GOGUI"

    [record_types]                     # record type -> the fields exchanged in bulk
    crossing = ["id", "post", "direction", "occurred_at", "document_id", "traveller_id"]
    traveller = ["id", "name_key", "date_of_birth", "nationality"]
    travel_document = ["id", "traveller_id", "issuing_state", "document_type", "number"]

    [detail_fields]                    # optional: released only on an approved, purposed
    traveller = ["surname", "given_names", "sex"]  # detail request (hit/no-hit), in clear

    [signatures]                       # country -> base64url Ed25519 signature (64 bytes)
    MRT = "..."
    MLI = "..."

Record types and fields are the columns of the registry tables ``crossing``, ``traveller``,
``travel_document``, ``photo`` and ``protection_referral``. A post code appears in at most
one pair.

The rest of the slice: ``sync.exchange.parsing`` reads and checks the file,
``sync.exchange.signing`` signs it and says whether it is in force,
``sync.exchange.pseudonyms`` blinds identity elements with each node's own secret scalar
(no key is shared: each party keeps its own, named by its node's settings),
``sync.exchange.enforcement`` filters what leaves, and ``sync.exchange.report`` describes it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from types import MappingProxyType
from typing import Any, Final, Literal

from sqlmodel import SQLModel

from registry.models import Crossing, Photo, ProtectionReferral, TravelDocument, Traveller

PseudonymKind = Literal["document", "person", "bound"]
Tier = Literal["bulk", "detail"]

# Every record type that could ever travel to the partner, with its columns.
_TRAVELLING_MODELS: Final[tuple[type[SQLModel], ...]] = (
    Crossing,
    Traveller,
    TravelDocument,
    Photo,
    ProtectionReferral,
)
RECORD_TYPES: Final[Mapping[str, frozenset[str]]] = MappingProxyType(
    {
        # SQLModel declares no __table__ on its classes; every table model has one.
        str(model.__tablename__): frozenset(
            column.name
            for column in model.__table__.columns  # type: ignore[attr-defined]
        )
        for model in _TRAVELLING_MODELS
    }
)
PHOTO: Final = "photo"
PROTECTION_REFERRAL: Final = "protection_referral"
# a referral's case steps are as confidential as the referral: shared only with it
PROTECTION_RECORDS: Final = frozenset({PROTECTION_REFERRAL, "referral_follow_up"})

# Fields that may be pseudonymised, and how (``sync.exchange.pseudonyms``): the document
# itself, the person (name key with birth date and nationality, across documents), or a value
# bound to the crossing's document.
PSEUDONYMISABLE: Final[Mapping[str, PseudonymKind]] = MappingProxyType(
    {
        "travel_document.number": "document",
        "travel_document.expiry_date": "bound",
        "traveller.surname": "bound",
        "traveller.given_names": "bound",
        "traveller.surname_ar": "bound",
        "traveller.given_names_ar": "bound",
        "traveller.name_key": "person",
        "traveller.date_of_birth": "bound",
        "traveller.nationality": "bound",
    }
)
# Daily budgets when the agreement names none.
DEFAULT_BLINDING_BUDGET: Final = 50_000
DEFAULT_HIT_BUDGET: Final = 500

# A field shared in clear must not reveal a pseudonymised one.
REVEALS: Final[Mapping[str, frozenset[str]]] = MappingProxyType(
    {
        "travel_document.number_norm": frozenset({"travel_document.number"}),
        "travel_document.raw_mrz": frozenset(
            {
                "travel_document.number",
                "travel_document.expiry_date",
                "traveller.surname",
                "traveller.given_names",
                "traveller.date_of_birth",
                "traveller.nationality",
            }
        ),
        # the receipt carries 8 bytes of an unkeyed hash of state:number (brute-forceable)
        "crossing.receipt": frozenset({"travel_document.number"}),
        "traveller.name_key": frozenset({"traveller.surname", "traveller.given_names"}),
        "traveller.surname_ar": frozenset({"traveller.surname"}),
        "traveller.given_names_ar": frozenset({"traveller.given_names"}),
    }
)


class AgreementError(ValueError):
    """An invalid agreement file; ``field`` names the offending key (dotted path)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Party:
    """One signatory: its country, national node code, node URL and Ed25519 public key."""

    country: str
    node: str
    url: str
    public_key: str


@dataclass(frozen=True)
class Agreement:
    """A parsed agreement. Build it with ``load_agreement``; it is not yet known to be in force.

    ``paired_posts`` holds ``(post of parties[0], post of parties[1])``; use ``pairs_for`` to
    get them oriented as ``(our post, their post)``. ``record_types`` maps each shared record
    type to its allowed fields; ``pseudonymised`` holds ``"record_type.field"`` names.
    """

    id: str
    version: int
    title: str
    parties: tuple[Party, Party]
    paired_posts: tuple[tuple[str, str], ...]
    record_types: Mapping[str, frozenset[str]]
    pseudonymised: frozenset[str]
    purposes: tuple[str, ...]
    retention_days: int
    valid_from: date
    valid_to: date
    daily_blinding_budget: int = DEFAULT_BLINDING_BUDGET
    daily_hit_budget: int = DEFAULT_HIT_BUDGET
    detail_fields: Mapping[str, frozenset[str]] = field(default_factory=dict)
    share_photos: bool = False
    share_protection_referrals: bool = False
    share_note_text: bool = False
    signatures: Mapping[str, str] = field(default_factory=dict)
    canonical: bytes = field(default=b"", repr=False, compare=False)

    def __hash__(self) -> int:
        return hash((self.canonical, tuple(sorted(self.signatures.items()))))

    @property
    def content_sha256(self) -> str:
        """Fingerprint of the canonical content: both parties must see the same value."""
        return hashlib.sha256(self.canonical).hexdigest()

    def party(self, code: str) -> Party:
        """The party with this country code or node code; KeyError if none."""
        for party in self.parties:
            if code in (party.country, party.node):
                return party
        raise KeyError(code)

    def partner_of(self, code: str) -> Party:
        """The other party, given our country code or node code."""
        ours = self.party(code)
        return self.parties[1] if ours is self.parties[0] else self.parties[0]

    def pairs_for(self, code: str) -> tuple[tuple[str, str], ...]:
        """The post pairs as ``(our post, their post)`` for the party ``code``."""
        if self.party(code) is self.parties[0]:
            return self.paired_posts
        return tuple((theirs, ours) for ours, theirs in self.paired_posts)

    def person_fields(self) -> frozenset[str]:
        """Traveller fields the person element includes besides the name key: those the
        agreement pseudonymises (never a value it does not let the partner compare)."""
        return frozenset(
            name
            for name in ("date_of_birth", "nationality")
            if f"traveller.{name}" in self.pseudonymised
        )

    def fields_for(self, record_type: str, tier: Tier = "bulk") -> frozenset[str]:
        """The fields of ``record_type`` that may leave in ``tier``: ``"bulk"`` (every
        batch) or ``"detail"`` (bulk plus ``detail_fields``, only on an approved request)."""
        fields = self.record_types.get(record_type, frozenset())
        if tier == "detail":
            return fields | self.detail_fields.get(record_type, frozenset())
        return fields

    def is_shared(self, record_type: str) -> bool:
        """True when records of this type may leave at all (flags included)."""
        if record_type == PHOTO and not self.share_photos:
            return False
        if record_type in PROTECTION_RECORDS and not self.share_protection_referrals:
            return False
        return record_type in self.record_types


def purge_before(agreement: Agreement, today: date) -> date:
    """Partner records that occurred before this date are past retention and must go."""
    return date.fromordinal(today.toordinal() - agreement.retention_days)


def _json_default(value: Any) -> str:
    if isinstance(value, date | datetime | time):
        return value.isoformat()
    raise TypeError(f"cannot canonicalise {type(value).__name__}")


def canonical_content(data: Mapping[str, Any]) -> bytes:
    """The signed bytes: ``data`` (the parsed TOML document) minus ``signatures``, as
    sorted-key compact UTF-8 JSON (see ``sync.exchange.signing``)."""
    content = {key: value for key, value in data.items() if key != "signatures"}
    return json.dumps(
        content,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=_json_default,
    ).encode("utf-8")
