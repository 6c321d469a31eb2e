"""National headquarters (role=national): flow, net-flow, demographic and alert statistics per
post and period, as JSON and CSV, bucketed in the national time zone.

The national node and its hand-made dataset (posts MR-GOGUI (G) and MR-KOBENI (K), October
2026, time zone Africa/Nouakchott (UTC+0) unless a test says otherwise) are tests/hq_node.py
and tests/hq_dataset.py, on PostgreSQL and on SQLite.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

from registry import hq
from tests.support.hq_dataset import G, K
from tests.support.hq_node import OCTOBER, Hq, as_strings, get_csv


def flow(post: str, day: str, entries: int = 0, exits: int = 0, refused: int = 0) -> dict[str, Any]:
    return {
        "post": post,
        "period_start": day,
        "entries": entries,
        "exits": exits,
        "refused": refused,
        "net": entries - exits,
    }


DAILY = [
    flow(G, "2026-10-01", entries=1),
    flow(G, "2026-10-05", entries=2),
    flow(G, "2026-10-10", exits=1),
    flow(G, "2026-10-12", refused=1),
    flow(K, "2026-10-03", entries=1, exits=1),
    flow(K, "2026-10-06", exits=1),
    flow(K, "2026-10-15", exits=1),
    flow(K, "2026-10-20", exits=1),
    flow(K, "2026-10-31", entries=1),
]
WEEKLY = [
    flow(G, "2026-09-28", entries=1),
    flow(G, "2026-10-05", entries=2, exits=1),
    flow(G, "2026-10-12", refused=1),
    flow(K, "2026-09-28", entries=1, exits=1),
    flow(K, "2026-10-05", exits=1),
    flow(K, "2026-10-12", exits=1),
    flow(K, "2026-10-19", exits=1),
    flow(K, "2026-10-26", entries=1),
]
MONTHLY_JUNE_TO_OCTOBER = [
    flow(G, "2026-06-01", entries=1),
    flow(G, "2026-07-01", entries=1),
    flow(G, "2026-10-01", entries=3, exits=1, refused=1),
    flow(K, "2026-10-01", entries=2, exits=4),
]


async def test_flow_statistics_per_post_and_period(national_node: Hq) -> None:
    node = national_node
    daily = await node.get("/api/hq/stats/flows", **OCTOBER, period="day")
    assert daily["columns"] == ["post", "period_start", "entries", "exits", "refused", "net"]
    assert daily["rows"] == DAILY
    assert daily["timezone"] == "Africa/Nouakchott"
    weekly = await node.get("/api/hq/stats/flows", **OCTOBER, period="week")
    assert weekly["rows"] == WEEKLY
    monthly = await node.get(
        "/api/hq/stats/flows", date_from="2026-06-01", date_to="2026-10-31", period="month"
    )
    assert monthly["rows"] == MONTHLY_JUNE_TO_OCTOBER
    kobeni = await node.get("/api/hq/stats/flows", **OCTOBER, period="day", post=K)
    assert kobeni["rows"] == [row for row in DAILY if row["post"] == K]
    net = await node.get("/api/hq/stats/net-flow", **OCTOBER, period="month")
    assert net["columns"] == ["post", "period_start", "net"]
    assert net["rows"] == [
        {"post": G, "period_start": "2026-10-01", "net": 2},
        {"post": K, "period_start": "2026-10-01", "net": -2},
    ]
    bad = await node.client.get(
        "/api/hq/stats/flows", params={**OCTOBER, "period": "year"}, headers=node.auth()
    )
    assert bad.status_code == 400
    assert bad.json()["invalid_params"][0]["name"] == "period"


async def test_statistics_as_csv(national_node: Hq) -> None:
    node = national_node
    header, rows = await get_csv(node, "/api/hq/stats/flows", **OCTOBER, format="csv")
    assert header == ["post", "period_start", "entries", "exits", "refused", "net"]
    assert rows == as_strings(DAILY)
    header, rows = await get_csv(node, "/api/hq/stats/flows.csv", **OCTOBER, period="week")
    assert rows == as_strings(WEEKLY)
    header, rows = await get_csv(node, "/api/hq/stats/net-flow.csv", **OCTOBER, period="month")
    assert header == ["post", "period_start", "net"]
    assert rows == as_strings(
        [
            {"post": G, "period_start": "2026-10-01", "net": 2},
            {"post": K, "period_start": "2026-10-01", "net": -2},
        ]
    )
    header, rows = await get_csv(node, "/api/hq/stats/demographics.csv", **OCTOBER)
    assert header == ["nationality", "sex", "age_band", "entries", "exits", "refused"]
    assert rows == as_strings(DEMOGRAPHICS)
    header, rows = await get_csv(node, "/api/hq/stats/alerts", **OCTOBER, format="csv")
    assert header == ["post", "evidence", "raised", "confirmed", "dismissed", "pending"]
    assert rows == as_strings(ALERT_ROWS)
    response = await node.client.get(
        "/api/hq/stats/alerts.csv", params=OCTOBER, headers=node.auth()
    )
    assert 'filename="alerts.csv"' in response.headers["content-disposition"]


def demo(
    nationality: str, sex: str, band: str, entries: int = 0, exits: int = 0, refused: int = 0
) -> dict[str, Any]:
    return {
        "nationality": nationality,
        "sex": sex,
        "age_band": band,
        "entries": entries,
        "exits": exits,
        "refused": refused,
    }


DEMOGRAPHICS = [
    demo("GIN", "M", "30-44", refused=1),
    demo("MLI", "F", "0-17", exits=1),  # T10 is 17 on 2026-10-10, 18 the next day
    demo("MLI", "F", "18-29", entries=1),
    demo("MLI", "M", "30-44", entries=1, exits=1),
    demo("MLI", "M", "45-59", entries=2, exits=1),
    demo("SDN", "X", "unknown", exits=1),
    demo("SEN", "F", "60+", entries=1, exits=1),
]
ALERT_ROWS = [
    {"post": G, "evidence": "document", "raised": 1, "confirmed": 1, "dismissed": 0, "pending": 0},
    {"post": G, "evidence": "face", "raised": 1, "confirmed": 0, "dismissed": 0, "pending": 1},
    {"post": G, "evidence": "name_dob", "raised": 1, "confirmed": 1, "dismissed": 0, "pending": 0},
    {"post": K, "evidence": "name_dob", "raised": 1, "confirmed": 0, "dismissed": 1, "pending": 0},
]


async def test_demographic_and_alert_statistics(national_node: Hq) -> None:
    node = national_node
    demographics = await node.get("/api/hq/stats/demographics", **OCTOBER)
    assert demographics["rows"] == DEMOGRAPHICS
    gogui = await node.get("/api/hq/stats/demographics", **OCTOBER, post=G)
    assert gogui["rows"] == [
        demo("GIN", "M", "30-44", refused=1),
        demo("MLI", "F", "0-17", exits=1),
        demo("MLI", "M", "30-44", entries=1),
        demo("MLI", "M", "45-59", entries=1),
        demo("SEN", "F", "60+", entries=1),
    ]
    alerts = await node.get("/api/hq/stats/alerts", **OCTOBER)
    assert alerts["rows"] == ALERT_ROWS
    june = await node.get("/api/hq/stats/alerts", date_from="2026-06-01", date_to="2026-06-30")
    assert june["rows"] == [
        {
            "post": G,
            "evidence": "document",
            "raised": 1,
            "confirmed": 1,
            "dismissed": 0,
            "pending": 0,
        }
    ]
    kobeni = await node.get("/api/hq/stats/alerts", **OCTOBER, post=K)
    assert kobeni["rows"] == ALERT_ROWS[3:]


async def test_statistics_bucket_in_the_national_time_zone(national_node: Hq) -> None:
    """In UTC+1 the crossing at 23:30 UTC on 31 October falls on 1 November."""
    node = national_node
    lagos = replace(node.node, settings=replace(node.node.settings, timezone="Africa/Lagos"))
    october = {"date_from": date(2026, 10, 1), "date_to": date(2026, 10, 31)}
    monthly = await node.call(hq.flow_statistics, node=lagos, **october, period="month")
    assert monthly.rows == [
        flow(G, "2026-10-01", entries=3, exits=1, refused=1),
        flow(K, "2026-10-01", entries=1, exits=4),
    ]
    daily = await node.call(
        hq.flow_statistics,
        node=lagos,
        date_from=date(2026, 10, 31),
        date_to=date(2026, 11, 1),
        period="day",
        post=K,
    )
    assert daily.rows == [flow(K, "2026-11-01", entries=1)]
    ages = await node.call(
        hq.demographic_statistics,
        node=lagos,
        date_from=date(2026, 11, 1),
        date_to=date(2026, 11, 1),
    )
    assert ages.rows == [demo("MLI", "F", "18-29", entries=1)]
