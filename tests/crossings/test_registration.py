"""Registering crossings over HTTP, on SQLite and PostgreSQL: entries, exits, stays,
document checks, corrections and protection referrals."""

from __future__ import annotations

import io
import json
from datetime import date, timedelta

from PIL import Image
from sqlalchemy import func, select

from registry.models import (
    AuditEvent,
    Crossing,
    OutboxEntry,
    ProtectionReferral,
    TravelDocument,
    Traveller,
)
from tests.support.factories import register, td3
from tests.support.nodes import NodeUnderTest, unique_number


async def count(node: NodeUnderTest, model: type) -> int:
    async with node.db.session() as session:
        return await session.scalar(select(func.count()).select_from(model))


async def test_entry_from_wedge_mrz_fills_traveller_and_document(post_node: NodeUnderTest) -> None:
    number = unique_number()
    crossing = await register(
        post_node,
        {"direction": "entry", "mrz": td3(number), "mode": "car", "vehicle_plate": "1234 AB 00"},
    )
    assert crossing["direction"] == "entry"
    assert crossing["document"]["number"] == number
    assert crossing["document"]["issuing_state"] == "MLI"
    assert crossing["traveller"]["surname"] == "OULD AHMED"
    assert crossing["traveller"]["given_names"] == "MOHAMED"
    assert crossing["traveller"]["date_of_birth"] == "1985-03-14"
    assert crossing["checks"] == []
    assert crossing["receipt"].startswith("BP1:")
    # MLI is the partner country: its citizens get the partner rule (180 days)
    allowed = date.fromisoformat(crossing["stay_allowed_until"])
    assert allowed - date.fromisoformat(crossing["occurred_at_local"][:10]) == timedelta(days=179)
    assert await count(post_node, OutboxEntry) >= 4


async def test_default_stay_rule_is_90_days(post_node: NodeUnderTest) -> None:
    crossing = await register(
        post_node,
        {
            "direction": "entry",
            "mrz": td3(
                unique_number(), nationality="FRA", surname="MARTIN", given="CLAIRE", sex="F"
            ),
        },
    )
    allowed = date.fromisoformat(crossing["stay_allowed_until"])
    assert allowed - date.fromisoformat(crossing["occurred_at_local"][:10]) == timedelta(days=89)


async def test_exit_closes_the_open_stay(post_node: NodeUnderTest) -> None:
    mrz = td3(unique_number())
    entry = await register(post_node, {"direction": "entry", "mrz": mrz})
    exit_ = await register(post_node, {"direction": "exit", "mrz": mrz})
    assert exit_["closes_crossing_id"] == entry["id"]
    assert exit_["overstay_days"] == 0
    assert exit_["traveller"]["id"] == entry["traveller"]["id"]
    open_now = (
        await post_node.client.get("/api/stays/open", headers=post_node.auth("officer"))
    ).json()
    assert entry["id"] not in [c["id"] for c in open_now]


async def test_exit_without_entry_is_a_warning_not_a_refusal(post_node: NodeUnderTest) -> None:
    crossing = await register(post_node, {"direction": "exit", "mrz": td3(unique_number())})
    assert [c["code"] for c in crossing["checks"]] == ["exit_without_entry"]


async def test_check_digit_and_typed_mismatch_are_stored(post_node: NodeUnderTest) -> None:
    number = unique_number()
    lines = td3(number).split("\r\n")
    corrupted = lines[1][:9] + str((int(lines[1][9]) + 1) % 10) + lines[1][10:]
    body = {
        "direction": "entry",
        "mrz": lines[0] + "\n" + corrupted,
        "document": {
            "issuing_state": "MLI",
            "number": number,
            "document_type": "P",
            "expiry_date": str(date.today() + timedelta(days=900)),
        },
        "traveller": {
            "surname": "Ould Ahmed",
            "given_names": "Mohamed",
            "nationality": "MLI",
            "date_of_birth": "1986-03-14",
            "sex": "M",
        },
        "decision": "referred",
    }
    crossing = await register(post_node, body)
    codes = {(c["code"], c["field"]) for c in crossing["checks"]}
    assert ("mrz_check_digit_failed", "document_number") in codes
    assert ("mrz_mismatch", "traveller.date_of_birth") in codes
    assert crossing["decision"] == "referred"
    stored = await post_node.client.get(
        f"/api/crossings/{crossing['id']}", headers=post_node.auth("supervisor")
    )
    assert {(c["code"], c["field"]) for c in stored.json()["checks"]} == codes


async def test_expired_document_and_unaccompanied_minor(post_node: NodeUnderTest) -> None:
    minor_dob = date.today() - timedelta(days=365 * 12)
    body = {
        "direction": "entry",
        "mrz": td3(unique_number(), dob=minor_dob, expiry=date.today() - timedelta(days=3)),
    }
    crossing = await register(post_node, body)
    codes = {c["code"] for c in crossing["checks"]}
    assert {"document_expired", "minor_without_guardian"} <= codes


async def test_minor_with_guardian_has_no_guardian_warning(post_node: NodeUnderTest) -> None:
    guardian = await register(post_node, {"direction": "entry", "mrz": td3(unique_number())})
    child = await register(
        post_node,
        {
            "direction": "entry",
            "guardian_crossing_id": guardian["id"],
            "mrz": td3(
                unique_number(),
                given="AMINATA",
                sex="F",
                dob=date.today() - timedelta(days=365 * 8),
            ),
        },
    )
    assert "minor_without_guardian" not in {c["code"] for c in child["checks"]}
    assert child["guardian_crossing_id"] == guardian["id"]


async def test_typed_document_without_mrz(post_node: NodeUnderTest) -> None:
    crossing = await register(
        post_node,
        {
            "direction": "entry",
            "mode": "bus",
            "purpose": "trade",
            "destination": "Nouakchott",
            "document": {
                "issuing_state": "SEN",
                "number": "A 12-345",
                "document_type": "I",
                "expiry_date": str(date.today() + timedelta(days=30)),
            },
            "traveller": {
                "surname": "Diallo",
                "given_names": "Fatimata",
                "nationality": "SEN",
                "date_of_birth": "1990-01-01",
                "sex": "F",
                "surname_ar": "جالو",
            },
        },
    )
    assert crossing["document"]["number"] == "A 12-345"
    assert crossing["traveller"]["surname_ar"] == "جالو"
    assert crossing["checks"] == []


async def test_correction_supersedes_and_keeps_the_original(post_node: NodeUnderTest) -> None:
    original = await register(post_node, {"direction": "entry", "mrz": td3(unique_number())})
    response = await post_node.client.post(
        f"/api/crossings/{original['id']}/corrections",
        json={"reason": "wrong decision keyed", "decision": "referred", "remarks": "secondary"},
        headers=post_node.auth("supervisor"),
    )
    assert response.status_code == 201, response.text
    corrected = response.json()
    assert corrected["supersedes"] == original["id"]
    assert corrected["version"] == 2
    assert corrected["decision"] == "referred"
    assert corrected["receipt"] != original["receipt"]
    again = await post_node.client.post(
        f"/api/crossings/{original['id']}/corrections",
        json={"reason": "twice"},
        headers=post_node.auth("officer"),
    )
    assert again.status_code == 409
    versions = (
        await post_node.client.get(
            f"/api/crossings/{corrected['id']}/versions", headers=post_node.auth("officer")
        )
    ).json()
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[0]["decision"] == "cleared"
    async with post_node.db.session() as session:
        reads = await session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.purpose == "versions", AuditEvent.action == "read")
            .where(AuditEvent.record_id == corrected["id"])
        )
    assert reads == 1  # reading a crossing's versions is a read of personal data
    history = (
        await post_node.client.get(
            f"/api/travellers/{original['traveller']['id']}/history",
            headers=post_node.auth("officer"),
        )
    ).json()
    assert [c["id"] for c in history["crossings"]] == [corrected["id"]]


async def test_protection_referral_is_hidden_from_the_officer(post_node: NodeUnderTest) -> None:
    crossing = await register(post_node, {"direction": "entry", "mrz": td3(unique_number())})
    response = await post_node.client.post(
        f"/api/crossings/{crossing['id']}/referrals",
        json={"category": "trafficking_suspected", "note": "travelling with an unrelated adult"},
        headers=post_node.auth("officer"),
    )
    assert response.status_code == 201
    assert "note" not in response.json()
    seen_by_officer = (
        await post_node.client.get(
            f"/api/crossings/{crossing['id']}", headers=post_node.auth("officer")
        )
    ).json()
    assert seen_by_officer["has_protection_referral"] is True
    assert "unrelated adult" not in json.dumps(seen_by_officer)
    denied = await post_node.client.get("/api/referrals", headers=post_node.auth("officer"))
    assert denied.status_code == 403
    listed = (
        await post_node.client.get("/api/referrals", headers=post_node.auth("protection"))
    ).json()
    assert listed[0]["note"] == "travelling with an unrelated adult"
    assert listed[0]["traveller"]["surname"] == "OULD AHMED"
    assert await count(post_node, ProtectionReferral) == 1


async def test_photo_is_reencoded_without_exif(post_node: NodeUnderTest) -> None:
    image = Image.new("RGB", (320, 400), (120, 90, 60))
    exif = Image.Exif()
    exif[0x010F] = "SecretCameraMaker"
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    response = await post_node.client.post(
        "/api/crossings",
        headers=post_node.auth("officer"),
        data={
            "crossing": json.dumps(
                {
                    "direction": "entry",
                    "mrz": td3(unique_number()),
                    "photo_quality_override": "test pattern, no face",
                }
            )
        },
        files={"photo": ("face.jpg", buffer.getvalue(), "image/jpeg")},
    )
    assert response.status_code == 201, response.text
    sha = response.json()["photo_sha256"]
    photo = await post_node.client.get(f"/api/photos/{sha}", headers=post_node.auth("officer"))
    assert photo.status_code == 200
    assert photo.content[:2] == b"\xff\xd8"
    assert b"SecretCameraMaker" not in photo.content
    assert Image.open(io.BytesIO(photo.content)).getexif().get(0x010F) is None


async def test_same_document_reuses_the_traveller(post_node: NodeUnderTest) -> None:
    mrz = td3(unique_number())
    first = await register(post_node, {"direction": "entry", "mrz": mrz})
    await register(post_node, {"direction": "exit", "mrz": mrz})
    await register(post_node, {"direction": "entry", "mrz": mrz})
    assert await count(post_node, Traveller) == 1
    assert await count(post_node, TravelDocument) == 1
    assert await count(post_node, Crossing) == 3
    assert first["traveller"]["id"]


async def test_a_refused_crossing_opens_and_closes_no_stay(post_node: NodeUnderTest) -> None:
    """Issue 16: a refused entry opens no stay and says REFUSED on its receipt; the next
    entry warns of no open stay; a refused exit closes nothing; a correction to or from
    refused computes the stay again."""
    mrz = td3(unique_number())
    refused = await register(post_node, {"direction": "entry", "mrz": mrz, "decision": "refused"})
    assert refused["stay_allowed_until"] is None
    officer = post_node.auth("officer")
    slip = await post_node.client.get(
        f"/api/crossings/{refused['id']}/receipt.html", headers=officer
    )
    assert "REFUSED" in slip.text and "Stay until" not in slip.text
    stays = await post_node.client.get("/api/stays/open", headers=officer)
    assert refused["id"] not in {s["id"] for s in stays.json()}

    entry = await register(post_node, {"direction": "entry", "mrz": mrz})
    assert "previous_entry_not_closed" not in [c["code"] for c in entry["checks"]]
    assert entry["stay_allowed_until"] is not None
    refused_exit = await register(
        post_node, {"direction": "exit", "mrz": mrz, "decision": "refused"}
    )
    assert refused_exit["closes_crossing_id"] is None
    stays = await post_node.client.get("/api/stays/open", headers=officer)
    assert entry["id"] in {s["id"] for s in stays.json()}  # still in the country

    corrected = await post_node.client.post(
        f"/api/crossings/{refused['id']}/corrections",
        json={"reason": "keyed refused by mistake", "decision": "cleared"},
        headers=post_node.auth("supervisor"),
    )
    assert corrected.status_code == 201, corrected.text
    assert corrected.json()["stay_allowed_until"] is not None
    back = await post_node.client.post(
        f"/api/crossings/{entry['id']}/corrections",
        json={"reason": "was refused in fact", "decision": "refused"},
        headers=post_node.auth("supervisor"),
    )
    assert back.status_code == 201, back.text
    assert back.json()["stay_allowed_until"] is None
