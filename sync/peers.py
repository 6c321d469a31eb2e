"""Peers and their keys: enrolment of a post with its national node, approval and
revocation by a national admin, and signed requests between enrolled nodes."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.audit import audit
from registry.models import Officer, utcnow
from registry.node import Node
from registry.problems import Problem
from registry.receipts import public_key_from_text, public_key_to_text
from sync.batches import _b64, _unb64
from sync.models import SyncPeer

NODE_HEADER = "x-borderpost-node"
TIME_HEADER = "x-borderpost-time"
REQUEST_SIGNATURE = "x-borderpost-request-signature"
MAX_REQUEST_AGE_SECONDS = 300


def enrolment_message(node_code: str, public_key: str) -> bytes:
    return f"borderpost-enrol\n{node_code}\n{public_key}".encode()


@dataclass(frozen=True)
class EnrolmentAnswer:
    national_code: str
    national_key: str
    status: str


async def receive_enrolment(
    session: AsyncSession, *, node: Node, node_code: str, public_key: str, proof: str
) -> EnrolmentAnswer:
    """National side: record a post's request (pending until an admin approves it)."""
    try:
        public_key_from_text(public_key).verify(
            _unb64(proof), enrolment_message(node_code, public_key)
        )
    except (InvalidSignature, ValueError) as exc:
        raise Problem(
            422,
            "Enrolment refused",
            field="proof",
            detail="the proof is not signed by the enrolling key",
        ) from exc
    peer = await session.get(SyncPeer, node_code)
    if peer is not None and peer.public_key != public_key:
        raise Problem(
            409,
            "Enrolment refused",
            field="public_key",
            detail="this node is enrolled with another key; revoke it first",
        )
    if peer is None:
        peer = SyncPeer(node_code=node_code, role="post", public_key=public_key)
        session.add(peer)
        await audit(
            session,
            origin=node.settings.node_code,
            officer=None,
            action="enrol",
            record_type="sync_peer",
            record_id=node_code,
            purpose="sync",
            detail={"public_key": public_key},
        )
    own_key = public_key_to_text(node.signing_key.public_key())
    return EnrolmentAnswer(node.settings.node_code, own_key, peer.status)


async def decide_peer(
    session: AsyncSession, *, node: Node, officer: Officer | None, node_code: str, status: str
) -> SyncPeer:
    """Approve or revoke a peer; audited."""
    peer = await session.get(SyncPeer, node_code)
    if peer is None:
        raise Problem(404, "Unknown node", field="node_code", detail="no such enrolled node")
    peer.status = status
    peer.decided_at = utcnow()
    peer.decided_by = officer.username if officer else "cli"
    await audit(
        session,
        origin=node.settings.node_code,
        officer=officer,
        action=status,
        record_type="sync_peer",
        record_id=node_code,
        purpose="sync",
    )
    return peer


async def list_peers(session: AsyncSession) -> list[SyncPeer]:
    return list((await session.scalars(select(SyncPeer).order_by(SyncPeer.node_code))).all())


def _request_message(method: str, path: str, timestamp: str, body: bytes) -> bytes:
    digest = hashlib.sha256(body).hexdigest()
    return f"{method.upper()}\n{path}\n{timestamp}\n{digest}".encode()


def sign_request(
    key: Ed25519PrivateKey, node_code: str, method: str, path: str, body: bytes = b""
) -> dict[str, str]:
    """Headers that prove which node sent a request (path includes the query string)."""
    timestamp = str(int(time.time()))
    signature = key.sign(_request_message(method, path, timestamp, body))
    return {NODE_HEADER: node_code, TIME_HEADER: timestamp, REQUEST_SIGNATURE: _b64(signature)}


async def verify_request(
    session: AsyncSession, headers: Mapping[str, str], method: str, path: str, body: bytes
) -> SyncPeer:
    """The approved peer that signed this request; Problem 401/403 otherwise."""
    code, timestamp = headers.get(NODE_HEADER), headers.get(TIME_HEADER, "0")
    peer = await session.get(SyncPeer, code) if code else None
    if peer is None:
        raise Problem(401, "Unknown node", field=NODE_HEADER, detail="this node is not enrolled")
    if peer.status != "approved":
        raise Problem(
            403, "Node not approved", field=NODE_HEADER, detail=f"this node is {peer.status}"
        )
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > MAX_REQUEST_AGE_SECONDS:
        raise Problem(401, "Stale request", field=TIME_HEADER, detail="clock skew over 5 min")
    try:
        public_key_from_text(peer.public_key).verify(
            _unb64(headers.get(REQUEST_SIGNATURE, "")),
            _request_message(method, path, timestamp, body),
        )
    except (InvalidSignature, ValueError) as exc:
        raise Problem(
            401,
            "Bad signature",
            field=REQUEST_SIGNATURE,
            detail="the request signature does not verify",
        ) from exc
    return peer
