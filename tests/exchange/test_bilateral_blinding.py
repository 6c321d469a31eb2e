"""Pseudonyms the partner cannot reverse, and reconciliation that compares every identity
element (issue 14), end to end: two national nodes (PostgreSQL), one post each, real HTTP.

* The brute-force attack of the issue is replayed by the partner (ML) with everything it
  stores: its whole database and its own key file. Offline it recovers nothing, not even
  when the true values are among its guesses; online, every guess is one budgeted, signed,
  audited request, and the budget refuses the next one.
* Planted discrepancies of each kind (name, birth date, nationality, other document,
  missing entry) are counted exactly, on both sides, under the same case ids.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from registry.base64url import b64url
from registry.names import name_key
from sync.exchange.pseudonyms import (
    document_message,
    element_point,
    element_u,
    read_blinding_key,
)
from tests.support.cluster import Post
from tests.support.countries import BASE, Country, key_file, liaison_headers, running_countries
from tests.support.factories import passport_lines
from tests.support.servers import cli

HIT_BUDGET = 6
SURNAMES = [
    "KEITA", "TRAORE", "DIALLO", "COULIBALY", "KONATE", "CISSE", "TOURE", "SANGARE", "DEMBELE",
    "SISSOKO", "DIARRA", "SIDIBE", "OULD AHMED", "MAIGA", "KANTE", "BAH", "SOW",
]  # fmt: skip


def _budget(text: str) -> str:
    return text.replace("daily_hit_budget = 500", f"daily_hit_budget = {HIT_BUDGET}")


@pytest.fixture
def countries(tmp_path: Path) -> Iterator[dict[str, Country]]:
    with running_countries(tmp_path, _budget) as started:
        yield started


def cross(
    post: Post,
    direction: str,
    number: str,
    when: datetime,
    *,
    surname: str = "KONATE",
    given: str = "SEYDOU",
    dob: date = date(1980, 1, 1),
    nationality: str = "MLI",
) -> str:
    lines = passport_lines(
        number,
        surname=surname,
        given=given,
        nationality=nationality,
        issuing_state="MLI",
        date_of_birth=dob,
        expiry=date(2030, 1, 1),
    )
    response = httpx.post(
        f"{post.server.url}/api/crossings",
        headers=post.headers(),
        json={"direction": direction, "mrz": "\n".join(lines), "occurred_at": when.isoformat()},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _exchange(*countries: Country) -> None:
    for country in countries:
        cli(country.post.env, "sync", "now")
    for country in countries:
        cli(country.cluster.national_env, "exchange", "now")


def _everything_stored(country: Country) -> str:
    """Every row of every table of a national node's database, as text."""
    tables = country.cluster.national_rows(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
    )
    dump = []
    for (table,) in tables:
        rows = country.cluster.national_rows(f'SELECT row_to_json(t)::text FROM "{table}" t')
        dump.extend(row for (row,) in rows)
    return "\n".join(dump)


def _payloads(country: Country) -> list[dict[str, Any]]:
    rows = country.cluster.national_rows("SELECT payload FROM partner_record")
    return [json.loads(p) if isinstance(p, str) else p for (p,) in rows]


def test_the_partner_cannot_reverse_what_it_holds(countries: dict[str, Country]) -> None:
    mr, ml = countries["MRT"], countries["MLI"]
    numbers = [f"M0{n:06d}" for n in (731, 4242, 99001, 123456, 500000, 777777, 999999)]
    crossing_ids = []
    for index, number in enumerate(numbers):
        surname = SURNAMES[index]
        crossing_ids.append(
            cross(mr.post, "exit", number, BASE + timedelta(minutes=index), surname=surname)
        )
    _exchange(mr)
    payloads = _payloads(ml)
    assert len(payloads) == len(numbers)

    # 1. everything ML stores: its database and its own key file
    stored = _everything_stored(ml)
    ml_key = read_blinding_key(key_file(ml.cluster.root, "ML-NATIONAL"))
    for number in numbers:
        assert number not in stored
    for crossing_id in crossing_ids:  # our UUIDs never cross: per-agreement ids do
        assert crossing_id not in stored
    assert "KONATE" not in stored and "1980-01-01" not in stored
    held = {
        value
        for payload in payloads
        for part in payload.values()
        for value in part.values()
        if isinstance(value, str) and len(value) == 43
    }
    assert {p["travel_document"]["number"] for p in payloads} <= held

    # 2. the offline brute force of the issue, with the true numbers among the guesses: every
    # way ML can compute a candidate from a guess and what it holds finds nothing
    guesses = [f"M0{n:06d}" for n in range(0, 1_000_000, 997)] + numbers
    recovered = set()
    for guess in guesses:
        message = document_message("MLI", guess)
        assert message is not None
        point, u = element_point(message), element_u(message)
        old_hmac = hmac.new(ml_key.scalar, message.encode(), hashlib.sha256).hexdigest()
        candidates = {ml_key.blind_message(message), ml_key.reblind(b64url(u)), old_hmac}
        candidates |= {b64url(point), b64url(u), ml_key.evaluate_message(message)}
        if candidates & held:
            recovered.add(guess)
    assert recovered == set(), recovered
    people = {
        ml_key.blind_message(f"bp2|person|{name_key(s, 'SEYDOU')}|1980-01-01|MLI") for s in SURNAMES
    }
    assert not people & held  # the 17-name list reverses no person element

    # 3. online, each guess is one signed, budgeted, audited request to MR
    asked = 0
    for guess in [numbers[0], "M0000001", "M0000002", "M0000003", "M0000004", "M0000005"]:
        answer = httpx.post(
            f"{ml.cluster.national.url}/api/liaison/hits",
            headers=liaison_headers(ml),
            json={"kind": "document", "issuing_state": "MLI", "number": guess},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["hit"] is (guess == numbers[0])
        asked += 1
    refused = httpx.post(
        f"{ml.cluster.national.url}/api/liaison/hits",
        headers=liaison_headers(ml),
        json={"kind": "document", "issuing_state": "MLI", "number": "M0000006"},
        timeout=30,
    )
    assert refused.status_code == 429, refused.text
    assert asked == HIT_BUDGET
    evaluations = mr.cluster.national_rows(
        "SELECT detail FROM audit_event WHERE action = 'hit_evaluate'"
    )
    assert len(evaluations) == HIT_BUDGET
    for (detail,) in evaluations:
        detail = json.loads(detail) if isinstance(detail, str) else detail
        assert detail["agreement"] == "MR-ML-2026" and detail["version"] == 1
    asked_at_ml = ml.cluster.national_rows(
        "SELECT detail FROM audit_event WHERE action = 'hit_query' AND officer_id IS NOT NULL"
    )
    assert len(asked_at_ml) == HIT_BUDGET
    space = 1_000_000
    days = space / HIT_BUDGET
    print(
        f"brute force of {space:,} document numbers: {space:,} online requests to MR, "
        f"{days:,.0f} days at {HIT_BUDGET}/day ({space / 500:,.0f} days at the example's 500)"
    )
    assert days > 365


def test_every_identity_element_is_compared_on_both_sides(
    countries: dict[str, Country],
) -> None:
    mr, ml = countries["MRT"], countries["MLI"]
    h = timedelta(hours=1)
    at = BASE
    planted: dict[str, int] = {}

    def trip(number: str, other: str | None = None, **theirs: Any) -> None:
        nonlocal at
        cross(mr.post, "exit", number, at)
        cross(ml.post, "entry", other or number, at + h, **theirs)
        at += 3 * h

    for n in range(4):
        trip(f"G000000{n}")
    planted["matched"] = 4
    trip("N0000001", surname="KONATI")  # KONATE on one side, KONATI on the other
    trip("N0000002", given="SEYDOUBA")
    trip("N0000003", surname="KONTE")
    trip("B0000001", dob=date(1981, 1, 1))
    trip("B0000002", dob=date(1980, 1, 2))
    trip("T0000001", nationality="BFA")
    planted["data_mismatch"] = 6
    trip("P0000001", other="Q0000001")  # same person, another document at ML
    trip("P0000002", other="Q0000002")
    planted["other_document"] = 2
    # two exits nobody entered after, early enough for their window to have passed
    cross(mr.post, "exit", "X0000001", BASE - 6 * h, surname="TRAORE")
    cross(mr.post, "exit", "X0000002", BASE - 5 * h, surname="DIALLO", dob=date(1990, 5, 5))
    planted["exit_without_entry"] = 2
    _exchange(mr, ml)
    keys = mr.cluster.national_rows("SELECT count(*) FROM exchange_key")[0][0]
    assert keys == 4 + 6 + 2 + 2  # every MR crossing got its double-blinded keys back

    since = (BASE - timedelta(days=1)).date().isoformat()
    reports = {
        c.code: json.loads(cli(c.cluster.national_env, "reconcile", "--since", since).stdout)
        for c in (mr, ml)
    }
    for code, report in reports.items():
        counts = {k: v for k, v in report["counts"].items() if v}
        assert counts == planted, (code, counts)
        mismatches = [d for d in report["discrepancies"] if d["kind"] == "data_mismatch"]
        fields = sorted(tuple(d["fields"]) for d in mismatches)
        assert fields == sorted([("name",)] * 3 + [("date_of_birth",)] * 2 + [("nationality",)]), (
            code,
            fields,
        )
        assert all("pseudonyms differ" in d["reason"] for d in mismatches)
        others = [d for d in report["discrepancies"] if d["kind"] == "other_document"]
        assert all("different documents" in d["reason"] for d in others)

    def case_ids(country: Country) -> set[tuple[str, str]]:
        cases = httpx.get(
            f"{country.cluster.national.url}/api/liaison/discrepancies",
            headers=liaison_headers(country),
            timeout=30,
        ).json()
        return {(c["id"], c["kind"]) for c in cases}

    ours, theirs = case_ids(mr), case_ids(ml)
    assert len(ours) == 6 + 2 + 2
    assert ours == theirs  # the same case ids on both sides
