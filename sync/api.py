"""Sync endpoints: enrolment, reference data, digests and peer management on national, and
a post's own sync status; with the HTTP pieces the other sync endpoints share (per-address
limits, signed JSON answers, a request's path and address). What a post pushes to national
is ``sync.ingest.controller``. Node-to-node calls are authenticated by Ed25519 signatures
(batches, photos, signed requests), not by officer tokens; peer management needs an admin
token."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import date
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.openapi import ResponseSpec
from litestar.status_codes import HTTP_200_OK, HTTP_409_CONFLICT
from msgspec import Meta
from sqlalchemy import select
from sqlmodel import col

from registry.api.auth import EVERYONE, node_of
from registry.api.params import SequenceNumber
from registry.base64url import b64url
from registry.models import Officer, OutboxEntry
from registry.node import Node
from registry.outbox import enqueue
from registry.problems import PROBLEM_MEDIA_TYPE, Problem
from registry.schemas import as_response, decode_as
from sync.batches import SIGNATURE
from sync.digest import bucket_ids, crossing_buckets, hour_buckets
from sync.peers import (
    DEFAULT_INVITATION_HOURS,
    MAX_INVITATION_HOURS,
    POST_CODE_PATTERN,
    decide_peer,
    issue_invitation,
    key_fingerprint,
    link_limits,
    list_peers,
    log_refusal,
    receive_enrolment,
    remove_peer,
    too_many_requests,
    verify_request,
)
from sync.records import REFERENCE_TYPES
from sync.reference import changes_for_post
from sync.schemas import (
    DayDigest,
    EnrolmentView,
    HourDigest,
    HourIds,
    Invitation,
    PeerView,
    ReferencePage,
    RemovedPeer,
    SyncStatus,
)
from sync.status import sync_status

REFERENCE_PAGE = 2000
# A reference page also stops once its payloads pass this size (at least one change per
# page): a face entry carries its listed portrait (~7-15 KB), so 2,000 of them would make
# one answer of tens of MB over a post's thin link.
REFERENCE_PAGE_BYTES = 2_000_000


def _within_page_bytes(rows: Sequence[Any]) -> Sequence[Any]:
    """The first rows whose payloads fit ``REFERENCE_PAGE_BYTES`` (at least one)."""
    size = 0
    for count, row in enumerate(rows):
        size += len(msgspec.json.encode(row.payload))
        if count and size > REFERENCE_PAGE_BYTES:
            return rows[:count]
    return rows


class EnrolmentRequest(msgspec.Struct, forbid_unknown_fields=True):
    node_code: Annotated[str, Meta(pattern=POST_CODE_PATTERN)]
    public_key: Annotated[str, Meta(min_length=40, max_length=64)]
    code: Annotated[str, Meta(min_length=20, max_length=40)]
    proof: Annotated[str, Meta(min_length=40, max_length=128)]


class InvitationRequest(msgspec.Struct, forbid_unknown_fields=True):
    hours: Annotated[float, Meta(gt=0, le=MAX_INVITATION_HOURS)] = DEFAULT_INVITATION_HOURS


def peer_view(peer: Any) -> dict[str, Any]:
    return {
        "node_code": peer.node_code,
        "role": peer.role,
        "status": peer.status,
        "public_key": peer.public_key,
        "key_sha256": key_fingerprint(peer.public_key),
        "enrolled_at": peer.enrolled_at.isoformat(),
        "decided_by": peer.decided_by,
    }


def signed_json(
    request: Request[Any, Any, Any], answer: Any, schema: type[msgspec.Struct]
) -> Response[bytes]:
    """A JSON response whose body is signed by this node (national is authoritative).

    ``answer`` (a ``schema`` instance, or the plain values of one) is checked against
    ``schema``, the Struct the handler documents with ``signed_answer``, before anything is
    signed: an answer that strays from its documented shape raises here instead of
    reaching the peer with a valid signature."""
    typed = answer if isinstance(answer, schema) else msgspec.convert(answer, schema)
    body = msgspec.json.encode(typed)
    signature = node_of(request).signing_key.sign(hashlib.sha256(body).digest())
    return Response(body, media_type="application/json", headers={SIGNATURE: b64url(signature)})


def signed_answer(
    schema: type[msgspec.Struct], *, conflict: type[msgspec.Struct] | None = None
) -> dict[int, ResponseSpec]:
    """The documented answers of a handler that sends ``signed_json``: the body is sent as
    the bytes that were signed, so Litestar cannot see its type; ``schema`` names the 200
    answer's, ``conflict`` that of a signed 409 refusal, if the handler sends one."""
    described = f"Signed by the node (Ed25519 over the body's SHA-256, {SIGNATURE})"
    answers = {
        HTTP_200_OK: ResponseSpec(
            data_container=schema, description=described, generate_examples=False
        )
    }
    if conflict is not None:
        answers[HTTP_409_CONFLICT] = ResponseSpec(
            data_container=conflict,
            description=f"Refused, not stored: {described}",
            generate_examples=False,
        )
    return answers


async def _limit_enrolment(request: Request[Any, Any, Any]) -> Response[Any] | None:
    return _throttled(request, "enrol")


async def limit_link(request: Request[Any, Any, Any]) -> Response[Any] | None:
    """A 429 answer when this address sends batches or photos too fast (else None)."""
    return _throttled(request, "batch or photo")


class SyncController(Controller):
    """/api/sync — the national node's side of the sync protocol."""

    path = "/api/sync"
    tags = ["sync"]

    @post("/enrol", opt={"public": True}, status_code=HTTP_200_OK, before_request=_limit_enrolment)
    async def enrol(
        self, request: Request[Any, Any, Any], node: Node, data: EnrolmentRequest
    ) -> EnrolmentView:
        """A post presents the one-time code national's admin issued for its post code
        (the source address's limit is checked before the body is read)."""
        try:
            async with node.db.write_transaction() as session:
                answer = await receive_enrolment(
                    session,
                    node=node,
                    node_code=data.node_code,
                    public_key=data.public_key,
                    code=data.code,
                    proof=data.proof,
                )
        except Problem as exc:
            log_refusal(
                link_limits(request.app.state), client_address(request), "enrolment", exc.detail
            )
            raise
        view = {
            "national_code": answer.national_code,
            "public_key": answer.national_key,
            "status": answer.status,
            "held_seq": answer.held_seq,
        }
        return as_response(view, EnrolmentView)

    @get("/reference", opt={"public": True}, responses=signed_answer(ReferencePage))
    async def reference(
        self, request: Request[Any, Any, Any], node: Node, since: SequenceNumber = 0
    ) -> Response[bytes]:
        """Reference data changed since a version (an outbox seq), for an approved post."""
        async with node.db.session() as session:
            peer = await verify_request(session, request.headers, "GET", request_path(request), b"")
            rows = (
                await session.execute(
                    select(
                        col(OutboxEntry.seq), col(OutboxEntry.record_type), col(OutboxEntry.payload)
                    )
                    .where(
                        col(OutboxEntry.seq) > since,
                        col(OutboxEntry.record_type).in_(REFERENCE_TYPES),
                    )
                    .order_by(col(OutboxEntry.seq))
                    .limit(REFERENCE_PAGE)
                )
            ).all()
            latest = await session.scalar(
                select(col(OutboxEntry.seq)).order_by(col(OutboxEntry.seq).desc()).limit(1)
            )
        page = _within_page_bytes(rows)
        complete = len(page) == len(rows) < REFERENCE_PAGE
        version = (latest or since) if complete else page[-1].seq
        changes = changes_for_post(
            ({"seq": r.seq, "type": r.record_type, "payload": r.payload} for r in page),
            peer.node_code,
        )
        page_answer = {"version": version, "complete": complete, "changes": changes}
        return signed_json(request, page_answer, ReferencePage)

    @get("/digest", opt={"public": True})
    async def digest(self, request: Request[Any, Any, Any], node: Node) -> DayDigest:
        """Per-day bucket hashes of the crossings received from the calling post."""
        async with node.db.session() as session:
            peer = await verify_request(session, request.headers, "GET", request_path(request), b"")
            buckets = await crossing_buckets(session, peer.node_code)
        return as_response({"origin": peer.node_code, "buckets": buckets}, DayDigest)

    @get("/digest/{day:str}", opt={"public": True})
    async def digest_hours(
        self, request: Request[Any, Any, Any], node: Node, day: str
    ) -> HourDigest:
        async with node.db.session() as session:
            peer = await verify_request(session, request.headers, "GET", request_path(request), b"")
            buckets = await hour_buckets(session, peer.node_code, _day(day))
        view = {"origin": peer.node_code, "day": day, "buckets": buckets}
        return as_response(view, HourDigest)

    @get("/digest/{day:str}/{hour:str}", opt={"public": True})
    async def digest_ids(
        self, request: Request[Any, Any, Any], node: Node, day: str, hour: str
    ) -> HourIds:
        if not (len(hour) == 2 and hour.isdigit() and int(hour) < 24):
            raise Problem(400, "Invalid hour", field="hour", detail="give HH, 00 to 23")
        async with node.db.session() as session:
            peer = await verify_request(session, request.headers, "GET", request_path(request), b"")
            ids = await bucket_ids(session, peer.node_code, _day(day), hour)
        view = {"origin": peer.node_code, "day": day, "hour": hour, "ids": ids}
        return as_response(view, HourIds)


def _day(text: str) -> str:
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError as exc:
        raise Problem(400, "Invalid day", field="day", detail="give YYYY-MM-DD") from exc


class PeerController(Controller):
    """/api/sync/peers — enrolled nodes, for the national admin."""

    path = "/api/sync/peers"
    tags = ["sync"]
    opt = {"roles": ("admin",)}

    @get("/")
    async def index(self, request: Request[Any, Any, Any], node: Node) -> list[PeerView]:
        async with node.db.session() as session:
            views = [peer_view(p) for p in await list_peers(session)]
        return as_response(views, list[PeerView])

    @post("/{node_code:str}/approve", status_code=HTTP_200_OK)
    async def approve(
        self, request: Request[Any, Any, Any], officer: Officer, node_code: str
    ) -> PeerView:
        return await _decide(request, officer, node_code, "approved")

    @post("/{node_code:str}/revoke", status_code=HTTP_200_OK)
    async def revoke(
        self, request: Request[Any, Any, Any], officer: Officer, node_code: str
    ) -> PeerView:
        return await _decide(request, officer, node_code, "revoked")

    @post("/{node_code:str}/invite", status_code=HTTP_200_OK)
    async def invite(
        self, request: Request[Any, Any, Any], node: Node, officer: Officer, node_code: str
    ) -> Invitation:
        """A one-time enrolment code for a post code (shown once; only its hash is kept)."""
        body = await request.body()
        data = decode_as(body or b"{}", InvitationRequest)
        async with node.db.write_transaction() as session:
            code, invitation = await issue_invitation(
                session, node=node, officer=officer, node_code=node_code, hours=data.hours
            )
        return Invitation(
            node_code=node_code, code=code, expires_at=invitation.expires_at.isoformat()
        )

    @post("/{node_code:str}/remove", status_code=HTTP_200_OK)
    async def remove(
        self, request: Request[Any, Any, Any], node: Node, officer: Officer, node_code: str
    ) -> RemovedPeer:
        """Delete a pending or revoked post."""
        async with node.db.write_transaction() as session:
            peer = await remove_peer(session, node=node, officer=officer, node_code=node_code)
        return as_response({**peer_view(peer), "removed": True}, RemovedPeer)


async def _decide(
    request: Request[Any, Any, Any], officer: Officer, node_code: str, status: str
) -> PeerView:
    node = node_of(request)
    async with node.db.write_transaction() as session:
        peer = await decide_peer(
            session, node=node, officer=officer, node_code=node_code, status=status
        )
        await enqueue(session, peer)
    return as_response(peer_view(peer), PeerView)


def request_path(request: Request[Any, Any, Any]) -> str:
    query = request.scope.get("query_string", b"").decode()
    return request.scope["path"] + (f"?{query}" if query else "")


def client_address(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


def _throttled(request: Request[Any, Any, Any], what: str) -> Response[Any] | None:
    """A 429 problem with Retry-After when this source address is over its limit."""
    limits = link_limits(request.app.state)
    limiter = limits.enrol if what == "enrol" else limits.batches
    wait = limiter.allow(client_address(request))
    if wait == 0.0:
        return None
    log_refusal(limits, client_address(request), what, "rate limited")
    body, headers = too_many_requests(wait, what)
    return Response(body, status_code=429, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


@get("/api/sync/status", opt={"roles": EVERYONE}, tags=["sync"])
async def status(node: Node) -> SyncStatus:
    """This post's backlog and days since its last successful sync (no personal data)."""
    return as_response(await sync_status(node), SyncStatus)
