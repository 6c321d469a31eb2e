"""The in-memory watchlist matcher run at every registration (``WatchlistMatcher``).

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
- every other biometric modality of the node (``registry.modalities``), by its entry-point
  name: the matcher keeps one gallery per modality of the entries' templates
  (``WatchlistEntry.modality_templates``) and asks the plug-in to ``identify`` the traveller's
  template of that modality in it; a similarity at or above the plug-in's
  ``match_threshold`` is a hit whose evidence is the modality's name, scored
  ``100 * similarity`` (``registry.watchlists.galleries``).

Only the current, active version of an entry whose validity period covers the day of the
crossing matches. A hit never decides anything: it raises an alert (``alerts``) that a human
adjudicates.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from biometrics.engine import TEMPLATE_DIM, decode_template
from biometrics.index import BandThresholds, FaceIndex
from biometrics.plugins import BiometricModality
from registry.models import WatchlistEntry
from registry.mrz import MrzResult
from registry.names import form_similarity, name_key, normalise_document_number, similarity_form
from registry.schemas import DocumentInput, TravellerInput
from registry.watchlists.galleries import Galleries
from registry.watchlists.service import current_versions_query

if TYPE_CHECKING:
    from registry.node import Node

log = logging.getLogger(__name__)
DEFAULT_FACE_TOLERANCE = 0.6
DEFAULT_NAME_THRESHOLD = 85.0
DEFAULT_NAME_ONLY_THRESHOLD = 92.0
FACE_CANDIDATES = 16


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
    """The indexes over the active entries: by document, by date of birth, by face, and a
    gallery per other biometric modality."""

    def __init__(self, bands: BandThresholds, modalities: Mapping[str, BiometricModality]) -> None:
        self.entries: dict[uuid.UUID, _Listed] = {}
        self.documents: dict[tuple[str, str], set[uuid.UUID]] = defaultdict(set)
        self.names: dict[date | None, set[uuid.UUID]] = defaultdict(set)
        self.faces = FaceIndex(TEMPLATE_DIM, bands=bands)
        self.galleries = Galleries(modalities)

    def add(self, entry: WatchlistEntry) -> None:
        listed = _listed(entry)
        self.entries[listed.entry_id] = listed
        if listed.document is not None:
            self.documents[listed.document].add(listed.entry_id)
        if listed.name_key:
            self.names[listed.date_of_birth].add(listed.entry_id)
        if entry.face_template is not None:
            self.faces.add(str(listed.entry_id), decode_template(entry.face_template))
        self.galleries.add(str(listed.entry_id), entry.modality_templates)

    def discard(self, entry_id: uuid.UUID) -> None:
        listed = self.entries.pop(entry_id, None)
        if listed is None:
            return
        if listed.document is not None:
            _discard_from(self.documents, listed.document, entry_id)
        if listed.name_key:
            _discard_from(self.names, listed.date_of_birth, entry_id)
        self.faces.discard(str(entry_id))
        self.galleries.discard(str(entry_id))


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
        modalities: Mapping[str, BiometricModality] | None = None,
    ) -> None:
        self.face_tolerance = face_tolerance
        self.name_threshold = name_threshold
        self.name_only_threshold = name_only_threshold
        self.bands = bands or BandThresholds()
        # the node's other biometric modalities, by entry-point name (registry.modalities)
        self.modalities = dict(modalities or {})
        self._lock = threading.RLock()
        self._listing = _Listing(self.bands, self.modalities)
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
        listing = _Listing(self.bands, self.modalities)
        versions: dict[uuid.UUID, int] = {}
        for entry in (await session.scalars(current_versions_query(portraits=False))).all():
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
        templates: Mapping[str, bytes] | None = None,
    ) -> list[WatchlistHit]:
        """Every hit for one identity on ``day``, best score first. No I/O."""
        probe = TravellerProbe(
            documents=((issuing_state, number_norm),),
            name_keys=(name_key,) if name_key else (),
            dates_of_birth=(date_of_birth,),
        )
        return self.match_traveller(
            day=day, probe=probe, face_encoding=face_encoding, templates=templates
        )

    def match_traveller(
        self,
        *,
        day: date,
        probe: TravellerProbe,
        face_encoding: np.ndarray | bytes | None = None,
        templates: Mapping[str, bytes] | None = None,
    ) -> list[WatchlistHit]:
        """Every hit for every identity of one traveller on ``day``: one hit per (entry,
        evidence) with its best score, best score first. ``templates``: the traveller's
        templates of the node's other modalities, by entry-point name. No I/O."""
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
                hits += self._face_hits(listing, day, decode_template(face_encoding))
            for name, similarity, entry_key in listing.galleries.identify(templates or {}):
                listed = listing.entries[uuid.UUID(entry_key)]
                if listed.covers(day):
                    hits.append(listed.hit(name, round(100.0 * similarity, 1)))
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
