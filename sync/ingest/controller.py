"""/api/sync endpoints through which a post pushes to national: its batches of records,
its photo files and its audit checkpoints, and its view of what national holds in
quarantine of its records. Authenticated by the post's Ed25519 signatures (batches,
photos, signed requests), not by officer tokens."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from litestar import Controller, Request, Response, get, post
from litestar.openapi import ResponseSpec
from litestar.status_codes import HTTP_200_OK
from sqlalchemy.exc import DBAPIError

from registry.api.auth import node_of
from registry.audit_checkpoints import read_checkpoint_upload, store_received_checkpoints
from registry.node import Node
from registry.problems import PROBLEM_MEDIA_TYPE, problem_response
from registry.receipts import public_key_from_text
from registry.schemas import as_response
from sync.api import client_address, limit_link, request_path
from sync.batches import BatchHeader, BatchRejected, read_header
from sync.ingest.apply import IngestResult, Turn, apply_overlapped, apply_received, in_hand
from sync.ingest.decode import gc_paused
from sync.ingest.photos import ingest_photo
from sync.ingest.store import is_deadlock
from sync.ingest.validation import ReceivedBatch, approved_sender, receive_batch
from sync.models import SyncPeer
from sync.peers import link_limits, log_refusal, signer_of_batch, too_many_requests, verify_request
from sync.quarantine import answers_of, entry_view, list_quarantine
from sync.receiver import BatchGap, held_seq, record_rejection
from sync.schemas import BatchAck, BatchGapAnswer, CheckpointsAck, PhotoAck, PostQuarantine

PREDECESSOR_WAIT_S = 3.0
PREDECESSOR_POLL_S = 0.05
REJECTION_STATUS = {
    "unknown_sender": 403,
    "sender_not_approved": 403,
    "bad_signature": 403,
    "forged_origin": 403,
    "forbidden_record": 403,
}


class IngestController(Controller):
    """/api/sync — what a post pushes to national."""

    path = "/api/sync"
    tags = ["sync"]

    @post(
        "/batches",
        opt={"public": True},
        status_code=HTTP_200_OK,
        before_request=limit_link,
        responses={
            409: ResponseSpec(
                BatchGapAnswer, description="The batch does not follow what national holds"
            )
        },
    )
    async def batches(self, request: Request[Any, Any, Any], node: Node) -> Response[BatchAck]:
        body = await request.body()
        try:
            header, signature = read_header(request.headers)
            async with node.db.sessions() as session:
                peer = await approved_sender(session, header.origin)
            with gc_paused():
                result = await _receive_and_apply(node, header, signature, body, peer)
        except BatchGap as gap:
            return _gap_answer(gap)
        except BatchRejected as exc:
            return await _reject(request, exc, body)
        view = {
            "ack": result.ack,
            "applied": result.applied,
            "quarantined": answers_of(result.quarantined),
        }
        return Response(as_response(view, BatchAck))

    @post("/photos", opt={"public": True}, status_code=HTTP_200_OK, before_request=limit_link)
    async def photos(self, request: Request[Any, Any, Any], node: Node) -> Response[PhotoAck]:
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
        view = {"stored": stored, "quarantined": answers_of(photo.quarantined)}
        return Response(as_response(view, PhotoAck))

    @get("/quarantine", opt={"public": True})
    async def quarantine(self, request: Request[Any, Any, Any], node: Node) -> PostQuarantine:
        """What national holds in quarantine of the calling post's records (newest first,
        every status), for the post's own status and banner."""
        async with node.db.session() as session:
            peer = await verify_request(session, request.headers, "GET", request_path(request), b"")
            entries = await list_quarantine(session, origin=peer.node_code, status=None)
        view = {"origin": peer.node_code, "entries": [entry_view(e) for e in entries]}
        return as_response(view, PostQuarantine)

    @post("/audit-checkpoints", opt={"public": True}, status_code=HTTP_200_OK)
    async def audit_checkpoints(
        self, request: Request[Any, Any, Any], node: Node
    ) -> CheckpointsAck:
        """A post's signed checkpoints of its audit chain, sent once national holds the
        events they count. The request is signed by the post, each checkpoint too; national
        keeps them all (``registry.audit_checkpoints.store_received_checkpoints``) or none."""
        body = await request.body()
        async with node.db.session() as session:
            peer = await verify_request(
                session, request.headers, "POST", request_path(request), body
            )
        checkpoints = read_checkpoint_upload(body)
        async with node.db.write_transaction() as session:
            stored = await store_received_checkpoints(
                session,
                sender=peer.node_code,
                public_key=public_key_from_text(peer.public_key),
                checkpoints=checkpoints,
            )
        return CheckpointsAck(received=len(checkpoints), stored=stored)


def _gap_answer(gap: BatchGap) -> Response[Any]:
    """409: the batch does not follow what national holds (``ack``) and is to be resent."""
    return Response(
        BatchGapAnswer(ack=gap.ack, reason=gap.reason, detail=str(gap)), status_code=409
    )


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
    with in_hand(node).applying(batch) as turn:
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
        wait = limits.junk.allow(client_address(request))
        if wait > 0.0:
            problem, headers = too_many_requests(wait, "unsigned batch")
            return Response(
                problem, status_code=429, headers=headers, media_type=PROBLEM_MEDIA_TYPE
            )
        log_refusal(limits, client_address(request), "batch", str(exc))
    else:
        async with node.db.write_transaction() as session:
            await record_rejection(
                session, node=node, origin=signer.node_code, reason=exc.reason, detail=str(exc)
            )
    status = REJECTION_STATUS.get(exc.reason, 400)
    return problem_response(
        status, "Batch rejected", f"{exc.reason}: {exc}", [{"name": "batch", "reason": exc.reason}]
    )
