"""Storing a received batch's rows on national, table by table: COPY of new rows
(PostgreSQL), inserts of column dicts (SQLite, a retried record), upserts of the post's own
officer accounts, and the reference check the bulk path runs instead of foreign keys. A row
the database refuses, whose key belongs to another origin, or that refers to a row national
lacks is quarantined, and with it the rows of the batch that refer to it (the cascade).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from sync.bulk import (
    REFUSED_ROW,
    _key_text,
    dangling_references,
    insert_missing,
    insert_missing_copied,
    owners_of,
    upsert_owned,
)
from sync.ingest.decode import OFFICER
from sync.ingest.validation import IDENTITY, ReceivedBatch, cascade_references
from sync.records import OWNED_THROUGH, POST_RECORD_TYPES, copy_rows, table_for


def _pending_keys(batches: Sequence[ReceivedBatch]) -> Callable[[str, str], set[str]]:
    """``ReceivedBatch.keys`` over several batches."""
    if len(batches) == 1:
        return batches[0].keys

    @cache
    def keys(record_type: str, column: str) -> set[str]:
        return set().union(*(batch.keys(record_type, column) for batch in batches))

    return keys


def is_deadlock(exc: BaseException) -> bool:
    """Whether PostgreSQL aborted the transaction to break a deadlock (SQLSTATE 40P01),
    raised by asyncpg itself or wrapped by SQLAlchemy."""
    orig = getattr(exc, "orig", None)
    candidates = (exc, orig, getattr(orig, "__cause__", None))
    return any(getattr(e, "sqlstate", None) == "40P01" for e in candidates)


async def _refuse_foreign_parents(
    session: AsyncSession, batch: ReceivedBatch, record_type: str, rows: list[tuple[int, Any]]
) -> list[tuple[int, Any]]:
    """The ownership check of a record owned through the row it refers to
    (``sync.records.OWNED_THROUGH``): a row whose referred row national holds with another
    origin is quarantined as ``not_owner``, like a row whose own key does; the rest are
    returned. A referred row national lacks is the reference check's to refuse."""
    through = OWNED_THROUGH.get(record_type)
    if through is None or not rows:
        return rows
    column, parent = through
    parents = [_column(batch, record_type, row, column) for _, row in rows]
    claims = [_column(batch, record_type, row, "origin") for _, row in rows]
    owners = await owners_of(session, parent, set(parents), "origin")
    foreign = {
        i: f"{record_type}.{column} refers to {parent} {key}, which belongs to {owners[k]}"
        for i, (key, claim) in enumerate(zip(parents, claims, strict=True))
        if (k := _key_text(key)) in owners and owners[k] != claim
    }
    _quarantine_outcome(batch, record_type, rows, foreign, "not_owner", stored=False)
    return [(seq, row) for seq, row in rows if seq not in batch.excluded]


async def copy_new_rows(
    session: AsyncSession, batch: ReceivedBatch, record_type: str, rows: list[tuple[int, Any]]
) -> None:
    rows = await _refuse_foreign_parents(session, batch, record_type, rows)
    if not rows:
        return
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
        for column, referred in cascade_references(table):
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


async def upsert_officers(
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


async def insert_new_rows(
    session: AsyncSession, batch: ReceivedBatch, record_type: str, rows: list[tuple[int, Any]]
) -> None:
    """Insert column dicts (SQLite, or a retried record), ignoring existing keys; a row
    whose key exists with another origin, or that the database refuses, is quarantined."""
    rows = await _refuse_foreign_parents(session, batch, record_type, rows)
    if not rows:
        return
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


async def check_references(
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
