"""Security of the web pages, over HTTP on SQLite and PostgreSQL: role checks on every page,
CSRF on every unsafe /web route (and not on the bearer API), session cookie flags, idle
logout, the Content-Security-Policy with no inline script or style in any page, audited
reads, the language setting, and the desk endpoints (MRZ, photo, check, save) going through
the same services as the API.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

import registry.app as app_module
from registry.app import create_app
from registry.db import Database
from registry.models import AuditEvent, Crossing, Officer, OutboxEntry, Photo
from registry.mrz import build_td3
from registry.security import token_digest
from registry.web.charts import Series, bar_chart, nice_maximum
from registry.web.i18n import gettext_for
from registry.web.nav import NAVIGATION, navigation_for
from registry.web.routes import web_middleware, web_routes
from registry.web.security import (
    CONTENT_SECURITY_POLICY,
    SEEN_COOKIE,
    WebSessionMiddleware,
    seen_value,
)
from tests.conftest import PASSWORD, ROLES, SeededBackend, base_settings

CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]*)">')
LOGIN_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
EVENT_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.IGNORECASE)
STYLE_ATTRIBUTE = re.compile(r"<[^>]+\sstyle\s*=", re.IGNORECASE)
JSON = {"Accept": "application/json"}


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


def td3(number: str, surname: str = "DIALLO", given: str = "AMINATA") -> str:
    return "\n".join(
        build_td3(
            document_code="P",
            issuing_state="MLI",
            surname=surname,
            given_names=given,
            document_number=number,
            nationality="MLI",
            date_of_birth=date(1991, 2, 3),
            sex="F",
            expiry_date=date.today() + timedelta(days=900),
            optional_data="",
        )
    )


def number() -> str:
    return "W" + uuid.uuid4().hex[:7].upper()


def page_routes() -> list[tuple[str, tuple[str, ...]]]:
    """The pages of this post and who may open them; national's own pages (the watchlist
    import) answer 403 to every role at a post."""
    return [(item.url, () if item.national_only else item.roles) for item in NAVIGATION] + [
        ("/web/account", ROLES)
    ]


# ---------------------------------------------------------------- roles
async def test_every_page_checks_the_role(web: Web) -> None:
    anonymous = await web.client.get("/web/desk")
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/web/login?next=/web/desk")
    failures = []
    for role in ROLES:
        await web.login(role)
        for url, roles in page_routes():
            response = await web.client.get(url)
            expected = 200 if role in roles else 403
            if response.status_code != expected:
                failures.append(f"{role} {url} -> {response.status_code}")
    assert failures == []


async def test_pages_and_error_pages_name_their_charset_once(web: Web) -> None:
    """``text/html; charset=utf-8`` once: a repeated parameter is malformed."""
    login = await web.client.get("/web/login")
    await web.login("officer")
    page, refused = await web.client.get("/web/desk"), await web.client.get("/web/admin/officers")
    assert refused.status_code == 403
    for response in (login, page, refused):
        assert response.headers["content-type"] == "text/html; charset=utf-8"


async def test_navigation_shows_only_what_the_role_may_open(web: Web) -> None:
    for role in ROLES:
        await web.login(role)
        page = (await web.client.get("/web/account")).text
        links = set(re.findall(r'<li><a href="(/web/[^"]+)"', page))
        allowed = {item.url for item in navigation_for(role, "post")}
        assert links == allowed, role


async def test_login_home_page_follows_the_role(web: Web) -> None:
    assert await web.login("officer") == "/web/desk"
    assert await web.login("hq_analyst") == "/web/hq/dashboard"
    assert await web.login("protection") == "/web/referrals"


# ---------------------------------------------------------------- CSRF
def unsafe_web_routes(app: Any) -> list[tuple[str, tuple[str, ...]]]:
    found = []
    for route in app.routes:
        if not str(route.path).startswith("/web"):
            continue
        for handler in getattr(route, "route_handlers", []):
            if "POST" in handler.http_methods and not handler.opt.get("public"):
                path = re.sub(r"\{[^}:]+:uuid\}", str(uuid.uuid4()), str(route.path))
                path = re.sub(r"\{[^}:]+:str\}", "x", path)
                path = re.sub(r"\{[^}:]+:int\}", "1", path)
                found.append((path, tuple(handler.opt["roles"])))
    return found


async def test_every_unsafe_web_route_refuses_a_request_without_csrf_token(web: Web) -> None:
    routes = unsafe_web_routes(web.app)
    assert len(routes) >= 10
    for path, roles in routes:
        await web.login(roles[0])
        missing = await web.client.post(path, headers=JSON, data={"reason": "x"})
        assert missing.status_code == 403, path
        assert "CSRF" in missing.json()["detail"], path
        forged = await web.client.post(path, headers={**JSON, "X-CSRF-Token": "0" * 43})
        assert forged.status_code == 403, path
        with_token = await web.client.post(path, headers=web.headers(), data={"x": "1"})
        assert with_token.status_code != 403 or "CSRF" not in with_token.text, path


async def test_a_form_without_its_token_is_refused_and_a_good_one_accepted(web: Web) -> None:
    await web.login("officer")
    refused = await web.client.post("/web/language", data={"language": "en"})
    assert refused.status_code == 403
    assert "text/html" in refused.headers["content-type"]
    other_session = web.csrf
    await web.login("supervisor")
    stolen = await web.client.post(
        "/web/language", data={"language": "en", "csrf_token": other_session}
    )
    assert stolen.status_code == 403  # a token is good for its own session only
    accepted = await web.client.post(
        "/web/language", data={"language": "en", "csrf_token": web.csrf, "next": "/web/alerts"}
    )
    assert accepted.status_code == 303
    assert accepted.headers["location"] == "/web/alerts?done=language_saved"


async def test_login_form_needs_its_own_token(web: Web) -> None:
    web.client.cookies.clear()
    response = await web.client.post(
        "/web/login", data={"username": "officer", "password": PASSWORD, "csrf_token": "guess"}
    )
    assert response.status_code == 403
    form = await web.client.get("/web/login")
    token = LOGIN_TOKEN.search(form.text).group(1)  # type: ignore[union-attr]
    wrong = await web.client.post(
        "/web/login",
        data={"username": "officer", "password": "nope-nope-nope", "csrf_token": token},
    )
    assert wrong.status_code == 401
    assert gettext_for("fr")("Unknown username or wrong password.") in wrong.text
    assert await web.audit_count(action="login_failed") >= 1


async def test_bearer_api_is_not_subject_to_web_csrf(web: Web) -> None:
    login = await web.client.post(
        "/api/auth/login", json={"username": "officer", "password": PASSWORD}
    )
    bearer = {"Authorization": f"Bearer {login.json()['token']}"}
    created = await web.client.post(
        "/api/crossings", json={"direction": "entry", "mrz": td3(number())}, headers=bearer
    )
    assert created.status_code == 201
    verified = await web.client.post(
        "/api/receipts/verify", json={"payload": created.json()["receipt"]}, headers=bearer
    )
    assert verified.status_code == 200
    web.client.cookies.clear()
    checked = await web.client.post(
        "/web/desk/mrz", json={"mrz": td3(number())}, headers={**bearer, **JSON}
    )
    assert checked.status_code == 200  # a bearer token is never sent by a browser on its own


async def test_sync_endpoints_answer_without_cookies_or_csrf(web: Web) -> None:
    status = await web.client.get("/api/health")
    assert status.status_code == 200
    assert "content-security-policy" not in status.headers


# ---------------------------------------------------------------- cookies and idle logout
async def test_session_cookie_is_httponly_strict_and_secure_over_https(
    web: Web,
) -> None:
    form = await web.client.get("/web/login")
    token = LOGIN_TOKEN.search(form.text).group(1)  # type: ignore[union-attr]
    response = await web.client.post(
        "/web/login", data={"username": "officer", "password": PASSWORD, "csrf_token": token}
    )
    cookies = [v for k, v in response.headers.multi_items() if k == "set-cookie"]
    session = next(c for c in cookies if c.startswith("bp_session="))
    assert "HttpOnly" in session and "samesite=strict" in session.lower()
    assert "Secure" not in session
    https = "https://testserver.local"
    web.client.cookies.clear()
    form = await web.client.get(f"{https}/web/login")
    token = LOGIN_TOKEN.search(form.text).group(1)  # type: ignore[union-attr]
    response = await web.client.post(
        f"{https}/web/login",
        data={"username": "officer", "password": PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 303
    cookies = [v for k, v in response.headers.multi_items() if k == "set-cookie"]
    for name in ("bp_session=", "bp_seen=", "bp_lang="):
        cookie = next(c for c in cookies if c.startswith(name))
        assert "Secure" in cookie and "HttpOnly" in cookie and "samesite=strict" in cookie.lower()


async def _session_is_revoked(web: Web, token: str) -> bool:
    async with web.db.session() as session:
        from registry.models import AuthToken

        stored = await session.get(AuthToken, token_digest(token))
        return bool(stored and stored.revoked)


async def test_idle_session_is_revoked_and_audited(web: Web) -> None:
    await web.login("officer")
    token = web.session
    assert (await web.client.get("/web/desk")).status_code == 200
    idle = 15 * 60
    stale = seen_value(web.node, token, now=time.time() - idle - 5)
    web.client.cookies.set(SEEN_COOKIE, stale)
    response = await web.client.get("/web/desk")
    assert response.status_code == 303 and response.headers["location"].startswith("/web/login")
    assert await _session_is_revoked(web, token)
    assert await web.audit_count(action="logout_idle") == 1
    again = await web.client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert again.status_code == 401
    login_page = await web.client.get("/web/login?expired=1")
    assert (
        gettext_for("fr")(
            "Your session ended after a period without activity. Please log in again."
        ).replace("'", "&#39;")
        in login_page.text
    )


async def test_forged_idle_stamp_ends_the_session(web: Web) -> None:
    await web.login("supervisor")
    token = web.session
    web.client.cookies.set(SEEN_COOKIE, "9999999999.forged")
    response = await web.client.get("/web/alerts")
    assert response.status_code == 303
    assert await _session_is_revoked(web, token)


async def test_idle_limit_covers_cookie_requests_to_the_api_too(web: Web) -> None:
    await web.login("officer")
    token = web.session
    assert (await web.client.get("/api/auth/me")).status_code == 200  # the cookie works
    stale = seen_value(web.node, token, now=time.time() - 3600)
    web.client.cookies.set(SEEN_COOKIE, stale)
    assert (await web.client.get("/api/auth/me")).status_code == 401
    assert await _session_is_revoked(web, token)


async def test_api_login_cookie_is_a_session_with_the_idle_limit(web: Web) -> None:
    web.client.cookies.clear()
    login = await web.client.post(
        "/api/auth/login", json={"username": "officer", "password": PASSWORD}
    )
    assert login.status_code == 200
    assert login.json()["csrf_token"]  # for the X-CSRF-Token header of cookie requests
    assert (await web.client.get("/api/auth/me")).status_code == 200
    # a session cookie without its idle stamp is no session, on /api as on /web
    web.client.cookies.delete(SEEN_COOKIE)
    assert (await web.client.get("/api/auth/me")).status_code == 401


async def test_logout_revokes_the_session(web: Web) -> None:
    await web.login("officer")
    token = web.session
    response = await web.client.post("/web/logout", data={"csrf_token": web.csrf})
    assert response.status_code == 303
    assert await _session_is_revoked(web, token)
    assert (await web.client.get("/web/desk")).status_code == 303


# ---------------------------------------------------------------- CSP and markup
async def test_pages_have_csp_and_no_inline_script_or_style(web: Web) -> None:
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    pages: list[tuple[str, str]] = [("officer", "/web/login")]
    for role in ROLES:
        pages += [(role, url) for url, roles in page_routes() if role in roles]
    current = None
    for role, url in pages:
        if role != current:
            await web.login(role)
            current = role
        response = await web.client.get(url)
        assert response.status_code == 200, url
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "no-store"
        html = response.text
        assert not INLINE_SCRIPT.search(html), url
        assert not EVENT_HANDLER.search(html), url
        assert not STYLE_ATTRIBUTE.search(html), url
        assert "<style" not in html, url
        local = html.replace('xmlns="http://www.w3.org/2000/svg"', "")
        assert "http://" not in local and "https://" not in local, url  # all assets are local


async def test_static_assets_are_served_locally_with_caching(web: Web) -> None:
    for asset in ("css/app.css", "js/app.js", "js/desk.js", "js/receipt.js"):
        response = await web.client.get(f"/static/{asset}")
        assert response.status_code == 200, asset
        assert "max-age" in response.headers["cache-control"]
    root = await web.client.get("/", follow_redirects=False)
    assert root.status_code == 302 and root.headers["location"] == "/web/"


async def _officer_outbox(web: Web, username: str) -> tuple[Officer, int]:
    async with web.db.session() as session:
        stored = await session.scalar(select(Officer).where(Officer.username == username))
        assert stored is not None
        count = await session.scalar(
            select(func.count())
            .select_from(OutboxEntry)
            .where(OutboxEntry.record_type == "officer", OutboxEntry.record_id == str(stored.id))
        )
    return stored, int(count or 0)


async def test_arabic_pages_are_right_to_left(web: Web) -> None:
    await web.login("officer")
    _, travelled = await _officer_outbox(web, "officer")
    try:
        response = await web.client.post(
            "/web/language", data={"language": "ar", "csrf_token": web.csrf}
        )
        assert response.status_code == 303
        page = (await web.client.get("/web/desk")).text
        assert '<html lang="ar" dir="rtl">' in page
        assert gettext_for("ar")("Registration desk") in page
        stored, now_travelling = await _officer_outbox(web, "officer")
        assert stored.language == "ar"
        assert now_travelling == travelled + 1  # the account change travels to national
        assert await web.audit_count(action="set_language") == 1
    finally:
        await web.client.post("/web/language", data={"language": "fr", "csrf_token": web.csrf})


# ---------------------------------------------------------------- audited reads
async def test_page_views_of_personal_data_are_audited(web: Web) -> None:
    await web.login("officer")
    before = await web.audit_count(action="search")
    assert (await web.client.get("/web/desk")).status_code == 200
    assert await web.audit_count(action="search") == before + 1  # recent registrations
    await web.login("hq_analyst")
    before = await web.audit_count(action="statistics")
    assert (await web.client.get("/web/hq/dashboard")).status_code == 200
    assert await web.audit_count(action="statistics") == before + 3
    await web.login("protection")
    before = await web.audit_count(record_type="protection_referral")
    assert (await web.client.get("/web/referrals")).status_code == 200
    assert await web.audit_count(record_type="protection_referral") == before + 1
    await web.login("supervisor")
    before = await web.audit_count(action="read", record_type="officer_activity")
    assert (await web.client.get("/web/officers/activity?username=officer")).status_code == 200
    # two reads: the post's counts per officer and day, and this officer's actions
    assert await web.audit_count(action="read", record_type="officer_activity") == before + 2


# ---------------------------------------------------------------- the desk endpoints
async def test_desk_parses_mrz_on_the_server(web: Web) -> None:
    await web.login("officer")
    doc = number()
    response = await web.client.post("/web/desk/mrz", json={"mrz": td3(doc)}, headers=web.headers())
    assert response.status_code == 200
    body = response.json()
    assert body["readable"] and body["valid"]
    assert body["values"]["document.number"] == doc
    # the desk shows days as the reader writes them (the form accepts the same back)
    assert body["values"]["traveller.date_of_birth"] == "03/02/1991"
    assert {c["field"] for c in body["checks"] if c["ok"]} >= {"document.number", "mrz"}
    broken = td3(doc)[:-1] + ("1" if td3(doc)[-1] != "1" else "2")
    bad = await web.client.post("/web/desk/mrz", json={"mrz": broken}, headers=web.headers())
    assert any(not c["ok"] for c in bad.json()["checks"])


async def test_desk_check_gives_instructions_only(web: Web) -> None:
    await web.login("supervisor")
    doc = number()
    entry = await web.client.post(
        "/api/watchlist/entries",
        json={
            "kind": "document",
            "reason": "secret listing reason",
            "action": "refer_secondary",
            "issuing_state": "MLI",
            "document_number": doc,
        },
        # a cookie request to the API: the page's CSRF token, from the node's own origin
        headers={"X-CSRF-Token": web.csrf, "Origin": "http://testserver.local"},
    )
    assert entry.status_code == 201, entry.text
    await web.login("officer")
    check = await web.client.post(
        "/web/desk/check",
        json={"crossing": {"direction": "entry", "mrz": td3(doc)}},
        headers=web.headers(),
    )
    assert check.status_code == 200, check.text
    body = check.json()
    assert body["instructions"] == [gettext_for("fr")("Refer to secondary inspection")]
    assert "secret" not in check.text and "entry_id" not in check.text
    async with web.db.session() as session:
        crossings = await session.scalar(select(func.count()).select_from(Crossing))
    assert crossings == 0  # checking writes no crossing


async def test_desk_save_uses_the_registration_service(web: Web) -> None:
    await web.login("officer")
    doc = number()
    crossing = {"direction": "exit", "mrz": td3(doc), "decision": "referred", "mode": "car"}
    import json

    saved = await web.client.post(
        "/web/desk/register",
        files={"crossing": (None, json.dumps(crossing))},
        headers=web.headers(),
    )
    assert saved.status_code == 201, saved.text
    body = saved.json()
    assert body["receipt_url"].startswith(f"/web/receipts/{body['id']}")
    async with web.db.session() as session:
        stored = await session.get(Crossing, uuid.UUID(body["id"]))
        created = await session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "create", AuditEvent.record_id == body["id"])
        )
    assert stored is not None and stored.decision == "referred" and stored.mode == "car"
    assert stored.receipt.startswith("BP1:") and created == 1
    assert any(c["code"] == "exit_without_entry" for c in body["checks"])
    slip = await web.client.get(body["receipt_url"])
    assert slip.status_code == 200 and "<svg" in slip.text
    assert slip.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


async def test_expired_photo_ticket_asks_for_the_file(web: Web) -> None:
    await web.login("officer")
    import json

    response = await web.client.post(
        "/web/desk/register",
        files={
            "crossing": (None, json.dumps({"direction": "entry", "mrz": td3(number())})),
            "photo_ticket": (None, "gone"),
        },
        headers=web.headers(),
    )
    assert response.status_code == 409
    assert response.json()["invalid_params"][0]["name"] == "photo_ticket"


@pytest.mark.faces
async def test_photo_quality_stores_nothing_and_the_ticket_is_used_at_save(
    web: Web, faces_dir: Path
) -> None:
    import json

    await web.login("officer")
    files_before = sorted(web.node.settings.photo_dir.rglob("*.jpg"))
    analysed = await web.client.post(
        "/web/desk/photo",
        files={"photo": ("p.jpg", (faces_dir / "obama_1.jpg").read_bytes(), "image/jpeg")},
        headers=web.headers(),
    )
    assert analysed.status_code == 200, analysed.text
    quality = analysed.json()
    assert quality["passed"] and quality["faces_found"] == 1 and quality["ticket"]
    assert sorted(web.node.settings.photo_dir.rglob("*.jpg")) == files_before
    async with web.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Photo)) == 0
    refused = await web.client.post(
        "/web/desk/photo",
        files={"photo": ("two.jpg", (faces_dir / "two_people.jpg").read_bytes(), "image/jpeg")},
        headers=web.headers(),
    )
    assert not refused.json()["passed"]
    assert refused.json()["reasons"][0]["code"] == "multiple_faces"
    saved = await web.client.post(
        "/web/desk/register",
        files={
            "crossing": (None, json.dumps({"direction": "entry", "mrz": td3(number())})),
            "photo_ticket": (None, quality["ticket"]),
        },
        headers=web.headers(),
    )
    assert saved.status_code == 201, saved.text
    async with web.db.session() as session:
        stored = await session.get(Crossing, uuid.UUID(saved.json()["id"]))
        photo = await session.get(Photo, stored.photo_sha256)  # type: ignore[union-attr]
    assert photo is not None and photo.face_encoding is not None


# ---------------------------------------------------------------- charts
def test_chart_axis_and_escaping() -> None:
    assert [nice_maximum(v) for v in (0, 1, 3, 7, 11, 260)] == [1, 1, 5, 10, 20, 500]
    svg = str(
        bar_chart(
            "chart-x",
            "<title>",
            ["<b>", "B"],
            [Series("entries", "Entries", "entry")],
            {("<b>", "entries"): 4},
        )
    )
    assert "<b>" not in svg and "&lt;b&gt;" in svg
    assert 'data-label="B" data-series="entries" data-value="0"' in svg
    assert 'data-value="4"' in svg and "style=" not in svg


# ---------------------------------------------------------------- translations
def test_catalogs_are_complete_and_compiled() -> None:
    from babel.messages.mofile import read_mo
    from babel.messages.pofile import read_po

    from registry.web.i18n import LOCALES_DIR

    template = read_po((LOCALES_DIR / "messages.pot").open("rb"))
    wanted = {message.id for message in template if message.id}
    for lang in ("fr", "ar", "en"):
        folder = LOCALES_DIR / lang / "LC_MESSAGES"
        source = read_po((folder / "messages.po").open("rb"), locale=lang)
        compiled = read_mo((folder / "messages.mo").open("rb"))
        ids = {message.id for message in source if message.id}
        assert ids == wanted, f"{lang}: run pybabel update (registry/locales/babel.cfg)"
        for message in source:
            if not message.id:
                continue
            if lang != "en":
                assert message.string, f"{lang}: {message.id!r} is not translated"
            assert (compiled.get(message.id).string if compiled.get(message.id) else "") == (
                message.string
            ), f"{lang}: run pybabel compile (registry/locales/babel.cfg)"


# ---------------------------------------------------------------- more of the desk
async def _save(web: Web, crossing: dict[str, Any]) -> dict[str, Any]:
    import json

    response = await web.client.post(
        "/web/desk/register",
        files={"crossing": (None, json.dumps(crossing))},
        headers=web.headers(),
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_minor_needs_a_guardian_and_arabic_names_are_kept(web: Web) -> None:
    await web.login("officer")
    guardian = await _save(web, {"direction": "entry", "mrz": td3(number())})
    child = {
        "direction": "entry",
        "document": {"issuing_state": "MLI", "number": number()},
        "traveller": {
            "surname": "DIALLO",
            "given_names": "FATIMATA",
            "surname_ar": "ديالو",
            "given_names_ar": "فاطمة",
            "nationality": "MLI",
            "date_of_birth": (date.today() - timedelta(days=9 * 365)).isoformat(),
            "sex": "F",
        },
    }
    alone = await web.client.post(
        "/web/desk/check", json={"crossing": child}, headers=web.headers()
    )
    codes = {c["code"]: c["field"] for c in alone.json()["checks"]}
    assert codes.get("minor_without_guardian") == "guardian_crossing_id"
    linked = {**child, "guardian_crossing_id": guardian["id"]}
    checked = await web.client.post(
        "/web/desk/check", json={"crossing": linked}, headers=web.headers()
    )
    assert "minor_without_guardian" not in {c["code"] for c in checked.json()["checks"]}
    saved = await _save(web, linked)
    async with web.db.session() as session:
        from registry.models import Traveller

        crossing = await session.get(Crossing, uuid.UUID(saved["id"]))
        assert crossing is not None
        person = await session.get(Traveller, crossing.traveller_id)
    assert str(crossing.guardian_crossing_id) == guardian["id"]
    assert person is not None and person.surname_ar == "ديالو"


async def test_protection_referrals_are_for_protection_officers_only(web: Web) -> None:
    await web.login("officer")
    saved = await _save(web, {"direction": "entry", "mrz": td3(number(), surname="KONE")})
    login = await web.client.post(
        "/api/auth/login", json={"username": "officer", "password": PASSWORD}
    )
    referral = await web.client.post(
        f"/api/crossings/{saved['id']}/referrals",
        json={"category": "unaccompanied_minor", "note": "alone, aged about 12"},
        headers={"Authorization": f"Bearer {login.json()['token']}"},
    )
    assert referral.status_code == 201
    for role in ("officer", "supervisor", "hq_analyst", "admin"):
        await web.login(role)
        assert (await web.client.get("/web/referrals")).status_code == 403, role
    await web.login("protection")
    listing = await web.client.get("/web/referrals")
    assert "KONE" in listing.text
    detail = await web.client.get(f"/web/referrals/{referral.json()['referral_id']}")
    assert "alone, aged about 12" in detail.text


async def test_admin_creates_and_deactivates_an_account(web: Web) -> None:
    await web.login("admin")
    created = await web.client.post(
        "/web/admin/officers",
        data={
            "csrf_token": web.csrf,
            "username": "new.desk",
            "full_name": "New Desk",
            "role": "officer",
            "language": "ar",
            "password": PASSWORD,
        },
    )
    assert created.status_code == 303, created.text
    assert await web.login("new.desk") == "/web/desk"
    session_token = web.session
    await web.login("admin")
    deactivated = await web.client.post(
        "/web/admin/officers/new.desk/active", data={"csrf_token": web.csrf, "active": "0"}
    )
    assert deactivated.status_code == 303
    assert await _session_is_revoked(web, session_token)
    page = (await web.client.get("/web/admin/officers")).text
    assert "new.desk" in page
    assert await web.audit_count(action="deactivate") == 1
    weak = await web.client.post(
        "/web/admin/officers",
        headers={"Accept": "application/json"},
        data={
            "csrf_token": web.csrf,
            "username": "x",
            "full_name": "X",
            "role": "officer",
            "password": "short",
        },
    )
    assert weak.status_code == 422
