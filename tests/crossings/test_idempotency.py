"""Idempotent registration over real HTTP: the Idempotency-Key header of POST /api/crossings
and of the desk's save (a retry after a timeout must not register the traveller twice)."""

from __future__ import annotations

import asyncio
import json
import re
import uuid

import httpx
from sqlalchemy import func, select

from registry.app import create_app
from registry.models import AuditEvent, Crossing, IdempotencyKey
from tests.support.live import ServedNode, serve
from tests.support.nodes import PASSWORD
from tests.support.web_client import number, td3

CROSSINGS = "/api/crossings/"


async def crossings(served: ServedNode) -> int:
    async with served.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(Crossing)) or 0)


def registration() -> dict[str, str]:
    return {"direction": "entry", "mrz": td3(number())}


async def test_same_key_registers_once_and_answers_the_first_answer(served: ServedNode) -> None:
    body = registration()
    key = str(uuid.uuid4())
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
        headers = {**served.auth("officer"), "Idempotency-Key": key}
        first = await client.post(CROSSINGS, json=body, headers=headers)
        assert first.status_code == 201, first.text
        again = await client.post(CROSSINGS, json=body, headers=headers)
        assert again.status_code == 201
        assert again.json() == first.json()
        assert await crossings(served) == 1
        # a different key is a different registration
        other = await client.post(
            CROSSINGS, json=body, headers={**served.auth("officer"), "Idempotency-Key": "k-2"}
        )
        assert other.status_code == 201
        assert other.json()["id"] != first.json()["id"]
        assert await crossings(served) == 2
        # keys belong to their officer: the same key from a supervisor is another save
        theirs = await client.post(
            CROSSINGS,
            json=registration(),
            headers={**served.auth("supervisor"), **{"Idempotency-Key": key}},
        )
        assert theirs.status_code == 201
        assert theirs.json()["id"] != first.json()["id"]
        # without a key every request registers
        plain = await client.post(CROSSINGS, json=body, headers=served.auth("officer"))
        assert plain.status_code == 201
    assert await crossings(served) == 4
    async with served.db.session() as session:
        replays = await session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.purpose == "registration_replay")
        )
        assert replays == 1  # the replayed answer is a read of personal data


async def test_simultaneous_retries_register_once(served: ServedNode) -> None:
    body = registration()
    headers = {**served.auth("officer"), "Idempotency-Key": "desk-retry-storm"}
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
        answers = await asyncio.gather(
            *(client.post(CROSSINGS, json=body, headers=headers) for _ in range(6))
        )
    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["id"] for a in answers}) == 1
    assert await crossings(served) == 1


async def test_the_key_survives_a_restart(served: ServedNode) -> None:
    body = registration()
    headers = {**served.auth("officer"), "Idempotency-Key": "before-the-restart"}
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
        first = await client.post(CROSSINGS, json=body, headers=headers)
        assert first.status_code == 201
    # a second process of the same post (same database), as after a restart
    base, server, task = await serve(create_app(served.node.settings))
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            again = await client.post(CROSSINGS, json=body, headers=headers)
    finally:
        server.should_exit = True
        await task
    assert again.status_code == 201
    assert again.json() == first.json()
    assert await crossings(served) == 1


async def test_a_refused_registration_stores_no_key(served: ServedNode) -> None:
    headers = {**served.auth("officer"), "Idempotency-Key": "fix-and-retry"}
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
        refused = await client.post(
            CROSSINGS, json={"direction": "entry", "mrz": "NOT AN MRZ"}, headers=headers
        )
        assert refused.status_code == 422
        fixed = await client.post(CROSSINGS, json=registration(), headers=headers)
        assert fixed.status_code == 201
        malformed = await client.post(
            CROSSINGS,
            json=registration(),
            headers={**served.auth("officer"), "Idempotency-Key": "x" * 201},
        )
        assert malformed.status_code == 400
    assert await crossings(served) == 1
    async with served.db.session() as session:
        keys = (await session.scalars(select(IdempotencyKey.key))).all()
    assert list(keys) == ["fix-and-retry"]


async def test_the_desk_sends_one_key_per_traveller(served: ServedNode) -> None:
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
        form = await client.get("/web/login?lang=en")
        login_token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert login_token is not None
        await client.post(
            "/web/login",
            data={"username": "officer", "password": PASSWORD, "csrf_token": login_token[1]},
        )
        page = await client.get("/web/desk/")
        csrf = re.search(r'<meta name="csrf-token" content="([^"]*)">', page.text)
        assert csrf is not None
        script = await client.get(
            re.search(r'src="(/static/js/desk\.js[^"]*)"', page.text)[1]  # type: ignore[index]
        )
        assert '"Idempotency-Key": state.saveKey' in script.text
        save = {"crossing": (None, json.dumps(registration()))}
        headers = {"X-CSRF-Token": csrf[1], "Idempotency-Key": "desk-0001", "Accept": "json"}
        first = await client.post("/web/desk/register", files=save, headers=headers)
        assert first.status_code == 201, first.text
        again = await client.post("/web/desk/register", files=save, headers=headers)
        assert again.status_code == 201
        assert again.json()["id"] == first.json()["id"]
    assert await crossings(served) == 1
