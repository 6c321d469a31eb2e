"""The monthly partitions of the national crossing table (PostgreSQL, migration 0004):
``ensure_month_partitions`` adds the months ahead at national start-up, and any month whose
rows landed in the default partition, moving those rows into it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from registry.hq.shared import is_postgresql

PARTITION_LOCK = 7214002
DEFAULT_PARTITION = "crossing_default"


def _add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def partition_name(month: date) -> str:
    """Same naming as migration 0004: crossing_yYYYYmMM."""
    return f"crossing_y{month.year:04d}m{month.month:02d}"


async def _is_partitioned(session: AsyncSession) -> bool:
    query = text(
        "SELECT count(*) FROM pg_partitioned_table WHERE partrelid = to_regclass('crossing')"
    )
    return bool(await session.scalar(query))


async def _partitions(session: AsyncSession) -> set[str]:
    query = text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'crossing'::regclass"
    )
    return set((await session.scalars(query)).all())


async def _create_partition(session: AsyncSession, month: date) -> None:
    """Create one month, moving in any rows the default partition holds for it, then attach."""
    name = partition_name(month)
    lower = f"{month.isoformat()} 00:00:00+00"
    upper = f"{_add_months(month, 1).isoformat()} 00:00:00+00"
    await session.execute(
        text(f"CREATE TABLE {name} (LIKE crossing INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    )
    await session.execute(
        text(
            f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} WHERE occurred_at >= '{lower}' "
            f"AND occurred_at < '{upper}' RETURNING *) INSERT INTO {name} SELECT * FROM moved"
        )
    )
    await session.execute(
        text(
            f"ALTER TABLE crossing ATTACH PARTITION {name} "
            f"FOR VALUES FROM ('{lower}') TO ('{upper}')"
        )
    )


async def _months_in_default(session: AsyncSession) -> set[date]:
    query = text(
        f"SELECT DISTINCT date_trunc('month', occurred_at AT TIME ZONE 'UTC')::date "
        f"FROM {DEFAULT_PARTITION}"
    )
    return set((await session.scalars(query)).all())


async def ensure_month_partitions(
    session: AsyncSession,
    months_ahead: int = 12,
    *,
    since: date | None = None,
    today: date | None = None,
) -> list[str]:
    """Create the missing monthly crossing partitions and return their names, oldest first:
    every month from ``since`` (default: this month) through ``months_ahead`` months ahead,
    and every month the default partition holds rows for (the rows move into it).

    Call it at national start-up, and with ``since=`` before importing older history. Does
    nothing on SQLite or when crossing is not partitioned. Runs in the caller's transaction,
    under an advisory lock so two starting workers do not race.
    """
    if not is_postgresql(session) or not await _is_partitioned(session):
        return []
    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PARTITION_LOCK})
    existing = await _partitions(session)
    this_month = (today or datetime.now(UTC).date()).replace(day=1)
    first = min(this_month, (since or this_month).replace(day=1))
    wanted = set()
    month = first
    while month <= _add_months(this_month, months_ahead):
        wanted.add(month)
        month = _add_months(month, 1)
    wanted |= await _months_in_default(session)
    created = []
    for month in sorted(wanted):
        if partition_name(month) not in existing:
            await _create_partition(session, month)
            created.append(partition_name(month))
    return created
