"""National to partner: push queued crossings (filtered by the agreement) as signed
batches, and ask the partner hit/no-hit questions. The national node's background task
pushes and purges expired partner data while the service runs.

Once the agreement version is revoked (by us or by the partner), nothing is pushed any
more and the runner stops calling the partner, with one exception: our own revocation
notice, which it delivers until the partner acknowledges it (``deliver_revocation``)."""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from typing import Any

import httpx
from cryptography.exceptions import InvalidSignature

from registry.base64url import unb64url
from registry.models import utcnow
from registry.node import Node
from registry.problems import Problem
from registry.receipts import public_key_from_text
from sync.backoff import ResilientRunner
from sync.batches import SIGNATURE, sign_batch
from sync.client import SyncError
from sync.exchange.hits import refresh_index
from sync.exchange.lifecycle import activate_agreement, purge_expired
from sync.exchange.receiving import store_acknowledged_keys
from sync.exchange.sending import audit_export, outgoing_records
from sync.exchange.service import ACKED, SCAN, Exchange, require_in_force, revocation_of
from sync.links import link_client
from sync.models import SyncCheckpoint
from sync.peers import (
    MAX_REQUEST_AGE_SECONDS,
    NODE_HEADER,
    REQUEST_SIGNATURE,
    TIME_HEADER,
    _request_message,
    sign_request,
)

log = logging.getLogger("borderpost.exchange")
REVOCATION_PATH = "/api/exchange/revocation"


async def _position(node: Node, peer: str, channel: str) -> int:
    async with node.db.session() as session:
        checkpoint = await session.get(SyncCheckpoint, (peer, channel))
        return checkpoint.position if checkpoint else 0


async def _save(node: Node, peer: str, **positions: int) -> None:
    async with node.db.write_transaction() as session:
        for channel, position in positions.items():
            checkpoint = await session.get(SyncCheckpoint, (peer, channel))
            if checkpoint is None:
                checkpoint = SyncCheckpoint(peer=peer, channel=channel)
                session.add(checkpoint)
            checkpoint.position = position
            checkpoint.last_success_at = utcnow()


async def push_to_partner(
    node: Node,
    exchange: Exchange,
    http: httpx.AsyncClient,
    *,
    page: int = 500,
    again: bool = False,
) -> int:
    """Send everything queued since the last acknowledgement; returns records sent. The
    first push under a version backfills what was ingested before it (``again``: look
    again, as the service does once at start)."""
    partner = exchange.partner
    async with node.db.session() as session:
        try:
            await require_in_force(session, exchange)
        except Problem as exc:
            raise SyncError(f"exchange stopped: {exc.detail}") from exc
    async with node.db.write_transaction() as session:  # once per version: the backfill
        await activate_agreement(session, node=node, exchange=exchange, again=again)
    scan = await _position(node, partner.node, SCAN)
    acked = await _position(node, partner.node, ACKED)
    sent = 0
    while True:
        async with node.db.session() as session:
            try:
                await require_in_force(session, exchange)
            except Problem as exc:
                raise SyncError(f"exchange stopped: {exc.detail}") from exc
            records, last = await outgoing_records(session, exchange, scan, page)
        if last == scan:
            return sent
        if records:
            batch = sign_batch(
                records,
                kind="exchange",
                origin=node.settings.node_code,
                destination=partner.node,
                after_seq=acked,
                key=node.signing_key,
            )
            response = await http.post(
                f"{partner.url.rstrip('/')}/api/exchange/batches",
                content=batch.body,
                headers=batch.http_headers(),
            )
            answer = response.json() if response.status_code in (200, 409) else {}
            if "ack" not in answer:  # a refusal (a 409 without "ack": no agreement there)
                raise SyncError(f"partner refused: {response.status_code} {response.text}")
            answer = verified_answer(exchange, response)
            acked = int(answer["ack"])
            async with node.db.write_transaction() as session:
                await store_acknowledged_keys(session, exchange, records, answer.get("keys"))
            if response.status_code == 409 and acked < records[-1].seq:
                scan = acked  # the partner lacks something: resend from what it holds
                await _save(node, partner.node, **{SCAN: scan, ACKED: acked})
                continue
            async with node.db.write_transaction() as session:
                await audit_export(session, node, exchange, records)
            sent += len(records)
        scan = last
        await _save(node, partner.node, **{SCAN: scan, ACKED: acked})


async def signed_partner_call(
    node: Node,
    exchange: Exchange,
    http: httpx.AsyncClient,
    method: str,
    path: str,
    body: bytes = b"",
) -> dict[str, Any]:
    """A request signed by this node to the partner; its answer must be signed back."""
    headers = sign_request(node.signing_key, node.settings.node_code, method, path, body)
    response = await http.request(
        method,
        f"{exchange.partner.url.rstrip('/')}{path}",
        content=body or None,
        headers={**headers, "content-type": "application/json"},
    )
    if response.status_code == 429:  # the agreement's daily budget: said as it is
        raise Problem(429, "Partner budget spent", field="partner", detail=response.text[:300])
    if response.status_code >= 400:
        raise SyncError(f"partner answered {response.status_code}: {response.text}")
    return verified_answer(exchange, response)


def verified_answer(exchange: Exchange, response: httpx.Response) -> dict[str, Any]:
    """The partner's JSON answer, once its signature by the agreement key verifies."""
    try:  # the answer must come from the partner named in the agreement
        public_key_from_text(exchange.partner.public_key).verify(
            unb64url(response.headers.get(SIGNATURE, "")), hashlib.sha256(response.content).digest()
        )
        answer = response.json()
    except (InvalidSignature, ValueError) as exc:
        raise SyncError("the partner's answer is not signed by its agreement key") from exc
    if not isinstance(answer, dict):
        raise SyncError("the partner's answer is not a JSON object")
    return answer


async def deliver_revocation(node: Node, exchange: Exchange, http: httpx.AsyncClient) -> bool:
    """Send our signed revocation notice to the partner until it acknowledges it; True
    once it has (or when there is nothing of ours to deliver)."""
    async with node.db.session() as session:
        revocation = await revocation_of(session, exchange.agreement)
    if revocation is None or revocation.party != exchange.ours.country:
        return True
    if revocation.notified_at is not None:
        return True
    body = json.dumps({"notice": revocation.statement, "signature": revocation.signature}).encode()
    answer = await signed_partner_call(node, exchange, http, "POST", REVOCATION_PATH, body)
    if answer.get("revoked") is not True:
        raise SyncError(f"the partner did not acknowledge the revocation: {answer}")
    async with node.db.write_transaction() as session:
        held = await revocation_of(session, exchange.agreement)
        if held is not None:
            held.notified_at = utcnow()
    log.info("the partner acknowledged the revocation of %s", exchange.agreement.id)
    return True


def verify_partner_request(
    exchange: Exchange, headers: Any, method: str, path: str, body: bytes
) -> None:
    """The request must be signed by the agreement's partner node, recently."""
    if headers.get(NODE_HEADER) != exchange.partner.node:
        raise Problem(
            403, "Unknown node", field=NODE_HEADER, detail="only the agreement's partner may ask"
        )
    timestamp = headers.get(TIME_HEADER, "0")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > MAX_REQUEST_AGE_SECONDS:
        raise Problem(401, "Stale request", field=TIME_HEADER, detail="clock skew over 5 min")
    try:
        public_key_from_text(exchange.partner.public_key).verify(
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


class ExchangeRunner(ResilientRunner):
    """National: push to the partner and purge expired partner data, periodically; after
    failures back off like the post's sync runner (``sync.backoff``)."""

    name = "exchange with the partner"

    def __init__(
        self,
        node: Node,
        exchange: Exchange,
        *,
        interval: float,
        max_backoff: float = 600.0,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(interval=interval, max_backoff=max_backoff, log=log, rng=rng)
        self.node, self.exchange = node, exchange
        self.backfilled = False  # once per start: what was ingested without an agreement

    async def cycle(self) -> None:
        async with self.node.db.write_transaction() as session:
            await purge_expired(session, node=self.node, exchange=self.exchange)
            revocation = await revocation_of(session, self.exchange.agreement)
        if revocation is not None:  # stopped: only our own notice still has to reach them
            if revocation.party == self.exchange.ours.country and revocation.notified_at is None:
                async with link_client(
                    self.node.settings, self.exchange.partner.url, timeout=30
                ) as http:
                    await deliver_revocation(self.node, self.exchange, http)
            return
        async with self.node.db.write_transaction() as session:
            await refresh_index(session, self.exchange)  # hit/no-hit answers stay fast
        async with link_client(self.node.settings, self.exchange.partner.url, timeout=30) as http:
            await push_to_partner(self.node, self.exchange, http, again=not self.backfilled)
        self.backfilled = True
