"""Watchlists over HTTP and through the CSV import/export (service and CLI), on SQLite and
PostgreSQL: versioned entries, role rules, file refusals, rejected lines, idempotent re-import,
portraits through the real face pipeline, alert adjudication and figures."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select

from registry.cli.watchlist import watchlist
from registry.models import Alert, AlertAdjudication, AuditEvent, OutboxEntry, WatchlistEntry
from registry.node import Node
from registry.watchlists.alerts import alerts_for_crossing, store_alerts
from registry.watchlists.content import watchlist_entry_id
from registry.watchlists.controller import register_watchlist_routes
from registry.watchlists.csv_files import (
    CSV_COLUMNS,
    WatchlistFileRefused,
    export_watchlist_csv,
    import_watchlist_csv,
)
from registry.watchlists.matcher import (
    WatchlistHit,
    WatchlistMatcher,
    matcher_of,
    refresh_periodically,
)
from tests.conftest import NodeUnderTest, unique_number

HEADER = ",".join(CSV_COLUMNS)


# ---------------------------------------------------------------- fixtures and helpers
def with_watchlists(node: NodeUnderTest) -> NodeUnderTest:
    """The post node with the watchlist routes and matcher, whether or not the app wires them
    yet (registry.app / registry.node are the lead's to change)."""
    app = node.client.app
    if not any(route.path == "/api/alerts" for route in app.routes):
        for controller in register_watchlist_routes():
            app.register(controller)
    if matcher_of(node.node) is None:
        node.node.watchlists = WatchlistMatcher()  # type: ignore[attr-defined]
    return node


@pytest.fixture
def watch_node(post_node: NodeUnderTest) -> NodeUnderTest:
    return with_watchlists(post_node)


def local_node(node: NodeUnderTest) -> Node:
    """The app's node on the test's own connection pool (the app's runs on another loop),
    sharing the app's matcher (thread-safe), for calling services directly."""
    local = replace(node.node, db=node.db)
    local.watchlists = matcher_of(node.node)  # type: ignore[attr-defined]
    return local


async def count(node: NodeUnderTest, model: type) -> int:
    async with node.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def write_csv(path: Path, rows: list[dict[str, str]], header: str = HEADER) -> Path:
    """A watchlist file: the header, then one line per row (missing columns empty)."""
    columns = header.split(",")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row.get(column, "") for column in columns])
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def person(external_id: str, **values: str) -> dict[str, str]:
    return {
        "external_id": external_id,
        "kind": "person",
        "surname": "OULD AHMED",
        "given_names": "MOHAMMED",
        "date_of_birth": "1980-01-01",
        "nationality": "MRT",
        "reason": "arrest warrant 2024/17",
        "action": "refer_secondary",
        "source": "national",
        "valid_from": "2024-01-01",
        **values,
    }


def stolen(external_id: str, number: str, **values: str) -> dict[str, str]:
    return {
        "external_id": external_id,
        "kind": "document",
        "issuing_state": "MLI",
        "document_number": number,
        "reason": "reported stolen",
        "action": "refer_secondary",
        "source": "INTERPOL SLTD",
        "valid_from": "2024-01-01",
        **values,
    }


async def run_cli(node: NodeUnderTest, *args: str) -> Result:
    """`borderpost watchlist ...` in-process, on the node's database, off the test loop."""
    settings = node.node.settings
    env = {
        "BORDERPOST_DATA_DIR": str(settings.data_dir),
        "BORDERPOST_DATABASE_URL": settings.db_url,
        "BORDERPOST_NODE_CODE": settings.node_code,
    }
    runner = CliRunner()
    return await asyncio.to_thread(runner.invoke, watchlist, list(args), env=env)


async def create_entry(node: NodeUnderTest, body: dict[str, Any], role: str) -> dict[str, Any]:
    response = await node.client.post("/api/watchlist/entries", json=body, headers=node.auth(role))
    assert response.status_code == 201, response.text
    return response.json()


PERSON_BODY = {
    "kind": "person",
    "surname": "OULD AHMED",
    "given_names": "MOHAMMED",
    "date_of_birth": "1980-01-01",
    "reason": "arrest warrant 2024/17",
    "action": "refer_secondary",
}


# ---------------------------------------------------------------- entries over HTTP
async def test_entries_are_versioned_never_edited(watch_node: NodeUnderTest) -> None:
    created = await create_entry(watch_node, PERSON_BODY, "supervisor")
    assert created["version"] == 1 and created["active"] is True
    entry_id = created["entry_id"]
    base = f"/api/watchlist/entries/{entry_id}"
    changed = await watch_node.client.post(
        f"{base}/versions",
        json={"change_reason": "warrant renewed", "valid_to": "2030-12-31"},
        headers=watch_node.auth("supervisor"),
    )
    assert changed.status_code == 201, changed.text
    assert changed.json()["version"] == 2 and changed.json()["valid_to"] == "2030-12-31"
    removed = await watch_node.client.post(
        f"{base}/deactivate", json={"reason": "warrant lifted"}, headers=watch_node.auth("admin")
    )
    assert removed.status_code == 201 and removed.json()["active"] is False
    again = await watch_node.client.post(
        f"{base}/deactivate", json={"reason": "warrant lifted"}, headers=watch_node.auth("admin")
    )
    assert again.status_code == 409
    history = await watch_node.client.get(f"{base}/history", headers=watch_node.auth("supervisor"))
    versions = history.json()
    assert [(v["version"], v["active"]) for v in versions] == [(1, True), (2, True), (3, False)]
    assert versions[0]["valid_to"] is None  # the first version is untouched
    assert len({v["id"] for v in versions}) == 3
    assert await count(watch_node, WatchlistEntry) == 3
    listed = await watch_node.client.get(
        "/api/watchlist/entries", headers=watch_node.auth("supervisor")
    )
    assert listed.json() == []
    with_inactive = await watch_node.client.get(
        "/api/watchlist/entries?include_inactive=true", headers=watch_node.auth("supervisor")
    )
    assert [e["version"] for e in with_inactive.json()] == [3]


async def test_created_entry_reaches_the_running_matcher(watch_node: NodeUnderTest) -> None:
    body = {"kind": "document", "issuing_state": "MLI", "document_number": "A 12-345"}
    created = await create_entry(
        watch_node, {**body, "reason": "stolen", "action": "notify"}, "supervisor"
    )
    matcher = matcher_of(watch_node.node)
    assert matcher is not None
    hits = matcher.match(
        day=date.today(), issuing_state="MLI", number_norm="A12345", name_key="", date_of_birth=None
    )
    assert [str(hit.entry_id) for hit in hits] == [created["entry_id"]]


async def test_invalid_entries_name_the_field(watch_node: NodeUnderTest) -> None:
    headers = watch_node.auth("supervisor")
    cases = [
        ({"kind": "document", "reason": "x", "action": "notify"}, "document_number"),
        ({"kind": "person", "reason": "x", "action": "notify"}, "surname"),
        ({**PERSON_BODY, "action": "arrest"}, "action"),
        ({**PERSON_BODY, "valid_from": "2025-01-01", "valid_to": "2024-01-01"}, "valid_to"),
        ({**PERSON_BODY, "nationality": "mauritania"}, "nationality"),
    ]
    for body, field in cases:
        response = await watch_node.client.post(
            "/api/watchlist/entries", json=body, headers=headers
        )
        assert response.status_code in (400, 422), (body, response.text)
        names = [p["name"] for p in response.json().get("invalid_params", [])]
        assert field in names, (body, response.json())
    assert await count(watch_node, WatchlistEntry) == 0


async def test_protect_entries_belong_to_protection(watch_node: NodeUnderTest) -> None:
    protect = {**PERSON_BODY, "action": "protect", "reason": "suspected trafficking victim"}
    refused = await watch_node.client.post(
        "/api/watchlist/entries", json=protect, headers=watch_node.auth("supervisor")
    )
    assert refused.status_code == 403
    created = await create_entry(watch_node, protect, "protection")
    ordinary = await create_entry(watch_node, PERSON_BODY, "supervisor")

    async def listed(role: str) -> set[str]:
        response = await watch_node.client.get(
            "/api/watchlist/entries", headers=watch_node.auth(role)
        )
        assert response.status_code == 200, response.text
        return {entry["entry_id"] for entry in response.json()}

    assert await listed("supervisor") == {ordinary["entry_id"]}
    assert await listed("protection") == {created["entry_id"]}
    assert await listed("admin") == {ordinary["entry_id"], created["entry_id"]}
    hidden = await watch_node.client.get(
        f"/api/watchlist/entries/{created['entry_id']}/history",
        headers=watch_node.auth("supervisor"),
    )
    assert hidden.status_code == 404
    escalate = await watch_node.client.post(
        f"/api/watchlist/entries/{ordinary['entry_id']}/versions",
        json={"change_reason": "now a protection case", "action": "protect"},
        headers=watch_node.auth("supervisor"),
    )
    assert escalate.status_code == 403
    for role in ("officer", "hq_analyst", "liaison"):
        response = await watch_node.client.get(
            "/api/watchlist/entries", headers=watch_node.auth(role)
        )
        assert response.status_code == 403


async def test_same_external_id_twice_is_a_conflict(watch_node: NodeUnderTest) -> None:
    body = {**PERSON_BODY, "external_id": "W-1", "source": "national"}
    created = await create_entry(watch_node, body, "admin")
    assert created["entry_id"] == str(watchlist_entry_id("national", "W-1"))
    again = await watch_node.client.post(
        "/api/watchlist/entries", json=body, headers=watch_node.auth("admin")
    )
    assert again.status_code == 409


# ---------------------------------------------------------------- CSV import and export
async def test_import_imports_good_rows_and_rejects_bad_ones_by_line(
    watch_node: NodeUnderTest, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "list.csv",
        [
            person("P-1"),  # line 2
            person("P-2", kind="persn"),  # line 3
            person("P-3", surname="", given_names=""),  # line 4
            stolen("D-1", "AB123456"),  # line 5
            stolen("D-2", ""),  # line 6
            person("P-4", date_of_birth="01/02/1980"),  # line 7
            person("P-5", action="arrest", valid_to="2020-13-01"),  # line 8
            stolen("D-3", "CD999", issuing_state=""),  # line 9
        ],
    )
    report = await import_watchlist_csv(local_node(watch_node), path)
    assert (report.imported, report.updated, report.unchanged) == (2, 0, 0)
    rejected = dict(report.rejected)
    assert sorted(rejected) == [3, 4, 6, 7, 8, 9]
    assert "kind" in rejected[3]
    assert "surname" in rejected[4]
    assert "document_number" in rejected[6]
    assert "date_of_birth" in rejected[7] and "YYYY-MM-DD" in rejected[7]
    assert "action" in rejected[8] and "valid_to" in rejected[8]
    assert "issuing_state" in rejected[9]
    assert await count(watch_node, WatchlistEntry) == 2
    assert await count(watch_node, OutboxEntry) >= 2


async def test_reimport_is_idempotent_and_changes_make_versions(
    watch_node: NodeUnderTest, tmp_path: Path
) -> None:
    rows = [person("P-1"), stolen("D-1", "AB123456"), stolen("D-2", "AB654321")]
    node = local_node(watch_node)
    first = await import_watchlist_csv(node, write_csv(tmp_path / "a.csv", rows))
    assert (first.imported, first.unchanged) == (3, 0)
    entries, outbox = await count(watch_node, WatchlistEntry), await count(watch_node, OutboxEntry)
    second = await import_watchlist_csv(node, write_csv(tmp_path / "b.csv", rows))
    assert (second.imported, second.updated, second.unchanged) == (0, 0, 3)
    assert await count(watch_node, WatchlistEntry) == entries
    assert await count(watch_node, OutboxEntry) == outbox
    rows[1] = stolen("D-1", "AB123456", reason="recovered then stolen again")
    third = await import_watchlist_csv(node, write_csv(tmp_path / "c.csv", rows))
    assert (third.imported, third.updated, third.unchanged) == (0, 1, 2)
    async with watch_node.db.session() as session:
        versions = (
            await session.scalars(
                select(WatchlistEntry.version).where(
                    WatchlistEntry.entry_id == watchlist_entry_id("INTERPOL SLTD", "D-1")
                )
            )
        ).all()
    assert sorted(versions) == [1, 2]


async def test_duplicate_external_ids_reject_every_copy(
    watch_node: NodeUnderTest, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "dup.csv",
        [
            person("P-1"),
            stolen("D-1", "X1"),
            person("P-1", reason="other"),
            person("P-2"),
            stolen("D-2", "X2"),
            stolen("D-2", "X2", kind="stolen"),  # a malformed copy still makes line 6 doubtful
        ],
    )
    report = await import_watchlist_csv(local_node(watch_node), path)
    assert report.imported == 2
    assert [line for line, _ in report.rejected] == [2, 4, 6, 7]
    assert all("lines 2, 4" in reason for line, reason in report.rejected if line in (2, 4))
    rejected = dict(report.rejected)
    assert "lines 6, 7" in rejected[6] and "kind" in rejected[7] and "lines 6, 7" in rejected[7]


async def test_file_not_in_utf8_is_refused_whole(watch_node: NodeUnderTest, tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    lines = [HEADER, "P-1,person,DIALLO,AMINATA,1990-01-01,MLI,,,warrant,notify,national,,,"]
    lines.append("P-2,person,TOURÉ,SÉKOU,1970-05-05,MLI,,,warrant,notify,national,,,")
    path.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    with pytest.raises(WatchlistFileRefused, match="line 3 is not valid UTF-8"):
        await import_watchlist_csv(local_node(watch_node), path)
    assert await count(watch_node, WatchlistEntry) == 0
    result = await run_cli(watch_node, "import", str(path))
    assert result.exit_code == 2, result.output
    assert "line 3" in result.output
    assert await count(watch_node, WatchlistEntry) == 0


async def test_missing_and_unknown_columns_refuse_the_file(
    watch_node: NodeUnderTest, tmp_path: Path
) -> None:
    header = "external_id,kind,surname,dob,reason,action"
    path = write_csv(tmp_path / "cols.csv", [person("P-1")], header=header)
    with pytest.raises(WatchlistFileRefused) as refused:
        await import_watchlist_csv(local_node(watch_node), path)
    message = str(refused.value)
    for column in ("given_names", "date_of_birth", "source", "valid_from", "document_number"):
        assert column in message
    assert "unknown columns: dob" in message
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(WatchlistFileRefused, match="empty"):
        await import_watchlist_csv(local_node(watch_node), empty)
    assert await count(watch_node, WatchlistEntry) == 0


async def test_cli_import_reports_rejects_and_exit_code(
    watch_node: NodeUnderTest, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "cli.csv",
        [person("P-1"), person("P-2", date_of_birth="1980-02-30"), stolen("D-1", "Z1")],
    )
    result = await run_cli(watch_node, "import", str(path))
    assert result.exit_code == 1, result.output
    assert "imported 2" in result.output and "rejected 1" in result.output
    assert "line 3: date_of_birth" in result.output
    again = await run_cli(watch_node, "import", str(path))
    assert again.exit_code == 1
    assert "imported 0" in again.output and "unchanged 2" in again.output
    clean = write_csv(tmp_path / "clean.csv", [person("P-1"), stolen("D-1", "Z1")])
    assert (await run_cli(watch_node, "import", str(clean))).exit_code == 0
    assert await count(watch_node, WatchlistEntry) == 2


async def test_export_round_trip(watch_node: NodeUnderTest, tmp_path: Path) -> None:
    rows = [
        person("P-1", valid_to="2031-01-01"),
        stolen("D-1", "AB-12 34"),
        person("P-2", surname="TOURÉ", given_names="SÉKOU", action="notify"),
    ]
    node = local_node(watch_node)
    await import_watchlist_csv(node, write_csv(tmp_path / "in.csv", rows))
    await create_entry(watch_node, {**PERSON_BODY, "surname": "KEITA"}, "supervisor")
    exported = tmp_path / "out.csv"
    result = await run_cli(watch_node, "export", str(exported))
    assert result.exit_code == 0, result.output
    assert "exported 4 entries" in result.output
    with exported.open(encoding="utf-8", newline="") as handle:
        records = list(csv.DictReader(handle))
    assert {r["external_id"] for r in records} >= {"P-1", "P-2", "D-1"}
    by_id = {r["external_id"]: r for r in records}
    assert by_id["P-2"]["surname"] == "TOURÉ" and by_id["P-1"]["valid_to"] == "2031-01-01"
    assert by_id["D-1"]["document_number"] == "AB-12 34" and by_id["D-1"]["photo"] == ""
    again = await import_watchlist_csv(node, exported)
    assert (again.imported, again.updated, again.unchanged, again.rejected) == (0, 0, 4, [])
    async with watch_node.db.write_transaction() as session:
        assert await export_watchlist_csv(session, tmp_path / "svc.csv", node=node) == 4
    assert (tmp_path / "svc.csv").read_text(encoding="utf-8") == exported.read_text("utf-8")


@pytest.mark.faces
async def test_photo_import_uses_the_real_face_pipeline(
    watch_node: NodeUnderTest, tmp_path: Path, faces_dir: Path
) -> None:
    path = write_csv(
        tmp_path / "faces.csv",
        [
            person("F-1", photo="obama_1.jpg"),
            person("F-2", photo="two_people.jpg"),
            person("F-3", photo="nobody_here.jpg"),
            person("F-4", photo="../faces/obama_2.jpg"),
        ],
    )
    seen: list[tuple[int, int]] = []
    report = await import_watchlist_csv(
        local_node(watch_node),
        path,
        photos_dir=faces_dir,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert report.imported == 1
    rejected = dict(report.rejected)
    assert sorted(rejected) == [3, 4, 5]
    assert "2 faces" in rejected[3] and "exactly one" in rejected[3]
    assert "not found" in rejected[4]
    assert "file name" in rejected[5]
    assert seen[-1] == (4, 4)
    async with watch_node.db.session() as session:
        stored = await session.scalar(select(WatchlistEntry))
    assert stored is not None and stored.face_template is not None
    assert len(stored.face_template) == 512
    no_dir = await import_watchlist_csv(local_node(watch_node), path)
    assert all("--photos" in reason for _, reason in no_dir.rejected)
    # the matcher reloaded from the database finds the face
    from biometrics.face import analyse_portrait

    probe = analyse_portrait((faces_dir / "obama_2.jpg").read_bytes()).encoding
    async with watch_node.db.session() as session:
        matcher = await WatchlistMatcher.load(session)
    hits = matcher.match(
        day=date.today(),
        issuing_state="MLI",
        number_norm="NONE",
        name_key="",
        date_of_birth=None,
        face_encoding=probe,
    )
    assert [(h.evidence, str(h.entry_id)) for h in hits] == [
        ("face", str(watchlist_entry_id("national", "F-1")))
    ]


async def test_matcher_refresh_sees_rows_written_elsewhere(
    watch_node: NodeUnderTest, tmp_path: Path
) -> None:
    async with watch_node.db.session() as session:
        matcher = await WatchlistMatcher.load(session)
        assert not await matcher.refresh(session)
    await run_cli(watch_node, "import", str(write_csv(tmp_path / "x.csv", [stolen("D", "Q1")])))
    async with watch_node.db.session() as session:
        assert await matcher.refresh(session)
        assert not await matcher.refresh(session)
    assert len(matcher) == 1


async def test_periodic_refresh_reaches_a_running_matcher(
    watch_node: NodeUnderTest, tmp_path: Path
) -> None:
    node = local_node(watch_node)
    node.watchlists = WatchlistMatcher()  # type: ignore[attr-defined]
    task = asyncio.create_task(refresh_periodically(node, every_seconds=0.05))
    try:
        await run_cli(watch_node, "import", str(write_csv(tmp_path / "r.csv", [stolen("D", "R1")])))
        for _ in range(100):
            if len(node.watchlists) == 1:  # type: ignore[attr-defined]
                break
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
    assert len(node.watchlists) == 1  # type: ignore[attr-defined]


async def test_cli_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    env = {
        "BORDERPOST_DATA_DIR": str(tmp_path),
        "BORDERPOST_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}",
    }
    path = write_csv(tmp_path / "x.csv", [stolen("D", "R1")])
    runner = CliRunner()
    imported = await asyncio.to_thread(runner.invoke, watchlist, ["import", str(path)], env=env)
    assert imported.exit_code == 2 and "borderpost db upgrade" in imported.output
    exported = await asyncio.to_thread(
        runner.invoke, watchlist, ["export", str(tmp_path / "out.csv")], env=env
    )
    assert exported.exit_code == 2


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


async def test_openapi_schema_still_builds(watch_node: NodeUnderTest) -> None:
    response = await watch_node.client.get("/schema/openapi.json")
    assert response.status_code == 200
    assert "/api/watchlist/entries/{entry_id}/versions" in response.json()["paths"]
