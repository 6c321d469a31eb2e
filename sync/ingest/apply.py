"""Applying a received batch on national: its rows past what national holds from its post
are stored table by table in the sender's order, and the sender's ingest state advances to
acknowledge the highest contiguous seq held (stored or quarantined).

A post keeps batches in flight, so on PostgreSQL the next batch is applied in parallel with
the one before and commits after it (``applying``, ``apply_overlapped``). A quarantined
record is applied again through the same checks and store (``retry_record``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from registry.db import Database
from registry.models import utcnow
from registry.node import Node
from sync.batches import BATCH_FORMAT, BatchHeader
from sync.bulk import DICTIONARIES, add_dictionary_keys, defer_dictionaries
from sync.exchange.service import queue_for_partner
from sync.ingest.decode import OFFICER, Unreadable, struct_or_unreadable
from sync.ingest.photos import store_photo_file
from sync.ingest.store import check_references, copy_new_rows, insert_new_rows, upsert_officers
from sync.ingest.validation import ReceivedBatch, approved_sender, validated_batch
from sync.models import IngestState
from sync.quarantine import PHOTO_FILE, Quarantined, keep, quarantined
from sync.receiver import BatchGap, held_seq, locked_ingest_state
from sync.records import LOCAL_COUNTERS, POST_RECORD_TYPES, copy_rows

OVERLAP_WAIT_S = 10.0  # how long a batch applied in parallel waits for its predecessor
# Numbered by national as they arrive (each post's audit chain is verified in that order):
# a batch applied in parallel stores these only once its predecessor has committed.
IN_ARRIVAL_ORDER = tuple(t for t in POST_RECORD_TYPES if t in LOCAL_COUNTERS)
IN_ANY_ORDER = tuple(t for t in POST_RECORD_TYPES if t not in LOCAL_COUNTERS)


@dataclass(frozen=True)
class IngestResult:
    ack: int
    applied: int
    quarantined: list[Quarantined] = field(default_factory=list)


@dataclass(frozen=True)
class _Applying:
    """A batch this process is applying, and how far it has gone."""

    batch: ReceivedBatch
    numbered: asyncio.Event  # its rows national numbers on arrival are stored (or it ended)
    done: asyncio.Event  # committed or failed


class BatchesInHand:
    """The batches one national node is applying now, by (origin, seq_to): how a batch
    finds the predecessor it may overlap with. One per node (``in_hand``), not per process:
    two nodes in one process (tests, a bench) never see each other's batches, and a batch
    applied by another worker process is simply not found (it is then applied serially
    after it, which the ingest-state lock makes safe)."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, int], _Applying] = {}

    @contextmanager
    def applying(self, batch: ReceivedBatch) -> Iterator[Turn]:
        """Mark ``batch`` as being applied until the block exits, and yield its turn: with
        its predecessor (the batch ending at its ``after_seq``) if this node is applying
        that one now and the two may overlap."""
        header = batch.header
        key = (header.origin, header.seq_to)
        predecessor = self.entries.get((header.origin, header.after_seq))
        if predecessor is not None and not _may_overlap(batch, predecessor.batch):
            predecessor = None
        mine = None if key in self.entries else _Applying(batch, asyncio.Event(), asyncio.Event())
        if mine is not None:
            self.entries[key] = mine
        try:
            yield Turn(predecessor, mine, self)
        finally:
            if mine is not None:
                del self.entries[key]
                mine.numbered.set()
                mine.done.set()


_IN_HAND: weakref.WeakKeyDictionary[Database, BatchesInHand] = weakref.WeakKeyDictionary()


def in_hand(node: Node) -> BatchesInHand:
    """The batches ``node`` is applying (created with the node's database, gone with it)."""
    found = _IN_HAND.get(node.db)
    if found is None:
        found = _IN_HAND[node.db] = BatchesInHand()
    return found


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


@dataclass(frozen=True)
class Turn:
    """A batch's place among its post's batches this process is applying: the predecessor
    it may overlap with (None: apply it on its own), and its own entry (None when the
    same range is already being applied, e.g. a resend)."""

    predecessor: _Applying | None
    mine: _Applying | None
    batches: BatchesInHand

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
            entry = self.batches.entries.get((header.origin, header.after_seq))
        return chain


MAX_ANCESTORS = 64


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
    are upserted. A row the database refuses, or whose key belongs to another origin, is
    quarantined (and with it the rows of the batch that refer to it). References are
    checked before (``check_references``)."""
    stored = 0
    for record_type in record_types:
        rows = batch.rows(record_type, after)
        if not rows:
            continue
        if record_type == OFFICER:
            await upsert_officers(session, batch, rows)
        elif batch.bulk:
            await copy_new_rows(session, batch, record_type, rows)
        else:
            await insert_new_rows(session, batch, record_type, rows)
        excluded = batch.excluded
        stored += len(rows) - (sum(seq in excluded for seq, _ in rows) if excluded else 0)
    return _Stored(after, stored)


def _dictionary_keys(batch: ReceivedBatch, after: int) -> dict[str, set[str]]:
    """The keys the rows past seq ``after`` bring to each trigger-kept dictionary."""
    keys: dict[str, set[str]] = {}
    for table, _, _, source, column in DICTIONARIES:
        index = copy_rows(source).names.index(column)
        rows = batch.rows(source, after)
        keys[table] = {row[index] for _, row in rows if row[index] is not None}
    return keys


def _crossing_ids(batch: ReceivedBatch, after: int) -> list[str]:
    key: Any = copy_rows("crossing").names.index("id") if batch.bulk else "id"
    return [str(row[key]) for _, row in batch.rows("crossing", after)]


async def _following_state(session: AsyncSession, header: BatchHeader) -> IngestState:
    """The sender's ingest state, locked; BatchGap unless the batch follows what national
    holds (else a gap) and holds something new (else a replay)."""
    state = await locked_ingest_state(session, header.origin)
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
) -> IngestResult:
    """Queue new crossings for the partner country, keep what was quarantined, and
    advance the sender's state past it (the caller commits)."""
    held = state.contiguous_seq
    if batch.bulk:
        await add_dictionary_keys(session, _dictionary_keys(batch, stored.after))
    if node.settings.agreement_file:  # the agreement filters at send time
        await queue_for_partner(session, _crossing_ids(batch, held))
    kept = batch.quarantine_past(held)
    await keep(session, batch.header.origin, kept)
    applied = stored.rows
    if held > stored.after:  # stored more than was new: count only what was new
        applied = sum(len(batch.rows(table, held)) for table in batch.tables)
    state.contiguous_seq = batch.header.seq_to
    state.batches_accepted += 1
    state.last_batch_at = utcnow()
    return IngestResult(state.contiguous_seq, applied, kept)


async def apply_received(
    session: AsyncSession, *, node: Node, batch: ReceivedBatch, turn: Turn | None = None
) -> IngestResult:
    """Apply a received batch inside the caller's transaction; raise BatchGap if it does
    not follow what national holds from that post (a gap) or holds nothing new (a replay)."""
    await approved_sender(session, batch.header.origin)  # still approved now that it applies
    state = await _following_state(session, batch.header)
    if batch.bulk:
        await defer_dictionaries(session)
    await check_references(session, batch, state.contiguous_seq)
    stored = await _store(session, batch, state.contiguous_seq)
    if turn is not None:
        turn.numbered()
    return await _complete(session, node, batch, state, stored)


async def apply_overlapped(
    session: AsyncSession, *, node: Node, batch: ReceivedBatch, turn: Turn
) -> IngestResult:
    """``apply_received`` for a batch whose predecessor this process is still applying
    (``turn.predecessor``), in parallel with it; it commits after it or not at all.

    The batch checks its references (rows of the predecessors still being applied count
    as present: if one fails, this batch fails too) and stores its rows at once. Its audit
    events, which national numbers on arrival (each post's chain is verified in that
    order), wait until the predecessor has stored its own. Then, once the predecessor is
    done, the batch takes the sender's state lock: if the predecessor failed, the batch
    no longer follows and is refused as a gap, rolling back what it stored. If the
    predecessor quarantined rows while it applied (rows this batch may have counted as
    present), this batch is refused as a gap too, and the post resends it to be applied
    on its own.

    Each wait is bounded (``OVERLAP_WAIT_S``): should the predecessor wait in PostgreSQL
    for something this batch holds, the database cannot see that cycle, so this batch
    gives up, rolls back, and the sender resends it.
    """
    assert turn.predecessor is not None
    header = batch.header
    await approved_sender(session, header.origin)
    await defer_dictionaries(session)  # overlapped batches are always copied (PostgreSQL)
    await check_references(session, batch, header.after_seq, turn.ancestors())
    stored = await _store(session, batch, header.after_seq, IN_ANY_ORDER)
    await _await_predecessor(session, header, turn.predecessor.numbered)
    ordered = await _store(session, batch, header.after_seq, IN_ARRIVAL_ORDER)
    turn.numbered()
    await _await_predecessor(session, header, turn.predecessor.done)
    if turn.predecessor.batch.late:
        raise BatchGap(await held_seq(session, header.origin), "gap")
    state = await _following_state(session, header)
    stored = replace(stored, rows=stored.rows + ordered.rows)
    return await _complete(session, node, batch, state, stored)


async def _await_predecessor(
    session: AsyncSession, header: BatchHeader, event: asyncio.Event
) -> None:
    try:
        await asyncio.wait_for(event.wait(), OVERLAP_WAIT_S)
    except TimeoutError:
        raise BatchGap(await held_seq(session, header.origin), "gap") from None


async def retry_record(session: AsyncSession, *, node: Node, entry: Any) -> Quarantined | None:
    """Apply a quarantined record from a post again, through the same checks and the same
    idempotent store as a batch (a post's ingest state is not touched). Returns None once
    stored, or why it is still refused."""
    if entry.record_type == PHOTO_FILE:
        body = base64.b64decode(entry.payload or "")
        if hashlib.sha256(body).hexdigest() != entry.record_id:
            why = "the kept file does not match its sha256"
            return quarantined(entry.seq, PHOTO_FILE, entry.record_id, "altered", why, None)
        refusal = store_photo_file(node, entry.record_id, body)
        if refusal is None:
            return None
        return quarantined(entry.seq, PHOTO_FILE, entry.record_id, "not_an_image", refusal, None)
    bulk = node.db.engine.dialect.name == "postgresql"
    record_type = entry.record_type
    raw = msgspec.Raw((entry.payload or "null").encode())
    row: Any = raw
    if record_type not in POST_RECORD_TYPES:
        row = Unreadable("forbidden_record", f"{record_type} may not be pushed", raw)
    elif bulk and record_type != OFFICER:
        row = struct_or_unreadable(record_type, raw)
    header = BatchHeader(
        BATCH_FORMAT,
        "records",
        entry.origin,
        node.settings.node_code,
        entry.seq - 1,
        entry.seq,
        entry.seq,
        1,
        "",
    )
    batch = validated_batch(header, {record_type: [(entry.seq, entry.record_id, row)]}, bulk=bulk)
    await check_references(session, batch, 0)
    await _store(session, batch, 0)
    if node.settings.agreement_file and not batch.quarantine_past(0):
        await queue_for_partner(session, _crossing_ids(batch, 0))
    found = batch.quarantine_past(0)
    return found[0] if found else None
