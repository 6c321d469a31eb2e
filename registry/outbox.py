"""The sync outbox: records that must travel are appended in the writing transaction.

Rows are written with Core inserts (``insert_rows``) on the hot path: the ORM unit of work
costs more than the database does for a registration.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel

from registry.models import OutboxEntry, utcnow


def row_of(record: SQLModel) -> dict[str, Any]:
    """The column values of a table model, as Core expects them."""
    table = record.__table__  # type: ignore[attr-defined]
    row = {column.name: getattr(record, column.name) for column in table.columns}
    for column in table.primary_key.columns:
        if row.get(column.name) is None:
            del row[column.name]  # let the database number it (audit/outbox seq)
    return row


_PLAIN = frozenset({str, int, float, bool, type(None)})


_CONVERT: dict[type, Callable[[Any], Any]] = {
    uuid.UUID: str,
    datetime: datetime.isoformat,
    date: date.isoformat,
    bytes: bytes.hex,
}


def _json_safe(value: Any) -> Any:
    if type(value) in _PLAIN:  # most columns: nothing to convert
        return value
    convert = _CONVERT.get(type(value))  # the exact types columns hold: one lookup
    if convert is not None:
        return convert(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def record_payload(record: SQLModel) -> dict[str, Any]:
    """JSON-safe copy of a table row (binary as hex, times ISO 8601, ids as text)."""
    return {name: _json_safe(value) for name, value in row_of(record).items()}


class RecordView(Mapping[str, Any]):
    """A table row's JSON-safe values (as ``record_payload``), each computed when read: for
    a reader that needs a few columns of many rows (the bilateral exchange's filter)."""

    __slots__ = ("_loaded", "_names", "_record")

    def __init__(self, record: SQLModel) -> None:
        self._record = record
        self._names = _column_names(type(record))
        self._loaded = record.__dict__  # loaded column values, read past the descriptors

    def __getitem__(self, name: str) -> Any:
        try:
            value = self._loaded[name]
        except KeyError:  # not loaded (expired, deferred): the attribute loads it
            if name not in self._names:
                raise
            value = getattr(self._record, name)
        else:
            if name not in self._names:  # loaded state that is not a column
                raise KeyError(name)
        return value if type(value) in _PLAIN else _json_safe(value)

    def get(self, name: str, default: Any = None) -> Any:
        """As ``Mapping.get``, without its extra call per read (the exchange's filter reads
        about twenty columns per crossing)."""
        try:
            return self[name]
        except KeyError:
            return default

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


@functools.cache
def _column_names(model: type[SQLModel]) -> frozenset[str]:
    return frozenset(column.name for column in model.__table__.columns)  # type: ignore[attr-defined]


def record_id_of(record: SQLModel) -> str:
    """The record's identity: its id (or sha256), else its primary key values."""
    for attr in ("id", "sha256"):
        value = getattr(record, attr, None)
        if value is not None:
            return str(value)
    table = record.__table__  # type: ignore[attr-defined]
    values = [getattr(record, column.name) for column in table.primary_key.columns]
    if any(value is None for value in values):
        raise ValueError(f"{type(record).__name__} has no identifier yet")
    return ":".join(str(value) for value in values)


async def insert_rows(session: AsyncSession, *records: SQLModel) -> None:
    """Insert new records with Core, in the order given (parents before children)."""
    for record in records:
        await session.execute(insert(type(record)), [row_of(record)])


async def enqueue(session: AsyncSession, *records: SQLModel) -> None:
    """Append each record to the outbox in the caller's transaction (one statement)."""
    if not records:
        return
    now = utcnow()
    rows = [
        {
            "record_type": record.__tablename__,
            "record_id": record_id_of(record),
            "payload": record_payload(record),
            "created_at": now,
        }
        for record in records
    ]
    await session.execute(insert(OutboxEntry), rows)
