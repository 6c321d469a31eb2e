"""Records on the wire: which tables may travel, how a JSON payload turns back into a row,
and the shape a table's rows take on the bulk ingest path (``CopyRows``). Storing them
idempotently is ``sync.bulk``."""

from __future__ import annotations

import operator
import uuid
from collections.abc import Callable
from datetime import date, datetime
from functools import cache
from typing import Annotated, Any

import msgspec
from sqlalchemy import JSON, LargeBinary, String, Table
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
    "biometric_template",
    "crossing",
    "protection_referral",
    "referral_follow_up",
    "alert",
    "alert_adjudication",
    "audit_event",
)
# Records owned through the row they refer to, (column, referred table): a post may send
# one only if national's stored owner (origin) of the referred row is that post, as for the
# record's own key (sync.ingest.store): a template only of a photo the post originated.
OWNED_THROUGH = {"biometric_template": ("photo_sha256", "photo")}
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


def _wire_type(column: Any, *, raw_json: bool = False) -> Any:
    column_type = column.type
    if isinstance(column_type, TypeDecorator):
        column_type = column_type.impl_instance
    if isinstance(column_type, JSON):  # kept as undecoded text when only copied
        return msgspec.Raw if raw_json else Any
    try:
        python_type = column_type.python_type
    except NotImplementedError:
        return Any
    if python_type in (bytes, object):
        return str if python_type is bytes else Any
    return python_type


@cache
def _row_decoder(record_type: str) -> msgspec.json.Decoder[Any]:
    """A typed decoder for one table's payloads: ids, times and dates are parsed in C. A
    column the payload leaves out decodes as UNSET (``decode_row`` fills it in)."""
    fields = [
        (c.name, _wire_type(c) | None | msgspec.UnsetType, msgspec.UNSET)
        for c in table_for(record_type).columns
    ]
    return msgspec.json.Decoder(msgspec.defstruct(f"Wire_{record_type}", fields))


@cache
def _absent_values(record_type: str) -> dict[str, Any]:
    """What a column the sender left out takes: its scalar default (a sender on an older
    schema knows nothing of a column added since, e.g. ``officer.must_change_password``),
    else NULL. A column sent as null stays null, and the database judges it."""
    values: dict[str, Any] = {}
    for column in table_for(record_type).columns:
        default = column.default
        is_scalar = default is not None and getattr(default, "is_scalar", False)
        values[column.name] = default.arg if is_scalar else None  # type: ignore[union-attr]
    return values


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
    absent = _absent_values(record_type)
    for name, value in row.items():
        if value is msgspec.UNSET:
            row[name] = absent[name]
    for name in _bytes_columns(record_type):
        if row.get(name) is not None:
            row[name] = bytes.fromhex(row[name])
    skip = LOCAL_COUNTERS.get(record_type)
    if skip:
        row.pop(skip, None)
    return row


def _optional(wire_type: Any) -> Any:
    return wire_type if wire_type is msgspec.Raw else wire_type | None  # Raw takes null too


def _copy_type(column: Any, *, bounded: bool = False) -> Any:
    """The wire type of a column on the COPY path. Ids stay text: asyncpg parses a uuid
    string in C while encoding it (and refuses a malformed one), faster than building a
    ``uuid.UUID`` only for asyncpg to call its Python ``bytes`` property. ``bounded``: a
    text column with a length takes it as a constraint, checked in C while decoding."""
    wire_type = _wire_type(column, raw_json=True)
    if wire_type is uuid.UUID:
        wire_type = str
    length = text_length(column)
    if bounded and wire_type is str and length is not None:
        wire_type = Annotated[str, msgspec.Meta(max_length=length)]
    return _optional(wire_type)


def text_length(column: Any) -> int | None:
    """The most characters a text column holds, or None (not text, or unbounded)."""
    column_type = column.type
    if isinstance(column_type, TypeDecorator):
        column_type = column_type.impl_instance  # AutoString -> String
    return getattr(column.type, "length", None) if isinstance(column_type, String) else None


class CopyRows:
    """One table's shape on the bulk ingest path: the struct its received rows decode
    into, and how those become COPY-ready tuples.

    The bulk ingest path: the typed msgspec decoder parses times and dates in C, ids stay
    text for asyncpg to parse, JSON columns stay undecoded text (PostgreSQL stores the text
    as received, so it is never decoded and re-encoded in Python), and binary columns turn
    from hex into bytes. ``bounded`` is nested in the type of a whole batch body: it is
    ``struct`` with every text column's length as a constraint, so a body that decodes
    holds no value longer than its column (a body that does not is read row by row into
    ``struct``, and the over-long values are named by the text checks). Instances of
    either turn into tuples with ``tuples``.
    """

    def __init__(self, record_type: str) -> None:
        skip = LOCAL_COUNTERS.get(record_type)
        columns = [c for c in table_for(record_type).columns if c.name != skip]
        self.record_type = record_type
        json_names = [c.name for c in columns if _wire_type(c, raw_json=True) is msgspec.Raw]
        hex_names = [c.name for c in columns if c.name in _bytes_columns(record_type)]
        converted = {*json_names, *hex_names}
        plain = [c.name for c in columns if c.name not in converted]
        # Columns copied as decoded first, then those converted (JSON text, then binary):
        # a row is its plain values' tuple plus its converted values' (one C-level concat).
        self.names = (*plain, *json_names, *hex_names)
        by_name = {c.name: c for c in columns}
        fields = [(n, _copy_type(by_name[n]), None) for n in self.names]
        self.struct = msgspec.defstruct(f"Copy_{record_type}", fields, gc=False)
        bounded = [(n, _copy_type(by_name[n], bounded=True), None) for n in self.names]
        self.bounded = msgspec.defstruct(f"Bounded_{record_type}", bounded, gc=False)
        self._plain = operator.attrgetter(*plain) if len(plain) > 1 else _one_of(plain)
        self._json = tuple(operator.attrgetter(n) for n in json_names)
        self._hex = tuple(operator.attrgetter(n) for n in hex_names)
        owner = "home_post" if record_type == "officer" else "origin"
        self.owner_index = self.names.index(owner) if owner in self.names else None

    def tuples(self, decoded: list[Any]) -> list[tuple[Any, ...]]:
        """Decoded ``struct`` instances as COPY tuples in ``names`` order, converting JSON
        and binary columns a column at a time (raises ValueError on a binary column that
        is not hex)."""
        rows = list(map(self._plain, decoded))
        if not (self._json or self._hex) or not rows:
            return rows
        converted: list[list[Any]] = [
            [
                None if raw is None or (text := str(raw, "utf-8")) == "null" else text
                for raw in map(value, decoded)
            ]
            for value in self._json
        ]
        converted += [
            [None if v is None else bytes.fromhex(v) for v in map(value, decoded)]
            for value in self._hex
        ]
        return list(map(operator.add, rows, zip(*converted, strict=True)))


def _one_of(names: list[str]) -> Callable[[Any], tuple[Any, ...]]:
    """A row's values of ``names`` (none or one column) as a tuple."""
    getters = [operator.attrgetter(n) for n in names]
    return lambda row: tuple(get(row) for get in getters)


@cache
def copy_rows(record_type: str) -> CopyRows:
    return CopyRows(record_type)
