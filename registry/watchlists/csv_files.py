"""Watchlist CSV files: parse and check one, import it in one transaction, export the list.

Import (``parse_watchlist_csv`` then ``import_watchlist``; ``import_watchlist_csv`` does both).
The whole file is refused, and nothing is written, when it is not strict UTF-8 (the error names
the line), lacks a header or required columns, has unknown or repeated columns, or is not
parseable CSV. Otherwise bad rows are rejected with their line numbers and reasons, and the good
rows are written in ONE transaction. Every line sharing a repeated ``external_id`` is rejected,
since the file does not say which of them is right. A row identical to the current version is
left alone (``unchanged``); a different one becomes a new version (``updated``), which also
reactivates a deactivated entry that the source still lists. An empty ``valid_from`` keeps the
current one (today for a new entry) and an empty ``photo`` keeps the current face template and
listed portrait, so an exported file re-imports as unchanged. Photos are analysed with the real
face pipeline before the write transaction opens, so the node write lock is never held during
it; each keeps a small portrait of its face (``registry.photos.listed_portrait``) and the
templates of the node's other biometric modalities (``enrol_portrait``).
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from biometrics.engine import encode_template
from biometrics.plugins import BiometricModality
from registry.audit import audit
from registry.modalities import assess_others, other_modalities
from registry.models import Officer, WatchlistEntry
from registry.watchlists.content import EntryContent, build_version, content_of
from registry.watchlists.csv_rows import RowRejected, WatchlistRow, check_rows
from registry.watchlists.matcher import apply_to_matcher
from registry.watchlists.service import (
    ID_CHUNK,
    current_versions_query,
    iso_date,
    today_at_node,
    write_versions,
)

if TYPE_CHECKING:
    from registry.node import Node

CSV_COLUMNS = (
    "external_id",
    "kind",
    "surname",
    "given_names",
    "date_of_birth",
    "nationality",
    "issuing_state",
    "document_number",
    "reason",
    "action",
    "source",
    "valid_from",
    "valid_to",
    "photo",
)
REQUIRED_COLUMNS = tuple(column for column in CSV_COLUMNS if column != "photo")
Progress = Callable[[int, int], None]


class WatchlistFileRefused(Exception):
    """The whole file is refused; nothing was written."""


@dataclass
class WatchlistFile:
    """A parsed watchlist CSV file: its good rows and its rejected lines."""

    path: Path
    total: int
    rows: list[WatchlistRow]
    rejected: list[tuple[int, str]]


@dataclass
class ImportReport:
    """What an import did; ``written`` holds the new versions (to apply to the matcher)."""

    file: str
    total: int = 0
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    written: list[WatchlistEntry] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "rows": self.total,
            "imported": self.imported,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": [{"line": line, "reason": reason} for line, reason in self.rejected],
        }


def _decode_strictly(data: bytes) -> str:
    """UTF-8 (an initial BOM is allowed) or refusal naming the first bad line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise WatchlistFileRefused(
            f"line {line} is not valid UTF-8 (byte 0x{data[exc.start]:02x}); "
            "save the file as UTF-8 and import it again"
        ) from exc


def _check_header(header: list[str] | None) -> None:
    if not header:
        raise WatchlistFileRefused("the file is empty: the first line must name the columns")
    names = [name.strip() for name in header]
    repeated = sorted({name for name in names if names.count(name) > 1})
    missing = [column for column in REQUIRED_COLUMNS if column not in names]
    unknown = [name for name in names if name not in CSV_COLUMNS]
    problems = []
    if missing:
        problems.append(f"missing required columns: {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown columns: {', '.join(unknown)}")
    if repeated:
        problems.append(f"repeated columns: {', '.join(repeated)}")
    if problems:
        raise WatchlistFileRefused("; ".join(problems))


def _read_records(text: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and (starting line, fields) of every non-blank record."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        _check_header(header)
        assert header is not None
        records = []
        line = reader.line_num + 1
        for fields_ in reader:
            if any(value.strip() for value in fields_):
                records.append((line, fields_))
            line = reader.line_num + 1
    except csv.Error as exc:
        raise WatchlistFileRefused(f"line {reader.line_num}: not readable CSV ({exc})") from exc
    return [name.strip() for name in header], records


@dataclass(frozen=True)
class EnrolledPortrait:
    """What a watchlist entry keeps of the portrait it is enrolled from: the face template,
    the small listed portrait, and the templates of the node's other biometric modalities
    (``registry.modalities``) by entry-point name, or None when it has none."""

    face_template: bytes
    listed_portrait: bytes
    modality_templates: dict[str, Any] | None


def enrol_portrait(
    data: bytes, others: Mapping[str, BiometricModality] | None = None, *, name: str = "photo"
) -> EnrolledPortrait:
    """A watchlist portrait's templates (CPU-bound): the face pipeline's (exactly one face
    is needed, else RowRejected), then each other modality's on the same sample and decoded
    image (``registry.modalities.assess_others``: a plug-in that raises is skipped)."""
    # The face pipeline (dlib and its models) is heavy: loaded only when a row names a photo.
    from biometrics.face import analyse_image
    from biometrics.imaging import ImageRejected
    from registry.photos import decode_listed_photo, listed_portrait

    try:
        image = decode_listed_photo(data)
    except ImageRejected as exc:
        raise RowRejected(f"photo: {name}: {exc.message}") from exc
    analysis = analyse_image(image)
    if analysis.faces_found != 1 or analysis.encoding is None:
        found = "no face" if analysis.faces_found == 0 else f"{analysis.faces_found} faces"
        raise RowRejected(f"photo: {name} shows {found}; exactly one face is needed")
    templates = assess_others(others or {}, data, decoded=image)
    return EnrolledPortrait(
        encode_template(analysis.encoding),
        listed_portrait(image, analysis),
        {found.name: found.as_json() for found in templates} or None,
    )


def _face_of_photo(
    photos_dir: Path | None, name: str, others: Mapping[str, BiometricModality] | None
) -> EnrolledPortrait:
    """The templates and listed portrait of a photo named by a row (``enrol_portrait``), or
    RowRejected saying what is wrong."""
    if photos_dir is None:
        raise RowRejected(f"photo: {name!r} given but no photos directory (--photos)")
    if Path(name).name != name or name.startswith("."):
        raise RowRejected(f"photo: {name!r} must be a file name inside the photos directory")
    path = photos_dir / name
    if not path.is_file():
        raise RowRejected(f"photo: {name} not found in {photos_dir}")
    return enrol_portrait(path.read_bytes(), others, name=name)


def _duplicates(header: list[str], records: list[tuple[int, list[str]]]) -> dict[int, str]:
    """Rejections for every line whose (source, external_id) appears more than once,
    counting malformed lines too: the file does not say which copy is right."""
    lines: dict[tuple[str, str], list[int]] = defaultdict(list)
    for line, values in records:
        raw = dict(zip(header, values, strict=False))
        external_id = raw.get("external_id", "").strip()
        if external_id:
            lines[(raw.get("source", "").strip(), external_id)].append(line)
    rejected = {}
    for (_, external_id), where in lines.items():
        if len(where) > 1:
            listed = ", ".join(str(line) for line in where)
            for line in where:
                rejected[line] = f"external_id {external_id!r} appears on lines {listed}"
    return rejected


def parse_watchlist_csv(
    path: Path,
    *,
    photos_dir: Path | None = None,
    progress: Progress | None = None,
    today: date | None = None,
    modalities: Mapping[str, BiometricModality] | None = None,
) -> WatchlistFile:
    """Read and check a watchlist CSV file (slow with photos; touches no database).
    ``modalities``: the node's other biometric modalities, whose templates each photo gives
    too (``registry.modalities.other_modalities``).

    Raises WatchlistFileRefused for file-level problems.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise WatchlistFileRefused(f"cannot read {path}: {exc.strerror}") from exc
    header, records = _read_records(_decode_strictly(data))
    today = today or date.today()
    report = progress or (lambda done, total: None)
    total = len(records)
    report(0, total)
    rows, rejected = check_rows(header, records, today)
    duplicated = _duplicates(header, records)
    rejected = [
        (line, f"{reason}; {duplicated[line]}" if line in duplicated else reason)
        for line, reason in rejected
    ]
    rejected += [(row.line, duplicated[row.line]) for row in rows if row.line in duplicated]
    rows = [row for row in rows if row.line not in duplicated]
    done = total - sum(1 for row in rows if row.photo)
    report(done, total)
    good = []
    for row in rows:
        try:
            good.append(_with_photo(row, photos_dir, modalities))
        except RowRejected as exc:
            rejected.append((row.line, str(exc)))
        if row.photo:
            done += 1
            report(done, total)
    return WatchlistFile(path, total, good, sorted(rejected))


def _with_photo(
    row: WatchlistRow, photos_dir: Path | None, others: Mapping[str, BiometricModality] | None
) -> WatchlistRow:
    if not row.photo:
        return row
    enrolled = _face_of_photo(photos_dir, row.photo, others)
    content = replace(
        row.content,
        face_template=enrolled.face_template,
        listed_portrait=enrolled.listed_portrait,
        modality_templates=enrolled.modality_templates,
    )
    return replace(row, content=content)


def _imported_content(row: WatchlistRow, current: WatchlistEntry | None) -> EntryContent:
    """The row's content, keeping the current valid_from, template and listed portrait where
    the row gives none."""
    content = row.content
    if current is None:
        return content
    if row.keeps_valid_from:
        content = replace(content, valid_from=current.valid_from)
    if content.face_template is None:
        content = replace(
            content,
            face_template=current.face_template,
            listed_portrait=current.listed_portrait,
            modality_templates=current.modality_templates,
        )
    return content


async def _current_versions_of(
    session: AsyncSession, entry_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, WatchlistEntry]:
    found: dict[uuid.UUID, WatchlistEntry] = {}
    for start in range(0, len(entry_ids), ID_CHUNK):
        chunk = entry_ids[start : start + ID_CHUNK]
        query = current_versions_query().where(col(WatchlistEntry.entry_id).in_(chunk))
        for entry in (await session.scalars(query)).all():
            found[entry.entry_id] = entry
    return found


async def import_watchlist(
    session: AsyncSession, *, node: Node, officer: Officer | None, parsed: WatchlistFile
) -> ImportReport:
    """Write the good rows of a parsed file in the caller's (one) write transaction."""
    report = ImportReport(file=parsed.path.name, total=parsed.total, rejected=parsed.rejected)
    current = await _current_versions_of(session, [row.entry_id for row in parsed.rows])
    change_reason = f"import from {parsed.path.name}"[:500]
    for row in parsed.rows:
        existing = current.get(row.entry_id)
        content = _imported_content(row, existing)
        if existing is not None and content == content_of(existing):
            report.unchanged += 1
            continue
        report.written.append(
            build_version(
                content,
                entry_id=row.entry_id,
                version=existing.version + 1 if existing else 1,
                origin=node.settings.node_code,
                external_id=row.external_id,
                source=row.source,
                officer=officer,
                change_reason=change_reason,
            )
        )
        if existing is None:
            report.imported += 1
        else:
            report.updated += 1
    if report.written:
        await write_versions(
            session,
            node=node,
            officer=officer,
            rows=report.written,
            action="import",
            purpose="watchlist_import",
            detail={"file": parsed.path.name, **report.as_dict()},
        )
    return report


async def import_watchlist_csv(
    node: Node,
    path: Path,
    *,
    photos_dir: Path | None = None,
    progress: Progress | None = None,
    officer: Officer | None = None,
) -> ImportReport:
    """Check the file (photos analysed off the event loop), then write in one transaction.

    The node's matcher, if any, learns the new versions after the commit.
    """
    today = today_at_node(node)
    parsed = await asyncio.to_thread(
        parse_watchlist_csv,
        path,
        photos_dir=photos_dir,
        progress=progress,
        today=today,
        modalities=other_modalities(node.settings),
    )
    async with node.db.write_transaction() as session:
        report = await import_watchlist(session, node=node, officer=officer, parsed=parsed)
    apply_to_matcher(node, report.written)
    return report


def _csv_line(entry: WatchlistEntry) -> list[str]:
    values = {
        "external_id": entry.external_id,
        "kind": entry.kind,
        "surname": entry.surname,
        "given_names": entry.given_names,
        "date_of_birth": iso_date(entry.date_of_birth) or "",
        "nationality": entry.nationality or "",
        "issuing_state": entry.issuing_state or "",
        "document_number": entry.document_number or "",
        "reason": entry.reason,
        "action": entry.action,
        "source": entry.source,
        "valid_from": entry.valid_from.isoformat(),
        "valid_to": iso_date(entry.valid_to) or "",
        "photo": "",
    }
    return [values[column] for column in CSV_COLUMNS]


async def export_watchlist_csv(
    session: AsyncSession, path: Path, *, node: Node, officer: Officer | None = None
) -> int:
    """Write the current active versions as CSV (UTF-8, the import's columns, no photos).

    The file is replaced atomically; the export is audited. Returns the number of entries.
    """
    query = (
        current_versions_query(portraits=False)
        .where(col(WatchlistEntry.active).is_(True))
        .order_by(WatchlistEntry.source, WatchlistEntry.external_id)
    )
    entries = list((await session.scalars(query)).all())
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(_csv_line(entry) for entry in entries)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_text(buffer.getvalue(), encoding="utf-8", newline="")
    os.replace(temp, path)
    await audit(
        session,
        origin=node.settings.node_code,
        officer=officer,
        action="export",
        record_type="watchlist_entry",
        record_id=path.name,
        purpose="watchlist_export",
        detail={"entries": len(entries), "results": [str(entry.id) for entry in entries]},
    )
    return len(entries)
