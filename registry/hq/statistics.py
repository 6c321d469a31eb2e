"""Headquarters statistics over the crossings of every post: entries, exits (refused apart)
and net flow per post and day/week/month; crossings by nationality, sex and age band; alerts
per post and evidence with their outcome. Each is a ``StatTable`` (JSON or CSV), audited:
small cells identify people.

Only current versions of crossings count. Dates are days in the node's time zone
(``settings.timezone``): PostgreSQL buckets with ``date_trunc`` on ``occurred_at AT TIME ZONE
tz``; SQLite (the HQ pages of a post) fetches the matching rows and buckets them in Python
with the same zone rules (exact, daylight saving included; fine for post-sized data).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Date, case, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.audit import audit
from registry.crossings.registration import age_on
from registry.hq.shared import REFUSED, check_choice, in_range, is_postgresql, local_bounds
from registry.models import Alert, AlertAdjudication, Crossing, Officer, Traveller
from registry.node import Node

PERIODS = ("day", "week", "month")
AGE_BANDS: tuple[tuple[int, str], ...] = ((18, "0-17"), (30, "18-29"), (45, "30-44"), (60, "45-59"))
OLDEST_BAND = "60+"
UNKNOWN_BAND = "unknown"
FLOW_COLUMNS = ("post", "period_start", "entries", "exits", "refused", "net")
NET_FLOW_COLUMNS = ("post", "period_start", "net")
DEMOGRAPHIC_COLUMNS = ("nationality", "sex", "age_band", "entries", "exits", "refused")
ALERT_COLUMNS = ("post", "evidence", "raised", "confirmed", "dismissed", "pending")


def period_start(day: date, period: str) -> date:
    """The first day of the day/week (ISO, Monday)/month bucket holding ``day``."""
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day


def age_band(date_of_birth: date | None, day: date) -> str:
    """0-17, 18-29, 30-44, 45-59 or 60+ on ``day``; ``unknown`` without a birth date."""
    if date_of_birth is None:
        return UNKNOWN_BAND
    age = age_on(date_of_birth, day)
    return next((band for limit, band in AGE_BANDS if age < limit), OLDEST_BAND)


def _band_order(band: str) -> int:
    names = [band for _, band in AGE_BANDS] + [OLDEST_BAND, UNKNOWN_BAND]
    return names.index(band)


@dataclass(frozen=True)
class StatTable:
    """One statistic: its column names, rows (JSON-safe values) and the query it answers."""

    name: str
    columns: tuple[str, ...]
    rows: list[dict[str, Any]]
    parameters: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "statistic": self.name,
            **self.parameters,
            "columns": list(self.columns),
            "rows": self.rows,
        }


async def _audit_statistic(
    session: AsyncSession, node: Node, officer: Officer, table: StatTable
) -> None:
    await audit(
        session,
        origin=node.settings.node_code,
        officer=officer,
        action="statistics",
        record_type="statistic",
        record_id=f"statistic:{table.name}",
        purpose="statistics",
        detail={"query": table.parameters, "rows": len(table.rows)},
    )


def _movement(direction: str, decision: str) -> str:
    return REFUSED if decision == REFUSED else direction


def _movement_sql() -> Any:
    return case((col(Crossing.decision) == REFUSED, REFUSED), else_=col(Crossing.direction))


async def _flow_counts(
    session: AsyncSession, node: Node, start: datetime, end: datetime, period: str, post: str | None
) -> dict[tuple[str, date], dict[str, int]]:
    """{(post, period start): {"entry": n, "exit": n, "refused": n}}."""
    conditions = in_range(start, end)
    if post:
        conditions.append(Crossing.post == post)
    counts: dict[tuple[str, date], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    if is_postgresql(session):
        local = func.timezone(node.settings.timezone, Crossing.occurred_at)
        bucket = cast(func.date_trunc(period, local), Date)
        query = (
            select(
                col(Crossing.post),
                bucket.label("bucket"),
                _movement_sql().label("kind"),
                func.count(),
            )
            .where(*conditions)
            .group_by(Crossing.post, "bucket", "kind")
        )
        for post_code, day, kind, count in (await session.execute(query)).all():
            counts[(post_code, day)][kind] += count
        return counts
    zone = node.settings.zone
    query = select(
        col(Crossing.post),
        col(Crossing.occurred_at),
        col(Crossing.direction),
        col(Crossing.decision),
    )
    for post_code, when, direction, decision in (
        await session.execute(query.where(*conditions))
    ).all():
        day = period_start(when.astimezone(zone).date(), period)
        counts[(post_code, day)][_movement(direction, decision)] += 1
    return counts


async def flow_statistics(
    session: AsyncSession,
    *,
    node: Node,
    officer: Officer,
    date_from: date,
    date_to: date,
    period: str = "day",
    post: str | None = None,
    net_only: bool = False,
) -> StatTable:
    """Entries, exits (refused apart) and net flow per post and day/week/month.

    Buckets are local days, ISO weeks labelled by their Monday, or months labelled by their
    first day; a bucket cut by the range counts only the days inside it. Posts and periods
    with no crossing are absent.
    """
    check_choice(period, PERIODS, "period")
    start, end = local_bounds(node.settings.zone, date_from, date_to)
    counts = await _flow_counts(session, node, start, end, period, post)
    rows = []
    for (post_code, day), kinds in sorted(counts.items()):
        entries, exits = kinds.get("entry", 0), kinds.get("exit", 0)
        row = {
            "post": post_code,
            "period_start": day.isoformat(),
            "entries": entries,
            "exits": exits,
            "refused": kinds.get(REFUSED, 0),
            "net": entries - exits,
        }
        rows.append({k: row[k] for k in NET_FLOW_COLUMNS} if net_only else row)
    parameters = {
        "date_from": date_from.isoformat(),
        "date_to": date_to.isoformat(),
        "period": period,
        "post": post,
        "timezone": node.settings.timezone,
    }
    name, columns = ("net_flow", NET_FLOW_COLUMNS) if net_only else ("flows", FLOW_COLUMNS)
    table = StatTable(name, columns, rows, parameters)
    await _audit_statistic(session, node, officer, table)
    return table


def _age_band_sql(local_day: Any) -> Any:
    years = func.date_part("year", func.age(local_day, Traveller.date_of_birth))
    whens: list[tuple[ColumnElement[bool], str]] = [
        (col(Traveller.date_of_birth).is_(None), UNKNOWN_BAND)
    ]
    whens += [(years < limit, band) for limit, band in AGE_BANDS]
    return case(*whens, else_=OLDEST_BAND)


async def _demographic_counts(
    session: AsyncSession, node: Node, start: datetime, end: datetime, post: str | None
) -> dict[tuple[str, str, str], dict[str, int]]:
    conditions = in_range(start, end)
    if post:
        conditions.append(col(Crossing.post) == post)
    counts: dict[tuple[str, str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    if is_postgresql(session):
        local_day = cast(func.timezone(node.settings.timezone, Crossing.occurred_at), Date)
        query = (
            select(
                col(Traveller.nationality),
                col(Traveller.sex),
                _age_band_sql(local_day).label("band"),
                _movement_sql().label("kind"),
                func.count(),
            )
            .join_from(Crossing, Traveller, col(Traveller.id) == col(Crossing.traveller_id))
            .where(*conditions)
            .group_by(Traveller.nationality, Traveller.sex, "band", "kind")
        )
        for nationality, sex, band, kind, count in (await session.execute(query)).all():
            counts[(nationality, sex, band)][kind] += count
        return counts
    zone = node.settings.zone
    query = (
        select(
            col(Traveller.nationality),
            col(Traveller.sex),
            col(Traveller.date_of_birth),
            col(Crossing.occurred_at),
            col(Crossing.direction),
            col(Crossing.decision),
        )
        .join_from(Crossing, Traveller, col(Traveller.id) == col(Crossing.traveller_id))
        .where(*conditions)
    )
    for nationality, sex, birth, when, direction, decision in (await session.execute(query)).all():
        band = age_band(birth, when.astimezone(zone).date())
        counts[(nationality, sex, band)][_movement(direction, decision)] += 1
    return counts


async def demographic_statistics(
    session: AsyncSession,
    *,
    node: Node,
    officer: Officer,
    date_from: date,
    date_to: date,
    post: str | None = None,
) -> StatTable:
    """Crossings by nationality, sex and age band (age on the local day of the crossing)."""
    start, end = local_bounds(node.settings.zone, date_from, date_to)
    counts = await _demographic_counts(session, node, start, end, post)
    ordered = sorted(
        counts.items(), key=lambda item: (item[0][0], item[0][1], _band_order(item[0][2]))
    )
    rows = [
        {
            "nationality": nationality,
            "sex": sex,
            "age_band": band,
            "entries": kinds.get("entry", 0),
            "exits": kinds.get("exit", 0),
            "refused": kinds.get(REFUSED, 0),
        }
        for (nationality, sex, band), kinds in ordered
    ]
    parameters = {
        "date_from": date_from.isoformat(),
        "date_to": date_to.isoformat(),
        "post": post,
        "timezone": node.settings.timezone,
    }
    table = StatTable("demographics", DEMOGRAPHIC_COLUMNS, rows, parameters)
    await _audit_statistic(session, node, officer, table)
    return table


async def alert_statistics(
    session: AsyncSession,
    *,
    node: Node,
    officer: Officer,
    date_from: date,
    date_to: date,
    post: str | None = None,
) -> StatTable:
    """Alerts raised per post (the alert's origin) and evidence kind, with their outcome.

    Counted by the alert's creation day; an alert stays counted when its crossing is later
    corrected (it was raised all the same).
    """
    start, end = local_bounds(node.settings.zone, date_from, date_to)
    query = (
        select(col(Alert.origin), col(Alert.evidence), col(AlertAdjudication.outcome), func.count())
        .outerjoin(AlertAdjudication, col(AlertAdjudication.alert_id) == col(Alert.id))
        .where(col(Alert.created_at) >= start, col(Alert.created_at) < end)
        .group_by(Alert.origin, Alert.evidence, AlertAdjudication.outcome)
    )
    if post:
        query = query.where(col(Alert.origin) == post)
    counts: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for origin, evidence, outcome, count in (await session.execute(query)).all():
        counts[(origin, evidence)][outcome or "pending"] += count
    rows = [
        {
            "post": origin,
            "evidence": evidence,
            "raised": sum(outcomes.values()),
            "confirmed": outcomes.get("confirmed", 0),
            "dismissed": outcomes.get("dismissed", 0),
            "pending": outcomes.get("pending", 0),
        }
        for (origin, evidence), outcomes in sorted(counts.items())
    ]
    parameters = {"date_from": date_from.isoformat(), "date_to": date_to.isoformat(), "post": post}
    table = StatTable("alerts", ALERT_COLUMNS, rows, parameters)
    await _audit_statistic(session, node, officer, table)
    return table
