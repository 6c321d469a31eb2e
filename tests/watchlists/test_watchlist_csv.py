"""The watchlist's CSV import and export, through the service and the CLI, on SQLite and
PostgreSQL: file refusals, rejected lines, idempotent re-import, versions from changes,
portraits through the real face pipeline, the export round trip."""

from __future__ import annotations

import asyncio
import csv
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from registry.cli.watchlist import watchlist
from registry.models import OutboxEntry, WatchlistEntry
from registry.watchlists.content import watchlist_entry_id
from registry.watchlists.csv_files import (
    WatchlistFileRefused,
    export_watchlist_csv,
    import_watchlist_csv,
)
from registry.watchlists.matcher import WatchlistMatcher
from tests.support.nodes import NodeUnderTest
from tests.support.watchlists import (
    HEADER,
    PERSON_BODY,
    count,
    create_entry,
    local_node,
    person,
    run_cli,
    stolen,
    write_csv,
)


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
