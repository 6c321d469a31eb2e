"""Account, referral, audit, photo and health endpoints."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.status_codes import HTTP_201_CREATED

from registry.api.auth import (
    CROSSING_READERS,
    EVERYONE,
    PROTECTION_READERS,
    SESSION_COOKIE,
    node_of,
    token_from,
)
from registry.audit import audit, verify_chain
from registry.migrate import current_revision
from registry.models import Officer
from registry.photos import read_photo
from registry.problems import Problem
from registry.schemas import LoginRequest, OfficerCreate
from registry.security import revoke_token
from registry.services.officers import create_officer, list_officers, login, officer_view
from registry.services.referrals import list_referrals, read_referral


class AuthController(Controller):
    """/api/auth"""

    path = "/api/auth"
    tags = ["auth"]

    @post("/login", opt={"public": True}, status_code=200)
    async def login(
        self, request: Request[Any, Any, Any], data: LoginRequest
    ) -> Response[dict[str, Any]]:
        node = node_of(request)
        async with node.db.write_transaction() as session:
            try:
                result = await login(
                    session, node=node, username=data.username, password=data.password
                )
            except Problem as problem:
                failed = problem
            else:
                failed = None
        if failed is not None:
            raise failed
        secure = request.url.scheme == "https"
        cookie = Cookie(
            key=SESSION_COOKIE,
            value=result.token,
            httponly=True,
            samesite="strict",
            secure=secure,
            path="/",
            max_age=node.settings.token_ttl_hours * 3600,
        )
        body = {
            "token": result.token,
            "token_type": "bearer",
            "officer": officer_view(result.officer),
        }
        return Response(body, cookies=[cookie])

    @post("/logout", opt={"roles": EVERYONE}, status_code=200)
    async def logout(self, request: Request[Any, Any, Any]) -> Response[dict[str, str]]:
        node = node_of(request)
        token = token_from(request)
        async with node.db.write_transaction() as session:
            if token:
                await revoke_token(session, token)
        if token:
            node.tokens.evict(token)
        cookie = Cookie(
            key=SESSION_COOKIE, value="", max_age=0, path="/", httponly=True, samesite="strict"
        )
        return Response({"status": "logged out"}, cookies=[cookie])

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
            )
        return officer_view(created)

    @get("/", opt={"roles": ("admin", "supervisor")})
    async def index(
        self, request: Request[Any, Any, Any], officer: Officer
    ) -> list[dict[str, Any]]:
        node = node_of(request)
        async with node.db.session() as session:
            officers = await list_officers(session, post=node.settings.node_code)
        return [officer_view(o) for o in officers]


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
            verdict = await verify_chain(session, node.settings.node_code)
        return {
            "ok": verdict.ok,
            "events_checked": verdict.events_checked,
            "first_broken_seq": verdict.first_broken_seq,
            "problem": verdict.problem,
        }


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
