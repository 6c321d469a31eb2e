"""The agreement's life cycle and the cases both liaison teams work on, end to end: two
national nodes (two PostgreSQL databases), a post each, real HTTP on 127.0.0.1 (with the
agreement's explicit development flag), one signed agreement (``test_bilateral.start_countries``).

Each test first reproduces what issue 14 found: crossings ingested before the agreement
never queued, a revocation the partner never heard of, resolutions overwriting each other,
free-text notes crossing word for word and kept for ever, plain http accepted."""

from __future__ import annotations

import json
import time
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from registry.receipts import load_or_create_node_key
from sync.batches import OutboxRecord, sign_batch
from sync.exchange.pseudonyms import pseudonymous_id, read_blinding_key
from sync.exchange.signing import sign_agreement
from tests.support.cluster import add_account
from tests.support.countries import (
    AGREEMENT,
    BASE,
    Country,
    cross,
    key_file,
    liaison_headers,
)
from tests.support.nodes import missing
from tests.support.servers import cli

H = timedelta(hours=1)


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def _restart(country: Country, **env: str | None) -> None:
    """Restart a national node on the same port with changed settings (None: unset)."""
    server = country.cluster.national
    server.stop()
    for name, value in env.items():
        key = f"BORDERPOST_{name.upper()}"
        if value is None:
            server.env.pop(key, None)
        else:
            server.env[key] = value
    server.start()


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _exchange(*sides: Country) -> None:
    for country in sides:
        cli(country.post.env, "sync", "now")
    for country in sides:
        cli(country.cluster.national_env, "exchange", "now")


def _outbox(country: Country) -> int:
    return int(country.cluster.national_rows("SELECT count(*) FROM exchange_outbox")[0][0])


def _held(country: Country) -> int:
    return int(country.cluster.national_rows("SELECT count(*) FROM partner_record")[0][0])


def _wait(condition: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)


def _reconcile(country: Country) -> dict[str, Any]:
    since = (BASE - timedelta(days=1)).date().isoformat()
    return dict(json.loads(cli(country.cluster.national_env, "reconcile", "--since", since).stdout))


def _cases(country: Country, **params: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{country.cluster.national.url}/api/liaison/discrepancies",
        headers=liaison_headers(country),
        params={"limit": "500", **params},
    )
    assert response.status_code == 200, response.text
    return list(response.json())


def _check(country: Country) -> Any:
    root = country.cluster.root
    return cli(
        country.cluster.national_env,
        "agreement",
        "check",
        str(root / "agreement.toml"),
        "--key-file",
        str(key_file(root, country.cluster.national_env["BORDERPOST_NODE_CODE"])),
        check=False,
    )


# ------------------------------------------------------------------ backfill
def test_crossings_ingested_before_the_agreement_are_backfilled_once(
    countries: dict[str, Country],
) -> None:
    mr, ml = countries["MRT"], countries["MLI"]
    for country in (mr, ml):  # the national nodes as they were before the agreement
        _restart(country, agreement_file=None)
    trips = 6
    for n in range(trips):
        cross(mr.post, "exit", f"K{n:07d}", BASE + n * H)
        cross(ml.post, "entry", f"K{n:07d}", BASE + n * H + timedelta(minutes=30))
    lonely = cross(mr.post, "exit", "L0000001", BASE + 10 * H)  # a real exit without entry
    for country in (mr, ml):
        cli(country.post.env, "sync", "now")
        assert country.cluster.national_rows("SELECT count(*) FROM exchange_outbox")[0][0] == 0
        _restart(country, agreement_file=str(country.cluster.root / "agreement.toml"))

    # each service queues, once, what was ingested before, as soon as it starts with it
    _wait(lambda: _outbox(mr) == trips + 1 and _outbox(ml) == trips)
    for country in (ml, mr, ml, mr):
        cli(country.cluster.national_env, "exchange", "now")
    assert _held(ml) == trips + 1 and _held(mr) == trips
    again = json.loads(cli(mr.cluster.national_env, "agreement", "backfill").stdout)
    assert again["queued"] == 0 and again["queued_since_activation"] == trips + 1
    assert _outbox(mr) == trips + 1  # nothing queued twice
    assert json.loads(cli(mr.cluster.national_env, "exchange", "now").stdout)["sent"] == 0
    events = mr.cluster.national_rows("SELECT detail FROM audit_event WHERE action = 'backfill'")
    assert sum(_json(d)["queued"] for (d,) in events) == trips + 1

    ours, theirs = _reconcile(mr), _reconcile(ml)
    assert ours["counts"]["matched"] == trips and theirs["counts"]["matched"] == trips
    assert ours["counts"]["exit_without_entry"] == 1
    assert theirs["counts"]["entry_without_exit"] == 0  # no false cases on either side
    mr_cases, ml_cases = _cases(mr), _cases(ml)
    assert [c["our_ids"] for c in mr_cases] == [[lonely]]
    assert {c["id"] for c in mr_cases} == {c["id"] for c in ml_cases}  # the same case ids


# ------------------------------------------------------------------ revocation
def test_revocation_reaches_the_partner_erases_there_and_drops_the_gap(
    countries: dict[str, Country], tmp_path: Path
) -> None:
    mr, ml = countries["MRT"], countries["MLI"]
    cross(mr.post, "exit", "R0000001", BASE)
    cross(ml.post, "entry", "R0000001", BASE + H)
    _exchange(mr, ml)
    assert ml.cluster.national_rows("SELECT count(*) FROM partner_record")[0][0] == 1
    assert mr.cluster.national_rows("SELECT count(*) FROM partner_record")[0][0] == 1
    for country in (mr, ml):
        assert _check(country).returncode == 0
        assert country.cluster.national_rows("SELECT count(*) FROM exchange_key")[0][0] == 1

    revoked = cli(mr.cluster.national_env, "agreement", "revoke", "--reason", "partner breach")
    answer = json.loads(revoked.stdout)
    assert answer["partner_notified"] is True and answer["erased"] == 1
    # the partner stopped at once and erased what it held under that version (audited)
    assert ml.cluster.national_rows("SELECT count(*) FROM partner_record")[0][0] == 0
    assert mr.cluster.national_rows("SELECT count(*) FROM partner_record")[0][0] == 0
    for country in (mr, ml):  # and the keys of our crossings the partner's scalar made
        assert country.cluster.national_rows("SELECT count(*) FROM exchange_key")[0][0] == 0
    erase = ml.cluster.national_rows("SELECT detail FROM audit_event WHERE action = 'erase'")
    assert _json(erase[0][0])["records"] == 1 and _json(erase[0][0])["version"] == 1
    assert _json(erase[0][0])["keys"] == 1
    stored = ml.cluster.national_rows("SELECT party, revoked_by, reason FROM agreement_revocation")
    assert stored == [("MRT", "MR-NATIONAL", "partner breach")]
    for country in (mr, ml):  # both sides say revoked, and exit non-zero
        check = _check(country)
        assert check.returncode == 1 and "REVOKED" in check.stderr
        assert json.loads(check.stdout)["revoked"].startswith("on ")
    hit = httpx.post(
        f"{ml.cluster.national.url}/api/liaison/hits",
        headers=liaison_headers(ml),
        json={"kind": "document", "issuing_state": "MLI", "number": "R0000001"},
    )
    assert hit.status_code == 403 and "revoked" in hit.text  # not a 502
    refused = cli(ml.cluster.national_env, "exchange", "now", check=False)
    assert refused.returncode != 0 and "revoked" in refused.stderr
    add_account(ml.cluster.national_env, "ml.admin", "admin")
    with httpx.Client(base_url=ml.cluster.national.url) as admin:
        login = admin.post(
            "/api/auth/login", json={"username": "ml.admin", "password": "desk-password-123"}
        )
        assert login.status_code == 200
        page = admin.get("/web/admin/agreements")
        assert 'id="agreement-revoked"' in page.text and "MRT" in page.text
        assert 'id="agreement-status"' not in page.text

    # queued during the revocation: dropped, never sent under the next version
    during = cross(mr.post, "exit", "R0000002", datetime.now(UTC) - timedelta(minutes=5))
    cli(mr.post.env, "sync", "now")
    assert mr.cluster.national_rows(
        "SELECT count(*) FROM exchange_outbox WHERE record_id = :id", id=during
    ) == [(1,)]
    text = (mr.cluster.root / "agreement.toml").read_text().replace("version = 1", "version = 2")
    for node in ("MR-NATIONAL", "ML-NATIONAL"):
        key = load_or_create_node_key(mr.cluster.root / node / "keys" / "node_ed25519.pem")
        text = sign_agreement(text, node, key)
    (mr.cluster.root / "agreement.toml").write_text(text)
    for country in (mr, ml):
        _restart(country)
        assert _check(country).returncode == 0  # version 2 is in force
    cli(mr.cluster.national_env, "exchange", "now")
    activation = mr.cluster.national_rows(
        "SELECT version, dropped FROM agreement_activation ORDER BY version"
    )
    assert activation[-1] == (2, 1)
    after = cross(mr.post, "exit", "R0000003", datetime.now(UTC))
    _exchange(mr)
    held = ml.cluster.national_rows("SELECT record_id, agreement_version FROM partner_record")
    mr_key = read_blinding_key(key_file(mr.cluster.root, "MR-NATIONAL"))
    assert held == [(pseudonymous_id(mr_key, "MR-ML-2026", after), 2)]  # never our UUID


# ------------------------------------------------------------------ https
def test_plain_http_and_the_example_host_are_refused(
    countries: dict[str, Country], tmp_path: Path
) -> None:
    bare = {"PATH": "/usr/bin:/bin"}
    example = cli(bare, "agreement", "check", str(AGREEMENT), check=False)
    report = json.loads(example.stdout)
    assert example.returncode == 1
    assert any("example host" in p and p.startswith("parties[0].url") for p in report["problems"])
    plain = tmp_path / "plain.toml"
    plain.write_text(
        AGREEMENT.read_text().replace("https://borderpost.example.mr", "http://national.gov.mr")
    )
    report = json.loads(cli(bare, "agreement", "check", str(plain), check=False).stdout)
    assert any(p.startswith("parties[0].url: must be https://") for p in report["problems"])
    allowed = json.loads(
        cli(bare, "agreement", "check", str(plain), "--development-urls", check=False).stdout
    )
    assert not any("url" in p for p in allowed["problems"])
    # a national node without the development flag refuses its http partner
    mr = countries["MRT"]
    env = {
        k: v
        for k, v in mr.cluster.national_env.items()
        if k != "BORDERPOST_AGREEMENT_DEVELOPMENT_URLS"
    }
    refused = cli(env, "exchange", "now", check=False)
    assert refused.returncode != 0 and "must be https://" in refused.stderr


# ------------------------------------------------------------------ cases
def test_conflicting_resolutions_structured_notes_and_retention(
    countries: dict[str, Country],
) -> None:
    mr, ml = countries["MRT"], countries["MLI"]
    exit_id = cross(mr.post, "exit", "C0000001", BASE)
    _exchange(mr, ml)
    _reconcile(mr), _reconcile(ml)
    (case,) = _cases(mr)
    assert [c["id"] for c in _cases(ml)] == [case["id"]]
    notes = f"{mr.cluster.national.url}/api/liaison/discrepancies/{case['id']}/notes"

    # a person's bad values are refused, naming the field
    for body, field in (
        ({"resolution": "hacked"}, "resolution"),
        ({"reasons": ["gossip"]}, "reasons"),
        ({"references": [{"kind": "crossing", "id": "0" * 8}]}, "references"),
        ({}, "note"),
    ):
        bad = httpx.post(notes, headers=liaison_headers(mr), json=body)
        assert 400 <= bad.status_code < 500, bad.text
        assert bad.headers["content-type"].startswith("application/problem+json")
        assert bad.json()["invalid_params"][0]["name"].startswith(field), bad.text

    secret = "passport M1234567, KEITA Moussa, born 1980-01-01"
    resolved = httpx.post(
        notes,
        headers=liaison_headers(mr),
        json={
            "note": secret,
            "reasons": ["data_entry_error"],
            "references": [{"kind": "crossing", "id": exit_id}],
            "resolution": "data_error_corrected",
        },
    )
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["notes"][0]["text"] == secret  # kept here, with its author
    assert resolved.json()["notes"][0]["by"] == "liaison"
    cli(mr.cluster.national_env, "exchange", "now")
    (mirror,) = _cases(ml)
    assert mirror["status"] == "resolved" and mirror["resolution"] == "data_error_corrected"
    (event,) = mirror["notes"]
    assert event["reasons"] == ["data_entry_error"] and event["text"] is None
    assert event["references"] == [{"kind": "crossing", "id": exit_id}]
    assert event["by"] is None and event["origin"] == "MR-NATIONAL"
    for table in ("discrepancy_event", "partner_record", "sync_quarantine", "discrepancy"):
        dump = ml.cluster.national_rows(f"SELECT t::text FROM {table} t")
        assert not any("M1234567" in row[0] or "KEITA" in row[0] for row in dump), table

    # ML disagrees: both sides see a conflict, with who said what
    disagree = httpx.post(
        f"{ml.cluster.national.url}/api/liaison/discrepancies/{case['id']}/notes",
        headers=liaison_headers(ml),
        json={"reasons": ["identity_confirmed"], "resolution": "false_alarm"},
    )
    assert disagree.json()["status"] == "conflict"
    cli(ml.cluster.national_env, "exchange", "now")
    (ours,) = _cases(mr)
    assert ours["status"] == "conflict" and ours["resolution"] is None
    assert ours["positions"] == {
        "MR-NATIONAL": "data_error_corrected",
        "ML-NATIONAL": "false_alarm",
    }
    assert [(n["origin"], n["resolution"]) for n in ours["notes"]] == [
        ("MR-NATIONAL", "data_error_corrected"),
        ("ML-NATIONAL", "false_alarm"),
    ]
    assert _cases(mr, status="conflict") and not _cases(mr, status="resolved")

    # a resolution outside the vocabulary from the partner is refused and audited
    state = mr.cluster.national_rows(
        "SELECT contiguous_seq FROM ingest_state WHERE origin = 'ML-NATIONAL'"
    )[0][0]
    forged = sign_batch(
        [
            OutboxRecord(
                state + 1,
                "discrepancy_resolution",
                case["id"],
                {
                    "id": case["id"],
                    "status": "closed_by_partner",
                    "events": [
                        {"id": "f" * 32, "at": datetime.now(UTC).isoformat(), "resolution": "x"}
                    ],
                },
            )
        ],
        kind="exchange",
        origin="ML-NATIONAL",
        destination="MR-NATIONAL",
        after_seq=state,
        key=load_or_create_node_key(ml.cluster.root / "ML-NATIONAL" / "keys" / "node_ed25519.pem"),
    )
    sent = httpx.post(
        f"{mr.cluster.national.url}/api/exchange/batches",
        content=forged.body,
        headers=forged.http_headers(),
    )
    assert sent.status_code == 200, sent.text
    assert len(_cases(mr)[0]["notes"]) == 2 and _cases(mr)[0]["status"] == "conflict"
    refusals = mr.cluster.national_rows(
        "SELECT record_id FROM audit_event WHERE action = 'partner_case_refused'"
    )
    assert refusals == [(case["id"],)]

    # the partner's notes and resolutions go at retention, as its records do
    mr.cluster.national_execute(
        "UPDATE discrepancy_event SET expires_at = now() - interval '1 day' "
        "WHERE origin = 'ML-NATIONAL'"
    )
    cli(mr.cluster.national_env, "exchange", "purge")
    (ours,) = _cases(mr)
    assert [n["origin"] for n in ours["notes"]] == ["MR-NATIONAL"]
    assert ours["status"] == "resolved" and ours["resolution"] == "data_error_corrected"
    purge = mr.cluster.national_rows("SELECT detail FROM audit_event WHERE action = 'purge'")
    assert _json(purge[-1][0])["case_events"] == 1


# ------------------------------------------------------------------ the liaison's work
def test_the_liaison_sees_the_crossing_behind_a_case_for_a_purpose(
    countries: dict[str, Country],
) -> None:
    mr, ml = countries["MRT"], countries["MLI"]
    exit_id = cross(mr.post, "exit", "V0000001", BASE)
    other = cross(mr.post, "entry", "V0000009", BASE)
    _exchange(mr, ml)
    _reconcile(mr)
    (case,) = _cases(mr, kind="exit_without_entry")
    url = f"{mr.cluster.national.url}/api/liaison/discrepancies/{case['id']}/crossings"
    liaison = liaison_headers(mr)
    assert httpx.get(f"{url}/{exit_id}", headers=liaison).status_code == 400  # no purpose
    assert httpx.get(f"{url}/{exit_id}", headers=liaison, params={"purpose": "curiosity"}).json()[
        "invalid_params"
    ][0]["name"] == ("purpose")
    assert (
        httpx.get(f"{url}/{other}", headers=liaison, params={"purpose": "border_management"})
    ).status_code == 404  # not behind this case
    seen = httpx.get(f"{url}/{exit_id}", headers=liaison, params={"purpose": "border_management"})
    assert seen.status_code == 200, seen.text
    crossing = seen.json()["crossing"]
    assert crossing["document"]["number"] == "V0000001" and crossing["traveller"]["surname"]
    purposes = mr.cluster.national_rows(
        "SELECT purpose FROM audit_event WHERE action = 'read' AND record_type = 'crossing' "
        "AND origin = 'MR-NATIONAL'"
    )
    assert purposes == [("liaison:border_management",)]
    hq = httpx.get(
        f"{mr.cluster.national.url}/api/hq/search/document",
        headers=liaison,
        params={"issuing_state": "MLI", "number": "V0000001"},
    )
    assert hq.status_code == 403  # still no HQ role
    add_account(mr.cluster.national_env, "hq.analyst", "hq_analyst")
    for path in ("/api/hq/stats/flows.csv", "/api/liaison/report"):
        token = mr.cluster.national_token("hq.analyst" if "hq" in path else "liaison")
        csv = httpx.get(
            f"{mr.cluster.national.url}{path}",
            headers=token,
            params={
                "since": (BASE - timedelta(days=1)).date().isoformat(),
                "date_from": (BASE - timedelta(days=1)).date().isoformat(),
                "date_to": datetime.now(UTC).date().isoformat(),
                "format": "csv",
            },
        )
        assert csv.status_code == 200, csv.text
        assert csv.headers["content-type"] == "text/csv; charset=utf-8"  # one charset


def test_liaison_page_filters_pages_and_speaks_french(
    countries: dict[str, Country], tmp_path: Path
) -> None:
    if not CHROMIUM.exists():
        missing(f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)")
    mr, ml = countries["MRT"], countries["MLI"]
    for n in range(30):
        cross(mr.post, "exit", f"P{n:07d}", BASE + n * timedelta(minutes=20))
    _exchange(mr, ml)
    _reconcile(mr)
    assert len(_cases(mr)) == 30
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_context(locale="fr-FR").new_page()
        page.goto(f"{mr.cluster.national.url}/web/login")
        page.fill("#username", "liaison")
        page.fill("#password", "desk-password-123")
        page.click("#login-submit")
        page.wait_for_load_state("networkidle")
        page.goto(f"{mr.cluster.national.url}/web/liaison")
        assert page.locator("#cases tbody tr").count() == 25
        assert "1–25" in page.inner_text("#case-count") and "30" in page.inner_text("#case-count")
        assert "Sortie sans entrée" in page.inner_text("#cases")  # French, not English
        page.click("a[rel=next]")
        assert page.locator("#cases tbody tr").count() == 5
        page.select_option("#c-status", "resolved")
        page.click("#case-filters button[type=submit]")
        assert page.locator("#cases").count() == 0
        page.select_option("#c-status", "open")
        page.select_option("#c-kind", "exit_without_entry")
        page.click("#case-filters button[type=submit]")
        assert page.locator("#cases tbody tr").count() == 25
        page.locator("#cases tbody tr a").first.click()
        assert page.locator("#case-detail").count() == 1
        page.check("input[name=reasons][value=recorded_late]")
        page.select_option("#note-resolution", "explained")
        page.click("#case-detail button[type=submit]")
        assert "Expliqué" in page.inner_text("#history")
        assert "Enregistré en retard" in page.inner_text("#history")
        assert page.locator("#case-detail [data-status=resolved]").count() == 1
        page.screenshot(path=str(tmp_path / "liaison.png"), full_page=True)
        height = page.evaluate("document.body.scrollHeight")
        assert height < 6000
        page.goto(f"{mr.cluster.national.url}/web/admin/agreements")
        browser.close()
    csv = httpx.get(
        f"{mr.cluster.national.url}/api/liaison/report",
        headers=liaison_headers(mr),
        params={"since": (BASE - timedelta(days=1)).date().isoformat(), "format": "csv"},
    )
    assert csv.headers["content-type"].count("charset") == 1
    cases_before = httpx.get(
        f"{mr.cluster.national.url}/api/liaison/discrepancies", headers=liaison_headers(mr)
    ).headers["x-total-count"]
    for shape in ("json", "csv"):  # a pair the agreement does not hold: 400, nothing run
        unknown = httpx.get(
            f"{mr.cluster.national.url}/api/liaison/report",
            headers=liaison_headers(mr),
            params={
                "since": (BASE - timedelta(days=1)).date().isoformat(),
                "pair": "MR-NOWHERE:ML-NOWHERE",
                "format": shape,
            },
        )
        assert unknown.status_code == 400, unknown.text
        assert unknown.json()["invalid_params"][0]["name"] == "pair"
    assert (
        httpx.get(
            f"{mr.cluster.national.url}/api/liaison/discrepancies", headers=liaison_headers(mr)
        ).headers["x-total-count"]
        == cases_before
    )
    agreement = tomllib.loads((mr.cluster.root / "agreement.toml").read_text())
    assert agreement["version"] == 1
