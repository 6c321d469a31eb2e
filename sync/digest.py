"""Digest check: per (origin, day) bucket hashes of crossings, then per hour within the
days that differ, then the ids of the hours that differ, so that only missing records are
listed and resent. This catches
any bug in the checkpoints without a full rescan or a full resend."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.models import Crossing


async def _ids_by_day(session: AsyncSession, origin: str) -> dict[str, list[str]]:
    rows = await session.execute(
        select(col(Crossing.id), col(Crossing.occurred_at)).where(col(Crossing.origin) == origin)
    )
    days: dict[str, list[str]] = defaultdict(list)
    for crossing_id, occurred_at in rows:
        days[occurred_at.astimezone(UTC).date().isoformat()].append(str(crossing_id))
    return days


def bucket_hash(ids: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()


async def crossing_buckets(session: AsyncSession, origin: str) -> dict[str, dict[str, Any]]:
    """{day: {"count": n, "hash": sha256 of the sorted ids}} for one origin's crossings."""
    return {
        day: {"count": len(ids), "hash": bucket_hash(ids)}
        for day, ids in (await _ids_by_day(session, origin)).items()
    }


async def _day_rows(session: AsyncSession, origin: str, day: str) -> list[tuple[str, datetime]]:
    start = datetime.combine(date.fromisoformat(day), time.min, tzinfo=UTC)
    rows = await session.execute(
        select(col(Crossing.id), col(Crossing.occurred_at)).where(
            col(Crossing.origin) == origin,
            col(Crossing.occurred_at) >= start,
            col(Crossing.occurred_at) < start + timedelta(days=1),
        )
    )
    return [(str(i), t.astimezone(UTC)) for i, t in rows]


async def hour_buckets(session: AsyncSession, origin: str, day: str) -> dict[str, dict[str, Any]]:
    """The second level: {"HH": {"count", "hash"}} for one origin's crossings on one day."""
    hours: dict[str, list[str]] = defaultdict(list)
    for crossing_id, when in await _day_rows(session, origin, day):
        hours[f"{when.hour:02d}"].append(crossing_id)
    return {hour: {"count": len(ids), "hash": bucket_hash(ids)} for hour, ids in hours.items()}


async def bucket_ids(session: AsyncSession, origin: str, day: str, hour: str) -> list[str]:
    """The crossing ids of one origin in one UTC hour."""
    return sorted(
        i for i, when in await _day_rows(session, origin, day) if f"{when.hour:02d}" == hour
    )


def differing_days(
    local: dict[str, dict[str, Any]], remote: dict[str, dict[str, Any]]
) -> list[str]:
    """Buckets (days or hours) that differ or exist on one side only."""
    return sorted(day for day in set(local) | set(remote) if local.get(day) != remote.get(day))
