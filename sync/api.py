"""Sync endpoints. Node-to-node calls are authenticated by Ed25519 signatures (batches,
photos, signed requests), not by officer tokens; peer management needs an admin token."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import date
from typing import Annotated, Any

import asyncpg
import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.status_codes import HTTP_200_OK
from msgspec import Meta
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from registry.api.auth import EVERYONE, node_of
from registry.api.params import SequenceNumber
from registry.audit import read_checkpoint_upload, store_received_checkpoints
from registry.models import Officer, OutboxEntry
from registry.node import Node
from registry.outbox import enqueue
from registry.problems import PROBLEM_MEDIA_TYPE, Problem, problem_response
from registry.receipts import public_key_from_text
from registry.schemas import decode_as
from sync.batches import SIGNATURE, BatchHeader, BatchRejected, _b64, read_header
from sync.digest import bucket_ids, crossing_buckets, hour_buckets
from sync.ingest import (
    BatchGap,
    IngestResult,
    ReceivedBatch,
    Turn,
    apply_overlapped,
    apply_received,
    applying,
    approved_sender,
    gc_paused,
    held_seq,
    ingest_photo,
    is_deadlock,
    receive_batch,
    record_rejection,
)
from sync.models import SyncPeer
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
    signer_of_batch,
    too_many_requests,
    verify_request,
)
from sync.quarantine import answers_of, entry_view, list_quarantine
from sync.records import REFERENCE_TYPES
from sync.reference import changes_for_post
from sync.status import sync_status

REFERENCE_PAGE = 2000
PREDECESSOR_WAIT_S = 3.0
PREDECESSOR_POLL_S = 0.05
REJECTION_STATUS = {
    "unknown_sender": 403,
    "sender_not_approved": 403,
    "bad_signature": 403,
    "forged_origin": 403,
    "forbidden_record": 403,
}


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


def signed_json(request: Request[Any, Any, Any], content: dict[str, Any]) -> Response[bytes]:
    """A JSON response whose body is signed by this node (national is authoritative)."""
    body = msgspec.json.encode(content)
    signature = node_of(request).signing_key.sign(hashlib.sha256(body).digest())
    return Response(body, media_type="application/json", headers={SIGNATURE: _b64(signature)})


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
        self, request: Request[Any, Any, Any], data: EnrolmentRequest
    ) -> dict[str, Any]:
        """A post presents the one-time code national's admin issued for its post code
        (the source address's limit is checked before the body is read)."""
        node = node_of(request)
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
            log_refusal(link_limits(request.app.state), _address(request), "enrolment", exc.detail)
            raise
        return {
            "national_code": answer.national_code,
            "public_key": answer.national_key,
            "status": answer.status,
            "held_seq": answer.held_seq,
        }

    @post("/batches", opt={"public": True}, status_code=HTTP_200_OK, before_request=limit_link)
    async def batches(self, request: Request[Any, Any, Any]) -> Response[Any]:
        node = node_of(request)
        body = await request.body()
        try:
            header, signature = read_header(request.headers)
            async with node.db.sessions() as session:
                peer = await approved_sender(session, header.origin)
            with gc_paused():
                result = await _receive_and_apply(node, header, signature, body, peer)
        except BatchGap as gap:
            return Response(
                {"ack": gap.ack, "reason": gap.reason, "detail": str(gap)}, status_code=409
            )
        except BatchRejected as exc:
            return await _reject(request, exc, body)
        return Response(
            {
                "ack": result.ack,
                "applied": result.applied,
                "quarantined": answers_of(result.quarantined),
            }
        )

    @post("/photos", opt={"public": True}, status_code=HTTP_200_OK, before_request=limit_link)
    async def photos(self, request: Request[Any, Any, Any]) -> Response[Any]:
        node = node_of(request)
        body = await request.body()
        try:
            header, signature = read_header(request.headers)
            async with node.db.sessions() as session, session.begin():
                photo = await ingest_photo(
                    session, node=node, header=header, signature=signature, body=body
                )
        except BatchRejected as exc:
            return await _reject(request, exc, body)
        stored = None if photo.quarantined else photo.sha256
        return Response({"stored": stored, "quarantined": answers_of(photo.quarantined)})

    @get("/quarantine", opt={"public": True})
    async def quarantine(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        """What national holds in quarantine of the calling post's records (newest first,
        every status), for the post's own status and banner."""
        node = node_of(request)
        async with node.db.session() as session:
            peer = await verify_request(session, request.headers, "GET", _path(request), b"")
            entries = await list_quarantine(session, origin=peer.node_code, status=None)
        return {"origin": peer.node_code, "entries": [entry_view(e) for e in entries]}

    @post("/audit-checkpoints", opt={"public": True}, status_code=HTTP_200_OK)
    async def audit_checkpoints(self, request: Request[Any, Any, Any]) -> dict[str, int]:
        """A post's signed checkpoints of its audit chain, sent once national holds the
        events they count. The request is signed by the post, each checkpoint too; national
        keeps them all (``registry.audit.store_received_checkpoints``) or none."""
        node = node_of(request)
        body = await request.body()
        async with node.db.session() as session:
            peer = await verify_request(session, request.headers, "POST", _path(request), body)
        checkpoints = read_checkpoint_upload(body)
        async with node.db.write_transaction() as session:
            stored = await store_received_checkpoints(
                session,
                sender=peer.node_code,
                public_key=public_key_from_text(peer.public_key),
                checkpoints=checkpoints,
            )
        return {"received": len(checkpoints), "stored": stored}

    @get("/reference", opt={"public": True})
    async def reference(
        self, request: Request[Any, Any, Any], since: SequenceNumber = 0
    ) -> Response[bytes]:
        """Reference data changed since a version (an outbox seq), for an approved post."""
        node = node_of(request)
        async with node.db.session() as session:
            peer = await verify_request(session, request.headers, "GET", _path(request), b"")
            rows = (
                await session.execute(
                    select(OutboxEntry.seq, OutboxEntry.record_type, OutboxEntry.payload)
                    .where(OutboxEntry.seq > since, OutboxEntry.record_type.in_(REFERENCE_TYPES))
                    .order_by(OutboxEntry.seq)
                    .limit(REFERENCE_PAGE)
                )
            ).all()
            latest = await session.scalar(
                select(OutboxEntry.seq).order_by(OutboxEntry.seq.desc()).limit(1)
            )
        complete = len(rows) < REFERENCE_PAGE
        version = (latest or since) if complete else rows[-1].seq
        changes = changes_for_post(
            ({"seq": r.seq, "type": r.record_type, "payload": r.payload} for r in rows),
            peer.node_code,
        )
        return signed_json(request, {"version": version, "complete": complete, "changes": changes})

    @get("/digest", opt={"public": True})
    async def digest(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        """Per-day bucket hashes of the crossings received from the calling post."""
        node = node_of(request)
        async with node.db.session() as session:
            peer = await verify_request(session, request.headers, "GET", _path(request), b"")
            buckets = await crossing_buckets(session, peer.node_code)
        return {"origin": peer.node_code, "buckets": buckets}

    @get("/digest/{day:str}", opt={"public": True})
    async def digest_hours(self, request: Request[Any, Any, Any], day: str) -> dict[str, Any]:
        node = node_of(request)
        async with node.db.session() as session:
            peer = await verify_request(session, request.headers, "GET", _path(request), b"")
            buckets = await hour_buckets(session, peer.node_code, _day(day))
        return {"origin": peer.node_code, "day": day, "buckets": buckets}

    @get("/digest/{day:str}/{hour:str}", opt={"public": True})
    async def digest_ids(
        self, request: Request[Any, Any, Any], day: str, hour: str
    ) -> dict[str, Any]:
        node = node_of(request)
        if not (len(hour) == 2 and hour.isdigit() and int(hour) < 24):
            raise Problem(400, "Invalid hour", field="hour", detail="give HH, 00 to 23")
        async with node.db.session() as session:
            peer = await verify_request(session, request.headers, "GET", _path(request), b"")
            ids = await bucket_ids(session, peer.node_code, _day(day), hour)
        return {"origin": peer.node_code, "day": day, "hour": hour, "ids": ids}


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
    async def index(self, request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
        node = node_of(request)
        async with node.db.session() as session:
            return [peer_view(p) for p in await list_peers(session)]

    @post("/{node_code:str}/approve", status_code=HTTP_200_OK)
    async def approve(
        self, request: Request[Any, Any, Any], officer: Officer, node_code: str
    ) -> dict[str, Any]:
        return await _decide(request, officer, node_code, "approved")

    @post("/{node_code:str}/revoke", status_code=HTTP_200_OK)
    async def revoke(
        self, request: Request[Any, Any, Any], officer: Officer, node_code: str
    ) -> dict[str, Any]:
        return await _decide(request, officer, node_code, "revoked")

    @post("/{node_code:str}/invite", status_code=HTTP_200_OK)
    async def invite(
        self, request: Request[Any, Any, Any], officer: Officer, node_code: str
    ) -> dict[str, Any]:
        """A one-time enrolment code for a post code (shown once; only its hash is kept)."""
        body = await request.body()
        data = decode_as(body or b"{}", InvitationRequest)
        node = node_of(request)
        async with node.db.write_transaction() as session:
            code, invitation = await issue_invitation(
                session, node=node, officer=officer, node_code=node_code, hours=data.hours
            )
        return {
            "node_code": node_code,
            "code": code,
            "expires_at": invitation.expires_at.isoformat(),
        }

    @post("/{node_code:str}/remove", status_code=HTTP_200_OK)
    async def remove(
        self, request: Request[Any, Any, Any], officer: Officer, node_code: str
    ) -> dict[str, Any]:
        """Delete a pending or revoked post."""
        node = node_of(request)
        async with node.db.write_transaction() as session:
            peer = await remove_peer(session, node=node, officer=officer, node_code=node_code)
        return {**peer_view(peer), "removed": True}


async def _decide(
    request: Request[Any, Any, Any], officer: Officer, node_code: str, status: str
) -> dict[str, Any]:
    node = node_of(request)
    async with node.db.write_transaction() as session:
        peer = await decide_peer(
            session, node=node, officer=officer, node_code=node_code, status=status
        )
        await enqueue(session, peer)
    return peer_view(peer)


async def _receive_and_apply(
    node: Node, header: BatchHeader, signature: bytes, body: bytes, peer: SyncPeer
) -> IngestResult:
    """Verify, decode and apply a batch; the decoded rows are freed when this returns."""
    batch = receive_batch(
        header,
        signature,
        body,
        public_key_from_text(peer.public_key),
        destination=node.settings.node_code,
        bulk=node.db.engine.dialect.name == "postgresql",
    )
    return await _apply_in_order(node, batch)


async def _apply_in_order(node: Node, batch: ReceivedBatch) -> IngestResult:
    """Apply a received batch in its own transaction.

    A post keeps batches in flight, so the next one usually arrives while national is
    still applying the one before. On PostgreSQL it is then applied in parallel and
    commits after its predecessor (``apply_overlapped``); should the two deadlock in the
    database, it is refused as a gap and the post resends it. Otherwise a batch that does
    not yet follow what national holds waits up to ``PREDECESSOR_WAIT_S`` for its
    predecessor before it is refused as a gap.
    """
    with applying(batch) as turn:
        if turn.predecessor is None:
            return await _apply_serially(node, batch, turn)
        try:
            async with node.db.sessions() as session, session.begin():
                return await apply_overlapped(session, node=node, batch=batch, turn=turn)
        except (DBAPIError, asyncpg.DeadlockDetectedError) as exc:
            if not is_deadlock(exc):
                raise
        async with node.db.sessions() as session:
            raise BatchGap(await held_seq(session, batch.header.origin), "deadlock")


async def _apply_serially(node: Node, batch: ReceivedBatch, turn: Turn) -> IngestResult:
    waited = 0.0
    while True:
        try:
            async with node.db.sessions() as session, session.begin():
                return await apply_received(session, node=node, batch=batch, turn=turn)
        except BatchGap as gap:
            if gap.reason != "gap" or waited >= PREDECESSOR_WAIT_S:
                raise
        await asyncio.sleep(PREDECESSOR_POLL_S)
        waited += PREDECESSOR_POLL_S


def _path(request: Request[Any, Any, Any]) -> str:
    query = request.scope.get("query_string", b"").decode()
    return request.scope["path"] + (f"?{query}" if query else "")


def _address(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


def _throttled(request: Request[Any, Any, Any], what: str) -> Response[Any] | None:
    """A 429 problem with Retry-After when this source address is over its limit."""
    limits = link_limits(request.app.state)
    limiter = limits.enrol if what == "enrol" else limits.batches
    wait = limiter.allow(_address(request))
    if wait == 0.0:
        return None
    log_refusal(limits, _address(request), what, "rate limited")
    body, headers = too_many_requests(wait, what)
    return Response(body, status_code=429, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


async def _reject(
    request: Request[Any, Any, Any], exc: BatchRejected, body: bytes
) -> Response[Any]:
    """Refuse a batch or photo. Only one whose header is signed by the enrolled post it
    names is audited and counted against that post; junk is only logged (rate-limited)."""
    node = node_of(request)
    async with node.db.sessions() as session:
        signer = await signer_of_batch(session, request.headers)
    if signer is None:
        limits = link_limits(request.app.state)
        wait = limits.junk.allow(_address(request))
        if wait > 0.0:
            problem, headers = too_many_requests(wait, "unsigned batch")
            return Response(
                problem, status_code=429, headers=headers, media_type=PROBLEM_MEDIA_TYPE
            )
        log_refusal(limits, _address(request), "batch", str(exc))
    else:
        async with node.db.write_transaction() as session:
            await record_rejection(
                session, node=node, origin=signer.node_code, reason=exc.reason, detail=str(exc)
            )
    status = REJECTION_STATUS.get(exc.reason, 400)
    return problem_response(
        status, "Batch rejected", f"{exc.reason}: {exc}", [{"name": "batch", "reason": exc.reason}]
    )


@get("/api/sync/status", opt={"roles": EVERYONE}, tags=["sync"])
async def status(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """This post's backlog and days since its last successful sync (no personal data)."""
    return await sync_status(node_of(request))
