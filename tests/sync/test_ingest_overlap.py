"""National applies a post's consecutive batches in parallel on PostgreSQL: the second
stores its rows while the first is still being applied, then commits after it, or is
refused as a gap (leaving nothing behind) when the first fails or never finishes.

The national node here is in-process on a real PostgreSQL database; the batches are
genuinely signed and go through the same receive and apply path as the HTTP endpoint.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import asyncpg
import pytest
from sqlalchemy.exc import DBAPIError

from registry.audit_verification import verify_chain
from registry.models import Crossing, Officer, TravelDocument, Traveller
from registry.node import Node
from sync.ingest import apply as ingest  # holds _store and OVERLAP_WAIT_S
from sync.ingest import controller as api  # holds _apply_in_order
from sync.ingest.apply import BatchesInHand, in_hand
from sync.ingest.store import is_deadlock
from sync.ingest.validation import ReceivedBatch
from sync.receiver import BatchGap
from tests.support.ingest import (
    GOGUI,
    Outbox,
    count_rows,
    new_crossing,
    received_batch,
    travellers_with_crossings,
)


@dataclass
class ThreeBatches:
    """The officer (applied first), people with their crossings, then more crossings of
    the same people (referring to rows of the batch before) and new people."""

    officer: ReceivedBatch
    first: ReceivedBatch
    second: ReceivedBatch


def _three_batches(*, dangling: bool = False) -> ThreeBatches:
    """``dangling``: the second batch also carries a crossing of a traveller never sent."""
    outbox = Outbox([])
    officer = Officer(
        username="gogui1", full_name="A", role="officer", home_post=GOGUI, password_hash="x"
    )
    officer_run = outbox.add(officer)
    first = travellers_with_crossings(outbox, officer, 0, 20)
    people = [
        (Traveller.model_validate(p1[3]), TravelDocument.model_validate(p2[3]))
        for p1, p2 in zip(first[0::3], first[1::3], strict=True)
    ]
    corrected = Crossing.model_validate(first[2][3])  # the first person's crossing, corrected
    first += outbox.audited(officer, "first batch")
    second = outbox.add(*(new_crossing(officer, t, d) for t, d in people[1:]))
    correction = new_crossing(officer, *people[0])
    correction.version, correction.supersedes = 2, corrected.id
    correction.correction_reason = "wrong direction"
    second += outbox.add(correction)
    second += outbox.audited(officer, "second batch")
    second += travellers_with_crossings(outbox, officer, 100, 5)
    if dangling:
        stranger = Traveller(origin=GOGUI, surname="X", given_names="Y", name_key="x y")
        second += outbox.add(new_crossing(officer, stranger, people[1][1]))
    return ThreeBatches(
        received_batch(officer_run, 0),
        received_batch(first, officer_run[-1][0]),
        received_batch(second, first[-1][0]),
    )


async def _stored_ahead(batch: ReceivedBatch, spy: list[int]) -> None:
    """Wait until ``batch`` has stored its rows (seen by a spy on the real ``_store``)."""
    for _ in range(200):
        if batch.header.seq_to in spy:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the overlapped batch never stored its rows")


@pytest.fixture
def store_spy(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The seq_to of each batch whose rows ``_store`` has written, in order."""
    stored: list[int] = []
    real = ingest._store

    async def spying(session: Any, batch: ReceivedBatch, *args: Any) -> Any:
        result = await real(session, batch, *args)
        stored.append(batch.header.seq_to)
        return result

    monkeypatch.setattr(ingest, "_store", spying)
    return stored


async def test_the_next_batch_stores_while_its_predecessor_applies_and_commits_after_it(
    national: Node, store_spy: list[int]
) -> None:
    batches = _three_batches()
    await api._apply_in_order(national, batches.officer)
    with in_hand(national).applying(batches.first) as turn:
        assert turn.predecessor is None  # the officer batch is done: nothing to overlap with
        second = asyncio.create_task(api._apply_in_order(national, batches.second))
        await _stored_ahead(batches.second, store_spy)
        assert not second.done()  # stored, now waiting for the first batch
        assert await count_rows(national, "SELECT count(*) FROM crossing") == 0
        first = await api._apply_in_order(national, batches.first)
        assert first.ack == batches.first.header.seq_to and first.applied == 60 + 1
        assert not second.done()  # the first is committed, but not yet marked done
    result = await asyncio.wait_for(second, 10)
    officer, first_to, second_to = (b.header.seq_to for b in vars(batches).values())
    assert store_spy == [officer, second_to, first_to, second_to]  # its audit events last
    assert result.ack == batches.second.header.seq_to and result.applied == 20 + 15 + 1
    assert await count_rows(national, "SELECT count(*) FROM crossing") == 20 + 20 + 5
    assert await count_rows(national, "SELECT count(DISTINCT id) FROM crossing") == 45
    assert await count_rows(national, "SELECT count(*) FROM traveller") == 25
    state = await count_rows(national, "SELECT contiguous_seq FROM ingest_state")
    assert state == batches.second.header.seq_to
    # the dictionaries the deferred triggers keep were filled by the ingest itself
    assert await count_rows(national, "SELECT count(*) FROM superseded_crossing") == 1
    unlisted = (
        "SELECT count(*) FROM traveller t WHERE NOT EXISTS "
        "(SELECT 1 FROM traveller_name_key k WHERE k.name_key = t.name_key)"
    )
    assert await count_rows(national, "SELECT count(DISTINCT name_key) FROM traveller_name_key") > 0
    assert await count_rows(national, unlisted) == 0
    # audit events are numbered in the post's order, though the second batch stored first
    async with national.db.sessions() as session:
        verdict = await verify_chain(session, GOGUI)
    assert verdict.ok and verdict.events_checked == 2


async def test_when_the_predecessor_fails_the_batch_is_a_gap_and_leaves_nothing(
    national: Node, store_spy: list[int]
) -> None:
    batches = _three_batches()
    await api._apply_in_order(national, batches.officer)
    with in_hand(national).applying(batches.first):  # the first batch fails: it never commits
        second = asyncio.create_task(api._apply_in_order(national, batches.second))
        await _stored_ahead(batches.second, store_spy)
    with pytest.raises(BatchGap) as refused:
        await asyncio.wait_for(second, 10)
    assert refused.value.reason == "gap" and refused.value.ack == batches.officer.header.seq_to
    assert await count_rows(national, "SELECT count(*) FROM crossing") == 0
    assert await count_rows(national, "SELECT count(*) FROM traveller") == 0
    # the post resends from the acknowledgement: both batches arrive, once
    await api._apply_in_order(national, batches.first)
    assert (await api._apply_in_order(national, batches.second)).applied == 36
    assert await count_rows(national, "SELECT count(*) FROM crossing") == 45


async def test_a_predecessor_that_never_finishes_releases_the_batch_after_the_bound(
    national: Node, store_spy: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest, "OVERLAP_WAIT_S", 0.3)
    batches = _three_batches()
    await api._apply_in_order(national, batches.officer)
    with in_hand(national).applying(batches.first):
        with pytest.raises(BatchGap) as refused:
            await asyncio.wait_for(api._apply_in_order(national, batches.second), 10)
        assert refused.value.ack == batches.officer.header.seq_to
        assert store_spy[-1] == batches.second.header.seq_to  # it had stored, then gave up
    assert await count_rows(national, "SELECT count(*) FROM crossing") == 0


async def test_a_dangling_reference_in_an_overlapped_batch_is_quarantined_alone(
    national: Node, store_spy: list[int]
) -> None:
    """A crossing of a traveller never sent is quarantined (issue 12: it no longer refuses
    the whole batch); the rest of the overlapped batch commits after the first, and the
    acknowledgement moves past the quarantined record."""
    batches = _three_batches(dangling=True)
    await api._apply_in_order(national, batches.officer)
    with in_hand(national).applying(batches.first):
        second = asyncio.create_task(api._apply_in_order(national, batches.second))
        await _stored_ahead(batches.second, store_spy)
        await api._apply_in_order(national, batches.first)
    result = await asyncio.wait_for(second, 10)
    assert result.ack == batches.second.header.seq_to
    assert [(q.record_type, q.reason, q.seq) for q in result.quarantined] == [
        ("crossing", "dangling_reference", batches.second.header.seq_to)
    ]
    assert await count_rows(national, "SELECT count(*) FROM crossing") == 20 + 20 + 5
    assert await count_rows(national, "SELECT contiguous_seq FROM ingest_state") == (
        batches.second.header.seq_to
    )
    kept = "SELECT count(*) FROM sync_quarantine WHERE reason = 'dangling_reference'"
    assert await count_rows(national, kept) == 1


def test_only_consecutive_disjoint_copied_batches_without_officers_overlap() -> None:
    batches = _three_batches()
    node = BatchesInHand()  # one national node's batches in hand
    with node.applying(batches.first):
        with node.applying(batches.second) as turn:
            assert turn.predecessor is not None
        with node.applying(replace(batches.second, bulk=False)) as turn:
            assert turn.predecessor is None  # SQLite: one writer at a time
        shared = replace(batches.second, tables=batches.first.tables)
        with node.applying(shared) as turn:
            assert turn.predecessor is None  # a record in both would make the first wait
    with node.applying(batches.officer):
        with node.applying(batches.first) as turn:
            assert turn.predecessor is None  # officer rows are upserted under row locks
    with node.applying(batches.second) as turn:
        assert turn.predecessor is None  # the first is not being applied by this process
    with node.applying(batches.first):
        with node.applying(batches.first) as turn:  # the same batch again (a resend)
            assert turn.predecessor is None and turn.mine is None
        assert (GOGUI, batches.first.header.seq_to) in node.entries
    assert node.entries == {}
    with node.applying(batches.first):  # another node in the same process sees none of it
        with BatchesInHand().applying(batches.second) as turn:
            assert turn.predecessor is None


async def test_deadlocks_are_recognised_raw_and_wrapped(national: Node) -> None:
    """Real PostgreSQL deadlocks between two transactions, as asyncpg raises them and as
    SQLAlchemy wraps them: either way national rolls the batch back and answers a gap."""
    dsn = national.settings.database_url.replace("postgresql+asyncpg", "postgresql")
    one, two = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    try:
        await one.execute(
            "CREATE TABLE lock_pair (k int PRIMARY KEY); INSERT INTO lock_pair VALUES (1), (2)"
        )
        await asyncio.gather(one.execute("BEGIN"), two.execute("BEGIN"))
        raw = await _deadlock(one.execute, two.execute)
        await asyncio.gather(one.execute("ROLLBACK"), two.execute("ROLLBACK"))
        async with national.db.engine.connect() as first, national.db.engine.connect() as second:
            wrapped = await _deadlock(
                lambda sql: first.exec_driver_sql(sql), lambda sql: second.exec_driver_sql(sql)
            )
            await asyncio.gather(first.rollback(), second.rollback())
    finally:
        await one.execute("DROP TABLE IF EXISTS lock_pair")
        await asyncio.gather(one.close(), two.close())
    assert isinstance(raw, asyncpg.DeadlockDetectedError) and is_deadlock(raw)
    assert isinstance(wrapped, DBAPIError) and is_deadlock(wrapped)
    assert not is_deadlock(ValueError("not a database error"))


async def _deadlock(
    one: Callable[[str], Awaitable[Any]], two: Callable[[str], Awaitable[Any]]
) -> BaseException:
    """Lock row 1 in one transaction and row 2 in the other, then each the other's row
    (the callers begin and roll back the transactions)."""
    await one("UPDATE lock_pair SET k = k WHERE k = 1")
    await two("UPDATE lock_pair SET k = k WHERE k = 2")
    results = await asyncio.gather(
        one("UPDATE lock_pair SET k = k WHERE k = 2"),
        two("UPDATE lock_pair SET k = k WHERE k = 1"),
        return_exceptions=True,
    )
    return next(r for r in results if isinstance(r, BaseException))
