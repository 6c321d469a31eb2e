"""What every headquarters query shares: the database dialect, a range of local days as UTC
instants (the national node's time zone), the current crossings inside it, and the checks of
a page and of a choice among a vocabulary, each answering 422 with the field at fault.

Refused crossings are not movements: statistics count them apart (``REFUSED``) and they
neither open nor close a stay.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from registry.crossings.registration import current_version_filter
from registry.crossings.search import MAX_RESULTS
from registry.db import dialect_name
from registry.models import Crossing
from registry.problems import Problem

REFUSED = "refused"


def is_postgresql(session: AsyncSession) -> bool:
    """Whether the session's database is PostgreSQL (national) rather than SQLite (a post)."""
    return dialect_name(session) == "postgresql"


def local_bounds(zone: ZoneInfo, date_from: date, date_to: date) -> tuple[datetime, datetime]:
    """UTC instants of the start of ``date_from`` and the end of ``date_to`` (local days)."""
    if date_to < date_from:
        raise Problem(422, "Invalid range", field="date_to", detail="date_to is before date_from")
    start = datetime.combine(date_from, time(), zone).astimezone(UTC)
    end = datetime.combine(date_to + timedelta(days=1), time(), zone).astimezone(UTC)
    return start, end


def check_choice(value: str | None, choices: Sequence[str], name: str) -> None:
    """422 on ``name`` unless ``value`` is absent or one of ``choices``."""
    if value is not None and value not in choices:
        raise Problem(
            422,
            f"Invalid {name}",
            field=name,
            detail=f"{name} must be one of {tuple(map(str, choices))}",
        )


def check_page(limit: int, offset: int) -> None:
    """422 unless 1 <= ``limit`` <= ``MAX_RESULTS`` and ``offset`` >= 0."""
    if not 1 <= limit <= MAX_RESULTS:
        raise Problem(422, "Invalid limit", field="limit", detail=f"1 to {MAX_RESULTS}")
    if offset < 0:
        raise Problem(422, "Invalid offset", field="offset", detail="offset must be >= 0")


def in_range(start: datetime, end: datetime) -> list[Any]:
    """Conditions selecting the current crossings that occurred in [``start``, ``end``)."""
    return [Crossing.occurred_at >= start, Crossing.occurred_at < end, current_version_filter()]
