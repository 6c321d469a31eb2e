"""Account endpoints: log in and out (bearer token and session cookies), the acting officer,
and account creation and listing for administrators.

The guard that authenticates every request (``registry.api.auth``) stays in the app shell:
every slice, the web pages and sync use it, and it reads tokens, not accounts."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.openapi import ResponseSpec
from litestar.status_codes import HTTP_201_CREATED

from registry.api.auth import EVERYONE, token_from
from registry.models import Officer
from registry.node import Node
from registry.officers.schemas import (
    LoginAnswer,
    LoginRequest,
    LogoutAnswer,
    OfficerCreate,
    OfficerView,
    PasswordChange,
    PasswordReset,
)
from registry.officers.service import (
    change_own_password,
    create_officer,
    list_officers,
    login,
    login_locks,
    new_password_hash,
    officer_view,
    reset_password,
)
from registry.schemas import as_response
from registry.security import revoke_token
from registry.web.security import cleared_cookies, csrf_token, session_cookies, source_address


class AuthController(Controller):
    """/api/auth"""

    path = "/api/auth"
    tags = ["auth"]

    @post(
        "/login",
        opt={"public": True},
        status_code=200,
        responses={
            401: ResponseSpec(None, description="Unknown username or wrong password"),
            429: ResponseSpec(
                None, description="Too many failed logins (Retry-After gives the seconds)"
            ),
        },
    )
    async def login(
        self, request: Request[Any, Any, Any], node: Node, data: LoginRequest
    ) -> Response[LoginAnswer]:
        """A bearer token, and the session cookies for a browser client: a request made with
        the cookie that changes something must send ``csrf_token`` in ``X-CSRF-Token``."""
        result = await login(
            node, username=data.username, password=data.password, source=source_address(request)
        )
        cookies = session_cookies(
            node,
            result.token,
            secure=request.url.scheme == "https",
            ttl_hours=node.settings.token_ttl_hours,
        )
        body = LoginAnswer(
            token=result.token,
            token_type="bearer",
            csrf_token=csrf_token(node, result.token),
            officer=as_response(officer_view(result.officer), OfficerView),
        )
        return Response(body, cookies=cookies)

    @post("/logout", opt={"roles": EVERYONE}, status_code=200)
    async def logout(self, request: Request[Any, Any, Any], node: Node) -> Response[LogoutAnswer]:
        token = token_from(request)
        async with node.db.write_transaction() as session:
            if token:
                await revoke_token(session, token)
        if token:
            node.tokens.evict(token)
        return Response(LogoutAnswer(status="logged out"), cookies=cleared_cookies())

    @get("/me", opt={"roles": EVERYONE})
    async def me(self, officer: Officer) -> OfficerView:
        return as_response(officer_view(officer), OfficerView)

    @post(
        "/password",
        opt={"roles": EVERYONE},
        status_code=200,
        responses={
            403: ResponseSpec(None, description="The current password is wrong"),
            429: ResponseSpec(
                None, description="Too many wrong passwords (Retry-After gives the seconds)"
            ),
        },
    )
    async def change_password(
        self, request: Request[Any, Any, Any], node: Node, officer: Officer, data: PasswordChange
    ) -> OfficerView:
        """Change one's own password (the current one is required, failures are throttled
        like logins); every other session and token of the account is revoked, this one
        stays."""
        changed = await change_own_password(
            node,
            officer=officer,
            current_password=data.current_password,
            new_password=data.new_password,
            token=token_from(request),
        )
        return as_response(officer_view(changed), OfficerView)


class OfficerController(Controller):
    """/api/officers"""

    path = "/api/officers"
    tags = ["officers"]

    @post("/", opt={"roles": ("admin",)}, status_code=HTTP_201_CREATED)
    async def create(
        self, request: Request[Any, Any, Any], node: Node, officer: Officer, data: OfficerCreate
    ) -> OfficerView:
        password_hash = await new_password_hash(data.password)
        async with node.db.write_transaction() as session:
            created = await create_officer(
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
        return as_response(officer_view(created), OfficerView)

    @post(
        "/{username:str}/password",
        opt={"roles": ("admin",)},
        status_code=200,
        responses={
            404: ResponseSpec(None, description="No account of this node has this username"),
            409: ResponseSpec(None, description="One's own password is changed with the old one"),
        },
    )
    async def reset_password(
        self,
        request: Request[Any, Any, Any],
        node: Node,
        officer: Officer,
        username: str,
        data: PasswordReset,
    ) -> OfficerView:
        """An administrator resets the password of another account of this node: its
        sessions end, and it must choose a new password at its next login. Audited."""
        reset = await reset_password(node, actor=officer, username=username, password=data.password)
        return as_response(officer_view(reset), OfficerView)

    @get("/", opt={"roles": ("admin", "supervisor")})
    async def index(
        self, request: Request[Any, Any, Any], node: Node, officer: Officer
    ) -> list[OfficerView]:
        async with node.db.session() as session:
            officers = await list_officers(session, post=node.settings.node_code)
        locks = {lock.key: lock for lock in await login_locks(node) if lock.scope == "account"}
        views = [officer_view(o, locks.get(o.username)) for o in officers]
        return as_response(views, list[OfficerView])
