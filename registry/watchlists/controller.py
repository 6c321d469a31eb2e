"""Watchlist and alert endpoints: open alerts and their adjudication, alert figures, and
versioned watchlist entries (create, new version, deactivate, list, history).

Role rules live in ``registry.watchlists.policy``: the route roles below only say who may knock;
the services decide per entry/alert action (``protect`` is for protection officers).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.params import Parameter
from litestar.status_codes import HTTP_201_CREATED
from sqlalchemy.ext.asyncio import AsyncSession

from registry.api.params import Offset
from registry.models import Officer
from registry.node import Node
from registry.schemas import as_response
from registry.watchlists.alerts import adjudicate, adjudication_view, alert_figures, open_alerts
from registry.watchlists.matcher import apply_to_matcher
from registry.watchlists.schemas import (
    Action,
    AdjudicationRequest,
    AdjudicationView,
    AlertFigures,
    DeactivationRequest,
    EntryView,
    Kind,
    OpenAlert,
    WatchlistEntryChange,
    WatchlistEntryCreate,
)
from registry.watchlists.service import (
    create_entry,
    deactivate_entry,
    entry_history,
    entry_view,
    list_entries,
    update_entry,
)

ALERT_READERS = ("supervisor", "protection", "admin")
ALERT_ADJUDICATORS = ("supervisor", "protection")
FIGURE_READERS = ("supervisor", "hq_analyst", "admin")
ENTRY_MANAGERS = ("supervisor", "protection", "admin")


class AlertController(Controller):
    """/api/alerts"""

    path = "/api/alerts"
    tags = ["alerts"]

    @get("/", opt={"roles": ALERT_READERS}, summary="Open alerts at this post")
    async def open_at_post(
        self, node: Node, reading: AsyncSession, officer: Officer
    ) -> list[OpenAlert]:
        views = await open_alerts(reading, node=node, officer=officer)
        return as_response(views, list[OpenAlert])

    @get("/figures", opt={"roles": FIGURE_READERS}, summary="Alerts per kind of evidence")
    async def figures(self, node: Node) -> AlertFigures:
        async with node.db.session() as session:
            return as_response(await alert_figures(session), AlertFigures)

    @post(
        "/{alert_id:uuid}/adjudication",
        opt={"roles": ALERT_ADJUDICATORS},
        status_code=HTTP_201_CREATED,
        summary="Confirm or dismiss an alert (once)",
        description="Supervisors decide refer/notify alerts, protection officers protect alerts.",
    )
    async def adjudicate(
        self,
        node: Node,
        transaction: AsyncSession,
        officer: Officer,
        alert_id: uuid.UUID,
        data: AdjudicationRequest,
    ) -> AdjudicationView:
        decision = await adjudicate(
            transaction,
            node=node,
            officer=officer,
            alert_id=alert_id,
            outcome=data.outcome,
            reason=data.reason,
        )
        return as_response(adjudication_view(decision), AdjudicationView)


class WatchlistController(Controller):
    """/api/watchlist/entries"""

    path = "/api/watchlist/entries"
    tags = ["watchlist"]

    @get("/", opt={"roles": ENTRY_MANAGERS}, summary="Current watchlist entries")
    async def entries(
        self,
        node: Node,
        reading: AsyncSession,
        officer: Officer,
        kind: Kind | None = None,
        action: Action | None = None,
        include_inactive: bool = False,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
        offset: Offset = 0,
    ) -> list[EntryView]:
        found = await list_entries(
            reading,
            node=node,
            officer=officer,
            kind=kind,
            action=action,
            include_inactive=include_inactive,
            limit=limit,
            offset=offset,
        )
        return as_response([entry_view(entry) for entry in found], list[EntryView])

    @post(
        "/",
        opt={"roles": ENTRY_MANAGERS},
        status_code=HTTP_201_CREATED,
        summary="List a person or a document",
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        node: Node,
        officer: Officer,
        data: WatchlistEntryCreate,
    ) -> EntryView:
        # Its own transaction, not the injected one: the matcher takes the entry only once
        # it is committed (as for a new version and a deactivation below).
        async with node.db.write_transaction() as session:
            entry = await create_entry(session, node=node, officer=officer, data=data)
        apply_to_matcher(node, [entry])
        return as_response(entry_view(entry), EntryView)

    @post(
        "/{entry_id:uuid}/versions",
        opt={"roles": ENTRY_MANAGERS},
        status_code=HTTP_201_CREATED,
        summary="Change an entry by a new version",
    )
    async def change(
        self,
        request: Request[Any, Any, Any],
        node: Node,
        officer: Officer,
        entry_id: uuid.UUID,
        data: WatchlistEntryChange,
    ) -> EntryView:
        async with node.db.write_transaction() as session:
            entry = await update_entry(
                session,
                node=node,
                officer=officer,
                entry_id=entry_id,
                changes=data.changes(),
                change_reason=data.change_reason,
            )
        apply_to_matcher(node, [entry])
        return as_response(entry_view(entry), EntryView)

    @post(
        "/{entry_id:uuid}/deactivate",
        opt={"roles": ENTRY_MANAGERS},
        status_code=HTTP_201_CREATED,
        summary="Remove an entry from matching by a new, inactive version",
    )
    async def deactivate(
        self,
        request: Request[Any, Any, Any],
        node: Node,
        officer: Officer,
        entry_id: uuid.UUID,
        data: DeactivationRequest,
    ) -> EntryView:
        async with node.db.write_transaction() as session:
            entry = await deactivate_entry(
                session, node=node, officer=officer, entry_id=entry_id, reason=data.reason
            )
        apply_to_matcher(node, [entry])
        return as_response(entry_view(entry), EntryView)

    @get("/{entry_id:uuid}/history", opt={"roles": ENTRY_MANAGERS}, summary="Every version")
    async def history(
        self, node: Node, reading: AsyncSession, officer: Officer, entry_id: uuid.UUID
    ) -> list[EntryView]:
        versions = await entry_history(reading, node=node, officer=officer, entry_id=entry_id)
        return as_response([entry_view(entry) for entry in versions], list[EntryView])


def register_watchlist_routes() -> list[type[Controller]]:
    """The controllers to add to the app's ``route_handlers``."""
    return [AlertController, WatchlistController]
