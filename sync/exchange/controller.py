"""Exchange and liaison endpoints of a national node. Partner calls are authenticated by
the agreement's Ed25519 keys; liaison endpoints need a liaison officer's token."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any, Literal

import httpx
import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.status_codes import HTTP_200_OK
from msgspec import Meta
from sqlalchemy import select
from sqlmodel import col

from registry.api.auth import node_of
from registry.audit import audit
from registry.models import Officer, utcnow
from registry.problems import Problem, problem_response
from registry.schemas import CleanText
from registry.text import document_number_rule, given_names_rule, surname_rule
from sync.api import limit_link, signed_json
from sync.batches import BatchRejected, read_header
from sync.client import SyncError
from sync.exchange.client import signed_partner_call, verify_partner_request
from sync.exchange.hits import (
    answer_hit_query,
    blind_query,
    evaluate_for_partner,
    release_details,
    unblind,
)
from sync.exchange.liaison import NOTE, annotate
from sync.exchange.service import Exchange, Replay, receive_from_partner, require_in_force
from sync.links import link_client
from sync.models import HitQuery
from sync.peers import header_signed_by, link_limits, log_refusal
from sync.receiver import BatchGap, record_rejection
from sync.reconcile.report import discrepancy_view, period_report, report_csv
from sync.reconcile.service import list_discrepancies, run_reconciliation

LIAISON = ("liaison",)


def exchange_of(request: Request[Any, Any, Any]) -> Exchange | None:
    return getattr(request.app.state, "exchange", None)


def _path(request: Request[Any, Any, Any]) -> str:
    query = request.scope.get("query_string", b"").decode()
    return request.scope["path"] + (f"?{query}" if query else "")


class HitAsk(msgspec.Struct, forbid_unknown_fields=True):
    kind: Literal["document", "name_dob"]
    pseudonym: Annotated[str, Meta(min_length=43, max_length=43)]


class DetailAsk(msgspec.Struct, forbid_unknown_fields=True):
    """A request for the details behind a hit: it names one of the agreement's purposes."""

    purpose: Annotated[str, Meta(min_length=1, max_length=80)]


class HitEvaluate(msgspec.Struct, forbid_unknown_fields=True):
    kind: Literal["document", "name_dob"]
    blinded: Annotated[str, Meta(min_length=43, max_length=43)]


class PartnerController(Controller):
    """/api/exchange — called by the partner country's national node only."""

    path = "/api/exchange"
    tags = ["exchange"]
    opt = {"public": True}  # authenticated by the agreement's keys, not by tokens

    @post("/batches", status_code=HTTP_200_OK, before_request=limit_link)
    async def batches(self, request: Request[Any, Any, Any]) -> Response[Any]:
        node, exchange = node_of(request), exchange_of(request)
        body = await request.body()
        try:
            header, signature = read_header(request.headers)
            async with node.db.sessions() as session, session.begin():
                in_force = await require_in_force(session, exchange)
                ack, stored, keys = await receive_from_partner(
                    session,
                    node=node,
                    exchange=in_force,
                    header=header,
                    signature=signature,
                    body=body,
                )
        except BatchGap as gap:
            kept = gap.keys if isinstance(gap, Replay) else {}
            refused = signed_json(request, {"ack": gap.ack, "reason": gap.reason, "keys": kept})
            refused.status_code = 409
            return refused
        except BatchRejected as exc:
            partner = exchange.partner if exchange is not None else None
            if partner is not None and header_signed_by(
                request.headers, partner.node, partner.public_key
            ):
                async with node.db.write_transaction() as session:
                    await record_rejection(
                        session, node=node, origin="partner", reason=exc.reason, detail=str(exc)
                    )
            else:  # junk: not audited, only logged (rate-limited)
                address = request.client.host if request.client else "unknown"
                log_refusal(link_limits(request.app.state), address, "exchange batch", str(exc))
            return problem_response(
                403 if exc.reason in ("bad_signature", "unknown_sender") else 400,
                "Batch rejected",
                f"{exc.reason}: {exc}",
                [{"name": "batch", "reason": exc.reason}],
            )
        # signed: the double-blinded keys of the sender's records come back with the ack
        return signed_json(request, {"ack": ack, "stored": stored, "keys": keys})

    @post("/hits", status_code=HTTP_200_OK)
    async def hit(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        node, body = node_of(request), await request.body()
        async with node.db.write_transaction() as session:
            exchange = await require_in_force(session, exchange_of(request))
            verify_partner_request(exchange, request.headers, "POST", _path(request), body)
            ask = msgspec.json.decode(body, type=HitAsk)
            answer = await answer_hit_query(
                session, node=node, exchange=exchange, kind=ask.kind, value=ask.pseudonym
            )
        return signed_json(request, answer)

    @post("/hits/evaluate", status_code=HTTP_200_OK)
    async def evaluate(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        """The oblivious PRF: the partner's blinded question raised to our scalar."""
        node, body = node_of(request), await request.body()
        async with node.db.write_transaction() as session:
            exchange = await require_in_force(session, exchange_of(request))
            verify_partner_request(exchange, request.headers, "POST", _path(request), body)
            ask = msgspec.json.decode(body, type=HitEvaluate)
            answer = await evaluate_for_partner(
                session, node=node, exchange=exchange, kind=ask.kind, blinded=ask.blinded
            )
        return signed_json(request, answer)

    @post("/hits/{reference:str}/details", status_code=HTTP_200_OK)
    async def ask_details(self, request: Request[Any, Any, Any], reference: str) -> Response[bytes]:
        node, body = node_of(request), await request.body()
        async with node.db.write_transaction() as session:
            exchange = await require_in_force(session, exchange_of(request))
            verify_partner_request(exchange, request.headers, "POST", _path(request), body)
            ask = msgspec.json.decode(body or b"{}", type=DetailAsk)
            if ask.purpose not in exchange.agreement.purposes:
                raise Problem(
                    422,
                    "Purpose not in the agreement",
                    field="purpose",
                    detail=f"one of: {', '.join(exchange.agreement.purposes)}",
                )
            query = await _incoming(session, reference)
            if query.detail_status == "none":
                query.detail_status, query.purpose = "pending", ask.purpose
            await audit(
                session,
                origin=node.settings.node_code,
                officer=None,
                action="detail_request",
                record_type="hit_query",
                record_id=reference,
                purpose="exchange",
                detail={
                    "purpose": ask.purpose,
                    "agreement": exchange.agreement.id,
                    "version": exchange.agreement.version,
                },
            )
            status = query.detail_status
        return signed_json(request, {"reference": reference, "status": status})

    @get("/hits/{reference:str}/details")
    async def details(self, request: Request[Any, Any, Any], reference: str) -> Response[bytes]:
        node = node_of(request)
        async with node.db.session() as session:
            exchange = await require_in_force(session, exchange_of(request))
            verify_partner_request(exchange, request.headers, "GET", _path(request), b"")
            query = await _incoming(session, reference)
            records = query.released if query.detail_status == "approved" else []
            status = query.detail_status
        return signed_json(request, {"reference": reference, "status": status, "records": records})


async def _incoming(session: Any, reference: str) -> HitQuery:
    query = await session.get(HitQuery, reference)
    if query is None or query.direction != "incoming":
        raise Problem(404, "Unknown reference", field="reference")
    return query


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


Resolution = Literal["explained", "data_error_corrected", "referred", "false_alarm"]


class Note(CleanText, forbid_unknown_fields=True):
    note: Annotated[str, Meta(min_length=1, max_length=2000), NOTE]
    resolution: Literal["explained", "data_error_corrected", "referred", "false_alarm"] | None = (
        None
    )


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
    """/api/liaison — the liaison team's hit/no-hit queries, reconciliation and cases."""

    path = "/api/liaison"
    tags = ["liaison"]
    opt = {"roles": LIAISON}

    @post("/hits", status_code=HTTP_200_OK)
    async def ask(
        self, request: Request[Any, Any, Any], officer: Officer, data: HitQueryInput
    ) -> dict[str, Any]:
        node = node_of(request)
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
        return {"hit": bool(answer["hit"]), "reference": answer["reference"]}

    @post("/hits/{reference:str}/details", status_code=HTTP_200_OK)
    async def request_details(
        self, request: Request[Any, Any, Any], reference: str, data: DetailAsk
    ) -> dict[str, Any]:
        node = node_of(request)
        async with node.db.session() as session:
            exchange = await require_in_force(session, exchange_of(request))
        if data.purpose not in exchange.agreement.purposes:
            raise Problem(
                422,
                "Purpose not in the agreement",
                field="purpose",
                detail=f"one of: {', '.join(exchange.agreement.purposes)}",
            )
        body = msgspec.json.encode({"purpose": data.purpose})
        return await _call(node, exchange, "POST", f"/api/exchange/hits/{reference}/details", body)

    @get("/hits/{reference:str}/details")
    async def fetch_details(
        self, request: Request[Any, Any, Any], officer: Officer, reference: str
    ) -> dict[str, Any]:
        node = node_of(request)
        async with node.db.session() as session:
            exchange = await require_in_force(session, exchange_of(request))
        answer = await _call(node, exchange, "GET", f"/api/exchange/hits/{reference}/details")
        if answer.get("records"):
            async with node.db.write_transaction() as session:
                query = await session.get(HitQuery, reference)
                if query is not None:
                    query.released, query.detail_status = answer["records"], "approved"
        return answer

    @get("/requests")
    async def pending(self, request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
        node = node_of(request)
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
            {
                "reference": q.reference,
                "kind": q.kind,
                "hit": q.hit,
                "purpose": q.purpose,
                "created_at": q.created_at.isoformat(),
            }
            for q in rows
        ]

    @post("/requests/{reference:str}", status_code=HTTP_200_OK)
    async def decide(
        self, request: Request[Any, Any, Any], officer: Officer, reference: str, data: Decision
    ) -> dict[str, Any]:
        node = node_of(request)
        async with node.db.write_transaction() as session:
            exchange = await require_in_force(session, exchange_of(request))
            query = await release_details(
                session,
                node=node,
                exchange=exchange,
                officer=officer,
                reference=reference,
                approve=data.approve,
            )
            return {
                "reference": reference,
                "status": query.detail_status,
                "released": len(query.released),
            }

    @post("/reconcile", status_code=HTTP_200_OK)
    async def reconcile(
        self, request: Request[Any, Any, Any], officer: Officer, data: Period
    ) -> dict[str, Any]:
        node = node_of(request)
        until = data.until or utcnow().date() + timedelta(days=1)
        async with node.db.write_transaction() as session:
            exchange = await require_in_force(session, exchange_of(request))
            result = await run_reconciliation(
                session,
                node=node,
                exchange=exchange,
                since=data.since,
                until=until,
                officer=officer,
            )
            cases = await list_discrepancies(session)
        return period_report(result, cases, since=data.since, until=until, pair=None)

    @get("/report")
    async def report(
        self,
        request: Request[Any, Any, Any],
        officer: Officer,
        since: date,
        until: date | None = None,
        pair: str | None = None,
        format: Literal["json", "csv"] = "json",
    ) -> Response[Any]:
        node = node_of(request)
        until = until or utcnow().date() + timedelta(days=1)
        chosen = _pair(pair)
        async with node.db.write_transaction() as session:
            exchange = await require_in_force(session, exchange_of(request))
            result = await run_reconciliation(
                session, node=node, exchange=exchange, since=since, until=until, officer=officer
            )
            cases = await list_discrepancies(session)
        if format == "csv":
            return Response(report_csv(result, pair=chosen), media_type="text/csv")
        return Response(period_report(result, cases, since=since, until=until, pair=chosen))

    @get("/discrepancies")
    async def cases(
        self,
        request: Request[Any, Any, Any],
        post: str | None = None,
        status: Literal["open", "resolved"] | None = None,
    ) -> list[dict[str, Any]]:
        node = node_of(request)
        async with node.db.session() as session:
            return [
                discrepancy_view(c)
                for c in await list_discrepancies(session, our_post=post, status=status)
            ]

    @post("/discrepancies/{case_id:str}/notes", status_code=HTTP_200_OK)
    async def note(
        self, request: Request[Any, Any, Any], officer: Officer, case_id: str, data: Note
    ) -> dict[str, Any]:
        node = node_of(request)
        async with node.db.write_transaction() as session:
            case = await annotate(
                session,
                node=node,
                officer=officer,
                case_id_=case_id,
                note=data.note,
                resolution=data.resolution,
            )
            return discrepancy_view(case)


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
