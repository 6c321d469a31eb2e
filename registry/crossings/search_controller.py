"""Search endpoints at a post: document, name+DOB, time range, history, stays."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from litestar import Controller, get
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from registry.api.auth import CROSSING_READERS
from registry.api.params import CountryParam
from registry.crossings.schemas import CrossingView, NameMatch, OpenStay, TravellerHistory
from registry.crossings.search import (
    open_stays,
    search_by_document,
    search_by_name,
    traveller_history,
)
from registry.models import Officer, utcnow
from registry.node import Node
from registry.schemas import as_response


class SearchController(Controller):
    """/api/search, /api/travellers, /api/stays"""

    path = "/api"
    tags = ["search"]
    opt = {"roles": CROSSING_READERS}

    @get("/search/document")
    async def by_document(
        self,
        node: Node,
        reading: AsyncSession,
        officer: Officer,
        issuing_state: CountryParam,
        number: Annotated[str, Parameter(min_length=1, max_length=40)],
    ) -> list[CrossingView]:
        views = await search_by_document(
            reading, node=node, officer=officer, issuing_state=issuing_state, number=number
        )
        return as_response(views, list[CrossingView])

    @get("/search/name")
    async def by_name(
        self,
        node: Node,
        reading: AsyncSession,
        officer: Officer,
        name: Annotated[str, Parameter(min_length=2, max_length=200)],
        date_of_birth: date | None = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
    ) -> list[NameMatch]:
        hits = await search_by_name(
            reading,
            node=node,
            officer=officer,
            name=name,
            date_of_birth=date_of_birth,
            limit=limit,
        )
        return as_response(hits, list[NameMatch])

    @get("/travellers/{traveller_id:uuid}/history")
    async def history(
        self, node: Node, reading: AsyncSession, officer: Officer, traveller_id: uuid.UUID
    ) -> TravellerHistory:
        history = await traveller_history(
            reading, node=node, officer=officer, traveller_id=traveller_id
        )
        return as_response(history, TravellerHistory)

    @get("/stays/open")
    async def stays_open(
        self, node: Node, reading: AsyncSession, officer: Officer, as_of: date | None = None
    ) -> list[OpenStay]:
        return await self._stays(node, reading, officer, as_of, overstays_only=False)

    @get("/stays/overstays")
    async def overstays(
        self, node: Node, reading: AsyncSession, officer: Officer, as_of: date | None = None
    ) -> list[OpenStay]:
        return await self._stays(node, reading, officer, as_of, overstays_only=True)

    async def _stays(
        self,
        node: Node,
        reading: AsyncSession,
        officer: Officer,
        as_of: date | None,
        *,
        overstays_only: bool,
    ) -> list[OpenStay]:
        day = as_of or utcnow().astimezone(node.settings.zone).date()
        views = await open_stays(
            reading, node=node, officer=officer, as_of=day, overstays_only=overstays_only
        )
        return as_response(views, list[OpenStay])
