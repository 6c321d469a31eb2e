"""Every endpoint against every role: 401 without a token, 403 for a role that may not see
the data, and never 401/403 for a role that may. New endpoints must join the table."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image
from sqlalchemy import select

from registry.models import Officer
from registry.security import issue_token
from tests.support.factories import td3
from tests.support.nodes import ROLES, NodeUnderTest, unique_number

FRONT = {"officer", "supervisor"}
READERS = {"officer", "supervisor", "hq_analyst"}
PROTECTION = {"protection", "admin"}
EVERYONE = set(ROLES)

# (method, path template, roles allowed, JSON body)
MATRIX: list[tuple[str, str, set[str], dict | None]] = [
    ("POST", "/api/crossings", FRONT, {"direction": "entry", "mrz": "{mrz}"}),
    ("GET", "/api/crossings/{crossing}", READERS, None),
    ("GET", "/api/crossings/{crossing}/versions", READERS, None),
    ("POST", "/api/crossings/{crossing}/corrections", FRONT, {"reason": "matrix test"}),
    (
        "POST",
        "/api/crossings/{crossing}/referrals",
        FRONT,
        {"category": "other_vulnerability", "note": "matrix"},
    ),
    ("GET", "/api/crossings/{crossing}/receipt", FRONT, None),
    ("GET", "/api/crossings/{crossing}/receipt.png", FRONT, None),
    ("GET", "/api/crossings/{crossing}/receipt.svg", FRONT, None),
    ("GET", "/api/crossings/{crossing}/receipt.html", FRONT, None),
    ("POST", "/api/receipts/verify", EVERYONE, {"payload": "{receipt}"}),
    ("GET", "/api/crossings", READERS, None),
    ("GET", "/api/search/document?issuing_state=MLI&number=X1", READERS, None),
    ("GET", "/api/search/name?name=Ahmed", READERS, None),
    ("GET", "/api/travellers/{traveller}/history", READERS, None),
    ("GET", "/api/stays/open", READERS, None),
    ("GET", "/api/stays/overstays", READERS, None),
    ("GET", "/api/photos/{photo}", READERS, None),
    ("GET", "/api/referrals", PROTECTION, None),
    ("GET", "/api/referrals/{referral}", PROTECTION, None),
    (
        "POST",
        "/api/referrals/{referral}/follow-ups",
        {"protection"},  # admin reads referrals for audit; it does not work cases
        {"status": "in_follow_up", "note": "matrix {role}"},
    ),
    # too short a new password: refused (400) before anything changes, for every role
    ("POST", "/api/auth/password", EVERYONE, {"current_password": "x", "new_password": "short"}),
    ("POST", "/api/officers/{username}/password", {"admin"}, {"password": "short"}),
    ("GET", "/api/officers", {"admin", "supervisor"}, None),
    (
        "POST",
        "/api/officers",
        {"admin"},
        {
            "username": "new.{role}",
            "full_name": "New",
            "role": "officer",
            "password": "a-long-password",
        },
    ),
    ("GET", "/api/audit/verify", {"admin"}, None),
    ("GET", "/api/alerts", {"supervisor", "protection", "admin"}, None),
    ("GET", "/api/alerts/figures", {"supervisor", "hq_analyst", "admin"}, None),
    (
        "POST",
        "/api/alerts/{alert}/adjudication",
        {"supervisor"},  # protection passes the guard but decides only protect alerts (403)
        {"outcome": "dismissed", "reason": "matrix test"},
    ),
    ("GET", "/api/watchlist/entries", {"supervisor", "protection", "admin"}, None),
    (
        "POST",
        "/api/watchlist/entries",
        {"supervisor", "admin"},  # protection creates protect entries only (403 here)
        {
            "kind": "document",
            "issuing_state": "MLI",
            "document_number": "M1",
            "reason": "m",
            "action": "notify",
        },
    ),
    # protection gets 404 (not 403) for entries it may not manage: their existence is hidden
    (
        "POST",
        "/api/watchlist/entries/{entry}/versions",
        {"supervisor", "protection", "admin"},
        {"change_reason": "matrix test", "reason": "matrix {role}"},
    ),
    (
        "POST",
        "/api/watchlist/entries/{entry}/deactivate",
        {"supervisor", "protection", "admin"},
        {"reason": "matrix test"},
    ),
    ("GET", "/api/watchlist/entries/{entry}/history", {"supervisor", "protection", "admin"}, None),
    ("GET", "/api/auth/me", EVERYONE, None),
    ("GET", "/api/sync/status", EVERYONE, None),
    ("POST", "/api/auth/logout", EVERYONE, None),
]
PUBLIC = {("POST", "/api/auth/login"), ("GET", "/api/health")}


def _route_key(method: str, template: str) -> tuple[str, str]:
    path = template.split("?")[0]
    for name in ("crossing", "traveller", "photo", "referral", "alert", "entry", "username"):
        path = path.replace("{" + name + "}", "*")
    return method, path


def test_every_route_is_in_the_matrix(post_node_app_routes: set[tuple[str, str]]) -> None:
    covered = {_route_key(m, p) for m, p, _, _ in MATRIX} | PUBLIC
    assert post_node_app_routes == covered


@pytest.fixture
def post_node_app_routes(post_node: NodeUnderTest) -> set[tuple[str, str]]:
    routes = set()
    for route in post_node.client.app.routes:
        if route.path.startswith(("/schema", "/web", "/static")) or route.path == "/":
            continue  # the pages have their own role tests (test_web_roles.py)
        for method in route.methods - {"OPTIONS", "HEAD"}:
            path = route.path
            for part in path.split("/"):
                if part.startswith("{"):
                    path = path.replace(part, "*")
            routes.add((method, path.rstrip("/") or "/"))
    return routes


async def _fixtures(node: NodeUnderTest) -> dict[str, str]:
    buffer = io.BytesIO()
    Image.new("RGB", (200, 240), (90, 90, 90)).save(buffer, format="PNG")
    response = await node.client.post(
        "/api/crossings",
        headers=node.auth("officer"),
        data={
            "crossing": json.dumps(
                {
                    "direction": "entry",
                    "mrz": td3(unique_number()),
                    "photo_quality_override": "test pattern",
                }
            )
        },
        files={"photo": ("p.png", buffer.getvalue(), "image/png")},
    )
    crossing = response.json()
    number = unique_number()
    listed = await node.client.post(
        "/api/watchlist/entries",
        headers=node.auth("supervisor"),
        json={
            "kind": "document",
            "issuing_state": "MLI",
            "document_number": number,
            "reason": "matrix",
            "action": "notify",
        },
    )
    hit = await node.client.post(
        "/api/crossings",
        headers=node.auth("officer"),
        json={"direction": "entry", "mrz": td3(number)},
    )
    referral = await node.client.post(
        f"/api/crossings/{crossing['id']}/referrals",
        headers=node.auth("officer"),
        json={"category": "unaccompanied_minor", "note": "alone"},
    )
    return {
        "crossing": crossing["id"],
        "traveller": crossing["traveller"]["id"],
        "photo": crossing["photo_sha256"],
        "referral": referral.json()["referral_id"],
        "receipt": crossing["receipt"],
        "entry": listed.json()["entry_id"],
        "alert": hit.json()["alerts"][0]["id"],
        "username": "liaison",
    }


def _fill(value: object, ids: dict[str, str], role: str) -> object:
    if isinstance(value, str):
        for key, replacement in {**ids, "role": role}.items():
            value = value.replace("{" + key + "}", replacement)
        return value
    if isinstance(value, dict):
        return {k: _fill(v, ids, role) for k, v in value.items()}
    return value


async def test_role_matrix(post_node: NodeUnderTest) -> None:
    ids = await _fixtures(post_node)
    ids["mrz"] = td3(unique_number())
    failures = []
    for method, template, allowed, body in MATRIX:
        path = str(_fill(template, ids, "anon"))
        anonymous = await post_node.client.request(method, path, json=_fill(body, ids, "anon"))
        if anonymous.status_code != 401:
            failures.append(f"{method} {template} without token -> {anonymous.status_code}")
        for role in ROLES:
            if method == "POST" and template == "/api/auth/logout":
                continue  # logging out would revoke the shared token; checked below
            if template == "/api/crossings/{crossing}/corrections" and role in allowed:
                continue  # a crossing can be corrected once; checked in test_registration
            response = await post_node.client.request(
                method, path, json=_fill(body, ids, role), headers=post_node.auth(role)
            )
            denied = response.status_code in (401, 403)
            if (role in allowed) == denied:
                failures.append(f"{method} {template} as {role} -> {response.status_code}")
            if denied:
                assert response.headers["content-type"].startswith("application/problem+json")
    assert failures == []


async def test_officer_of_another_post_is_refused(post_node: NodeUnderTest) -> None:
    created = await post_node.client.post(
        "/api/officers",
        headers=post_node.auth("admin"),
        json={
            "username": "kobeni.officer",
            "full_name": "Kobeni",
            "role": "officer",
            "password": "another-long-one",
            "home_post": "MR-KOBENI",
        },
    )
    assert created.status_code == 201
    login = await post_node.client.post(
        "/api/auth/login", json={"username": "kobeni.officer", "password": "another-long-one"}
    )
    assert login.status_code == 401  # accounts log in at their home post only
    async with post_node.db.write_transaction() as session:  # a token minted elsewhere
        kobeni = await session.scalar(select(Officer).where(Officer.home_post == "MR-KOBENI"))
        token = await issue_token(session, kobeni, 1)
    response = await post_node.client.get(
        "/api/stays/open", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 403
    assert "another post" in response.json()["detail"]


async def test_logout_revokes_the_token(post_node: NodeUnderTest) -> None:
    login = await post_node.client.post(
        "/api/auth/login", json={"username": "liaison", "password": "correct-horse-battery"}
    )
    assert login.status_code == 200
    headers = {"Authorization": f"Bearer {login.json()['token']}"}
    assert (await post_node.client.get("/api/auth/me", headers=headers)).status_code == 200
    assert (await post_node.client.post("/api/auth/logout", headers=headers)).status_code == 200
    assert (await post_node.client.get("/api/auth/me", headers=headers)).status_code == 401


async def test_wrong_password_is_refused_and_audited(post_node: NodeUnderTest) -> None:
    response = await post_node.client.post(
        "/api/auth/login", json={"username": "officer", "password": "wrong-password"}
    )
    assert response.status_code == 401
    assert response.json()["invalid_params"][0]["name"] == "password"
