"""Search pages at a post, for its officers and supervisors: a document or a name (with
the date of birth), a traveller's history at this post, and the post's open stays and
overstayers.

Every read goes through the post's search services (``registry.crossings.search``), the
same as ``GET /api/search/...``, ``/api/travellers/{id}/history`` and ``/api/stays/...``:
each audits what it returned, with its purpose (``search``, ``history``), in the node's
audit journal (the injected ``reading`` session, ``audited_read``) before the page leaves.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from registry.api.params import Offset
from registry.crossings.search import (
    MAX_RESULTS,
    open_stays,
    search_by_document,
    search_by_name,
    traveller_history,
)
from registry.models import Officer, utcnow
from registry.node import Node
from registry.web.i18n import form_day
from registry.web.messages import DECISIONS, DIRECTIONS, label
from registry.web.nav import DESK
from registry.web.render import render, translator

STAYS_PAGE = 50
NAME_RESULTS = 50
DayText = Annotated[str | None, Parameter(max_length=10)]


def crossing_rows(views: list[dict[str, Any]], _: Any) -> list[dict[str, Any]]:
    """Crossing views with their words in the reader's language."""
    for view in views:
        view.setdefault("traveller", None)
        view.setdefault("document", None)
        view["direction_text"] = label(DIRECTIONS, view["direction"], _)
        view["decision_text"] = label(DECISIONS, view["decision"], _)
    return views


class PostSearchPagesController(Controller):
    """/web/search, /web/travellers/{id}, /web/stays"""

    path = "/"
    opt = {"roles": DESK}
    include_in_schema = False

    @get("/search")
    async def search(
        self,
        request: Request[Any, Any, Any],
        node: Node,
        reading: AsyncSession,
        officer: Officer,
        issuing_state: Annotated[str | None, Parameter(max_length=3)] = None,
        number: Annotated[str | None, Parameter(max_length=40)] = None,
        name: Annotated[str | None, Parameter(max_length=200)] = None,
        date_of_birth: DayText = None,
    ) -> Response[str]:
        _ = translator(request)
        born = form_day(date_of_birth, "date_of_birth")
        query: dict[str, str] = {
            "issuing_state": (issuing_state or "").strip().upper(),
            "number": (number or "").strip(),
            "name": (name or "").strip(),
        }
        documents: list[dict[str, Any]] | None = None
        people: list[dict[str, Any]] | None = None
        if query["issuing_state"] and query["number"]:
            views = await search_by_document(
                reading,
                node=node,
                officer=officer,
                issuing_state=query["issuing_state"],
                number=query["number"],
            )
            documents = crossing_rows(views, _)
        elif query["name"]:
            people = await search_by_name(
                reading,
                node=node,
                officer=officer,
                name=query["name"],
                date_of_birth=born,
                limit=NAME_RESULTS,
            )
        return await render(
            request,
            "post_search.html",
            active="post_search",
            query=query,
            born=born,
            documents=documents,
            people=people,
        )

    @get("/travellers/{traveller_id:uuid}")
    async def history(
        self,
        request: Request[Any, Any, Any],
        node: Node,
        reading: AsyncSession,
        officer: Officer,
        traveller_id: uuid.UUID,
    ) -> Response[str]:
        history = await traveller_history(
            reading, node=node, officer=officer, traveller_id=traveller_id
        )
        crossings = crossing_rows(history["crossings"], translator(request))
        crossings.reverse()  # newest first, as the desk reads a history
        return await render(
            request,
            "post_traveller.html",
            active="post_search",
            person=history["traveller"],
            crossings=crossings,
        )

    @get("/stays")
    async def stays(
        self,
        request: Request[Any, Any, Any],
        node: Node,
        reading: AsyncSession,
        officer: Officer,
        kind: Literal["open", "overstays"] = "overstays",
        as_of: DayText = None,
        offset: Offset = 0,
    ) -> Response[str]:
        day = form_day(as_of, "as_of") or utcnow().astimezone(node.settings.zone).date()
        views = await open_stays(
            reading,
            node=node,
            officer=officer,
            as_of=day,
            overstays_only=kind == "overstays",
        )
        return await render(
            request,
            "post_stays.html",
            active="post_stays",
            kind=kind,
            as_of=day,
            total=len(views),
            capped=len(views) >= MAX_RESULTS,
            items=crossing_rows(views[offset : offset + STAYS_PAGE], translator(request)),
            offset=offset,
            page=STAYS_PAGE,
        )
