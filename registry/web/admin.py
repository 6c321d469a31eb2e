"""Administration pages: accounts, posts (sync peers, on national), agreements, and sync
status (the watchlist import is ``registry.watchlists.pages``). Every change goes through
the services that audit it (``registry.officers.service``, ``sync.peers``)."""

from __future__ import annotations

from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.api.params import RowId
from registry.models import Officer, utcnow
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
from registry.web.nav import ADMIN
from registry.web.render import forget_banner, language_of, redirect, render, translator
from sync.exchange.model import AgreementError
from sync.exchange.parsing import load_agreement
from sync.exchange.report import describe
from sync.exchange.service import revocation_of, revocation_text
from sync.exchange.signing import agreement_status
from sync.ingest.quarantine import QuarantineError, discard_entry, retry_entry
from sync.models import IngestState
from sync.peers import (
    DEFAULT_INVITATION_HOURS,
    decide_peer,
    issue_invitation,
    key_fingerprint,
    list_peers,
    open_invitations,
    remove_peer,
)
from sync.quarantine import list_quarantine
from sync.status import sync_status

# What the account form's fields expect, said again when the form is refused for them.
ACCOUNT_FORM_HINTS = {
    "username": N_("3 to 64 characters: a-z, 0-9, dot, dash, underscore"),
    "password": N_("Password (10 characters or more)"),
}

RESET_TOO_SHORT = N_("The temporary password needs at least 10 characters.")
RESET_WHO = N_(
    "Choose another account of this post (your own password is changed on your account page)."
)


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


async def _agreements(node: Node, session: AsyncSession, _: Any, lang: str) -> list[dict[str, Any]]:
    """The node's data-sharing agreement (``agreement_file`` setting) with its status and,
    when either party revoked it, the revocation this node holds."""

    path = getattr(node.settings, "agreement_file", "")
    if not path:
        return []
    today = utcnow().astimezone(node.settings.zone).date()
    try:
        agreement = load_agreement(path)
    except (AgreementError, OSError) as exc:
        return [{"file": Path(path).name, "error": str(exc)}]
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
    request: Request[Any, Any, Any],
    node: Node,
    session: AsyncSession,
    issued: dict[str, Any] | None = None,
) -> Response[str]:
    """The Posts page: enrolled peers with their key fingerprints, open enrolment codes
    (never the codes themselves) and, just after issuing one, the new code (read in the
    session that issued it)."""
    peers: list[dict[str, Any]] = []
    invitations: list[Any] = []
    if node.settings.role == "national":
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
    node: Node,
    reading: AsyncSession,
    *,
    status_code: int = 200,
    error: str = "",
    values: dict[str, str] | None = None,
    reset_error: str = "",
    reset_username: str = "",
) -> Response[str]:
    """The accounts page; after a refused form (whose transaction has ended), with its
    error and the values typed."""
    national = node.settings.role == "national"
    found = await list_officers(reading, post=None if national else node.settings.node_code)
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
    async def officers(
        self, request: Request[Any, Any, Any], node: Node, reading: AsyncSession, officer: Officer
    ) -> Response[str]:
        return await _officers_page(request, node, reading)

    @post("/officers")
    async def create(
        self, request: Request[Any, Any, Any], node: Node, reading: AsyncSession, officer: Officer
    ) -> Response[Any]:
        """A new account: the password is hashed (argon2) outside the write lock, so the
        handler opens its transaction itself."""
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
                request, node, reading, status_code=problem.status, error=error, values=kept
            )
        return redirect("/web/admin/officers?done=officer_created")

    @post("/officers/password")
    async def reset(
        self, request: Request[Any, Any, Any], node: Node, reading: AsyncSession, officer: Officer
    ) -> Response[Any]:
        """Reset the password of another account of this node (audited): its sessions end
        and it must choose a new password at its next login. A refused form keeps the
        account chosen (never the password)."""
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
                request, node, reading, status_code=422, reset_error=error, reset_username=username
            )
        return redirect("/web/admin/officers?done=password_reset")

    @post("/logins/unlock")
    async def unlock(
        self, request: Request[Any, Any, Any], node: Node, officer: Officer
    ) -> Response[Any]:
        """Lift a login lockout (account or source address) before it ends; audited."""
        form = await request.form()
        await release_lock(
            node,
            actor=officer,
            scope=str(form.get("scope", "")),
            key=str(form.get("key", ""))[:256],
        )
        return redirect("/web/admin/officers?done=login_unlocked")

    @post("/officers/{username:str}/active")
    async def activate(
        self, request: Request[Any, Any, Any], node: Node, officer: Officer, username: str
    ) -> Response[Any]:
        """(De)activate an account; the cached sessions are forgotten only once that is
        committed, so the handler opens its transaction itself."""
        active = (await request.form()).get("active") == "1"
        if username == officer.username and not active:
            raise Problem(409, "Refused", field="username", detail="you cannot deactivate yourself")
        async with node.db.write_transaction() as session:
            await set_active(session, node=node, actor=officer, username=username, active=active)
        forget_cached_sessions(node)
        done = "officer_activated" if active else "officer_deactivated"
        return redirect(f"/web/admin/officers?done={done}")

    @get("/posts")
    async def posts(
        self, request: Request[Any, Any, Any], node: Node, reading: AsyncSession, officer: Officer
    ) -> Response[str]:
        return await _posts_page(request, node, reading)

    @post("/posts/invite")
    async def invite(
        self,
        request: Request[Any, Any, Any],
        node: Node,
        transaction: AsyncSession,
        officer: Officer,
    ) -> Response[str]:
        """Issue a one-time enrolment code; the page shows it this once (never in a URL)."""
        if node.settings.role != "national":
            raise Problem(404, "Not found", field="node_code", detail="posts enrol on national")

        form = await request.form()
        node_code = str(form.get("node_code", "")).strip().upper()
        try:
            hours = float(str(form.get("hours", "") or DEFAULT_INVITATION_HOURS))
        except ValueError as exc:
            raise Problem(422, "Invalid validity", field="hours", detail="give hours") from exc
        code, invitation = await issue_invitation(
            transaction, node=node, officer=officer, node_code=node_code, hours=hours
        )
        issued = {"node_code": node_code, "code": code, "expires_at": invitation.expires_at}
        return await _posts_page(request, node, transaction, issued=issued)

    @post("/posts/{node_code:str}/{decision:str}")
    async def decide(
        self,
        node: Node,
        transaction: AsyncSession,
        officer: Officer,
        node_code: str,
        decision: str,
    ) -> Response[Any]:
        statuses = {"approve": "approved", "revoke": "revoked", "remove": "removed"}
        if node.settings.role != "national" or decision not in statuses:
            raise Problem(404, "Not found", field="decision", detail="no such action here")

        if decision == "remove":
            await remove_peer(transaction, node=node, officer=officer, node_code=node_code)
        else:
            peer = await decide_peer(
                transaction,
                node=node,
                officer=officer,
                node_code=node_code,
                status=statuses[decision],
            )
            await enqueue(transaction, peer)
        return redirect(f"/web/admin/posts?done=peer_{statuses[decision]}")

    @get("/agreements")
    async def agreements(
        self, request: Request[Any, Any, Any], node: Node, reading: AsyncSession, officer: Officer
    ) -> Response[str]:
        available = module_available("sync.exchange.model")
        return await render(
            request,
            "admin_agreements.html",
            active="admin_agreements",
            available=available,
            agreements=(
                await _agreements(node, reading, translator(request), language_of(request))
                if available
                else []
            ),
            setting="BORDERPOST_AGREEMENT_FILE",
        )

    @get("/sync")
    async def sync(
        self, request: Request[Any, Any, Any], node: Node, reading: AsyncSession, officer: Officer
    ) -> Response[str]:
        status: dict[str, Any] | None = None
        ingest: list[Any] = []
        if node.settings.role == "post":
            status = await sync_status(node)
            forget_banner(request)
        quarantine: list[Any] = []
        if node.settings.role != "post":
            ingest = list(
                (await reading.scalars(select(IngestState).order_by(IngestState.origin))).all()
            )
            quarantine = await list_quarantine(reading)
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
        self,
        node: Node,
        transaction: AsyncSession,
        officer: Officer,
        entry_id: RowId,
        action: str,
    ) -> Response[Any]:
        """Retry (through the normal ingest path) or discard a quarantined record; audited."""
        if node.settings.role == "post" or action not in ("retry", "discard"):
            raise Problem(404, "Not found", field="action", detail="no such action here")

        resolve = retry_entry if action == "retry" else discard_entry
        try:
            entry = await resolve(transaction, node=node, entry_id=entry_id, officer=officer)
        except QuarantineError as exc:
            raise Problem(
                404 if exc.code == "unknown" else 409,
                "Quarantine entry not pending",
                field="entry_id",
                detail=exc.detail,
            ) from exc
        done = {"retried": "quarantine_retried", "discarded": "quarantine_discarded"}
        return redirect(f"/web/admin/sync?done={done.get(entry.status, 'quarantine_kept')}")
