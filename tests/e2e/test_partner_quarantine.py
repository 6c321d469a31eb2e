"""The partner exchange quarantines what it cannot store, record by record (issue 12): two
national nodes on PostgreSQL under one signed agreement, real HTTP. A genuinely signed
partner batch carrying a field outside the agreement, an id too long to store and a type
that is never exchanged, next to a good bundle: the good bundle is stored, the three are
quarantined with their reasons, and the acknowledgement moves past them."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

import tests.e2e.test_bilateral as bilateral
from registry.receipts import load_or_create_node_key
from sync.batches import OutboxRecord, sign_batch
from tests.servers import cli

countries = bilateral.countries  # two nationals and a post each (PostgreSQL, SQLite)
ML, MR = "ML-NATIONAL", "MR-NATIONAL"


def test_a_partner_record_that_cannot_be_stored_is_quarantined(
    countries: dict[str, bilateral.Country], tmp_path: Path
) -> None:
    mr, ml = countries["MRT"], countries["MLI"]
    bilateral._cross(ml.post, "entry", "Q0000001", bilateral.BASE)
    cli(ml.post.env, "sync", "now")
    assert json.loads(cli(ml.cluster.national_env, "exchange", "now").stdout)["sent"] > 0
    ((payload,),) = mr.cluster.national_rows(
        "SELECT payload FROM partner_record WHERE origin = :o", o=ML
    )
    bundle = json.loads(payload) if isinstance(payload, str) else payload
    ((held,),) = mr.cluster.national_rows(
        "SELECT contiguous_seq FROM ingest_state WHERE origin = :o", o=ML
    )
    outside = {**bundle, "crossing": {**bundle["crossing"], "surname_clear": "KONATE"}}
    records = [
        OutboxRecord(held + 1, "crossing_bundle", "q-good", bundle),
        OutboxRecord(held + 2, "crossing_bundle", "q-outside", outside),
        OutboxRecord(held + 3, "crossing_bundle", "x" * 200, bundle),
        OutboxRecord(held + 4, "watchlist_entry", "q-forbidden", bundle),
    ]
    key = load_or_create_node_key(tmp_path / ML / "keys" / "node_ed25519.pem")
    batch = sign_batch(records, kind="exchange", origin=ML, destination=MR, after_seq=held, key=key)
    response = httpx.post(
        f"{mr.cluster.national.url}/api/exchange/batches",
        content=batch.body,
        headers=batch.http_headers(),
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["ack"], answer["stored"]) == (held + 4, 1)
    assert set(answer["keys"]) == {"q-good"}  # double-blinded keys of what was stored only
    quarantined = mr.cluster.national_rows(
        "SELECT seq, record_type, reason FROM sync_quarantine WHERE origin = :o ORDER BY seq",
        o=ML,
    )
    assert quarantined == [
        (held + 2, "crossing_bundle", "outside_agreement"),
        (held + 3, "crossing_bundle", "unstorable_text"),
        (held + 4, "watchlist_entry", "forbidden_record"),
    ]
    stored = mr.cluster.national_rows(
        "SELECT record_id FROM partner_record WHERE origin = :o ORDER BY record_id", o=ML
    )
    assert ("q-good",) in stored and len(stored) == 2
    listed = json.loads(cli(mr.cluster.national_env, "sync", "quarantine", "list").stdout)
    assert {e["reason"] for e in listed} == {
        "outside_agreement",
        "unstorable_text",
        "forbidden_record",
    }
