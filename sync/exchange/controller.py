"""The partner's endpoints of a national node (/api/exchange): batches, hit/no-hit
evaluations and questions, detail requests, revocation notices. Every call is authenticated
by the agreement's Ed25519 keys. The liaison's endpoints are
``sync.exchange.liaison_controller``.

The handlers open their transactions themselves (``registry.api.dependencies``): the
partner's signature covers the body, which each reads from the network before it takes the
node's write lock, so that no caller holds the lock while its body trickles in."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.status_codes import HTTP_200_OK
from msgspec import Meta

from registry.audit import audit
from registry.node import Node
from registry.problems import Problem, problem_response
from sync.api import limit_link, signed_answer, signed_json
from sync.batches import BatchRejected, read_header
from sync.exchange.client import verify_partner_request
from sync.exchange.hits import (
    answer_hit_query,
    evaluate_for_partner,
)
from sync.exchange.lifecycle import accept_partner_revocation
from sync.exchange.receiving import Replay, receive_from_partner
from sync.exchange.schemas import (
    DetailStatus,
    EvaluatedPoint,
    HitAnswer,
    PartnerBatchAck,
    PartnerBatchRefusal,
    ReleasedDetails,
    RevocationAccepted,
)
from sync.exchange.service import Exchange, require_in_force
from sync.models import HitQuery
from sync.peers import header_signed_by, link_limits, log_refusal
from sync.receiver import BatchGap, record_rejection

LIAISON = ("liaison",)


def exchange_of(request: Request[Any, Any, Any]) -> Exchange | None:
    return getattr(request.app.state, "exchange", None)


def _path(request: Request[Any, Any, Any]) -> str:
    query = request.scope.get("query_string", b"").decode()
    return request.scope["path"] + (f"?{query}" if query else "")


class HitAsk(msgspec.Struct, forbid_unknown_fields=True):
    kind: Literal["document", "name_dob"]
    pseudonym: Annotated[str, Meta(min_length=43, max_length=43)]


class HitEvaluate(msgspec.Struct, forbid_unknown_fields=True):
    kind: Literal["document", "name_dob"]
    blinded: Annotated[str, Meta(min_length=43, max_length=43)]


Purpose = Annotated[str, Meta(pattern=r"\A[a-z][a-z0-9_]{0,63}\Z")]


class DetailAsk(msgspec.Struct, forbid_unknown_fields=True):
    """Why the details behind a hit are wanted: one of the agreement's purposes."""

    purpose: Purpose


class RevocationNotice(msgspec.Struct, forbid_unknown_fields=True):
    notice: Annotated[str, Meta(min_length=2, max_length=4000)]
    signature: Annotated[str, Meta(min_length=80, max_length=100)]


def agreed_purpose(exchange: Exchange, purpose: str) -> str:
    """``purpose`` must be one the agreement lists (400 naming ``purpose`` otherwise)."""
    if purpose not in exchange.agreement.purposes:
        raise Problem(
            400,
            "Purpose not agreed",
            field="purpose",
            detail=f"one of {', '.join(exchange.agreement.purposes)}",
        )
    return purpose


class PartnerController(Controller):
    """/api/exchange — called by the partner country's national node only."""

    path = "/api/exchange"
    tags = ["exchange"]
    opt = {"public": True}  # authenticated by the agreement's keys, not by tokens

    @post(
        "/batches",
        status_code=HTTP_200_OK,
        before_request=limit_link,
        responses=signed_answer(PartnerBatchAck, conflict=PartnerBatchRefusal),
    )
    async def batches(self, request: Request[Any, Any, Any], node: Node) -> Response[Any]:
        exchange = exchange_of(request)
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
            refusal = PartnerBatchRefusal(ack=gap.ack, reason=gap.reason, keys=kept)
            refused = signed_json(request, refusal, PartnerBatchRefusal)
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
        return signed_json(
            request, PartnerBatchAck(ack=ack, stored=stored, keys=keys), PartnerBatchAck
        )

    @post("/hits", status_code=HTTP_200_OK, responses=signed_answer(HitAnswer))
    async def hit(self, request: Request[Any, Any, Any], node: Node) -> Response[bytes]:
        body = await request.body()
        async with node.db.write_transaction() as session:
            exchange = await require_in_force(session, exchange_of(request))
            verify_partner_request(exchange, request.headers, "POST", _path(request), body)
            ask = msgspec.json.decode(body, type=HitAsk)
            answer = await answer_hit_query(
                session, node=node, exchange=exchange, kind=ask.kind, value=ask.pseudonym
            )
        return signed_json(request, answer, HitAnswer)

    @post("/hits/evaluate", status_code=HTTP_200_OK, responses=signed_answer(EvaluatedPoint))
    async def evaluate(self, request: Request[Any, Any, Any], node: Node) -> Response[bytes]:
        """The oblivious PRF: the partner's blinded question raised to our scalar."""
        body = await request.body()
        async with node.db.write_transaction() as session:
            exchange = await require_in_force(session, exchange_of(request))
            verify_partner_request(exchange, request.headers, "POST", _path(request), body)
            ask = msgspec.json.decode(body, type=HitEvaluate)
            answer = await evaluate_for_partner(
                session, node=node, exchange=exchange, kind=ask.kind, blinded=ask.blinded
            )
        return signed_json(request, answer, EvaluatedPoint)

    @post("/revocation", status_code=HTTP_200_OK, responses=signed_answer(RevocationAccepted))
    async def revocation(self, request: Request[Any, Any, Any], node: Node) -> Response[bytes]:
        """The partner's signed notice that it revoked the agreement version: exchange stops
        here at once and what we hold from it under that version is erased."""
        body, exchange = await request.body(), exchange_of(request)
        if exchange is None:
            raise Problem(409, "No agreement", field="agreement", detail="none configured")
        verify_partner_request(exchange, request.headers, "POST", _path(request), body)
        try:
            notice = msgspec.json.decode(body, type=RevocationNotice)
        except msgspec.ValidationError as exc:
            raise Problem(400, "Invalid notice", field="notice", detail=str(exc)) from exc
        try:
            async with node.db.write_transaction() as session:
                revocation = await accept_partner_revocation(
                    session,
                    node=node,
                    exchange=exchange,
                    notice=notice.notice.encode(),
                    signature=notice.signature,
                )
                answer = RevocationAccepted(
                    revoked=True,
                    agreement=revocation.agreement_id,
                    version=revocation.version,
                    erased=revocation.erased,
                )
        except ValueError as exc:
            raise Problem(403, "Notice refused", field="notice", detail=str(exc)) from exc
        return signed_json(request, answer, RevocationAccepted)

    @post(
        "/hits/{reference:str}/details",
        status_code=HTTP_200_OK,
        responses=signed_answer(DetailStatus),
    )
    async def ask_details(
        self, request: Request[Any, Any, Any], node: Node, reference: str
    ) -> Response[bytes]:
        body = await request.body()
        async with node.db.write_transaction() as session:
            exchange = await require_in_force(session, exchange_of(request))
            verify_partner_request(exchange, request.headers, "POST", _path(request), body)
            try:
                ask = msgspec.json.decode(body or b"{}", type=DetailAsk)
            except msgspec.ValidationError as exc:
                raise Problem(400, "Purpose missing", field="purpose", detail=str(exc)) from exc
            purpose = agreed_purpose(exchange, ask.purpose)
            query = await _incoming(session, reference)
            if query.detail_status == "none":
                query.detail_status = "pending"
                query.detail_purpose = purpose
            await audit(
                session,
                origin=node.settings.node_code,
                officer=None,
                action="detail_request",
                record_type="hit_query",
                record_id=reference,
                purpose=purpose,
                detail={
                    "asked_by": exchange.partner.node,
                    "agreement": exchange.agreement.id,
                    "version": exchange.agreement.version,
                },
            )
            status = query.detail_status
        return signed_json(request, DetailStatus(reference=reference, status=status), DetailStatus)

    @get("/hits/{reference:str}/details", responses=signed_answer(ReleasedDetails))
    async def details(
        self, request: Request[Any, Any, Any], node: Node, reference: str
    ) -> Response[bytes]:
        async with node.db.session() as session:
            exchange = await require_in_force(session, exchange_of(request))
            verify_partner_request(exchange, request.headers, "GET", _path(request), b"")
            query = await _incoming(session, reference)
            records = query.released if query.detail_status == "approved" else []
            status = query.detail_status
        released = ReleasedDetails(reference=reference, status=status, records=records)
        return signed_json(request, released, ReleasedDetails)


async def _incoming(session: Any, reference: str) -> HitQuery:
    query = await session.get(HitQuery, reference)
    if query is None or query.direction != "incoming":
        raise Problem(404, "Unknown reference", field="reference")
    return query
