"""Administration pages: accounts, posts (sync peers, on national), watchlist import with
progress, agreements, and sync status. Every change goes through the services that audit it
(``registry.officers.service``, ``sync.peers``, ``registry.watchlists``)."""

from __future__ import annotations

import asyncio
import re
import secrets
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from sqlalchemy import select

from registry.api.auth import node_of
from registry.api.params import RowId
from registry.models import WATCHLIST_ACTIONS, WATCHLIST_KINDS, Officer, utcnow
from registry.node import Node
from registry.officers.schemas import OfficerCreate
from registry.officers.service import (
    create_officer,
    forget_cached_sessions,
    list_officers,
    login_locks,
    new_password_hash,
    release_lock,
    reset_password,
    set_active,
)
from registry.outbox import enqueue
from registry.problems import Problem
from registry.schemas import decode_as
from registry.vocabulary import WatchlistKind
from registry.watchlists.csv_files import WatchlistFileRefused, import_watchlist_csv
from registry.web.errors import problem_sentence
from registry.web.i18n import LANGUAGES, N_, format_day
from registry.web.liaison import module_available
from registry.web.messages import (
    ROLE_NAMES,
    agreement_name,
    agreement_problem,
    agreement_term,
    label,
)
from registry.web.messages import WATCHLIST_ACTIONS as WATCHLIST_ACTION_NAMES
from registry.web.nav import ADMIN
from registry.web.render import forget_banner, language_of, redirect, render, translator

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


# What the account form's fields expect, said again when the form is refused for them.
ACCOUNT_FORM_HINTS = {
    "username": N_("3 to 64 characters: a-z, 0-9, dot, dash, underscore"),
    "password": N_("Password (10 characters or more)"),
}

RESET_TOO_SHORT = N_("The temporary password needs at least 10 characters.")
RESET_WHO = N_(
    "Choose another account of this post (your own password is changed on your account page)."
)
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


def _officer_rows(officers: list[Officer], _: Any) -> list[dict[str, Any]]:
    return [
        {
            "username": o.username,
            "full_name": o.full_name,
            "role": label(ROLE_NAMES, o.role, _),
            "home_post": o.home_post,
            "language": o.language,
            "active": o.active,
            "must_change": o.must_change_password,
        }
        for o in officers
    ]


async def _agreements(node: Node, _: Any, lang: str) -> list[dict[str, Any]]:
    """The node's data-sharing agreement (``agreement_file`` setting) with its status and,
    when either party revoked it, the revocation this node holds."""
    from sync.exchange.model import AgreementError
    from sync.exchange.parsing import load_agreement
    from sync.exchange.report import describe
    from sync.exchange.service import revocation_of, revocation_text
    from sync.exchange.signing import agreement_status

    path = getattr(node.settings, "agreement_file", "")
    if not path:
        return []
    today = utcnow().astimezone(node.settings.zone).date()
    try:
        agreement = load_agreement(path)
    except (AgreementError, OSError) as exc:
        return [{"file": Path(path).name, "error": str(exc)}]
    async with node.db.session() as session:
        revocation = await revocation_of(session, agreement)
    in_force, problems = agreement_status(
        agreement,
        today,
        revoked=revocation_text(revocation) if revocation is not None else None,
        development_urls=node.settings.agreement_development_urls,
    )
    return [
        {
            "file": Path(path).name,
            "id": agreement.id,
            "version": agreement.version,
            "in_force": in_force,
            "revoked": revocation is not None,
            "revoked_at": revocation.revoked_at.date().isoformat() if revocation else None,
            "revoked_by": (revocation.party or revocation.revoked_by) if revocation else None,
            "problems": [agreement_problem(p, _, partial(format_day, lang)) for p in problems],
            "rows": [
                {
                    "record_type": names[0],
                    "field": names[1],
                    "shared_as": agreement_term(row["shared_as"], _),
                }
                for row in describe(agreement)
                for names in [agreement_name(row["record_type"], row["field"], _)]
            ],
        }
    ]


async def _posts_page(
    request: Request[Any, Any, Any], issued: dict[str, Any] | None = None
) -> Response[str]:
    """The Posts page: enrolled peers with their key fingerprints, open enrolment codes
    (never the codes themselves) and, just after issuing one, the new code."""
    node = node_of(request)
    peers: list[dict[str, Any]] = []
    invitations: list[Any] = []
    if node.settings.role == "national":
        from sync.peers import key_fingerprint, list_peers, open_invitations

        async with node.db.session() as session:
            peers = [
                {"peer": p, "fingerprint": key_fingerprint(p.public_key)}
                for p in await list_peers(session)
            ]
            invitations = await open_invitations(session)
    return await render(
        request,
        "admin_posts.html",
        active="admin_peers",
        national=node.settings.role == "national",
        peers=peers,
        invitations=invitations,
        issued=issued,
    )


async def _officers_page(
    request: Request[Any, Any, Any],
    *,
    status_code: int = 200,
    error: str = "",
    values: dict[str, str] | None = None,
    reset_error: str = "",
    reset_username: str = "",
) -> Response[str]:
    """The accounts page; after a refused form, with its error and the values typed."""
    node = node_of(request)
    national = node.settings.role == "national"
    async with node.db.session() as session:
        found = await list_officers(session, post=None if national else node.settings.node_code)
    _ = translator(request)
    return await render(
        request,
        "admin_officers.html",
        status_code=status_code,
        active="admin_officers",
        officers=_officer_rows(found, _),
        roles=[(code, label(ROLE_NAMES, code, _)) for code in ROLE_NAMES],
        language_codes=LANGUAGES,
        national=national,
        locks=await login_locks(node),
        form_error=error,
        values=values or {},
        resettable=[
            o.username
            for o in found
            if o.home_post == node.settings.node_code and o.username != officer_username(request)
        ],
        reset_error=reset_error,
        reset_username=reset_username,
    )


def officer_username(request: Request[Any, Any, Any]) -> str:
    officer = getattr(request.state, "officer", None)
    return officer.username if officer is not None else ""


class AdminPagesController(Controller):
    """/web/admin"""

    path = "/admin"
    opt = {"roles": ADMIN}
    include_in_schema = False

    @get("/officers")
    async def officers(self, request: Request[Any, Any, Any], officer: Officer) -> Response[str]:
        return await _officers_page(request)

    @post("/officers")
    async def create(self, request: Request[Any, Any, Any], officer: Officer) -> Response[Any]:
        node = node_of(request)
        form = await request.form()
        fields = {
            name: str(form.get(name, "")).strip()
            for name in ("username", "full_name", "role", "password", "home_post", "language")
        }
        fields["password"] = str(form.get("password", ""))
        payload = {k: v for k, v in fields.items() if v}
        kept = {name: value for name, value in fields.items() if name != "password"}
        try:
            data = decode_as(msgspec.json.encode(payload), OfficerCreate)
            password_hash = await new_password_hash(data.password)
            async with node.db.write_transaction() as session:
                await create_officer(
                    session,
                    node=node,
                    actor=officer,
                    username=data.username,
                    full_name=data.full_name,
                    role=data.role,
                    password=data.password,
                    home_post=data.home_post,
                    language=data.language,
                    password_hash=password_hash,
                )
        except Problem as problem:
            # the form again, filled in, saying in the reader's language what is wrong
            error = problem_sentence(problem, translator(request), ACCOUNT_FORM_HINTS)
            return await _officers_page(
                request, status_code=problem.status, error=error, values=kept
            )
        return redirect("/web/admin/officers?done=officer_created")

    @post("/officers/password")
    async def reset(self, request: Request[Any, Any, Any], officer: Officer) -> Response[Any]:
        """Reset the password of another account of this node (audited): its sessions end
        and it must choose a new password at its next login. A refused form keeps the
        account chosen (never the password)."""
        node = node_of(request)
        _ = translator(request)
        form = await request.form()
        username = str(form.get("username", "")).strip()[:64]
        password = str(form.get("password", ""))[:200]
        error = ""
        if not username or username == officer.username:
            error = _(RESET_WHO)
        elif len(password) < 10:
            error = _(RESET_TOO_SHORT)
        if not error:
            try:
                await reset_password(node, actor=officer, username=username, password=password)
            except Problem as problem:
                if problem.status == 404 or problem.status == 409:
                    error = _(RESET_WHO)
                elif problem.status == 422:
                    error = _(RESET_TOO_SHORT)
                else:
                    raise
        if error:
            return await _officers_page(
                request, status_code=422, reset_error=error, reset_username=username
            )
        return redirect("/web/admin/officers?done=password_reset")

    @post("/logins/unlock")
    async def unlock(self, request: Request[Any, Any, Any], officer: Officer) -> Response[Any]:
        """Lift a login lockout (account or source address) before it ends; audited."""
        form = await request.form()
        await release_lock(
            node_of(request),
            actor=officer,
            scope=str(form.get("scope", "")),
            key=str(form.get("key", ""))[:256],
        )
        return redirect("/web/admin/officers?done=login_unlocked")

    @post("/officers/{username:str}/active")
    async def activate(
        self, request: Request[Any, Any, Any], officer: Officer, username: str
    ) -> Response[Any]:
        node = node_of(request)
        active = (await request.form()).get("active") == "1"
        if username == officer.username and not active:
            raise Problem(409, "Refused", field="username", detail="you cannot deactivate yourself")
        async with node.db.write_transaction() as session:
            await set_active(session, node=node, actor=officer, username=username, active=active)
        forget_cached_sessions(node)
        done = "officer_activated" if active else "officer_deactivated"
        return redirect(f"/web/admin/officers?done={done}")

    @get("/posts")
    async def posts(self, request: Request[Any, Any, Any], officer: Officer) -> Response[str]:
        return await _posts_page(request)

    @post("/posts/invite")
    async def invite(self, request: Request[Any, Any, Any], officer: Officer) -> Response[str]:
        """Issue a one-time enrolment code; the page shows it this once (never in a URL)."""
        node = node_of(request)
        if node.settings.role != "national":
            raise Problem(404, "Not found", field="node_code", detail="posts enrol on national")
        from sync.peers import DEFAULT_INVITATION_HOURS, issue_invitation

        form = await request.form()
        node_code = str(form.get("node_code", "")).strip().upper()
        try:
            hours = float(str(form.get("hours", "") or DEFAULT_INVITATION_HOURS))
        except ValueError as exc:
            raise Problem(422, "Invalid validity", field="hours", detail="give hours") from exc
        async with node.db.write_transaction() as session:
            code, invitation = await issue_invitation(
                session, node=node, officer=officer, node_code=node_code, hours=hours
            )
        issued = {"node_code": node_code, "code": code, "expires_at": invitation.expires_at}
        return await _posts_page(request, issued=issued)

    @post("/posts/{node_code:str}/{decision:str}")
    async def decide(
        self, request: Request[Any, Any, Any], officer: Officer, node_code: str, decision: str
    ) -> Response[Any]:
        node = node_of(request)
        statuses = {"approve": "approved", "revoke": "revoked", "remove": "removed"}
        if node.settings.role != "national" or decision not in statuses:
            raise Problem(404, "Not found", field="decision", detail="no such action here")
        from sync.peers import decide_peer, remove_peer

        async with node.db.write_transaction() as session:
            if decision == "remove":
                await remove_peer(session, node=node, officer=officer, node_code=node_code)
            else:
                peer = await decide_peer(
                    session,
                    node=node,
                    officer=officer,
                    node_code=node_code,
                    status=statuses[decision],
                )
                await enqueue(session, peer)
        return redirect(f"/web/admin/posts?done=peer_{statuses[decision]}")

    @get("/watchlist")
    async def watchlist(self, request: Request[Any, Any, Any], officer: Officer) -> Response[str]:
        _refuse_unless_national(node_of(request))
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
        self, request: Request[Any, Any, Any], officer: Officer
    ) -> Response[Any]:
        node = node_of(request)
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

    @get("/agreements")
    async def agreements(self, request: Request[Any, Any, Any], officer: Officer) -> Response[str]:
        node = node_of(request)
        available = module_available("sync.exchange.model")
        return await render(
            request,
            "admin_agreements.html",
            active="admin_agreements",
            available=available,
            agreements=(
                await _agreements(node, translator(request), language_of(request))
                if available
                else []
            ),
            setting="BORDERPOST_AGREEMENT_FILE",
        )

    @get("/sync")
    async def sync(self, request: Request[Any, Any, Any], officer: Officer) -> Response[str]:
        node = node_of(request)
        status: dict[str, Any] | None = None
        ingest: list[Any] = []
        if node.settings.role == "post":
            from sync.status import sync_status

            status = await sync_status(node)
            forget_banner(request)
        quarantine: list[Any] = []
        if node.settings.role != "post":
            from sync.models import IngestState
            from sync.quarantine import list_quarantine

            async with node.db.session() as session:
                ingest = list(
                    (await session.scalars(select(IngestState).order_by(IngestState.origin))).all()
                )
                quarantine = await list_quarantine(session)
        return await render(
            request,
            "admin_sync.html",
            active="admin_sync",
            status=status,
            ingest=ingest,
            quarantine=quarantine,
            today=date.today().isoformat(),
        )

    @post("/sync/quarantine/{entry_id:int}/{action:str}")
    async def resolve_quarantine(
        self, request: Request[Any, Any, Any], officer: Officer, entry_id: RowId, action: str
    ) -> Response[Any]:
        """Retry (through the normal ingest path) or discard a quarantined record; audited."""
        node = node_of(request)
        if node.settings.role == "post" or action not in ("retry", "discard"):
            raise Problem(404, "Not found", field="action", detail="no such action here")
        from sync.ingest.quarantine import QuarantineError, discard_entry, retry_entry

        resolve = retry_entry if action == "retry" else discard_entry
        try:
            async with node.db.write_transaction() as session:
                entry = await resolve(session, node=node, entry_id=entry_id, officer=officer)
        except QuarantineError as exc:
            raise Problem(
                404 if exc.code == "unknown" else 409,
                "Quarantine entry not pending",
                field="entry_id",
                detail=exc.detail,
            ) from exc
        done = {"retried": "quarantine_retried", "discarded": "quarantine_discarded"}
        return redirect(f"/web/admin/sync?done={done.get(entry.status, 'quarantine_kept')}")
