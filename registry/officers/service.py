"""Officer accounts: creation (argon2), login and the bootstrap admin of a new node.

Login is throttled per account and per source address (``registry.throttle``): an
exponential delay after a few failures, then a temporary lockout, answered 429 with
``Retry-After`` before any password is checked; lockouts and their release are audited
(``login_locked``, ``login_released``). Argon2 runs on the password thread pool, before
the write transaction that records the outcome, never under the node's write lock.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.audit import audit
from registry.models import ROLES, AuthToken, Officer
from registry.node import Node
from registry.outbox import enqueue
from registry.problems import Problem, text_refused_problem
from registry.security import (
    check_password_off_loop,
    hash_password_off_loop,
    issue_token,
    token_digest,
)
from registry.text import TextRefused, TextRule, clean_text, identifier, person_name
from registry.throttle import LockEvent, LockView, Refusal

BOOTSTRAP_USERNAME = "admin"
USERNAME = identifier(64, min_length=1)
FULL_NAME = person_name(200, min_length=1)
HOME_POST = identifier(32, min_length=1)


def clean_account_text(value: str, rule: TextRule, field: str) -> str:
    """``registry.text.clean_text`` for account fields, refused as a 422 naming the field.
    Every path that names an account (API, pages, CLI, login) comes through here first."""
    try:
        return clean_text(value, rule, field)
    except TextRefused as refused:
        raise text_refused_problem(refused) from refused


def officer_view(officer: Officer, lock: LockView | None = None) -> dict[str, Any]:
    """An account as the API shows it; ``login_locked_until`` is set while its logins are
    locked out after too many failures."""
    return {
        "id": str(officer.id),
        "username": officer.username,
        "full_name": officer.full_name,
        "role": officer.role,
        "home_post": officer.home_post,
        "language": officer.language,
        "active": officer.active,
        "must_change_password": officer.must_change_password,
        "login_locked_until": lock.until.isoformat(timespec="seconds") if lock else None,
    }


async def new_password_hash(password: str, field: str = "password") -> str:
    """The argon2 hash of a new password, computed off the event loop; 422 when weak.
    Callers compute it before their write transaction."""
    try:
        return await hash_password_off_loop(password)
    except ValueError as exc:
        raise Problem(422, "Weak password", field=field, detail=str(exc)) from exc


async def create_officer(
    session: AsyncSession,
    *,
    node: Node,
    actor: Officer | None,
    username: str,
    full_name: str,
    role: str,
    password: str,
    home_post: str | None = None,
    language: str = "fr",
    password_hash: str | None = None,
) -> Officer:
    """Create an officer account; the username must be new. ``password_hash`` (from
    ``new_password_hash``) spares the hashing inside the caller's transaction."""
    username = clean_account_text(username, USERNAME, "username")
    full_name = clean_account_text(full_name, FULL_NAME, "full_name")
    if home_post is not None:
        home_post = clean_account_text(home_post, HOME_POST, "home_post")
    if role not in ROLES:
        raise Problem(
            422,
            "Unknown role",
            field="role",
            detail=f"role must be one of {tuple(map(str, ROLES))}",
        )
    post = home_post or node.settings.node_code
    taken = await session.scalar(
        select(col(Officer.id)).where(
            col(Officer.username) == username, col(Officer.home_post) == post
        )
    )
    if taken is not None:
        raise Problem(409, "Username taken", field="username", detail="this username exists")
    if password_hash is None:
        password_hash = await new_password_hash(password)
    officer = Officer(
        username=username,
        full_name=full_name,
        role=role,
        home_post=home_post or node.settings.node_code,
        password_hash=password_hash,
        language=language,
    )
    session.add(officer)
    await session.flush()
    await enqueue(session, officer)  # accounts travel: up from a post, down from national
    await audit(
        session,
        origin=node.settings.node_code,
        officer=actor,
        action="create",
        record_type="officer",
        record_id=officer.id,
        purpose="account_management",
        detail={"username": username, "role": role},
    )
    return officer


async def list_officers(session: AsyncSession, *, post: str | None) -> list[Officer]:
    query = select(Officer).order_by(Officer.username)
    if post is not None:
        query = query.where(col(Officer.home_post) == post)
    return list((await session.scalars(query)).all())


@dataclass(frozen=True)
class LoginResult:
    officer: Officer
    token: str


class LoginThrottled(Problem):
    """429: too many failed logins for this account or from this address."""

    def __init__(self, refusal: Refusal) -> None:
        seconds = refusal.retry_after_header
        if refusal.locked:
            detail = f"too many failed logins: locked, try again in {seconds} s"
        else:
            detail = f"too many failed logins: wait {seconds} s before the next attempt"
        field = "username" if refusal.scope == "account" else "source_address"
        super().__init__(
            429,
            "Too many login attempts",
            field=field,
            detail=detail,
            headers={"Retry-After": seconds},
        )
        self.refusal = refusal


async def login(
    node: Node, *, username: str, password: str, source: str = "unknown"
) -> LoginResult:
    """Check the password and issue a token; failures and lockouts are audited.

    Throttled attempts (429, ``LoginThrottled``) check no password and write nothing but
    the lockout events due; they are answered after a pause of up to the first delay, so a
    client that ignores Retry-After makes few attempts a second. An unknown username costs
    what a known one costs.
    """
    username = clean_account_text(username, USERNAME, "username")  # before any audit
    throttle = node.logins
    refusal = throttle.admit(username, source)
    if refusal is not None:
        await record_lock_events(node)
        # answer a refused attempt only after a pause (a sleeping coroutine costs nothing):
        # a client that does not honour Retry-After cannot make many attempts a second
        await asyncio.sleep(min(refusal.retry_after, throttle.policy.delay_s))
        raise LoginThrottled(refusal)
    succeeded = False
    try:
        async with node.db.session() as session:
            officer = await _find(session, username, node.settings.node_code)
        matches = await check_password_off_loop(
            officer.password_hash if officer is not None else None, password
        )
        succeeded = matches and officer is not None and officer.active
    finally:
        throttle.record(username, source, succeeded=succeeded)
    events = throttle.take_events()
    async with node.db.write_transaction() as session:
        if not succeeded or officer is None:
            await audit(
                session,
                origin=node.settings.node_code,
                officer=None,
                action="login_failed",
                record_type="officer",
                record_id=username,
                purpose="authentication",
                detail={"source": source},
            )
            await _audit_lock_events(session, node, events)
        else:
            token = await issue_token(session, officer, node.settings.token_ttl_hours)
            await audit(
                session,
                origin=node.settings.node_code,
                officer=officer,
                action="login",
                record_type="officer",
                record_id=officer.id,
                purpose="authentication",
                detail={"source": source},
            )
            await _audit_lock_events(session, node, events)
    if not succeeded or officer is None:
        raise Problem(
            401, "Login failed", field="password", detail="unknown username or wrong password"
        )
    return LoginResult(officer, token)


async def _audit_lock_events(
    session: AsyncSession, node: Node, events: list[LockEvent], actor: Officer | None = None
) -> None:
    for event in events:
        await audit(
            session,
            origin=node.settings.node_code,
            officer=actor,
            action="login_locked" if event.kind == "locked" else "login_released",
            record_type="officer" if event.scope == "account" else "source_address",
            record_id=event.key[:64],
            purpose="authentication",
            detail={
                "scope": event.scope,
                "failures": event.failures,
                "until": event.until.isoformat(timespec="seconds"),
                "reason": event.reason,
            },
        )


async def record_lock_events(node: Node, actor: Officer | None = None) -> None:
    """Audit the lockouts that began or ended and are not yet in the log (if any)."""
    events = node.logins.take_events()
    if events:
        async with node.db.write_transaction() as session:
            await _audit_lock_events(session, node, events, actor)


async def login_locks(node: Node) -> list[LockView]:
    """The current lockouts for the admin (lockouts found ended on the way are audited)."""
    locks = node.logins.locks()
    await record_lock_events(node)
    return locks


async def release_lock(node: Node, *, actor: Officer, scope: str, key: str) -> bool:
    """An administrator lifts a lockout (audited with the administrator); False if none."""
    if scope not in ("account", "address"):
        raise Problem(422, "Unknown lock scope", field="scope", detail="account or address")
    released = node.logins.release("account" if scope == "account" else "address", key)
    await record_lock_events(node, actor)
    return released


async def ensure_bootstrap_admin(session: AsyncSession, *, node: Node) -> str | None:
    """Create the first admin with a random password when the node has no admin.

    Returns the new password (to show once), or None when an admin already exists.
    """
    existing = await session.scalar(
        select(col(Officer.id)).where(col(Officer.role) == "admin").limit(1)
    )
    if existing is not None:
        return None
    password = secrets.token_urlsafe(12)
    await create_officer(
        session,
        node=node,
        actor=None,
        username=BOOTSTRAP_USERNAME,
        full_name="Bootstrap administrator",
        role="admin",
        password=password,
    )
    return password


async def _find(session: AsyncSession, username: str, home_post: str) -> Officer | None:
    query = select(Officer).where(
        col(Officer.username) == username, col(Officer.home_post) == home_post
    )
    return await session.scalar(query)


async def _officer_by_username(session: AsyncSession, node: Node, username: str) -> Officer:
    username = clean_account_text(username, USERNAME, "username")
    officer = await _find(session, username, node.settings.node_code)
    if officer is None:
        raise Problem(404, "Unknown officer", field="username", detail="no such username")
    return officer


async def set_password(
    session: AsyncSession,
    *,
    node: Node,
    actor: Officer | None,
    username: str,
    password: str,
    password_hash: str | None = None,
    keep_token: str | None = None,
    must_change: bool = False,
) -> Officer:
    """Replace an officer's password and revoke every token they hold but ``keep_token``
    (the session of an officer changing their own); ``password_hash`` (from
    ``new_password_hash``) spares the hashing inside the caller's transaction. An
    administrator's reset sets ``must_change``: the pages then ask for a new password first."""
    officer = await _officer_by_username(session, node, username)
    officer.password_hash = password_hash or await new_password_hash(password)
    officer.must_change_password = must_change
    await _revoke_all_tokens(session, officer, keep=keep_token)
    await enqueue(session, officer)
    own = actor is not None and actor.id == officer.id
    await audit(
        session,
        origin=node.settings.node_code,
        officer=actor,
        action="change_password" if own else "set_password",
        record_type="officer",
        record_id=officer.id,
        purpose="account_management",
        detail={"must_change": must_change, "other_sessions_revoked": True},
    )
    return officer


async def change_own_password(
    node: Node, *, officer: Officer, current_password: str, new_password: str, token: str | None
) -> Officer:
    """An officer changes their own password: the current one must match (argon2 on the
    password threads, throttled like a login: failures count against the account), the new
    one follows the policy of account creation; every other session ends, this one stays."""
    throttle = node.logins
    refusal = throttle.admit(officer.username, f"password-change:{officer.id}")
    if refusal is not None:
        await record_lock_events(node, officer)
        raise LoginThrottled(refusal)
    async with node.db.session() as session:
        stored = await session.get(Officer, officer.id)
    matches = await check_password_off_loop(
        stored.password_hash if stored is not None else None, current_password
    )
    throttle.record(officer.username, f"password-change:{officer.id}", succeeded=matches)
    if not matches:
        async with node.db.write_transaction() as session:
            await audit(
                session,
                origin=node.settings.node_code,
                officer=officer,
                action="change_password_failed",
                record_type="officer",
                record_id=officer.id,
                purpose="account_management",
            )
            await _audit_lock_events(session, node, throttle.take_events(), officer)
        raise Problem(
            403, "Wrong password", field="current_password", detail="the current password is wrong"
        )
    if new_password == current_password:
        raise Problem(
            422, "Same password", field="new_password", detail="choose a different password"
        )
    password_hash = await new_password_hash(new_password, field="new_password")
    async with node.db.write_transaction() as session:
        changed = await set_password(
            session,
            node=node,
            actor=officer,
            username=officer.username,
            password=new_password,
            password_hash=password_hash,
            keep_token=token,
        )
    forget_cached_sessions(node)
    return changed


async def reset_password(node: Node, *, actor: Officer, username: str, password: str) -> Officer:
    """An administrator gives another account of this node a temporary password: every
    session of that account ends and it must choose a new password at its next login.
    Audited (``set_password`` with ``must_change``). One's own password is changed with the
    current one instead (409 here)."""
    username = clean_account_text(username, USERNAME, "username")
    if username == actor.username:
        raise Problem(
            409, "Own account", field="username", detail="change your own password on your account"
        )
    password_hash = await new_password_hash(password)
    async with node.db.write_transaction() as session:
        reset = await set_password(
            session,
            node=node,
            actor=actor,
            username=username,
            password=password,
            password_hash=password_hash,
            must_change=True,
        )
    forget_cached_sessions(node)
    return reset


def forget_cached_sessions(node: Node) -> None:
    """Tokens revoked in the database may still sit in the node's token cache: start a
    fresh cache, so that no cached session of the account outlives the change (the others
    are simply looked up again)."""
    node.tokens = type(node.tokens)(node.tokens.ttl)


async def set_active(
    session: AsyncSession, *, node: Node, actor: Officer | None, username: str, active: bool
) -> Officer:
    """Deactivate (or reactivate) an account; deactivation revokes its tokens."""
    officer = await _officer_by_username(session, node, username)
    officer.active = active
    if not active:
        await _revoke_all_tokens(session, officer)
    await enqueue(session, officer)
    await audit(
        session,
        origin=node.settings.node_code,
        officer=actor,
        action="activate" if active else "deactivate",
        record_type="officer",
        record_id=officer.id,
        purpose="account_management",
    )
    return officer


async def _revoke_all_tokens(
    session: AsyncSession, officer: Officer, keep: str | None = None
) -> None:
    query = update(AuthToken).where(col(AuthToken.officer_id) == officer.id)
    if keep is not None:
        query = query.where(col(AuthToken.token_hash) != token_digest(keep))
    await session.execute(query.values(revoked=True))
