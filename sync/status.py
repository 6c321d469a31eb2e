"""How far behind a post is: backlog per channel, last success, days since sync, and its
records national holds in quarantine."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlmodel import col

from registry.models import OutboxEntry, utcnow
from registry.node import Node
from sync.models import SyncCheckpoint, SyncPeer
from sync.quarantine import pending_for_status


async def sync_status(node: Node) -> dict[str, Any]:
    """Backlog, last success and a warning once offline longer than the configured limit."""
    async with node.db.session() as session:
        national = await session.scalar(select(SyncPeer).where(col(SyncPeer.role) == "national"))
        newest = await session.scalar(select(func.max(OutboxEntry.seq))) or 0
        checkpoints = {c.channel: c for c in (await session.scalars(select(SyncCheckpoint))).all()}
        records = checkpoints.get("records")
        position = records.position if records else 0
        backlog = await session.scalar(
            select(func.count()).select_from(OutboxEntry).where(col(OutboxEntry.seq) > position)
        )
        quarantined = await pending_for_status(session, node.settings.node_code)
    last_success = records.last_success_at if records else None
    days = (utcnow() - last_success).total_seconds() / 86400 if last_success else None
    limit = node.settings.offline_warning_days
    warning = None
    if national is None:
        warning = "not enrolled with a national node"
    elif days is None or days > limit:
        warning = (
            f"no successful sync for more than {limit} days" if days is not None else "never synced"
        )
    return {
        "national": national.node_code if national else None,
        "backlog_records": backlog,
        "newest_seq": newest,
        "acknowledged_seq": position,
        "last_success_at": last_success.isoformat() if last_success else None,
        "days_since_sync": round(days, 2) if days is not None else None,
        "last_error": records.last_error if records else None,
        "offline_warning_days": limit,
        "warning": warning,
        # this post's records national could not store (until its admin resolves them)
        "quarantined": quarantined,
        "channels": {
            name: {"position": c.position, "last_error": c.last_error}
            for name, c in checkpoints.items()
        },
    }
