"""Exchange with the partner country under the data-sharing agreement.

National to partner uses the same signed, acknowledged batches as post to national. What
leaves is decided at send time by ``sync.exchange.enforcement.filter_record`` (the one
enforcement point); what arrives is checked against the same agreement, stored apart from
national records, and purged when retention runs out. Hit/no-hit queries are in
``sync.exchange.hits``. Every export, import, purge and revocation is audited with the
agreement version.

This module holds what both directions share: the ``Exchange`` (the agreement in force
with our party, the partner and our blinding key), the in-force check, and the queue of
crossings national keeps for the partner. What leaves is ``sync.exchange.sending``, what
arrives is ``sync.exchange.receiving``; the life cycle of an agreement version (backfill,
revocation, erasure, retention) is ``sync.exchange.lifecycle``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from registry.models import utcnow
from registry.node import Node
from registry.problems import Problem
from sync.bulk import insert_missing
from sync.exchange.model import Agreement, Party
from sync.exchange.parsing import load_agreement
from sync.exchange.pseudonyms import (
    BlindingKey,
    pseudonymous_id,
    read_blinding_key,
)
from sync.exchange.signing import (
    agreement_status,
)
from sync.models import (
    AgreementRevocation,
)

BUNDLE = "crossing_bundle"
RESOLUTION = "discrepancy_resolution"
# What the partner may have us blind, against our own traffic (``within_real_traffic``).
TRAFFIC_FACTOR = 1.5
TRAFFIC_SLACK = 1000
SCAN, ACKED = "exchange_scan", "exchange_ack"  # send checkpoints (sync_checkpoint channels)


@dataclass(frozen=True)
class Exchange:
    """The agreement this national node exchanges under, and our own blinding key."""

    agreement: Agreement
    key: BlindingKey
    ours: Party
    partner: Party
    development_urls: bool = False  # BORDERPOST_AGREEMENT_DEVELOPMENT_URLS

    @property
    def our_posts(self) -> set[str]:
        return {ours for ours, _ in self.agreement.pairs_for(self.ours.node)}

    def ref(self, our_id: Any) -> str:
        """The pseudonymous id of one of our records under this agreement."""
        return pseudonymous_id(self.key, self.agreement.id, our_id) or ""


def load_exchange(node: Node) -> Exchange | None:
    """The configured exchange, or None when this node has no agreement."""
    settings = node.settings
    if not settings.agreement_file:
        return None
    agreement = load_agreement(settings.agreement_file)
    key = read_blinding_key(settings.agreement_key_file)
    ours = agreement.party(settings.node_code)
    return Exchange(
        agreement,
        key,
        ours,
        agreement.partner_of(settings.node_code),
        development_urls=settings.agreement_development_urls,
    )


def revocation_text(revocation: AgreementRevocation) -> str:
    """How a revocation is told: when, by which party, and why."""
    by = revocation.party or revocation.revoked_by
    return f"on {revocation.revoked_at.date().isoformat()} by {by}: {revocation.reason}"


async def revocation_of(session: AsyncSession, agreement: Agreement) -> AgreementRevocation | None:
    return await session.get(AgreementRevocation, (agreement.id, agreement.version))


async def require_in_force(session: AsyncSession, exchange: Exchange | None) -> Exchange:
    """Refuse any exchange unless the agreement is valid, signed by both, reachable over
    https (unless the development flag), and not revoked by either party."""
    if exchange is None:
        raise Problem(
            409,
            "No agreement",
            field="agreement",
            detail="this node has no data-sharing agreement configured",
        )
    revoked = await revocation_of(session, exchange.agreement)
    in_force, problems = agreement_status(
        exchange.agreement,
        utcnow().date(),
        revoked=revocation_text(revoked) if revoked is not None else None,
        development_urls=exchange.development_urls,
    )
    if not in_force:
        raise Problem(403, "Agreement not in force", field="agreement", detail="; ".join(problems))
    return exchange


async def queue_for_partner(session: AsyncSession, crossing_ids: list[str]) -> None:
    """National ingest: queue newly stored crossings for the partner (filtered at send)."""
    if crossing_ids:
        await insert_missing(
            session,
            "exchange_outbox",
            [
                {"record_type": "crossing", "record_id": i, "created_at": utcnow()}
                for i in crossing_ids
            ],
        )
