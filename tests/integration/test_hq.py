"""National headquarters (role=national): cross-post searches, a person's timeline over linked
records, statistics as JSON and CSV, stays closed across posts, the role matrix and the audit
of every read, over HTTP on PostgreSQL and, for the SQLite fallbacks of the same service
functions, on SQLite. Migrations and schema drift are in test_hq_schema.py, EXPLAIN plans in
test_hq_plans.py.

The dataset (tests/hq_dataset.py) is small and hand-made so every answer is known: posts
MR-GOGUI (G) and MR-KOBENI (K), October 2026, time zone Africa/Nouakchott (UTC+0) unless a
test says otherwise.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from registry import hq
from registry.app import create_app
from registry.db import Database
from registry.hq.controller import HqController
from registry.ids import uuid7
from registry.models import AuditEvent, Crossing, Officer
from registry.node import Node
from registry.outbox import insert_rows
from registry.stays import StayRules
from tests.conftest import (
    ROLES,
    create_pg_database,
    drop_pg_database,
    migrate,
    national_settings,
    pg_url,
    seed_officers,
)
from tests.hq_dataset import NATIONAL, G, K, World, at, require_postgres, seed_world

HQ_ROLES = {"hq_analyst", "admin"}


# ---------------------------------------------------------------- fixtures
@dataclass
class SeededNational:
    backend: str
    url: str
    data_dir: Path
    tokens: dict[str, str]
    world: World


async def _prepare(backend: str, workdir: Path) -> SeededNational:
    if backend == "postgres":
        await create_pg_database(f"bp_hq_{os.getpid()}")
        url = pg_url(f"bp_hq_{os.getpid()}")
        national_settings(workdir, url).validate()
    else:
        url = f"sqlite+aiosqlite:///{workdir / 'national.db'}"
    await migrate(url, workdir)
    settings = national_settings(workdir, url)
    tokens = await seed_officers(settings)
    return SeededNational(backend, url, workdir, tokens, await seed_world(settings))


@pytest.fixture(scope="module", params=["postgres", "sqlite"])
def national(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SeededNational]:
    if request.param == "postgres":
        require_postgres()
    workdir = tmp_path_factory.mktemp(f"national-{request.param}")
    seeded = asyncio.run(_prepare(request.param, workdir))
    yield seeded
    if request.param == "postgres":
        asyncio.run(drop_pg_database(f"bp_hq_{os.getpid()}"))


@dataclass
class Hq:
    """The national app over HTTP, plus direct service calls in the test's own pool."""

    client: AsyncTestClient[Any]
    node: Node
    db: Database
    tokens: dict[str, str]
    world: World
    backend: str

    def auth(self, role: str = "hq_analyst") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    async def get(self, path: str, role: str = "hq_analyst", **params: Any) -> Any:
        response = await self.client.get(path, params=params, headers=self.auth(role))
        assert response.status_code == 200, response.text
        return response.json()

    async def officer(self, username: str = "hq_analyst") -> Officer:
        async with self.db.session() as session:
            found = await session.scalar(select(Officer).where(Officer.username == username))
        assert found is not None
        return found

    async def call(self, service: Callable[..., Any], node: Node | None = None, **kw: Any) -> Any:
        officer = await self.officer()
        async with self.db.write_transaction() as session:
            return await service(session, node=node or self.node, officer=officer, **kw)

    async def audit_count(self) -> int:
        async with self.db.session() as session:
            return int(await session.scalar(select(func.count()).select_from(AuditEvent)) or 0)


def with_hq_routes(app: Any) -> Any:
    """Register the HQ controller unless registry.app already does (the lead wires it)."""
    if not any(route.path.startswith("/api/hq") for route in app.routes):
        app.register(HqController)
    return app


@pytest.fixture
async def national_node(national: SeededNational) -> AsyncIterator[Hq]:
    settings = national_settings(national.data_dir, national.url)
    app = with_hq_routes(create_app(settings))
    database = Database(settings)
    try:
        async with AsyncTestClient(app=app) as client:
            yield Hq(
                client,
                app.state.node,
                database,
                national.tokens,
                national.world,
                national.backend,
            )
    finally:
        await database.dispose()


OCTOBER = {"date_from": "2026-10-01", "date_to": "2026-10-31"}


def ids_of(items: list[dict[str, Any]], world: World) -> list[str]:
    return world.labels([item["id"] for item in items])


def parse_csv(body: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body)))


async def get_csv(node: Hq, path: str, **params: Any) -> tuple[list[str], list[dict[str, str]]]:
    response = await node.client.get(path, params=params, headers=node.auth())
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    header = response.text.splitlines()[0].split(",")
    return header, parse_csv(response.text)


def as_strings(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{k: "" if v is None else str(v) for k, v in row.items()} for row in rows]


# ---------------------------------------------------------------- searches
async def test_document_search_spans_posts(national_node: Hq) -> None:
    node, world = national_node, national_node.world
    before = await node.audit_count()
    found = await node.get("/api/hq/search/document", issuing_state="MLI", number="p-1000001")
    assert ids_of(found, world) == ["c2", "c1"]
    assert [c["post"] for c in found] == [K, G]
    assert {c["traveller"]["origin"] for c in found} == {G, K}
    sen = await node.get("/api/hq/search/document", issuing_state="SEN", number="B7654321")
    assert ids_of(sen, world) == ["c8", "c7"]
    assert await node.audit_count() == before + 2


async def test_name_search_is_fuzzy_and_transliteration_aware(national_node: Hq) -> None:
    node, world = national_node, national_node.world

    async def names(**params: Any) -> list[str]:
        hits = await node.get("/api/hq/search/name", **params)
        return sorted(world.labels([h["traveller"]["id"] for h in hits]))

    ould_ahmed = ["T1", "T2", "T3"]
    assert await names(name="Mohamed Ould Ahmed", date_of_birth="1979-05-02") == ould_ahmed
    assert await names(name="Muhammad ould Ahmad") == ould_ahmed
    assert await names(name="محمد ولد أحمد") == ould_ahmed
    assert await names(name="Ahmed, Mohammed O.", date_of_birth="1979-05-02") == ould_ahmed
    assert await names(name="Diarra Moussa") == ["T4", "T5"]
    assert await names(name="Fatoumata Sow", date_of_birth="1965-01-20") == ["T7", "T8"]
    assert await names(name="Mohamed Ould Ahmed", date_of_birth="1990-03-10") == []
    hits = await node.get("/api/hq/search/name", name="Mohamed Ould Ahmed")
    assert all(h["score"] == 100.0 for h in hits)
    response = await node.client.get(
        "/api/hq/search/name", params={"name": "1234"}, headers=node.auth()
    )
    assert response.status_code == 422
    assert response.json()["invalid_params"][0]["name"] == "name"


async def test_crossing_search_filters_combine_and_paginate(national_node: Hq) -> None:
    node, world = national_node, national_node.world

    async def labels(**params: Any) -> list[str]:
        page = await node.get("/api/hq/crossings", **{**OCTOBER, **params})
        return ids_of(page["items"], world)

    assert await labels(post=G) == ["c12", "c11", "c4", "c7", "c1"]  # c10 superseded
    assert await labels(direction="exit") == ["c8", "c14", "c11", "c5", "c2"]
    assert await labels(nationality="SEN") == ["c8", "c7"]
    assert await labels(decision="refused") == ["c12"]
    assert await labels(post=K, direction="entry", nationality="MLI") == ["c13", "c3"]
    assert await labels(post=G, date_from="2026-06-01", date_to="2026-07-31") == ["c9", "c6"]
    first = await node.get("/api/hq/crossings", **OCTOBER, post=G, limit=2)
    second = await node.get("/api/hq/crossings", **OCTOBER, post=G, limit=2, offset=2)
    last = await node.get("/api/hq/crossings", **OCTOBER, post=G, limit=2, offset=4)
    assert [ids_of(p["items"], world) for p in (first, second, last)] == [
        ["c12", "c11"],
        ["c4", "c7"],
        ["c1"],
    ]
    assert [p["has_more"] for p in (first, second, last)] == [True, True, False]
    bad = await node.client.get(
        "/api/hq/crossings",
        params={"date_from": "2026-10-31", "date_to": "2026-10-01"},
        headers=node.auth(),
    )
    assert bad.status_code == 422
    assert bad.json()["invalid_params"][0]["name"] == "date_to"


# ---------------------------------------------------------------- timeline
def evidence_of(timeline: dict[str, Any], world: World) -> dict[str, dict[str, Any]]:
    return {
        world.labels([link["traveller"]["id"]])[0]: {
            "confidence": link["confidence"],
            "evidence": {e["kind"]: e for e in link["evidence"]},
        }
        for link in timeline["linked"]
    }


async def test_timeline_links_records_with_their_evidence(national_node: Hq) -> None:
    node, world = national_node, national_node.world
    before = await node.audit_count()
    timeline = await node.get(f"/api/hq/travellers/{world['T1']}/timeline")
    assert world.labels([timeline["traveller"]["id"]]) == ["T1"]
    links = evidence_of(timeline, world)
    assert set(links) == {"T2", "T3"}  # T14 shares the birth date only: not linked
    t2 = links["T2"]["evidence"]
    assert t2["document"] == {
        "kind": "document",
        "confidence": 1.0,
        "issuing_state": "MLI",
        "number": "P1000001",
    }
    assert t2["face"] == {"kind": "face", "confidence": 0.8, "distance": 0.2}
    assert t2["name_dob"]["confidence"] == 1.0 and t2["name_dob"]["similarity"] == 100.0
    assert set(links["T3"]["evidence"]) == {"name_dob"}
    assert links["T2"]["confidence"] == links["T3"]["confidence"] == 1.0
    assert ids_of(timeline["crossings"], world) == ["c1", "c2", "c3"]
    assert [c["post"] for c in timeline["crossings"]] == [G, K, K]
    assert await node.audit_count() == before + 1
    async with node.db.session() as session:
        event_ = await session.scalar(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1))
    assert event_ is not None and event_.purpose == "hq_timeline"
    assert event_.record_id == world["T1"]
    assert sorted(world.labels(event_.detail["linked"])) == ["T2", "T3"]

    by_face = await node.get(f"/api/hq/travellers/{world['T4']}/timeline")
    assert evidence_of(by_face, world) == {
        "T5": {
            "confidence": 0.65,
            "evidence": {"face": {"kind": "face", "confidence": 0.65, "distance": 0.35}},
        }
    }
    assert ids_of(by_face["crossings"], world) == ["c4", "c5"]
    alone = await node.get(f"/api/hq/travellers/{world['T9']}/timeline")
    assert alone["linked"] == [] and ids_of(alone["crossings"], world) == ["c9"]
    sow = evidence_of(await node.get(f"/api/hq/travellers/{world['T7']}/timeline"), world)
    assert set(sow) == {"T8"} and set(sow["T8"]["evidence"]) == {"document", "name_dob"}


async def test_timeline_of_an_unknown_traveller_is_404(national_node: Hq) -> None:
    response = await national_node.client.get(
        f"/api/hq/travellers/{uuid.uuid4()}/timeline", headers=national_node.auth()
    )
    assert response.status_code == 404
    assert response.json()["invalid_params"][0]["name"] == "traveller_id"


# ---------------------------------------------------------------- statistics
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


# ---------------------------------------------------------------- stays
async def test_stays_are_closed_across_posts(national_node: Hq) -> None:
    node, world = national_node, national_node.world
    open_ = await node.get("/api/hq/stays/open", as_of="2026-11-01")
    assert ids_of(open_["items"], world) == ["c6", "c9", "c3", "c4", "c13"]
    assert open_["total"] == 5
    details = {world.labels([v["id"]])[0]: v for v in open_["items"]}
    assert (details["c6"]["allowed_until"], details["c6"]["allowed_until_source"]) == (
        "2026-08-29",
        "computed",
    )
    assert (details["c9"]["allowed_until"], details["c9"]["allowed_until_source"]) == (
        "2026-09-28",
        "computed",
    )
    assert details["c3"]["days_overstayed"] == 0
    over = await node.get("/api/hq/stays/overstays", as_of="2026-11-01")
    assert ids_of(over["items"], world) == ["c6", "c9"]
    assert [v["days_overstayed"] for v in over["items"]] == [64, 34]
    earlier = await node.get("/api/hq/stays/open", as_of="2026-10-10")
    assert ids_of(earlier["items"], world) == ["c6", "c9", "c3", "c7", "c4"]
    earlier_over = await node.get("/api/hq/stays/overstays", as_of="2026-10-10")
    assert [v["days_overstayed"] for v in earlier_over["items"]] == [42, 12]
    page = await node.get("/api/hq/stays/open", as_of="2026-11-01", limit=2, offset=2)
    assert ids_of(page["items"], world) == ["c3", "c4"] and page["total"] == 5


async def test_stays_follow_the_rules_in_force_when_read(national_node: Hq) -> None:
    node, world = national_node, national_node.world
    # Stricter rules come into force: every open stay's limit follows them when read (c6 was
    # recorded with the 90-day limit of its entry day, 2026-08-29).
    node.node.stay_rules_override = StayRules.from_mapping(
        {"default": {"max_days": 30, "window_days": 60}, "MLI": {"max_days": 20, "window_days": 60}}
    ).for_country("MRT")
    open_ = await node.get("/api/hq/stays/open", as_of="2026-11-01")
    limits = {world.labels([v["id"]])[0]: v["allowed_until"] for v in open_["items"]}
    assert limits == {
        "c6": "2026-06-30",
        "c9": "2026-07-30",
        "c3": "2026-10-22",
        "c4": "2026-10-24",
        "c13": "2026-11-19",
    }
    over = await node.get("/api/hq/stays/overstays", as_of="2026-11-01")
    assert ids_of(over["items"], world) == ["c6", "c9", "c3", "c4"]
    assert [v["days_overstayed"] for v in over["items"]] == [124, 94, 10, 8]
    # Unlimited for everyone: nobody overstays, whatever was recorded at entry.
    node.node.stay_rules_override = StayRules.from_mapping({"default": {"max_days": None}})
    assert (await node.get("/api/hq/stays/overstays", as_of="2026-11-01"))["items"] == []


async def test_own_citizens_never_overstay(national_node: Hq) -> None:
    node, world = national_node, national_node.world
    officer = await node.officer()
    citizen = Crossing(  # T14 (MRT) entered in March, recorded with the old 90-day limit
        id=uuid7(),
        origin=G,
        post=G,
        direction="entry",
        occurred_at=at(3, 1, 9),
        officer_id=world.ids[G],
        traveller_id=world.ids["T14"],
        document_id=world.ids["D14"],
        mode="car",
        decision="cleared",
        stay_allowed_until=date(2026, 5, 29),
    )
    async with node.db.sessions() as session:
        await session.begin()  # rolled back: the module's dataset stays as it is
        await insert_rows(session, citizen)
        kw: dict[str, Any] = {"node": node.node, "officer": officer, "as_of": date(2026, 11, 1)}
        over = await hq.cross_post_stays(session, overstays_only=True, **kw)
        open_ = await hq.cross_post_stays(session, overstays_only=False, **kw)
        await session.rollback()
    assert [v["id"] for v in over["items"]] == [world["c6"], world["c9"]]
    mine = [v for v in open_["items"] if v["id"] == str(citizen.id)]
    assert len(mine) == 1
    assert (mine[0]["allowed_until"], mine[0]["allowed_until_source"]) == (None, "unlimited")
    assert mine[0]["days_overstayed"] == 0


# ---------------------------------------------------------------- roles and audit
ENDPOINTS: list[tuple[str, dict[str, Any]]] = [
    ("/api/hq/search/document", {"issuing_state": "MLI", "number": "P1000001"}),
    ("/api/hq/search/name", {"name": "Mohamed Ould Ahmed"}),
    ("/api/hq/crossings", OCTOBER),
    ("/api/hq/travellers/{T1}/timeline", {}),
    ("/api/hq/stats/flows", OCTOBER),
    ("/api/hq/stats/flows.csv", OCTOBER),
    ("/api/hq/stats/net-flow", OCTOBER),
    ("/api/hq/stats/net-flow.csv", OCTOBER),
    ("/api/hq/stats/demographics", OCTOBER),
    ("/api/hq/stats/demographics.csv", OCTOBER),
    ("/api/hq/stats/alerts", OCTOBER),
    ("/api/hq/stats/alerts.csv", OCTOBER),
    ("/api/hq/stays/open", {"as_of": "2026-11-01"}),
    ("/api/hq/stays/overstays", {"as_of": "2026-11-01"}),
]


def test_every_hq_route_is_in_the_role_matrix(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'routes.db'}"
    app = with_hq_routes(create_app(national_settings(tmp_path, url)))
    routes = {route.path for route in app.routes if route.path.startswith("/api/hq")}
    covered = {path.replace("{T1}", "{traveller_id:uuid}") for path, _ in ENDPOINTS}
    assert routes == covered


async def test_role_matrix_and_audit(national_node: Hq) -> None:
    node = national_node
    failures = []
    for template, params in ENDPOINTS:
        path = template.replace("{T1}", node.world["T1"])
        anonymous = await node.client.get(path, params=params)
        if anonymous.status_code != 401:
            failures.append(f"{path} without token -> {anonymous.status_code}")
        for role in ROLES:
            before = await node.audit_count()
            response = await node.client.get(path, params=params, headers=node.auth(role))
            expected = 200 if role in HQ_ROLES else 403
            if response.status_code != expected:
                failures.append(f"{path} as {role} -> {response.status_code}, not {expected}")
            audited = await node.audit_count() - before
            if audited != (1 if role in HQ_ROLES else 0):
                failures.append(f"{path} as {role} wrote {audited} audit events")
    assert failures == []
    async with node.db.session() as session:
        last = await session.scalar(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1))
    admin = await node.officer("admin")
    assert last is not None and last.officer_id == admin.id and last.origin == NATIONAL
