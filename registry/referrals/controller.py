"""Referral endpoints: the front desk refers a crossing to protection
(``POST /api/crossings/{id}/referrals``); protection officers (and admin, for audit) list
and read referrals (``/api/referrals``); protection officers alone work a referral's case
(``POST /api/referrals/{id}/follow-ups``: a note, a status, the closing outcome). Every read
and write is audited by the service."""

from __future__ import annotations

import uuid

from litestar import Controller, get, post
from litestar.status_codes import HTTP_201_CREATED
from sqlalchemy.ext.asyncio import AsyncSession

from registry.api.auth import FRONT_DESK, PROTECTION_READERS
from registry.models import Officer
from registry.node import Node
from registry.referrals.schemas import (
    FollowUpCreate,
    ReferralAcknowledgement,
    ReferralCreate,
    ReferralView,
)
from registry.referrals.service import (
    add_follow_up,
    create_referral,
    list_referrals,
    read_referral,
)
from registry.schemas import as_response

PROTECTION_WRITERS = ("protection",)


class CrossingReferralController(Controller):
    """/api/crossings/{id}/referrals — under the crossing it refers, tagged with crossings."""

    path = "/api/crossings"
    tags = ["crossings"]

    @post(
        "/{crossing_id:uuid}/referrals",
        opt={"roles": FRONT_DESK},
        status_code=HTTP_201_CREATED,
        summary="Attach a protection referral",
    )
    async def refer(
        self,
        node: Node,
        transaction: AsyncSession,
        officer: Officer,
        crossing_id: uuid.UUID,
        data: ReferralCreate,
    ) -> ReferralAcknowledgement:
        referral = await create_referral(
            transaction,
            node=node,
            officer=officer,
            crossing_id=crossing_id,
            category=data.category,
            note=data.note,
        )
        return ReferralAcknowledgement(
            referral_id=referral.id,
            crossing_id=crossing_id,
            status="referred to the protection officer",
        )


class ReferralController(Controller):
    """/api/referrals — protection referrals, for protection officers (and admin, for audit)."""

    path = "/api/referrals"
    tags = ["protection"]
    opt = {"roles": PROTECTION_READERS}

    @get("/")
    async def index(
        self, node: Node, reading: AsyncSession, officer: Officer
    ) -> list[ReferralView]:
        views = await list_referrals(reading, node=node, officer=officer)
        return as_response(views, list[ReferralView])

    @get("/{referral_id:uuid}")
    async def read(
        self, node: Node, reading: AsyncSession, officer: Officer, referral_id: uuid.UUID
    ) -> ReferralView:
        view = await read_referral(reading, node=node, officer=officer, referral_id=referral_id)
        return as_response(view, ReferralView)

    @post(
        "/{referral_id:uuid}/follow-ups",
        opt={"roles": PROTECTION_WRITERS},
        status_code=HTTP_201_CREATED,
        summary="Add a step to a referral's case (note, status, closing outcome)",
    )
    async def follow_up(
        self,
        node: Node,
        transaction: AsyncSession,
        officer: Officer,
        referral_id: uuid.UUID,
        data: FollowUpCreate,
    ) -> ReferralView:
        await add_follow_up(
            transaction,
            node=node,
            officer=officer,
            referral_id=referral_id,
            status=data.status,
            note=data.note,
            outcome=data.outcome,
        )
        view = await read_referral(transaction, node=node, officer=officer, referral_id=referral_id)
        return as_response(view, ReferralView)
