"""The partner exchange quarantines what it cannot store, record by record (issue 12): two
national nodes on PostgreSQL under one signed agreement, real HTTP. A genuinely signed
partner batch carrying a field outside the agreement, an id too long to store and a type
that is never exchanged, next to a good bundle: the good bundle is stored, the three are
quarantined with their reasons, and the acknowledgement moves past them."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import httpx

from registry.receipts import load_or_create_node_key
from sync.batches import OutboxRecord, sign_batch
from tests.support.countries import BASE, Country, cross
from tests.support.servers import cli

ML, MR = "ML-NATIONAL", "MR-NATIONAL"


def test_a_partner_record_that_cannot_be_stored_is_quarantined(
    countries: dict[str, Country], tmp_path: Path
) -> None:
    mr, ml = countries["MRT"], countries["MLI"]
    cross(ml.post, "entry", "Q0000001", BASE)
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


def test_made_up_bundles_cannot_outgrow_our_real_traffic(
    countries: dict[str, Country], tmp_path: Path
) -> None:
    """The partner's batches are an online blinding oracle: every element of a stored bundle
    comes back raised to our scalar. Made-up bundles stuffed with guesses are bounded by our
    own traffic at the paired posts (1.5 times it, plus 1,000), not only by the daily budget:
    past it the batch is refused whole, nothing is stored or blinded, and it is audited."""
    mr, ml = countries["MRT"], countries["MLI"]
    cross(mr.post, "exit", "T0000001", BASE)
    cli(mr.post.env, "sync", "now")
    cross(ml.post, "entry", "T0000001", BASE + timedelta(hours=1))
    cli(ml.post.env, "sync", "now")
    assert json.loads(cli(ml.cluster.national_env, "exchange", "now").stdout)["sent"] > 0
    ((payload,),) = mr.cluster.national_rows(
        "SELECT payload FROM partner_record WHERE origin = :o", o=ML
    )
    genuine = json.loads(payload) if isinstance(payload, str) else payload
    ((held,),) = mr.cluster.national_rows(
        "SELECT contiguous_seq FROM ingest_state WHERE origin = :o", o=ML
    )
    key = load_or_create_node_key(tmp_path / ML / "keys" / "node_ed25519.pem")

    def made_up(first: int, count: int) -> list[OutboxRecord]:
        return [
            OutboxRecord(first + n, "crossing_bundle", f"guess-{first + n}", genuine)
            for n in range(count)
        ]

    def send(after: int, records: list[OutboxRecord]) -> httpx.Response:
        batch = sign_batch(
            records, kind="exchange", origin=ML, destination=MR, after_seq=after, key=key
        )
        return httpx.post(
            f"{mr.cluster.national.url}/api/exchange/batches",
            content=batch.body,
            headers=batch.http_headers(),
            timeout=60,
        )

    # our traffic at the paired posts: one crossing, so 1 held + 500 + 500 = 1,001 <= 1,001
    for start in (held + 1, held + 501):
        answer = send(start - 1, made_up(start, 500))
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["keys"]) == 500
    refused = send(held + 1000, made_up(held + 1001, 1))
    assert refused.status_code == 400, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "over_budget" in refused.text
    ((stored,),) = mr.cluster.national_rows(
        "SELECT count(*) FROM partner_record WHERE origin = :o", o=ML
    )
    assert stored == 1001  # the genuine bundle and the 1,000 the bound allowed, no more
    rejections = mr.cluster.national_rows(
        "SELECT detail FROM audit_event WHERE action = 'sync_rejected'"
    )
    assert any("over_budget" in str(detail) for (detail,) in rejections), rejections
