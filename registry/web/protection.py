"""Protection referrals, for protection officers only (``registry.referrals.service``
audits every read)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from litestar import Controller, Request, Response, get

from registry.api.auth import node_of
from registry.models import Officer
from registry.referrals.service import list_referrals, read_referral
from registry.web.messages import DIRECTIONS, REFERRAL_CATEGORIES, label
from registry.web.nav import PROTECTION
from registry.web.render import render, translator


def _labelled(referral: dict[str, Any], _: Any, zone: Any) -> dict[str, Any]:
    referral["category_text"] = label(REFERRAL_CATEGORIES, referral["category"], _)
    referral["direction_text"] = label(DIRECTIONS, referral["direction"], _)
    when = datetime.fromisoformat(referral["occurred_at"]).astimezone(zone)
    referral["when"] = when.strftime("%Y-%m-%d %H:%M")
    return referral


class ReferralPagesController(Controller):
    """/web/referrals"""

    path = "/referrals"
    opt = {"roles": PROTECTION}
    include_in_schema = False

    @get("/")
    async def index(self, request: Request[Any, Any, Any], officer: Officer) -> Response[str]:
        node = node_of(request)
        async with node.db.write_transaction() as session:
            referrals = await list_referrals(session, node=node, officer=officer)
        _ = translator(request)
        zone = node.settings.zone
        return await render(
            request,
            "referrals.html",
            active="referrals",
            referrals=[_labelled(r, _, zone) for r in referrals],
        )

    @get("/{referral_id:uuid}")
    async def detail(
        self, request: Request[Any, Any, Any], officer: Officer, referral_id: uuid.UUID
    ) -> Response[str]:
        node = node_of(request)
        async with node.db.write_transaction() as session:
            referral = await read_referral(
                session, node=node, officer=officer, referral_id=referral_id
            )
        _ = translator(request)
        return await render(
            request,
            "referral.html",
            active="referrals",
            referral=_labelled(referral, _, node.settings.zone),
        )
