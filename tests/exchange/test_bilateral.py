"""Bilateral exchange end to end: two national nodes (two PostgreSQL databases), one post
each, real HTTP on 127.0.0.1, one signed agreement. A scenario with known ground truth is
registered at both posts, synced, exchanged and reconciled; the partner's raw rows are
inspected; liaison resolutions, hit/no-hit, revocation and retention are exercised."""

from __future__ import annotations

import json
import tomllib
from datetime import date, timedelta

import httpx

from registry.receipts import load_or_create_node_key
from sync.exchange.pseudonyms import document_message, read_blinding_key
from tests.support.cluster import Post
from tests.support.countries import BASE, Country, cross, key_file, liaison_headers
from tests.support.servers import cli


def _scenario(mr: Post, ml: Post) -> dict[str, list[str]]:
    """Known ground truth: every outcome once (two matches, one within clock skew)."""
    h = timedelta(hours=1)
    truth: dict[str, list[str]] = {}
    truth["matched"] = [
        cross(mr, "exit", "A0000001", BASE),
        cross(ml, "entry", "A0000001", BASE + h),
    ]
    truth["skew_matched"] = [
        cross(mr, "exit", "E0000005", BASE + 2 * h),
        cross(ml, "entry", "E0000005", BASE + 2 * h - timedelta(minutes=5)),
    ]
    truth["exit_without_entry"] = [cross(mr, "exit", "B0000002", BASE + 3 * h)]
    truth["data_mismatch"] = [
        cross(mr, "exit", "C0000003", BASE + 4 * h),
        cross(ml, "entry", "C0000003", BASE + 5 * h, dob=date(1981, 1, 1)),
    ]
    truth["duplicate"] = [
        cross(mr, "exit", "D0000004", BASE + 6 * h),
        cross(mr, "exit", "D0000004", BASE + 6 * h + timedelta(minutes=10)),
        cross(ml, "entry", "D0000004", BASE + 7 * h),
    ]
    truth["timing_anomaly"] = [
        cross(mr, "exit", "F0000006", BASE + 10 * h),
        cross(ml, "entry", "F0000006", BASE + 8 * h),
    ]
    return truth


def test_exchange_reconcile_and_liaison(countries: dict[str, Country]) -> None:
    mr, ml = countries["MRT"], countries["MLI"]
    _scenario(mr.post, ml.post)
    for country in (mr, ml):
        cli(country.post.env, "sync", "now")
        assert json.loads(cli(country.cluster.national_env, "exchange", "now").stdout)["sent"] > 0
    since = (BASE - timedelta(days=1)).date().isoformat()
    report = json.loads(
        cli(
            mr.cluster.national_env, "reconcile", "--since", since, "--pair", "MR-GOGUI:ML-GOGUI"
        ).stdout
    )
    counts = report["counts"]
    assert counts["matched"] == 3  # A, E (within clock skew) and the first of the D pair
    assert counts["exit_without_entry"] == 1
    assert counts["data_mismatch"] == 1
    assert counts["duplicate"] == 1
    assert counts["timing_anomaly"] == 1
    assert {d["kind"] for d in report["open_discrepancies"]} == {
        "exit_without_entry",
        "data_mismatch",
        "duplicate",
        "timing_anomaly",
    }
    csv_report = cli(
        mr.cluster.national_env,
        "reconcile",
        "--since",
        since,
        "--pair",
        "MR-GOGUI:ML-GOGUI",
        "--format",
        "csv",
    ).stdout
    assert csv_report.splitlines()[0].startswith("kind,") and len(csv_report.splitlines()) == 5

    # the partner's raw rows hold exactly the allowed fields, numbers only double-blinded
    agreement = tomllib.loads((mr.cluster.root / "agreement.toml").read_text())
    allowed = {k: set(v) for k, v in agreement["record_types"].items()}
    rows = ml.cluster.national_rows(
        "SELECT payload FROM partner_record WHERE origin = 'MR-NATIONAL'"
    )
    assert len(rows) == 7  # every crossing registered at MR-GOGUI, one bundle each
    for (payload,) in rows:
        payload = json.loads(payload) if isinstance(payload, str) else payload
        assert set(payload) == {"crossing", "traveller", "travel_document"}
        for part, fields in payload.items():
            assert set(fields) == allowed[part], part
        number = payload["travel_document"]["number"]
        assert len(number) == 43 and "0000" not in number
        # (a bare "1980" may occur inside a 32-hex pseudonymous id: about 2% of runs)
        assert "KONATE" not in json.dumps(payload) and "1980-01" not in json.dumps(payload)
        assert len(payload["traveller"]["date_of_birth"]) == 43  # blinded, not a date
    # H(x)^(ab): only both countries' keys together give the stored value
    mr_key = read_blinding_key(key_file(mr.cluster.root, "MR-NATIONAL"))
    ml_key = read_blinding_key(key_file(ml.cluster.root, "ML-NATIONAL"))
    message = document_message("MLI", "A0000001")
    assert message is not None
    expected = ml_key.reblind(mr_key.blind_message(message))
    assert expected in {
        json.loads(p)["travel_document"]["number"]
        if isinstance(p, str)
        else p["travel_document"]["number"]
        for (p,) in rows
    }

    # the liaison team resolves a case; the resolution travels to the partner
    ml_report = json.loads(cli(ml.cluster.national_env, "reconcile", "--since", since).stdout)
    assert ml_report["counts"]["data_mismatch"] == 1
    cases = httpx.get(
        f"{mr.cluster.national.url}/api/liaison/discrepancies",
        headers=liaison_headers(mr),
        params={"status": "open"},
    ).json()
    forged = next(c for c in cases if c["kind"] == "data_mismatch")
    poisoned = httpx.post(  # a note travels to the partner: it must be clean text
        f"{mr.cluster.national.url}/api/liaison/discrepancies/{forged['id']}/notes",
        headers=liaison_headers(mr),
        json={"note": "forged\u0000\u202e", "resolution": "referred"},
    )
    assert poisoned.status_code in (400, 422), poisoned.text
    assert poisoned.json()["invalid_params"][0]["name"] == "note"
    resolved = httpx.post(
        f"{mr.cluster.national.url}/api/liaison/discrepancies/{forged['id']}/notes",
        headers=liaison_headers(mr),
        json={"note": "passport forged, referred to police", "resolution": "referred"},
    )
    assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"
    cli(mr.cluster.national_env, "exchange", "now")
    theirs = httpx.get(
        f"{ml.cluster.national.url}/api/liaison/discrepancies", headers=liaison_headers(ml)
    ).json()
    mirror = next(c for c in theirs if c["id"] == forged["id"])
    assert mirror["status"] == "resolved" and mirror["resolution"] == "referred"
    assert mirror["notes"][0]["text"] is None  # free text stays in the country
    assert mirror["notes"][0]["origin"] == "MR-NATIONAL" and mirror["notes"][0]["by"] is None


def test_hit_no_hit_and_explicit_release(countries: dict[str, Country]) -> None:
    mr, ml = countries["MRT"], countries["MLI"]
    cross(mr.post, "exit", "H0000008", BASE)
    cli(mr.post.env, "sync", "now")
    ask = httpx.post(
        f"{ml.cluster.national.url}/api/liaison/hits",
        headers=liaison_headers(ml),
        json={"kind": "document", "issuing_state": "MLI", "number": "H 000-0008"},
    )
    assert ask.status_code == 200, ask.text
    answer = ask.json()
    assert answer["hit"] is True and set(answer) == {"hit", "reference"}
    miss = httpx.post(
        f"{ml.cluster.national.url}/api/liaison/hits",
        headers=liaison_headers(ml),
        json={"kind": "document", "issuing_state": "MLI", "number": "Z9999999"},
    )
    assert miss.json()["hit"] is False
    by_name = httpx.post(
        f"{ml.cluster.national.url}/api/liaison/hits",
        headers=liaison_headers(ml),
        json={
            "kind": "name_dob",
            "surname": "Konaté",
            "given_names": "Seydou",
            "date_of_birth": "1980-01-01",
        },
    )
    assert by_name.status_code == 200 and by_name.json()["hit"] is True
    wrong_dob = httpx.post(
        f"{ml.cluster.national.url}/api/liaison/hits",
        headers=liaison_headers(ml),
        json={
            "kind": "name_dob",
            "surname": "KONATE",
            "given_names": "SEYDOU",
            "date_of_birth": "1980-01-02",
        },
    )
    assert wrong_dob.json()["hit"] is False
    reference = answer["reference"]
    details_url = f"{ml.cluster.national.url}/api/liaison/hits/{reference}/details"
    purpose = {"purpose": "document_fraud_detection"}
    assert httpx.post(details_url, headers=liaison_headers(ml)).status_code == 400  # no purpose
    no_purpose = httpx.post(details_url, headers=liaison_headers(ml), json={"purpose": "curiosity"})
    assert no_purpose.status_code == 400 and "purpose" in no_purpose.text
    assert (
        httpx.post(details_url, headers=liaison_headers(ml), json=purpose).json()["status"]
        == "pending"
    )
    assert httpx.get(details_url, headers=liaison_headers(ml)).json()["records"] == []
    pending = httpx.get(
        f"{mr.cluster.national.url}/api/liaison/requests", headers=liaison_headers(mr)
    ).json()
    assert [(p["reference"], p["purpose"]) for p in pending] == [
        (reference, "document_fraud_detection")
    ]
    approved = httpx.post(
        f"{mr.cluster.national.url}/api/liaison/requests/{reference}",
        headers=liaison_headers(mr),
        json={"approve": True},
    )
    assert approved.json()["released"] == 1
    released = httpx.get(details_url, headers=liaison_headers(ml)).json()
    assert released["status"] == "approved"
    document = released["records"][0]["travel_document"]
    assert document["number"] != "H0000008" and len(document["number"]) == 43
    # the detail tier adds what bulk never carries: the name in clear, the expiry
    traveller = released["records"][0]["traveller"]
    assert traveller["surname"] == "KONATE" and document["expiry_date"] == "2030-01-01"
    bulk = ml.cluster.national_rows("SELECT payload::text FROM partner_record")
    assert all("KONATE" not in p and "surname" not in p for (p,) in bulk)
    events = mr.cluster.national_rows(
        "SELECT action FROM audit_event WHERE record_type = 'hit_query'"
    )
    assert {"hit_query", "detail_request", "release"} <= {a for (a,) in events}


def test_revocation_stops_exchange_and_retention_purges(countries: dict[str, Country]) -> None:
    mr, ml = countries["MRT"], countries["MLI"]
    cross(mr.post, "exit", "R0000001", BASE)
    cli(mr.post.env, "sync", "now")
    cli(mr.cluster.national_env, "exchange", "now")
    assert ml.cluster.national_rows("SELECT count(*) FROM partner_record")[0][0] == 1
    ml.cluster.national_execute("UPDATE partner_record SET expires_at = now() - interval '1 day'")
    assert json.loads(cli(ml.cluster.national_env, "exchange", "purge").stdout)["purged"] == 1
    assert ml.cluster.national_rows("SELECT count(*) FROM partner_record")[0][0] == 0
    purge = ml.cluster.national_rows("SELECT detail FROM audit_event WHERE action = 'purge'")[0][0]
    purge = json.loads(purge) if isinstance(purge, str) else purge
    assert purge["purged"] == 1 and purge["agreement"] == "MR-ML-2026" and purge["version"] == 1
    cli(mr.cluster.national_env, "agreement", "revoke", "--reason", "partner breach")
    cross(mr.post, "exit", "R0000002", BASE + timedelta(hours=1))
    cli(mr.post.env, "sync", "now")
    refused = cli(mr.cluster.national_env, "exchange", "now", check=False)
    assert refused.returncode != 0 and "revoked" in refused.stderr
    hit = httpx.post(
        f"{mr.cluster.national.url}/api/liaison/hits",
        headers=liaison_headers(mr),
        json={"kind": "document", "issuing_state": "MLI", "number": "R0000001"},
    )
    assert hit.status_code == 403
    assert ml.cluster.national_rows("SELECT count(*) FROM partner_record")[0][0] == 0
    check = cli(
        mr.cluster.national_env,
        "agreement",
        "check",
        str(mr.cluster.root / "agreement.toml"),
        "--key-file",
        str(key_file(mr.cluster.root, "MR-NATIONAL")),
        check=False,
    )
    assert check.returncode == 1 and "REVOKED" in check.stderr
    assert json.loads(check.stdout)["exchange_allowed"] is False


def test_junk_partner_batches_are_refused_without_an_audit_event(
    countries: dict[str, Country],
) -> None:
    """A batch naming the partner but not signed with its agreement key is refused and
    only logged; one the partner really signed (altered on the way) is audited."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from sync.batches import OutboxRecord, SignedBatch, sign_batch

    mr, ml = countries["MRT"], countries["MLI"]
    url = f"{ml.cluster.national.url}/api/exchange/batches"
    records = [OutboxRecord(1, "crossing", "x", {"id": "x"})]

    def batch(key: Ed25519PrivateKey) -> SignedBatch:
        return sign_batch(
            records,
            kind="exchange",
            origin="MR-NATIONAL",
            destination="ML-NATIONAL",
            after_seq=0,
            key=key,
        )

    def rejected() -> int:
        return int(
            ml.cluster.national_rows(
                "SELECT count(*) FROM audit_event WHERE action = 'sync_rejected'"
            )[0][0]
        )

    forged = batch(Ed25519PrivateKey.generate())
    for _ in range(3):
        response = httpx.post(url, content=forged.body, headers=forged.http_headers())
        assert response.status_code == 403 and "bad_signature" in response.text
    unsigned = httpx.post(url, content=b"junk", headers={"content-type": "application/json"})
    assert 400 <= unsigned.status_code < 500
    assert rejected() == 0
    genuine = batch(
        load_or_create_node_key(mr.cluster.root / "MR-NATIONAL" / "keys" / "node_ed25519.pem")
    )
    altered = httpx.post(url, content=genuine.body + b"x", headers=genuine.http_headers())
    assert altered.status_code == 400 and "altered" in altered.text
    assert rejected() == 1
