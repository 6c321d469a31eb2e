"""Fixtures of the integration tests: ``served``, a node over real HTTP (tests/live.py),
``web``, a browser-like client of a node's pages (tests/web_client.py), with ``wire_web``, and
``national`` and ``national_node``, the seeded national node the HQ test modules share
(tests/hq_node.py; ``national`` is prepared once a session per backend), and ``watch_node``,
a post with the watchlist routes (tests/integration/test_watchlists.py).
"""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

import registry.app as app_module
from registry.app import create_app
from registry.db import Database
from registry.web.routes import web_middleware, web_routes
from registry.web.security import WebSessionMiddleware
from tests.conftest import SeededBackend, base_settings
from tests.hq_node import national, national_node
from tests.integration.test_watchlists import watch_node
from tests.live import served
from tests.web_client import Web

__all__ = ["national", "national_node", "served", "watch_node", "web", "wire_web"]


@pytest.fixture
def wire_web(monkeypatch: pytest.MonkeyPatch) -> None:
    """Add the two wiring lines to create_app when registry/app.py does not have them yet
    (a no-op once it does): ``*web_routes(settings)`` and ``web_middleware(settings)``."""
    original = app_module.Litestar

    def litestar_with_web(*args: Any, **kwargs: Any) -> Any:
        settings = kwargs["state"]["node"].settings
        handlers = list(kwargs.get("route_handlers", []))
        if not any(getattr(h, "path", None) == "/web" for h in handlers):
            handlers += web_routes(settings)
        middleware = list(kwargs.get("middleware") or [])
        if not any(isinstance(m, WebSessionMiddleware) for m in middleware):
            middleware += web_middleware(settings)
        return original(*args, **{**kwargs, "route_handlers": handlers, "middleware": middleware})

    monkeypatch.setattr(app_module, "Litestar", litestar_with_web)


@pytest.fixture
async def web(wire_web: None, seeded_backend: SeededBackend, tmp_path: Path) -> AsyncIterator[Web]:
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
