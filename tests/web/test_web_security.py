"""Security of the web pages, over HTTP on SQLite and PostgreSQL: the content type and its
charset, CSRF on every unsafe /web route (and not on the bearer API), session cookie flags,
idle logout, the Content-Security-Policy with no inline script or style in any page, local
static assets, and escaping in the charts. Who may see what is in test_web_roles.py, the desk
endpoints in test_web_desk.py, the language in test_web_language.py.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from registry.web.charts import Series, bar_chart, nice_maximum
from registry.web.i18n import gettext_for
from registry.web.security import CONTENT_SECURITY_POLICY, SEEN_COOKIE, seen_value
from tests.support.nodes import PASSWORD, ROLES
from tests.support.web_client import (
    JSON,
    LOGIN_TOKEN,
    Web,
    _session_is_revoked,
    number,
    page_routes,
    td3,
)

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
EVENT_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.IGNORECASE)
STYLE_ATTRIBUTE = re.compile(r"<[^>]+\sstyle\s*=", re.IGNORECASE)


async def test_pages_and_error_pages_name_their_charset_once(web: Web) -> None:
    """``text/html; charset=utf-8`` once: a repeated parameter is malformed."""
    login = await web.client.get("/web/login")
    await web.login("officer")
    page, refused = await web.client.get("/web/desk"), await web.client.get("/web/admin/officers")
    assert refused.status_code == 403
    for response in (login, page, refused):
        assert response.headers["content-type"] == "text/html; charset=utf-8"


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
