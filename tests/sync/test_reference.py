"""Reference data and the background runners end to end: a national node on PostgreSQL and
posts on SQLite, all real servers on 127.0.0.1. Stay rules published through the CLI reach
a post and its registrations; a post receives only the accounts homed at it; the post's
sync runner and national's exchange runner outlive a database error (a table their cycle
needs renamed away, then back) and their next cycle goes through."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from registry.node import Node
from registry.settings import load_settings
from sync.exchange.client import ExchangeRunner
from sync.exchange.service import load_exchange
from sync.peers import sign_request
from sync.runner import SyncRunner
from tests.support.cluster import (
    PASSWORD,
    Cluster,
    Post,
    add_account,
    canonical,
    drop_cluster,
    start_cluster,
)
from tests.support.countries import BASE as BILATERAL_BASE
from tests.support.countries import Country, cross
from tests.support.factories import passport_mrz
from tests.support.nodes import missing, pg_reachable
from tests.support.servers import cli

GOGUI, KOBENI = "MR-GOGUI", "MR-KOBENI"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    if not pg_reachable():
        missing("PostgreSQL is not reachable at 127.0.0.1:5432")
    started = start_cluster(tmp_path, (GOGUI, KOBENI))
    try:
        yield started
    finally:
        drop_cluster(started)


def passport(number: str, nationality: str) -> str:
    return passport_mrz(
        number,
        surname="SY" if nationality == "MRT" else "CISSE",
        nationality=nationality,
        expiry=date.today() + timedelta(days=700),
    )


def enter(post: Post, number: str, nationality: str) -> dict[str, Any]:
    response = httpx.post(
        f"{post.server.url}/api/crossings",
        json={"direction": "entry", "mrz": passport(number, nationality)},
        headers=post.headers(),
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def limit_days(crossing: dict[str, Any]) -> int | None:
    until = crossing["stay_allowed_until"]
    if until is None:
        return None
    return (date.fromisoformat(until) - date.fromisoformat(crossing["occurred_at_local"][:10])).days


def wait_for(condition: Any, timeout: float = 15.0) -> None:
    async def poll() -> None:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.1)

    asyncio.run(poll())


# ---------------------------------------------------------------- stay rules
def test_rules_published_on_national_reach_a_post(cluster: Cluster, tmp_path: Path) -> None:
    gogui = cluster.posts[GOGUI]
    assert limit_days(enter(gogui, "R0000001", "MLI")) == 179  # the partner's default rule
    rules = tmp_path / "rules.json"
    rules.write_text(
        json.dumps(
            {
                "default": {"max_days": 30, "window_days": 60},
                "MLI": {"max_days": 60, "window_days": 120},
            }
        )
    )
    published = cli(cluster.national_env, "rules", "publish", str(rules), check=False)
    assert published.returncode == 0, published.stderr
    stored = cluster.national_rows(
        "SELECT version, payload::text FROM reference_change WHERE record_type = 'stay_rules'"
    )
    assert len(stored) == 1 and json.loads(stored[0][1])["MLI"]["max_days"] == 60
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"MLI": {"max_days": 60, "window_days": 120}}))  # no default
    refused = cli(cluster.national_env, "rules", "publish", str(bad), check=False)
    assert refused.returncode != 0 and "default" in refused.stderr
    assert len(cluster.national_rows("SELECT 1 FROM reference_change")) == 1

    cli(gogui.env, "sync", "now")  # the post's next sync pulls the rules
    assert gogui.rows("SELECT version FROM reference_change WHERE record_type = 'stay_rules'") == [
        (stored[0][0],)
    ]
    # The running post takes them up (within its refresh interval) for its registrations.
    numbers = iter(range(2, 1000))
    wait_for(lambda: limit_days(enter(gogui, f"R{next(numbers):07d}", "MLI")) == 59)
    assert limit_days(enter(gogui, "S0000001", "SEN")) == 29  # the published default
    assert limit_days(enter(gogui, "M0000001", "MRT")) is None  # own citizens: no limit


# ---------------------------------------------------------------- accounts
def reference_pull(cluster: Cluster, post: Post) -> list[dict[str, Any]]:
    """GET /api/sync/reference as the post, signed with its key, over real HTTP."""
    node = Node.build(load_settings(post.env))
    path = "/api/sync/reference?since=0"
    headers = sign_request(node.signing_key, post.code, "GET", path)
    response = httpx.get(f"{cluster.national.url}{path}", headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return list(response.json()["changes"])


def officer_rows(changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c["payload"] for c in changes if c["type"] == "officer"]


def add_officer(cluster: Cluster, username: str, post: str) -> str:
    return add_account(cluster.national_env, username, "officer", "--post", post)


def login_status(post: Post, username: str) -> int:
    response = httpx.post(
        f"{post.server.url}/api/auth/login",
        json={"username": username, "password": PASSWORD},
        timeout=30,
    )
    return response.status_code


def test_a_post_receives_only_the_accounts_homed_at_it(cluster: Cluster) -> None:
    gogui, kobeni = cluster.posts[GOGUI], cluster.posts[KOBENI]
    for_gogui = add_officer(cluster, "gogui.desk2", GOGUI)
    for_kobeni = add_officer(cluster, "kobeni.desk2", KOBENI)
    national_accounts = {
        canonical(r[0])
        for r in cluster.national_rows(
            "SELECT id FROM officer WHERE home_post = :n",
            n=cluster.national_env["BORDERPOST_NODE_CODE"],
        )
    }
    assert len(national_accounts) == 2  # hq.admin and hq.supervisor

    pulled = officer_rows(reference_pull(cluster, gogui))
    assert [(o["id"], o["home_post"]) for o in pulled] == [(for_gogui, GOGUI)]
    assert not national_accounts & {o["id"] for o in pulled}
    assert all(o["home_post"] == GOGUI for o in pulled)
    pulled_by_kobeni = officer_rows(reference_pull(cluster, kobeni))
    assert [o["id"] for o in pulled_by_kobeni] == [for_kobeni]

    # Gogui still holds a copy of hq.admin, hash included, from a pull before this fix.
    (stale,) = cluster.national_rows(
        "SELECT id, username, full_name, role, home_post, password_hash, language "
        "FROM officer WHERE username = 'hq.admin'"
    )
    with sqlite3.connect(gogui.data_dir / "borderpost.db") as conn:
        conn.execute(
            "INSERT INTO officer (id, username, full_name, role, home_post, password_hash, "
            "language, active, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 1, '2026-01-01 00:00:00')",
            (stale[0].hex, *stale[1:]),
        )

    for post in (gogui, kobeni):
        cli(post.env, "sync", "now")
    at_gogui = {canonical(r[0]) for r in gogui.rows("SELECT id FROM officer")}
    at_kobeni = {canonical(r[0]) for r in kobeni.rows("SELECT id FROM officer")}
    assert for_gogui in at_gogui and for_gogui not in at_kobeni
    assert for_kobeni in at_kobeni and for_kobeni not in at_gogui
    assert not national_accounts & at_kobeni
    assert national_accounts & at_gogui == {canonical(stale[0])}  # the old copy only...
    national_hashes = {
        r[0]
        for r in cluster.national_rows(
            "SELECT password_hash FROM officer WHERE home_post = 'MR-NATIONAL'"
        )
    }
    for post in (gogui, kobeni):  # ...whose hash the post has forgotten
        assert not national_hashes & {r[0] for r in post.rows("SELECT password_hash FROM officer")}
    assert gogui.rows("SELECT password_hash FROM officer WHERE username = 'hq.admin'") == [("",)]
    assert login_status(gogui, "gogui.desk2") == 200
    assert login_status(gogui, "hq.admin") == 401
    assert login_status(kobeni, "gogui.desk2") == 401


# ---------------------------------------------------------------- the runner
def test_the_sync_runner_outlives_a_database_error(cluster: Cluster) -> None:
    gogui = cluster.posts[GOGUI]
    crossings = [enter(gogui, f"D{n:07d}", "MLI")["id"] for n in range(3)]
    database = gogui.data_dir / "borderpost.db"

    def at_national() -> set[str]:
        rows = cluster.national_rows("SELECT id FROM crossing WHERE origin = :o", o=GOGUI)
        return {canonical(r[0]) for r in rows}

    def rename(old: str, new: str) -> None:
        with sqlite3.connect(database, timeout=30) as conn:
            conn.execute(f"ALTER TABLE {old} RENAME TO {new}")

    async def scenario() -> SyncRunner:
        node = Node.build(load_settings(gogui.env))
        runner = SyncRunner(node, interval=0.05, max_backoff=0.3)
        rename("sync_checkpoint", "sync_checkpoint_away")  # the database fails the cycle
        task = asyncio.create_task(runner.run())
        try:
            async with asyncio.timeout(20):
                while runner.failures < 3:
                    assert not task.done(), task.exception()
                    await asyncio.sleep(0.02)
            assert not task.done() and runner.cycles == 0
            assert "sync_checkpoint" in (runner.last_error or "")
            assert not set(crossings) & await asyncio.to_thread(at_national)
            rename("sync_checkpoint_away", "sync_checkpoint")  # the database is back
            async with asyncio.timeout(30):
                while runner.cycles < 1:
                    assert not task.done(), task.exception()
                    await asyncio.sleep(0.05)
        finally:
            runner.stop()
            await asyncio.wait_for(task, timeout=30)
            await node.db.dispose()
        return runner

    runner = asyncio.run(scenario())
    assert runner.failures >= 3 and runner.consecutive_failures == 0
    assert set(crossings) <= at_national()


def test_the_exchange_runner_outlives_a_database_error(countries: dict[str, Country]) -> None:
    mr, ml = countries["MRT"], countries["MLI"]
    for n in range(3):
        cross(mr.post, "exit", f"X{n:07d}", BILATERAL_BASE)
    cli(mr.post.env, "sync", "now")  # queued at MR national for the partner

    def at_partner() -> int:
        return len(ml.cluster.national_rows("SELECT 1 FROM partner_record"))

    def rename(old: str, new: str) -> None:
        mr.cluster.national_execute(f"ALTER TABLE {old} RENAME TO {new}")

    async def scenario() -> ExchangeRunner:
        node = Node.build(load_settings(mr.cluster.national_env))
        exchange = load_exchange(node)
        runner = ExchangeRunner(node, exchange, interval=0.05, max_backoff=0.3)
        await asyncio.to_thread(rename, "exchange_outbox", "exchange_outbox_away")
        task = asyncio.create_task(runner.run())
        try:
            async with asyncio.timeout(20):
                while runner.failures < 3:
                    assert not task.done(), task.exception()
                    await asyncio.sleep(0.02)
            assert not task.done() and runner.cycles == 0
            assert "exchange_outbox" in (runner.last_error or "")
            assert await asyncio.to_thread(at_partner) == 0
            await asyncio.to_thread(rename, "exchange_outbox_away", "exchange_outbox")
            async with asyncio.timeout(30):
                while runner.cycles < 1:
                    assert not task.done(), task.exception()
                    await asyncio.sleep(0.05)
        finally:
            runner.stop()
            await asyncio.wait_for(task, timeout=30)
            await node.db.dispose()
        return runner

    runner = asyncio.run(scenario())
    assert runner.failures >= 3 and runner.consecutive_failures == 0
    assert at_partner() == 3
