"""A node served over real HTTP (uvicorn on 127.0.0.1, in the test's event loop) with short
login delays: login_delay_seconds=0.05, lockout after 6 failures, for 8 s. The ``served``
fixture is shared through tests/conftest.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from registry.app import create_app
from registry.db import Database
from registry.models import AuditEvent
from tests.support.nodes import LiveNode, SeededBackend, base_settings, serve

LOCKOUT_FAILURES = 6
LOCKOUT_SECONDS = 8.0


@dataclass
class ServedNode(LiveNode):
    """A node served by a real uvicorn server in the test's event loop, with its audit."""

    async def actions(self, *names: str) -> list[AuditEvent]:
        async with self.db.session() as session:
            query = select(AuditEvent).where(AuditEvent.action.in_(names)).order_by(AuditEvent.seq)
            return list((await session.scalars(query)).all())


@pytest.fixture
async def served(seeded_backend: SeededBackend, tmp_path: Path) -> AsyncIterator[ServedNode]:
    url = await seeded_backend.backend.fresh_url(tmp_path)
    settings = base_settings(
        tmp_path,
        url,
        login_delay_seconds=0.05,
        login_lockout_failures=LOCKOUT_FAILURES,
        login_lockout_seconds=LOCKOUT_SECONDS,
    )
    app = create_app(settings)
    base, server, task = await serve(app)
    database = Database(settings)
    try:
        yield ServedNode(base, app.state.node, seeded_backend.tokens, database)
    finally:
        server.should_exit = True
        await task
        await database.dispose()
