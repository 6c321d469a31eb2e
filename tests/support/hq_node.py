"""The national node of the HQ tests (tests/hq/test_hq_*.py), over HTTP on PostgreSQL
and, for the SQLite fallbacks of the same service functions, on SQLite.

``seeded_national`` prepares each backend once for the whole session (migrated, officers seeded, the
hand-made dataset of tests/support/hq_dataset.py loaded) and ``national_node`` serves it to one test
(``Hq``: the app over HTTP, plus direct service calls in the test's own pool). Both reach the
tests through tests/conftest.py. No test changes the dataset: a test that writes
rolls its writes back, and the audit events every read appends are counted as differences.
Also the helpers the HQ test modules share: ``OCTOBER``, ``ids_of``, ``get_csv``, ``as_strings``.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from registry.app import create_app
from registry.db import Database
from registry.hq.controller import HqController
from registry.models import AuditEvent, Officer
from registry.node import Node
from tests.support.hq_dataset import World, require_postgres, seed_world
from tests.support.nodes import (
    create_pg_database,
    drop_pg_database,
    migrate,
    national_settings,
    pg_url,
    seed_officers,
)


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


@pytest.fixture(scope="session", params=["postgres", "sqlite"])
def seeded_national(
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
async def national_node(seeded_national: SeededNational) -> AsyncIterator[Hq]:
    settings = national_settings(seeded_national.data_dir, seeded_national.url)
    app = with_hq_routes(create_app(settings))
    database = Database(settings)
    try:
        async with AsyncTestClient(app=app) as client:
            yield Hq(
                client,
                app.state.node,
                database,
                seeded_national.tokens,
                seeded_national.world,
                seeded_national.backend,
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
