"""Nodes under test: backends (SQLite and PostgreSQL), nodes with officers of every role,
HTTP clients, and the face photos. Under CI=true a missing PostgreSQL, face photo folder
or Chromium fails the test instead of skipping it."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import create_async_engine

from registry.app import create_app
from registry.db import Database, make_engine
from registry.migrate import upgrade_database
from registry.node import Node
from registry.officers.service import create_officer, login
from registry.settings import Settings
from tests.support.factories import document_number

ROOT = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI", "").lower() == "true"
PG_ADMIN_URL = os.environ.get(
    "BORDERPOST_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
ROLES = ("officer", "supervisor", "protection", "hq_analyst", "liaison", "admin")
PASSWORD = "correct-horse-battery"
NODE_CODE = "MR-GOGUI"
NATIONAL_CODE = "MR-NATIONAL"


def missing(what: str) -> None:
    """Skip outside CI; fail under CI=true, where every real part must be present."""
    if IN_CI:
        pytest.fail(f"{what} (required under CI=true)")
    pytest.skip(what)


# ---------------------------------------------------------------- face photos
def faces_path() -> Path:
    return Path(os.environ.get("BORDERPOST_FACES_DIR", ROOT.parent / "shared" / "faces"))


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    path = faces_path()
    if not (path / "obama_1.jpg").exists():
        missing(f"face photos not found at {path}; set BORDERPOST_FACES_DIR")
    return path


@pytest.fixture(scope="session")
def astronaut_path() -> Path:
    import skimage.data

    path = Path(skimage.data.__file__).parent / "astronaut.png"
    assert path.exists(), "scikit-image ships astronaut.png"
    return path


# ---------------------------------------------------------------- PostgreSQL
def pg_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


def pg_url(database: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{database}"


async def create_pg_database(name: str) -> None:
    engine = create_async_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await engine.dispose()


async def drop_pg_database(name: str) -> None:
    engine = create_async_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await engine.dispose()


# ---------------------------------------------------------------- nodes
@dataclass
class Backend:
    """A migrated database with one officer of every role, ready to copy/reset per test."""

    name: str
    template: str  # SQLite: path of the template file; PostgreSQL: database URL

    async def fresh_url(self, data_dir: Path) -> str:
        if self.name == "sqlite":
            target = data_dir / "borderpost.db"
            shutil.copy(self.template, target)
            return f"sqlite+aiosqlite:///{target}"
        engine = create_async_engine(self.template)
        try:
            async with engine.begin() as conn:
                tables = (
                    (
                        await conn.execute(
                            text(
                                "SELECT tablename FROM pg_tables WHERE schemaname='public' "
                                "AND tablename "
                                "NOT IN ('alembic_version','officer','auth_token')"
                            )
                        )
                    )
                    .scalars()
                    .all()
                )
                if tables:
                    await conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY"))
                await conn.execute(
                    text(
                        "DELETE FROM auth_token WHERE officer_id IN (SELECT id FROM officer "
                        "WHERE username NOT IN :names)"
                    ).bindparams(bindparam("names", value=list(ROLES), expanding=True))
                )
                await conn.execute(
                    text("DELETE FROM officer WHERE username NOT IN :names").bindparams(
                        bindparam("names", value=list(ROLES), expanding=True)
                    )
                )
        finally:
            await engine.dispose()
        return self.template


def base_settings(data_dir: Path, database_url: str, **overrides: Any) -> Settings:
    return replace(
        Settings(),
        data_dir=data_dir,
        database_url=database_url,
        node_code=overrides.pop("node_code", NODE_CODE),
        **overrides,
    )


def national_settings(data_dir: Path, url: str, **overrides: Any) -> Settings:
    """A national node's settings (its secret is long enough to pass the start-up check)."""
    return replace(
        Settings(),
        role="national",
        node_code=NATIONAL_CODE,
        database_url=url,
        secret_key="x" * 40,
        data_dir=data_dir,
        **overrides,
    )


async def migrate(url: str, data_dir: Path, revision: str = "head") -> None:
    """Run the migrations on a national database up to ``revision``."""
    engine = make_engine(national_settings(data_dir, url))
    try:
        await upgrade_database(engine, revision)
    finally:
        await engine.dispose()


async def seed_officers(settings: Settings) -> dict[str, str]:
    """Create one officer per role (username = role) and return their tokens."""
    node = Node.build(settings)
    tokens: dict[str, str] = {}
    try:
        async with node.db.write_transaction() as session:
            for role in ROLES:
                await create_officer(
                    session,
                    node=node,
                    actor=None,
                    username=role,
                    full_name=f"Test {role}",
                    role=role,
                    password=PASSWORD,
                )
        node.settings = replace(settings, token_ttl_hours=24 * 30)
        for role in ROLES:
            tokens[role] = (await login(node, username=role, password=PASSWORD)).token
    finally:
        await node.db.dispose()
    return tokens


@dataclass
class SeededBackend:
    backend: Backend
    tokens: dict[str, str]


async def _prepare(name: str, workdir: Path) -> SeededBackend:
    if name == "sqlite":
        template = workdir / "template.db"
        url = f"sqlite+aiosqlite:///{template}"
        backend = Backend("sqlite", str(template))
    else:
        db_name = f"bp_test_{os.getpid()}"
        await create_pg_database(db_name)
        url = pg_url(db_name)
        backend = Backend("postgres", url)
    settings = base_settings(workdir, url)
    engine = make_engine(settings)
    try:
        await upgrade_database(engine)
    finally:
        await engine.dispose()
    return SeededBackend(backend, await seed_officers(settings))


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def seeded_backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SeededBackend]:
    name = request.param
    if name == "postgres" and not pg_reachable():
        missing("PostgreSQL is not reachable at 127.0.0.1:5432")
    workdir = tmp_path_factory.mktemp(f"backend-{name}")
    seeded = asyncio.run(_prepare(name, workdir))
    yield seeded
    if name == "postgres":
        asyncio.run(drop_pg_database(seeded.backend.template.rsplit("/", 1)[1]))


@dataclass
class NodeUnderTest:
    """A running app (ASGI client), its node, and bearer headers for every role."""

    client: AsyncTestClient[Any]
    node: Node
    tokens: dict[str, str]
    backend: str
    db: Database  # the test's own connection pool (the app's pool lives on its own loop)

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


@pytest.fixture
async def post_node(seeded_backend: SeededBackend, tmp_path: Path) -> AsyncIterator[NodeUnderTest]:
    async with app_under_test(seeded_backend, tmp_path) as node:
        yield node


@asynccontextmanager
async def app_under_test(
    seeded_backend: SeededBackend, tmp_path: Path, **settings: Any
) -> AsyncIterator[NodeUnderTest]:
    """A post app on a fresh database of the seeded backend, with ``settings`` on top of
    the test defaults, and a client to it, until the block ends."""
    url = await seeded_backend.backend.fresh_url(tmp_path)
    app = create_app(base_settings(tmp_path, url, **settings))
    database = Database(app.state.node.settings)
    try:
        async with AsyncTestClient(app=app) as client:
            yield NodeUnderTest(
                client,
                app.state.node,
                seeded_backend.tokens,
                seeded_backend.backend.name,
                database,
            )
    finally:
        await database.dispose()


@dataclass
class LiveNode:
    """The app served by a real uvicorn server on 127.0.0.1, in the test's event loop."""

    url: str
    node: Node
    tokens: dict[str, str]
    db: Database

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


async def serve(app: Any) -> tuple[str, Any, asyncio.Task[None]]:
    """Start uvicorn on a free port in the test's event loop; the URL, the server, its task."""
    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    return f"http://127.0.0.1:{port}", server, task


@pytest.fixture
async def live_post(seeded_backend: SeededBackend, tmp_path: Path) -> AsyncIterator[LiveNode]:
    url = await seeded_backend.backend.fresh_url(tmp_path)
    settings = base_settings(tmp_path, url)
    app = create_app(settings)
    base, server, task = await serve(app)
    database = Database(settings)
    try:
        yield LiveNode(base, app.state.node, seeded_backend.tokens, database)
    finally:
        server.should_exit = True
        await task
        await database.dispose()


def unique_number() -> str:
    return document_number("P")
