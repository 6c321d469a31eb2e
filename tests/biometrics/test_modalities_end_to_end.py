"""A second biometric modality end to end (issue 15): national on PostgreSQL and a post on
SQLite, real servers on 127.0.0.1, with the fake iris plug-in of ``tests/plugins`` installed
for every node process (a site directory with its ``*.dist-info`` on ``PYTHONPATH``, as pip
would install it) and no registry code that knows it.

A watchlist entry enrolled at national from a portrait keeps the portrait's iris template; it
comes down to the post with the entry; a registration at the post with the same portrait bytes
raises an alert whose evidence is ``iris``; the iris template the post stored beside the
photo reaches national with the photo, and both ends hold the same templates and alerts.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.cluster import Cluster, canonical, drop_cluster, mrz, start_cluster
from tests.support.nodes import missing, pg_reachable
from tests.support.plugins import install_fake_iris
from tests.support.servers import cli

GOGUI = "MR-GOGUI"
LISTING = (
    "external_id,kind,surname,given_names,date_of_birth,nationality,issuing_state,"
    "document_number,reason,action,source,valid_from,valid_to,photo\n"
    "I1,person,LISTED,IRIS,,,,,wanted for questioning,refer_secondary,interpol,,,listed.png\n"
)


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cluster]:
    if not pg_reachable():
        missing("PostgreSQL is not reachable at 127.0.0.1:5432")
    site = install_fake_iris(tmp_path / "site-packages")
    # every node process (servers and CLI) inherits the environment the cluster is built in
    monkeypatch.setenv("PYTHONPATH", str(site))
    started = start_cluster(tmp_path, (GOGUI,))
    try:
        yield started
    finally:
        drop_cluster(started)


def _register(cluster: Cluster, photo: bytes, number: str) -> dict[str, Any]:
    post = cluster.posts[GOGUI]
    body = {"direction": "entry", "mrz": mrz(number), "photo_quality_override": "e2e portrait"}
    response = httpx.post(
        f"{post.server.url}/api/crossings",
        headers=post.headers(),
        data={"crossing": json.dumps(body)},
        files={"photo": ("portrait.png", photo, "image/png")},
        timeout=60,
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_an_iris_listing_reaches_the_post_and_its_hit_and_templates_reach_national(
    cluster: Cluster, tmp_path: Path, astronaut_path: Path
) -> None:
    portrait = astronaut_path.read_bytes()
    iris_template = hashlib.sha256(portrait).hexdigest()
    photos = tmp_path / "listed-photos"
    photos.mkdir()
    (photos / "listed.png").write_bytes(portrait)
    listing = tmp_path / "iris.csv"
    listing.write_text(LISTING, encoding="utf-8")
    cli(cluster.national_env, "watchlist", "import", str(listing), "--photos", str(photos))
    listed = cluster.national_rows(
        "SELECT modality_templates FROM watchlist_entry WHERE external_id = 'I1'"
    )
    assert len(listed) == 1
    templates = listed[0][0]
    assert set(templates) == {"iris"}, "the national CLI did not run the installed plug-in"
    assert templates["iris"]["template"] == iris_template
    assert templates["iris"]["modality_type"] == "IRIS"

    post = cluster.posts[GOGUI]
    cli(post.env, "sync", "now")
    pulled = post.rows("SELECT modality_templates FROM watchlist_entry WHERE external_id = 'I1'")
    assert [json.loads(row[0]) for row in pulled] == [templates]

    hit = None
    for attempt in range(40):  # the running server picks the entry up within its refresh period
        crossing = _register(cluster, portrait, f"I{attempt:07d}")
        if "iris" in [alert["evidence"] for alert in crossing["alerts"]]:
            hit = crossing
            break
        asyncio.run(asyncio.sleep(0.25))
    assert hit is not None, "the post never matched the iris template pulled from national"
    assert "face" in [alert["evidence"] for alert in hit["alerts"]]
    other = _register(cluster, portrait[:-1] + b"\x00", "J0000001")  # other bytes: no iris hit
    assert "iris" not in [alert["evidence"] for alert in other["alerts"]]

    at_post = sorted(
        (canonical(i), sha, modality, bytes(template).hex())
        for i, sha, modality, template in post.rows(
            "SELECT id, photo_sha256, modality, template FROM biometric_template"
        )
    )
    assert (hit["photo_sha256"], "iris", iris_template) in [row[1:] for row in at_post]
    cli(post.env, "sync", "now")
    at_national = sorted(
        (canonical(i), sha, modality, bytes(template).hex())
        for i, sha, modality, template in cluster.national_rows(
            "SELECT id, photo_sha256, modality, template FROM biometric_template WHERE origin = :o",
            o=GOGUI,
        )
    )
    # one photo (the other bytes decode to the same portrait, stored once): one template
    assert at_national == at_post and len(at_post) == 1
    alerts = cluster.national_rows(
        "SELECT crossing_id FROM alert WHERE origin = :o AND evidence = 'iris'", o=GOGUI
    )
    assert [canonical(row[0]) for row in alerts] == [hit["id"]]
    posted = post.rows("SELECT count(*) FROM alert WHERE evidence = 'iris'")
    assert posted == [(1,)]
    quarantined = cluster.national_rows("SELECT count(*) FROM sync_quarantine")
    assert quarantined == [(0,)]
