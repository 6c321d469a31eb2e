"""Records on the wire and in the database: which tables may travel, how a JSON payload
turns back into a row, and idempotent upserts (a replayed record changes nothing)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from datetime import date, datetime
from functools import cache
from typing import Any

from sqlalchemy import Table
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


async def insert_missing(
    session: AsyncSession, record_type: str, rows: Iterable[dict[str, Any]]
) -> None:
    """Insert rows, ignoring any whose key already exists (idempotent on id)."""
    batch = list(rows)
    if not batch:
        return
    table = table_for(record_type)
    dialect = session.bind.dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    statement = module.insert(table).on_conflict_do_nothing()
    await session.execute(statement, batch)


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
