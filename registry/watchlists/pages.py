"""The watchlist import pages (national only): upload a CSV file with its photos, follow
the import's progress, read each rejected line in words; the CSV format is shown with its
allowed values. The import itself is ``registry.watchlists.csv_files``."""

from __future__ import annotations

import asyncio
import re
import secrets
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile

from registry.models import WATCHLIST_ACTIONS, WATCHLIST_KINDS, Officer, utcnow
from registry.node import Node
from registry.problems import Problem
from registry.vocabulary import WatchlistKind
from registry.watchlists.csv_files import WatchlistFileRefused, import_watchlist_csv
from registry.web.i18n import N_
from registry.web.messages import WATCHLIST_ACTIONS as WATCHLIST_ACTION_NAMES
from registry.web.messages import (
    label,
)
from registry.web.nav import ADMIN
from registry.web.render import redirect, render, translator

SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")
NATIONAL_ONLY_IMPORT = N_("Watchlist imports are done on the national node.")
# The watchlist CSV, column by column: (column, required, what it holds). Allowed values come
# from the models (kinds, actions); their meanings from registry.web.messages.
CSV_FORMAT = (
    ("external_id", True, N_("The source's own identifier of the entry")),
    ("kind", True, N_("What is listed")),
    ("surname", False, N_("Surname (required for a person)")),
    ("given_names", False, N_("Given names")),
    ("date_of_birth", False, N_("Date of birth, YYYY-MM-DD")),
    ("nationality", False, N_("Nationality, 3-letter ICAO code")),
    ("issuing_state", False, N_("Issuing state, 3-letter ICAO code (required with a number)")),
    ("document_number", False, N_("Document number (required for a document)")),
    ("reason", True, N_("Reason for listing")),
    ("action", True, N_("What the desk is told")),
    ("source", True, N_("Who published the list")),
    ("valid_from", False, N_("First day of validity, YYYY-MM-DD (default: today)")),
    ("valid_to", False, N_("Last day of validity, YYYY-MM-DD (default: none)")),
    ("photo", False, N_("File name of the portrait among the photos sent")),
)
KIND_NAMES: dict[WatchlistKind, str] = {
    WatchlistKind.PERSON: N_("A person"),
    WatchlistKind.DOCUMENT: N_("A document"),
}


def _csv_format(_: Any) -> list[dict[str, Any]]:
    """The CSV format as the import page shows it, with each column's allowed values."""
    allowed: dict[str, list[tuple[str, str]]] = {
        "kind": [(code, label(KIND_NAMES, code, _)) for code in WATCHLIST_KINDS],
        "action": [(code, label(WATCHLIST_ACTION_NAMES, code, _)) for code in WATCHLIST_ACTIONS],
    }
    return [
        {"column": column, "required": required, "text": _(text), "values": allowed.get(column)}
        for column, required, text in CSV_FORMAT
    ]


# Why the import rejected a row (``registry.watchlists.csv_rows`` and ``csv_files`` speak
# English): each part of the reason, by its pattern, in the reader's language.
REJECTION_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^(?P<column>\w+): required$"), N_("%(column)s: a value is required")),
    (
        re.compile(r"^(?P<column>\w+): (?P<value>'.*') is not one of (?P<allowed>.*)$"),
        N_("%(column)s: %(value)s is not one of %(allowed)s"),
    ),
    (
        re.compile(r"^(?P<column>\w+): (?P<value>'.*') is not a date \(YYYY-MM-DD\)$"),
        N_("%(column)s: %(value)s is not a date (YYYY-MM-DD)"),
    ),
    (
        re.compile(r"^(?P<column>\w+): (?P<value>'.*') is not a 3-letter ICAO code$"),
        N_("%(column)s: %(value)s is not a 3-letter ICAO code"),
    ),
    (
        re.compile(r"^external_id (?P<value>'.*') appears on lines (?P<lines>.*)$"),
        N_(
            "external_id %(value)s appears on lines %(lines)s: the file does not say which is right"
        ),
    ),
    (
        re.compile(r"^surname: a person entry needs a surname$"),
        N_("surname: a person entry needs a surname"),
    ),
    (re.compile(r"^surname: the name has no letters$"), N_("surname: the name has no letters")),
    (
        re.compile(r"^document_number: a document entry needs the document number$"),
        N_("document_number: a document entry needs the document number"),
    ),
    (
        re.compile(r"^document_number: the number has no letters or digits$"),
        N_("document_number: the number has no letters or digits"),
    ),
    (
        re.compile(r"^issuing_state: a document number needs its issuing state$"),
        N_("issuing_state: a document number needs its issuing state"),
    ),
    (
        re.compile(r"^photo: (?P<value>.+?) not found in .*$"),
        N_("photo: %(value)s is not among the photos sent"),
    ),
    (
        re.compile(r"^photo: (?P<value>.+?) shows .*exactly one face is needed$"),
        N_("photo: %(value)s must show exactly one face"),
    ),
)
REJECTED_PHOTO = N_("photo: the portrait was refused")
REJECTED_VALUE = N_("%(column)s: this value is not accepted")
REJECTED_LINE = N_("this line is not accepted")
REASON_PARTS = re.compile(r"; (?=(?:[a-z_]+:|external_id ))")


def rejection_text(reason: str, _: Any) -> str:
    """A row's rejection in the reader's language (the columns keep their CSV names)."""
    texts = []
    for part in REASON_PARTS.split(reason):
        for pattern, message in REJECTION_PATTERNS:
            if found := pattern.match(part):
                texts.append(_(message) % found.groupdict())
                break
        else:
            column = part.split(":", 1)[0]
            if column == "photo":
                texts.append(_(REJECTED_PHOTO))
            elif ":" in part and re.fullmatch(r"[a-z_]+", column):
                texts.append(_(REJECTED_VALUE) % {"column": column})
            else:
                texts.append(_(REJECTED_LINE))
    return "; ".join(texts)


def _job_view(job: ImportJob, _: Any) -> dict[str, Any]:
    """The job as its page and its progress poll show it, rejections translated."""
    view = job.view()
    if view["report"]:
        view["report"] = {
            **view["report"],
            "rejected": [
                {**item, "reason": rejection_text(item["reason"], _)}
                for item in view["report"]["rejected"]
            ],
        }
    return view


def _refuse_unless_national(node: Node) -> None:
    """A post's own watchlist entries never reach national: the import is national's."""
    if node.settings.role != "national":
        raise Problem(403, "Forbidden", detail=NATIONAL_ONLY_IMPORT)


IMPORT_BODY_LIMIT = 256 * 1024 * 1024


def _safe_name(name: str, default: str) -> str:
    cleaned = SAFE_NAME.sub("_", Path(name or default).name).lstrip(".")
    return cleaned[:120] or default


@dataclass
class ImportJob:
    """A watchlist import running in the background, polled by its page."""

    id: str
    file: str
    officer_id: str
    done: int = 0
    total: int = 0
    state: str = "running"
    report: dict[str, Any] | None = None
    error: str | None = None
    started_at: str = field(default_factory=lambda: utcnow().isoformat())
    task: asyncio.Task[None] | None = None

    def progress(self, done: int, total: int) -> None:
        self.done, self.total = done, total

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "file": self.file,
            "done": self.done,
            "total": self.total,
            "state": self.state,
            "report": self.report,
            "error": self.error,
        }


def _jobs(request: Request[Any, Any, Any]) -> dict[str, ImportJob]:
    state = request.app.state
    jobs = getattr(state, "web_import_jobs", None)
    if jobs is None:
        jobs = {}
        state.web_import_jobs = jobs
    return jobs


async def _run_import(
    node: Node, officer: Officer, job: ImportJob, folder: Path, csv_path: Path
) -> None:
    photos = folder / "photos"
    try:
        report = await import_watchlist_csv(
            node,
            csv_path,
            photos_dir=photos if photos.is_dir() else None,
            progress=job.progress,
            officer=officer,
        )
        job.report = report.as_dict()
        job.state = "done"
    except WatchlistFileRefused as exc:
        job.error, job.state = str(exc), "failed"
    except Exception as exc:  # noqa: BLE001 - the page reports the failure
        job.error, job.state = f"import failed: {type(exc).__name__}", "failed"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def _save_uploads(request: Request[Any, Any, Any], folder: Path) -> Path:
    form = await request.form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise Problem(422, "File missing", field="file", detail="choose a CSV file")
    csv_path = folder / _safe_name(upload.filename, "watchlist.csv")
    csv_path.write_bytes(await upload.read())
    photos = [item for item in form.getall("photos") if isinstance(item, UploadFile)]
    if photos:
        (folder / "photos").mkdir()
        for photo in photos:
            (folder / "photos" / _safe_name(photo.filename, "photo")).write_bytes(
                await photo.read()
            )
    return csv_path


class WatchlistImportPagesController(Controller):
    """/web/admin/watchlist: the import, at national."""

    path = "/admin"
    opt = {"roles": ADMIN}
    include_in_schema = False

    @get("/watchlist")
    async def watchlist(
        self, request: Request[Any, Any, Any], node: Node, officer: Officer
    ) -> Response[str]:
        _refuse_unless_national(node)
        jobs = sorted(_jobs(request).values(), key=lambda job: job.started_at, reverse=True)
        return await render(
            request,
            "admin_watchlist.html",
            active="admin_watchlist",
            jobs=[job.view() for job in jobs[:10]],
            columns=_csv_format(translator(request)),
        )

    @post("/watchlist/import", request_max_body_size=IMPORT_BODY_LIMIT)
    async def start_import(
        self, request: Request[Any, Any, Any], node: Node, officer: Officer
    ) -> Response[Any]:
        _refuse_unless_national(node)
        folder = Path(tempfile.mkdtemp(prefix="bp-watchlist-"))
        try:
            csv_path = await _save_uploads(request, folder)
        except Exception:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        job = ImportJob(secrets.token_urlsafe(9), csv_path.name, str(officer.id))
        job.task = asyncio.create_task(_run_import(node, officer, job, folder, csv_path))
        _jobs(request)[job.id] = job
        return redirect(f"/web/admin/watchlist/import/{job.id}")

    @get("/watchlist/import/{job_id:str}")
    async def import_page(
        self, request: Request[Any, Any, Any], officer: Officer, job_id: str
    ) -> Response[str]:
        job = _jobs(request).get(job_id)
        if job is None:
            raise Problem(404, "Not found", field="job_id", detail="no such import")
        return await render(
            request,
            "admin_import.html",
            active="admin_watchlist",
            job=_job_view(job, translator(request)),
        )

    @get("/watchlist/import/{job_id:str}/progress")
    async def import_progress(
        self, request: Request[Any, Any, Any], officer: Officer, job_id: str
    ) -> dict[str, Any]:
        job = _jobs(request).get(job_id)
        if job is None:
            raise Problem(404, "Not found", field="job_id", detail="no such import")
        return _job_view(job, translator(request))
