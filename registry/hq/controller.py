"""Headquarters endpoints of the national node (/api/hq): cross-post searches, a person's
timeline over linked records, statistics as JSON or CSV, and stays across posts.

Only hq_analyst and admin may call them. Statistics answer ``?format=csv`` or the same route
ending in ``.csv`` with a CSV file (header row first, ``text/csv``).
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Annotated, Any, Literal, TypeVar

from litestar import Controller, Request, Response, get
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from registry.api.params import CountryParam, Offset
from registry.crossings.schemas import CrossingView, NameMatch
from registry.hq.schemas import (
    AlertStatistic,
    CrossingPage,
    DemographicStatistic,
    FlowStatistic,
    NetFlowStatistic,
    Statistic,
    StayPage,
    Timeline,
)
from registry.hq.search import (
    CrossingFilter,
    hq_search_by_document,
    hq_search_by_name,
    hq_search_crossings,
)
from registry.hq.statistics import (
    StatTable,
    alert_statistics,
    demographic_statistics,
    flow_statistics,
)
from registry.hq.stays import cross_post_stays
from registry.hq.timeline import person_timeline
from registry.models import Officer, utcnow
from registry.node import Node
from registry.schemas import as_response

HQ_ROLES = ("hq_analyst", "admin")
CSV_MEDIA_TYPE = "text/csv"  # Litestar adds "; charset=utf-8" (once)

PostParam = Annotated[str | None, Parameter(max_length=32)]
FormatParam = Annotated[Literal["json", "csv"] | None, Parameter(query="format")]
LimitParam = Annotated[int, Parameter(ge=1, le=500)]
OffsetParam = Offset
PeriodParam = Literal["day", "week", "month"]
Compute = Callable[[AsyncSession, Node], Awaitable[StatTable]]
S = TypeVar("S", bound=Statistic)


def table_csv(table: StatTable) -> str:
    """The rows of a statistic as CSV text with a header row."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=table.columns, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(table.rows)
    return buffer.getvalue()


def table_response(
    request: Request[Any, Any, Any], table: StatTable, output: str | None, schema: type[S]
) -> Response[Any]:
    """The statistic as CSV (``?format=csv`` or a path ending in ``.csv``), else as its JSON
    schema (``registry.openapi`` documents both)."""
    if output == "csv" or request.url.path.endswith(".csv"):
        disposition = f'attachment; filename="{table.name}.csv"'
        return Response(
            table_csv(table),
            media_type=CSV_MEDIA_TYPE,
            headers={"Content-Disposition": disposition},
        )
    return Response(as_response(table.as_json(), schema))


async def _statistic(
    request: Request[Any, Any, Any],
    transaction: AsyncSession,
    node: Node,
    compute: Compute,
    output: str | None,
    schema: type[S],
) -> Response[Any]:
    return table_response(request, await compute(transaction, node), output, schema)


class HqController(Controller):
    """/api/hq"""

    path = "/api/hq"
    tags = ["headquarters"]
    opt = {"roles": HQ_ROLES}

    @get("/search/document", opt={"roles": HQ_ROLES})
    async def by_document(
        self,
        node: Node,
        reading: AsyncSession,
        officer: Officer,
        issuing_state: CountryParam,
        number: Annotated[str, Parameter(min_length=1, max_length=40)],
    ) -> list[CrossingView]:
        views = await hq_search_by_document(
            reading, node=node, officer=officer, issuing_state=issuing_state, number=number
        )
        return as_response(views, list[CrossingView])

    @get("/search/name", opt={"roles": HQ_ROLES})
    async def by_name(
        self,
        node: Node,
        reading: AsyncSession,
        officer: Officer,
        name: Annotated[str, Parameter(min_length=2, max_length=200)],
        date_of_birth: date | None = None,
        limit: LimitParam = 50,
    ) -> list[NameMatch]:
        matches = await hq_search_by_name(
            reading,
            node=node,
            officer=officer,
            name=name,
            date_of_birth=date_of_birth,
            limit=limit,
        )
        return as_response(matches, list[NameMatch])

    @get("/crossings", opt={"roles": HQ_ROLES})
    async def crossings(
        self,
        node: Node,
        reading: AsyncSession,
        officer: Officer,
        date_from: date,
        date_to: date,
        post: PostParam = None,
        direction: Literal["entry", "exit"] | None = None,
        nationality: Annotated[str | None, Parameter(min_length=1, max_length=3)] = None,
        decision: Literal["cleared", "referred", "refused"] | None = None,
        limit: LimitParam = 100,
        offset: OffsetParam = 0,
    ) -> CrossingPage:
        filters = CrossingFilter(date_from, date_to, post, direction, nationality, decision)
        page = await hq_search_crossings(
            reading, node=node, officer=officer, filters=filters, limit=limit, offset=offset
        )
        return as_response(page, CrossingPage)

    @get("/travellers/{traveller_id:uuid}/timeline", opt={"roles": HQ_ROLES})
    async def timeline(
        self, node: Node, reading: AsyncSession, officer: Officer, traveller_id: uuid.UUID
    ) -> Timeline:
        timeline = await person_timeline(
            reading, node=node, officer=officer, traveller_id=traveller_id
        )
        return as_response(timeline, Timeline)

    @get(["/stats/flows", "/stats/flows.csv"], opt={"roles": HQ_ROLES})
    async def flows(
        self,
        request: Request[Any, Any, Any],
        node: Node,
        transaction: AsyncSession,
        officer: Officer,
        date_from: date,
        date_to: date,
        period: PeriodParam = "day",
        post: PostParam = None,
        output: FormatParam = None,
    ) -> Response[FlowStatistic]:
        async def compute(session: AsyncSession, node: Node) -> StatTable:
            return await flow_statistics(
                session,
                node=node,
                officer=officer,
                date_from=date_from,
                date_to=date_to,
                period=period,
                post=post,
            )

        return await _statistic(request, transaction, node, compute, output, FlowStatistic)

    @get(["/stats/net-flow", "/stats/net-flow.csv"], opt={"roles": HQ_ROLES})
    async def net_flow(
        self,
        request: Request[Any, Any, Any],
        node: Node,
        transaction: AsyncSession,
        officer: Officer,
        date_from: date,
        date_to: date,
        period: PeriodParam = "day",
        post: PostParam = None,
        output: FormatParam = None,
    ) -> Response[NetFlowStatistic]:
        async def compute(session: AsyncSession, node: Node) -> StatTable:
            return await flow_statistics(
                session,
                node=node,
                officer=officer,
                date_from=date_from,
                date_to=date_to,
                period=period,
                post=post,
                net_only=True,
            )

        return await _statistic(request, transaction, node, compute, output, NetFlowStatistic)

    @get(["/stats/demographics", "/stats/demographics.csv"], opt={"roles": HQ_ROLES})
    async def demographics(
        self,
        request: Request[Any, Any, Any],
        node: Node,
        transaction: AsyncSession,
        officer: Officer,
        date_from: date,
        date_to: date,
        post: PostParam = None,
        output: FormatParam = None,
    ) -> Response[DemographicStatistic]:
        async def compute(session: AsyncSession, node: Node) -> StatTable:
            return await demographic_statistics(
                session, node=node, officer=officer, date_from=date_from, date_to=date_to, post=post
            )

        return await _statistic(request, transaction, node, compute, output, DemographicStatistic)

    @get(["/stats/alerts", "/stats/alerts.csv"], opt={"roles": HQ_ROLES})
    async def alerts(
        self,
        request: Request[Any, Any, Any],
        node: Node,
        transaction: AsyncSession,
        officer: Officer,
        date_from: date,
        date_to: date,
        post: PostParam = None,
        output: FormatParam = None,
    ) -> Response[AlertStatistic]:
        async def compute(session: AsyncSession, node: Node) -> StatTable:
            return await alert_statistics(
                session, node=node, officer=officer, date_from=date_from, date_to=date_to, post=post
            )

        return await _statistic(request, transaction, node, compute, output, AlertStatistic)

    @get("/stays/open", opt={"roles": HQ_ROLES})
    async def stays_open(
        self,
        node: Node,
        reading: AsyncSession,
        officer: Officer,
        as_of: date | None = None,
        limit: LimitParam = 100,
        offset: OffsetParam = 0,
    ) -> StayPage:
        return await self._stays(node, reading, officer, as_of, limit, offset, overstays_only=False)

    @get("/stays/overstays", opt={"roles": HQ_ROLES})
    async def overstays(
        self,
        node: Node,
        reading: AsyncSession,
        officer: Officer,
        as_of: date | None = None,
        limit: LimitParam = 100,
        offset: OffsetParam = 0,
    ) -> StayPage:
        return await self._stays(node, reading, officer, as_of, limit, offset, overstays_only=True)

    async def _stays(
        self,
        node: Node,
        reading: AsyncSession,
        officer: Officer,
        as_of: date | None,
        limit: int,
        offset: int,
        *,
        overstays_only: bool,
    ) -> StayPage:
        day = as_of or utcnow().astimezone(node.settings.zone).date()
        page = await cross_post_stays(
            reading,
            node=node,
            officer=officer,
            as_of=day,
            overstays_only=overstays_only,
            limit=limit,
            offset=offset,
        )
        return as_response(page, StayPage)
