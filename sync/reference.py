"""Reference data national publishes to its posts: officer accounts, watchlist entries,
other posts' public keys and allowed-stay rules. National is authoritative: a post applies
what comes down, in order, and overwrites its own copy.

Accounts are the exception to "everything to everyone": a post receives only the accounts
homed at it (``changes_for_post``), so no post ever holds national's accounts or another
post's, nor their password hashes; a post also refuses any other account that comes down,
and forgets the hashes of such accounts pulled before (``forget_foreign_password_hashes``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.models import Officer, WatchlistEntry
from registry.node import Node
from registry.outbox import enqueue
from registry.receipts import public_key_from_text
from registry.stays import StayRules
from registry.watchlists.matcher import apply_to_matcher
from sync.bulk import insert_missing, upsert_authoritative
from sync.models import ReferenceChange, SyncPeer
from sync.records import row_from_payload

log = logging.getLogger("borderpost.sync")


def changes_for_post(
    changes: Iterable[Mapping[str, Any]], post_code: str
) -> list[Mapping[str, Any]]:
    """National: the reference changes one post may receive. Officer rows go only to the
    post they are homed at; every other reference type goes to every post."""
    return [
        change
        for change in changes
        if change["type"] != "officer" or change["payload"].get("home_post") == post_code
    ]


def _peer_rows(node: Node, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Other posts' keys only: a post never takes its own or its national's row from above."""
    return [
        r for r in rows if r["node_code"] != node.settings.node_code and r.get("role") == "post"
    ]


async def forget_foreign_password_hashes(node: Node) -> int:
    """Post: blank the password hash of every account homed elsewhere (copies pulled before
    posts received only their own accounts). Such accounts cannot log in here anyway; a
    look-up first, so the usual pull writes nothing. Returns how many were blanked."""
    foreign = (col(Officer.home_post) != node.settings.node_code) & (
        col(Officer.password_hash) != ""
    )
    async with node.db.session() as session:
        if await session.scalar(select(col(Officer.id)).where(foreign).limit(1)) is None:
            return 0
    async with node.db.write_transaction() as session:
        result = await session.execute(update(Officer).where(foreign).values(password_hash=""))
    # an UPDATE's result is a CursorResult, typed as a plain Result by SQLAlchemy
    forgotten = int(result.rowcount or 0)  # type: ignore[attr-defined]
    log.warning("forgot the password hashes of %d accounts homed elsewhere", forgotten)
    return forgotten


async def apply_reference_changes(node: Node, changes: list[dict[str, Any]]) -> int:
    """Apply one page of changes in one transaction; returns how many were applied."""
    if node.settings.role == "post":
        await forget_foreign_password_hashes(node)
    if not changes:
        return 0
    entries: list[WatchlistEntry] = []
    async with node.db.write_transaction() as session:
        for change in changes:
            record_type, row = change["type"], row_from_payload(change["type"], change["payload"])
            if record_type == "officer":
                if row.get("home_post") == node.settings.node_code:  # never another's account
                    await upsert_authoritative(session, "officer", [row])
            elif record_type == "sync_peer":
                await upsert_authoritative(session, "sync_peer", _peer_rows(node, [row]))
            elif record_type == "watchlist_entry":
                await insert_missing(session, "watchlist_entry", [row])
                entries.append(WatchlistEntry(**row))
            elif record_type == "reference_change":
                await insert_missing(session, "reference_change", [row])
    apply_to_matcher(node, entries)
    await refresh_node_reference(node)
    return len(changes)


async def refresh_node_reference(node: Node) -> None:
    """Load approved posts' keys (to verify their receipts) and the latest stay rules."""
    async with node.db.session() as session:
        peers = (
            await session.scalars(select(SyncPeer).where(col(SyncPeer.status) == "approved"))
        ).all()
        rules = await session.scalar(
            select(col(ReferenceChange.payload))
            .where(col(ReferenceChange.record_type) == "stay_rules")
            .order_by(col(ReferenceChange.version).desc())
            .limit(1)
        )
    for peer in peers:
        node.trusted_keys[peer.node_code] = public_key_from_text(peer.public_key)
    if rules:
        node.stay_rules_override = StayRules.from_mapping(rules).for_country(node.settings.country)


async def refresh_reference_periodically(node: Node, *, every_seconds: float) -> None:
    """Run as a lifespan task: take up keys and stay rules another process wrote (``rules
    publish`` on national, ``sync now`` on a post). Errors are logged and the loop goes on."""
    while True:
        await asyncio.sleep(every_seconds)
        try:
            await refresh_node_reference(node)
        except Exception:  # noqa: BLE001 - a background loop must survive a bad moment
            log.exception("reference refresh failed")


async def publish_stay_rules(session: AsyncSession, *, node: Node, rules: dict[str, Any]) -> None:
    """National: record new allowed-stay rules; posts receive them at their next pull."""
    StayRules.from_mapping(rules)  # refuse an invalid rule set before anything is written
    change = ReferenceChange(
        record_type="stay_rules", record_id=node.settings.node_code, payload=rules
    )
    session.add(change)
    await session.flush()  # the database numbers the version the outbox row names
    await enqueue(session, change)
