"""Quarantine of received records a node cannot store.

National validates a post's batch record by record (and the partner's). A record it cannot
store (unreadable, text the database refuses, a value over its column, a claimed origin
that is not the sender, a row the sender does not own, a reference to a row national
lacks, a constraint) is kept in ``sync_quarantine`` with its reason and its payload as
received; the rest of the batch is stored, and the acknowledgement moves past it (national
holds everything up to the acknowledged seq either stored or quarantined).

This module holds what both sides share, and both of national's receivers (a post's
batches, ``sync.ingest``; the partner's, ``sync.exchange``): the cheap, vectorised text
checks national runs on a whole table before COPY, the quarantine entries and their
storage, the admin's list on national, and the post's copy of national's answers about its
own records (shown by ``sync status``, ``/api/sync/status`` and the pages' banner). The
admin's retry and discard, which go back through either receiver, are
``sync.ingest.quarantine``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any

import msgspec
from sqlalchemy import String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeDecorator
from sqlmodel import col

from registry.models import utcnow
from sync.bulk import insert_missing
from sync.models import SyncQuarantine
from sync.records import table_for, text_length

PENDING, RETRIED, DISCARDED = "pending", "retried", "discarded"
PHOTO_FILE = "photo_file"  # a photo's file, pushed apart from its row
DETAIL_MAX = 500
RECORD_ID_MAX = 80
MIRRORED = 500  # quarantine entries national tells a post about, newest first

# Characters no stored text may hold: NUL (PostgreSQL refuses it in text) and the other C0
# controls but tab, line feed and carriage return (remarks and notes may hold lines).
_REFUSED_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# The same characters as bytes, and every other byte: each refused character is one byte in
# UTF-8, and every byte of a multi-byte character is 0x80 or above.
_REFUSED_BYTES = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])
_OTHER_BYTES = bytes(b for b in range(256) if b not in _REFUSED_BYTES)


def holds_refused_text(text: str) -> bool:
    """Whether ``text`` holds a character ``_REFUSED_TEXT`` matches: its UTF-8 form with
    every other byte deleted, in C (about eight times faster than the regular expression
    over a whole column joined)."""
    return bool(text.encode("utf-8", "surrogatepass").translate(None, _OTHER_BYTES))


@dataclass(frozen=True)
class Quarantined:
    """One record a node could not store: where it came from, why, and as it came."""

    seq: int
    record_type: str
    record_id: str
    reason: str
    detail: str
    payload: str | None = None

    def answer(self) -> dict[str, Any]:
        """What the sender is told (no payload: it has it)."""
        return {
            "seq": self.seq,
            "record_type": self.record_type,
            "record_id": self.record_id,
            "reason": self.reason,
            "detail": self.detail,
        }


# ------------------------------------------------------------------ text checks
@cache
def _text_limits(record_type: str) -> tuple[tuple[str, int | None], ...]:
    """(column, max length or None) of a table's text columns."""
    limits = []
    for column in table_for(record_type).columns:
        column_type = column.type
        if isinstance(column_type, TypeDecorator):
            column_type = column_type.impl_instance  # AutoString -> String
        if isinstance(column_type, String):
            limits.append((column.name, text_length(column)))
    return tuple(limits)


def refused_text(value: str, limit: int | None) -> str | None:
    """Why a text value cannot be stored (a control character, or longer than the column),
    or None. Uses the shared clean-text rule when the project has one."""
    if _REFUSED_TEXT.search(value):
        return "a control character (NUL or C0) the database must not store"
    if limit is not None and len(value) > limit:
        return f"{len(value)} characters, over the column's {limit}"
    return None


def bad_text_rows(
    record_type: str,
    names: Sequence[str],
    column: Callable[[str], Sequence[Any]],
    *,
    lengths_checked: bool = False,
) -> dict[int, str]:
    """Rows (by index) whose text cannot be stored, and why, for one table's rows given
    column by column (``column(name)`` holds that column of every row, for the columns in
    ``names``). ``lengths_checked``: the decoder already held every value to its column's
    length (``sync.records.CopyRows.bounded``).

    Vectorised: each text column is checked whole first (its longest value, and its values
    joined, ``holds_refused_text``), which costs a few C-level passes; only a column that
    fails is scanned row by row to name the rows."""
    bad: dict[int, str] = {}
    present = set(names)
    for name, limit in _text_limits(record_type):
        if name not in present:
            continue
        values = column(name)
        too_long = (
            not lengths_checked
            and limit is not None
            and max(map(len, filter(None, values)), default=0) > limit
        )
        if not too_long and not holds_refused_text("".join(filter(None, values))):
            continue
        for row, value in enumerate(values):
            if isinstance(value, str) and row not in bad:
                why = refused_text(value, limit)
                if why:
                    bad[row] = f"{record_type}.{name}: {why}"
    return bad


# ------------------------------------------------------------------ payloads
def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, uuid.UUID | datetime | date):
        return str(value) if isinstance(value, uuid.UUID) else value.isoformat()
    return value


def payload_text(
    row: Any, names: Sequence[str] | None = None, json_columns: Iterable[int] = ()
) -> str:
    """A stored row back as the JSON payload it travelled as (for a quarantine entry): a
    column dict, a COPY tuple (with ``names``; JSON columns given by index are raw JSON
    text) or undecoded JSON."""
    if isinstance(row, msgspec.Raw | bytes):
        return safe_text(bytes(row).decode("utf-8", errors="backslashreplace"))
    if isinstance(row, str):
        return safe_text(row)
    if names is not None:
        raw = set(json_columns)
        row = {
            n: msgspec.Raw(v.encode()) if i in raw and isinstance(v, str) else _plain(v)
            for i, (n, v) in enumerate(zip(names, row, strict=True))
        }
    elif isinstance(row, dict):
        row = {k: _plain(v) for k, v in row.items()}
    return msgspec.json.encode(row).decode()


def safe_text(text: str, limit: int | None = None) -> str:
    """Text the database stores whatever it holds: NUL written as ``\\u0000``."""
    text = text.replace("\x00", "\\u0000")
    return text[:limit] if limit else text


def quarantined(
    seq: int, record_type: str, record_id: Any, reason: str, detail: str, payload: str | None
) -> Quarantined:
    return Quarantined(
        seq,
        safe_text(str(record_type), 40),
        safe_text(str(record_id), RECORD_ID_MAX),
        reason,
        safe_text(detail, DETAIL_MAX),
        payload,
    )


# ------------------------------------------------------------------ storage
async def keep(session: AsyncSession, origin: str, entries: Sequence[Quarantined]) -> None:
    """Store quarantine entries from ``origin`` in the caller's transaction (a record
    already quarantined, e.g. sent again, is kept once)."""
    if not entries:
        return
    now = utcnow()
    await insert_missing(
        session,
        "sync_quarantine",
        [
            {
                "origin": origin,
                "seq": e.seq,
                "record_type": e.record_type,
                "record_id": e.record_id,
                "reason": e.reason,
                "detail": e.detail,
                "payload": e.payload,
                "received_at": now,
                "status": PENDING,
                "resolved_by": None,
                "resolved_at": None,
            }
            for e in entries
        ],
    )


def entry_view(entry: SyncQuarantine, *, with_payload: bool = False) -> dict[str, Any]:
    view = {
        "id": entry.id,
        "origin": entry.origin,
        "seq": entry.seq,
        "record_type": entry.record_type,
        "record_id": entry.record_id,
        "reason": entry.reason,
        "detail": entry.detail,
        "received_at": entry.received_at.isoformat(),
        "status": entry.status,
        "resolved_by": entry.resolved_by,
        "resolved_at": entry.resolved_at.isoformat() if entry.resolved_at else None,
    }
    if with_payload:
        view["payload"] = entry.payload
    return view


async def list_quarantine(
    session: AsyncSession,
    *,
    origin: str | None = None,
    status: str | None = PENDING,
    limit: int = MIRRORED,
) -> list[SyncQuarantine]:
    query = select(SyncQuarantine).order_by(SyncQuarantine.id.desc()).limit(limit)  # type: ignore[union-attr]
    if origin is not None:
        query = query.where(col(SyncQuarantine.origin) == origin)
    if status is not None:
        query = query.where(col(SyncQuarantine.status) == status)
    return list((await session.scalars(query)).all())


# ------------------------------------------------------------------ the post's copy
async def note_answers(
    session: AsyncSession, origin: str, answers: Iterable[dict[str, Any]]
) -> int:
    """On a post: keep what national says it quarantined of this post's records (from a
    batch's acknowledgement or from national's list), updating the status of entries
    already known. Returns how many entries are new or changed."""
    changed = 0
    for answer in answers:
        seq, record_type = int(answer["seq"]), str(answer["record_type"])[:40]
        entry = await session.scalar(
            select(SyncQuarantine).where(
                col(SyncQuarantine.origin) == origin,
                col(SyncQuarantine.seq) == seq,
                col(SyncQuarantine.record_type) == record_type,
            )
        )
        status = str(answer.get("status") or PENDING)
        if entry is None:
            entry = SyncQuarantine(
                origin=origin,
                seq=seq,
                record_type=record_type,
                record_id=safe_text(str(answer.get("record_id", "")), RECORD_ID_MAX),
                reason=safe_text(str(answer.get("reason", "")), 40),
                detail=safe_text(str(answer.get("detail", "")), DETAIL_MAX),
                status=status if status in (PENDING, RETRIED, DISCARDED) else PENDING,
            )
            session.add(entry)
            changed += 1
        elif entry.status != status and status in (PENDING, RETRIED, DISCARDED):
            entry.status = status
            entry.reason = safe_text(str(answer.get("reason", entry.reason)), 40)
            entry.resolved_by = safe_text(str(answer.get("resolved_by") or ""), 64) or None
            entry.resolved_at = utcnow() if status != PENDING else None
            changed += 1
    return changed


async def pending_for_status(session: AsyncSession, origin: str) -> list[dict[str, Any]]:
    """Pending quarantine entries of ``origin``, as ``sync status`` shows them."""
    return [
        {k: v for k, v in entry_view(e).items() if k not in ("resolved_by", "resolved_at")}
        for e in await list_quarantine(session, origin=origin)
    ]


def answers_of(entries: Iterable[Quarantined]) -> list[dict[str, Any]]:
    return [e.answer() for e in entries]
