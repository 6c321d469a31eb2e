"""The desk's web endpoints (MRZ, photo, check, save), over HTTP on SQLite and PostgreSQL:
they go through the same services as the API, the check gives instructions only and writes
nothing, photo tickets, and a minor's guardian with names kept in Arabic.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from registry.models import AuditEvent, Crossing, Photo
from registry.web.i18n import gettext_for
from registry.web.security import CONTENT_SECURITY_POLICY
from tests.support.web_client import Web, _save, number, td3


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
