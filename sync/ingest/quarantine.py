"""National's admin of its quarantine: apply a kept record again through the receiver
that refused it (a post's record through the ingest, ``retry_record``; the partner's through
the exchange, ``retry_partner_record``), or discard it. Either is audited; the caller
commits. The entries themselves, and the checks that fill them, are ``sync.quarantine``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from registry.audit import audit
from registry.models import utcnow
from sync.exchange.receiving import PARTNER_TYPES, retry_partner_record
from sync.ingest.apply import retry_record
from sync.models import SyncQuarantine
from sync.quarantine import DISCARDED, PENDING, RETRIED, Quarantined


class QuarantineError(LookupError):
    """No such quarantine entry, or it is no longer pending."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


async def _pending_entry(session: AsyncSession, entry_id: int) -> SyncQuarantine:
    entry = await session.get(SyncQuarantine, entry_id, with_for_update=True)
    if entry is None:
        raise QuarantineError("unknown", f"no quarantine entry {entry_id}")
    if entry.status != PENDING:
        raise QuarantineError("resolved", f"quarantine entry {entry_id} is {entry.status}")
    return entry


async def retry_entry(
    session: AsyncSession, *, node: Any, entry_id: int, officer: Any | None
) -> SyncQuarantine:
    """Apply a quarantined record again through the normal idempotent ingest path (a
    partner's record through the partner's). Stored: the entry is marked retried. Still
    refused: it stays pending with the new reason. Audited either way; the caller commits
    (write transaction)."""
    entry = await _pending_entry(session, entry_id)
    still = await _reapply(session, node, entry)
    by = officer.username if officer is not None else "cli"
    if still is None:
        entry.status, entry.resolved_by, entry.resolved_at = RETRIED, by, utcnow()
    else:
        entry.reason, entry.detail = still.reason, still.detail
    outcome = {"stored": still is None, "reason": None if still is None else still.reason}
    await _audit_resolution(session, node, officer, "quarantine_retry", entry, outcome)
    return entry


async def _audit_resolution(
    session: AsyncSession,
    node: Any,
    officer: Any | None,
    action: str,
    entry: SyncQuarantine,
    outcome: dict[str, Any],
) -> None:
    """The audit event of an admin's retry or discard of a quarantine entry."""
    await audit(
        session,
        origin=node.settings.node_code,
        officer=officer,
        action=action,
        record_type="sync_quarantine",
        record_id=str(entry.id),
        purpose="sync",
        detail={
            "origin": entry.origin,
            "seq": entry.seq,
            "record_type": entry.record_type,
            "record_id": entry.record_id,
            **outcome,
        },
    )


async def _reapply(session: AsyncSession, node: Any, entry: SyncQuarantine) -> Quarantined | None:
    if entry.record_type in PARTNER_TYPES:
        return await retry_partner_record(session, node=node, entry=entry)
    return await retry_record(session, node=node, entry=entry)


async def discard_entry(
    session: AsyncSession, *, node: Any, entry_id: int, officer: Any | None
) -> SyncQuarantine:
    """Mark a pending quarantine entry discarded (kept, never applied); audited."""
    entry = await _pending_entry(session, entry_id)
    entry.status = DISCARDED
    entry.resolved_by = officer.username if officer is not None else "cli"
    entry.resolved_at = utcnow()
    await _audit_resolution(
        session, node, officer, "quarantine_discard", entry, {"reason": entry.reason}
    )
    return entry
