"""National headquarters' query plans on PostgreSQL: EXPLAIN of the statements the HQ
services really run, over 300,000 generated crossings (bench/queries.py), proving index use
(document lookup, trigram name search) and partition pruning (a post's month of statistics).
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from registry import hq
from registry.models import Officer
from registry.node import Node
from registry.settings import Settings
from tests.support.hq_dataset import NATIONAL, G, _scalars, require_postgres
from tests.support.nodes import (
    create_pg_database,
    drop_pg_database,
    migrate,
    national_settings,
    pg_url,
)


# ---------------------------------------------------------------- PostgreSQL: EXPLAIN
@dataclass
class Loaded:
    url: str
    settings: Settings
    samples: list[Any]


@pytest.fixture(scope="module")
def explain_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    """300,000 generated crossings (3 years to 2026-11-01, 10 posts), VACUUM ANALYZE: enough
    rows for the planner to choose the indexes by itself (no enable_seqscan tricks)."""
    require_postgres()
    from bench.queries import load_dataset

    name = f"bp_hq_explain_{os.getpid()}"
    workdir = tmp_path_factory.mktemp("explain")

    async def prepare() -> Loaded:
        await create_pg_database(name)
        await migrate(pg_url(name), workdir)
        dsn = pg_url(name).replace("postgresql+asyncpg://", "postgresql://")
        loaded = await load_dataset(dsn, 300_000, seed=5, end=datetime(2026, 11, 1, tzinfo=UTC))
        return Loaded(pg_url(name), national_settings(workdir, pg_url(name)), loaded.samples)

    loaded = asyncio.run(prepare())
    yield loaded
    asyncio.run(drop_pg_database(name))


@contextmanager
def captured(engine: AsyncEngine) -> Iterator[list[tuple[str, Any]]]:
    """Every statement (with its parameters) the engine runs inside the block."""
    statements: list[tuple[str, Any]] = []

    def listener(_c: Any, _cur: Any, statement: str, parameters: Any, *_: Any) -> None:
        statements.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", listener)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", listener)


async def explain_service_query(
    loaded: Loaded, pick: Callable[[str], bool], service: Callable[..., Any], **kwargs: Any
) -> tuple[str, Any]:
    """Run ``service`` for real, then EXPLAIN the statement ``pick`` selects among those it
    ran, with the same parameters; return the plan and what the service returned."""
    node = Node.build(loaded.settings)
    officer = Officer(username="x", full_name="x", role="hq_analyst", home_post=NATIONAL,
                      password_hash="x")  # fmt: skip
    try:
        with captured(node.db.engine) as statements:
            async with node.db.write_transaction() as session:
                result = await service(session, node=node, officer=officer, **kwargs)
        chosen = [(sql, params) for sql, params in statements if pick(sql)]
        assert len(chosen) == 1, [sql[:80] for sql, _ in statements]
        sql, params = chosen[0]
        async with node.db.engine.connect() as connection:
            rows = await connection.exec_driver_sql(f"EXPLAIN {sql}", params)
            return "\n".join(row[0] for row in rows), result
    finally:
        await node.db.dispose()


async def partition_indexes(loaded: Loaded, parent: str) -> set[str]:
    """Names of the partitions' copies of a partitioned index (they are not the parent's)."""
    engine = create_async_engine(loaded.url)
    try:
        return set(
            await _scalars(
                engine,
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                f"WHERE i.inhparent = '{parent}'::regclass",
            )
        )
    finally:
        await engine.dispose()


def scans(plan: str) -> list[tuple[str, str]]:
    """(index, partition) of every index scan on a crossing partition in the plan."""
    pattern = r"Scan (?:Backward )?using (\S+) on (crossing_\w+)"
    return re.findall(pattern, plan)


async def test_explain_document_lookup_uses_the_indexes(explain_db: Loaded) -> None:
    person = explain_db.samples[0]
    plan, found = await explain_service_query(
        explain_db,
        lambda sql: "FROM crossing JOIN travel_document" in sql,
        hq.hq_search_by_document,
        issuing_state=person.nationality,
        number=person.number,
    )
    assert found and {c["document"]["number"] for c in found} == {person.number}
    assert re.search(r"Index Scan using ix_document_number on travel_document", plan), plan
    by_document = await partition_indexes(explain_db, "ix_crossing_document")
    assert {index for index, _ in scans(plan)} & by_document, plan


async def test_explain_name_search_uses_the_trigram_index(explain_db: Loaded) -> None:
    person = explain_db.samples[1]
    surname, given = person.surname.split("|")[0], person.given.split("|")[0]
    plan, hits = await explain_service_query(
        explain_db,
        lambda sql: "FROM traveller_name_key" in sql,
        hq.hq_search_by_name,
        name=f"{surname} {given}",
        date_of_birth=None,
    )
    # COPY ran with session_replication_role=replica: the dictionary triggers still fired.
    assert hits and hits[0]["score"] == 100.0
    assert "Bitmap Index Scan on ix_traveller_name_key_trgm" in plan, plan


async def test_explain_post_month_statistics_prune_partitions(explain_db: Loaded) -> None:
    plan, table = await explain_service_query(
        explain_db,
        lambda sql: "date_trunc" in sql,
        hq.flow_statistics,
        date_from=date(2026, 9, 1),
        date_to=date(2026, 9, 30),
        period="day",
        post=G,
    )
    # The crossings counted come from September's partition only, through the post index
    # (index-only); the correction check (NOT EXISTS ... supersedes = id) has no partition key
    # to prune on: it hashes the corrections, read from every partition's supersedes index.
    by_post = await partition_indexes(explain_db, "ix_crossing_post_occurred")
    superseded = await partition_indexes(explain_db, "ix_crossing_supersedes")
    counted = {(index, part) for index, part in scans(plan) if index not in superseded}
    assert counted == {(index, "crossing_y2026m09") for index in by_post if "2026m09" in index}
    assert re.findall(r" on (crossing_\w+) crossing\b(?!_)", plan) == ["crossing_y2026m09"], plan
    assert "Index Only Scan using crossing_y2026m09_post_occurred" in plan, plan
    assert "Hash Anti Join" in plan, plan
    assert {index for index, _ in scans(plan)} - by_post <= superseded, plan
    assert {row["period_start"][:7] for row in table.rows} == {"2026-09"}
