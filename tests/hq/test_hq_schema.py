"""National headquarters' schema, PostgreSQL first: migration 0004 (monthly partitions of
crossing, down and up again, future and past partitions), the SQLite indexes of the same
migration, and schema drift between the SQLModel tables and a migrated database (only the
documented PostgreSQL differences, only the new indexes on SQLite). The rows are the HQ
dataset of tests/hq_dataset.py.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlmodel import SQLModel

from registry import hq
from registry.db import Database
from registry.migrate import alembic_config
from registry.models import Crossing
from registry.names import name_key
from registry.outbox import insert_rows
from tests.support.hq_dataset import (
    CROSSINGS,
    TRAVELLERS,
    G,
    World,
    _crossings,
    _documents,
    _officers,
    _photos,
    _scalars,
    _travellers,
    require_postgres,
    seed_world,
)
from tests.support.nodes import (
    create_pg_database,
    drop_pg_database,
    migrate,
    national_settings,
    pg_url,
)


# ---------------------------------------------------------------- PostgreSQL: schema
@pytest.fixture
async def scratch_pg(tmp_path: Path) -> AsyncIterator[tuple[str, AsyncEngine]]:
    require_postgres()
    name = f"bp_hq_scratch_{os.getpid()}"
    await create_pg_database(name)
    engine = create_async_engine(pg_url(name))
    try:
        yield pg_url(name), engine
    finally:
        await engine.dispose()
        await drop_pg_database(name)


async def _downgrade(engine: AsyncEngine, revision: str) -> None:
    from alembic import command

    def run(connection: Any) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, revision)

    async with engine.begin() as connection:
        await connection.run_sync(run)


FKS_TO_CROSSING = (
    "SELECT conrelid::regclass::text || '.' || conname FROM pg_constraint "
    "WHERE contype = 'f' AND confrelid = 'crossing'::regclass ORDER BY 1"
)


async def test_migration_partitions_existing_rows_and_downgrades(
    scratch_pg: tuple[str, AsyncEngine], tmp_path: Path
) -> None:
    url, engine = scratch_pg
    await migrate(url, tmp_path, "0003")
    settings = national_settings(tmp_path, url)
    world = await seed_world(settings)  # rows and foreign keys as a 0003 database has them
    assert len(await _scalars(engine, FKS_TO_CROSSING)) == 5
    await migrate(url, tmp_path)
    placed = await _scalars(
        engine, "SELECT tableoid::regclass::text FROM crossing ORDER BY occurred_at, id"
    )
    assert placed[0] == "crossing_y2026m06" and placed[-1] == "crossing_y2026m10"
    assert len(placed) == len(CROSSINGS)
    assert await _scalars(engine, FKS_TO_CROSSING) == []
    key = await _scalars(
        engine,
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'crossing'::regclass AND contype = 'p'",
    )
    assert key == ["PRIMARY KEY (id, occurred_at)"]
    partitions = await _scalars(
        engine, "SELECT count(*) FROM pg_inherits WHERE inhparent = 'crossing'::regclass"
    )
    today = datetime.now(UTC).date()
    months = (today.year - 2026) * 12 + today.month - 6 + 1 + 12  # June 2026 .. 12 ahead
    assert partitions == [months + 1]  # and the default partition
    keys = await _scalars(engine, "SELECT name_key FROM traveller_name_key ORDER BY 1")
    assert keys == sorted({name_key(t[1], t[2]) for t in TRAVELLERS.values()})
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO traveller (id, origin, surname, given_names, name_key, sex, "
                "nationality, created_at) VALUES (:id, 'MR-GOGUI', 'NEW', 'NAME', 'name new', "
                "'M', 'MLI', now())"
            ),
            {"id": uuid.uuid4()},
        )
    assert "name new" in await _scalars(engine, "SELECT name_key FROM traveller_name_key")
    await _downgrade(engine, "0003")
    assert len(await _scalars(engine, FKS_TO_CROSSING)) == 5
    assert await _scalars(engine, "SELECT count(*) FROM crossing") == [len(CROSSINGS)]
    assert await _scalars(engine, "SELECT to_regclass('crossing_default')::text") == [None]
    assert await _scalars(engine, "SELECT to_regclass('traveller_name_key')::text") == [None]
    await migrate(url, tmp_path)
    assert await _scalars(engine, "SELECT count(*) FROM crossing") == [len(CROSSINGS)]
    database = Database(settings)
    try:
        async with database.session() as session:
            found = await session.get(Crossing, world.ids["c1"])
        assert found is not None and found.post == G
    finally:
        await database.dispose()


async def test_ensure_month_partitions_adds_months_and_empties_the_default(
    scratch_pg: tuple[str, AsyncEngine], tmp_path: Path
) -> None:
    url, engine = scratch_pg
    await migrate(url, tmp_path)
    settings = national_settings(tmp_path, url)
    database = Database(settings)
    try:
        async with database.write_transaction() as session:
            assert await hq.ensure_month_partitions(session) == []
        world = World()  # rows for months that have no partition land in the default one
        far = datetime(2031, 3, 15, 12, tzinfo=UTC)
        async with database.write_transaction() as session:
            for rows in (_officers, _photos, _travellers, _documents, _crossings):
                await insert_rows(session, *rows(world))
            await session.execute(
                text("UPDATE crossing SET occurred_at = :far WHERE id = :id"),
                {"far": far, "id": world.ids["c1"]},
            )
        assert await _scalars(
            engine, f"SELECT tableoid::regclass::text FROM crossing WHERE id = '{world['c1']}'"
        ) == ["crossing_default"]
        async with database.write_transaction() as session:
            created = await hq.ensure_month_partitions(
                session, months_ahead=2, today=date(2031, 2, 10)
            )
        # The dataset's June, July and October rows arrived before their months existed.
        assert created == [
            "crossing_y2026m06",
            "crossing_y2026m07",
            "crossing_y2026m10",
            "crossing_y2031m02",
            "crossing_y2031m03",
            "crossing_y2031m04",
        ]
        assert await _scalars(engine, "SELECT count(*) FROM crossing_default") == [0]
        assert await _scalars(
            engine, f"SELECT tableoid::regclass::text FROM crossing WHERE id = '{world['c1']}'"
        ) == ["crossing_y2031m03"]
        indexes = await _scalars(
            engine,
            "SELECT indexname FROM pg_indexes WHERE tablename = 'crossing_y2031m03' ORDER BY 1",
        )
        assert len(indexes) == 6  # the primary key and the five crossing indexes (0019)
        async with database.write_transaction() as session:
            again = await hq.ensure_month_partitions(
                session, months_ahead=2, today=date(2031, 2, 10)
            )
        assert again == []
        async with database.write_transaction() as session:
            history = await hq.ensure_month_partitions(session, since=date(2025, 11, 20))
        month, this_month = date(2025, 11, 1), datetime.now(UTC).date().replace(day=1)
        expected = []
        while month < this_month:
            if month.month not in (6, 7, 10) or month.year != 2026:  # made for the rows above
                expected.append(hq.partition_name(month))
            month = (month + timedelta(days=32)).replace(day=1)
        assert history == expected
    finally:
        await database.dispose()


async def test_sqlite_migration_down_and_up(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'post.db'}"
    await migrate(url, tmp_path)
    engine = create_async_engine(url)
    try:
        query = "SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'ix_%'"
        names = set(await _scalars(engine, query))
        assert {"ix_crossing_post_occurred", "ix_crossing_document"} <= names
        assert {"ix_traveller_nationality", "ix_alert_created_at"} <= names
        await _downgrade(engine, "0003")
        assert not {"ix_crossing_post_occurred", "ix_alert_created_at"} & set(
            await _scalars(engine, query)
        )
        await migrate(url, tmp_path)
        assert set(await _scalars(engine, query)) == names
        async with engine.connect() as connection:
            found = await connection.run_sync(
                lambda sync: sync.exec_driver_sql("PRAGMA foreign_key_list(alert)").all()
            )
        assert [row[2] for row in found] == ["crossing"]  # posts keep their foreign keys
    finally:
        await engine.dispose()


# Differences between the SQLModel tables and a migrated database that the Alembic environment
# must ignore (PostgreSQL only), and indexes 0004 adds that the models may not declare yet.
PG_ONLY_TABLE = re.compile(r"^(crossing_(y\d{4}m\d{2}|default)|traveller_name_key)$")
PG_ONLY_INDEXES = {
    "ix_traveller_name_key_trgm",
    "ix_traveller_created_at",  # 0017: BRIN, the hit index's freshness pass
    "ix_travel_document_created_at",
}
INDEXES_0004 = {
    "ix_crossing_post_occurred",
    "ix_crossing_document",
    "ix_traveller_nationality",
    "ix_alert_created_at",
}


CHECKED_AT_INGEST = {
    ("crossing", "traveller_id"),
    ("crossing", "document_id"),
    ("crossing", "officer_id"),
    ("crossing", "photo_sha256"),
    ("travel_document", "traveller_id"),
}


def national_include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """What registry/migrations/env.py should pass to ``context.configure(include_object=...)``
    when the connection is PostgreSQL (on SQLite nothing needs ignoring)."""
    if type_ == "table" and name and PG_ONLY_TABLE.match(name):
        return False
    if type_ == "index" and (name in PG_ONLY_INDEXES or PG_ONLY_TABLE.match(obj.table.name)):
        return False  # the trigram index, and the partitions' copies of crossing's indexes
    if type_ == "foreign_key_constraint" and obj.referred_table.name == "crossing":
        return False  # 0004 drops every foreign key to the partitioned crossing table
    if type_ == "foreign_key_constraint" and len(obj.column_keys) == 1:
        # 0006: national ingest checks these references per batch instead
        return (obj.table.name, obj.column_keys[0]) not in CHECKED_AT_INGEST
    return True


def _drift(connection: Any, include: Any) -> list[Any]:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    import registry.models  # noqa: F401
    import sync.models  # noqa: F401

    context = MigrationContext.configure(connection, opts={"include_object": include})
    return list(compare_metadata(context, SQLModel.metadata))


def _describe(diff: Any) -> tuple[str, str, str]:
    """(kind, object name, table name) of one autogenerate difference."""
    if isinstance(diff, list):
        diff = diff[0]
    kind, subject = diff[0], diff[1]
    if kind in ("add_fk", "remove_fk"):
        return kind, next(iter(subject.columns)).name, subject.table.name
    if kind in ("add_index", "remove_index"):
        return kind, subject.name, subject.table.name
    return kind, getattr(subject, "name", str(subject)), getattr(subject, "name", "")


def _explained(kind: str, name: str, table: str) -> bool:
    if kind == "add_fk":
        return (table, name) in {
            ("alert", "crossing_id"),
            ("protection_referral", "crossing_id"),
            ("crossing", "guardian_crossing_id"),
            ("crossing", "closes_crossing_id"),
            ("crossing", "supersedes"),
        } | CHECKED_AT_INGEST
    if kind == "remove_table":
        return bool(PG_ONLY_TABLE.match(name))
    if kind == "remove_index":
        return name in PG_ONLY_INDEXES | INDEXES_0004 or bool(PG_ONLY_TABLE.match(table))
    return False


async def test_schema_drift_is_only_the_documented_postgresql_differences(
    scratch_pg: tuple[str, AsyncEngine], tmp_path: Path
) -> None:
    url, engine = scratch_pg
    await migrate(url, tmp_path)
    async with engine.connect() as connection:
        raw = await connection.run_sync(_drift, lambda *args: True)
        filtered = await connection.run_sync(_drift, national_include_object)
    described = {_describe(diff) for diff in raw}
    assert {d for d in described if d[0] == "add_fk"} and {
        d for d in described if d[0] == "remove_table"
    }
    assert {d for d in described if not _explained(*d)} == set()
    assert {(kind, name) for kind, name, _ in map(_describe, filtered)} <= {
        ("remove_index", name) for name in INDEXES_0004
    }


async def test_sqlite_schema_drift_is_only_the_new_indexes(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'post.db'}"
    await migrate(url, tmp_path)
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            raw = await connection.run_sync(_drift, lambda *args: True)
    finally:
        await engine.dispose()
    assert {(kind, name) for kind, name, _ in map(_describe, raw)} <= {
        ("remove_index", name) for name in INDEXES_0004
    }
