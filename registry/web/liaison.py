"""Liaison pages (national node): reconciliation report per post pair, discrepancies with
notes and resolution, the partner's requests for details, and hit/no-hit queries.

Cases are filtered (status, kind, post pair, days) and paged (``CASES_PER_PAGE``); one case
at a time is opened (``?case=ID``) with its history, the form to annotate it (reason codes,
references, a note that stays in the country, a resolution) and the form to see the
crossing behind it for one of the agreement's purposes.

Everything goes through ``sync.exchange`` and ``sync.reconcile`` (which audit, and refuse
any exchange unless the agreement is in force). Asking the partner a hit/no-hit question is
done by the page's script through ``POST /api/liaison/hits``, the API's own flow. A node
without the bilateral module or without a configured agreement says so plainly.
"""

from __future__ import annotations

import importlib.util
from datetime import date, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get, post
from litestar.params import Parameter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.api.auth import node_of
from registry.models import Officer, utcnow
from registry.node import Node
from registry.problems import Problem
from registry.web.i18n import N_, form_day
from registry.web.messages import agreement_term
from registry.web.nav import LIAISON
from registry.web.render import redirect, render, translator
from sync.exchange.hits import release_details
from sync.exchange.liaison_cases import crossing_behind_case, read_cases
from sync.exchange.liaison_notes import annotate
from sync.exchange.schemas import CrossingBehindCase, Reference
from sync.exchange.service import require_in_force
from sync.models import HitQuery
from sync.reconcile.report import period_report
from sync.reconcile.service import list_discrepancies, run_reconciliation

BILATERAL_MODULES = (
    "sync.exchange.service",
    "sync.exchange.liaison_cases",
    "sync.exchange.liaison_notes",
    "sync.reconcile.service",
)
OUTCOMES = {
    "matched": N_("Matched"),
    "pending": N_("Pending"),
    "exit_without_entry": N_("Exit without entry"),
    "entry_without_exit": N_("Entry without exit"),
    "data_mismatch": N_("Data mismatch"),
    "duplicate": N_("Duplicate"),
    "timing_anomaly": N_("Timing anomaly"),
}
STATUS_NAMES = {
    "open": N_("Unresolved"),
    "resolved": N_("Resolved"),
    "conflict": N_("Conflict"),
}
REASON_NAMES = {
    "recorded_late": N_("Recorded late"),
    "clock_error": N_("Clock error at a post"),
    "data_entry_error": N_("Data entry error"),
    "document_replaced": N_("Document replaced"),
    "crossed_elsewhere": N_("Crossed at another post"),
    "not_yet_crossed": N_("Has not crossed yet"),
    "duplicate_registration": N_("Registered twice"),
    "identity_confirmed": N_("Identity confirmed"),
    "referred_to_authorities": N_("Referred to the authorities"),
    "under_investigation": N_("Under investigation"),
}
CASES_PER_PAGE = 25
RESOLUTION_NAMES = {
    "explained": N_("Explained"),
    "data_error_corrected": N_("Data error corrected"),
    "referred": N_("Referred"),
    "false_alarm": N_("False alarm"),
}
NO_AGREEMENT = N_("No data-sharing agreement is configured on this node.")
NOT_NATIONAL = N_("Liaison work is done on the national node.")
MISSING_MODULE = N_("Not available on this node yet: the bilateral exchange module is missing.")
RECENT_QUERIES = 20


def module_available(name: str) -> bool:
    """Whether an optional module is installed on this node (without importing it)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def unavailable_reason(request: Request[Any, Any, Any]) -> str | None:
    """Why liaison work cannot happen here, or None when it can."""
    if not all(module_available(name) for name in BILATERAL_MODULES):
        return MISSING_MODULE
    if node_of(request).settings.role != "national":
        return NOT_NATIONAL
    if getattr(request.app.state, "exchange", None) is None:
        return NO_AGREEMENT
    return None


def _pair(text: str | None) -> tuple[str, str] | None:
    if not text:
        return None
    ours, _, theirs = text.partition(":")
    return (ours, theirs) if ours and theirs else None


def _labelled_report(report: dict[str, Any], _: Any) -> dict[str, Any]:
    report["count_rows"] = [
        (OUTCOMES.get(code, code), code, count) for code, count in report["counts"].items()
    ]
    for row in report["by_pair"]:
        row["count_rows"] = [
            (OUTCOMES.get(code, code), code, count) for code, count in row["counts"].items()
        ]
    return report


def _form_day(text: str | None, field: str) -> str:
    """A day from a form, typed as the pages write it (``i18n.form_day``: dd/mm/yyyy, or
    ISO); ISO for the queries, empty for none; anything else is a 422 naming the field."""
    day = form_day(text, field)
    return day.isoformat() if day is not None else ""


def _day(text: str) -> date | None:
    """A day of the filters (ISO text, empty for none)."""
    return date.fromisoformat(text) if text else None


def _query(pair: tuple[str, str] | None, filters: dict[str, str]) -> str:
    """The filters as a query string, for the pager's links."""

    values = {"pair": f"{pair[0]}:{pair[1]}" if pair else "", **filters}
    return urlencode({k: v for k, v in values.items() if v})


def _case_row(case: Any) -> dict[str, Any]:
    return {
        "id": case.id,
        "kind": case.kind,
        "our_post": case.our_post,
        "their_post": case.their_post,
        "at": case.at.isoformat(),
        "status": case.status,
        "resolution": case.resolution,
    }


async def _queries(session: Any) -> tuple[list[Any], list[Any]]:

    incoming = list(
        (
            await session.scalars(
                select(HitQuery).where(
                    col(HitQuery.direction) == "incoming", col(HitQuery.detail_status) == "pending"
                )
            )
        ).all()
    )
    outgoing = list(
        (
            await session.scalars(
                select(HitQuery)
                .where(col(HitQuery.direction) == "outgoing")
                .order_by(col(HitQuery.created_at).desc())
                .limit(RECENT_QUERIES)
            )
        ).all()
    )
    return incoming, outgoing


class LiaisonPagesController(Controller):
    """/web/liaison"""

    path = "/liaison"
    opt = {"roles": LIAISON}
    include_in_schema = False

    @get("/")
    async def index(
        self,
        request: Request[Any, Any, Any],
        node: Node,
        transaction: AsyncSession,
        officer: Officer,
        since: Annotated[str | None, Parameter(max_length=10)] = None,
        until: Annotated[str | None, Parameter(max_length=10)] = None,
        pair: Annotated[str | None, Parameter(max_length=70)] = None,
        status: Annotated[str | None, Parameter(max_length=10)] = None,
        kind: Annotated[str | None, Parameter(max_length=24)] = None,
        day_from: Annotated[str | None, Parameter(max_length=10)] = None,
        day_to: Annotated[str | None, Parameter(max_length=10)] = None,
        page: Annotated[int, Parameter(ge=1, le=100_000)] = 1,
        case: Annotated[str | None, Parameter(max_length=40)] = None,
        crossing: Annotated[str | None, Parameter(max_length=80)] = None,
        purpose: Annotated[str | None, Parameter(max_length=64)] = None,
    ) -> Response[str]:
        reason = unavailable_reason(request)
        if reason is not None:
            return await render(
                request,
                "liaison.html",
                active="liaison",
                unavailable=translator(request)(reason),
            )
        filters = {
            "status": status if status in STATUS_NAMES else "",
            "kind": kind if kind in OUTCOMES else "",
            "day_from": _form_day(day_from, "day_from"),
            "day_to": _form_day(day_to, "day_to"),
        }
        look = (crossing, purpose) if case and crossing and purpose else None
        first, last = form_day(since, "since"), form_day(until, "until")
        return await self._work(
            request, node, transaction, officer, first, last, _pair(pair), filters, page, case, look
        )

    async def _work(
        self,
        request: Request[Any, Any, Any],
        node: Node,
        session: AsyncSession,
        officer: Officer,
        since: date | None,
        until: date | None,
        pair: tuple[str, str] | None,
        filters: dict[str, str],
        page: int,
        opened: str | None,
        look: tuple[str, str] | None = None,
    ) -> Response[str]:

        today = utcnow().date()
        report = None
        exchange = await require_in_force(session, request.app.state.exchange)
        if since is not None:
            end = until or today + timedelta(days=1)
            result = await run_reconciliation(
                session, node=node, exchange=exchange, since=since, until=end, officer=officer
            )
            cases = await list_discrepancies(session)
            report = period_report(result, cases, since=since, until=end, pair=pair)
        listed = await read_cases(
            session,
            node=node,
            officer=officer,
            status=filters["status"] or None,
            kind=filters["kind"] or None,
            pair=pair,
            since=_day(filters["day_from"]),
            until=_day(filters["day_to"]),
            limit=CASES_PER_PAGE,
            offset=(page - 1) * CASES_PER_PAGE,
            opened=opened,
        )
        found, total, detail = listed.cases, listed.total, listed.opened
        behind: CrossingBehindCase | None = None
        if detail is not None and look is not None:
            if look[1] not in exchange.agreement.purposes:
                raise Problem(400, "Purpose not agreed", field="purpose")
            behind = await crossing_behind_case(
                session,
                node=node,
                officer=officer,
                case_id=detail.id,
                crossing_id=look[0],
                purpose=look[1],
                partner_node=exchange.partner.node,
            )
        incoming, outgoing = await _queries(session)
        _ = translator(request)
        return await render(
            request,
            "liaison.html",
            active="liaison",
            unavailable="",
            pairs=[
                f"{ours}:{theirs}"
                for ours, theirs in exchange.agreement.pairs_for(exchange.ours.node)
            ],
            since=since or today - timedelta(days=7),
            until=until or today,
            pair=f"{pair[0]}:{pair[1]}" if pair else "",
            report=_labelled_report(report, _) if report else None,
            cases=[_case_row(case) for case in found],
            total=total,
            page=page,
            pages=max(1, -(-total // CASES_PER_PAGE)),
            first=(page - 1) * CASES_PER_PAGE + 1 if found else 0,
            last=(page - 1) * CASES_PER_PAGE + len(found),
            filters=filters,
            query=_query(pair, filters),
            opened=detail,
            behind=behind,
            purposes={p: agreement_term(p, _) for p in exchange.agreement.purposes},
            statuses=STATUS_NAMES,
            reason_names=REASON_NAMES,
            outcomes=OUTCOMES,
            resolutions=RESOLUTION_NAMES,
            incoming=incoming,
            outgoing=outgoing,
            partner=exchange.partner.node,
        )

    @post("/discrepancies/{case_id:str}/notes")
    async def note(
        self,
        request: Request[Any, Any, Any],
        node: Node,
        transaction: AsyncSession,
        officer: Officer,
        case_id: str,
    ) -> Response[Any]:
        if unavailable_reason(request) is not None:
            raise Problem(404, "Not found", field="case_id", detail="no liaison work here")

        form = await request.form()
        text = str(form.get("note", "")).strip()
        resolution = str(form.get("resolution", "")) or None
        reasons = [str(r) for r in form.getall("reasons")] if "reasons" in form else []
        references = [
            Reference(kind="crossing", id=str(r)[:80])
            for r in (form.getall("references") if "references" in form else [])
        ]
        await annotate(
            transaction,
            node=node,
            officer=officer,
            case_id_=case_id,
            note=text[:2000] or None,
            resolution=resolution,
            reasons=reasons,
            references=references,
        )
        return redirect(f"/web/liaison?done=note_saved&case={case_id}")

    @post("/requests/{reference:str}")
    async def decide(
        self,
        request: Request[Any, Any, Any],
        node: Node,
        transaction: AsyncSession,
        officer: Officer,
        reference: str,
    ) -> Response[Any]:
        if unavailable_reason(request) is not None:
            raise Problem(404, "Not found", field="reference", detail="no liaison work here")

        approve = (await request.form()).get("approve") == "1"
        exchange = await require_in_force(transaction, request.app.state.exchange)
        await release_details(
            transaction,
            node=node,
            exchange=exchange,
            officer=officer,
            reference=reference,
            approve=approve,
        )
        return redirect(f"/web/liaison?done={'released' if approve else 'refused'}")
