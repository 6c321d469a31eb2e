"""Every installed biometric modality runs at registration (issue 15), on SQLite and PostgreSQL.

Two plug-ins are "installed" beside the built-in ``face`` (a site directory with their
``*.dist-info`` put on ``sys.path``, as pip would): the fake iris of ``tests/plugins`` (its
template is the sha256 of the sample, a match only for the same bytes) and ``exploding``,
which raises in every call, and ``brittle``, which extracts a template but raises when asked
to identify it. The node discovers both at start; a registration with a portrait
stores the iris template beside the photo and none of the exploding one, and still
registers; a watchlist entry enrolled from a portrait keeps its iris template, and the same
portrait bytes at the desk raise an alert whose evidence is ``iris``, adjudicated as any other.
A new version of the entry keeps the template; removing the entry takes it out of the gallery.
"""

from __future__ import annotations

import hashlib
import html
import importlib
import json
import logging
import sys
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from biometrics.quality import QualityReport
from registry.models import BiometricTemplate, OutboxEntry, Photo, WatchlistEntry
from registry.watchlists.csv_files import import_watchlist_csv
from tests.support.factories import td3
from tests.support.nodes import (
    NODE_CODE,
    PASSWORD,
    NodeUnderTest,
    SeededBackend,
    app_under_test,
    unique_number,
)
from tests.support.plugins import install_fake_iris, install_plugin
from tests.support.watchlists import local_node, person, with_watchlists, write_csv
from tests.support.web_client import CSRF_META, LOGIN_TOKEN

pytestmark = pytest.mark.faces


class ExplodingModality:
    """A plug-in that loads, conforms to the Protocol, and raises in every call."""

    name = "exploding"
    modality = "FINGER"
    match_threshold = 0.5

    def quality(self, sample: bytes) -> QualityReport:
        raise RuntimeError("quality exploded")

    def extract_template(self, sample: bytes) -> bytes | None:
        raise RuntimeError("extract exploded")

    def match(self, a: bytes, b: bytes) -> float:
        raise RuntimeError("match exploded")

    def identify(
        self, probe: bytes, gallery: Mapping[str, bytes], k: int
    ) -> list[tuple[str, float]]:
        raise RuntimeError("identify exploded")


class BrittleModality(ExplodingModality):
    """A plug-in that extracts templates but raises when asked to identify."""

    name = "brittle"

    def quality(self, sample: bytes) -> QualityReport:
        return QualityReport(score=50, passed=True, reasons=[], metrics={})

    def extract_template(self, sample: bytes) -> bytes | None:
        return b"brittle"


@pytest.fixture
async def modal_node(
    seeded_backend: SeededBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[NodeUnderTest]:
    """A post with the fake iris, the exploding and the brittle plug-ins installed before it
    starts."""
    site = install_fake_iris(tmp_path / "site-packages")
    install_plugin(site, "exploding", f"{__name__}:ExplodingModality")
    install_plugin(site, "brittle", f"{__name__}:BrittleModality")
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    try:
        async with app_under_test(seeded_backend, tmp_path) as node:
            yield with_watchlists(node)
    finally:
        sys.modules.pop("borderpost_fake_iris", None)
        importlib.invalidate_caches()


async def register(node: NodeUnderTest, photo: Path, number: str | None = None) -> dict[str, Any]:
    body = {
        "direction": "entry",
        "mrz": td3(number or unique_number()),
        "photo_quality_override": "test portrait",
    }
    response = await node.client.post(
        "/api/crossings",
        headers=node.auth("officer"),
        data={"crossing": json.dumps(body)},
        files={"photo": (photo.name, photo.read_bytes(), "image/jpeg")},
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def templates_of(node: NodeUnderTest, sha256: str) -> dict[str, BiometricTemplate]:
    async with node.db.session() as session:
        rows = (
            await session.scalars(
                select(BiometricTemplate).where(BiometricTemplate.photo_sha256 == sha256)
            )
        ).all()
    return {row.modality: row for row in rows}


async def test_every_modality_runs_and_a_failing_one_is_skipped(
    modal_node: NodeUnderTest, faces_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:

    assert set(modal_node.node.watchlists.modalities) == {"iris", "exploding", "brittle"}
    photo = faces_dir / "obama_1.jpg"
    with caplog.at_level(logging.WARNING, logger="borderpost.biometrics"):
        crossing = await register(modal_node, photo)
    sha = crossing["photo_sha256"]
    stored = await templates_of(modal_node, sha)
    # the exploding plug-in was skipped, and the registration made
    assert set(stored) == {"iris", "brittle"}
    iris = stored["iris"]
    assert iris.template == hashlib.sha256(photo.read_bytes()).digest()
    assert (iris.modality_type, iris.quality_score, iris.origin) == ("IRIS", 100, NODE_CODE)
    assert "'exploding' failed" in caplog.text
    async with modal_node.db.session() as session:
        face = await session.get(Photo, sha)
        outbox = (
            await session.scalars(
                select(OutboxEntry.record_type).where(OutboxEntry.record_id == str(iris.id))
            )
        ).all()
    assert face is not None and face.face_encoding is not None  # the primary one, unchanged
    assert outbox == ["biometric_template"]  # it travels to national
    again = await register(modal_node, photo)  # the same photo again: no second template
    assert again["photo_sha256"] == sha and len(await templates_of(modal_node, sha)) == 2


async def test_a_listed_portrait_raises_an_iris_alert(
    modal_node: NodeUnderTest, tmp_path: Path, faces_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    node = local_node(modal_node)
    listing = [person("I-1", surname="NOBODY", given_names="KNOWN", photo="obama_1.jpg")]
    report = await import_watchlist_csv(
        node, write_csv(tmp_path / "a.csv", listing), photos_dir=faces_dir
    )
    assert report.imported == 1, report.rejected
    async with modal_node.db.session() as session:
        entry = await session.scalar(select(WatchlistEntry))
    assert entry is not None and set(entry.modality_templates or {}) == {"iris", "brittle"}

    with caplog.at_level(logging.WARNING, logger="borderpost.biometrics"):
        same = await register(modal_node, faces_dir / "obama_1.jpg")
    assert "'brittle' failed to identify" in caplog.text  # and the registration went on
    assert sorted(a["evidence"] for a in same["alerts"]) == ["face", "iris"]
    other = await register(modal_node, faces_dir / "obama_2.jpg")  # same face, other bytes
    assert [a["evidence"] for a in other["alerts"]] == ["face"]

    listed = await modal_node.client.get("/api/alerts", headers=modal_node.auth("supervisor"))
    iris = [a for a in listed.json() if a["evidence"] == "iris"]
    assert len(iris) == 1 and iris[0]["score"] == 100.0
    form = await modal_node.client.get("/web/login")
    token = LOGIN_TOKEN.search(form.text)
    assert token is not None
    login = {"username": "supervisor", "password": PASSWORD, "csrf_token": token.group(1)}
    await modal_node.client.post("/web/login", data=login)
    account = await modal_node.client.get("/web/account")
    csrf = CSRF_META.search(account.text)
    assert csrf is not None  # the pages in French, whatever an earlier test chose for this account
    french = {"language": "fr", "csrf_token": csrf.group(1)}
    assert (await modal_node.client.post("/web/language", data=french)).status_code < 400
    page = await modal_node.client.get("/web/alerts")
    assert page.status_code == 200 and "Biométrie : iris" in html.unescape(page.text)
    adjudicated = await modal_node.client.post(
        f"/api/alerts/{iris[0]['id']}/adjudication",
        json={"outcome": "dismissed", "reason": "different person, checked in person"},
        headers=modal_node.auth("supervisor"),
    )
    assert adjudicated.status_code == 201, adjudicated.text
    figures = await modal_node.client.get(
        "/api/alerts/figures", headers=modal_node.auth("supervisor")
    )
    assert figures.status_code == 200, figures.text
    counts = {"raised": 1, "confirmed": 0, "dismissed": 1, "open": 0}
    assert figures.json()["modalities"] == {"iris": counts}

    # A new version (no photo in the row) keeps the template; a removal drops it.
    changed = [person("I-1", surname="NOBODY", given_names="KNOWN", reason="still wanted")]
    report = await import_watchlist_csv(node, write_csv(tmp_path / "b.csv", changed))
    assert report.updated == 1
    kept = await register(modal_node, faces_dir / "obama_1.jpg")
    assert "iris" in [a["evidence"] for a in kept["alerts"]]
    removed = await modal_node.client.post(
        f"/api/watchlist/entries/{entry.entry_id}/deactivate",
        json={"reason": "listing withdrawn"},
        headers=modal_node.auth("supervisor"),
    )
    assert removed.status_code == 201, removed.text
    gone = await register(modal_node, faces_dir / "obama_1.jpg")
    assert gone["alerts"] == []
