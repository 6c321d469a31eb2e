"""National headquarters (role=national): cross-post searches, a person's timeline over linked
records, statistics as JSON and CSV, stays closed across posts, the role matrix and the audit
of every read, over HTTP on PostgreSQL and, for the SQLite fallbacks of the same service
functions, on SQLite. PostgreSQL only: migration 0004 (monthly partitions, down and up again,
future partitions), schema drift, and EXPLAIN plans proving index use and partition pruning.

The dataset is small and hand-made so every answer is known: posts MR-GOGUI (G) and
MR-KOBENI (K), October 2026, time zone Africa/Nouakchott (UTC+0) unless a test says otherwise.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import os
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import Column, MetaData, Table, event, func, insert, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlmodel import SQLModel

from registry import hq
from registry.app import create_app
from registry.db import Database
from registry.hq.controller import HqController
from registry.ids import uuid7
from registry.migrate import alembic_config
from registry.models import (
    Alert,
    AlertAdjudication,
    AuditEvent,
    Crossing,
    Officer,
    Photo,
    TravelDocument,
    Traveller,
)
from registry.names import name_key, normalise_document_number
from registry.node import Node
from registry.outbox import insert_rows, row_of
from registry.settings import Settings
from registry.stays import StayRules
from registry.watchlists.content import template_bytes
from tests.conftest import (
    ROLES,
    create_pg_database,
    drop_pg_database,
    migrate,
    missing,
    national_settings,
    pg_reachable,
    pg_url,
    seed_officers,
)

NATIONAL = "MR-NATIONAL"
G, K = "MR-GOGUI", "MR-KOBENI"
HQ_ROLES = {"hq_analyst", "admin"}


def at(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


# ---------------------------------------------------------------- the dataset
# label: (origin, surname, given names, date of birth, sex, nationality)
TRAVELLERS: dict[str, tuple[str, str, str, date | None, str, str]] = {
    "T1": (G, "OULD AHMED", "MOHAMMED", date(1979, 5, 2), "M", "MLI"),
    "T2": (K, "OULD AHMAD", "MUHAMMAD", date(1979, 5, 2), "M", "MLI"),  # T1 at Kobeni
    "T3": (K, "OULD AHMED", "MOHAMED", date(1979, 5, 2), "M", "MLI"),  # same name+dob, own doc
    "T4": (G, "DIARRA", "MOUSSA", date(1990, 3, 10), "M", "MLI"),
    "T5": (K, "DIARA", "MUSA", date(1990, 3, 1), "M", "MLI"),  # T4's face, other dob/doc
    "T6": (G, "TRAORE", "AMINATA", date(2010, 6, 15), "F", "SEN"),  # overstayer (recorded)
    "T7": (G, "SOW", "FATOUMATA", date(1965, 1, 20), "F", "SEN"),  # entry at Gogui...
    "T8": (K, "SOW", "FATOUMATA", date(1965, 1, 20), "F", "SEN"),  # ...exit at Kobeni
    "T9": (G, "MARTIN", "PAUL", date(1970, 4, 4), "M", "FRA"),  # overstayer (computed)
    "T10": (G, "KEITA", "MARIAM", date(2008, 10, 11), "F", "MLI"),  # 17 the day before 18
    "T11": (G, "CAMARA", "SEKOU", date(1985, 2, 2), "M", "GIN"),  # refused
    "T12": (K, "COULIBALY", "AWA", date(2000, 11, 1), "F", "MLI"),  # 23:30 UTC on Oct 31
    "T13": (K, "ADAM", "ISSA", None, "X", "SDN"),  # no birth date
    "T14": (G, "SY", "ALIOU", date(1979, 5, 2), "M", "MRT"),  # T1's birth date only
}
# label: (traveller, issuing state, number as typed)
DOCUMENTS: dict[str, tuple[str, str, str]] = {
    "D1": ("T1", "MLI", "P1000001"),
    "D2": ("T2", "MLI", "P 1000001"),
    "D3": ("T3", "MLI", "P2000002"),
    "D4": ("T4", "MLI", "M4444444"),
    "D5": ("T5", "MLI", "M5555555"),
    "D6": ("T6", "SEN", "A1234567"),
    "D7": ("T7", "SEN", "B7654321"),
    "D8": ("T8", "SEN", "B-7654321"),
    "D9": ("T9", "FRA", "12AB34567"),
    "D10": ("T10", "MLI", "X0000010"),
    "D11": ("T11", "GIN", "R1111111"),
    "D12": ("T12", "MLI", "Z1212121"),
    "D13": ("T13", "SDN", "S0000013"),
    "D14": ("T14", "MRT", "N1400014"),
}


@dataclass(frozen=True)
class C:
    """One crossing of the dataset."""

    document: str
    post: str
    direction: str
    when: datetime
    decision: str = "cleared"
    until: date | None = None
    photo: str | None = None
    supersedes: str | None = None


CROSSINGS: dict[str, C] = {
    "c1": C("D1", G, "entry", at(10, 1, 8), until=date(2026, 12, 29), photo="P1"),
    "c2": C("D2", K, "exit", at(10, 3, 9), photo="P2"),
    "c3": C("D3", K, "entry", at(10, 3, 10), until=date(2026, 12, 31)),
    "c4": C("D4", G, "entry", at(10, 5, 12), until=date(2027, 1, 2), photo="P4"),
    "c5": C("D5", K, "exit", at(10, 6, 7), photo="P5"),
    "c6": C("D6", G, "entry", at(6, 1, 10), until=date(2026, 8, 29)),
    "c7": C("D7", G, "entry", at(10, 5, 9), until=date(2027, 1, 2)),
    "c8": C("D8", K, "exit", at(10, 20, 16)),
    "c9": C("D9", G, "entry", at(7, 1, 11), photo="P9"),
    "c10": C("D10", G, "entry", at(10, 10, 14)),
    "c11": C("D10", G, "exit", at(10, 10, 14), supersedes="c10"),  # corrected direction
    "c12": C("D11", G, "entry", at(10, 12, 10), decision="refused"),
    "c13": C("D12", K, "entry", at(10, 31, 23, 30), until=date(2027, 1, 28)),
    "c14": C("D13", K, "exit", at(10, 15, 12)),
}
# label: (crossing, evidence, outcome or None, created at)
ALERTS: dict[str, tuple[str, str, str | None, datetime]] = {
    "a1": ("c1", "document", "confirmed", at(10, 1, 8, 1)),
    "a2": ("c3", "name_dob", "dismissed", at(10, 3, 10, 1)),
    "a3": ("c4", "face", None, at(10, 5, 12, 1)),
    "a4": ("c7", "name_dob", "confirmed", at(10, 5, 9, 1)),
    "a5": ("c6", "document", "confirmed", at(6, 1, 10, 1)),  # June: outside October
}


def face_vectors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(42)
    v, w, u = (rng.normal(0, 0.1, 128).astype(np.float32) for _ in range(3))
    p2, p5 = v.copy(), w.copy()
    p2[0] += 0.2  # distance 0.2 from P1
    p5[1] += 0.35  # distance 0.35 from P4
    return {"P1": v, "P2": p2, "P4": w, "P5": p5, "P9": u}


@dataclass
class World:
    """Ids of the seeded records by label."""

    ids: dict[str, uuid.UUID] = field(default_factory=dict)
    photos: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, label: str) -> str:
        return str(self.ids[label])

    def labels(self, ids: list[str]) -> list[str]:
        back = {str(v): k for k, v in self.ids.items()}
        return [back.get(i, i) for i in ids]


def _officers(world: World) -> list[Officer]:
    rows = []
    for post in (G, K):
        officer = Officer(
            username=f"{post.lower()}.officer",
            full_name=f"Officer at {post}",
            role="officer",
            home_post=post,
            password_hash="not-a-hash",
        )
        world.ids[post] = officer.id
        rows.append(officer)
    return rows


def _photos(world: World) -> list[Photo]:
    rows = []
    for label, vector in face_vectors().items():
        sha = hashlib.sha256(label.encode()).hexdigest()
        world.photos[label] = sha
        rows.append(
            Photo(
                sha256=sha,
                origin=G,
                width=100,
                height=100,
                size_bytes=1000,
                face_encoding=template_bytes(vector),
            )
        )
    return rows


def _travellers(world: World) -> list[Traveller]:
    rows = []
    for label, (origin, surname, given, birth, sex, nationality) in TRAVELLERS.items():
        row = Traveller(
            origin=origin,
            surname=surname,
            given_names=given,
            name_key=name_key(surname, given),
            date_of_birth=birth,
            sex=sex,
            nationality=nationality,
        )
        world.ids[label] = row.id
        rows.append(row)
    return rows


def _documents(world: World) -> list[TravelDocument]:
    rows = []
    for label, (traveller, state, number) in DOCUMENTS.items():
        row = TravelDocument(
            origin=TRAVELLERS[traveller][0],
            traveller_id=world.ids[traveller],
            issuing_state=state,
            document_type="P",
            number=number,
            number_norm=normalise_document_number(number),
        )
        world.ids[label] = row.id
        rows.append(row)
    return rows


def _crossings(world: World) -> list[Crossing]:
    rows = []
    traveller_of = {label: doc[0] for label, doc in DOCUMENTS.items()}
    for label, c in CROSSINGS.items():
        row = Crossing(
            id=uuid7(),
            origin=c.post,
            post=c.post,
            direction=c.direction,
            occurred_at=c.when,
            officer_id=world.ids[c.post],
            traveller_id=world.ids[traveller_of[c.document]],
            document_id=world.ids[c.document],
            photo_sha256=world.photos.get(c.photo or ""),
            mode="car",
            decision=c.decision,
            stay_allowed_until=c.until,
            version=2 if c.supersedes else 1,
            supersedes=world.ids[c.supersedes] if c.supersedes else None,
            correction_reason="wrong direction" if c.supersedes else None,
        )
        world.ids[label] = row.id
        rows.append(row)
    return rows


def _alerts(world: World) -> list[Alert | AlertAdjudication]:
    rows: list[Alert | AlertAdjudication] = []
    for label, (crossing, evidence, outcome, created) in ALERTS.items():
        post = CROSSINGS[crossing].post
        alert = Alert(
            origin=post,
            crossing_id=world.ids[crossing],
            entry_id=uuid.uuid4(),
            entry_version=1,
            kind="document" if evidence == "document" else "person",
            evidence=evidence,
            score=1.0,
            action="refer_secondary",
            created_at=created,
        )
        world.ids[label] = alert.id
        rows.append(alert)
        if outcome:
            rows.append(
                AlertAdjudication(
                    origin=post,
                    alert_id=alert.id,
                    outcome=outcome,
                    reason="checked",
                    officer_id=world.ids[post],
                    created_at=created,
                )
            )
    return rows


async def seed_world(settings: Settings) -> World:
    """Insert the dataset with Core inserts (parents first), only into the columns the
    database has: it may stand at an older revision (columns added later keep their
    server defaults when it is upgraded)."""
    world = World()
    database = Database(settings)
    try:
        async with database.write_transaction() as session:
            connection = await session.connection()
            tables: dict[str, Table] = {}  # each table as the database has it
            for rows in (_officers, _photos, _travellers, _documents, _crossings, _alerts):
                for record in rows(world):
                    model = type(record).__table__  # type: ignore[attr-defined]
                    if model.name not in tables:
                        present = await connection.run_sync(
                            lambda sync, name=model.name: {
                                c["name"] for c in inspect(sync).get_columns(name)
                            }
                        )
                        tables[model.name] = Table(
                            model.name,
                            MetaData(),
                            *(Column(c.name, c.type) for c in model.columns if c.name in present),
                        )
                    table = tables[model.name]
                    row = {k: v for k, v in row_of(record).items() if k in table.columns}
                    await session.execute(insert(table), [row])
    finally:
        await database.dispose()
    return world


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


def require_postgres() -> None:
    if not pg_reachable():
        missing("PostgreSQL is not reachable at 127.0.0.1:5432")


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


async def _scalars(engine: AsyncEngine, sql: str) -> list[Any]:
    async with engine.connect() as connection:
        return list((await connection.execute(text(sql))).scalars().all())


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
