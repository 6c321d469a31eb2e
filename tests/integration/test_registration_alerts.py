"""Registrations checked against the watchlist, on SQLite and PostgreSQL: a listed document,
a listed name with the same date of birth, a listed face (real face pipeline) and a protect
entry each raise an alert; the officer sees only the instruction, supervisors the rest.

These need the registration flow to call ``registry.watchlists.record_watchlist_alerts`` and
return ``alert_views`` as ``"alerts"`` in the registration response.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from registry.watchlists import import_watchlist_csv
from tests.conftest import NodeUnderTest, unique_number
from tests.integration.test_watchlists import (
    create_entry,
    local_node,
    person,
    with_watchlists,
    write_csv,
)

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
    assert hit["alerts"][0]["instruction"] == "refer to secondary inspection"
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
