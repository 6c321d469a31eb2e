"""Receiving a post's batch before anything is stored: the sender must be an approved
post, the batch's signature, hash and range must verify, and every record is checked
without the database, a column at a time (origin claims, text the database cannot store,
references to records quarantined with them). What fails is quarantined; the rest is a
``ReceivedBatch``, ready to store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from operator import attrgetter, itemgetter
from typing import Any

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import JSON
from sqlalchemy.ext.asyncio import AsyncSession

from sync.batches import BatchHeader, BatchRejected, check_range, verified_body
from sync.ingest.decode import OFFICER, Decoded, Unreadable, decode_tables
from sync.models import SyncPeer
from sync.quarantine import Quarantined, bad_text_rows, payload_text, quarantined
from sync.records import POST_RECORD_TYPES, copy_rows, decode_row, table_for


async def approved_sender(session: AsyncSession, origin: str) -> SyncPeer:
    peer = await session.get(SyncPeer, origin)
    if peer is None or peer.role != "post":
        raise BatchRejected("unknown_sender", f"{origin} is not an enrolled post")
    if peer.status != "approved":
        raise BatchRejected("sender_not_approved", f"{origin} is {peer.status}")
    return peer


@cache
def _copy_json_columns(record_type: str) -> tuple[int, ...]:
    converter = copy_rows(record_type)
    return tuple(i for i, n in enumerate(converter.names) if n in _json_names(record_type))


@cache
def _json_names(record_type: str) -> frozenset[str]:
    return frozenset(c.name for c in table_for(record_type).columns if isinstance(c.type, JSON))


def _payload(record_type: str, row: Any, bulk: bool) -> str:
    """A row's payload as received, for its quarantine entry."""
    if isinstance(row, Unreadable):
        row = row.raw
    if isinstance(row, msgspec.Struct):
        return msgspec.json.encode(row).decode()
    if bulk and isinstance(row, tuple):
        return payload_text(row, copy_rows(record_type).names, _copy_json_columns(record_type))
    return payload_text(row)


@cache
def cascade_references(record_type: str) -> tuple[tuple[str, str], ...]:
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
            unreadable = [r for r in rows if isinstance(r[2], Unreadable)]
            for seq, record_id, row in unreadable:
                self.refuse(record_type, seq, record_id, row.reason, row.detail, row)
            if unreadable:
                rows = [r for r in rows if not isinstance(r[2], Unreadable)]
        if record_type not in POST_RECORD_TYPES or not rows:
            return []
        column: Callable[[str], list[Any]]
        values: list[Any]  # COPY tuples (bulk) or row dicts
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
        bounded = readable and self.bulk and record_type != OFFICER  # CopyRows.bounded
        for i, why in bad_text_rows(record_type, names, column, lengths_checked=bounded).items():
            problems.setdefault(i, ("unstorable_text", why))
        for i, dependent in self._dependent_problems(record_type, names, column).items():
            problems.setdefault(i, dependent)
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
        for name, referred in cascade_references(record_type):
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
                found = set(map(str, map(itemgetter(index), map(itemgetter(1), rows))))
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
    decoded, readable = decode_tables(raw, bulk=bulk)
    check_range(header, (list(map(itemgetter(0), rows)) for rows in decoded.values()))
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
