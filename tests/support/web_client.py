"""A browser-like client of a node's web pages for the integration tests (``Web``: cookies,
the page's CSRF token, the node and its database), the MRZ and document numbers those tests
type, the pages and the roles that may open them, and two small helpers of several modules
(a session's revocation, a desk save), and the ``web`` fixture: a client of a fresh node
on each backend.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from registry.app import create_app
from registry.db import Database
from registry.models import AuditEvent
from registry.security import token_digest
from registry.web.nav import NAVIGATION
from tests.support.factories import document_number, passport_mrz
from tests.support.nodes import PASSWORD, ROLES, SeededBackend, base_settings

CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]*)">')
LOGIN_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


JSON = {"Accept": "application/json"}


class Web:
    """A browser-like client of one node: cookies, CSRF token and the node itself."""

    def __init__(self, client: AsyncTestClient[Any], app: Any, db: Database) -> None:
        self.client = client
        self.app = app
        self.node = app.state.node
        self.db = db
        self.csrf = ""

    async def login(self, username: str) -> str:
        self.client.cookies.clear()
        form = await self.client.get("/web/login")
        token = LOGIN_TOKEN.search(form.text).group(1)  # type: ignore[union-attr]
        response = await self.client.post(
            "/web/login",
            data={"username": username, "password": PASSWORD, "csrf_token": token},
        )
        assert response.status_code == 303, response.text
        page = await self.client.get("/web/account")
        self.csrf = CSRF_META.search(page.text).group(1)  # type: ignore[union-attr]
        return str(response.headers["location"])

    @property
    def session(self) -> str:
        return str(self.client.cookies.get("bp_session"))

    def headers(self, **extra: str) -> dict[str, str]:
        return {"X-CSRF-Token": self.csrf, **JSON, **extra}

    async def audit_count(self, **where: Any) -> int:
        query = select(func.count()).select_from(AuditEvent)
        for name, value in where.items():
            query = query.where(getattr(AuditEvent, name) == value)
        async with self.db.session() as session:
            return int(await session.scalar(query) or 0)


def td3(number: str, surname: str = "DIALLO", given: str = "AMINATA") -> str:
    return passport_mrz(
        number, surname=surname, given=given, date_of_birth=date(1991, 2, 3), sex="F"
    )


def number() -> str:
    return document_number("W")


def page_routes() -> list[tuple[str, tuple[str, ...]]]:
    """The pages of this post and who may open them; national's own pages (the watchlist
    import) answer 403 to every role at a post."""
    return [(item.url, () if item.national_only else item.roles) for item in NAVIGATION] + [
        ("/web/account", ROLES)
    ]


async def _session_is_revoked(web: Web, token: str) -> bool:
    async with web.db.session() as session:
        from registry.models import AuthToken

        stored = await session.get(AuthToken, token_digest(token))
        return bool(stored and stored.revoked)


async def _save(web: Web, crossing: dict[str, Any]) -> dict[str, Any]:
    import json

    response = await web.client.post(
        "/web/desk/register",
        files={"crossing": (None, json.dumps(crossing))},
        headers=web.headers(),
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


@pytest.fixture
async def web(seeded_backend: SeededBackend, tmp_path: Path) -> AsyncIterator[Web]:
    url = await seeded_backend.backend.fresh_url(tmp_path)
    settings = base_settings(tmp_path, url)
    app = create_app(settings)
    database = Database(settings)
    try:
        async with AsyncTestClient(app=app) as client:
            client.follow_redirects = False
            yield Web(client, app, database)
    finally:
        await database.dispose()
