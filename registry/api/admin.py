"""Audit, photo and health endpoints. Accounts and login are ``registry.officers.controller``,
referrals ``registry.referrals.controller``."""

from __future__ import annotations

from litestar import Controller, Response, get
from sqlalchemy.ext.asyncio import AsyncSession

from registry.api.auth import CROSSING_READERS
from registry.api.schemas import ChainVerdictView, Health
from registry.audit import audit
from registry.audit_verification import verify_chain
from registry.migrate import current_revision
from registry.models import Officer
from registry.node import Node
from registry.photos import read_photo
from registry.problems import Problem
from registry.schemas import as_response


class AuditController(Controller):
    """/api/audit"""

    path = "/api/audit"
    tags = ["audit"]

    @get("/verify", opt={"roles": ("admin",)})
    async def verify(self, node: Node) -> ChainVerdictView:
        async with node.db.session() as session:
            verdict = await verify_chain(  # this node's own chain, under its own key
                session,
                node.settings.node_code,
                public_key=node.signing_key.public_key(),
                require_signatures=True,
            )
        return as_response(verdict.to_dict(), ChainVerdictView)


class PhotoController(Controller):
    """/api/photos"""

    path = "/api/photos"
    tags = ["photos"]

    @get("/{sha256:str}", opt={"roles": CROSSING_READERS}, media_type="image/jpeg")
    async def read(
        self, node: Node, reading: AsyncSession, officer: Officer, sha256: str
    ) -> Response[bytes]:
        data = read_photo(node.settings.photo_dir, sha256)
        if data is None:
            raise Problem(404, "Not found", field="sha256", detail="no photo has this hash")
        await audit(
            reading,
            origin=node.settings.node_code,
            officer=officer,
            action="read",
            record_type="photo",
            record_id=sha256,
            purpose="view",
        )
        return Response(data, media_type="image/jpeg")


@get("/api/health", opt={"public": True}, tags=["health"])
async def health(node: Node) -> Health:
    """Liveness and identity of this node (no personal data)."""
    revision = await current_revision(node.db.engine)
    return Health(
        status="ok",
        node=node.settings.node_code,
        role=node.settings.role,
        country=node.settings.country,
        schema=revision,
    )
