"""Account, referral, audit, photo and health endpoints."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.openapi import ResponseSpec
from litestar.status_codes import HTTP_201_CREATED

from registry.api.auth import (
    CROSSING_READERS,
    EVERYONE,
    PROTECTION_READERS,
    node_of,
    token_from,
)
from registry.audit import audit, verify_node_chain
from registry.migrate import current_revision
from registry.models import Officer
from registry.photos import read_photo
from registry.problems import Problem
from registry.schemas import LoginRequest, OfficerCreate
from registry.security import revoke_token
from registry.services.officers import (
    create_officer,
    list_officers,
    login,
    login_locks,
    new_password_hash,
    officer_view,
)
from registry.services.referrals import list_referrals, read_referral
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
        self, request: Request[Any, Any, Any], data: LoginRequest
    ) -> Response[dict[str, Any]]:
        """A bearer token, and the session cookies for a browser client: a request made with
        the cookie that changes something must send ``csrf_token`` in ``X-CSRF-Token``."""
        node = node_of(request)
        result = await login(
            node, username=data.username, password=data.password, source=source_address(request)
        )
        cookies = session_cookies(
            node,
            result.token,
            secure=request.url.scheme == "https",
            ttl_hours=node.settings.token_ttl_hours,
        )
        body = {
            "token": result.token,
            "token_type": "bearer",
            "csrf_token": csrf_token(node, result.token),
            "officer": officer_view(result.officer),
        }
        return Response(body, cookies=cookies)

    @post("/logout", opt={"roles": EVERYONE}, status_code=200)
    async def logout(self, request: Request[Any, Any, Any]) -> Response[dict[str, str]]:
        node = node_of(request)
        token = token_from(request)
        async with node.db.write_transaction() as session:
            if token:
                await revoke_token(session, token)
        if token:
            node.tokens.evict(token)
        return Response({"status": "logged out"}, cookies=cleared_cookies())

    @get("/me", opt={"roles": EVERYONE})
    async def me(self, officer: Officer) -> dict[str, Any]:
        return officer_view(officer)


class OfficerController(Controller):
    """/api/officers"""

    path = "/api/officers"
    tags = ["officers"]

    @post("/", opt={"roles": ("admin",)}, status_code=HTTP_201_CREATED)
    async def create(
        self, request: Request[Any, Any, Any], officer: Officer, data: OfficerCreate
    ) -> dict[str, Any]:
        node = node_of(request)
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
        return officer_view(created)

    @get("/", opt={"roles": ("admin", "supervisor")})
    async def index(
        self, request: Request[Any, Any, Any], officer: Officer
    ) -> list[dict[str, Any]]:
        node = node_of(request)
        async with node.db.session() as session:
            officers = await list_officers(session, post=node.settings.node_code)
        locks = {lock.key: lock for lock in await login_locks(node) if lock.scope == "account"}
        return [officer_view(o, locks.get(o.username)) for o in officers]


class ReferralController(Controller):
    """/api/referrals — protection referrals, for protection officers (and admin, for audit)."""

    path = "/api/referrals"
    tags = ["protection"]
    opt = {"roles": PROTECTION_READERS}

    @get("/")
    async def index(
        self, request: Request[Any, Any, Any], officer: Officer
    ) -> list[dict[str, Any]]:
        node = node_of(request)
        async with node.db.write_transaction() as session:
            return await list_referrals(session, node=node, officer=officer)

    @get("/{referral_id:uuid}")
    async def read(
        self, request: Request[Any, Any, Any], officer: Officer, referral_id: uuid.UUID
    ) -> dict[str, Any]:
        node = node_of(request)
        async with node.db.write_transaction() as session:
            return await read_referral(session, node=node, officer=officer, referral_id=referral_id)


class AuditController(Controller):
    """/api/audit"""

    path = "/api/audit"
    tags = ["audit"]

    @get("/verify", opt={"roles": ("admin",)})
    async def verify(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        node = node_of(request)
        async with node.db.session() as session:
            verdict = await verify_node_chain(
                session,
                own_code=node.settings.node_code,
                own_key=node.signing_key.public_key(),
                origin=node.settings.node_code,
            )
        return verdict.to_dict()


class PhotoController(Controller):
    """/api/photos"""

    path = "/api/photos"
    tags = ["photos"]

    @get("/{sha256:str}", opt={"roles": CROSSING_READERS})
    async def read(
        self, request: Request[Any, Any, Any], officer: Officer, sha256: str
    ) -> Response[bytes]:
        node = node_of(request)
        data = read_photo(node.settings.photo_dir, sha256)
        if data is None:
            raise Problem(404, "Not found", field="sha256", detail="no photo has this hash")
        async with node.db.write_transaction() as session:
            await audit(
                session,
                origin=node.settings.node_code,
                officer=officer,
                action="read",
                record_type="photo",
                record_id=sha256,
                purpose="view",
            )
        return Response(data, media_type="image/jpeg")


@get("/api/health", opt={"public": True}, tags=["health"])
async def health(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """Liveness and identity of this node (no personal data)."""
    node = node_of(request)
    revision = await current_revision(node.db.engine)
    return {
        "status": "ok",
        "node": node.settings.node_code,
        "role": node.settings.role,
        "country": node.settings.country,
        "schema": revision,
    }
