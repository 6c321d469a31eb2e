"""Liaison endpoints of a national node (/api/liaison): reconciliation, discrepancy cases
and their notes, the crossing behind a case, and hit/no-hit questions to the partner. They
need a liaison officer's token; the partner's own calls are ``sync.exchange.controller``."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any, Literal, TypeVar

import httpx
import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import ResponseHeader
from litestar.openapi import ResponseSpec
from litestar.params import Parameter
from litestar.status_codes import HTTP_200_OK
from msgspec import Meta
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.audit import audit
from registry.models import Officer, utcnow
from registry.node import Node
from registry.problems import Problem
from registry.schemas import CleanText
from registry.text import document_number_rule, given_names_rule, surname_rule
from sync.client import SyncError
from sync.exchange.client import signed_partner_call
from sync.exchange.controller import (
    LIAISON,
    DetailAsk,
    agreed_purpose,
    exchange_of,
)
from sync.exchange.hits import (
    blind_query,
    release_details,
    unblind,
)
from sync.exchange.liaison import MAX_REFERENCES, NOTE, ReasonCode, Resolution, case_view
from sync.exchange.liaison_cases import PAGE_SIZE, crossing_behind_case, read_cases
from sync.exchange.liaison_notes import annotate
from sync.exchange.schemas import (
    CaseView,
    CrossingBehindCase,
    DetailDecision,
    DetailRequest,
    DetailStatus,
    HitAnswer,
    PeriodReport,
    Reference,
    ReleasedDetails,
)
from sync.exchange.service import Exchange, require_in_force
from sync.links import link_client
from sync.models import HitQuery
from sync.reconcile.model import ReconcileResult
from sync.reconcile.report import period_report, report_csv
from sync.reconcile.service import list_discrepancies, run_reconciliation

QUERY_NUMBER = document_number_rule(40)
QUERY_SURNAME = surname_rule(120, min_length=1)
QUERY_GIVEN_NAMES = given_names_rule(200)


class HitQueryInput(CleanText, forbid_unknown_fields=True):
    """A liaison officer's hit/no-hit question; its text is clean text (registry.text)."""

    kind: Literal["document", "name_dob"]
    issuing_state: Annotated[str, Meta(pattern=r"^[A-Z]{1,3}<{0,2}$")] | None = None
    number: Annotated[str, Meta(min_length=1, max_length=40), QUERY_NUMBER] | None = None
    surname: Annotated[str, Meta(min_length=1, max_length=120), QUERY_SURNAME] | None = None
    given_names: Annotated[str, Meta(max_length=200), QUERY_GIVEN_NAMES] | None = None
    date_of_birth: date | None = None


class Decision(msgspec.Struct, forbid_unknown_fields=True):
    approve: bool


class Note(CleanText, forbid_unknown_fields=True):
    """An event on a case: reason codes, references, a note that stays in this country
    (unless the agreement lets free text cross) and optionally a resolution."""

    note: Annotated[str, Meta(min_length=1, max_length=2000), NOTE] | None = None
    resolution: Resolution | None = None
    reasons: Annotated[list[ReasonCode], Meta(max_length=10)] = []
    references: Annotated[list[Reference], Meta(max_length=MAX_REFERENCES)] = []


class Period(msgspec.Struct, forbid_unknown_fields=True):
    since: date
    until: date | None = None


def _pair(text: str | None) -> tuple[str, str] | None:
    if not text:
        return None
    ours, _, theirs = text.partition(":")
    if not ours or not theirs:
        raise Problem(400, "Invalid pair", field="pair", detail="give OUR-POST:THEIR-POST")
    return ours, theirs


class LiaisonController(Controller):
    """/api/liaison — the liaison team's hit/no-hit queries, reconciliation and cases.

    The handlers that call the partner open their transactions themselves: the partner's
    answer may take up to 30 seconds and must not be awaited under the node's write lock
    (``registry.api.dependencies``)."""

    path = "/api/liaison"
    tags = ["liaison"]
    opt = {"roles": LIAISON}

    @post("/hits", status_code=HTTP_200_OK)
    async def ask(
        self, request: Request[Any, Any, Any], node: Node, officer: Officer, data: HitQueryInput
    ) -> HitAnswer:
        async with node.db.session() as session:
            exchange = await require_in_force(session, exchange_of(request))
        query = {
            "issuing_state": data.issuing_state,
            "number": data.number,
            "surname": data.surname,
            "given_names": data.given_names,
            "date_of_birth": data.date_of_birth.isoformat() if data.date_of_birth else None,
        }
        r, blinded = blind_query(data.kind, query)
        evaluation = msgspec.json.encode({"kind": data.kind, "blinded": blinded})
        evaluated = await _call(node, exchange, "POST", "/api/exchange/hits/evaluate", evaluation)
        try:
            value = unblind(r, evaluated.get("evaluated"))
        except ValueError as exc:
            raise Problem(502, "Partner answer invalid", field="partner", detail=str(exc)) from exc
        body = msgspec.json.encode({"kind": data.kind, "pseudonym": value})
        answer = await _call(node, exchange, "POST", "/api/exchange/hits", body)
        async with node.db.write_transaction() as session:
            session.add(
                HitQuery(
                    reference=answer["reference"],
                    direction="outgoing",
                    partner=exchange.partner.node,
                    kind=data.kind,
                    pseudonym=value,
                    hit=bool(answer["hit"]),
                    asked_by=officer.username,
                )
            )
            await audit(
                session,
                origin=node.settings.node_code,
                officer=officer,
                action="hit_query",
                record_type="hit_query",
                record_id=answer["reference"],
                purpose="liaison",
                detail={
                    "kind": data.kind,
                    "hit": answer["hit"],
                    "agreement": exchange.agreement.id,
                    "version": exchange.agreement.version,
                },
            )
        return HitAnswer(hit=bool(answer["hit"]), reference=answer["reference"])

    @post("/hits/{reference:str}/details", status_code=HTTP_200_OK)
    async def request_details(
        self,
        request: Request[Any, Any, Any],
        node: Node,
        officer: Officer,
        reference: str,
        data: DetailAsk,
    ) -> DetailStatus:
        """Ask the partner for the details behind a hit, for one of the agreement's purposes
        (the request is committed before the partner is asked)."""
        async with node.db.write_transaction() as session:
            exchange = await require_in_force(session, exchange_of(request))
            purpose = agreed_purpose(exchange, data.purpose)
            query = await session.get(HitQuery, reference)
            if query is None or query.direction != "outgoing":
                raise Problem(404, "Unknown reference", field="reference")
            query.detail_purpose = purpose
            await audit(
                session,
                origin=node.settings.node_code,
                officer=officer,
                action="detail_request",
                record_type="hit_query",
                record_id=reference,
                purpose=purpose,
            )
        path = f"/api/exchange/hits/{reference}/details"
        body = msgspec.json.encode({"purpose": purpose})
        return _partner_answer(await _call(node, exchange, "POST", path, body), DetailStatus)

    @get("/hits/{reference:str}/details")
    async def fetch_details(
        self, request: Request[Any, Any, Any], node: Node, officer: Officer, reference: str
    ) -> ReleasedDetails:
        async with node.db.session() as session:
            exchange = await require_in_force(session, exchange_of(request))
        answer = await _call(node, exchange, "GET", f"/api/exchange/hits/{reference}/details")
        details = _partner_answer(answer, ReleasedDetails)
        if details.records:
            async with node.db.write_transaction() as session:
                query = await session.get(HitQuery, reference)
                if query is not None:
                    query.released, query.detail_status = details.records, "approved"
        return details

    @get("/requests")
    async def pending(self, node: Node) -> list[DetailRequest]:
        async with node.db.session() as session:
            rows = (
                await session.scalars(
                    select(HitQuery).where(
                        col(HitQuery.direction) == "incoming",
                        col(HitQuery.detail_status) == "pending",
                    )
                )
            ).all()
        return [
            DetailRequest(
                reference=q.reference,
                kind=q.kind,
                hit=q.hit,
                purpose=q.detail_purpose,
                created_at=q.created_at.isoformat(),
            )
            for q in rows
        ]

    @post("/requests/{reference:str}", status_code=HTTP_200_OK)
    async def decide(
        self,
        request: Request[Any, Any, Any],
        node: Node,
        transaction: AsyncSession,
        officer: Officer,
        reference: str,
        data: Decision,
    ) -> DetailDecision:
        exchange = await require_in_force(transaction, exchange_of(request))
        query = await release_details(
            transaction,
            node=node,
            exchange=exchange,
            officer=officer,
            reference=reference,
            approve=data.approve,
        )
        return DetailDecision(
            reference=reference, status=query.detail_status, released=len(query.released)
        )

    @post("/reconcile", status_code=HTTP_200_OK)
    async def reconcile(
        self,
        request: Request[Any, Any, Any],
        node: Node,
        transaction: AsyncSession,
        officer: Officer,
        data: Period,
    ) -> PeriodReport:
        until = data.until or utcnow().date() + timedelta(days=1)
        return await _period_report(
            request, node, transaction, officer, since=data.since, until=until, pair=None
        )

    @get(
        "/report",
        responses={
            HTTP_200_OK: ResponseSpec(
                data_container=PeriodReport,
                description="The period report; with format=csv its discrepancies as CSV",
            )
        },
    )
    async def report(
        self,
        request: Request[Any, Any, Any],
        node: Node,
        transaction: AsyncSession,
        officer: Officer,
        since: date,
        until: date | None = None,
        pair: str | None = None,
        format: Literal["json", "csv"] = "json",
    ) -> Response[Any]:
        until = until or utcnow().date() + timedelta(days=1)
        chosen = _pair(pair)
        if format == "csv":
            result = await _reconciled(request, node, transaction, officer, since, until, chosen)
            return Response(report_csv(result, pair=chosen), media_type="text/csv")
        return Response(
            await _period_report(
                request, node, transaction, officer, since=since, until=until, pair=chosen
            )
        )

    @get(
        "/discrepancies",
        response_headers=[
            ResponseHeader(
                name="X-Total-Count",
                value="0",  # documents a string; each answer sets its own
                description="How many cases match the filters",
                documentation_only=True,
            )
        ],
    )
    async def cases(
        self,
        node: Node,
        transaction: AsyncSession,
        officer: Officer,
        post: Annotated[str | None, Parameter(max_length=32)] = None,
        status: Literal["open", "resolved", "conflict"] | None = None,
        kind: Literal[
            "exit_without_entry",
            "entry_without_exit",
            "data_mismatch",
            "duplicate",
            "timing_anomaly",
        ]
        | None = None,
        pair: Annotated[str | None, Parameter(max_length=70)] = None,
        since: date | None = None,
        until: date | None = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = PAGE_SIZE,
        offset: Annotated[int, Parameter(ge=0, le=10_000_000)] = 0,
    ) -> Response[list[CaseView]]:
        """Cases by status, kind, pair and day, oldest first, one page at a time (the total
        is in ``X-Total-Count``), each with its history."""
        listed = await read_cases(
            transaction,
            node=node,
            officer=officer,
            status=status,
            kind=kind,
            pair=_pair(pair),
            since=since,
            until=until,
            post=post,
            limit=limit,
            offset=offset,
        )
        views = [await case_view(transaction, c) for c in listed.cases]
        return Response(views, headers={"X-Total-Count": str(listed.total)})

    @post("/discrepancies/{case_id:str}/notes", status_code=HTTP_200_OK)
    async def note(
        self, node: Node, transaction: AsyncSession, officer: Officer, case_id: str, data: Note
    ) -> CaseView:
        case = await annotate(
            transaction,
            node=node,
            officer=officer,
            case_id_=case_id,
            note=data.note,
            resolution=data.resolution,
            reasons=list(data.reasons),
            references=list(data.references),
        )
        return await case_view(transaction, case)

    @get("/discrepancies/{case_id:str}/crossings/{crossing_id:str}")
    async def case_crossing(
        self,
        request: Request[Any, Any, Any],
        node: Node,
        transaction: AsyncSession,
        officer: Officer,
        case_id: Annotated[str, Parameter(max_length=80)],
        crossing_id: Annotated[str, Parameter(max_length=80)],
        purpose: Annotated[str, Parameter(max_length=64)],
    ) -> CrossingBehindCase:
        """The crossing behind one of our cases, for one of the agreement's purposes
        (audited with it): ours in full, the partner's as it sent it."""
        exchange = await require_in_force(transaction, exchange_of(request))
        return await crossing_behind_case(
            transaction,
            node=node,
            officer=officer,
            case_id=case_id,
            crossing_id=crossing_id,
            purpose=agreed_purpose(exchange, purpose),
            partner_node=exchange.partner.node,
        )


async def _reconciled(
    request: Request[Any, Any, Any],
    node: Node,
    session: AsyncSession,
    officer: Officer,
    since: date,
    until: date,
    pair: tuple[str, str] | None = None,
) -> ReconcileResult:
    exchange = await require_in_force(session, exchange_of(request))
    pairs = exchange.agreement.pairs_for(exchange.ours.node)
    if pair is not None and pair not in pairs:  # refused before anything is reconciled
        known = ", ".join(f"{ours}:{theirs}" for ours, theirs in pairs)
        raise Problem(400, "Invalid pair", field="pair", detail=f"the agreement pairs {known}")
    return await run_reconciliation(
        session, node=node, exchange=exchange, since=since, until=until, officer=officer
    )


async def _period_report(
    request: Request[Any, Any, Any],
    node: Node,
    session: AsyncSession,
    officer: Officer,
    *,
    since: date,
    until: date,
    pair: tuple[str, str] | None,
) -> PeriodReport:
    """Reconcile the period and report it with the open cases (``period_report``)."""
    result = await _reconciled(request, node, session, officer, since, until, pair)
    cases = await list_discrepancies(session)
    body = period_report(result, cases, since=since, until=until, pair=pair)
    return msgspec.convert(body, PeriodReport)


T = TypeVar("T")


def _partner_answer(answer: dict[str, Any], shape: type[T]) -> T:
    """The partner's signed answer in the shape this node's partner endpoints give it."""
    try:
        return msgspec.convert(answer, shape)
    except msgspec.ValidationError as exc:
        raise Problem(502, "Partner answer invalid", field="partner", detail=str(exc)) from exc


async def _call(
    node: Any, exchange: Exchange, method: str, path: str, body: bytes = b""
) -> dict[str, Any]:
    try:
        async with link_client(node.settings, exchange.partner.url, timeout=30) as http:
            return await signed_partner_call(node, exchange, http, method, path, body)
    except (SyncError, httpx.HTTPError) as exc:
        raise Problem(
            502, "Partner unreachable or refused", field="partner", detail=str(exc)
        ) from exc
