"""The Litestar application factory of a node (post or national, by configuration)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from litestar import Litestar
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig

from registry.api.admin import AuditController, PhotoController, health
from registry.api.auth import authorize
from registry.api.dependencies import DEPENDENCIES
from registry.audit_checkpoints import keep_checkpoints
from registry.crossings.controller import CrossingController
from registry.crossings.search_controller import SearchController
from registry.headers import security_headers
from registry.hq.controller import HqController
from registry.hq.partitions import ensure_month_partitions
from registry.json_limits import BorderpostRequest
from registry.migrate import ensure_schema_current
from registry.node import Node
from registry.officers.controller import AuthController, OfficerController
from registry.openapi import complete_openapi
from registry.receipts.controller import ReceiptController
from registry.referrals.controller import CrossingReferralController, ReferralController
from registry.settings import Settings, load_settings
from registry.watchlists.controller import register_watchlist_routes
from registry.watchlists.matcher import refresh_periodically
from registry.web.routes import app_exception_handlers, web_middleware, web_routes
from registry.web.security import request_guard
from sync.api import PeerController, SyncController
from sync.api import status as sync_status_route
from sync.exchange.client import ExchangeRunner
from sync.exchange.controller import PartnerController
from sync.exchange.liaison_controller import LiaisonController
from sync.exchange.model import AgreementError
from sync.exchange.service import Exchange, load_exchange
from sync.ingest.controller import IngestController
from sync.reference import refresh_node_reference, refresh_reference_periodically
from sync.runner import SyncRunner
from sync.status import sync_status

national_routes = [
    SyncController,
    IngestController,
    PeerController,
    PartnerController,
    LiaisonController,
    HqController,
]
log = logging.getLogger("borderpost")
TEMPLATES = Path(__file__).parent / "templates"
BODY_OVERHEAD_BYTES = 256 * 1024


def _load_exchange(node: Node) -> Exchange | None:
    """The agreement this national node exchanges under; a bad agreement stops exchange,
    not the node."""
    if node.settings.role != "national":
        return None
    try:
        return load_exchange(node)
    except (AgreementError, ValueError, OSError) as exc:
        log.error("data-sharing agreement unusable, exchange stopped: %s", exc)
        return None


def create_app(settings: Settings | None = None) -> Litestar:
    """Build the app; it refuses to start on an unmigrated database."""
    settings = settings or load_settings()
    node = Node.build(settings)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await ensure_schema_current(node.db.engine)
        complete_openapi(app)  # the problem answers and bodies Litestar cannot see
        await refresh_node_reference(node)
        if settings.role == "national":  # keep monthly crossing partitions ahead (PostgreSQL)
            async with node.db.write_transaction() as session:
                await ensure_month_partitions(session)
        async with node.db.session() as session:
            await node.watchlists.reload(session)
        watchlist_refresh = asyncio.create_task(
            refresh_periodically(node, every_seconds=settings.watchlist_refresh_seconds)
        )
        audit_checkpoints = asyncio.create_task(keep_checkpoints(node))  # at least daily
        reference_refresh = asyncio.create_task(
            refresh_reference_periodically(node, every_seconds=settings.watchlist_refresh_seconds)
        )
        runner = SyncRunner(node, interval=settings.sync_interval_seconds)
        background = asyncio.create_task(runner.run()) if settings.role == "post" else None
        app.state.sync_runner = runner
        app.state.exchange = _load_exchange(node)
        exchanger = (
            ExchangeRunner(node, app.state.exchange, interval=settings.sync_interval_seconds)
            if app.state.exchange is not None
            else None
        )
        exchanging = asyncio.create_task(exchanger.run()) if exchanger else None
        try:
            yield
        finally:
            runner.stop()
            if exchanger is not None and exchanging is not None:
                exchanger.stop()
                await exchanging
            periodic = (watchlist_refresh, audit_checkpoints, reference_refresh)
            for task in periodic:
                task.cancel()
            # Wait for them to end: a task cancelled inside a query still holds its
            # connection, and disposing of the engine under it can hang the shutdown.
            await asyncio.gather(*periodic, return_exceptions=True)
            if background is not None:
                await background
            await node.db.dispose()

    return Litestar(
        debug=settings.debug,
        route_handlers=[
            AuthController,
            OfficerController,
            CrossingController,
            CrossingReferralController,
            SearchController,
            ReceiptController,
            ReferralController,
            AuditController,
            PhotoController,
            health,
            sync_status_route,
            *register_watchlist_routes(),
            *(national_routes if settings.role == "national" else []),
            *web_routes(settings),
        ],
        middleware=web_middleware(settings),
        before_send=[security_headers],
        request_class=BorderpostRequest,
        guards=[authorize, request_guard],
        dependencies=DEPENDENCIES,
        exception_handlers=app_exception_handlers(),
        lifespan=[lifespan],
        state=State({"node": node, "sync_status": sync_status}),
        request_max_body_size=settings.max_photo_bytes + BODY_OVERHEAD_BYTES,
        template_config=TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine),
        openapi_config=OpenAPIConfig(
            title="Borderpost",
            version="0.1.0",
            path="/schema",
            render_plugins=[SwaggerRenderPlugin()],
        ),
    )
