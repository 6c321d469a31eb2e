"""National ingest: verify a post's signed batch, upsert its records idempotently in order,
and acknowledge the highest contiguous seq stored. Rejections are audited."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

import asyncpg
import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.audit import audit
from registry.models import utcnow
from registry.node import Node
from registry.photos import SanitisedPhoto, write_photo
from registry.receipts import public_key_from_text
from sync.batches import BatchHeader, BatchRejected, check_range, verified_body
from sync.models import IngestState, SyncPeer
from sync.records import (
    DICTIONARIES,
    LOCAL_COUNTERS,
    POST_RECORD_TYPES,
    add_dictionary_keys,
    copy_rows,
    dangling_reference,
    decode_row,
    defer_dictionaries,
    insert_missing,
    insert_missing_copied,
    upsert_authoritative,
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


def _claimed_origin(origin: str, record_id: str, claimed: Any) -> None:
    if claimed != origin:
        raise BatchRejected(
            "forged_origin", f"record {record_id} claims origin {claimed}, sent by {origin}"
        )


def _decoded_row(origin: str, record_type: str, record_id: str, raw: msgspec.Raw) -> Any:
    """Decode one record's row into a column dict, refusing rows that claim another origin
    than the post that signed the batch."""
    try:
        row = decode_row(record_type, raw)
    except (msgspec.ValidationError, msgspec.DecodeError, ValueError) as exc:
        raise BatchRejected("malformed", f"record {record_id}: {exc}") from exc
    claimed = row.get("home_post") if record_type == "officer" else row.get("origin")
    _claimed_origin(origin, record_id, claimed)
    return row


def _copy_table(
    origin: str, record_type: str, rows: list[tuple[int, str, Any]]
) -> list[tuple[int, Any]]:
    """One table's decoded rows as (seq, COPY tuple), with the same origin check as
    ``_decoded_row``."""
    converter = copy_rows(record_type)
    try:
        tuples = converter.tuples([row for _, _, row in rows])
    except ValueError as exc:
        raise BatchRejected("malformed", f"{record_type} rows: {exc}") from exc
    owner = converter.owner_index
    if owner is not None:
        forged = next((i for i, row in enumerate(tuples) if row[owner] != origin), None)
        if forged is not None:
            _claimed_origin(origin, rows[forged][1], tuples[forged][owner])
    return list(zip([seq for seq, _, _ in rows], tuples, strict=True))


def _bulk_row_type(record_type: str) -> Any:
    return msgspec.Raw if record_type == OFFICER else copy_rows(record_type).struct


@cache
def _bulk_decoder() -> msgspec.json.Decoder[Any]:
    """Decodes a whole batch body in one pass: every table's rows straight into its COPY
    struct (officers, upserted as dicts, stay undecoded). Tables posts may not push are
    unknown fields, so they fail the decode."""
    fields = [
        (record_type, list[tuple[int, str, _bulk_row_type(record_type)]], [])  # type: ignore[misc]
        for record_type in POST_RECORD_TYPES
    ]
    body = msgspec.defstruct("BatchBody", fields, gc=False, forbid_unknown_fields=True)
    return msgspec.json.Decoder(body)


def _forbidden(tables: Iterable[str]) -> None:
    for record_type in tables:
        if record_type not in POST_RECORD_TYPES:
            raise BatchRejected("forbidden_record", f"{record_type} may not be pushed")


def _decode_tables(raw: bytes, *, bulk: bool) -> dict[str, list[tuple[int, str, Any]]]:
    """The body's tables: (seq, record_id, row) with rows as COPY structs (``bulk``, but
    officers) or undecoded JSON. Raises BatchRejected."""
    generic = dict[str, list[tuple[int, str, msgspec.Raw]]]
    try:
        if bulk:
            body = _bulk_decoder().decode(raw)
            return {t: rows for t in POST_RECORD_TYPES if (rows := getattr(body, t))}
        tables = msgspec.json.decode(raw, type=generic)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        try:  # say which table is forbidden, if that is what failed
            _forbidden(msgspec.json.decode(raw, type=dict[str, msgspec.Raw]))
        except (msgspec.ValidationError, msgspec.DecodeError):
            pass
        raise BatchRejected("malformed", f"the batch body is unreadable: {exc}") from exc
    _forbidden(tables)
    return tables


@dataclass(frozen=True)
class ReceivedBatch:
    """A verified batch, decoded table by table: (seq, row) pairs in the sender's order.

    Rows are COPY tuples on PostgreSQL (``bulk``), column dicts elsewhere and for officers.
    Receiving takes no lock, so national decodes one batch while it applies the one before.
    """

    header: BatchHeader
    tables: dict[str, list[tuple[int, Any]]]
    bulk: bool
    _keys: dict[tuple[str, str], set[str]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

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
    origin = header.origin
    raw = verified_body(header, signature, body, sender_key, destination=destination)
    decoded = _decode_tables(raw, bulk=bulk)
    check_range(header, ([seq for seq, _, _ in rows] for rows in decoded.values()))
    tables: dict[str, list[tuple[int, Any]]] = {}
    for record_type, rows in decoded.items():
        if bulk and record_type != "officer":
            tables[record_type] = _copy_table(origin, record_type, rows)
        else:
            tables[record_type] = [
                (seq, _decoded_row(origin, record_type, record_id, row))
                for seq, record_id, row in rows
            ]
    return ReceivedBatch(header, tables, bulk)


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
    are upserted. References are checked afterwards (``_check_references``)."""
    stored = 0
    for record_type in record_types:
        rows = [row for seq, row in batch.tables.get(record_type, []) if seq > after]
        if not rows:
            continue
        stored += len(rows)
        if record_type == OFFICER:
            await upsert_authoritative(session, record_type, rows)
        elif batch.bulk:
            await _copy_rows(session, record_type, rows)
        else:
            await insert_missing(session, record_type, rows)
    return _Stored(after, stored)


async def _copy_rows(session: AsyncSession, record_type: str, rows: list[Any]) -> None:
    try:
        await insert_missing_copied(session, record_type, copy_rows(record_type).names, rows)
    except (
        asyncpg.DataError,
        asyncpg.IntegrityConstraintViolationError,
        ValueError,  # asyncpg refusing a value while encoding it (an id that is not one)
    ) as exc:
        raise BatchRejected("malformed", f"{record_type} rows refused: {exc}") from exc


async def _check_references(
    session: AsyncSession,
    batch: ReceivedBatch,
    after: int,
    ancestors: Sequence[ReceivedBatch] = (),
) -> None:
    """Refuse the batch if a row past seq ``after`` refers to a row national lacks (bulk
    path; foreign keys enforce it elsewhere). References to rows of the batch itself or of
    ``ancestors`` (its predecessors still being applied, which it commits after or fails
    with) hold without a lookup; the rest must be committed."""
    if not batch.bulk:
        return
    in_batch = _pending_keys([batch, *ancestors])
    for record_type in POST_RECORD_TYPES:
        rows = [row for seq, row in batch.tables.get(record_type, []) if seq > after]
        if record_type == OFFICER or not rows:
            continue
        names = copy_rows(record_type).names
        dangling = await dangling_reference(session, record_type, names, rows, in_batch)
        if dangling:
            raise BatchRejected("malformed", dangling)


def _dictionary_keys(batch: ReceivedBatch, after: int) -> dict[str, set[str]]:
    """The keys the rows past seq ``after`` bring to each trigger-kept dictionary."""
    keys: dict[str, set[str]] = {}
    for table, _, _, source, column in DICTIONARIES:
        index = copy_rows(source).names.index(column)
        rows = batch.tables.get(source, [])
        keys[table] = {row[index] for seq, row in rows if seq > after and row[index] is not None}
    return keys


def _crossing_ids(batch: ReceivedBatch, after: int) -> list[str]:
    key: Any = copy_rows("crossing").names.index("id") if batch.bulk else "id"
    return [str(row[key]) for seq, row in batch.tables.get("crossing", []) if seq > after]


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
    *,
    references_checked: bool = False,
) -> IngestResult:
    """Check the references of the rows past what national held, queue new crossings for
    the partner country, and advance the sender's state (the caller commits)."""
    held = state.contiguous_seq
    if not references_checked:
        await _check_references(session, batch, held)
    if batch.bulk:
        await add_dictionary_keys(session, _dictionary_keys(batch, stored.after))
    if node.settings.agreement_file:  # the agreement filters at send time
        from sync.exchange import queue_for_partner

        await queue_for_partner(session, _crossing_ids(batch, held))
    applied = stored.rows
    if held > stored.after:  # stored more than was new: count only what was new
        applied = sum(1 for rows in batch.tables.values() for seq, _ in rows if seq > held)
    state.contiguous_seq = batch.header.seq_to
    state.batches_accepted += 1
    state.last_batch_at = utcnow()
    return IngestResult(state.contiguous_seq, applied)


async def apply_received(
    session: AsyncSession, *, node: Node, batch: ReceivedBatch, turn: Turn | None = None
) -> IngestResult:
    """Apply a received batch inside the caller's transaction; raise BatchGap if it does
    not follow what national holds from that post (a gap) or holds nothing new (a replay)."""
    await approved_sender(session, batch.header.origin)  # still approved now that it applies
    state = await _following_state(session, batch.header)
    if batch.bulk:
        await defer_dictionaries(session)
    stored = await _store(session, batch, state.contiguous_seq)
    if turn is not None:
        turn.numbered()
    return await _complete(session, node, batch, state, stored)


async def apply_overlapped(
    session: AsyncSession, *, node: Node, batch: ReceivedBatch, turn: Turn
) -> IngestResult:
    """``apply_received`` for a batch whose predecessor this process is still applying
    (``turn.predecessor``), in parallel with it; it commits after it or not at all.

    The batch stores its rows at once and checks their references (rows of the
    predecessors still being applied count as present: if one fails, this batch fails
    too). Its audit events, which national numbers on arrival (each post's chain is
    verified in that order), wait until the predecessor has stored its own. Then, once the
    predecessor is done, the batch takes the sender's state lock: if the predecessor
    failed, the batch no longer follows and is refused as a gap, rolling back what it
    stored.

    Each wait is bounded (``OVERLAP_WAIT_S``): should the predecessor wait in PostgreSQL
    for something this batch holds, the database cannot see that cycle, so this batch
    gives up, rolls back, and the sender resends it.
    """
    assert turn.predecessor is not None
    header = batch.header
    await approved_sender(session, header.origin)
    await defer_dictionaries(session)  # overlapped batches are always copied (PostgreSQL)
    stored = await _store(session, batch, header.after_seq, IN_ANY_ORDER)
    await _check_references(session, batch, header.after_seq, turn.ancestors())
    await _await_predecessor(session, header, turn.predecessor.numbered)
    ordered = await _store(session, batch, header.after_seq, IN_ARRIVAL_ORDER)
    turn.numbered()
    await _await_predecessor(session, header, turn.predecessor.done)
    state = await _following_state(session, header)
    stored = replace(stored, rows=stored.rows + ordered.rows)
    return await _complete(session, node, batch, state, stored, references_checked=True)


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


async def ingest_photo(
    session: AsyncSession, *, node: Node, header: BatchHeader, signature: bytes, body: bytes
) -> str:
    """Store a photo file pushed by a post after checking its signature and hash."""
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
    write_photo(node.settings.photo_dir, SanitisedPhoto(sha, body, 0, 0))
    return sha
