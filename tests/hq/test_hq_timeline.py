"""National headquarters (role=national): a person's timeline over linked records, with the
evidence of each link (document, face, name and birth date), its read audited.

The national node and its hand-made dataset (posts MR-GOGUI (G) and MR-KOBENI (K), October
2026) are tests/hq_node.py and tests/hq_dataset.py, on PostgreSQL and on SQLite.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from registry.models import AuditEvent
from tests.support.hq_dataset import G, K, World
from tests.support.hq_node import Hq, ids_of


def evidence_of(timeline: dict[str, Any], world: World) -> dict[str, dict[str, Any]]:
    return {
        world.labels([link["traveller"]["id"]])[0]: {
            "confidence": link["confidence"],
            "evidence": {e["kind"]: e for e in link["evidence"]},
        }
        for link in timeline["linked"]
    }


async def test_timeline_links_records_with_their_evidence(national_node: Hq) -> None:
    node, world = national_node, national_node.world
    before = await node.audit_count()
    timeline = await node.get(f"/api/hq/travellers/{world['T1']}/timeline")
    assert world.labels([timeline["traveller"]["id"]]) == ["T1"]
    links = evidence_of(timeline, world)
    assert set(links) == {"T2", "T3"}  # T14 shares the birth date only: not linked
    t2 = links["T2"]["evidence"]
    assert t2["document"] == {
        "kind": "document",
        "confidence": 1.0,
        "issuing_state": "MLI",
        "number": "P1000001",
    }
    assert t2["face"] == {"kind": "face", "confidence": 0.8, "distance": 0.2}
    assert t2["name_dob"]["confidence"] == 1.0 and t2["name_dob"]["similarity"] == 100.0
    assert set(links["T3"]["evidence"]) == {"name_dob"}
    assert links["T2"]["confidence"] == links["T3"]["confidence"] == 1.0
    assert ids_of(timeline["crossings"], world) == ["c1", "c2", "c3"]
    assert [c["post"] for c in timeline["crossings"]] == [G, K, K]
    assert await node.audit_count() == before + 1
    async with node.db.session() as session:
        event_ = await session.scalar(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1))
    assert event_ is not None and event_.purpose == "hq_timeline"
    assert event_.record_id == world["T1"]
    assert sorted(world.labels(event_.detail["linked"])) == ["T2", "T3"]

    by_face = await node.get(f"/api/hq/travellers/{world['T4']}/timeline")
    assert evidence_of(by_face, world) == {
        "T5": {
            "confidence": 0.65,
            "evidence": {"face": {"kind": "face", "confidence": 0.65, "distance": 0.35}},
        }
    }
    assert ids_of(by_face["crossings"], world) == ["c4", "c5"]
    alone = await node.get(f"/api/hq/travellers/{world['T9']}/timeline")
    assert alone["linked"] == [] and ids_of(alone["crossings"], world) == ["c9"]
    sow = evidence_of(await node.get(f"/api/hq/travellers/{world['T7']}/timeline"), world)
    assert set(sow) == {"T8"} and set(sow["T8"]["evidence"]) == {"document", "name_dob"}


async def test_timeline_of_an_unknown_traveller_is_404(national_node: Hq) -> None:
    response = await national_node.client.get(
        f"/api/hq/travellers/{uuid.uuid4()}/timeline", headers=national_node.auth()
    )
    assert response.status_code == 404
    assert response.json()["invalid_params"][0]["name"] == "traveller_id"
