"""Registrations checked against the watchlist, on SQLite and PostgreSQL: a listed document,
a listed name with the same date of birth, a listed face (real face pipeline) and a protect
entry each raise an alert; the officer sees only the instruction, supervisors the rest.

These need the registration flow to call ``registry.watchlists.record_watchlist_alerts`` and
return ``alert_views`` as ``"alerts"`` in the registration response.

Look-alikes: Cyrillic, Greek or full-width letters and invisible characters in the typed name,
the listed person's genuine MRZ under another typed name, and Arabic spelling variants each
raise an alert (or, for invisible characters, are refused at input).
"""

from __future__ import annotations

import html
import json
import uuid
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import col

from registry.models import AuditEvent, Officer, WatchlistEntry
from registry.problems import Problem
from registry.watchlists.alerts import alert_listed_portrait
from registry.watchlists.csv_files import import_watchlist_csv
from registry.web.i18n import gettext_for
from tests.support.factories import passport_mrz
from tests.support.nodes import NodeUnderTest, unique_number
from tests.support.watchlists import create_entry, local_node, person, with_watchlists, write_csv
from tests.support.web_client import Web

TRAVELLER = {
    "surname": "SMITH",
    "given_names": "JOHN",
    "nationality": "MLI",
    "date_of_birth": "1990-06-15",
}


@pytest.fixture
def watch_node(post_node: NodeUnderTest) -> NodeUnderTest:
    return with_watchlists(post_node)


def crossing_body(
    *, state: str = "MLI", number: str | None = None, traveller: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "direction": "entry",
        "document": {"issuing_state": state, "number": number or unique_number()},
        "traveller": traveller or TRAVELLER,
    }


async def register(node: NodeUnderTest, body: dict[str, Any]) -> dict[str, Any]:
    response = await node.client.post("/api/crossings", json=body, headers=node.auth("officer"))
    assert response.status_code == 201, response.text
    return response.json()


async def open_alerts(node: NodeUnderTest, role: str = "supervisor") -> list[dict[str, Any]]:
    response = await node.client.get("/api/alerts", headers=node.auth(role))
    assert response.status_code == 200, response.text
    return response.json()


async def test_listed_document_raises_an_alert(watch_node: NodeUnderTest) -> None:
    await create_entry(
        watch_node,
        {
            "kind": "document",
            "issuing_state": "MLI",
            "document_number": "A 12-345",
            "reason": "reported stolen in Kayes",
            "action": "refer_secondary",
            "source": "INTERPOL SLTD",
        },
        "supervisor",
    )
    crossing = await register(watch_node, crossing_body(number="A12345"))
    assert [
        {key: alert[key] for key in ("evidence", "instruction")} for alert in crossing["alerts"]
    ] == [{"evidence": "document", "instruction": "refer to secondary inspection"}]
    assert set(crossing["alerts"][0]) == {"id", "evidence", "instruction"}
    assert "stolen" not in json.dumps(crossing)
    listed = await open_alerts(watch_node)
    assert [(a["id"], a["crossing"]["id"]) for a in listed] == [
        (crossing["alerts"][0]["id"], crossing["id"])
    ]
    assert listed[0]["reason"] == "reported stolen in Kayes"
    clean = await register(watch_node, crossing_body())
    assert clean["alerts"] == []


async def test_listed_name_with_same_birth_date(watch_node: NodeUnderTest) -> None:
    await create_entry(
        watch_node,
        {
            "kind": "person",
            "surname": "MOHAMMED OULD AHMED",
            "date_of_birth": "1980-01-01",
            "reason": "arrest warrant 2024/17",
            "action": "notify",
        },
        "supervisor",
    )
    same_birth = {**TRAVELLER, "surname": "Mohamed Ould Ahmed", "given_names": ""}
    hit = await register(
        watch_node, crossing_body(traveller={**same_birth, "date_of_birth": "1980-01-01"})
    )
    assert [a["evidence"] for a in hit["alerts"]] == ["name_dob"]
    assert hit["alerts"][0]["instruction"] == "process as usual: the listing's owner is notified"
    other_birth = await register(
        watch_node, crossing_body(traveller={**same_birth, "date_of_birth": "1981-01-01"})
    )
    assert other_birth["alerts"] == []


@pytest.mark.faces
async def test_listed_face_raises_an_alert(
    watch_node: NodeUnderTest, tmp_path: Path, faces_dir: Path
) -> None:
    listing = write_csv(
        tmp_path / "faces.csv",
        [
            person(
                "F-1",
                surname="NOBODY",
                given_names="KNOWN",
                date_of_birth="1961-08-04",
                photo="obama_1.jpg",
            )
        ],
    )
    report = await import_watchlist_csv(local_node(watch_node), listing, photos_dir=faces_dir)
    assert report.imported == 1, report.rejected
    body = crossing_body()
    body["photo_quality_override"] = "test portrait"
    response = await watch_node.client.post(
        "/api/crossings",
        headers=watch_node.auth("officer"),
        data={"crossing": json.dumps(body)},
        files={"photo": ("obama_2.jpg", (faces_dir / "obama_2.jpg").read_bytes(), "image/jpeg")},
    )
    assert response.status_code == 201, response.text
    alerts = response.json()["alerts"]
    assert [a["evidence"] for a in alerts] == ["face"]
    assert set(alerts[0]) == {"id", "evidence", "instruction"}
    listed = await open_alerts(watch_node)
    assert listed[0]["evidence"] == "face" and listed[0]["band"] in ("HIGH", "MEDIUM", "LOW")
    assert 0 < listed[0]["distance"] < 0.6
    assert listed[0]["has_listed_portrait"] is True
    await _listed_portrait_is_read_by_its_adjudicator_only(watch_node, alerts[0]["id"])


async def _officer(node: NodeUnderTest, username: str) -> Officer:
    async with node.db.session() as session:
        found = await session.scalar(select(Officer).where(col(Officer.username) == username))
    assert found is not None
    return found


async def _listed_portrait_is_read_by_its_adjudicator_only(
    watch_node: NodeUnderTest, alert_id: str
) -> None:
    """The alert's listed portrait, as the supervisor reads it (audited), and the same 404 as
    for no alert at all to an officer, a protection officer and another post."""
    node = local_node(watch_node)
    other_post = replace(node, settings=replace(node.settings, node_code="MR-OTHER"))
    async with watch_node.db.session() as session:
        entry = await session.scalar(select(WatchlistEntry))
    assert entry is not None and entry.listed_portrait is not None
    for reader, username in [(node, "officer"), (node, "protection"), (other_post, "supervisor")]:
        officer = await _officer(watch_node, username)
        for wanted in (uuid.UUID(alert_id), uuid.uuid4()):
            async with watch_node.db.write_transaction() as session:
                with pytest.raises(Problem) as refused:
                    await alert_listed_portrait(
                        session, node=reader, officer=officer, alert_id=wanted
                    )
            assert (refused.value.status, refused.value.detail) == (404, "no such alert")
    supervisor = await _officer(watch_node, "supervisor")
    async with watch_node.db.write_transaction() as session:
        portrait = await alert_listed_portrait(
            session, node=node, officer=supervisor, alert_id=uuid.UUID(alert_id)
        )
    assert portrait == entry.listed_portrait and portrait.startswith(b"\xff\xd8\xff")
    async with watch_node.db.session() as session:
        reads = (
            await session.scalars(
                select(AuditEvent).where(
                    col(AuditEvent.record_type) == "watchlist_entry",
                    col(AuditEvent.purpose) == "alert_review",
                )
            )
        ).all()
    assert [(e.officer_id, e.action, e.record_id, e.detail["alert"]) for e in reads] == [
        (supervisor.id, "read", str(entry.id), alert_id)
    ]


async def test_protect_entry_sends_the_officer_to_protection(watch_node: NodeUnderTest) -> None:
    await create_entry(
        watch_node,
        {
            "kind": "document",
            "issuing_state": "MLI",
            "document_number": "PR0TECT1",
            "reason": "child reported missing, possible trafficking",
            "action": "protect",
            "source": "national",
        },
        "protection",
    )
    crossing = await register(watch_node, crossing_body(number="PR0TECT1"))
    assert [a["instruction"] for a in crossing["alerts"]] == ["refer to protection officer"]
    assert "trafficking" not in json.dumps(crossing)
    assert "reason" not in crossing["alerts"][0]
    supervisor = await open_alerts(watch_node, "supervisor")
    assert "trafficking" not in json.dumps(supervisor)
    protection = await open_alerts(watch_node, "protection")
    assert protection[0]["reason"] == "child reported missing, possible trafficking"


# ---------------------------------------------------------------- look-alikes cannot evade
LISTED_DOB = "1975-05-05"
LOOKALIKE_SURNAMES = {
    "one Cyrillic A": "OUEDR\u0410OGO",
    "one Greek Omicron": "OUEDRA\u039fGO",
    "all Cyrillic look-alikes": "\u041eU\u0415DR\u0410\u041eG\u041e",
    "fullwidth letters": "\uff2f\uff35\uff25\uff24\uff32\uff21\uff2f\uff27\uff2f",
}
INVISIBLE_SURNAMES = {
    "zero-width space": "OUED\u200bRAOGO",
    "right-to-left override": "\u202eOGOARDEUO\u202c",
}


async def list_ouedraogo(node: NodeUnderTest) -> None:
    await create_entry(
        node,
        {
            "kind": "person",
            "surname": "OUEDRAOGO",
            "given_names": "IBRAHIM",
            "date_of_birth": LISTED_DOB,
            "reason": "arrest warrant 2025/31",
            "action": "refer_secondary",
        },
        "supervisor",
    )


def ouedraogo_mrz(number: str, *, dob: date = date(1975, 5, 5)) -> str:
    return passport_mrz(
        number, surname="OUEDRAOGO", given="IBRAHIM", nationality="BFA", date_of_birth=dob
    )


async def search_names(node: NodeUnderTest, name: str, dob: str | None) -> list[str]:
    params = {"name": name, **({"date_of_birth": dob} if dob else {})}
    response = await node.client.get(
        "/api/search/name", params=params, headers=node.auth("supervisor")
    )
    assert response.status_code == 200, response.text
    return [hit["traveller"]["surname"] for hit in response.json()]


@pytest.mark.parametrize("variant", sorted(LOOKALIKE_SURNAMES))
async def test_lookalike_letters_in_the_typed_surname_raise_an_alert(
    watch_node: NodeUnderTest, variant: str
) -> None:
    """Cyrillic/Greek/full-width letters that look Latin fold to the Latin key: the listed
    person is alerted on, and a name search in plain Latin finds the registration."""
    await list_ouedraogo(watch_node)
    surname = LOOKALIKE_SURNAMES[variant]
    traveller = {**TRAVELLER, "surname": surname, "given_names": "IBRAHIM"}
    crossing = await register(
        watch_node, crossing_body(traveller={**traveller, "date_of_birth": LISTED_DOB})
    )
    assert [a["evidence"] for a in crossing["alerts"]] == ["name_dob"], variant
    assert surname in await search_names(watch_node, "OUEDRAOGO IBRAHIM", LISTED_DOB)
    assert surname in await search_names(watch_node, "Ouedraogo Ibrahim", None)


@pytest.mark.parametrize("variant", sorted(INVISIBLE_SURNAMES))
async def test_invisible_characters_in_the_typed_surname_never_pass_silently(
    watch_node: NodeUnderTest, variant: str
) -> None:
    """A zero-width space or a bidi override in the surname is either refused at input
    (registry.text, naming the field, nothing registered) or folded away by the name key,
    and then the listed person is alerted on and found by name search. Never a clean pass."""
    await list_ouedraogo(watch_node)
    surname = INVISIBLE_SURNAMES[variant]
    traveller = {**TRAVELLER, "surname": surname, "given_names": "IBRAHIM"}
    body = crossing_body(traveller={**traveller, "date_of_birth": LISTED_DOB})
    response = await watch_node.client.post(
        "/api/crossings", json=body, headers=watch_node.auth("officer")
    )
    if response.status_code == 201:
        assert [a["evidence"] for a in response.json()["alerts"]] == ["name_dob"], variant
        assert surname in await search_names(watch_node, "OUEDRAOGO IBRAHIM", LISTED_DOB)
    else:
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["invalid_params"][0]["name"] == "traveller.surname", problem
        assert await search_names(watch_node, "OUEDRAOGO IBRAHIM", LISTED_DOB) == []


async def test_genuine_mrz_with_another_typed_name_raises_an_alert(
    watch_node: NodeUnderTest,
) -> None:
    """The listed person's own passport with "SMITH" typed over the MRZ name: the officer must
    acknowledge the name mismatch, and the MRZ identity still raises the alert."""
    await list_ouedraogo(watch_node)
    number = unique_number()
    body = {
        "direction": "entry",
        "mrz": ouedraogo_mrz(number),
        "traveller": {**TRAVELLER, "nationality": "BFA", "date_of_birth": "1990-06-15"},
    }
    refused = await watch_node.client.post(
        "/api/crossings", json=body, headers=watch_node.auth("officer")
    )
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["invalid_params"][0]["name"] == "name_mismatch_acknowledged"
    assert await search_names(watch_node, "SMITH JOHN", None) == []  # nothing registered
    crossing = await register(watch_node, {**body, "name_mismatch_acknowledged": True})
    assert crossing["traveller"]["surname"] == "SMITH"
    assert [a["evidence"] for a in crossing["alerts"]] == ["name_dob"]
    codes = {(check["code"], check["field"]) for check in crossing["checks"]}
    assert ("name_mismatch", "traveller.surname") in codes
    assert ("mrz_mismatch", "traveller.date_of_birth") in codes


async def test_listed_document_read_from_the_mrz_raises_an_alert(
    watch_node: NodeUnderTest,
) -> None:
    """A listed passport number typed differently still matches: the MRZ's number counts."""
    number = unique_number()
    await create_entry(
        watch_node,
        {
            "kind": "document",
            "issuing_state": "BFA",
            "document_number": number,
            "reason": "reported stolen",
            "action": "refer_secondary",
        },
        "supervisor",
    )
    body = {
        "direction": "entry",
        "mrz": ouedraogo_mrz(number),
        "document": {"issuing_state": "BFA", "number": unique_number()},
    }
    crossing = await register(watch_node, body)
    assert "document" in [a["evidence"] for a in crossing["alerts"]]


SAME_ORIGIN = {"Origin": "http://testserver.local"}

ARABIC_LISTED = ("الأنصاري", "أسامة يحيى")
ARABIC_VARIANTS = {
    "bare alefs": ("الانصاري", "اسامة يحيى"),
    "alef with hamza below and madda": ("الإنصاري", "آسامة يحيى"),
    "heh for teh marbuta": ("الأنصاري", "أسامه يحيى"),
    "alef maksura and yeh swapped": ("الأنصارى", "أسامة يحيي"),
    "tatweel": ("الأنصـــاري", "أسـامة يحـيى"),
    "harakat": ("الأَنْصَارِيّ", "أُسَامَةُ يَحْيَى"),
}


@pytest.mark.parametrize("variant", sorted(ARABIC_VARIANTS))
async def test_arabic_spelling_variants_raise_an_alert(
    watch_node: NodeUnderTest, variant: str
) -> None:
    """A person listed in Arabic script is alerted on when the officer types the Arabic name
    with another spelling of the same letters (the Latin name typed being someone else's)."""
    surname, given = ARABIC_LISTED
    await create_entry(
        watch_node,
        {
            "kind": "person",
            "surname": surname,
            "given_names": given,
            "date_of_birth": LISTED_DOB,
            "reason": "arrest warrant 2025/32",
            "action": "notify",
        },
        "supervisor",
    )
    surname_ar, given_ar = ARABIC_VARIANTS[variant]
    traveller = {
        **TRAVELLER,
        "surname": "KHALIL",
        "given_names": "SAMIR",
        "surname_ar": surname_ar,
        "given_names_ar": given_ar,
        "date_of_birth": LISTED_DOB,
    }
    crossing = await register(watch_node, crossing_body(traveller=traveller))
    assert [a["evidence"] for a in crossing["alerts"]] == ["name_dob"], variant
    other = {**traveller, "surname_ar": "الخليل", "given_names_ar": "سمير"}
    assert (await register(watch_node, crossing_body(traveller=other)))["alerts"] == []


async def test_desk_asks_the_officer_to_confirm_a_typed_name(web: Web) -> None:
    """The desk's check step names the mismatch (translated) and the watchlist instruction;
    saving without the confirmation is refused naming ``name_mismatch_acknowledged``, with it
    the crossing is saved and alerted on. The page carries the confirmation box."""
    await web.login("supervisor")
    listed = await web.client.post(
        "/api/watchlist/entries",
        json={
            "kind": "person",
            "surname": "OUEDRAOGO",
            "given_names": "IBRAHIM",
            "date_of_birth": LISTED_DOB,
            "reason": "arrest warrant 2025/31",
            "action": "refer_secondary",
        },
        headers={"X-CSRF-Token": web.csrf, **SAME_ORIGIN},
    )
    assert listed.status_code == 201, listed.text
    await web.login("officer")
    french = gettext_for("fr")
    page = await web.client.get("/web/desk/")
    assert 'id="f-name_mismatch_acknowledged"' in page.text
    assert french("I have checked the document: the typed name differs from the MRZ on purpose")[
        :20
    ] in html.unescape(page.text)
    crossing = {
        "direction": "entry",
        "mrz": ouedraogo_mrz(unique_number()),
        "traveller": {**TRAVELLER, "nationality": "BFA", "date_of_birth": LISTED_DOB},
    }
    check = await web.client.post(
        "/web/desk/check", json={"crossing": crossing}, headers=web.headers(**SAME_ORIGIN)
    )
    assert check.status_code == 200, check.text
    mismatch = [c for c in check.json()["checks"] if c["code"] == "name_mismatch"]
    assert [c["message"] for c in mismatch] == [french("Typed name differs from the MRZ name")]
    assert check.json()["instructions"] == [french("Refer to secondary inspection")]

    async def save(body: dict[str, Any]) -> Any:
        return await web.client.post(
            "/web/desk/register",
            files={"crossing": (None, json.dumps(body))},
            headers={"X-CSRF-Token": web.csrf, "Accept": "application/json", **SAME_ORIGIN},
        )

    refused = await save(crossing)
    assert refused.status_code == 422, refused.text
    assert refused.json()["invalid_params"][0]["name"] == "name_mismatch_acknowledged"
    saved = await save({**crossing, "name_mismatch_acknowledged": True})
    assert saved.status_code == 201, saved.text
    assert saved.json()["alerts"] == [french("Refer to secondary inspection")]
