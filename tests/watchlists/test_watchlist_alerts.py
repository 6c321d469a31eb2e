"""Watchlist alerts on SQLite and PostgreSQL: one human adjudication with a reason, the
figures, and what each role sees of an alert."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from registry.models import Alert, AlertAdjudication, AuditEvent
from registry.watchlists.alerts import alerts_for_crossing, store_alerts
from registry.watchlists.matcher import WatchlistHit
from tests.support.nodes import NodeUnderTest, unique_number
from tests.support.watchlists import PERSON_BODY, count, create_entry


# ---------------------------------------------------------------- alerts
async def register_crossing(node: NodeUnderTest, surname: str = "KEITA") -> dict[str, Any]:
    body = {
        "direction": "entry",
        "document": {"issuing_state": "MLI", "number": unique_number()},
        "traveller": {
            "surname": surname,
            "given_names": "SALIF",
            "nationality": "MLI",
            "date_of_birth": "1980-01-01",
        },
    }
    response = await node.client.post("/api/crossings", json=body, headers=node.auth("officer"))
    assert response.status_code == 201, response.text
    return response.json()


async def raise_alert(
    node: NodeUnderTest, crossing_id: str, entry: dict[str, Any], evidence: str = "name_dob"
) -> str:
    """Store an alert as the registration flow does (the lead wires that flow)."""
    hit = WatchlistHit(
        entry_id=uuid.UUID(entry["entry_id"]),
        entry_version=entry["version"],
        kind=entry["kind"],
        evidence=evidence,
        score=96.5 if evidence != "face" else 78.0,
        distance=0.26 if evidence == "face" else None,
        band="HIGH" if evidence == "face" else None,
        action=entry["action"],
    )
    async with node.db.write_transaction() as session:
        alerts = alerts_for_crossing(uuid.UUID(crossing_id), [hit], node.node.settings.node_code)
        await store_alerts(session, alerts)
    return str(alerts[0].id)


async def test_adjudication_once_with_reason_and_figures(watch_node: NodeUnderTest) -> None:
    entry = await create_entry(watch_node, PERSON_BODY, "supervisor")
    crossing = await register_crossing(watch_node)
    first = await raise_alert(watch_node, crossing["id"], entry, "name_dob")
    second = await raise_alert(watch_node, crossing["id"], entry, "face")
    third = await raise_alert(watch_node, crossing["id"], entry, "document")
    headers = watch_node.auth("supervisor")
    url = "/api/alerts/{}/adjudication"
    no_reason = await watch_node.client.post(
        url.format(first), json={"outcome": "confirmed"}, headers=headers
    )
    assert no_reason.status_code == 400
    assert [p["name"] for p in no_reason.json()["invalid_params"]] == ["reason"]
    bad_outcome = await watch_node.client.post(
        url.format(first), json={"outcome": "maybe", "reason": "looked"}, headers=headers
    )
    assert bad_outcome.status_code == 400
    confirmed = await watch_node.client.post(
        url.format(first),
        json={"outcome": "confirmed", "reason": "same person, warrant verified"},
        headers=headers,
    )
    assert confirmed.status_code == 201, confirmed.text
    assert confirmed.json()["outcome"] == "confirmed"
    twice = await watch_node.client.post(
        url.format(first), json={"outcome": "dismissed", "reason": "second try"}, headers=headers
    )
    assert twice.status_code == 409
    dismissed = await watch_node.client.post(
        url.format(second),
        json={"outcome": "dismissed", "reason": "different person, checked in person"},
        headers=headers,
    )
    assert dismissed.status_code == 201
    unknown = await watch_node.client.post(
        url.format("0190a000-0000-7000-8000-000000000000"),
        json={"outcome": "dismissed", "reason": "nothing"},
        headers=headers,
    )
    assert unknown.status_code == 404
    assert await count(watch_node, AlertAdjudication) == 2
    open_now = await watch_node.client.get("/api/alerts", headers=headers)
    assert [a["id"] for a in open_now.json()] == [third]
    for role in ("supervisor", "hq_analyst", "admin"):
        figures = await watch_node.client.get("/api/alerts/figures", headers=watch_node.auth(role))
        assert figures.status_code == 200
        assert figures.json() == {
            "document": {"raised": 1, "confirmed": 0, "dismissed": 0, "open": 1},
            "name_dob": {"raised": 1, "confirmed": 1, "dismissed": 0, "open": 0},
            "face": {"raised": 1, "confirmed": 0, "dismissed": 1, "open": 0},
            "modalities": {},  # no other biometric modality raised any
        }
    officer = await watch_node.client.get("/api/alerts/figures", headers=watch_node.auth("officer"))
    assert officer.status_code == 403
    async with watch_node.db.session() as session:
        actions = set(
            (
                await session.scalars(
                    select(AuditEvent.action).where(AuditEvent.record_type == "alert")
                )
            ).all()
        )
    assert {"adjudicate", "read"} <= actions


async def test_alert_views_by_role(watch_node: NodeUnderTest) -> None:
    refer = await create_entry(watch_node, PERSON_BODY, "supervisor")
    protect = await create_entry(
        watch_node,
        {**PERSON_BODY, "surname": "MINT SALEM", "action": "protect", "reason": "minor at risk"},
        "protection",
    )
    crossing = await register_crossing(watch_node)
    refer_alert = await raise_alert(watch_node, crossing["id"], refer)
    protect_alert = await raise_alert(watch_node, crossing["id"], protect)

    async def views(role: str) -> dict[str, dict[str, Any]]:
        response = await watch_node.client.get("/api/alerts", headers=watch_node.auth(role))
        assert response.status_code == 200, response.text
        return {view["id"]: view for view in response.json()}

    supervisor = await views("supervisor")
    assert supervisor[refer_alert]["reason"] == "arrest warrant 2024/17"
    assert supervisor[refer_alert]["traveller"]["surname"] == "KEITA"
    assert "entry" not in supervisor[refer_alert]  # no listed names or source
    assert supervisor[protect_alert]["instruction"] == "refer to protection officer"
    assert "minor at risk" not in repr(supervisor[protect_alert])
    assert "MINT SALEM" not in repr(supervisor) and "traveller" not in supervisor[protect_alert]
    protection = await views("protection")
    assert list(protection) == [protect_alert]
    assert protection[protect_alert]["reason"] == "minor at risk"
    assert protection[protect_alert]["entry"]["surname"] == "MINT SALEM"
    admin = await views("admin")
    assert set(admin) == {refer_alert, protect_alert}
    assert admin[refer_alert]["entry"]["source"] == "national"
    for role in ("officer", "hq_analyst", "liaison"):
        response = await watch_node.client.get("/api/alerts", headers=watch_node.auth(role))
        assert response.status_code == 403
    denied = await watch_node.client.post(
        f"/api/alerts/{protect_alert}/adjudication",
        json={"outcome": "confirmed", "reason": "not mine to decide"},
        headers=watch_node.auth("supervisor"),
    )
    assert denied.status_code == 403
    wrong_desk = await watch_node.client.post(
        f"/api/alerts/{refer_alert}/adjudication",
        json={"outcome": "confirmed", "reason": "not mine to decide"},
        headers=watch_node.auth("protection"),
    )
    assert wrong_desk.status_code == 403
    decided = await watch_node.client.post(
        f"/api/alerts/{protect_alert}/adjudication",
        json={"outcome": "confirmed", "reason": "child referred to the protection service"},
        headers=watch_node.auth("protection"),
    )
    assert decided.status_code == 201
    assert await count(watch_node, Alert) == 2
