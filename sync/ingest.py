"""National ingest: verify a post's signed batch, upsert its records idempotently in order,
and acknowledge the highest contiguous seq stored. Rejections are audited."""

from __future__ import annotations

import asyncio
import base64
import gc
import hashlib
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cache
from operator import attrgetter, itemgetter
from typing import Any

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from biometrics.imaging import ImageRejected, decode_image
from registry.audit import audit
from registry.models import utcnow
from registry.node import Node
from registry.photos import SanitisedPhoto, write_photo
from registry.receipts import public_key_from_text
from sync.batches import BATCH_FORMAT, BatchHeader, BatchRejected, check_range, verified_body
from sync.models import IngestState, SyncPeer
from sync.quarantine import (
    PHOTO_FILE,
    Quarantined,
    bad_text_rows,
    keep,
    payload_text,
    quarantined,
)
from sync.records import (
    DICTIONARIES,
    LOCAL_COUNTERS,
    POST_RECORD_TYPES,
    REFUSED_ROW,
    _key_text,
    add_dictionary_keys,
    copy_rows,
    dangling_references,
    decode_row,
    defer_dictionaries,
    insert_missing,
    insert_missing_copied,
    owners_of,
    table_for,
    upsert_owned,
)

OFFICER = "officer"  # a post's officer accounts are upserted, not copied
OVERLAP_WAIT_S = 10.0  # how long a batch applied in parallel waits for its predecessor
# Numbered by national as they arrive (each post's audit chain is verified in that order):
# a batch applied in parallel stores these only once its predecessor has committed.
IN_ARRIVAL_ORDER = tuple(t for t in POST_RECORD_TYPES if t in LOCAL_COUNTERS)
IN_ANY_ORDER = tuple(t for t in POST_RECORD_TYPES if t not in LOCAL_COUNTERS)


MAX_GC_PAUSE_S = 10.0  # when batches overlap without end, the collector still runs
_gc_pauses = 0  # batches in hand (a post keeps several in flight; many posts may push)
_gc_paused_at: float | None = None  # when this module paused the collector, if it has


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a batch is in hand, from decode to commit.

    A batch decodes into hundreds of thousands of short-lived tracked objects (rows, ids).
    Collections triggered while they live traverse them all, again and again: they doubled
    the decode time, and pausing only around the decode merely moved one huge collection
    to the moment it resumed. The rows form no cycles, so they are freed by reference
    counting as soon as the batch is dropped; the caller drops it inside this block, and
    the collector resumes when the last batch in hand is done, or after
    ``MAX_GC_PAUSE_S`` if batches keep overlapping. Reentrant across tasks; a collector
    someone else disabled is left alone.
    """
    global _gc_pauses, _gc_paused_at
    if _gc_pauses == 0 and gc.isenabled():
        gc.disable()
        _gc_paused_at = time.monotonic()
    _gc_pauses += 1
    try:
        yield
    finally:
        _gc_pauses -= 1
        if _gc_paused_at is not None and (
            _gc_pauses == 0 or time.monotonic() - _gc_paused_at > MAX_GC_PAUSE_S
        ):
            gc.enable()
            _gc_paused_at = None


class BatchGap(Exception):
    """Refused without harm: the batch starts after a seq the receiver lacks (a gap), or
    holds nothing new (a replay). Either way the sender continues from ``ack``."""

    def __init__(self, ack: int, reason: str) -> None:
        super().__init__(f"{reason}: the receiver holds up to seq {ack}")
        self.ack = ack
        self.reason = reason


@dataclass(frozen=True)
class IngestResult:
    ack: int
    applied: int
    quarantined: list[Quarantined] = field(default_factory=list)


async def approved_sender(session: AsyncSession, origin: str) -> SyncPeer:
    peer = await session.get(SyncPeer, origin)
    if peer is None or peer.role != "post":
        raise BatchRejected("unknown_sender", f"{origin} is not an enrolled post")
    if peer.status != "approved":
        raise BatchRejected("sender_not_approved", f"{origin} is {peer.status}")
    return peer


async def _state_for_update(session: AsyncSession, origin: str) -> IngestState:
    await insert_missing(
        session,
        "ingest_state",
        [{"origin": origin, "contiguous_seq": 0, "batches_accepted": 0, "batches_rejected": 0}],
    )
    query = select(IngestState).where(IngestState.origin == origin).with_for_update()
    state = await session.scalar(query)
    assert state is not None
    return state


class _Unreadable(msgspec.Struct, gc=False):
    """A record whose row could not be decoded (quarantined as ``reason``)."""

    reason: str
    detail: str
    raw: Any


def _bulk_row_type(record_type: str) -> Any:
    return msgspec.Raw if record_type == OFFICER else copy_rows(record_type).struct


@cache
def _bulk_decoder() -> msgspec.json.Decoder[Any]:
    """Decodes a whole batch body in one pass: every table's rows straight into its COPY
    struct (officers, upserted as dicts, stay undecoded). Tables posts may not push are
    unknown fields, so they fail the decode (and the body is read record by record)."""
    fields = [
        (record_type, list[tuple[int, str, _bulk_row_type(record_type)]], [])  # type: ignore[misc]
        for record_type in POST_RECORD_TYPES
    ]
    body = msgspec.defstruct("BatchBody", fields, gc=False, forbid_unknown_fields=True)
    return msgspec.json.Decoder(body)


Decoded = dict[str, list[tuple[int, str, Any]]]


def _decode_tables(raw: bytes, *, bulk: bool) -> tuple[Decoded, bool]:
    """The body's tables: (seq, record_id, row), rows as COPY structs (``bulk``, but
    officers) or undecoded JSON. The fast path decodes the whole body in one typed pass;
    should any row fail it, the body is read table by table and row by row, and a row that
    cannot be read (or belongs to a table posts may not push) becomes an ``_Unreadable``
    to quarantine. Returns the tables and whether every row was read in the one pass.
    Raises BatchRejected only when the body itself is unreadable."""
    generic = dict[str, list[tuple[int, str, msgspec.Raw]]]
    if bulk:
        try:
            body = _bulk_decoder().decode(raw)
            return {t: rows for t in POST_RECORD_TYPES if (rows := getattr(body, t))}, True
        except (msgspec.ValidationError, msgspec.DecodeError):
            pass  # a bad row somewhere: read record by record below
    try:
        tables = msgspec.json.decode(raw, type=generic)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise BatchRejected("malformed", f"the batch body is unreadable: {exc}") from exc
    decoded: Decoded = {}
    for record_type, rows in tables.items():
        if record_type not in POST_RECORD_TYPES:
            why = f"{record_type[:40]} may not be pushed"
            decoded[record_type] = [
                (seq, i, _Unreadable("forbidden_record", why, row)) for seq, i, row in rows
            ]
        elif bulk and record_type != OFFICER:
            decoded[record_type] = [
                (seq, i, _struct_or_unreadable(record_type, row)) for seq, i, row in rows
            ]
        else:
            decoded[record_type] = list(rows)
    return decoded, False


def _struct_or_unreadable(record_type: str, raw: msgspec.Raw) -> Any:
    try:
        return msgspec.json.decode(raw, type=copy_rows(record_type).struct)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        return _Unreadable("malformed", f"{record_type}: {exc}", raw)


@cache
def _copy_json_columns(record_type: str) -> tuple[int, ...]:
    converter = copy_rows(record_type)
    return tuple(i for i, n in enumerate(converter.names) if n in _json_names(record_type))


@cache
def _json_names(record_type: str) -> frozenset[str]:
    from sqlalchemy import JSON

    return frozenset(c.name for c in table_for(record_type).columns if isinstance(c.type, JSON))


def _payload(record_type: str, row: Any, bulk: bool) -> str:
    """A row's payload as received, for its quarantine entry."""
    if isinstance(row, _Unreadable):
        row = row.raw
    if isinstance(row, msgspec.Struct):
        return msgspec.json.encode(row).decode()
    if bulk and isinstance(row, tuple):
        return payload_text(row, copy_rows(record_type).names, _copy_json_columns(record_type))
    return payload_text(row)


@cache
def _cascade_references(record_type: str) -> tuple[tuple[str, str], ...]:
    """(column, referred table) of every foreign key of a table, those into crossing too:
    a row referring to a record quarantined in the same batch is quarantined with it."""
    return tuple(
        (fk.parent.name, fk.column.table.name)
        for fk in sorted(table_for(record_type).foreign_keys, key=lambda fk: fk.parent.name)
        if fk.column.table.name in POST_RECORD_TYPES
    )


class _Validation:
    """Checks one batch's rows without the database, a table at a time, and collects what
    must be quarantined: unreadable rows, rows claiming another origin than the sender,
    text the database cannot store, and rows referring to a quarantined record."""

    def __init__(self, origin: str, bulk: bool) -> None:
        self.origin = origin
        self.bulk = bulk
        self.quarantine: list[Quarantined] = []
        self.refused_ids: dict[str, dict[str, str]] = {}  # table -> record key -> why

    def refuse(
        self, record_type: str, seq: int, record_id: str, reason: str, detail: str, row: Any
    ) -> None:
        payload = _payload(record_type, row, self.bulk)
        self.quarantine.append(quarantined(seq, record_type, record_id, reason, detail, payload))

    def table(
        self, record_type: str, rows: list[tuple[int, str, Any]], *, readable: bool = False
    ) -> list[tuple[int, Any]]:
        """One table's rows that may be stored, as (seq, row): COPY tuples (bulk, but
        officers) or column dicts. ``readable``: every row decoded (the batch's one-pass
        decode succeeded), so none is looked at one by one unless a check fails.

        Each check runs a column at a time in C (a column read off the decoded structs,
        counted, measured, joined and searched); only a column that fails is walked row
        by row to name the rows."""
        if not readable:
            unreadable = [r for r in rows if isinstance(r[2], _Unreadable)]
            for seq, record_id, row in unreadable:
                self.refuse(record_type, seq, record_id, row.reason, row.detail, row)
            if unreadable:
                rows = [r for r in rows if not isinstance(r[2], _Unreadable)]
        if record_type not in POST_RECORD_TYPES or not rows:
            return []
        column: Callable[[str], list[Any]]
        if self.bulk and record_type != OFFICER:
            structs = list(map(itemgetter(2), rows))
            converter = copy_rows(record_type)
            names = converter.names
            try:
                values = converter.tuples(structs)
            except ValueError:  # a binary column that is not hex: convert row by row
                rows = list(rows)
                values = self._tuples(record_type, rows)  # drops rows it cannot convert
                structs = list(map(itemgetter(2), rows))

            def column(name: str) -> list[Any]:
                return list(map(attrgetter(name), structs))

        else:
            rows = list(rows)
            values = self._dicts(record_type, rows)
            names = tuple(table_for(record_type).columns.keys())

            def column(name: str) -> list[Any]:
                return [row.get(name) for row in values]

        if not values:
            return []
        problems = self._owner_problems(record_type, names, column)
        for i, why in bad_text_rows(record_type, names, column).items():
            problems.setdefault(i, ("unstorable_text", why))
        for i, problem in self._dependent_problems(record_type, names, column).items():
            problems.setdefault(i, problem)
        if not problems:
            return list(zip(map(itemgetter(0), rows), values, strict=True))
        kept: list[tuple[int, Any]] = []
        refused = self.refused_ids.setdefault(record_type, {})
        keys = column(IDENTITY.get(record_type, "id")) if record_type != "audit_event" else None
        for i, ((seq, record_id, original), row) in enumerate(zip(rows, values, strict=True)):
            problem = problems.get(i)
            if problem is None:
                kept.append((seq, row))
                continue
            self.refuse(record_type, seq, record_id, problem[0], problem[1], original)
            if keys is not None:
                refused[str(keys[i])] = f"{record_type} {record_id}"
        return kept

    def _tuples(self, record_type: str, rows: list[tuple[int, str, Any]]) -> list[Any]:
        """COPY tuples of the rows, one by one; a row that cannot be converted is
        quarantined and removed from ``rows``."""
        converter = copy_rows(record_type)
        values: list[Any] = []
        for seq, record_id, row in list(rows):
            try:
                values.append(converter.tuples([row])[0])
            except ValueError as exc:
                self.refuse(record_type, seq, record_id, "malformed", f"{record_type}: {exc}", row)
                rows.remove((seq, record_id, row))
        return values

    def _dicts(self, record_type: str, rows: list[tuple[int, str, Any]]) -> list[Any]:
        values: list[Any] = []
        for seq, record_id, raw in list(rows):
            try:
                values.append(decode_row(record_type, raw))
            except (msgspec.ValidationError, msgspec.DecodeError, ValueError) as exc:
                self.refuse(record_type, seq, record_id, "malformed", f"{record_type}: {exc}", raw)
                rows.remove((seq, record_id, raw))
        return values

    def _owner_problems(
        self, record_type: str, names: tuple[str, ...], column: Callable[[str], list[Any]]
    ) -> dict[int, tuple[str, str]]:
        owner = "home_post" if record_type == OFFICER else "origin"
        if owner not in names:
            return {}
        claims = column(owner)
        if claims.count(self.origin) == len(claims):  # the usual case, in C
            return {}
        return {
            i: ("forged_origin", f"claims {owner} {claim}, sent by {self.origin}")
            for i, claim in enumerate(claims)
            if claim != self.origin
        }

    def _dependent_problems(
        self, record_type: str, names: tuple[str, ...], column: Callable[[str], list[Any]]
    ) -> dict[int, tuple[str, str]]:
        if not self.refused_ids:
            return {}
        problems: dict[int, tuple[str, str]] = {}
        for name, referred in _cascade_references(record_type):
            refused = self.refused_ids.get(referred)
            if not refused or name not in names:
                continue
            for i, value in enumerate(column(name)):
                if value is not None and str(value) in refused and i not in problems:
                    problems[i] = (
                        "quarantined_reference",
                        f"{record_type}.{name} refers to {refused[str(value)]}, quarantined",
                    )
        return problems


@dataclass(frozen=True)
class ReceivedBatch:
    """A verified batch, decoded table by table: (seq, row) pairs in the sender's order.

    Rows are COPY tuples on PostgreSQL (``bulk``), column dicts elsewhere and for officers.
    Receiving takes no lock, so national decodes one batch while it applies the one before.
    """

    header: BatchHeader
    tables: dict[str, list[tuple[int, Any]]]
    bulk: bool
    # quarantined on receipt (without the database): not in ``tables``
    quarantined: list[Quarantined] = field(default_factory=list, compare=False)
    # quarantined while applying (a reference national lacks, a row the database refuses,
    # a row the sender does not own): still in ``tables``, their seqs in ``excluded``
    late: list[Quarantined] = field(default_factory=list, compare=False)
    excluded: set[int] = field(default_factory=set, compare=False)
    _keys: dict[tuple[str, str], set[str]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def rows(self, record_type: str, after: int) -> list[tuple[int, Any]]:
        """One table's (seq, row) past seq ``after`` still to store (the table's own list,
        not a copy, in the usual case: every row new and none quarantined)."""
        rows = self.tables.get(record_type, [])
        excluded = self.excluded
        if not excluded and (not rows or rows[0][0] > after):
            return rows
        return [
            (seq, row) for seq, row in rows if seq > after and not (excluded and seq in excluded)
        ]

    def record_id(self, record_type: str, row: Any) -> str:
        column = IDENTITY.get(record_type, "id")
        if self.bulk and record_type != OFFICER:
            return str(row[copy_rows(record_type).names.index(column)])
        return str(row[column])

    def quarantine_late(
        self, record_type: str, seq: int, row: Any, reason: str, detail: str
    ) -> None:
        """Quarantine a row while applying the batch (it is not stored)."""
        self.excluded.add(seq)
        payload = _payload(record_type, row, self.bulk)
        record_id = self.record_id(record_type, row)
        self.late.append(quarantined(seq, record_type, record_id, reason, detail, payload))

    def quarantine_past(self, after: int) -> list[Quarantined]:
        """Everything quarantined of the records past seq ``after``, in seq order."""
        found = [q for q in (*self.quarantined, *self.late) if q.seq > after]
        return sorted(found, key=lambda q: q.seq)

    def keys(self, record_type: str, column: str) -> set[str]:
        """The values of one column of one table's rows, as text (computed once: the
        batch's own reference check and those of the batches after it share them)."""
        found = self._keys.get((record_type, column))
        if found is None:
            rows = self.tables.get(record_type, [])
            if self.bulk and record_type != OFFICER:
                index = copy_rows(record_type).names.index(column)
                found = {str(row[index]) for _, row in rows}
            else:
                found = {str(row[column]) for _, row in rows}
            self._keys[(record_type, column)] = found
        return found

    def shares_a_record_with(self, other: ReceivedBatch) -> bool:
        """Whether a record (by its identity: id, or sha256 for photos) is in both."""
        return any(
            not self.keys(table, IDENTITY.get(table, "id")).isdisjoint(
                other.keys(table, IDENTITY.get(table, "id"))
            )
            for table in self.tables.keys() & other.tables.keys()
        )


IDENTITY = {"photo": "sha256"}  # a record's identity column where it is not "id"


def receive_batch(
    header: BatchHeader,
    signature: bytes,
    body: bytes,
    sender_key: Ed25519PublicKey,
    *,
    destination: str,
    bulk: bool,
) -> ReceivedBatch:
    """Verify a post's batch and decode every record; raise BatchRejected. Call it, and
    apply and drop the batch, inside ``gc_paused``."""
    raw = verified_body(header, signature, body, sender_key, destination=destination)
    decoded, readable = _decode_tables(raw, bulk=bulk)
    check_range(header, ([seq for seq, _, _ in rows] for rows in decoded.values()))
    return validated_batch(header, decoded, bulk=bulk, readable=readable)


def validated_batch(
    header: BatchHeader, decoded: Decoded, *, bulk: bool, readable: bool = False
) -> ReceivedBatch:
    """A decoded batch checked record by record without the database (origin claims,
    text the database cannot store, references to records quarantined with them): what
    fails is quarantined, the rest is ready to store. Tables in dependency order."""
    validation = _Validation(header.origin, bulk)
    tables: dict[str, list[tuple[int, Any]]] = {}
    ordered = [t for t in POST_RECORD_TYPES if t in decoded]
    for record_type in ordered + [t for t in decoded if t not in POST_RECORD_TYPES]:
        kept = validation.table(record_type, decoded[record_type], readable=readable)
        if kept:
            tables[record_type] = kept
    return ReceivedBatch(header, tables, bulk, quarantined=validation.quarantine)


def _pending_keys(batches: Sequence[ReceivedBatch]) -> Callable[[str, str], set[str]]:
    """``ReceivedBatch.keys`` over several batches."""
    if len(batches) == 1:
        return batches[0].keys

    @cache
    def keys(record_type: str, column: str) -> set[str]:
        return set().union(*(batch.keys(record_type, column) for batch in batches))

    return keys


@dataclass(frozen=True)
class _Applying:
    """A batch this process is applying, and how far it has gone."""

    batch: ReceivedBatch
    numbered: asyncio.Event  # its rows national numbers on arrival are stored (or it ended)
    done: asyncio.Event  # committed or failed


_applying: dict[tuple[str, int], _Applying] = {}  # (origin, seq_to) -> batch being applied


def _may_overlap(batch: ReceivedBatch, earlier: ReceivedBatch) -> bool:
    """Whether ``batch`` may store its rows while ``earlier`` is still being applied: both
    copied (PostgreSQL), neither upserting officer rows (row locks taken in both), and no
    record in both (its key would make the earlier batch wait for this one)."""
    return (
        batch.bulk
        and OFFICER not in batch.tables
        and OFFICER not in earlier.tables
        and not batch.shares_a_record_with(earlier)
    )


def is_deadlock(exc: BaseException) -> bool:
    """Whether PostgreSQL aborted the transaction to break a deadlock (SQLSTATE 40P01),
    raised by asyncpg itself or wrapped by SQLAlchemy."""
    orig = getattr(exc, "orig", None)
    candidates = (exc, orig, getattr(orig, "__cause__", None))
    return any(getattr(e, "sqlstate", None) == "40P01" for e in candidates)


@dataclass(frozen=True)
class Turn:
    """A batch's place among its post's batches this process is applying: the predecessor
    it may overlap with (None: apply it on its own), and its own entry (None when the
    same range is already being applied, e.g. a resend)."""

    predecessor: _Applying | None
    mine: _Applying | None

    def numbered(self) -> None:
        """Tell the successor that this batch's audit events are stored."""
        if self.mine is not None:
            self.mine.numbered.set()

    def ancestors(self) -> list[ReceivedBatch]:
        """The predecessor and the batches before it still being applied, newest first."""
        chain: list[ReceivedBatch] = []
        entry = self.predecessor
        while entry is not None and len(chain) < MAX_ANCESTORS:
            chain.append(entry.batch)
            header = entry.batch.header
            entry = _applying.get((header.origin, header.after_seq))
        return chain


MAX_ANCESTORS = 64


@contextmanager
def applying(batch: ReceivedBatch) -> Iterator[Turn]:
    """Mark ``batch`` as being applied by this process until the block exits, and yield
    its turn: with its predecessor (the batch ending at its ``after_seq``) if this process
    is applying that one now and the two may overlap."""
    header = batch.header
    key = (header.origin, header.seq_to)
    predecessor = _applying.get((header.origin, header.after_seq))
    if predecessor is not None and not _may_overlap(batch, predecessor.batch):
        predecessor = None
    mine = None if key in _applying else _Applying(batch, asyncio.Event(), asyncio.Event())
    if mine is not None:
        _applying[key] = mine
    try:
        yield Turn(predecessor, mine)
    finally:
        if mine is not None:
            del _applying[key]
            mine.numbered.set()
            mine.done.set()


@dataclass(frozen=True)
class _Stored:
    after: int  # rows past this seq were stored
    rows: int


async def _store(
    session: AsyncSession,
    batch: ReceivedBatch,
    after: int,
    record_types: tuple[str, ...] = POST_RECORD_TYPES,
) -> _Stored:
    """Insert the rows past seq ``after`` table by table in dependency order (parents before
    children), keeping the sender's order within a table; the post's own officer accounts
    are upserted. A row the database refuses, or whose key belongs to another origin, is
    quarantined (and with it the rows of the batch that refer to it). References are
    checked before (``_check_references``)."""
    stored = 0
    for record_type in record_types:
        rows = batch.rows(record_type, after)
        if not rows:
            continue
        if record_type == OFFICER:
            await _upsert_officers(session, batch, rows)
        elif batch.bulk:
            await _copy_rows(session, batch, record_type, rows)
        else:
            await _insert_rows(session, batch, record_type, rows)
        excluded = batch.excluded
        stored += len(rows) - (sum(seq in excluded for seq, _ in rows) if excluded else 0)
    return _Stored(after, stored)


async def _copy_rows(
    session: AsyncSession, batch: ReceivedBatch, record_type: str, rows: list[tuple[int, Any]]
) -> None:
    names = copy_rows(record_type).names
    owner = "origin" if "origin" in names else None
    outcome = await insert_missing_copied(
        session, record_type, names, [row for _, row in rows], owner=owner
    )
    _quarantine_outcome(batch, record_type, rows, outcome.refused, "refused_by_database")
    _quarantine_outcome(batch, record_type, rows, outcome.foreign, "not_owner")


def _quarantine_outcome(
    batch: ReceivedBatch,
    record_type: str,
    rows: list[tuple[int, Any]],
    found: dict[int, str],
    reason: str,
    *,
    stored: bool = True,
) -> None:
    for i, why in sorted(found.items()):
        seq, row = rows[i]
        batch.quarantine_late(record_type, seq, row, reason, why)
    if found:
        _cascade(batch, record_type, stored=stored)


def _cascade(batch: ReceivedBatch, record_type: str, *, stored: bool) -> None:
    """Quarantine the rows of the batch still to store that refer to a row of
    ``record_type`` just quarantined, and so on down the tables (the rows of
    ``record_type`` itself too, unless that table is ``stored`` already)."""
    refused: dict[str, dict[str, str]] = {}
    for entry in batch.late:
        refused.setdefault(entry.record_type, {})[_key_text(entry.record_id)] = (
            f"{entry.record_type} {entry.record_id}"
        )
    first = POST_RECORD_TYPES.index(record_type) + (1 if stored else 0)
    for table in POST_RECORD_TYPES[first:]:
        rows = batch.rows(table, 0)
        for column, referred in _cascade_references(table):
            held = refused.get(referred)
            if not held or not rows:
                continue
            for seq, row in rows:
                value = _column(batch, table, row, column)
                if value is not None and _key_text(value) in held and seq not in batch.excluded:
                    why = f"{table}.{column} refers to {held[_key_text(value)]}, quarantined"
                    batch.quarantine_late(table, seq, row, "quarantined_reference", why)
                    refused.setdefault(table, {})[_key_text(batch.record_id(table, row))] = (
                        f"{table} {batch.record_id(table, row)}"
                    )


def _column(batch: ReceivedBatch, record_type: str, row: Any, column: str) -> Any:
    if batch.bulk and record_type != OFFICER:
        return row[copy_rows(record_type).names.index(column)]
    return row.get(column)


async def _upsert_officers(
    session: AsyncSession, batch: ReceivedBatch, rows: list[tuple[int, Any]]
) -> None:
    """The post's own officer accounts: inserted, or updated where national's STORED home
    post is the sender. An existing account homed elsewhere (national's own, another
    post's) is left as it is and the row quarantined as ``not_owner``."""
    try:
        async with session.begin_nested():
            applied = await upsert_owned(session, OFFICER, [row for _, row in rows], "home_post")
    except (DBAPIError, *REFUSED_ROW) as exc:
        if is_deadlock(exc):
            raise
        applied = set()
        for seq, row in rows:
            try:
                async with session.begin_nested():
                    applied |= await upsert_owned(session, OFFICER, [row], "home_post")
            except (DBAPIError, *REFUSED_ROW) as exc:
                if is_deadlock(exc):
                    raise
                why = f"{type(exc).__name__}: {str(exc)[:300]}"
                batch.quarantine_late(OFFICER, seq, row, "refused_by_database", why)
    refused = [(seq, row) for seq, row in rows if seq not in batch.excluded]
    refused = [(seq, row) for seq, row in refused if str(row["id"]) not in applied]
    if not refused:
        return
    owners = await owners_of(session, OFFICER, [row["id"] for _, row in refused], "home_post")
    for seq, row in refused:
        holder = owners.get(_key_text(row["id"]))
        why = f"officer {row['id']} belongs to {holder or 'national'}, not {batch.header.origin}"
        batch.quarantine_late(OFFICER, seq, row, "not_owner", why)
    _cascade(batch, OFFICER, stored=True)


async def _insert_rows(
    session: AsyncSession, batch: ReceivedBatch, record_type: str, rows: list[tuple[int, Any]]
) -> None:
    """Insert column dicts (SQLite, or a retried record), ignoring existing keys; a row
    whose key exists with another origin, or that the database refuses, is quarantined."""
    if "origin" in table_for(record_type).columns:
        key = IDENTITY.get(record_type, "id")
        owners = await owners_of(session, record_type, [row[key] for _, row in rows], "origin")
        foreign = {
            i: f"{record_type} {row[key]} belongs to {owners[_key_text(row[key])]}"
            for i, (_, row) in enumerate(rows)
            if owners.get(_key_text(row[key]), row["origin"]) != row["origin"]
        }
        _quarantine_outcome(batch, record_type, rows, foreign, "not_owner", stored=False)
        rows = [(seq, row) for seq, row in rows if seq not in batch.excluded]
    try:
        async with session.begin_nested():
            await insert_missing(session, record_type, [row for _, row in rows])
        return
    except (DBAPIError, *REFUSED_ROW) as exc:
        if is_deadlock(exc):
            raise
    refused: dict[int, str] = {}
    for i, (_, row) in enumerate(rows):
        try:
            async with session.begin_nested():
                await insert_missing(session, record_type, [row])
        except (DBAPIError, *REFUSED_ROW) as exc:
            if is_deadlock(exc):
                raise
            refused[i] = f"{type(exc).__name__}: {str(exc)[:300]}"
    _quarantine_outcome(batch, record_type, rows, refused, "refused_by_database")


async def _check_references(
    session: AsyncSession,
    batch: ReceivedBatch,
    after: int,
    ancestors: Sequence[ReceivedBatch] = (),
) -> None:
    """Quarantine the rows past seq ``after`` that refer to a row national lacks (bulk
    path; foreign keys enforce it elsewhere, and refused rows are quarantined when
    stored), and the rows of the batch that refer to those. References to rows of the
    batch itself or of ``ancestors`` (its predecessors still being applied, which it
    commits after or fails with) hold without a lookup; the rest must be committed."""
    if not batch.bulk:
        return
    in_batch = _pending_keys([batch, *ancestors])
    for record_type in POST_RECORD_TYPES:
        rows = batch.rows(record_type, after)
        if record_type == OFFICER or not rows:
            continue
        names = copy_rows(record_type).names
        dangling = await dangling_references(
            session, record_type, names, [row for _, row in rows], in_batch
        )
        if not dangling:
            continue
        for (column, referred), missing in dangling.items():
            index = names.index(column)
            for seq, row in rows:
                value = row[index]
                if seq in batch.excluded or value is None or _key_text(value) not in missing:
                    continue
                why = f"{record_type}.{column} refers to {referred} {value}, which national lacks"
                batch.quarantine_late(record_type, seq, row, "dangling_reference", why)
        _cascade(batch, record_type, stored=False)


def _dictionary_keys(batch: ReceivedBatch, after: int) -> dict[str, set[str]]:
    """The keys the rows past seq ``after`` bring to each trigger-kept dictionary."""
    keys: dict[str, set[str]] = {}
    for table, _, _, source, column in DICTIONARIES:
        index = copy_rows(source).names.index(column)
        rows = batch.rows(source, after)
        keys[table] = {row[index] for _, row in rows if row[index] is not None}
    return keys


def _crossing_ids(batch: ReceivedBatch, after: int) -> list[str]:
    key: Any = copy_rows("crossing").names.index("id") if batch.bulk else "id"
    return [str(row[key]) for _, row in batch.rows("crossing", after)]


async def _following_state(session: AsyncSession, header: BatchHeader) -> IngestState:
    """The sender's ingest state, locked; BatchGap unless the batch follows what national
    holds (else a gap) and holds something new (else a replay)."""
    state = await _state_for_update(session, header.origin)
    if header.seq_to <= state.contiguous_seq:
        raise BatchGap(state.contiguous_seq, "replay")
    if header.after_seq > state.contiguous_seq:
        raise BatchGap(state.contiguous_seq, "gap")
    return state


async def _complete(
    session: AsyncSession,
    node: Node,
    batch: ReceivedBatch,
    state: IngestState,
    stored: _Stored,
) -> IngestResult:
    """Queue new crossings for the partner country, keep what was quarantined, and
    advance the sender's state past it (the caller commits)."""
    held = state.contiguous_seq
    if batch.bulk:
        await add_dictionary_keys(session, _dictionary_keys(batch, stored.after))
    if node.settings.agreement_file:  # the agreement filters at send time
        from sync.exchange.service import queue_for_partner

        await queue_for_partner(session, _crossing_ids(batch, held))
    kept = batch.quarantine_past(held)
    await keep(session, batch.header.origin, kept)
    applied = stored.rows
    if held > stored.after:  # stored more than was new: count only what was new
        applied = sum(len(batch.rows(table, held)) for table in batch.tables)
    state.contiguous_seq = batch.header.seq_to
    state.batches_accepted += 1
    state.last_batch_at = utcnow()
    return IngestResult(state.contiguous_seq, applied, kept)


async def apply_received(
    session: AsyncSession, *, node: Node, batch: ReceivedBatch, turn: Turn | None = None
) -> IngestResult:
    """Apply a received batch inside the caller's transaction; raise BatchGap if it does
    not follow what national holds from that post (a gap) or holds nothing new (a replay)."""
    await approved_sender(session, batch.header.origin)  # still approved now that it applies
    state = await _following_state(session, batch.header)
    if batch.bulk:
        await defer_dictionaries(session)
    await _check_references(session, batch, state.contiguous_seq)
    stored = await _store(session, batch, state.contiguous_seq)
    if turn is not None:
        turn.numbered()
    return await _complete(session, node, batch, state, stored)


async def apply_overlapped(
    session: AsyncSession, *, node: Node, batch: ReceivedBatch, turn: Turn
) -> IngestResult:
    """``apply_received`` for a batch whose predecessor this process is still applying
    (``turn.predecessor``), in parallel with it; it commits after it or not at all.

    The batch checks its references (rows of the predecessors still being applied count
    as present: if one fails, this batch fails too) and stores its rows at once. Its audit
    events, which national numbers on arrival (each post's chain is verified in that
    order), wait until the predecessor has stored its own. Then, once the predecessor is
    done, the batch takes the sender's state lock: if the predecessor failed, the batch
    no longer follows and is refused as a gap, rolling back what it stored. If the
    predecessor quarantined rows while it applied (rows this batch may have counted as
    present), this batch is refused as a gap too, and the post resends it to be applied
    on its own.

    Each wait is bounded (``OVERLAP_WAIT_S``): should the predecessor wait in PostgreSQL
    for something this batch holds, the database cannot see that cycle, so this batch
    gives up, rolls back, and the sender resends it.
    """
    assert turn.predecessor is not None
    header = batch.header
    await approved_sender(session, header.origin)
    await defer_dictionaries(session)  # overlapped batches are always copied (PostgreSQL)
    await _check_references(session, batch, header.after_seq, turn.ancestors())
    stored = await _store(session, batch, header.after_seq, IN_ANY_ORDER)
    await _await_predecessor(session, header, turn.predecessor.numbered)
    ordered = await _store(session, batch, header.after_seq, IN_ARRIVAL_ORDER)
    turn.numbered()
    await _await_predecessor(session, header, turn.predecessor.done)
    if turn.predecessor.batch.late:
        raise BatchGap(await held_seq(session, header.origin), "gap")
    state = await _following_state(session, header)
    stored = replace(stored, rows=stored.rows + ordered.rows)
    return await _complete(session, node, batch, state, stored)


async def _await_predecessor(
    session: AsyncSession, header: BatchHeader, event: asyncio.Event
) -> None:
    try:
        await asyncio.wait_for(event.wait(), OVERLAP_WAIT_S)
    except TimeoutError:
        raise BatchGap(await held_seq(session, header.origin), "gap") from None


async def held_seq(session: AsyncSession, origin: str) -> int:
    """The highest contiguous seq national holds from ``origin`` (no lock taken)."""
    state = await session.get(IngestState, origin)
    return state.contiguous_seq if state else 0


async def record_rejection(
    session: AsyncSession, *, node: Node, origin: str, reason: str, detail: str
) -> None:
    """Log a refused batch (audited, counted) in its own transaction."""
    peer = await session.get(SyncPeer, origin)
    if peer is not None:
        state = await _state_for_update(session, origin)
        state.batches_rejected += 1
    await audit(
        session,
        origin=node.settings.node_code,
        officer=None,
        action="sync_rejected",
        record_type="sync_batch",
        record_id=origin[:80],
        purpose="sync",
        detail={"reason": reason, "detail": detail[:500]},
    )


@dataclass(frozen=True)
class PhotoOutcome:
    """A pushed photo file: stored (its sha256), or quarantined."""

    sha256: str
    quarantined: list[Quarantined] = field(default_factory=list)


async def ingest_photo(
    session: AsyncSession, *, node: Node, header: BatchHeader, signature: bytes, body: bytes
) -> PhotoOutcome:
    """Store a photo file pushed by a post after checking its signature and hash, and
    decoding it with the post's own safe decoder. A file that is not an image the decoder
    accepts is quarantined (never stored as a photo); the post's push moves past it."""
    peer = await approved_sender(session, header.origin)
    try:
        public_key_from_text(peer.public_key).verify(signature, header.canonical())
    except Exception as exc:  # noqa: BLE001 - any failure is a bad signature
        raise BatchRejected("bad_signature", "the photo signature does not verify") from exc
    sha = hashlib.sha256(body).hexdigest()
    if header.kind != "photo" or sha != header.content_sha256:
        raise BatchRejected("altered", "the photo does not match the signed hash")
    if header.destination != node.settings.node_code:
        raise BatchRejected("wrong_destination", f"photo is for {header.destination}")
    refusal = store_photo_file(node, sha, body)
    if refusal is None:
        return PhotoOutcome(sha)
    entry = quarantined(
        header.seq_to,
        PHOTO_FILE,
        sha,
        "not_an_image",
        refusal,
        base64.b64encode(body).decode(),
    )
    await keep(session, header.origin, [entry])
    return PhotoOutcome(sha, [entry])


def store_photo_file(node: Node, sha: str, body: bytes) -> str | None:
    """Decode a received photo file with the post's safe decoder and store it as received
    (its sha256 is its address); return why it was refused, or None once stored."""
    settings = node.settings
    try:
        decode_image(body, max_bytes=settings.max_photo_bytes, max_pixels=settings.max_photo_pixels)
    except ImageRejected as exc:
        return exc.message
    if not body.startswith(JPEG_MAGIC):  # posts store and push their photos as JPEG
        return "the photo is not the JPEG a post stores"
    write_photo(settings.photo_dir, SanitisedPhoto(sha, body, 0, 0))
    return None


JPEG_MAGIC = b"\xff\xd8\xff"


async def retry_record(session: AsyncSession, *, node: Node, entry: Any) -> Quarantined | None:
    """Apply a quarantined record from a post again, through the same checks and the same
    idempotent store as a batch (a post's ingest state is not touched). Returns None once
    stored, or why it is still refused."""
    if entry.record_type == PHOTO_FILE:
        body = base64.b64decode(entry.payload or "")
        if hashlib.sha256(body).hexdigest() != entry.record_id:
            why = "the kept file does not match its sha256"
            return quarantined(entry.seq, PHOTO_FILE, entry.record_id, "altered", why, None)
        refusal = store_photo_file(node, entry.record_id, body)
        if refusal is None:
            return None
        return quarantined(entry.seq, PHOTO_FILE, entry.record_id, "not_an_image", refusal, None)
    bulk = node.db.engine.dialect.name == "postgresql"
    record_type = entry.record_type
    raw = msgspec.Raw((entry.payload or "null").encode())
    row: Any = raw
    if record_type not in POST_RECORD_TYPES:
        row = _Unreadable("forbidden_record", f"{record_type} may not be pushed", raw)
    elif bulk and record_type != OFFICER:
        row = _struct_or_unreadable(record_type, raw)
    header = BatchHeader(
        BATCH_FORMAT,
        "records",
        entry.origin,
        node.settings.node_code,
        entry.seq - 1,
        entry.seq,
        entry.seq,
        1,
        "",
    )
    batch = validated_batch(header, {record_type: [(entry.seq, entry.record_id, row)]}, bulk=bulk)
    await _check_references(session, batch, 0)
    await _store(session, batch, 0)
    if node.settings.agreement_file and not batch.quarantine_past(0):
        from sync.exchange.service import queue_for_partner

        await queue_for_partner(session, _crossing_ids(batch, 0))
    found = batch.quarantine_past(0)
    return found[0] if found else None
