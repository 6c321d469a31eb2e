"""Headquarters pages (hq analysts; admins too): search across posts, a person's timeline,
the statistics dashboard with server-drawn SVG charts, open stays and overstayers, and CSV
exports. Every figure comes from the services of ``registry.hq``, which audit each read."""

from __future__ import annotations

import csv
import io
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from registry.api.params import Offset
from registry.crossings.search import MAX_RESULTS, open_stays
from registry.hq.controller import CSV_MEDIA_TYPE, table_csv
from registry.hq.search import (
    CrossingFilter,
    hq_search_by_document,
    hq_search_by_name,
    hq_search_crossings,
)
from registry.hq.statistics import (
    AGE_BANDS,
    OLDEST_BAND,
    UNKNOWN_BAND,
    StatTable,
    alert_statistics,
    demographic_statistics,
    flow_statistics,
)
from registry.hq.stays import cross_post_stays
from registry.hq.timeline import person_timeline
from registry.models import Officer, utcnow
from registry.node import Node
from registry.problems import Problem
from registry.web.charts import Series, bar_chart
from registry.web.i18n import N_, form_day
from registry.web.messages import EVIDENCE, SEXES, UNKNOWN, evidence_text, label
from registry.web.nav import HQ
from registry.web.render import render, translator
from registry.web.search import crossing_rows as post_crossing_rows

DEFAULT_DAYS = 30
MAX_DAYS = 366
STAYS_PAGE = 50
STAY_EXPORT_LIMIT = 500  # the services' page limit
DateParam = Annotated[str | None, Parameter(max_length=10)]  # i18n.form_day: dd/mm/yyyy or ISO
PostParam = Annotated[str | None, Parameter(max_length=32)]
StatName = Literal["flows", "net-flow", "demographics", "alerts"]
BAND_ORDER = [band for _, band in AGE_BANDS] + [OLDEST_BAND, UNKNOWN_BAND]
MOVEMENTS = (
    ("entries", N_("Entries"), "entry"),
    ("exits", N_("Exits"), "exit"),
    ("refused", N_("Refused"), "refused"),
)


def date_range(node: Node, date_from: date | None, date_to: date | None) -> tuple[date, date]:
    """The asked range, by default the last 30 local days; at most a year."""
    today = utcnow().astimezone(node.settings.zone).date()
    end = date_to or today
    start = date_from or end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise Problem(422, "Invalid range", field="date_to", detail="date_to is before date_from")
    if (end - start).days >= MAX_DAYS:
        raise Problem(422, "Range too long", field="date_from", detail="at most 366 days")
    return start, end


def _days(start: date, end: date) -> list[str]:
    return [(start + timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]


def movement_series(_: Any) -> list[Series]:
    return [Series(key, _(text), css) for key, text, css in MOVEMENTS]


def flow_charts(table: StatTable, start: date, end: date, _: Any) -> list[dict[str, Any]]:
    """One chart per post: entries, exits and refused per local day."""
    per_post: dict[str, dict[tuple[str, str], int]] = defaultdict(dict)
    for row in table.rows:
        for key, _text, _css in MOVEMENTS:
            per_post[row["post"]][(row["period_start"], key)] = row[key]
    days = _days(start, end)
    return [
        {
            "post": post,
            "svg": bar_chart(f"chart-flows-{post}", f"{post}", days, movement_series(_), values),
            "rows": [r for r in table.rows if r["post"] == post],
        }
        for post, values in sorted(per_post.items())
    ]


def demographic_chart(
    table: StatTable, column: str, chart_id: str, title: str, order: list[str] | None, _: Any
) -> dict[str, Any]:
    """Entries, exits and refused summed by one demographic column."""
    totals: dict[tuple[str, str], int] = defaultdict(int)
    categories: set[str] = set()
    for row in table.rows:
        category = row[column] or "?"
        categories.add(category)
        for key, _text, _css in MOVEMENTS:
            totals[(category, key)] += row[key]
    ordered = [c for c in order if c in categories] if order else sorted(categories)
    rows = [
        {"category": c, **{key: totals[(c, key)] for key, _t, _c in MOVEMENTS}} for c in ordered
    ]
    return {
        "id": chart_id,
        "title": title,
        "svg": bar_chart(chart_id, title, ordered, movement_series(_), totals),
        "rows": rows,
    }


async def stays(
    session: AsyncSession,
    *,
    node: Node,
    officer: Officer,
    as_of: date,
    overstays_only: bool,
    limit: int,
    offset: int = 0,
) -> dict[str, Any]:
    """Open stays or overstayers, audited by the service that reads them.

    National: ``cross_post_stays`` (stays closed across posts by the document). A post holds
    only its own crossings, so it answers with its own ``open_stays`` (as ``GET
    /api/stays/...`` does), at most ``MAX_RESULTS`` of them, paged here.
    """
    if node.settings.role == "national":
        return await cross_post_stays(
            session,
            node=node,
            officer=officer,
            as_of=as_of,
            overstays_only=overstays_only,
            limit=limit,
            offset=offset,
        )
    views = await open_stays(
        session, node=node, officer=officer, as_of=as_of, overstays_only=overstays_only
    )
    for view in views:  # open_stays computed allowed_until from the rules in force
        view["allowed_until_source"] = "computed" if view["allowed_until"] else "unlimited"
    return {
        "as_of": as_of.isoformat(),
        "total": len(views),
        "capped": len(views) >= MAX_RESULTS,
        "limit": limit,
        "offset": offset,
        "items": views[offset : offset + limit],
    }


async def _statistic(
    session: AsyncSession,
    node: Node,
    officer: Officer,
    name: str,
    start: date,
    end: date,
    post: str | None,
) -> StatTable:
    common: dict[str, Any] = {"node": node, "officer": officer, "date_from": start, "date_to": end}
    if name in ("flows", "net-flow"):
        return await flow_statistics(
            session, **common, period="day", post=post, net_only=name == "net-flow"
        )
    if name == "demographics":
        return await demographic_statistics(session, **common, post=post)
    return await alert_statistics(session, **common, post=post)


def _csv(name: str, text: str) -> Response[str]:
    return Response(
        text,
        media_type=CSV_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


STAY_COLUMNS = (
    "crossing_id",
    "post",
    "entered_at",
    "surname",
    "given_names",
    "nationality",
    "document",
    "allowed_until",
    "allowed_until_source",
    "days_overstayed",
)


def stays_csv(items: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(STAY_COLUMNS)
    for item in items:
        person = item.get("traveller") or {}
        document = item.get("document") or {}
        writer.writerow(
            [
                item["id"],
                item["post"],
                item["occurred_at_local"],
                person.get("surname", ""),
                person.get("given_names", ""),
                person.get("nationality", ""),
                f"{document.get('issuing_state', '')} {document.get('number', '')}".strip(),
                item.get("allowed_until") or "",
                item.get("allowed_until_source") or "",
                item.get("days_overstayed", 0),
            ]
        )
    return buffer.getvalue()


@dataclass(frozen=True)
class SearchQuery:
    """What the search forms ask: a document, a name (and birth date) or a period."""

    issuing_state: str
    number: str
    name: str
    date_of_birth: date | None
    date_from: date | None
    date_to: date | None
    post: str
    nationality: str

    def form(self) -> dict[str, str]:
        """The values to show back in the forms."""
        return {
            key: value.isoformat() if isinstance(value, date) else (value or "")
            for key, value in self.__dict__.items()
        }


async def run_search(
    session: AsyncSession, node: Node, officer: Officer, query: SearchQuery, _: Any
) -> dict[str, Any]:
    """Run the one search the query asks for (each service audits what it returns)."""
    found: dict[str, Any] = {"documents": None, "people": None, "crossings": None}
    if query.issuing_state and query.number:
        views = await hq_search_by_document(
            session,
            node=node,
            officer=officer,
            issuing_state=query.issuing_state,
            number=query.number,
        )
        found["documents"] = crossing_rows(views, _)
    elif query.name:
        found["people"] = await hq_search_by_name(
            session, node=node, officer=officer, name=query.name, date_of_birth=query.date_of_birth
        )
    elif query.date_from or query.date_to:
        start, end = date_range(node, query.date_from, query.date_to)
        filters = CrossingFilter(
            start, end, query.post or None, None, query.nationality or None, None
        )
        page = await hq_search_crossings(
            session, node=node, officer=officer, filters=filters, limit=100
        )
        found["crossings"] = crossing_rows(page["items"], _)
    return found


def crossing_rows(views: list[dict[str, Any]], _: Any) -> list[dict[str, Any]]:
    """The post pages' crossing rows, with the local time as HQ tables show it."""
    for view in post_crossing_rows(views, _):
        view["when"] = view["occurred_at_local"][:16].replace("T", " ")
    return views


class HqPagesController(Controller):
    """/web/hq"""

    path = "/hq"
    opt = {"roles": HQ}
    include_in_schema = False

    @get("/dashboard")
    async def dashboard(
        self,
        request: Request[Any, Any, Any],
        node: Node,
        transaction: AsyncSession,
        officer: Officer,
        date_from: DateParam = None,
        date_to: DateParam = None,
        post: PostParam = None,
    ) -> Response[str]:
        start, end = date_range(
            node, form_day(date_from, "date_from"), form_day(date_to, "date_to")
        )
        post = post or None
        _ = translator(request)
        flows = await _statistic(transaction, node, officer, "flows", start, end, post)
        people = await _statistic(transaction, node, officer, "demographics", start, end, post)
        alerts = await _statistic(transaction, node, officer, "alerts", start, end, post)
        sexes = [label(SEXES, code, _) for code in SEXES]
        for row in people.rows:
            row["sex"] = label(SEXES, row["sex"], _)
            row["age_band"] = _(UNKNOWN) if row["age_band"] == UNKNOWN_BAND else row["age_band"]
        bands = [(_(UNKNOWN) if band == UNKNOWN_BAND else band) for band in BAND_ORDER]
        return await render(
            request,
            "hq_dashboard.html",
            active="hq_dashboard",
            date_from=start.isoformat(),
            date_to=end.isoformat(),
            post=post or "",
            flow_charts=flow_charts(flows, start, end, _),
            nationality=demographic_chart(
                people, "nationality", "chart-nationality", _("By nationality"), None, _
            ),
            sex=demographic_chart(people, "sex", "chart-sex", _("By sex"), sexes, _),
            age=demographic_chart(people, "age_band", "chart-age", _("By age band"), bands, _),
            alerts=alerts.rows,
            evidence_names={
                row["evidence"]: evidence_text(row["evidence"], _) for row in alerts.rows
            },
            movements=[(key, _(text)) for key, text, _css in MOVEMENTS],
            query=f"date_from={start.isoformat()}&date_to={end.isoformat()}"
            + (f"&post={post}" if post else ""),
        )

    @get("/export/{name:str}")
    async def export(
        self,
        node: Node,
        transaction: AsyncSession,
        officer: Officer,
        name: str,
        date_from: DateParam = None,
        date_to: DateParam = None,
        post: PostParam = None,
    ) -> Response[str]:
        stem = name.removesuffix(".csv")
        first, last = form_day(date_from, "date_from"), form_day(date_to, "date_to")
        if stem in ("open-stays", "overstays"):
            today = utcnow().astimezone(node.settings.zone).date()
            result = await stays(
                transaction,
                node=node,
                officer=officer,
                as_of=last or today,
                overstays_only=stem == "overstays",
                limit=STAY_EXPORT_LIMIT,
            )
            return _csv(stem, stays_csv(result["items"]))
        if stem not in ("flows", "net-flow", "demographics", "alerts"):
            raise Problem(404, "Not found", field="name", detail="no such export")
        start, end = date_range(node, first, last)
        table = await _statistic(transaction, node, officer, stem, start, end, post or None)
        return _csv(stem, table_csv(table))

    @get("/stays")
    async def stays(
        self,
        request: Request[Any, Any, Any],
        node: Node,
        transaction: AsyncSession,
        officer: Officer,
        kind: Literal["open", "overstays"] = "overstays",
        as_of: DateParam = None,
        offset: Offset = 0,
    ) -> Response[str]:
        day = form_day(as_of, "as_of") or utcnow().astimezone(node.settings.zone).date()
        result = await stays(
            transaction,
            node=node,
            officer=officer,
            as_of=day,
            overstays_only=kind == "overstays",
            limit=STAYS_PAGE,
            offset=offset,
        )
        return await render(
            request,
            "hq_stays.html",
            active="hq_stays",
            kind=kind,
            as_of=day.isoformat(),
            result=result,
            items=crossing_rows(result["items"], translator(request)),
            offset=offset,
            page=STAYS_PAGE,
        )

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
        date_of_birth: DateParam = None,
        date_from: DateParam = None,
        date_to: DateParam = None,
        post: PostParam = None,
        nationality: Annotated[str | None, Parameter(max_length=3)] = None,
    ) -> Response[str]:
        query = SearchQuery(
            (issuing_state or "").upper(),
            number or "",
            name or "",
            form_day(date_of_birth, "date_of_birth"),
            form_day(date_from, "date_from"),
            form_day(date_to, "date_to"),
            post or "",
            (nationality or "").upper(),
        )
        results = await run_search(reading, node, officer, query, translator(request))
        return await render(
            request, "hq_search.html", active="hq_search", query=query.form(), **results
        )

    @get("/travellers/{traveller_id:uuid}")
    async def timeline(
        self,
        request: Request[Any, Any, Any],
        node: Node,
        reading: AsyncSession,
        officer: Officer,
        traveller_id: uuid.UUID,
    ) -> Response[str]:
        timeline = await person_timeline(
            reading, node=node, officer=officer, traveller_id=traveller_id
        )
        _ = translator(request)
        for link in timeline["linked"]:
            for item in link["evidence"]:
                item["kind_text"] = label(EVIDENCE, item["kind"], _)
        return await render(
            request,
            "hq_timeline.html",
            active="hq_search",
            timeline=timeline,
            crossings=crossing_rows(timeline["crossings"], _),
            may_see_photos=officer.role == "hq_analyst",
        )
