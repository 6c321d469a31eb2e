"""Peers and their keys: one-time enrolment codes issued by national's admin, enrolment of
a post that presents one, revocation and removal, key rotation, signed requests between
enrolled nodes, and the per-address limits on the endpoints that anyone can reach.

Enrolment is bound to a code: the admin issues it for one post code (``node invite`` or
the Posts page); only its SHA-256 is stored; it is valid once, until it expires. The post
signs ``code + node code + public key`` with the key it enrols, so a code seen in transit
cannot enrol another key. A valid code is the admin's approval: the post is approved at
once. Without a valid code for that post code nothing is stored, counted or audited."""

from __future__ import annotations

import hashlib
import logging
import math
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.audit import audit
from registry.audit_verification import ChainVerdict, verify_chain
from registry.base64url import b64url, unb64url
from registry.models import Officer, utcnow
from registry.node import Node
from registry.outbox import enqueue
from registry.problems import Problem
from registry.receipts import public_key_from_text, public_key_to_text
from registry.throttle import RateLimiter
from sync.batches import BatchRejected, read_header
from sync.models import EnrolmentInvitation, IngestState, SyncPeer

log = logging.getLogger("borderpost.sync")

NODE_HEADER = "x-borderpost-node"
TIME_HEADER = "x-borderpost-time"
REQUEST_SIGNATURE = "x-borderpost-request-signature"
MAX_REQUEST_AGE_SECONDS = 300

POST_CODE_PATTERN = r"^[A-Z]{2}-[A-Z0-9-]{2,28}$"
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read over a telephone
CODE_LENGTH = 20  # 100 bits, shown in groups of four
DEFAULT_INVITATION_HOURS = 72
MAX_INVITATION_HOURS = 24 * 14
CODE_REFUSED = (
    "the enrolment code is not valid for this post: unknown, already used, expired or "
    "issued for another post code; ask national's administrator for a new one"
)

# Per source address. Enrolment: ten attempts at once, then one every ten seconds.
# Batches and photos: a post pushes a few batches a second and photos one request each,
# so every request counts against a generous bucket (the post waits out a 429 and carries
# on); junk (a batch or photo not signed by the post it names) counts against a strict
# one: past 30, junk is answered 429 until the address slows to one every two seconds.
# Refused requests are logged at most once a second per address after a burst of 10.
ENROL_RATE_PER_S, ENROL_BURST = 0.1, 10
LINK_RATE_PER_S, LINK_BURST = 50.0, 300
JUNK_RATE_PER_S, JUNK_BURST = 0.5, 30
REFUSAL_LOG_RATE_PER_S, REFUSAL_LOG_BURST = 1.0, 10


# ---------------------------------------------------------------- codes and fingerprints
def new_enrolment_code() -> str:
    """A fresh random code, e.g. ``K7QM-2XHD-9PRT-WZ4A-LMNB`` (shown once, never stored)."""
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, CODE_LENGTH, 4))


def normalised_code(code: str) -> str:
    """The code as signed and hashed: capitals, without spaces or dashes. Problem 422 when
    it cannot be a code at all."""
    cleaned = code.upper().replace("-", "").replace(" ", "")
    if len(cleaned) != CODE_LENGTH or any(c not in CODE_ALPHABET for c in cleaned):
        raise Problem(
            422,
            "Enrolment refused",
            field="code",
            detail=f"an enrolment code is {CODE_LENGTH} letters and digits, e.g. K7QM-2XHD-...",
        )
    return cleaned


def code_sha256(code: str) -> str:
    return hashlib.sha256(normalised_code(code).encode()).hexdigest()


def key_fingerprint(public_key: str) -> str:
    """SHA-256 (hex) of a node's raw Ed25519 public key, as audited and shown."""
    raw = public_key_from_text(public_key).public_bytes_raw()
    return hashlib.sha256(raw).hexdigest()


def enrolment_message(node_code: str, public_key: str, code: str) -> bytes:
    """What an enrolling post signs with the key it enrols: binds the key to the code."""
    return f"borderpost-enrol-2\n{node_code}\n{public_key}\n{normalised_code(code)}".encode()


# ---------------------------------------------------------------- invitations
async def issue_invitation(
    session: AsyncSession,
    *,
    node: Node,
    officer: Officer | None,
    node_code: str,
    hours: float = DEFAULT_INVITATION_HOURS,
) -> tuple[str, EnrolmentInvitation]:
    """National: a one-time code that enrols ``node_code`` (audited; the code itself is
    returned once and only its hash is kept). Earlier unused codes for the post lapse."""
    if node.settings.role != "national":
        raise Problem(409, "Not national", field="node_code", detail="only national invites posts")
    if not re.fullmatch(POST_CODE_PATTERN, node_code) or node_code == node.settings.node_code:
        raise Problem(
            422, "Invalid post code", field="node_code", detail="give a post code like MR-ROSSO"
        )
    if not (0 < hours <= MAX_INVITATION_HOURS):
        raise Problem(
            422,
            "Invalid validity",
            field="hours",
            detail=f"a code is valid for more than 0 and at most {MAX_INVITATION_HOURS} hours",
        )
    peer = await session.get(SyncPeer, node_code)
    if peer is not None and peer.role != "post":
        raise Problem(409, "Not a post", field="node_code", detail=f"{node_code} is a {peer.role}")
    superseded = (
        await session.execute(
            delete(EnrolmentInvitation).where(
                col(EnrolmentInvitation.node_code) == node_code,
                col(EnrolmentInvitation.used_at).is_(None),
            )
        )
    ).rowcount  # type: ignore[attr-defined]  # a DELETE's result is a CursorResult; typed Result
    code = new_enrolment_code()
    invitation = EnrolmentInvitation(
        code_sha256=code_sha256(code),
        node_code=node_code,
        issued_by=officer.username if officer else "cli",
        expires_at=utcnow() + timedelta(hours=hours),
    )
    session.add(invitation)
    await audit(
        session,
        origin=node.settings.node_code,
        officer=officer,
        action="enrol_invite",
        record_type="sync_peer",
        record_id=node_code,
        purpose="sync",
        detail={
            "expires_at": invitation.expires_at.isoformat(),
            "superseded": superseded or 0,
            "post_status": peer.status if peer is not None else None,  # a key rotation
        },
    )
    return code, invitation


async def open_invitations(session: AsyncSession) -> list[EnrolmentInvitation]:
    """Codes issued and neither used nor expired (never the codes themselves)."""
    query = (
        select(EnrolmentInvitation)
        .where(
            col(EnrolmentInvitation.used_at).is_(None),
            col(EnrolmentInvitation.expires_at) > utcnow(),
        )
        .order_by(EnrolmentInvitation.node_code)
    )
    return list((await session.scalars(query)).all())


# ---------------------------------------------------------------- enrolment
@dataclass(frozen=True)
class EnrolmentAnswer:
    national_code: str
    national_key: str
    status: str
    held_seq: int = 0  # the highest contiguous seq national already holds from this post


async def receive_enrolment(
    session: AsyncSession,
    *,
    node: Node,
    node_code: str,
    public_key: str,
    code: str,
    proof: str,
) -> EnrolmentAnswer:
    """National side: enrol and approve a post that presents a valid code for its post
    code, signed with the key it enrols. A post already enrolled under that code gets its
    new key (key rotation, audited with both fingerprints). Anything else raises Problem
    before a row is written."""
    try:
        public_key_from_text(public_key).verify(
            unb64url(proof), enrolment_message(node_code, public_key, code)
        )
    except (InvalidSignature, ValueError) as exc:
        raise Problem(
            403,
            "Enrolment refused",
            field="proof",
            detail="the proof is not signed by the enrolling key",
        ) from exc
    invitation = await session.scalar(
        select(EnrolmentInvitation)
        .where(col(EnrolmentInvitation.code_sha256) == code_sha256(code))
        .with_for_update()
    )
    now = utcnow()
    if (
        invitation is None
        or invitation.node_code != node_code
        or invitation.used_at is not None
        or invitation.expires_at <= now
    ):
        raise Problem(403, "Enrolment refused", field="code", detail=CODE_REFUSED)
    peer = await session.get(SyncPeer, node_code)
    if peer is not None and peer.role != "post":
        raise Problem(409, "Enrolment refused", field="node_code", detail="not a post's code")
    previous = peer.public_key if peer is not None else None
    if peer is None:
        peer = SyncPeer(node_code=node_code, role="post", public_key=public_key)
        session.add(peer)
    peer.public_key = public_key
    peer.status = "approved"
    peer.decided_at = now
    peer.decided_by = invitation.issued_by
    invitation.used_at = now
    invitation.used_key_sha256 = key_fingerprint(public_key)
    detail: dict[str, Any] = {
        "key_sha256": invitation.used_key_sha256,
        "invited_by": invitation.issued_by,
    }
    rotated = previous is not None and previous != public_key
    if rotated:
        detail["previous_key_sha256"] = key_fingerprint(previous)  # type: ignore[arg-type]
    await audit(
        session,
        origin=node.settings.node_code,
        officer=None,
        action="enrol_rekey" if rotated else "enrol",
        record_type="sync_peer",
        record_id=node_code,
        purpose="sync",
        detail=detail,
    )
    await session.flush()
    await enqueue(session, peer)
    own_key = public_key_to_text(node.signing_key.public_key())
    state = await session.get(IngestState, node_code)
    held = state.contiguous_seq if state is not None else 0
    return EnrolmentAnswer(node.settings.node_code, own_key, peer.status, held)


async def decide_peer(
    session: AsyncSession, *, node: Node, officer: Officer | None, node_code: str, status: str
) -> SyncPeer:
    """Approve (reinstate a revoked post with its enrolled key) or revoke a peer; audited."""
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


async def remove_peer(
    session: AsyncSession, *, node: Node, officer: Officer | None, node_code: str
) -> SyncPeer:
    """Delete a pending or revoked post (audited with its key's fingerprint); an approved
    post must be revoked first. What national holds from it stays."""
    peer = await session.get(SyncPeer, node_code)
    if peer is None or peer.role != "post":
        raise Problem(404, "Unknown node", field="node_code", detail="no such enrolled post")
    if peer.status == "approved":
        raise Problem(
            409, "Post approved", field="node_code", detail="revoke the post before removing it"
        )
    await session.delete(peer)
    await audit(
        session,
        origin=node.settings.node_code,
        officer=officer,
        action="peer_removed",
        record_type="sync_peer",
        record_id=node_code,
        purpose="sync",
        detail={"status": peer.status, "key_sha256": key_fingerprint(peer.public_key)},
    )
    return peer


async def list_peers(session: AsyncSession) -> list[SyncPeer]:
    return list((await session.scalars(select(SyncPeer).order_by(SyncPeer.node_code))).all())


# ---------------------------------------------------------------- signed requests
def _request_message(method: str, path: str, timestamp: str, body: bytes) -> bytes:
    digest = hashlib.sha256(body).hexdigest()
    return f"{method.upper()}\n{path}\n{timestamp}\n{digest}".encode()


def sign_request(
    key: Ed25519PrivateKey, node_code: str, method: str, path: str, body: bytes = b""
) -> dict[str, str]:
    """Headers that prove which node sent a request (path includes the query string)."""
    timestamp = str(int(time.time()))
    signature = key.sign(_request_message(method, path, timestamp, body))
    return {NODE_HEADER: node_code, TIME_HEADER: timestamp, REQUEST_SIGNATURE: b64url(signature)}


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
            unb64url(headers.get(REQUEST_SIGNATURE, "")),
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


async def signer_of_batch(session: AsyncSession, headers: Mapping[str, str]) -> SyncPeer | None:
    """The enrolled post named by a batch or photo header, if the header's signature
    verifies against that post's key; None for junk (unsigned, badly signed, unknown
    sender). Only a refusal signed by the post it names is audited and counted against it."""
    try:
        header, _ = read_header(headers)
    except BatchRejected:
        return None
    peer = await session.get(SyncPeer, header.origin)
    if peer is None or peer.role != "post":
        return None
    return peer if header_signed_by(headers, header.origin, peer.public_key) else None


def header_signed_by(headers: Mapping[str, str], origin: str, public_key: str) -> bool:
    """Whether a batch or photo header names ``origin`` and is signed by ``public_key``."""
    try:
        header, signature = read_header(headers)
        if header.origin != origin:
            return False
        public_key_from_text(public_key).verify(signature, header.canonical())
    except (BatchRejected, InvalidSignature, ValueError):
        return False
    return True


# ---------------------------------------------------------------- per-address limits
@dataclass(frozen=True)
class LinkLimits:
    """Token buckets per source address for the endpoints anyone can reach."""

    enrol: RateLimiter
    batches: RateLimiter
    junk: RateLimiter
    refusal_log: RateLimiter


def link_limits(state: Any) -> LinkLimits:
    """This application's limits (kept on its state, so every app has its own)."""
    limits = getattr(state, "sync_link_limits", None)
    if limits is None:
        limits = LinkLimits(
            RateLimiter(ENROL_RATE_PER_S, ENROL_BURST),
            RateLimiter(LINK_RATE_PER_S, LINK_BURST),
            RateLimiter(JUNK_RATE_PER_S, JUNK_BURST),
            RateLimiter(REFUSAL_LOG_RATE_PER_S, REFUSAL_LOG_BURST),
        )
        state.sync_link_limits = limits
    return limits


def too_many_requests(wait_s: float, what: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The body and headers of a 429 problem answer with Retry-After (whole seconds)."""
    seconds = max(1, math.ceil(wait_s))
    body = {
        "type": "about:blank",
        "title": "Too many requests",
        "status": 429,
        "detail": f"too many {what} requests from this address; retry in {seconds} s",
        "invalid_params": [{"name": "address", "reason": "rate limited"}],
    }
    return body, {"retry-after": str(seconds)}


def log_refusal(limits: LinkLimits, address: str, what: str, reason: str) -> None:
    """Log a refused, unauthenticated request (python logging only), rate-limited."""
    if limits.refusal_log.allow(address) == 0.0:
        log.warning("refused %s from %s: %s", what, address, reason[:200])


# ------------------------------------------------------------------ audit checkpoints
async def checkpoint_key(
    session: AsyncSession, *, own_code: str, own_key: Ed25519PublicKey | None, origin: str
) -> Ed25519PublicKey | None:
    """The key that signs ``origin``'s checkpoints: this node's own, or the enrolled key
    of the peer (on national, a post's)."""
    if origin == own_code:
        return own_key
    peer = await session.get(SyncPeer, origin)
    if peer is None:
        return None
    try:
        return public_key_from_text(peer.public_key)
    except ValueError:
        return None


async def verify_node_chain(
    session: AsyncSession, *, own_code: str, own_key: Ed25519PublicKey | None, origin: str
) -> ChainVerdict:
    """``verify_chain`` with every checkpoint's signature checked against the key of the
    node that made it (``checkpoint_key``); checkpoints nobody's key can check fail."""
    key = await checkpoint_key(session, own_code=own_code, own_key=own_key, origin=origin)
    return await verify_chain(session, origin, public_key=key, require_signatures=True)
