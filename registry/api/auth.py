"""Authentication and authorisation: bearer token or session cookie, role and post checks.

Every route handler declares ``opt={"roles": (...)}`` or ``opt={"public": True}``;
a handler that declares neither is refused, so a forgotten declaration fails closed.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from registry.models import ROLES, Officer
from registry.node import Node
from registry.problems import Problem
from registry.security import officer_for_token

SESSION_COOKIE = "bp_session"
FRONT_DESK = ("officer", "supervisor")
CROSSING_READERS = ("officer", "supervisor", "hq_analyst")
PROTECTION_READERS = ("protection", "admin")
EVERYONE = ROLES
PUBLIC_PREFIXES = ("/schema",)
# what an officer whose password an administrator reset may still do: change it, or leave
PASSWORD_CHANGE_PATHS = frozenset(
    {
        "/api/auth/password",
        "/api/auth/logout",
        "/api/auth/me",
        "/web",
        "/web/",
        "/web/account",
        "/web/account/password",
        "/web/logout",
        "/web/language",
    }
)


class PasswordChangeRequired(Problem):
    """403: an administrator reset this account's password; it must choose a new one first
    (the pages redirect to the account page instead)."""

    def __init__(self) -> None:
        super().__init__(
            403,
            "Password change required",
            field="password",
            detail="an administrator reset this password: change it first "
            "(POST /api/auth/password)",
        )


def token_from(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    header = connection.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return connection.cookies.get(SESSION_COOKIE) or None


def node_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Node:
    return connection.app.state.node


async def authorize(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Guard for every route: authenticate, then check role and home post."""
    if handler.opt.get("public") or connection.scope["path"].startswith(PUBLIC_PREFIXES):
        return
    roles = handler.opt.get("roles")
    if not roles:
        raise PermissionDeniedException("this endpoint declares no roles")
    token = token_from(connection)
    if token is None:
        raise NotAuthorizedException("log in first: send a bearer token or the session cookie")
    node = node_of(connection)
    officer = node.tokens.get(token)
    if officer is None:
        async with node.db.session() as session:
            officer = await officer_for_token(session, token, node.tokens)
    if officer is None:
        raise NotAuthorizedException("the token is invalid, expired or revoked")
    if officer.home_post != node.settings.node_code:
        raise PermissionDeniedException("this account belongs to another post")
    if officer.role not in roles:
        raise PermissionDeniedException(f"the role {officer.role} may not use this endpoint")
    if officer.must_change_password and connection.scope["path"] not in PASSWORD_CHANGE_PATHS:
        raise PasswordChangeRequired()
    connection.state.officer = officer


def current_officer(request: Request[Any, Any, Any]) -> Officer:
    """Dependency: the officer the guard authenticated."""
    return request.state.officer
