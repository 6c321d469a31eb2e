"""CSRF, content types and idle logout on the JSON API, over real HTTP.

A request authenticated by the session cookie may change nothing under /api without the
session's CSRF token (X-CSRF-Token) and a same-origin Origin/Referer; bearer requests are
exempt. JSON endpoints refuse other content types (415). The idle limit applies to every
cookie request.
"""

from __future__ import annotations

import json
import re
import time

import httpx
from sqlalchemy import func, select

from registry.models import AuthToken, Crossing, Officer
from registry.security import token_digest
from registry.web.security import SEEN_COOKIE, seen_value
from tests.support.live import ServedNode
from tests.support.nodes import PASSWORD
from tests.support.web_client import number, td3

EVIL = "https://evil.example"
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]*)">')


async def browser_login(client: httpx.AsyncClient, username: str) -> str:
    """Log in through the web form like a browser; returns the page's CSRF token."""
    form = await client.get("/web/login?lang=en")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None
    answer = await client.post(
        "/web/login",
        data={"username": username, "password": PASSWORD, "csrf_token": token.group(1)},
    )
    assert answer.status_code == 303, answer.text
    page = await client.get("/web/account")
    meta = CSRF_META.search(page.text)
    assert meta is not None and meta.group(1)
    return meta.group(1)


def new_admin(username: str) -> dict[str, str]:
    return {
        "username": username,
        "full_name": "Planted administrator",
        "role": "admin",
        "password": "attacker-password-1",
    }


async def count(served: ServedNode, model: type, **where: object) -> int:
    query = select(func.count()).select_from(model)
    for name, value in where.items():
        query = query.where(getattr(model, name) == value)
    async with served.db.session() as session:
        return int(await session.scalar(query) or 0)


async def test_cross_origin_cookie_request_cannot_create_an_admin(served: ServedNode) -> None:
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
        csrf = await browser_login(client, "admin")
        origin = served.url
        # the attack of the report: the admin's cookie, a JSON body, from another site
        attacks = [
            {"headers": {"Origin": EVIL}, "json": new_admin("planted.a")},
            {"headers": {"Origin": EVIL, "X-CSRF-Token": csrf}, "json": new_admin("planted.b")},
            {"headers": {"X-CSRF-Token": "0" * 43, "Origin": origin}, "json": new_admin("c.c")},
            {"headers": {"X-CSRF-Token": csrf}, "json": new_admin("planted.d")},  # no origin
            {
                "headers": {"X-CSRF-Token": csrf, "Referer": f"{EVIL}/page"},
                "json": new_admin("planted.e"),
            },
        ]
        for attack in attacks:
            answer = await client.post("/api/officers/", **attack)  # type: ignore[arg-type]
            assert answer.status_code == 403, (attack, answer.text)
            assert answer.headers["content-type"].startswith("application/problem+json")
        # a JSON body sent as text/plain (what a cross-site form can send): refused too,
        # with the token as well (then for its content type)
        plain = await client.post(
            "/api/officers/",
            content=json.dumps(new_admin("planted.f")),
            headers={"Content-Type": "text/plain", "Origin": EVIL},
        )
        assert plain.status_code == 403
        plain = await client.post(
            "/api/officers/",
            content=json.dumps(new_admin("planted.g")),
            headers={"Content-Type": "text/plain", "Origin": origin, "X-CSRF-Token": csrf},
        )
        assert plain.status_code == 415
        assert plain.json()["invalid_params"][0]["name"] == "content-type"
        assert await count(served, Officer, role="admin") == 1
        # the node's own page, with its token: accepted (Origin, or Referer without Origin)
        own = await client.post(
            "/api/officers/",
            json=new_admin("desk.admin"),
            headers={"X-CSRF-Token": csrf, "Origin": origin},
        )
        assert own.status_code == 201, own.text
        referred = await client.post(
            "/api/officers/",
            json={**new_admin("desk.admin2"), "role": "officer"},
            headers={"X-CSRF-Token": csrf, "Referer": f"{origin}/web/admin/officers"},
        )
        assert referred.status_code == 201, referred.text
    assert await count(served, Officer, role="admin") == 2


async def test_multipart_registration_with_a_supervisor_cookie_needs_the_token(
    served: ServedNode,
) -> None:
    crossing = json.dumps({"direction": "entry", "mrz": td3(number())})
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
        csrf = await browser_login(client, "supervisor")
        refused = await client.post(
            "/api/crossings/", files={"crossing": (None, crossing)}, headers={"Origin": EVIL}
        )
        assert refused.status_code == 403, refused.text
        no_token = await client.post(
            "/api/crossings/", files={"crossing": (None, crossing)}, headers={"Origin": served.url}
        )
        assert no_token.status_code == 403
        assert await count(served, Crossing) == 0
        accepted = await client.post(
            "/api/crossings/",
            files={"crossing": (None, crossing)},
            headers={"Origin": served.url, "X-CSRF-Token": csrf},
        )
        assert accepted.status_code == 201, accepted.text
    assert await count(served, Crossing) == 1


async def test_bearer_requests_are_exempt(served: ServedNode) -> None:
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
        created = await client.post(
            "/api/crossings/",
            json={"direction": "entry", "mrz": td3(number())},
            headers={**served.auth("officer"), "Origin": EVIL},
        )
        assert created.status_code == 201, created.text


async def test_json_endpoints_refuse_other_content_types(served: ServedNode) -> None:
    body = json.dumps(new_admin("typed.admin"))
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
        for content_type in ("text/plain", "application/x-www-form-urlencoded", "text/html"):
            answer = await client.post(
                "/api/officers/",
                content=body,
                headers={**served.auth("admin"), "Content-Type": content_type},
            )
            assert answer.status_code == 415, (content_type, answer.text)
        login = await client.post(
            "/api/auth/login",
            content=json.dumps({"username": "officer", "password": PASSWORD}),
            headers={"Content-Type": "text/plain"},
        )
        assert login.status_code == 415
        registration = await client.post(
            "/api/crossings/",
            content=json.dumps({"direction": "entry", "mrz": td3(number())}),
            headers={**served.auth("officer"), "Content-Type": "text/plain"},
        )
        assert registration.status_code == 415
        charset = await client.post(
            "/api/officers/",
            content=body,
            headers={**served.auth("admin"), "Content-Type": "application/json; charset=utf-8"},
        )
        assert charset.status_code == 201, charset.text
    assert await count(served, Officer, username="typed.admin") == 1
    assert await count(served, Crossing) == 0


async def test_idle_cookie_on_the_api_is_logged_out(served: ServedNode) -> None:
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
        await browser_login(client, "officer")
        token = client.cookies["bp_session"]
        assert (await client.get("/api/auth/me")).status_code == 200
        stale = seen_value(served.node, token, now=time.time() - 3600)
        client.cookies.set(SEEN_COOKIE, stale, domain="127.0.0.1")
        answer = await client.get("/api/auth/me")
        assert answer.status_code == 401
    async with served.db.session() as session:
        stored = await session.get(AuthToken, token_digest(token))
        assert stored is not None and stored.revoked


async def test_cookie_without_idle_stamp_is_no_session_on_the_api(served: ServedNode) -> None:
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
        login = await client.post(
            "/api/auth/login", json={"username": "officer", "password": PASSWORD}
        )
        assert login.status_code == 200
        token = login.json()["token"]
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as bare:
        bare.cookies.set("bp_session", token, domain="127.0.0.1")
        assert (await bare.get("/api/auth/me")).status_code == 401
        created = await bare.post(
            "/api/crossings/",
            json={"direction": "entry", "mrz": td3(number())},
            headers={"Origin": served.url, "X-CSRF-Token": login.json()["csrf_token"]},
        )
        assert created.status_code == 401


async def test_a_second_login_in_the_same_browser_keeps_both_sessions_sound(
    served: ServedNode,
) -> None:
    """Logging in while another session's cookies are present: the answer's cookies are the
    new session's only (the old stamp is not refreshed over them), so the new session is
    not taken for a forged one and nobody is logged out."""
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
        first = await client.post(
            "/api/auth/login", json={"username": "officer", "password": PASSWORD}
        )
        second = await client.post(
            "/api/auth/login", json={"username": "supervisor", "password": PASSWORD}
        )
        assert second.status_code == 200
        me = await client.get("/api/auth/me")
        assert me.status_code == 200 and me.json()["username"] == "supervisor"
        await browser_login(client, "admin")  # the web login, over the API session
        me = await client.get("/api/auth/me")
        assert me.status_code == 200 and me.json()["username"] == "admin"
    async with served.db.session() as session:
        for login in (first, second):
            stored = await session.get(AuthToken, token_digest(login.json()["token"]))
            assert stored is not None and not stored.revoked


async def test_the_desks_json_endpoints_refuse_other_content_types(served: ServedNode) -> None:
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
        csrf = await browser_login(client, "officer")
        body = json.dumps({"mrz": td3(number())})
        plain = await client.post(
            "/web/desk/mrz",
            content=body,
            headers={"X-CSRF-Token": csrf, "Content-Type": "text/plain", "Accept": "json"},
        )
        assert plain.status_code == 415
        parsed = await client.post(
            "/web/desk/mrz",
            content=body,
            headers={"X-CSRF-Token": csrf, "Content-Type": "application/json"},
        )
        assert parsed.status_code == 200, parsed.text
