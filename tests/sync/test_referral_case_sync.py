"""Issue 16: a referral's case travels to national like the referral itself. A post (SQLite)
and its national node (PostgreSQL), real servers: the desk refers a crossing, the post's
protection officer follows the case up and closes it, ``borderpost sync now`` pushes the
steps, and national holds them once each (a second sync doubles nothing), with the post's
account that wrote them; an administrator's reset reaches national on the account row."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.cluster import (
    PASSWORD,
    Cluster,
    add_account,
    canonical,
    drop_cluster,
    mrz,
    start_cluster,
)
from tests.support.nodes import missing, pg_reachable
from tests.support.servers import bearer, cli

GOGUI = "MR-GOGUI"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    if not pg_reachable():
        missing("PostgreSQL is not reachable at 127.0.0.1:5432")
    started = start_cluster(tmp_path, (GOGUI,))
    try:
        yield started
    finally:
        drop_cluster(started)


def test_a_closed_case_reaches_national_once(cluster: Cluster) -> None:
    post = cluster.posts[GOGUI]
    for username, role in (("care", "protection"), ("chief", "admin")):
        add_account(post.env, username, role)
    url = post.server.url
    crossing = httpx.post(
        f"{url}/api/crossings",
        headers=post.headers(),
        json={"direction": "entry", "mrz": mrz("R0000016", surname="SY", given="AWA")},
    ).json()
    referral = httpx.post(
        f"{url}/api/crossings/{crossing['id']}/referrals",
        headers=post.headers(),
        json={"category": "separated_minor", "note": "separated from her mother at the bus"},
    ).json()["referral_id"]
    care = bearer(url, "care", PASSWORD)
    for step in (
        {"status": "in_follow_up", "note": "mother traced in Nioro"},
        {"status": "closed", "note": "handed over", "outcome": "reunited_with_family"},
    ):
        response = httpx.post(f"{url}/api/referrals/{referral}/follow-ups", headers=care, json=step)
        assert response.status_code == 201, response.text
    reset = httpx.post(
        f"{url}/api/officers/desk/password",
        headers=bearer(url, "chief", PASSWORD),
        json={"password": "temporary-pass-1"},
    )
    assert reset.status_code == 200, reset.text
    for _ in range(2):  # the second sync must double nothing
        cli(post.env, "sync", "now")
    rows = cluster.national_rows(
        "SELECT f.referral_id, f.status, f.outcome, f.origin, o.username "
        "FROM referral_follow_up f JOIN officer o ON o.id = f.officer_id "
        "ORDER BY f.created_at"
    )
    assert [(canonical(r[0]), r[1], r[2], r[3], r[4]) for r in rows] == [
        (referral, "in_follow_up", None, GOGUI, "care"),
        (referral, "closed", "reunited_with_family", GOGUI, "care"),
    ]
    status = cli(post.env, "sync", "status")
    assert '"backlog_records": 0' in status.stdout
    must_change = cluster.national_rows(
        "SELECT must_change_password FROM officer WHERE username = 'desk' AND home_post = :p",
        p=GOGUI,
    )
    assert must_change == [(True,)]
