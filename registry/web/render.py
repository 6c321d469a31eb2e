"""Rendering a page: the template in the reader's language, with the context every page
shares (account, navigation, CSRF token, offline banner, static asset URLs)."""

from __future__ import annotations

import hashlib
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from litestar import Request, Response
from litestar.datastructures import Cookie
from litestar.response import Redirect

from registry.models import Officer
from registry.node import Node
from registry.web.i18n import (
    LANGUAGE_NAMES,
    LANGUAGES,
    choose_language,
    environment,
    from_accept_language,
    gettext_for,
)
from registry.web.messages import flash_message, sync_warning_text
from registry.web.nav import navigation_for
from registry.web.security import LANG_COOKIE, csrf_for, idle_seconds

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
HTML = "text/html"  # Litestar adds "; charset=utf-8" itself (once)
BANNER_CACHE_SECONDS = 30.0


@lru_cache(maxsize=256)
def _asset_version(path: str) -> str:
    file = STATIC_DIR / path
    try:
        return hashlib.sha256(file.read_bytes()).hexdigest()[:10]
    except OSError:
        return "0"


def static_url(path: str) -> str:
    """URL of a static asset with a content hash, so browsers may cache it for long."""
    return f"/static/{path}?v={_asset_version(path)}"


def officer_of(request: Request[Any, Any, Any]) -> Officer | None:
    return getattr(request.state, "officer", None)


def language_of(request: Request[Any, Any, Any]) -> str:
    """The officer's stored language, else the language cookie, else the browser's."""
    officer = officer_of(request)
    return choose_language(
        (
            getattr(request.state, "web_lang", None),
            officer.language if officer else None,
            request.cookies.get(LANG_COOKIE),
            from_accept_language(request.headers.get("accept-language")),
        )
    )


def translator(request: Request[Any, Any, Any]) -> Any:
    return gettext_for(language_of(request))


async def offline_banner(request: Request[Any, Any, Any]) -> dict[str, Any] | None:
    """The sync warning of a post and what national holds of it in quarantine (cached for
    30 s), or None when all is well."""
    node: Node = request.app.state.node
    if node.settings.role != "post":
        return None
    state = request.app.state
    cached = getattr(state, "web_sync_banner", None)
    now = time.monotonic()
    if cached is not None and now - cached[0] < BANNER_CACHE_SECONDS:
        return cached[1]
    sync_status = getattr(state, "sync_status", None)  # installed by registry.app
    if sync_status is None:
        return None
    status = await sync_status(node)
    banner = None
    if status.get("warning") or status.get("quarantined"):
        banner = {
            "warning": status["warning"],
            "days": status.get("days_since_sync"),
            "backlog": status.get("backlog_records"),
            "limit": status.get("offline_warning_days"),
            "quarantined": status.get("quarantined", []),  # records national could not store
        }
    state.web_sync_banner = (now, banner)
    return banner


def forget_banner(request: Request[Any, Any, Any]) -> None:
    request.app.state.web_sync_banner = None


async def render(
    request: Request[Any, Any, Any],
    template: str,
    *,
    status_code: int = 200,
    cookies: list[Cookie] | None = None,
    active: str = "",
    **context: Any,
) -> Response[str]:
    """Render ``templates/web/<template>`` as an HTML response."""
    lang = language_of(request)
    officer = officer_of(request)
    node: Node = request.app.state.node
    _ = gettext_for(lang)
    banner = await offline_banner(request) if officer is not None else None
    base = {
        "officer": officer,
        "node": node.settings,
        "nav": navigation_for(officer.role if officer else None, node.settings.role),
        "active": active,
        "csrf_token": csrf_for(request),
        "static": static_url,
        "banner": banner,
        "banner_text": sync_warning_text(banner, _) if banner else "",
        "flash": flash_message(request.query_params.get("done"), _),
        "languages": [(code, LANGUAGE_NAMES[code]) for code in LANGUAGES],
        "idle_seconds": idle_seconds(node.settings),
        "path": request.url.path,
    }
    html = environment(lang).get_template(f"web/{template}").render(**base, **context)
    return Response(html, status_code=status_code, media_type=HTML, cookies=cookies or [])


def redirect(path: str, *, cookies: list[Cookie] | None = None) -> Redirect:
    """A 303 See Other, the answer to a successful form POST."""
    return Redirect(path, status_code=303, cookies=cookies or [])


def safe_next(value: object, default: str) -> str:
    """A redirect target from user input: only local /web paths are accepted."""
    if isinstance(value, str) and value.startswith("/web/") and "//" not in value:
        if "\\" not in value and "\n" not in value and "\r" not in value:
            return value
    return default
