"""Officer accounts: creation (argon2), login and the bootstrap admin of a new node."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from registry.audit import audit
from registry.models import ROLES, AuthToken, Officer
from registry.node import Node
from registry.outbox import enqueue
from registry.problems import Problem, text_refused_problem
from registry.security import hash_password, issue_token, verify_password
from registry.text import TextRefused, TextRule, clean_text, identifier, person_name

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


def officer_view(officer: Officer) -> dict[str, Any]:
    return {
        "id": str(officer.id),
        "username": officer.username,
        "full_name": officer.full_name,
        "role": officer.role,
        "home_post": officer.home_post,
        "language": officer.language,
        "active": officer.active,
    }


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
) -> Officer:
    """Create an officer account; the username must be new."""
    username = clean_account_text(username, USERNAME, "username")
    full_name = clean_account_text(full_name, FULL_NAME, "full_name")
    if home_post is not None:
        home_post = clean_account_text(home_post, HOME_POST, "home_post")
    if role not in ROLES:
        raise Problem(422, "Unknown role", field="role", detail=f"role must be one of {ROLES}")
    post = home_post or node.settings.node_code
    taken = await session.scalar(
        select(Officer.id).where(Officer.username == username, Officer.home_post == post)
    )
    if taken is not None:
        raise Problem(409, "Username taken", field="username", detail="this username exists")
    try:
        password_hash = hash_password(password)
    except ValueError as exc:
        raise Problem(422, "Weak password", field="password", detail=str(exc)) from exc
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
        query = query.where(Officer.home_post == post)
    return list((await session.scalars(query)).all())


@dataclass(frozen=True)
class LoginResult:
    officer: Officer
    token: str


async def login(session: AsyncSession, *, node: Node, username: str, password: str) -> LoginResult:
    """Check the password (argon2) and issue a token; failures are audited, but a username
    that is not clean text is refused (422) before anything is looked up or audited."""
    username = clean_account_text(username, USERNAME, "username")
    officer = await _find(session, username, node.settings.node_code)
    if (
        officer is None
        or not officer.active
        or not verify_password(officer.password_hash, password)
    ):
        await audit(
            session,
            origin=node.settings.node_code,
            officer=None,
            action="login_failed",
            record_type="officer",
            record_id=username[:64],
            purpose="authentication",
        )
        raise Problem(
            401, "Login failed", field="password", detail="unknown username or wrong password"
        )
    token = await issue_token(session, officer, node.settings.token_ttl_hours)
    await audit(
        session,
        origin=node.settings.node_code,
        officer=officer,
        action="login",
        record_type="officer",
        record_id=officer.id,
        purpose="authentication",
    )
    return LoginResult(officer, token)


async def ensure_bootstrap_admin(session: AsyncSession, *, node: Node) -> str | None:
    """Create the first admin with a random password when the node has no admin.

    Returns the new password (to show once), or None when an admin already exists.
    """
    existing = await session.scalar(select(Officer.id).where(Officer.role == "admin").limit(1))
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
    query = select(Officer).where(Officer.username == username, Officer.home_post == home_post)
    return await session.scalar(query)


async def _officer_by_username(session: AsyncSession, node: Node, username: str) -> Officer:
    username = clean_account_text(username, USERNAME, "username")
    officer = await _find(session, username, node.settings.node_code)
    if officer is None:
        raise Problem(404, "Unknown officer", field="username", detail="no such username")
    return officer


async def set_password(
    session: AsyncSession, *, node: Node, actor: Officer | None, username: str, password: str
) -> Officer:
    """Replace an officer's password and revoke every token they hold."""
    officer = await _officer_by_username(session, node, username)
    try:
        officer.password_hash = hash_password(password)
    except ValueError as exc:
        raise Problem(422, "Weak password", field="password", detail=str(exc)) from exc
    await _revoke_all_tokens(session, officer)
    await enqueue(session, officer)
    await audit(
        session,
        origin=node.settings.node_code,
        officer=actor,
        action="set_password",
        record_type="officer",
        record_id=officer.id,
        purpose="account_management",
    )
    return officer


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


async def _revoke_all_tokens(session: AsyncSession, officer: Officer) -> None:
    await session.execute(
        update(AuthToken).where(AuthToken.officer_id == officer.id).values(revoked=True)
    )
