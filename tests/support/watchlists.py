"""Watchlist tests' helpers: a post with the watchlist routes, CSV rows and files, entries
over HTTP, and matcher entries built in memory."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select

from biometrics.engine import encode_template
from registry.cli.watchlist import watchlist
from registry.models import WatchlistEntry
from registry.node import Node
from registry.watchlists.content import EntryContent, build_version, watchlist_entry_id
from registry.watchlists.controller import register_watchlist_routes
from registry.watchlists.csv_files import CSV_COLUMNS
from registry.watchlists.matcher import WatchlistMatcher, matcher_of
from tests.support.nodes import NodeUnderTest

HEADER = ",".join(CSV_COLUMNS)


# ---------------------------------------------------------------- fixtures and helpers
def with_watchlists(node: NodeUnderTest) -> NodeUnderTest:
    """The post node with the watchlist routes and matcher, whether or not the app wires them
    yet (registry.app / registry.node are the lead's to change)."""
    app = node.client.app
    if not any(route.path == "/api/alerts" for route in app.routes):
        for controller in register_watchlist_routes():
            app.register(controller)
    if matcher_of(node.node) is None:
        node.node.watchlists = WatchlistMatcher()  # type: ignore[attr-defined]
    return node


@pytest.fixture
def watch_node(post_node: NodeUnderTest) -> NodeUnderTest:
    return with_watchlists(post_node)


def local_node(node: NodeUnderTest) -> Node:
    """The app's node on the test's own connection pool (the app's runs on another loop),
    sharing the app's matcher (thread-safe), for calling services directly."""
    local = replace(node.node, db=node.db)
    local.watchlists = matcher_of(node.node)  # type: ignore[attr-defined]
    return local


def write_csv(path: Path, rows: list[dict[str, str]], header: str = HEADER) -> Path:
    """A watchlist file: the header, then one line per row (missing columns empty)."""
    columns = header.split(",")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row.get(column, "") for column in columns])
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def person(external_id: str, **values: str) -> dict[str, str]:
    return {
        "external_id": external_id,
        "kind": "person",
        "surname": "OULD AHMED",
        "given_names": "MOHAMMED",
        "date_of_birth": "1980-01-01",
        "nationality": "MRT",
        "reason": "arrest warrant 2024/17",
        "action": "refer_secondary",
        "source": "national",
        "valid_from": "2024-01-01",
        **values,
    }


def stolen(external_id: str, number: str, **values: str) -> dict[str, str]:
    return {
        "external_id": external_id,
        "kind": "document",
        "issuing_state": "MLI",
        "document_number": number,
        "reason": "reported stolen",
        "action": "refer_secondary",
        "source": "INTERPOL SLTD",
        "valid_from": "2024-01-01",
        **values,
    }


async def run_cli(node: NodeUnderTest, *args: str) -> Result:
    """`borderpost watchlist ...` in-process, on the node's database, off the test loop."""
    settings = node.node.settings
    env = {
        "BORDERPOST_DATA_DIR": str(settings.data_dir),
        "BORDERPOST_DATABASE_URL": settings.db_url,
        "BORDERPOST_NODE_CODE": settings.node_code,
    }
    runner = CliRunner()
    return await asyncio.to_thread(runner.invoke, watchlist, list(args), env=env)


async def create_entry(node: NodeUnderTest, body: dict[str, Any], role: str) -> dict[str, Any]:
    response = await node.client.post("/api/watchlist/entries", json=body, headers=node.auth(role))
    assert response.status_code == 201, response.text
    return response.json()


PERSON_BODY = {
    "kind": "person",
    "surname": "OULD AHMED",
    "given_names": "MOHAMMED",
    "date_of_birth": "1980-01-01",
    "reason": "arrest warrant 2024/17",
    "action": "refer_secondary",
}


DAY = date(2025, 6, 1)


def entry(
    *,
    kind: str = "person",
    surname: str = "",
    given: str = "",
    dob: date | None = None,
    state: str | None = None,
    number: str | None = None,
    action: str = "refer_secondary",
    valid_from: date = date(2020, 1, 1),
    valid_to: date | None = None,
    template: np.ndarray | None = None,
    version: int = 1,
    active: bool = True,
    external_id: str | None = None,
) -> WatchlistEntry:
    content = EntryContent(
        kind=kind,
        surname=surname,
        given_names=given,
        date_of_birth=dob,
        nationality=None,
        issuing_state=state,
        document_number=number,
        reason="test listing",
        action=action,
        valid_from=valid_from,
        valid_to=valid_to,
        active=active,
        face_template=encode_template(template) if template is not None else None,
    )
    external = external_id or uuid.uuid4().hex
    return build_version(
        content,
        entry_id=watchlist_entry_id("test", external),
        version=version,
        origin="MR-NKC",
        external_id=external,
        source="test",
        officer=None,
        change_reason="test",
    )


async def count(node: NodeUnderTest, model: type) -> int:
    async with node.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)
