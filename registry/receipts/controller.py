"""Receipt endpoints: the signed QR payload as text, PNG, SVG or a printable HTML slip,
and offline verification of a scanned payload."""

from __future__ import annotations

import uuid

from litestar import Controller, Response, get, post
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from registry.api.auth import EVERYONE, FRONT_DESK
from registry.audit import audit
from registry.crossings.records import load_crossing
from registry.models import Crossing, Officer, TravelDocument, Traveller
from registry.node import Node
from registry.problems import Problem
from registry.receipts.schemas import ReceiptClaimsView, ReceiptPayload, ReceiptVerifyRequest
from registry.receipts.signing import (
    ReceiptInvalid,
    claims_view,
    qr_png,
    qr_svg,
    verify_receipt,
)
from registry.schemas import as_response


async def _receipt_of(
    reading: AsyncSession, *, node: Node, officer: Officer, crossing_id: uuid.UUID, form: str
) -> Crossing:
    """The crossing, its read audited in the handler's ``reading`` session (the audit is
    committed before the answer leaves; no write lock is held while QR images are made)."""
    crossing = await load_crossing(reading, crossing_id)
    await audit(
        reading,
        origin=node.settings.node_code,
        officer=officer,
        action="read",
        record_type="crossing",
        record_id=crossing.id,
        purpose=f"receipt_{form}",
    )
    return crossing


class ReceiptController(Controller):
    """/api/crossings/{id}/receipt*, /api/receipts/verify"""

    path = "/api"
    tags = ["receipts"]

    @get("/crossings/{crossing_id:uuid}/receipt", opt={"roles": FRONT_DESK})
    async def payload(
        self, node: Node, reading: AsyncSession, officer: Officer, crossing_id: uuid.UUID
    ) -> ReceiptPayload:
        crossing = await _receipt_of(
            reading, node=node, officer=officer, crossing_id=crossing_id, form="payload"
        )
        return ReceiptPayload(crossing_id=crossing.id, payload=crossing.receipt)

    @get(
        "/crossings/{crossing_id:uuid}/receipt.png",
        opt={"roles": FRONT_DESK},
        media_type="image/png",
    )
    async def png(
        self, node: Node, reading: AsyncSession, officer: Officer, crossing_id: uuid.UUID
    ) -> Response[bytes]:
        crossing = await _receipt_of(
            reading, node=node, officer=officer, crossing_id=crossing_id, form="png"
        )
        return Response(qr_png(crossing.receipt), media_type="image/png")

    @get(
        "/crossings/{crossing_id:uuid}/receipt.svg",
        opt={"roles": FRONT_DESK},
        media_type="image/svg+xml",
    )
    async def svg(
        self, node: Node, reading: AsyncSession, officer: Officer, crossing_id: uuid.UUID
    ) -> Response[str]:
        crossing = await _receipt_of(
            reading, node=node, officer=officer, crossing_id=crossing_id, form="svg"
        )
        return Response(qr_svg(crossing.receipt), media_type="image/svg+xml")

    @get("/crossings/{crossing_id:uuid}/receipt.html", opt={"roles": FRONT_DESK})
    async def slip(
        self,
        node: Node,
        reading: AsyncSession,
        officer: Officer,
        crossing_id: uuid.UUID,
        paper: str = "80mm",
    ) -> Template:
        crossing = await _receipt_of(
            reading, node=node, officer=officer, crossing_id=crossing_id, form="html"
        )
        traveller = await reading.get(Traveller, crossing.traveller_id)
        document = await reading.get(TravelDocument, crossing.document_id)
        return Template(
            template_name="receipt.html",
            context={
                "crossing": crossing,
                "traveller": traveller,
                "document": document,
                "node": node.settings,
                "paper": "a4" if paper == "a4" else "80mm",
                "local_time": crossing.occurred_at.astimezone(node.settings.zone),
                "qr_svg": qr_svg(crossing.receipt),
            },
        )

    @post("/receipts/verify", opt={"roles": EVERYONE}, status_code=200)
    async def verify(self, node: Node, data: ReceiptVerifyRequest) -> ReceiptClaimsView:
        try:
            claims = verify_receipt(data.payload, node.trusted_keys)
        except ReceiptInvalid as exc:
            raise Problem(
                422, "Receipt invalid", field="payload", detail=f"{exc.reason}: {exc}"
            ) from exc
        return as_response(claims_view(claims), ReceiptClaimsView)
