"""Decoding a post's verified batch body into its tables' rows, and pausing the cyclic
garbage collector while a batch is in hand.

On PostgreSQL (``bulk``) one typed pass decodes every table's rows straight into its COPY
struct (officers stay undecoded JSON: they are upserted as dicts). Should any row fail that
pass, the body is read table by table and row by row, and a row that cannot be read (or
belongs to a table posts may not push) becomes an ``Unreadable`` to quarantine.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import msgspec

from sync.batches import BatchRejected
from sync.records import POST_RECORD_TYPES, copy_rows

OFFICER = "officer"  # a post's officer accounts are upserted, not copied


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


class Unreadable(msgspec.Struct, gc=False):
    """A record whose row could not be decoded (quarantined as ``reason``)."""

    reason: str
    detail: str
    raw: Any


def _bulk_row_type(record_type: str) -> Any:
    return msgspec.Raw if record_type == OFFICER else copy_rows(record_type).bounded


@cache
def _bulk_decoder() -> msgspec.json.Decoder[Any]:
    """Decodes a whole batch body in one pass: every table's rows straight into its COPY
    struct (officers, upserted as dicts, stay undecoded). Tables posts may not push are
    unknown fields, so they fail the decode (and the body is read record by record)."""
    # (field name, row type built at run time, default)
    fields: list[tuple[str, Any, list[Any]]] = [
        (record_type, list[tuple[int, str, _bulk_row_type(record_type)]], [])  # type: ignore[misc]
        for record_type in POST_RECORD_TYPES
    ]
    body = msgspec.defstruct("BatchBody", fields, gc=False, forbid_unknown_fields=True)
    return msgspec.json.Decoder(body)


Decoded = dict[str, list[tuple[int, str, Any]]]


def decode_tables(raw: bytes, *, bulk: bool) -> tuple[Decoded, bool]:
    """The body's tables: (seq, record_id, row), rows as COPY structs (``bulk``, but
    officers) or undecoded JSON. The fast path decodes the whole body in one typed pass;
    should any row fail it, the body is read table by table and row by row, and a row that
    cannot be read (or belongs to a table posts may not push) becomes an ``Unreadable``
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
                (seq, i, Unreadable("forbidden_record", why, row)) for seq, i, row in rows
            ]
        elif bulk and record_type != OFFICER:
            decoded[record_type] = [
                (seq, i, struct_or_unreadable(record_type, row)) for seq, i, row in rows
            ]
        else:
            decoded[record_type] = list(rows)
    return decoded, False


def struct_or_unreadable(record_type: str, raw: msgspec.Raw) -> Any:
    try:
        return msgspec.json.decode(raw, type=copy_rows(record_type).struct)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        return Unreadable("malformed", f"{record_type}: {exc}", raw)
