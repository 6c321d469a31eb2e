"""Fixtures of the browser tests (helpers in tests/support/pages.py), module-scoped so that each
module gets its own: Playwright and its Chromium (a missing Chromium skips outside CI and
fails under CI), a running post on SQLite with an account of every role, and a national node
on PostgreSQL with an agreement in force and a known dataset. A module may define its own
``post`` (other accounts, other settings).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from registry.receipts import load_or_create_node_key
from tests.support.nodes import create_pg_database, drop_pg_database, missing, pg_reachable, pg_url
from tests.support.pages import (
    CHROMIUM,
    NATIONAL,
    POST_ACCOUNTS,
    SCREENSHOTS,
    SECRET,
    Node,
    add_accounts,
    insert_dataset,
    launch,
    run_async,
    served_post,
    start,
    write_agreement,
)
from tests.support.servers import cli, node_env


# ---------------------------------------------------------------- browser
@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    if not CHROMIUM.exists():
        missing(f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def browser(playwright: Any) -> Iterator[Any]:
    chromium = launch(playwright)
    yield chromium
    chromium.close()


@pytest.fixture(scope="module")
def post(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    with served_post(tmp_path_factory.mktemp("post"), POST_ACCOUNTS) as node:
        yield node


@pytest.fixture(scope="module")
def served_national(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    if not pg_reachable():
        missing("PostgreSQL is not reachable at 127.0.0.1:5432")
    database = f"bp_pages_{uuid.uuid4().hex[:8]}"
    root = tmp_path_factory.mktemp("national")
    run_async(create_pg_database(database))
    national_key = load_or_create_node_key(root / "data" / "keys" / "node_ed25519.pem")
    agreement, key_file = write_agreement(root, national_key)
    env = node_env(
        root / "data",
        role="national",
        node_code=NATIONAL,
        database_url=pg_url(database),
        secret_key=SECRET,
        timezone="Africa/Nouakchott",
        agreement_file=str(agreement),
        agreement_key_file=str(key_file),
        sync_interval_seconds="3600",
        agreement_development_urls="true",  # its made-up partner is http://127.0.0.1:9
    )
    server = None
    try:
        cli(env, "db", "upgrade")
        add_accounts(env, (("analyst", "hq_analyst"), ("chief", "admin"), ("link", "liaison")))
        run_async(insert_dataset(pg_url(database)))
        server = start(env)
        yield Node(env, server)
    finally:
        if server is not None:
            server.stop()
        run_async(drop_pg_database(database))
