"""Storing received records idempotently: a replayed record changes nothing.

``insert_missing`` on either database; on PostgreSQL the COPY path national's ingest takes
(``insert_missing_copied``: straight into the table under a savepoint, through a staging
table when keys already exist, in halves down to the rows the database refuses), the
reference check done once per batch instead of constraint triggers
(``dangling_references``), the upserts of reference data, and the dictionaries the
triggers of migration 0008 keep (deferred during ingest). The wire format the rows arrive
in is ``sync.records``.
"""

from __future__ import annotations

import operator
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import asyncpg
from sqlalchemy import JSON, Table, Uuid, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

import registry.models  # noqa: F401 - tables on the metadata
import sync.models  # noqa: F401
from registry.db import dialect_name
from registry.json_text import compact_json
from sync.records import table_for

COPY_THRESHOLD = 64


async def insert_missing(
    session: AsyncSession, record_type: str, rows: Iterable[dict[str, Any]]
) -> None:
    """Insert rows, ignoring any whose key already exists (idempotent on id)."""
    batch = list(rows)
    if not batch:
        return
    table = table_for(record_type)
    dialect = dialect_name(session)
    if dialect == "postgresql" and len(batch) >= COPY_THRESHOLD:
        await _copy_missing(session, table, batch)
        return
    module = postgresql if dialect == "postgresql" else sqlite
    statement = module.insert(table).on_conflict_do_nothing()
    await session.execute(statement, batch)


# What the database may refuse in one row (class 22 data exceptions such as a NUL or a value
# over its column, class 23 constraint violations) and asyncpg refusing a value it encodes.
REFUSED_ROW = (
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    ValueError,
    TypeError,
    OverflowError,
)


@dataclass
class CopyOutcome:
    """Rows (by index) a copy did not store: those the database refused, and those whose
    key exists with another owner (``owner`` column), with why."""

    refused: dict[int, str] = field(default_factory=dict)
    foreign: dict[int, str] = field(default_factory=dict)


async def insert_missing_copied(
    session: AsyncSession,
    record_type: str,
    names: tuple[str, ...],
    rows: list[tuple[Any, ...]],
    *,
    owner: str | None = None,
) -> CopyOutcome:
    """Insert decoded ``CopyRows`` tuples on PostgreSQL, ignoring any whose key exists.

    A batch of fresh records (the usual case: national has never seen a seq past its
    acknowledgement) is copied straight into the table under a savepoint. If any key already
    exists (a digest resend, a post restored from a backup) the savepoint is rolled back and
    the rows go through a staging table and ``INSERT ... ON CONFLICT DO NOTHING``; there,
    rows whose key exists with another ``owner`` are left out and reported.

    If the database refuses the rows (a value it cannot store, a constraint), the table is
    stored again in halves, each under its own savepoint, down to the single rows it
    refuses, which are reported and not stored: a few dozen copies for one bad row among
    thousands, and nothing more on the usual path.
    """
    outcome = CopyOutcome()
    if not rows:
        return outcome
    table = table_for(record_type)
    driver = await _driver(session)
    await driver.execute("SAVEPOINT borderpost_bulk_copy")
    try:
        await driver.copy_records_to_table(table.name, records=rows, columns=list(names))
    except asyncpg.UniqueViolationError:
        await driver.execute("ROLLBACK TO SAVEPOINT borderpost_bulk_copy")
        try:
            await _staged(driver, table.name, names, rows, range(len(rows)), owner, outcome)
        except REFUSED_ROW:
            await driver.execute("ROLLBACK TO SAVEPOINT borderpost_bulk_copy")
            outcome.foreign.clear()
            await _bisect(driver, table.name, names, rows, list(range(len(rows))), owner, outcome)
    except REFUSED_ROW:
        await driver.execute("ROLLBACK TO SAVEPOINT borderpost_bulk_copy")
        await _bisect(driver, table.name, names, rows, list(range(len(rows))), owner, outcome)
    await driver.execute("RELEASE SAVEPOINT borderpost_bulk_copy")
    return outcome


async def _bisect(
    driver: Any,
    table: str,
    names: tuple[str, ...],
    rows: list[tuple[Any, ...]],
    indexes: list[int],
    owner: str | None,
    outcome: CopyOutcome,
) -> None:
    """Store ``rows[i]`` for i in ``indexes`` through the staging table, halving the set
    under savepoints until the rows the database refuses are found alone."""
    await driver.execute("SAVEPOINT borderpost_bisect")
    try:
        await _staged(driver, table, names, rows, indexes, owner, outcome)
    except REFUSED_ROW as exc:
        await driver.execute("ROLLBACK TO SAVEPOINT borderpost_bisect")
        await driver.execute("RELEASE SAVEPOINT borderpost_bisect")
        if len(indexes) == 1:
            outcome.refused[indexes[0]] = f"{type(exc).__name__}: {exc}"
            return
        half = len(indexes) // 2
        await _bisect(driver, table, names, rows, indexes[:half], owner, outcome)
        await _bisect(driver, table, names, rows, indexes[half:], owner, outcome)
        return
    await driver.execute("RELEASE SAVEPOINT borderpost_bisect")


def _key_text(value: Any) -> str:
    """A key as PostgreSQL prints it (a uuid in its canonical form)."""
    text = str(value)
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return text


async def _staged(
    driver: Any,
    table: str,
    names: tuple[str, ...],
    rows: list[tuple[Any, ...]],
    indexes: Iterable[int],
    owner: str | None,
    outcome: CopyOutcome,
) -> None:
    """Copy the rows into the staging table; leave out (and report in ``outcome.foreign``)
    those whose key exists with another owner; insert the rest, ignoring existing keys."""
    chosen = list(indexes)
    records = [rows[i] for i in chosen]
    if owner is None:
        await _copy_via_staging(driver, table, names, records)
        return
    key = IDENTITY_COLUMN.get(table, "id")
    staging = await _stage(driver, table, names, records)
    foreign = await driver.fetch(
        f'DELETE FROM {staging} s USING "{table}" t WHERE t."{key}" = s."{key}" '
        f'AND t."{owner}" IS DISTINCT FROM s."{owner}" RETURNING s."{key}"::text, t."{owner}"'
    )
    if foreign:
        held = {_key_text(k): holder for k, holder in foreign}
        position = names.index(key)
        for i in chosen:
            holder = held.get(_key_text(rows[i][position]))
            if holder is not None or _key_text(rows[i][position]) in held:
                outcome.foreign[i] = f"{table} {rows[i][position]} belongs to {holder}"
    await _insert_staged(driver, table, names, staging)


IDENTITY_COLUMN = {"photo": "sha256"}  # a record's identity column where it is not "id"


@cache
def _references(record_type: str) -> tuple[tuple[str, str, str, str], ...]:
    """(column, referred table, referred column, PostgreSQL type) of one table's foreign
    keys, except those into the partitioned crossing table (never enforced at national)."""
    return tuple(
        (
            fk.parent.name,
            fk.column.table.name,
            fk.column.name,
            "uuid" if isinstance(fk.parent.type, Uuid) else "text",
        )
        for fk in sorted(table_for(record_type).foreign_keys, key=lambda fk: fk.parent.name)
        if fk.column.table.name != "crossing"
    )


async def dangling_references(
    session: AsyncSession,
    record_type: str,
    names: tuple[str, ...],
    rows: list[tuple[Any, ...]],
    in_batch: Callable[[str, str], set[str]] = lambda _table, _column: set(),
) -> dict[tuple[str, str], set[str]]:
    """The values of each reference from ``rows`` to rows national does not hold, by
    (column, referred table); empty when every reference holds.

    National checks references once per batch and table instead of row-by-row constraint
    triggers (migration 0006). A reference to a row of the same batch (``in_batch`` gives
    the keys of a referred table's rows in it, as text) holds: those rows are stored before
    their children in the same transaction. Only the rest are looked up, one query per
    foreign key over the distinct ids.
    """
    driver = await _driver(session)
    dangling: dict[tuple[str, str], set[str]] = {}
    for column, referred, referred_column, pg_type in _references(record_type):
        index = names.index(column)
        ids = set(map(operator.itemgetter(index), rows))
        ids.discard(None)
        ids.difference_update(in_batch(referred, referred_column))
        if not ids:
            continue
        missing = await driver.fetch(
            f"SELECT r.v::text FROM unnest($1::{pg_type}[]) AS r(v) WHERE NOT EXISTS "
            f'(SELECT 1 FROM "{referred}" p WHERE p."{referred_column}" = r.v)',
            list(ids),
        )
        if missing:
            dangling[(column, referred)] = {_key_text(v) for (v,) in missing}
    return dangling


async def _driver(session: AsyncSession) -> Any:
    """The asyncpg connection under the session's transaction (begun if it was not yet:
    SQLAlchemy's asyncpg adapter only sends BEGIN with its first statement)."""
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None, "a connection in use is never invalidated"
    if not driver.is_in_transaction():
        await connection.exec_driver_sql("SELECT 1")
    return driver


def _copy_value(value: Any, is_json: bool) -> Any:
    return compact_json(value) if is_json and value is not None else value


async def _copy_missing(session: AsyncSession, table: Table, rows: list[dict[str, Any]]) -> None:
    """PostgreSQL path for row dicts: COPY into a staging table, then INSERT ... ON CONFLICT
    DO NOTHING from it, in the caller's transaction (same connection)."""
    columns = [c for c in table.columns if c.name in rows[0]]
    for row in rows:  # rows decoded from different payload shapes: every column present
        for column in columns:
            row.setdefault(column.name, None)
    names = tuple(c.name for c in columns)
    json_names = [c.name for c in columns if isinstance(c.type, JSON)]
    for row in rows:
        for name in json_names:
            row[name] = _copy_value(row.get(name), True)
    pick = operator.itemgetter(*names)
    records = [pick(row) for row in rows] if len(names) > 1 else [(row[names[0]],) for row in rows]
    await _copy_via_staging(await _driver(session), table.name, names, records)


async def _copy_via_staging(
    driver: Any, table: str, names: tuple[str, ...], records: list[tuple[Any, ...]]
) -> None:
    staging = await _stage(driver, table, names, records)
    await _insert_staged(driver, table, names, staging)


async def _stage(
    driver: Any, table: str, names: tuple[str, ...], records: list[tuple[Any, ...]]
) -> str:
    staging = f"staging_{table}"
    await driver.execute(
        f'CREATE TEMP TABLE IF NOT EXISTS {staging} (LIKE "{table}" INCLUDING DEFAULTS)'
    )
    await driver.copy_records_to_table(staging, records=records, columns=list(names))
    return staging


async def _insert_staged(driver: Any, table: str, names: tuple[str, ...], staging: str) -> None:
    quoted = ", ".join(f'"{n}"' for n in names)
    await driver.execute(
        f'INSERT INTO "{table}" ({quoted}) SELECT {quoted} FROM {staging} ON CONFLICT DO NOTHING'
    )
    await driver.execute(f"TRUNCATE {staging}")


async def upsert_authoritative(
    session: AsyncSession, record_type: str, rows: Iterable[dict[str, Any]]
) -> None:
    """Insert or overwrite rows by primary key: for reference data national owns."""
    batch = list(rows)
    if not batch:
        return
    table = table_for(record_type)
    dialect = dialect_name(session)
    module = postgresql if dialect == "postgresql" else sqlite
    keys = [c.name for c in table.primary_key.columns]
    statement = module.insert(table)
    updates = {c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys}
    await session.execute(statement.on_conflict_do_update(index_elements=keys, set_=updates), batch)


async def upsert_owned(
    session: AsyncSession, record_type: str, rows: list[dict[str, Any]], owner: str
) -> set[str]:
    """Insert rows, or update existing rows by primary key only where the row's STORED
    ``owner`` column equals the one sent (a post updates only the rows it owns, whatever it
    claims). Returns the keys (as text) of the rows inserted or updated; a row sent twice
    counts once, its last version applied. Raises what the database raises."""
    if not rows:
        return set()
    table = table_for(record_type)
    (key,) = [c.name for c in table.primary_key.columns]
    latest = list({str(row[key]): row for row in rows}.values())
    dialect = dialect_name(session)
    module = postgresql if dialect == "postgresql" else sqlite
    statement = module.insert(table).values(latest)
    updates = {c.name: statement.excluded[c.name] for c in table.columns if c.name != key}
    statement = statement.on_conflict_do_update(
        index_elements=[key], set_=updates, where=table.c[owner] == statement.excluded[owner]
    ).returning(table.c[key])
    return {str(value) for value in (await session.execute(statement)).scalars()}


async def owners_of(
    session: AsyncSession, record_type: str, keys: Iterable[Any], owner: str
) -> dict[str, str | None]:
    """The stored ``owner`` of the rows of ``record_type`` with these keys (text keys)."""
    table = table_for(record_type)
    column = table.c[IDENTITY_COLUMN.get(record_type, "id")]
    found = await session.execute(select(column, table.c[owner]).where(column.in_(list(keys))))
    return {_key_text(k): holder for k, holder in found}


# Dictionaries national keeps by trigger (migrations 0004, 0007): (table, key column, type,
# source table, source column). Bulk ingest defers them to the end of its transaction.
DICTIONARIES = (
    ("traveller_name_key", "name_key", "text", "traveller", "name_key"),
    ("superseded_crossing", "id", "uuid", "crossing", "supersedes"),
)


async def defer_dictionaries(session: AsyncSession) -> None:
    """Turn the dictionary triggers off for this transaction (migration 0008): the caller
    adds the keys with ``add_dictionary_keys`` once its predecessor has committed."""
    driver = await _driver(session)
    await driver.execute("SELECT set_config('borderpost.defer_dictionaries', 'on', true)")


async def add_dictionary_keys(session: AsyncSession, keys: dict[str, set[str]]) -> None:
    """Insert the keys the deferred triggers would have (``keys`` by dictionary table)."""
    driver = await _driver(session)
    for table, column, pg_type, _, _ in DICTIONARIES:
        if values := keys.get(table):
            await driver.execute(
                f'INSERT INTO {table} ("{column}") SELECT DISTINCT k FROM '
                f"unnest($1::{pg_type}[]) AS t(k) ON CONFLICT DO NOTHING",
                list(values),
            )
