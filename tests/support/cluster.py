"""A real national node (PostgreSQL) and real posts (SQLite), each a `borderpost serve`
subprocess on 127.0.0.1, enrolled through the CLI as operators do it: national's admin
issues a one-time code (`node invite`), the post presents it (`node enrol --code`)."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support import servers
from tests.support.factories import passport_mrz
from tests.support.nodes import create_pg_database, drop_pg_database, pg_url
from tests.support.servers import ServerProcess, bearer, cli, login_token, node_env

NATIONAL = "MR-NATIONAL"
SECRET = "e2e-secret-" + "x" * 40
PASSWORD = "desk-password-123"


def mrz(number: str, *, surname: str = "CISSE", given: str = "OUMAR") -> str:
    return passport_mrz(
        number, surname=surname, given=given, expiry=date.today() + timedelta(days=700)
    )


@dataclass
class Post:
    code: str
    env: dict[str, str]
    server: ServerProcess
    token: str = ""

    @property
    def data_dir(self) -> Path:
        return Path(self.env["BORDERPOST_DATA_DIR"])

    def headers(self) -> dict[str, str]:
        if not self.token:
            self.token = login_token(self.server.url, "desk", PASSWORD)
        return {"Authorization": f"Bearer {self.token}"}

    def register(self, count: int, prefix: str) -> list[str]:
        ids = []
        with httpx.Client(headers=self.headers(), timeout=30) as client:
            for n in range(count):
                response = client.post(
                    f"{self.server.url}/api/crossings",
                    json={
                        "direction": "entry" if n % 2 == 0 else "exit",
                        "mrz": mrz(f"{prefix}{n:05d}"),
                    },
                )
                assert response.status_code == 201, response.text
                ids.append(response.json()["id"])
        return ids

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.data_dir / "borderpost.db") as conn:
            return conn.execute(sql).fetchall()


@dataclass
class Cluster:
    root: Path
    database: str
    national_env: dict[str, str]
    national: ServerProcess
    posts: dict[str, Post] = field(default_factory=dict)

    def national_rows(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        async def run() -> list[tuple[Any, ...]]:
            engine = create_async_engine(pg_url(self.database))
            try:
                async with engine.connect() as conn:
                    return [tuple(r) for r in (await conn.execute(text(sql), params)).all()]
            finally:
                await engine.dispose()

        return asyncio.run(run())

    def national_execute(self, sql: str, **params: Any) -> None:
        async def run() -> None:
            engine = create_async_engine(pg_url(self.database))
            try:
                async with engine.begin() as conn:
                    await conn.execute(text(sql), params)
            finally:
                await engine.dispose()

        asyncio.run(run())

    def national_token(self, username: str) -> dict[str, str]:
        return bearer(self.national.url, username, PASSWORD)

    def stop(self) -> None:
        for post in self.posts.values():
            post.server.stop()
        self.national.stop()


def add_account(env: dict[str, str], username: str, role: str, *options: str) -> str:
    """An account on one of the cluster's nodes, password ``PASSWORD``; its id."""
    created = servers.add_account(env, username, role, *options, password=PASSWORD)
    return str(json.loads(created.stdout)["id"])


def invite(national_env: dict[str, str], post_code: str, *options: str) -> str:
    """A one-time enrolment code for ``post_code``, issued on national through the CLI."""
    return str(json.loads(cli(national_env, "node", "invite", post_code, *options).stdout)["code"])


def enrol(
    post_env: dict[str, str], national_env: dict[str, str], national_url: str, *options: str
) -> dict[str, Any]:
    """Invite the post on national, then enrol it with the code (approved at once)."""
    code = invite(national_env, post_env["BORDERPOST_NODE_CODE"])
    answer = cli(
        post_env, "node", "enrol", "--national-url", national_url, "--code", code, *options
    )
    return dict(json.loads(answer.stdout))


def start_cluster(
    root: Path, post_codes: tuple[str, ...], *, tls: tuple[Path, Path] | None = None
) -> Cluster:
    """National (https with ``tls``: certificate and key files) and enrolled posts."""
    database = f"bp_e2e_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    asyncio.run(create_pg_database(database))
    national_env = node_env(
        root / "national",
        role="national",
        node_code=NATIONAL,
        database_url=pg_url(database),
        secret_key=SECRET,
    )
    cli(national_env, "db", "upgrade")
    add_account(national_env, "hq.admin", "admin")
    add_account(national_env, "hq.supervisor", "supervisor")
    national = ServerProcess(national_env, tls=tls).start()
    cluster = Cluster(root, database, national_env, national)
    for code in post_codes:
        env = post_env(root, code)
        assert enrol(env, national_env, national.url)["status"] == "approved"
        cluster.posts[code] = Post(code, env, ServerProcess(env).start())
    return cluster


def post_env(root: Path, code: str, **settings: str) -> dict[str, str]:
    """A migrated post (not enrolled, not serving) with a desk officer."""
    env = node_env(
        root / code,
        node_code=code,
        sync_interval_seconds="3600",
        watchlist_refresh_seconds="0.5",
        **settings,
    )
    cli(env, "db", "upgrade")
    add_account(env, "desk", "officer")
    return env


def drop_cluster(cluster: Cluster) -> None:
    cluster.stop()
    asyncio.run(drop_pg_database(cluster.database))


def canonical(value: Any) -> str:
    return str(uuid.UUID(str(value)))
