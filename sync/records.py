"""Records on the wire and in the database: which tables may travel, how a JSON payload
turns back into a row, and idempotent upserts (a replayed record changes nothing)."""

from __future__ import annotations

import operator
import uuid
from collections.abc import Callable, Iterable
from datetime import date, datetime
from functools import cache
from typing import Any

import msgspec
from sqlalchemy import JSON, LargeBinary, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeDecorator
from sqlmodel import SQLModel

import registry.models  # noqa: F401 - tables on the metadata
import sync.models  # noqa: F401

# What a post may push to its national node, in dependency order.
POST_RECORD_TYPES = (
    "officer",
    "traveller",
    "travel_document",
    "photo",
    "crossing",
    "protection_referral",
    "alert",
    "alert_adjudication",
    "audit_event",
)
# Reference data national publishes to its posts (national is authoritative for them).
REFERENCE_TYPES = ("officer", "watchlist_entry", "sync_peer", "reference_change")
# Tables whose primary key is a local counter: the receiver numbers them itself.
LOCAL_COUNTERS = {"audit_event": "seq"}


def table_for(record_type: str) -> Table:
    table = SQLModel.metadata.tables.get(record_type)
    if table is None:
        raise KeyError(record_type)
    return table


def _converter(python_type: type) -> Callable[[Any], Any]:
    if python_type is uuid.UUID:
        return lambda v: uuid.UUID(v) if isinstance(v, str) else v
    if python_type is datetime:
        return lambda v: datetime.fromisoformat(v) if isinstance(v, str) else v
    if python_type is date:
        return lambda v: date.fromisoformat(v) if isinstance(v, str) else v
    if python_type is bytes:
        return lambda v: bytes.fromhex(v) if isinstance(v, str) else v
    return lambda v: v


@cache
def _converters(record_type: str) -> dict[str, Callable[[Any], Any]]:
    converters = {}
    for column in table_for(record_type).columns:
        column_type = column.type
        if isinstance(column_type, TypeDecorator):
            column_type = column_type.impl_instance  # UTCDateTime -> DateTime
        try:
            python_type = column_type.python_type
        except NotImplementedError:
            python_type = object
        converters[column.name] = _converter(python_type)
    return converters


def row_from_payload(record_type: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Turn a JSON-safe payload back into column values; unknown keys are dropped."""
    converters = _converters(record_type)
    skip = LOCAL_COUNTERS.get(record_type)
    return {
        name: None if payload[name] is None else convert(payload[name])
        for name, convert in converters.items()
        if name in payload and name != skip
    }


def _wire_type(column: Any) -> Any:
    column_type = column.type
    if isinstance(column_type, TypeDecorator):
        column_type = column_type.impl_instance
    try:
        python_type = column_type.python_type
    except NotImplementedError:
        return Any  # JSON columns
    if python_type in (bytes, object):
        return str if python_type is bytes else Any
    return python_type


@cache
def _row_decoder(record_type: str) -> msgspec.json.Decoder[Any]:
    """A typed decoder for one table's payloads: ids, times and dates are parsed in C."""
    fields = [(c.name, _wire_type(c) | None, None) for c in table_for(record_type).columns]
    return msgspec.json.Decoder(msgspec.defstruct(f"Wire_{record_type}", fields))


@cache
def _bytes_columns(record_type: str) -> tuple[str, ...]:
    return tuple(
        c.name
        for c in table_for(record_type).columns
        if _wire_type(c) is str and isinstance(c.type, LargeBinary)
    )


def decode_row(record_type: str, raw: bytes | msgspec.Raw) -> dict[str, Any]:
    """Decode one received payload into column values (raises msgspec errors if malformed)."""
    row = msgspec.structs.asdict(_row_decoder(record_type).decode(raw))
    for name in _bytes_columns(record_type):
        if row.get(name) is not None:
            row[name] = bytes.fromhex(row[name])
    skip = LOCAL_COUNTERS.get(record_type)
    if skip:
        row.pop(skip, None)
    return row


COPY_THRESHOLD = 64


async def insert_missing(
    session: AsyncSession, record_type: str, rows: Iterable[dict[str, Any]]
) -> None:
    """Insert rows, ignoring any whose key already exists (idempotent on id)."""
    batch = list(rows)
    if not batch:
        return
    table = table_for(record_type)
    dialect = session.bind.dialect.name
    if dialect == "postgresql" and len(batch) >= COPY_THRESHOLD:
        await _copy_missing(session, table, batch)
        return
    module = postgresql if dialect == "postgresql" else sqlite
    statement = module.insert(table).on_conflict_do_nothing()
    await session.execute(statement, batch)


def _copy_value(value: Any, is_json: bool) -> Any:
    return msgspec.json.encode(value).decode() if is_json and value is not None else value


async def _copy_missing(session: AsyncSession, table: Table, rows: list[dict[str, Any]]) -> None:
    """PostgreSQL fast path: COPY into a temporary table, then INSERT ... ON CONFLICT DO
    NOTHING from it, in the caller's transaction (same connection)."""
    columns = [c for c in table.columns if c.name in rows[0]]
    for row in rows:  # rows decoded from different payload shapes: every column present
        for column in columns:
            row.setdefault(column.name, None)
    names = [c.name for c in columns]
    json_columns = [isinstance(c.type, JSON) for c in columns]
    staging = f"staging_{table.name}"
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    await driver.execute(
        f'CREATE TEMP TABLE IF NOT EXISTS {staging} (LIKE "{table.name}" INCLUDING DEFAULTS)'
    )
    json_names = [n for n, is_json in zip(names, json_columns, strict=True) if is_json]
    for row in rows:
        for name in json_names:
            row[name] = _copy_value(row.get(name), True)
    pick = operator.itemgetter(*names)
    records = [pick(row) for row in rows] if len(names) > 1 else [(row[names[0]],) for row in rows]
    await driver.copy_records_to_table(staging, records=records, columns=names)
    quoted = ", ".join(f'"{n}"' for n in names)
    await driver.execute(
        f'INSERT INTO "{table.name}" ({quoted}) SELECT {quoted} FROM {staging} '
        "ON CONFLICT DO NOTHING"
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
    dialect = session.bind.dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    keys = [c.name for c in table.primary_key.columns]
    statement = module.insert(table)
    updates = {c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys}
    await session.execute(statement.on_conflict_do_update(index_elements=keys, set_=updates), batch)
