"""Watchlists: versioned entries, the in-memory matcher run at every registration, alerts and
their human adjudication, what each role may see of an alert, and CSV import/export.

Entries are never edited in place. A change, or a removal (``active=False``), is a new row with
the same ``entry_id`` and the next ``version``. ``entry_id`` is ``uuid5(source, external_id)``,
so re-importing a source's list finds the entries it created before; entries created over the
API get a generated ``external_id``. ``source`` and ``external_id`` never change.

Matching (``WatchlistMatcher.match_traveller``), one hit per (entry, evidence), on EVERY identity
the traveller presents (``TravellerProbe``, built by ``traveller_probe``): the document and name
as typed, the Arabic-script name as typed, and the document, name and date of birth read from
the MRZ. Typed data overrides the MRZ in the record, never in the watchlist check: the listed
person's genuine passport with another name typed in still raises an alert. Names are compared
on ``registry.names`` keys, which fold invisible characters and Latin look-alikes of other
scripts (Cyrillic ``А``, Greek ``Ο``), so neither evades a listing.

- ``document``: exact (issuing state, normalised document number); score 100.
- ``name_dob``: ``registry.names.name_similarity`` of the normalised names (person entries),
  for every name against every date of birth presented; the best score counts.
  When the entry and the traveller both have a date of birth, the dates must be equal and the
  name must reach ``name_threshold`` (85). When either lacks one, the name alone must reach
  ``name_only_threshold`` (92). The score is the similarity.
- ``face``: Euclidean distance between the traveller's encoding and the entry's template, a hit
  within ``face_tolerance`` (0.6), banded by ``biometrics.index.BandThresholds``. The score maps
  the distance linearly: ``100 - 50 * distance / tolerance`` (identical 100, at the tolerance 50).

Only the current, active version of an entry whose validity period covers the day of the
crossing matches. A hit never decides anything: it raises an alert that a human adjudicates.

Who sees what (``alert_view``): the officer at the desk gets only the instruction ("refer to
secondary inspection" or "refer to protection officer"), never the reason, the listed names or
the source. Supervisors add the score, band, kind and reason, except for ``protect`` entries.
``protect`` entries and their alerts are visible in full only to protection officers (and to
admins, for audit); hq analysts see everything else. Supervisors manage ``refer_secondary`` and
``notify`` entries; protection officers manage ``protect`` entries; admins manage all. An entry
a role may not manage is answered with 404, so its existence is not disclosed. Nor does
creating one disclose it: when a role creates an entry whose ``(source, external_id)`` is
already taken by an entry it may not manage, the new entry is created all the same, as a
separate entry under its own id (``scoped_entry_id``), exactly as if the other did not exist;
only a collision with an entry the role manages is a 409.

CSV import (``parse_watchlist_csv`` then ``import_watchlist``; ``import_watchlist_csv`` does
both). The whole file is refused, and nothing is written, when it is not strict UTF-8 (the
error names the line), lacks a header or required columns, has unknown or repeated columns, or
is not parseable CSV. Otherwise bad rows are rejected with their line numbers and reasons, and
the good rows are written in ONE transaction. Every line sharing a repeated ``external_id`` is
rejected, since the file does not say which of them is right. A row identical to the current
version is left alone (``unchanged``); a different one becomes a new version (``updated``),
which also reactivates a deactivated entry that the source still lists. An empty ``valid_from``
keeps the current one (today for a new entry) and an empty ``photo`` keeps the current face
template, so an exported file re-imports as unchanged. Photos are analysed with the real face
pipeline before the write transaction opens, so the node write lock is never held during it.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import os
import re
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import date
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from msgspec import UNSET, Meta, UnsetType
from sqlalchemy import exists, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from biometrics.index import BandThresholds, FaceIndex
from registry.audit import audit
from registry.models import (
    ALERT_EVIDENCE,
    WATCHLIST_ACTIONS,
    WATCHLIST_KINDS,
    Alert,
    AlertAdjudication,
    Crossing,
    Officer,
    TravelDocument,
    Traveller,
    WatchlistEntry,
    utcnow,
)
from registry.mrz import MrzResult
from registry.names import form_similarity, name_key, normalise_document_number, similarity_form
from registry.outbox import enqueue, insert_rows, row_of
from registry.problems import Problem, text_refused_problem
from registry.schemas import CleanText, CountryCode, DocumentInput, TravellerInput
from registry.text import (
    TextRefused,
    TextRule,
    clean_text,
    document_number_rule,
    given_names_rule,
    identifier,
    paragraphs,
    surname_rule,
)

if TYPE_CHECKING:
    from registry.node import Node

log = logging.getLogger(__name__)
WATCHLIST_NAMESPACE = uuid.UUID("6f1c1f8e-4f0b-5b7e-9a57-2b6f0d6a7c31")
TEMPLATE_DIM = 128
TEMPLATE_BYTES = TEMPLATE_DIM * 4
DEFAULT_FACE_TOLERANCE = 0.6
DEFAULT_NAME_THRESHOLD = 85.0
DEFAULT_NAME_ONLY_THRESHOLD = 92.0
FACE_CANDIDATES = 16
PROTECT = "protect"
INSTRUCTIONS = {
    "refer_secondary": "refer to secondary inspection",
    "notify": "refer to secondary inspection",
    PROTECT: "refer to protection officer",
}
OPEN_ALERTS_LIMIT = 500
ID_CHUNK = 500

# ============================================================================ API schemas
Kind = Literal["person", "document"]
Action = Literal["refer_secondary", "notify", "protect"]
Outcome = Literal["confirmed", "dismissed"]
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


# ============================================================================ entry content
@dataclass(frozen=True)
class EntryContent:
    """What a version says about the listed person or document (identity fields aside)."""

    kind: str
    surname: str
    given_names: str
    date_of_birth: date | None
    nationality: str | None
    issuing_state: str | None
    document_number: str | None
    reason: str
    action: str
    valid_from: date
    valid_to: date | None
    active: bool = True
    face_template: bytes | None = None


CONTENT_FIELDS = tuple(f.name for f in fields(EntryContent))


def watchlist_entry_id(source: str, external_id: str) -> uuid.UUID:
    """The stable logical id of the entry a source lists under ``external_id``."""
    return uuid.uuid5(WATCHLIST_NAMESPACE, f"{source.strip()}\n{external_id.strip()}")


def scoped_entry_id(source: str, external_id: str, action: str) -> uuid.UUID:
    """The id of an entry created over the API when ``watchlist_entry_id`` is taken by an
    entry its creator may not manage: one id per managing role (protect, or the others)."""
    scope = "protect" if action == PROTECT else "supervised"
    return uuid.uuid5(WATCHLIST_NAMESPACE, f"{source.strip()}\n{external_id.strip()}\n{scope}")


def content_of(entry: WatchlistEntry) -> EntryContent:
    return EntryContent(**{name: getattr(entry, name) for name in CONTENT_FIELDS})


def content_from_create(data: WatchlistEntryCreate, today: date) -> EntryContent:
    return EntryContent(
        kind=data.kind,
        surname=data.surname.strip(),
        given_names=data.given_names.strip(),
        date_of_birth=data.date_of_birth,
        nationality=data.nationality,
        issuing_state=data.issuing_state,
        document_number=_blank_to_none(data.document_number),
        reason=data.reason.strip(),
        action=data.action,
        valid_from=data.valid_from or today,
        valid_to=data.valid_to,
    )


def _blank_to_none(value: str | None) -> str | None:
    return value.strip() or None if value is not None else None


def content_problems(content: EntryContent) -> list[tuple[str, str]]:
    """Cross-field rules of an entry, as (field, reason) pairs; empty when it is valid."""
    problems: list[tuple[str, str]] = []
    if content.kind not in WATCHLIST_KINDS:
        problems.append(("kind", f"must be one of {', '.join(WATCHLIST_KINDS)}"))
    if content.action not in WATCHLIST_ACTIONS:
        problems.append(("action", f"must be one of {', '.join(WATCHLIST_ACTIONS)}"))
    if not content.reason.strip():
        problems.append(("reason", "give the reason for the listing"))
    problems += _identity_problems(content)
    if content.valid_to is not None and content.valid_to < content.valid_from:
        problems.append(("valid_to", "the validity ends before it starts (valid_from)"))
    if content.face_template is not None and len(content.face_template) != TEMPLATE_BYTES:
        problems.append(("photo", f"a face template has {TEMPLATE_DIM} float32 values"))
    return problems


def _identity_problems(content: EntryContent) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    number = content.document_number
    if content.kind == "person" and not content.surname.strip():
        problems.append(("surname", "a person entry needs a surname"))
    elif content.kind == "person" and not name_key(content.surname, content.given_names):
        problems.append(("surname", "the name has no letters"))
    if content.kind == "document" and not number:
        problems.append(("document_number", "a document entry needs the document number"))
    if number and not normalise_document_number(number):
        problems.append(("document_number", "the number has no letters or digits"))
    if number and not content.issuing_state:
        problems.append(("issuing_state", "a document number needs its issuing state"))
    return problems


def _refuse_if_invalid(content: EntryContent) -> None:
    problems = content_problems(content)
    if problems:
        (first_field, first_reason), *rest = problems
        raise Problem(
            422,
            "Invalid watchlist entry",
            field=first_field,
            detail=first_reason,
            invalid_params=[{"name": name, "reason": reason} for name, reason in rest],
        )


def build_version(
    content: EntryContent,
    *,
    entry_id: uuid.UUID,
    version: int,
    origin: str,
    external_id: str,
    source: str,
    officer: Officer | None,
    change_reason: str,
) -> WatchlistEntry:
    """A new entry row for ``content``, with its matching keys computed."""
    number = content.document_number
    return WatchlistEntry(
        entry_id=entry_id,
        version=version,
        origin=origin,
        external_id=external_id,
        source=source,
        name_key=name_key(content.surname, content.given_names) if content.surname else "",
        number_norm=normalise_document_number(number) if number else None,
        created_by=officer.id if officer else None,
        change_reason=change_reason,
        **{name: getattr(content, name) for name in CONTENT_FIELDS},
    )


def template_bytes(encoding: np.ndarray) -> bytes:
    """A 128-value face encoding as stored (little-endian float32)."""
    vector = np.asarray(encoding, dtype="<f4").reshape(-1)
    if vector.shape != (TEMPLATE_DIM,):
        raise ValueError(f"a face template has {TEMPLATE_DIM} values, not {vector.shape[0]}")
    return vector.tobytes()


def template_vector(data: bytes | np.ndarray) -> np.ndarray:
    """A stored template (or an encoding) as a float32 vector of 128 values."""
    if isinstance(data, bytes | bytearray | memoryview):
        vector = np.frombuffer(bytes(data), dtype="<f4")
    else:
        vector = np.asarray(data, dtype=np.float32).reshape(-1)
    if vector.shape != (TEMPLATE_DIM,):
        raise ValueError(f"a face template has {TEMPLATE_DIM} values, not {vector.shape[0]}")
    return vector.astype(np.float32)


# ============================================================================ who may do what
def may_manage(role: str | None, action: str) -> bool:
    """Whether a role may see and change entries with this action (None = system import)."""
    if role is None or role == "admin":
        return True
    if action == PROTECT:
        return role == "protection"
    return role == "supervisor"


def _disclosure(role: str, action: str) -> str:
    """How much of an alert a role sees: ``instruction``, ``summary`` or ``full``."""
    if role == "admin":
        return "full"
    if action == PROTECT:
        return "full" if role == "protection" else "instruction"
    if role == "hq_analyst":
        return "full"
    return "summary" if role == "supervisor" else "instruction"


# ============================================================================ the matcher
@dataclass(frozen=True, slots=True)
class WatchlistHit:
    """One entry matched by one kind of evidence."""

    entry_id: uuid.UUID
    entry_version: int
    kind: str
    evidence: str
    score: float
    distance: float | None
    band: str | None
    action: str


@dataclass(frozen=True, slots=True)
class _Listed:
    """What the matcher keeps of a current, active entry version."""

    entry_id: uuid.UUID
    version: int
    kind: str
    action: str
    name_key: str
    name_form: str  # registry.names.similarity_form of name_key, computed once
    date_of_birth: date | None
    document: tuple[str, str] | None
    valid_from: date
    valid_to: date | None

    def covers(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)

    def hit(
        self, evidence: str, score: float, distance: float | None = None, band: str | None = None
    ) -> WatchlistHit:
        return WatchlistHit(
            self.entry_id, self.version, self.kind, evidence, score, distance, band, self.action
        )


@dataclass(frozen=True, slots=True)
class TravellerProbe:
    """Every identity one traveller presents, matched together (see ``traveller_probe``).

    ``documents``: (issuing state, normalised number) pairs; ``name_keys``: ``name_key`` of each
    name (typed Latin, typed Arabic script, MRZ); ``dates_of_birth``: typed and MRZ (None when
    unknown). Each name is matched against each date of birth.
    """

    documents: tuple[tuple[str, str], ...]
    name_keys: tuple[str, ...]
    dates_of_birth: tuple[date | None, ...]


def traveller_probe(
    document: DocumentInput, traveller: TravellerInput, mrz: MrzResult | None
) -> TravellerProbe:
    """The identities to match for a registration: as typed (Latin and Arabic-script names)
    and as read from the MRZ, whatever the typed data overrides in the record."""
    documents = [(document.issuing_state, normalise_document_number(document.number))]
    names = [name_key(traveller.surname, traveller.given_names)]
    names.append(name_key(traveller.surname_ar or "", traveller.given_names_ar or ""))
    births = [traveller.date_of_birth]
    if mrz is not None:
        if mrz.issuing_state and mrz.document_number:
            number = normalise_document_number(mrz.document_number)
            documents.append((mrz.issuing_state, number))
        names.append(name_key(mrz.surname or "", mrz.given_names or ""))
        if mrz.date_of_birth is not None:
            births.append(mrz.date_of_birth)
    return TravellerProbe(
        documents=tuple(dict.fromkeys(pair for pair in documents if pair[1])),
        name_keys=tuple(dict.fromkeys(key for key in names if key)),
        dates_of_birth=tuple(dict.fromkeys(births)),
    )


def _listed(entry: WatchlistEntry) -> _Listed:
    document = None
    if entry.number_norm and entry.issuing_state:
        document = (entry.issuing_state, entry.number_norm)
    # A stored key is valid for a name in ASCII (the look-alike folding of registry.names left
    # those keys unchanged); any other name is keyed again, so a row written before that folding
    # matches under today's.
    surname, given_names = entry.surname or "", entry.given_names or ""
    listed_key = entry.name_key
    if not (surname.isascii() and given_names.isascii()):
        listed_key = name_key(surname, given_names)
    if entry.kind != "person":
        listed_key = ""
    return _Listed(
        entry_id=entry.entry_id,
        version=entry.version,
        kind=entry.kind,
        action=entry.action,
        name_key=listed_key,
        name_form=similarity_form(listed_key) if listed_key else "",
        date_of_birth=entry.date_of_birth,
        document=document,
        valid_from=entry.valid_from,
        valid_to=entry.valid_to,
    )


class _Listing:
    """The indexes over the active entries: by document, by date of birth, by face."""

    def __init__(self, bands: BandThresholds) -> None:
        self.entries: dict[uuid.UUID, _Listed] = {}
        self.documents: dict[tuple[str, str], set[uuid.UUID]] = defaultdict(set)
        self.names: dict[date | None, set[uuid.UUID]] = defaultdict(set)
        self.faces = FaceIndex(TEMPLATE_DIM, bands=bands)

    def add(self, entry: WatchlistEntry) -> None:
        listed = _listed(entry)
        self.entries[listed.entry_id] = listed
        if listed.document is not None:
            self.documents[listed.document].add(listed.entry_id)
        if listed.name_key:
            self.names[listed.date_of_birth].add(listed.entry_id)
        if entry.face_template is not None:
            self.faces.add(str(listed.entry_id), template_vector(entry.face_template))

    def discard(self, entry_id: uuid.UUID) -> None:
        listed = self.entries.pop(entry_id, None)
        if listed is None:
            return
        if listed.document is not None:
            _discard_from(self.documents, listed.document, entry_id)
        if listed.name_key:
            _discard_from(self.names, listed.date_of_birth, entry_id)
        self.faces.discard(str(entry_id))


def _discard_from(index: dict[Any, set[uuid.UUID]], key: Any, entry_id: uuid.UUID) -> None:
    members = index.get(key)
    if members is not None:
        members.discard(entry_id)
        if not members:
            del index[key]


def face_score(distance: float, tolerance: float) -> float:
    """0-100: 100 for identical templates, 50 at the tolerance, never below 0."""
    return round(max(0.0, 100.0 - 50.0 * distance / tolerance), 1)


class WatchlistMatcher:
    """In-memory watchlist of a node: current active entry versions, matched without I/O.

    Load it at start-up (``load``), keep it current with ``apply`` after each committed
    entry version, and ``refresh`` it periodically to pick up versions written by another
    process (the CLI import, the sync pull). Thread-safe.
    """

    def __init__(
        self,
        *,
        face_tolerance: float = DEFAULT_FACE_TOLERANCE,
        name_threshold: float = DEFAULT_NAME_THRESHOLD,
        name_only_threshold: float = DEFAULT_NAME_ONLY_THRESHOLD,
        bands: BandThresholds | None = None,
    ) -> None:
        self.face_tolerance = face_tolerance
        self.name_threshold = name_threshold
        self.name_only_threshold = name_only_threshold
        self.bands = bands or BandThresholds()
        self._lock = threading.RLock()
        self._listing = _Listing(self.bands)
        self._versions: dict[uuid.UUID, int] = {}
        self._signature: tuple[int, str | None] | None = None

    # -- loading ------------------------------------------------------------------------------
    @classmethod
    async def load(cls, session: AsyncSession, **options: Any) -> WatchlistMatcher:
        """A matcher holding the current active versions stored in the database."""
        matcher = cls(**options)
        await matcher.reload(session)
        return matcher

    async def reload(self, session: AsyncSession) -> None:
        """Rebuild from the database, then swap in the new indexes at once."""
        signature = await _table_signature(session)
        listing = _Listing(self.bands)
        versions: dict[uuid.UUID, int] = {}
        for entry in (await session.scalars(current_versions_query())).all():
            versions[entry.entry_id] = entry.version
            if entry.active:
                listing.add(entry)
        with self._lock:
            self._listing, self._versions, self._signature = listing, versions, signature

    async def refresh(self, session: AsyncSession) -> bool:
        """Reload when rows were written since the last load (one cheap query); say if so."""
        if await _table_signature(session) == self._signature:
            return False
        await self.reload(session)
        return True

    def apply(self, entry: WatchlistEntry) -> None:
        """Take a committed entry version into account (add, replace or remove)."""
        with self._lock:
            if entry.version <= self._versions.get(entry.entry_id, 0):
                return  # an older or already applied version
            self._versions[entry.entry_id] = entry.version
            self._listing.discard(entry.entry_id)
            if entry.active:
                self._listing.add(entry)

    def __len__(self) -> int:
        return len(self._listing.entries)

    # -- matching -----------------------------------------------------------------------------
    def match(
        self,
        *,
        day: date,
        issuing_state: str,
        number_norm: str,
        name_key: str,
        date_of_birth: date | None,
        face_encoding: np.ndarray | bytes | None = None,
    ) -> list[WatchlistHit]:
        """Every hit for one identity on ``day``, best score first. No I/O."""
        probe = TravellerProbe(
            documents=((issuing_state, number_norm),),
            name_keys=(name_key,) if name_key else (),
            dates_of_birth=(date_of_birth,),
        )
        return self.match_traveller(day=day, probe=probe, face_encoding=face_encoding)

    def match_traveller(
        self,
        *,
        day: date,
        probe: TravellerProbe,
        face_encoding: np.ndarray | bytes | None = None,
    ) -> list[WatchlistHit]:
        """Every hit for every identity of one traveller on ``day``: one hit per (entry,
        evidence) with its best score, best score first. No I/O."""
        with self._lock:
            listing = self._listing
            hits: list[WatchlistHit] = []
            for issuing_state, number_norm in probe.documents:
                hits += self._document_hits(listing, day, issuing_state, number_norm)
            if probe.name_keys:
                candidates = self._name_candidates(listing, probe.dates_of_birth, day)
                for key in probe.name_keys:
                    hits += self._name_hits(candidates, key)
            if face_encoding is not None:
                hits += self._face_hits(listing, day, template_vector(face_encoding))
        best: dict[tuple[uuid.UUID, str], WatchlistHit] = {}
        for hit in hits:
            kept = best.get((hit.entry_id, hit.evidence))
            if kept is None or hit.score > kept.score:
                best[(hit.entry_id, hit.evidence)] = hit
        return sorted(best.values(), key=lambda hit: (-hit.score, hit.evidence))

    @staticmethod
    def _document_hits(
        listing: _Listing, day: date, issuing_state: str, number_norm: str
    ) -> list[WatchlistHit]:
        ids = listing.documents.get((issuing_state, number_norm), ())
        found = (listing.entries[entry_id] for entry_id in ids)
        return [listed.hit("document", 100.0) for listed in found if listed.covers(day)]

    def _name_candidates(
        self, listing: _Listing, dates_of_birth: Iterable[date | None], day: date
    ) -> list[tuple[_Listed, float]]:
        """The person entries in force that a name may hit, each with the lowest threshold
        any of the traveller's dates of birth allows: ``name_threshold`` for an entry with
        that date, ``name_only_threshold`` when the entry or the traveller has none."""
        thresholds: dict[uuid.UUID, float] = {}

        def offer(ids: Iterable[uuid.UUID], threshold: float) -> None:
            for entry_id in ids:
                if threshold < thresholds.get(entry_id, float("inf")):
                    thresholds[entry_id] = threshold

        for date_of_birth in dates_of_birth:
            if date_of_birth is None:
                for ids in listing.names.values():
                    offer(ids, self.name_only_threshold)
            else:
                offer(listing.names.get(date_of_birth, ()), self.name_threshold)
                offer(listing.names.get(None, ()), self.name_only_threshold)
        found = ((listing.entries[entry_id], limit) for entry_id, limit in thresholds.items())
        return [(listed, limit) for listed, limit in found if listed.covers(day)]

    @staticmethod
    def _name_hits(candidates: list[tuple[_Listed, float]], key: str) -> list[WatchlistHit]:
        if not key:
            return []
        form = similarity_form(key)
        hits = []
        for listed, threshold in candidates:
            similarity = form_similarity(form, listed.name_form)
            if similarity >= threshold:
                hits.append(listed.hit("name_dob", float(similarity)))
        return hits

    def _face_hits(self, listing: _Listing, day: date, probe: np.ndarray) -> list[WatchlistHit]:
        if len(listing.faces) == 0:
            return []
        candidates = listing.faces.search(
            probe, k=min(FACE_CANDIDATES, len(listing.faces)), max_distance=self.face_tolerance
        )
        hits = []
        for candidate in candidates:
            listed = listing.entries[uuid.UUID(candidate.template_id)]
            if listed.covers(day):
                score = face_score(candidate.distance, self.face_tolerance)
                hits.append(listed.hit("face", score, candidate.distance, candidate.band))
        return hits


async def _table_signature(session: AsyncSession) -> tuple[int, str | None]:
    """Row count and latest write time: rows are never deleted, so any write changes it."""
    query = select(func.count(), func.max(WatchlistEntry.created_at))
    count, highest = (await session.execute(query)).one()
    return int(count), str(highest) if highest is not None else None


async def refresh_periodically(node: Node, *, every_seconds: float = 30.0) -> None:
    """Run as a lifespan task: reload the matcher when another process (the CLI import, the
    sync pull) wrote entry versions. Errors are logged and the loop goes on."""
    matcher = matcher_of(node)
    if matcher is None:
        return
    while True:
        await asyncio.sleep(every_seconds)
        try:
            async with node.db.session() as session:
                if await matcher.refresh(session):
                    log.info("watchlist reloaded: %d active entries", len(matcher))
        except Exception:  # noqa: BLE001 - a background loop must survive a bad moment
            log.exception("watchlist refresh failed")


def matcher_of(node: Node) -> WatchlistMatcher | None:
    """The node's matcher (``Node.watchlists``), if this node has one."""
    return getattr(node, "watchlists", None)


def apply_to_matcher(node: Node, entries: Iterable[WatchlistEntry]) -> None:
    """Call after the commit that wrote ``entries``."""
    matcher = matcher_of(node)
    if matcher is not None:
        for entry in entries:
            matcher.apply(entry)


# ============================================================================ entry services
@cache
def current_versions_query() -> Any:
    """SELECT of the latest version of every entry (active or not)."""
    newer = aliased(WatchlistEntry)
    return select(WatchlistEntry).where(
        ~exists().where(
            newer.entry_id == WatchlistEntry.entry_id, newer.version > WatchlistEntry.version
        )
    )


async def current_version(session: AsyncSession, entry_id: uuid.UUID) -> WatchlistEntry | None:
    query = (
        select(WatchlistEntry)
        .where(WatchlistEntry.entry_id == entry_id)
        .order_by(WatchlistEntry.version.desc())
        .limit(1)
    )
    return await session.scalar(query)


async def _visible_current(
    session: AsyncSession, officer: Officer | None, entry_id: uuid.UUID
) -> WatchlistEntry:
    current = await current_version(session, entry_id)
    if current is None or not may_manage(_role(officer), current.action):
        raise Problem(404, "Not found", field="entry_id", detail="no watchlist entry has this id")
    return current


def _role(officer: Officer | None) -> str | None:
    return officer.role if officer else None


def _refuse_unless_manages(officer: Officer | None, action: str) -> None:
    if not may_manage(_role(officer), action):
        who = "protection officers" if action == PROTECT else "supervisors"
        raise Problem(
            403,
            "Forbidden",
            field="action",
            detail=f"{action} entries are managed by {who} (and admins)",
        )


async def _write_versions(
    session: AsyncSession,
    *,
    node: Node,
    officer: Officer | None,
    rows: Sequence[WatchlistEntry],
    action: str,
    purpose: str,
    detail: dict[str, Any],
) -> None:
    """Insert entry versions, append them to the outbox, audit the write once."""
    for start in range(0, len(rows), ID_CHUNK):
        chunk = rows[start : start + ID_CHUNK]
        await session.execute(insert(WatchlistEntry), [row_of(row) for row in chunk])
        await enqueue(session, *chunk)
    record_id = rows[0].id if len(rows) == 1 else detail.get("file", "batch")
    await audit(
        session,
        origin=node.settings.node_code,
        officer=officer,
        action=action,
        record_type="watchlist_entry",
        record_id=record_id,
        purpose=purpose,
        detail={**detail, "versions": [f"{row.entry_id}/{row.version}" for row in rows]},
    )


async def create_entry(
    session: AsyncSession,
    *,
    node: Node,
    officer: Officer | None,
    data: WatchlistEntryCreate,
    face_template: bytes | None = None,
) -> WatchlistEntry:
    """Write version 1 of a new entry; 409 if the source already lists this external id in
    an entry the officer manages (one it may not manage is not disclosed: see the module)."""
    _refuse_unless_manages(officer, data.action)
    content = replace(content_from_create(data, _today(node)), face_template=face_template)
    _refuse_if_invalid(content)
    external_id = data.external_id.strip() if data.external_id else str(uuid.uuid4())
    entry_id = await _free_entry_id(session, officer, data.source, external_id, data.action)
    entry = build_version(
        content,
        entry_id=entry_id,
        version=1,
        origin=node.settings.node_code,
        external_id=external_id,
        source=data.source.strip(),
        officer=officer,
        change_reason="created",
    )
    await _write_versions(
        session,
        node=node,
        officer=officer,
        rows=[entry],
        action="create",
        purpose="watchlist_management",
        detail={"entry_id": str(entry_id)},
    )
    return entry


async def _free_entry_id(
    session: AsyncSession, officer: Officer | None, source: str, external_id: str, action: str
) -> uuid.UUID:
    """The id for a new entry: the source's own, else (taken by an entry the officer may not
    manage) a scoped one, else a random one; 409 only for an entry the officer manages."""
    for entry_id in (
        watchlist_entry_id(source, external_id),
        scoped_entry_id(source, external_id, action),
    ):
        taken = await current_version(session, entry_id)
        if taken is None:
            return entry_id
        if may_manage(_role(officer), taken.action):
            raise Problem(
                409,
                "Entry exists",
                field="external_id",
                detail="this source already lists this external id: add a version instead",
            )
    return uuid.uuid4()


def _today(node: Node) -> date:
    return utcnow().astimezone(node.settings.zone).date()


async def update_entry(
    session: AsyncSession,
    *,
    node: Node,
    officer: Officer | None,
    entry_id: uuid.UUID,
    changes: dict[str, Any],
    change_reason: str,
) -> WatchlistEntry:
    """Write the next version with ``changes`` applied; the current version stays as it was."""
    current = await _visible_current(session, officer, entry_id)
    unknown = sorted(set(changes) - set(CONTENT_FIELDS))
    if unknown:
        raise Problem(422, "Unknown field", field=unknown[0], detail="this field cannot change")
    content = replace(content_of(current), **_cleaned(changes))
    _refuse_unless_manages(officer, content.action)
    _refuse_if_invalid(content)
    if content == content_of(current):
        raise Problem(
            422, "Nothing changed", field="body", detail="the new version equals the current one"
        )
    return await _next_version(session, node, officer, current, content, change_reason)


def _cleaned(changes: dict[str, Any]) -> dict[str, Any]:
    cleaned = {k: v.strip() if isinstance(v, str) else v for k, v in changes.items()}
    if cleaned.get("document_number") == "":
        cleaned["document_number"] = None
    return cleaned


async def _next_version(
    session: AsyncSession,
    node: Node,
    officer: Officer | None,
    current: WatchlistEntry,
    content: EntryContent,
    change_reason: str,
) -> WatchlistEntry:
    entry = build_version(
        content,
        entry_id=current.entry_id,
        version=current.version + 1,
        origin=node.settings.node_code,
        external_id=current.external_id,
        source=current.source,
        officer=officer,
        change_reason=change_reason,
    )
    await _write_versions(
        session,
        node=node,
        officer=officer,
        rows=[entry],
        action="deactivate" if current.active and not entry.active else "update",
        purpose="watchlist_management",
        detail={"entry_id": str(entry.entry_id), "change_reason": change_reason},
    )
    return entry


async def deactivate_entry(
    session: AsyncSession,
    *,
    node: Node,
    officer: Officer | None,
    entry_id: uuid.UUID,
    reason: str,
) -> WatchlistEntry:
    """Remove an entry from matching by a new version with ``active=False``; 409 if removed."""
    current = await _visible_current(session, officer, entry_id)
    if not current.active:
        raise Problem(
            409, "Already inactive", field="entry_id", detail="this entry is already deactivated"
        )
    content = replace(content_of(current), active=False)
    return await _next_version(session, node, officer, current, content, reason)


async def list_entries(
    session: AsyncSession,
    *,
    node: Node,
    officer: Officer,
    kind: str | None = None,
    action: str | None = None,
    include_inactive: bool = False,
    limit: int = 100,
    offset: int = 0,
) -> list[WatchlistEntry]:
    """Current versions the officer may manage; the read is audited."""
    query = current_versions_query()
    visible = [a for a in WATCHLIST_ACTIONS if may_manage(officer.role, a)]
    query = query.where(WatchlistEntry.action.in_(visible))
    if kind is not None:
        query = query.where(WatchlistEntry.kind == kind)
    if action is not None:
        query = query.where(WatchlistEntry.action == action)
    if not include_inactive:
        query = query.where(WatchlistEntry.active.is_(True))
    query = query.order_by(WatchlistEntry.source, WatchlistEntry.external_id)
    entries = list((await session.scalars(query.limit(limit).offset(offset))).all())
    await _audit_read(session, node, officer, "list", [e.id for e in entries])
    return entries


async def entry_history(
    session: AsyncSession, *, node: Node, officer: Officer, entry_id: uuid.UUID
) -> list[WatchlistEntry]:
    """Every version of an entry, oldest first; the read is audited."""
    await _visible_current(session, officer, entry_id)
    query = (
        select(WatchlistEntry)
        .where(WatchlistEntry.entry_id == entry_id)
        .order_by(WatchlistEntry.version)
    )
    versions = list((await session.scalars(query)).all())
    await _audit_read(session, node, officer, str(entry_id), [e.id for e in versions])
    return versions


async def _audit_read(
    session: AsyncSession,
    node: Node,
    officer: Officer,
    record_id: str,
    rows: list[uuid.UUID],
) -> None:
    await audit(
        session,
        origin=node.settings.node_code,
        officer=officer,
        action="read",
        record_type="watchlist_entry",
        record_id=record_id,
        purpose="watchlist_management",
        detail={"results": [str(row) for row in rows]},
    )


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def entry_view(entry: WatchlistEntry) -> dict[str, Any]:
    """The JSON shape of an entry version (the face template itself is never sent)."""
    return {
        "id": str(entry.id),
        "entry_id": str(entry.entry_id),
        "version": entry.version,
        "origin": entry.origin,
        "external_id": entry.external_id,
        "source": entry.source,
        "kind": entry.kind,
        "surname": entry.surname,
        "given_names": entry.given_names,
        "date_of_birth": _iso(entry.date_of_birth),
        "nationality": entry.nationality,
        "issuing_state": entry.issuing_state,
        "document_number": entry.document_number,
        "reason": entry.reason,
        "action": entry.action,
        "valid_from": _iso(entry.valid_from),
        "valid_to": _iso(entry.valid_to),
        "active": entry.active,
        "has_face_template": entry.face_template is not None,
        "created_by": str(entry.created_by) if entry.created_by else None,
        "created_at": entry.created_at.isoformat(),
        "change_reason": entry.change_reason,
    }


# ============================================================================ alerts
def alerts_for_crossing(
    crossing_id: uuid.UUID, hits: Sequence[WatchlistHit], origin: str
) -> list[Alert]:
    """Alert rows for the hits of one registration (not yet written)."""
    return [
        Alert(
            origin=origin,
            crossing_id=crossing_id,
            entry_id=hit.entry_id,
            entry_version=hit.entry_version,
            kind=hit.kind,
            evidence=hit.evidence,
            score=hit.score,
            distance=hit.distance,
            band=hit.band,
            action=hit.action,
        )
        for hit in hits
    ]


async def store_alerts(session: AsyncSession, alerts: Sequence[Alert]) -> None:
    """Insert alerts and append them to the outbox (after their crossing was inserted)."""
    if alerts:
        await insert_rows(session, *alerts)
        await enqueue(session, *alerts)


def desk_alert_view(alert: Alert) -> dict[str, Any]:
    """What the registration response shows, whoever registers: the instruction only.

    Supervisors read the details through ``GET /api/alerts``; needing no entry, this view
    costs no I/O, so the registration writer can build it inside its batch.
    """
    return alert_view(alert, None, role="officer")


def alert_view(alert: Alert, entry: WatchlistEntry | None, *, role: str) -> dict[str, Any]:
    """What ``role`` may see of an alert (see the module docstring)."""
    view: dict[str, Any] = {
        "id": str(alert.id),
        "evidence": alert.evidence,
        "instruction": INSTRUCTIONS.get(alert.action, INSTRUCTIONS["refer_secondary"]),
    }
    level = _disclosure(role, alert.action)
    if level == "instruction":
        return view
    view.update(
        crossing_id=str(alert.crossing_id),
        created_at=alert.created_at.isoformat(),
        kind=alert.kind,
        action=alert.action,
        score=alert.score,
        band=alert.band,
        distance=alert.distance,
        reason=entry.reason if entry else None,
    )
    if level == "full":
        view.update(
            entry_id=str(alert.entry_id),
            entry_version=alert.entry_version,
            entry=_listed_view(entry) if entry else None,
        )
    return view


def _listed_view(entry: WatchlistEntry) -> dict[str, Any]:
    return {
        "external_id": entry.external_id,
        "source": entry.source,
        "surname": entry.surname,
        "given_names": entry.given_names,
        "date_of_birth": _iso(entry.date_of_birth),
        "nationality": entry.nationality,
        "issuing_state": entry.issuing_state,
        "document_number": entry.document_number,
        "reason": entry.reason,
        "valid_from": _iso(entry.valid_from),
        "valid_to": _iso(entry.valid_to),
    }


async def entries_of_alerts(
    session: AsyncSession, alerts: Sequence[Alert]
) -> dict[tuple[uuid.UUID, int], WatchlistEntry]:
    """The entry versions the alerts were raised on, keyed by (entry_id, version)."""
    wanted = {(alert.entry_id, alert.entry_version) for alert in alerts}
    ids = sorted({entry_id for entry_id, _ in wanted})
    found: dict[tuple[uuid.UUID, int], WatchlistEntry] = {}
    for start in range(0, len(ids), ID_CHUNK):
        query = select(WatchlistEntry).where(
            WatchlistEntry.entry_id.in_(ids[start : start + ID_CHUNK])
        )
        for entry in (await session.scalars(query)).all():
            if (entry.entry_id, entry.version) in wanted:
                found[(entry.entry_id, entry.version)] = entry
    return found


def _crossing_summary(node: Node, crossing: Crossing) -> dict[str, Any]:
    return {
        "id": str(crossing.id),
        "post": crossing.post,
        "direction": crossing.direction,
        "occurred_at": crossing.occurred_at.isoformat(),
        "occurred_at_local": crossing.occurred_at.astimezone(node.settings.zone).isoformat(),
        "decision": crossing.decision,
    }


def _traveller_summary(traveller: Traveller, document: TravelDocument) -> dict[str, Any]:
    return {
        "id": str(traveller.id),
        "surname": traveller.surname,
        "given_names": traveller.given_names,
        "date_of_birth": _iso(traveller.date_of_birth),
        "nationality": traveller.nationality,
        "document": {"issuing_state": document.issuing_state, "number": document.number},
    }


def _not_adjudicated() -> Any:
    return ~exists().where(AlertAdjudication.alert_id == Alert.id)


async def open_alerts(
    session: AsyncSession, *, node: Node, officer: Officer
) -> list[dict[str, Any]]:
    """Unadjudicated alerts at this post, oldest first, as the officer's role may see them.

    Protection officers get only ``protect`` alerts; supervisors get those as instructions
    only, without the traveller. The read is audited.
    """
    query = (
        select(Alert, Crossing, Traveller, TravelDocument)
        .join(Crossing, Crossing.id == Alert.crossing_id)
        .join(Traveller, Traveller.id == Crossing.traveller_id)
        .join(TravelDocument, TravelDocument.id == Crossing.document_id)
        # `post + ""` stops SQLite from starting the join at every crossing of the post
        .where((Crossing.post + "") == node.settings.node_code, _not_adjudicated())
        .order_by(Alert.created_at, Alert.id)
        .limit(OPEN_ALERTS_LIMIT)
    )
    if officer.role == "protection":
        query = query.where(Alert.action == PROTECT)
    rows = (await session.execute(query)).all()
    entries = await entries_of_alerts(session, [row[0] for row in rows])
    views = []
    for alert, crossing, traveller, document in rows:
        view = alert_view(
            alert, entries.get((alert.entry_id, alert.entry_version)), role=officer.role
        )
        view["crossing"] = _crossing_summary(node, crossing)
        if _disclosure(officer.role, alert.action) != "instruction":
            view["traveller"] = _traveller_summary(traveller, document)
        views.append(view)
    await audit(
        session,
        origin=node.settings.node_code,
        officer=officer,
        action="read",
        record_type="alert",
        record_id="open",
        purpose="alert_review",
        detail={"alerts": [view["id"] for view in views]},
    )
    return views


def _refuse_unless_adjudicates(officer: Officer, alert: Alert) -> None:
    if alert.action == PROTECT and officer.role != "protection":
        raise Problem(
            403,
            "Forbidden",
            field="alert_id",
            detail="a protection officer adjudicates this alert",
        )
    if alert.action != PROTECT and officer.role != "supervisor":
        raise Problem(
            403, "Forbidden", field="alert_id", detail="a supervisor adjudicates this alert"
        )


async def adjudicate(
    session: AsyncSession,
    *,
    node: Node,
    officer: Officer,
    alert_id: uuid.UUID,
    outcome: str,
    reason: str,
) -> AlertAdjudication:
    """Record the one human decision on an alert: 404 unknown, 409 already decided."""
    try:
        reason = clean_text(reason, ADJUDICATION_REASON, "reason")
    except TextRefused as refused:
        raise text_refused_problem(refused) from refused
    alert = await session.get(Alert, alert_id)
    if alert is None:
        raise Problem(404, "Not found", field="alert_id", detail="no alert has this id")
    _refuse_unless_adjudicates(officer, alert)
    decided = await session.scalar(
        select(AlertAdjudication.id).where(AlertAdjudication.alert_id == alert_id)
    )
    if decided is not None:
        raise Problem(
            409, "Already adjudicated", field="alert_id", detail="this alert has been decided"
        )
    adjudication = AlertAdjudication(
        origin=node.settings.node_code,
        alert_id=alert.id,
        outcome=outcome,
        reason=reason.strip(),
        officer_id=officer.id,
    )
    await insert_rows(session, adjudication)
    await enqueue(session, adjudication)
    await audit(
        session,
        origin=node.settings.node_code,
        officer=officer,
        action="adjudicate",
        record_type="alert",
        record_id=alert.id,
        purpose="alert_review",
        detail={"adjudication": str(adjudication.id), "outcome": outcome},
    )
    return adjudication


def adjudication_view(adjudication: AlertAdjudication) -> dict[str, Any]:
    return {
        "id": str(adjudication.id),
        "alert_id": str(adjudication.alert_id),
        "outcome": adjudication.outcome,
        "reason": adjudication.reason,
        "officer_id": str(adjudication.officer_id),
        "created_at": adjudication.created_at.isoformat(),
    }


async def alert_figures(session: AsyncSession) -> dict[str, dict[str, int]]:
    """Alerts raised, confirmed, dismissed and still open, per kind of evidence."""
    figures = {
        evidence: {"raised": 0, "confirmed": 0, "dismissed": 0, "open": 0}
        for evidence in ALERT_EVIDENCE
    }
    query = (
        select(Alert.evidence, AlertAdjudication.outcome, func.count())
        .outerjoin(AlertAdjudication, AlertAdjudication.alert_id == Alert.id)
        .group_by(Alert.evidence, AlertAdjudication.outcome)
    )
    for evidence, outcome, count in (await session.execute(query)).all():
        bucket = figures.setdefault(
            evidence, {"raised": 0, "confirmed": 0, "dismissed": 0, "open": 0}
        )
        bucket["raised"] += count
        bucket[outcome or "open"] += count
    return figures


# ============================================================================ CSV files
CSV_COLUMNS = (
    "external_id",
    "kind",
    "surname",
    "given_names",
    "date_of_birth",
    "nationality",
    "issuing_state",
    "document_number",
    "reason",
    "action",
    "source",
    "valid_from",
    "valid_to",
    "photo",
)
REQUIRED_COLUMNS = tuple(column for column in CSV_COLUMNS if column != "photo")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_COUNTRY = re.compile(r"^[A-Z]{1,3}<{0,2}$")
_COLUMN_RULES: dict[str, TextRule] = {
    "external_id": EXTERNAL_ID,
    "surname": SURNAME,
    "given_names": GIVEN_NAMES,
    "document_number": DOCUMENT_NUMBER,
    "reason": LISTING_REASON,
    "source": SOURCE,
}
_OTHER_COLUMN = identifier(255)  # kind, action, dates, countries, photo: checked further
Progress = Callable[[int, int], None]


class WatchlistFileRefused(Exception):
    """The whole file is refused; nothing was written."""


class _RowRejected(Exception):
    """One data row is rejected; the message says why."""


@dataclass(frozen=True)
class WatchlistRow:
    """A data row that passed every check, ready to import."""

    line: int
    source: str
    external_id: str
    content: EntryContent
    keeps_valid_from: bool
    photo: str | None = None

    @property
    def entry_id(self) -> uuid.UUID:
        return watchlist_entry_id(self.source, self.external_id)


@dataclass
class WatchlistFile:
    """A parsed watchlist CSV file: its good rows and its rejected lines."""

    path: Path
    total: int
    rows: list[WatchlistRow]
    rejected: list[tuple[int, str]]


@dataclass
class ImportReport:
    """What an import did; ``written`` holds the new versions (to apply to the matcher)."""

    file: str
    total: int = 0
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    written: list[WatchlistEntry] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "rows": self.total,
            "imported": self.imported,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": [{"line": line, "reason": reason} for line, reason in self.rejected],
        }


def _decode_strictly(data: bytes) -> str:
    """UTF-8 (an initial BOM is allowed) or refusal naming the first bad line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise WatchlistFileRefused(
            f"line {line} is not valid UTF-8 (byte 0x{data[exc.start]:02x}); "
            "save the file as UTF-8 and import it again"
        ) from exc


def _check_header(header: list[str] | None) -> None:
    if not header:
        raise WatchlistFileRefused("the file is empty: the first line must name the columns")
    names = [name.strip() for name in header]
    repeated = sorted({name for name in names if names.count(name) > 1})
    missing = [column for column in REQUIRED_COLUMNS if column not in names]
    unknown = [name for name in names if name not in CSV_COLUMNS]
    problems = []
    if missing:
        problems.append(f"missing required columns: {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown columns: {', '.join(unknown)}")
    if repeated:
        problems.append(f"repeated columns: {', '.join(repeated)}")
    if problems:
        raise WatchlistFileRefused("; ".join(problems))


def _read_records(text: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and (starting line, fields) of every non-blank record."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        _check_header(header)
        assert header is not None
        records = []
        line = reader.line_num + 1
        for fields_ in reader:
            if any(value.strip() for value in fields_):
                records.append((line, fields_))
            line = reader.line_num + 1
    except csv.Error as exc:
        raise WatchlistFileRefused(f"line {reader.line_num}: not readable CSV ({exc})") from exc
    return [name.strip() for name in header], records


def _optional_text(raw: dict[str, str], column: str) -> str | None:
    """The column's clean text (``registry.text``), None when blank; refused text rejects
    the row, naming the column and the reason."""
    value = raw.get(column, "")
    if not value.strip():
        return None
    try:
        return clean_text(value, _COLUMN_RULES.get(column, _OTHER_COLUMN), column)
    except TextRefused as refused:
        raise _RowRejected(f"{column}: {refused.reason}") from refused


def _required_text(raw: dict[str, str], column: str) -> str:
    value = _optional_text(raw, column)
    if value is None:
        raise _RowRejected(f"{column}: required")
    return value


def _choice(raw: dict[str, str], column: str, allowed: tuple[str, ...]) -> str:
    value = _required_text(raw, column)
    if value not in allowed:
        raise _RowRejected(f"{column}: {value!r} is not one of {', '.join(allowed)}")
    return value


def _date(raw: dict[str, str], column: str) -> date | None:
    value = _optional_text(raw, column)
    if value is None:
        return None
    try:
        if not _ISO_DATE.match(value):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError as exc:
        raise _RowRejected(f"{column}: {value!r} is not a date (YYYY-MM-DD)") from exc


def _country(raw: dict[str, str], column: str) -> str | None:
    value = _optional_text(raw, column)
    if value is None:
        return None
    value = value.upper()
    if len(value) != 3 or not _COUNTRY.match(value):
        raise _RowRejected(f"{column}: {value!r} is not a 3-letter ICAO code")
    return value


def _collect(checks: Sequence[Callable[[], Any]]) -> tuple[list[Any], list[str]]:
    """Run every field check; gather the values and every rejection message."""
    values, problems = [], []
    for check in checks:
        try:
            values.append(check())
        except _RowRejected as exc:
            values.append(None)
            problems.append(str(exc))
    return values, problems


def _parse_row(line: int, raw: dict[str, str], today: date) -> WatchlistRow:
    """Every check of one row that needs no photo; raises _RowRejected naming all problems."""
    (external_id, kind, action, source, reason, dob, valid_from, valid_to, nat, state), problems = (
        _collect(
            [
                lambda: _required_text(raw, "external_id"),
                lambda: _choice(raw, "kind", WATCHLIST_KINDS),
                lambda: _choice(raw, "action", WATCHLIST_ACTIONS),
                lambda: _required_text(raw, "source"),
                lambda: _required_text(raw, "reason"),
                lambda: _date(raw, "date_of_birth"),
                lambda: _date(raw, "valid_from"),
                lambda: _date(raw, "valid_to"),
                lambda: _country(raw, "nationality"),
                lambda: _country(raw, "issuing_state"),
            ]
        )
    )
    (surname, given, number, photo), more = _collect(
        [
            lambda: _optional_text(raw, "surname") or "",
            lambda: _optional_text(raw, "given_names") or "",
            lambda: _optional_text(raw, "document_number"),
            lambda: _optional_text(raw, "photo"),
        ]
    )
    problems += more
    if problems:
        raise _RowRejected("; ".join(problems))
    content = EntryContent(
        kind=kind,
        surname=surname,
        given_names=given,
        date_of_birth=dob,
        nationality=nat,
        issuing_state=state,
        document_number=number,
        reason=reason,
        action=action,
        valid_from=valid_from or today,
        valid_to=valid_to,
    )
    invalid = content_problems(content)
    if invalid:
        raise _RowRejected("; ".join(f"{name}: {why}" for name, why in invalid))
    return WatchlistRow(line, source, external_id, content, valid_from is None, photo)


def _face_template(photos_dir: Path | None, name: str) -> bytes:
    """The template of the one face in a photo, or _RowRejected saying what is wrong."""
    from biometrics.face import analyse_portrait
    from biometrics.imaging import ImageRejected

    if photos_dir is None:
        raise _RowRejected(f"photo: {name!r} given but no photos directory (--photos)")
    if Path(name).name != name or name.startswith("."):
        raise _RowRejected(f"photo: {name!r} must be a file name inside the photos directory")
    path = photos_dir / name
    if not path.is_file():
        raise _RowRejected(f"photo: {name} not found in {photos_dir}")
    try:
        analysis = analyse_portrait(path.read_bytes())
    except ImageRejected as exc:
        raise _RowRejected(f"photo: {name}: {exc.message}") from exc
    if analysis.faces_found != 1 or analysis.encoding is None:
        found = "no face" if analysis.faces_found == 0 else f"{analysis.faces_found} faces"
        raise _RowRejected(f"photo: {name} shows {found}; exactly one face is needed")
    return template_bytes(analysis.encoding)


def _duplicates(header: list[str], records: list[tuple[int, list[str]]]) -> dict[int, str]:
    """Rejections for every line whose (source, external_id) appears more than once,
    counting malformed lines too: the file does not say which copy is right."""
    lines: dict[tuple[str, str], list[int]] = defaultdict(list)
    for line, values in records:
        raw = dict(zip(header, values, strict=False))
        external_id = raw.get("external_id", "").strip()
        if external_id:
            lines[(raw.get("source", "").strip(), external_id)].append(line)
    rejected = {}
    for (_, external_id), where in lines.items():
        if len(where) > 1:
            listed = ", ".join(str(line) for line in where)
            for line in where:
                rejected[line] = f"external_id {external_id!r} appears on lines {listed}"
    return rejected


def parse_watchlist_csv(
    path: Path,
    *,
    photos_dir: Path | None = None,
    progress: Progress | None = None,
    today: date | None = None,
) -> WatchlistFile:
    """Read and check a watchlist CSV file (slow with photos; touches no database).

    Raises WatchlistFileRefused for file-level problems.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise WatchlistFileRefused(f"cannot read {path}: {exc.strerror}") from exc
    header, records = _read_records(_decode_strictly(data))
    today = today or date.today()
    report = progress or (lambda done, total: None)
    total = len(records)
    report(0, total)
    rows, rejected = _check_rows(header, records, today)
    duplicated = _duplicates(header, records)
    rejected = [
        (line, f"{reason}; {duplicated[line]}" if line in duplicated else reason)
        for line, reason in rejected
    ]
    rejected += [(row.line, duplicated[row.line]) for row in rows if row.line in duplicated]
    rows = [row for row in rows if row.line not in duplicated]
    done = total - sum(1 for row in rows if row.photo)
    report(done, total)
    good = []
    for row in rows:
        try:
            good.append(_with_photo(row, photos_dir))
        except _RowRejected as exc:
            rejected.append((row.line, str(exc)))
        if row.photo:
            done += 1
            report(done, total)
    return WatchlistFile(path, total, good, sorted(rejected))


def _check_rows(
    header: list[str], records: list[tuple[int, list[str]]], today: date
) -> tuple[list[WatchlistRow], list[tuple[int, str]]]:
    rows, rejected = [], []
    for line, values in records:
        if len(values) != len(header):
            found = f"{len(values)} fields where the header names {len(header)}"
            rejected.append((line, found))
            continue
        try:
            rows.append(_parse_row(line, dict(zip(header, values, strict=True)), today))
        except _RowRejected as exc:
            rejected.append((line, str(exc)))
    return rows, rejected


def _with_photo(row: WatchlistRow, photos_dir: Path | None) -> WatchlistRow:
    if not row.photo:
        return row
    template = _face_template(photos_dir, row.photo)
    return replace(row, content=replace(row.content, face_template=template))


def _imported_content(row: WatchlistRow, current: WatchlistEntry | None) -> EntryContent:
    """The row's content, keeping the current valid_from/template where the row gives none."""
    content = row.content
    if current is None:
        return content
    if row.keeps_valid_from:
        content = replace(content, valid_from=current.valid_from)
    if content.face_template is None:
        content = replace(content, face_template=current.face_template)
    return content


async def _current_versions_of(
    session: AsyncSession, entry_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, WatchlistEntry]:
    found: dict[uuid.UUID, WatchlistEntry] = {}
    for start in range(0, len(entry_ids), ID_CHUNK):
        chunk = entry_ids[start : start + ID_CHUNK]
        query = current_versions_query().where(WatchlistEntry.entry_id.in_(chunk))
        for entry in (await session.scalars(query)).all():
            found[entry.entry_id] = entry
    return found


async def import_watchlist(
    session: AsyncSession, *, node: Node, officer: Officer | None, parsed: WatchlistFile
) -> ImportReport:
    """Write the good rows of a parsed file in the caller's (one) write transaction."""
    report = ImportReport(file=parsed.path.name, total=parsed.total, rejected=parsed.rejected)
    current = await _current_versions_of(session, [row.entry_id for row in parsed.rows])
    change_reason = f"import from {parsed.path.name}"[:500]
    for row in parsed.rows:
        existing = current.get(row.entry_id)
        content = _imported_content(row, existing)
        if existing is not None and content == content_of(existing):
            report.unchanged += 1
            continue
        report.written.append(
            build_version(
                content,
                entry_id=row.entry_id,
                version=existing.version + 1 if existing else 1,
                origin=node.settings.node_code,
                external_id=row.external_id,
                source=row.source,
                officer=officer,
                change_reason=change_reason,
            )
        )
        if existing is None:
            report.imported += 1
        else:
            report.updated += 1
    if report.written:
        await _write_versions(
            session,
            node=node,
            officer=officer,
            rows=report.written,
            action="import",
            purpose="watchlist_import",
            detail={"file": parsed.path.name, **report.as_dict()},
        )
    return report


async def import_watchlist_csv(
    node: Node,
    path: Path,
    *,
    photos_dir: Path | None = None,
    progress: Progress | None = None,
    officer: Officer | None = None,
) -> ImportReport:
    """Check the file (photos analysed off the event loop), then write in one transaction.

    The node's matcher, if any, learns the new versions after the commit.
    """
    today = _today(node)
    parsed = await asyncio.to_thread(
        parse_watchlist_csv, path, photos_dir=photos_dir, progress=progress, today=today
    )
    async with node.db.write_transaction() as session:
        report = await import_watchlist(session, node=node, officer=officer, parsed=parsed)
    apply_to_matcher(node, report.written)
    return report


def _csv_line(entry: WatchlistEntry) -> list[str]:
    values = {
        "external_id": entry.external_id,
        "kind": entry.kind,
        "surname": entry.surname,
        "given_names": entry.given_names,
        "date_of_birth": _iso(entry.date_of_birth) or "",
        "nationality": entry.nationality or "",
        "issuing_state": entry.issuing_state or "",
        "document_number": entry.document_number or "",
        "reason": entry.reason,
        "action": entry.action,
        "source": entry.source,
        "valid_from": entry.valid_from.isoformat(),
        "valid_to": _iso(entry.valid_to) or "",
        "photo": "",
    }
    return [values[column] for column in CSV_COLUMNS]


async def export_watchlist_csv(
    session: AsyncSession, path: Path, *, node: Node, officer: Officer | None = None
) -> int:
    """Write the current active versions as CSV (UTF-8, the import's columns, no photos).

    The file is replaced atomically; the export is audited. Returns the number of entries.
    """
    query = (
        current_versions_query()
        .where(WatchlistEntry.active.is_(True))
        .order_by(WatchlistEntry.source, WatchlistEntry.external_id)
    )
    entries = list((await session.scalars(query)).all())
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(_csv_line(entry) for entry in entries)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_text(buffer.getvalue(), encoding="utf-8", newline="")
    os.replace(temp, path)
    await audit(
        session,
        origin=node.settings.node_code,
        officer=officer,
        action="export",
        record_type="watchlist_entry",
        record_id=path.name,
        purpose="watchlist_export",
        detail={"entries": len(entries), "results": [str(entry.id) for entry in entries]},
    )
    return len(entries)
