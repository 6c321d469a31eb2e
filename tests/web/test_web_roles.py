"""Who may see what in the web pages, over HTTP on SQLite and PostgreSQL: role checks on every
page, the navigation and the home page of each role, audited reads of personal data,
protection referrals for protection officers only, and the accounts an administrator creates
and deactivates.
"""

from __future__ import annotations

import re

from registry.web.nav import navigation_for
from tests.support.nodes import PASSWORD, ROLES
from tests.support.web_client import Web, _save, _session_is_revoked, number, page_routes, td3


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
