"""A post enrols with its national node: it presents the one-time code national's admin
issued, with its own public key signed over it, and keeps national's key, address and
certificate pin (``borderpost node enrol``).
"""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.base64url import b64url
from registry.models import OutboxEntry, utcnow
from registry.node import Node
from registry.problems import Problem
from registry.receipts import public_key_to_text
from sync.bulk import upsert_authoritative
from sync.client import SyncError
from sync.links import checked_link_url, normalised_pin
from sync.models import SyncCheckpoint
from sync.peers import enrolment_message, normalised_code


async def enrol(
    node: Node,
    url: str,
    http: httpx.AsyncClient,
    enrolment_code: str,
    pinned_key: str | None = None,
    cert_sha256: str | None = None,
) -> dict[str, Any]:
    """Present the one-time code national's admin issued for this post, with this post's
    public key signed over it; keep national's key, URL and certificate pin. ``http``
    must come from ``sync.links.link_client`` (the URL checked, the certificate verified)."""
    url = checked_link_url(url, node.settings)
    pin = normalised_pin(cert_sha256) if cert_sha256 else None
    try:
        enrolment_code = normalised_code(enrolment_code)
    except Problem as exc:
        raise SyncError(exc.detail) from exc
    code = node.settings.node_code
    own_key = public_key_to_text(node.signing_key.public_key())
    proof = b64url(node.signing_key.sign(enrolment_message(code, own_key, enrolment_code)))
    response = await http.post(
        f"{url}/api/sync/enrol",
        json={"node_code": code, "public_key": own_key, "code": enrolment_code, "proof": proof},
    )
    if response.status_code != 200:
        raise SyncError(f"enrolment refused: {response.status_code} {_problem_text(response)}")
    answer = response.json()
    if pinned_key and answer["public_key"] != pinned_key:
        raise SyncError("national answered with a key that does not match --national-key")
    async with node.db.write_transaction() as session:
        await upsert_authoritative(
            session,
            "sync_peer",
            [
                {
                    "node_code": answer["national_code"],
                    "role": "national",
                    "url": url,
                    "tls_cert_sha256": pin,
                    "public_key": answer["public_key"],
                    "status": "approved",
                    "enrolled_at": utcnow(),
                    "decided_at": utcnow(),
                    "decided_by": "enrol",
                }
            ],
        )
        await _follow_national(session, answer["national_code"], int(answer.get("held_seq", 0)))
    return answer


async def _follow_national(session: AsyncSession, national: str, held: int) -> None:
    """Number this post's unacknowledged outbox rows after what national already holds.

    National acknowledges by seq. A post that enrols again with a database national does
    not know (reinstalled after its key was lost, or restored from an older backup) would
    otherwise number its new records with seqs national already holds, and they would be
    taken for replays and skipped. Rows past the records checkpoint move past ``held``
    (new rows follow them); rows national already holds may travel again, harmlessly."""
    checkpoint = await session.get(SyncCheckpoint, (national, "records"))
    position = checkpoint.position if checkpoint else 0
    if held <= position:
        return
    shift = held - position
    later = col(OutboxEntry.seq) > position
    await session.execute(update(OutboxEntry).where(later).values(seq=-col(OutboxEntry.seq)))
    await session.execute(
        update(OutboxEntry).where(col(OutboxEntry.seq) < 0).values(seq=shift - col(OutboxEntry.seq))
    )
    if checkpoint is None:
        session.add(SyncCheckpoint(peer=national, channel="records", position=held))
    else:
        checkpoint.position = held


def _problem_text(response: httpx.Response) -> str:
    """A refusal's problem detail (and Retry-After), or its raw text."""
    try:
        problem = response.json()
        text = str(problem.get("detail") or problem.get("title") or response.text)
    except ValueError:
        text = response.text
    retry = response.headers.get("retry-after")
    return f"{text} (retry after {retry} s)" if retry else text
