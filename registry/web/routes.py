"""What the app factory adds for the web pages: the /web router, the static files, and the
session middleware. ``registry.app.create_app`` wires them with two lines::

    route_handlers=[..., *web_routes(settings)],
    middleware=web_middleware(settings),
"""

from __future__ import annotations

from typing import Any

from litestar import Router, get
from litestar.datastructures import CacheControlHeader
from litestar.exceptions import NotFoundException
from litestar.response import Redirect
from litestar.static_files import create_static_files_router

from registry.hq.pages import HqPagesController
from registry.settings import Settings
from registry.watchlists.pages import WatchlistImportPagesController
from registry.web.account import AccountController
from registry.web.admin import AdminPagesController
from registry.web.crossings import CrossingPagesController
from registry.web.desk import DeskController, ReceiptPageController
from registry.web.errors import APP_EXCEPTION_HANDLERS, WEB_EXCEPTION_HANDLERS
from registry.web.liaison import LiaisonPagesController
from registry.web.protection import ReferralPagesController
from registry.web.render import STATIC_DIR
from registry.web.search import PostSearchPagesController
from registry.web.security import WebSessionMiddleware, csrf_guard
from registry.web.supervision import ActivityController, AlertPagesController

STATIC_MAX_AGE = 7 * 24 * 3600


@get("/", opt={"public": True}, include_in_schema=False)
async def root() -> Redirect:
    """The node's address opens the pages."""
    return Redirect("/web/", status_code=302)


@get("/{unknown:path}", opt={"public": True}, include_in_schema=False)
async def unknown_page(unknown: str) -> None:
    """Any other address under /web: the 404 page in the reader's language (not JSON)."""
    raise NotFoundException()


def web_router(settings: Settings) -> Router:
    """Every page and page endpoint under /web, with CSRF, idle logout and HTML errors."""
    return Router(
        path="/web",
        route_handlers=[
            AccountController,
            DeskController,
            ReceiptPageController,
            PostSearchPagesController,
            CrossingPagesController,
            AlertPagesController,
            ActivityController,
            ReferralPagesController,
            HqPagesController,
            LiaisonPagesController,
            AdminPagesController,
            WatchlistImportPagesController,
            unknown_page,
        ],
        guards=[csrf_guard],
        middleware=[WebSessionMiddleware(settings)],
        exception_handlers=WEB_EXCEPTION_HANDLERS,
        include_in_schema=False,
    )


def static_router() -> Router:
    """CSS, scripts and images of the pages, served locally (no CDN), cached for a week."""
    return create_static_files_router(
        path="/static",
        directories=[STATIC_DIR],
        opt={"public": True},
        cache_control=CacheControlHeader(max_age=STATIC_MAX_AGE, private=True),
        name="web_static",
        include_in_schema=False,
    )


def web_routes(settings: Settings) -> list[Any]:
    """The route handlers to add to the app: pages, static files, and ``/`` -> ``/web/``."""
    return [web_router(settings), static_router(), root]


def web_middleware(settings: Settings) -> list[Any]:
    """App-level middleware: idle logout for every cookie session, not only on /web."""
    return [WebSessionMiddleware(settings)]


def app_exception_handlers() -> Any:
    """The API's problem+json handlers, except that an address nothing matches answers a
    browser with the 404 page (``registry.web.errors.on_unknown_address``)."""
    return APP_EXCEPTION_HANDLERS
