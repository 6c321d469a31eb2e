"""Login throttling over real HTTP: delays, lockout, release, audit, timing, the web login.

A node served by uvicorn on 127.0.0.1 with short delays (``served``, tests/live.py) so
that a lockout and its release fit in a test.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from registry.throttle import LoginPolicy, LoginThrottle
from tests.support.live import LOCKOUT_FAILURES, LOCKOUT_SECONDS, ServedNode
from tests.support.nodes import PASSWORD

LOGIN = "/api/auth/login"


async def test_wrong_passwords_are_delayed_then_locked_out_and_released(
    served: ServedNode,
) -> None:
    statuses: list[int] = []

    async def attempt(client: httpx.AsyncClient, number: int) -> bool:
        """One wrong password; True once the answer says the account is locked."""
        answer = await client.post(
            LOGIN, json={"username": "officer", "password": f"wrong-password-{number}"}
        )
        statuses.append(answer.status_code)
        if answer.status_code != 429:
            return False
        assert int(answer.headers["Retry-After"]) >= 1
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["invalid_params"][0]["name"] == "username"
        return "locked" in answer.json()["detail"]

    async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
        # one after the other until the lockout (each refusal is answered after a pause),
        # then the rest of the 200 at once, 25 in flight
        sent = 0
        while sent < 200:
            sent += 1
            if await attempt(client, sent):
                break
        while sent < 200:
            batch = range(sent, min(200, sent + 25))
            await asyncio.gather(*(attempt(client, n) for n in batch))
            sent += len(batch)
        # the first failures are answered at once, then every attempt waits or is refused
        assert statuses[:3] == [401, 401, 401]
        assert statuses.count(401) == LOCKOUT_FAILURES, statuses
        assert statuses.count(429) == 200 - LOCKOUT_FAILURES
        assert set(statuses) == {401, 429}

        # locked: the right password is refused too, and says for how long
        refused = await client.post(LOGIN, json={"username": "officer", "password": PASSWORD})
        assert refused.status_code == 429
        wait = int(refused.headers["Retry-After"])
        assert 1 <= wait <= LOCKOUT_SECONDS + 1
        assert "locked" in refused.json()["detail"]

        # the admin sees the lockout in the officer API view and on the accounts page
        listing = await client.get("/api/officers/", headers=served.auth("admin"))
        views = {view["username"]: view for view in listing.json()}
        assert views["officer"]["login_locked_until"] is not None
        assert views["supervisor"]["login_locked_until"] is None
        locked = await served.actions("login_locked")
        assert [(e.record_id, e.detail["scope"]) for e in locked] == [("officer", "account")]
        assert locked[0].detail["failures"] == LOCKOUT_FAILURES

        # another account is not concerned
        other = await client.post(LOGIN, json={"username": "supervisor", "password": PASSWORD})
        assert other.status_code == 200

        await asyncio.sleep(wait + 0.2)
        released = await client.post(LOGIN, json={"username": "officer", "password": PASSWORD})
        assert released.status_code == 200, released.text
        events = await served.actions("login_released")
        assert [(e.record_id, e.detail["reason"]) for e in events] == [("officer", "expired")]
        listing = await client.get("/api/officers/", headers=served.auth("admin"))
        assert all(view["login_locked_until"] is None for view in listing.json())
        # refused attempts write nothing: one audit event per real password check
        failed = await served.actions("login_failed")
        assert len(failed) == LOCKOUT_FAILURES


async def test_one_address_trying_many_usernames_is_throttled(served: ServedNode) -> None:
    names: list[str] = []
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
        for attempt in range(120):
            answer = await client.post(
                LOGIN, json={"username": f"guess.{attempt}", "password": "not-the-password"}
            )
            if answer.status_code == 429:
                names.append(answer.json()["invalid_params"][0]["name"])
                assert int(answer.headers["Retry-After"]) >= 1
            else:
                assert answer.status_code == 401
    assert "source_address" in names  # no single account was tried twice
    assert len(await served.actions("login_failed")) < 120


def _median_seconds(samples: list[float]) -> float:
    return statistics.median(samples)


async def test_unknown_username_costs_what_a_known_one_costs(served: ServedNode) -> None:
    # no throttling in the way of the measure (the policy is a node setting)
    served.node.logins = LoginThrottle(
        LoginPolicy(delay_s=0.01, free_failures=100, lockout_failures=200, attempt_burst=200)
    )

    async def timed(client: httpx.AsyncClient, username: str) -> float:
        started = time.perf_counter()
        answer = await client.post(LOGIN, json={"username": username, "password": "wrong-pass"})
        elapsed = time.perf_counter() - started
        assert answer.status_code == 401
        return elapsed

    known: list[float] = []
    unknown: list[float] = []
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
        await timed(client, "warm.up")
        for round_ in range(8):
            known.append(await timed(client, ("officer", "supervisor", "admin")[round_ % 3]))
            unknown.append(await timed(client, f"nobody.{round_}"))
    ratio = _median_seconds(known) / _median_seconds(unknown)
    assert 0.67 < ratio < 1.5, (known, unknown)
    assert _median_seconds(unknown) > 0.02  # the dummy hash is really checked


async def test_password_checks_leave_the_event_loop_free(served: ServedNode) -> None:
    """Six loops of wrong passwords (not throttled here) while the health endpoint is
    polled: argon2 runs on worker threads, so the loop answers between the checks."""
    served.node.logins = LoginThrottle(
        LoginPolicy(delay_s=0.01, free_failures=10_000, lockout_failures=20_000)
    )
    stop = asyncio.Event()

    async def flood(client: httpx.AsyncClient, index: int) -> int:
        count = 0
        while not stop.is_set():
            await client.post(
                LOGIN, json={"username": f"flood.{index}", "password": "wrong-password"}
            )
            count += 1
        return count

    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
        floods = [asyncio.create_task(flood(client, i)) for i in range(6)]
        await asyncio.sleep(0.5)
        for _ in range(30):
            started = time.perf_counter()
            assert (await client.get("/api/health")).status_code == 200
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.02)
        stop.set()
        checks = sum(await asyncio.gather(*floods))
    assert checks >= 6
    # argon2 on the loop would hold every health request behind ~0.1 s checks
    assert statistics.median(latencies) < 0.08, latencies


def _login_form(text: str) -> str:
    import re

    found = re.search(r'name="csrf_token" value="([^"]+)"', text)
    assert found is not None
    return found.group(1)


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("fr", "Trop de tentatives de connexion échouées"),
        ("ar", "محاولات دخول فاشلة كثيرة"),
        ("en", "Too many failed login attempts"),
    ],
)
async def test_web_login_is_throttled_in_the_officers_language(
    served: ServedNode, lang: str, expected: str
) -> None:
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
        page = await client.get(f"/web/login?lang={lang}")
        token = _login_form(page.text)

        def attempt(password: str) -> Callable[[], Any]:
            return lambda: client.post(
                "/web/login",
                data={"username": "officer", "password": password, "csrf_token": token},
            )

        answers = [await attempt(f"wrong-password-{i}")() for i in range(40)]
        statuses = [a.status_code for a in answers]
        assert statuses[:3] == [401, 401, 401]
        throttled = [a for a in answers if a.status_code == 429]
        assert throttled, statuses
        assert int(throttled[-1].headers["Retry-After"]) >= 1
        assert expected in throttled[-1].text
        assert 'id="login-error"' in throttled[-1].text
        # locked or waiting, the right password is refused as well
        right = await attempt(PASSWORD)()
        assert right.status_code == 429
        assert "bp_session" not in right.headers.get("set-cookie", "")


async def test_admin_sees_and_lifts_a_lockout_on_the_accounts_page(served: ServedNode) -> None:
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
        while True:
            answer = await client.post(LOGIN, json={"username": "liaison", "password": "wrong-one"})
            if answer.status_code == 429 and "locked" in answer.json()["detail"]:
                break
            await asyncio.sleep(0.02)
        page = await client.get("/web/login?lang=en")
        token = _login_form(page.text)
        logged = await client.post(
            "/web/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token}
        )
        assert logged.status_code == 303
        accounts = await client.get("/web/admin/officers")
        assert 'id="login-locks"' in accounts.text
        assert "liaison" in accounts.text.split('id="login-locks"', 1)[1]
        csrf = accounts.text.split('<meta name="csrf-token" content="', 1)[1].split('"', 1)[0]
        lifted = await client.post(
            "/web/admin/logins/unlock",
            data={"scope": "account", "key": "liaison", "csrf_token": csrf},
        )
        assert lifted.status_code == 303
        assert "done=login_unlocked" in lifted.headers["location"]
        again = await client.post(LOGIN, json={"username": "liaison", "password": PASSWORD})
        assert again.status_code == 200
    released = await served.actions("login_released")
    assert [(e.record_id, e.detail["reason"]) for e in released] == [("liaison", "admin")]
    assert released[0].officer_id is not None  # the administrator who lifted it
