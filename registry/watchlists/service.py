"""Versioned watchlist entries: create, change, deactivate, list and history, and the JSON view
of a version.

Entries are never edited in place. A change, or a removal (``active=False``), is a new row with
the same ``entry_id`` and the next ``version``; ``source`` and ``external_id`` never change.
Every write is put in the outbox and audited, and so is every read. The caller commits, then
applies the written versions to the node's matcher (``matcher.apply_to_matcher``).

An entry a role may not manage (``policy.may_manage``) is answered with 404, so its existence is
not disclosed. Nor does creating one disclose it: when a role creates an entry whose
``(source, external_id)`` is already taken by an entry it may not manage, the new entry is
created all the same, as a separate entry under its own id (``content.scoped_entry_id``),
exactly as if the other did not exist; only a collision with an entry the role manages is a 409.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from functools import cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import exists, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute, aliased, defer
from sqlmodel import col

from registry.audit import audit
from registry.models import WATCHLIST_ACTIONS, Officer, WatchlistEntry, utcnow
from registry.outbox import enqueue, row_of
from registry.problems import Problem
from registry.watchlists.content import (
    CONTENT_FIELDS,
    EntryContent,
    build_version,
    content_from_create,
    content_of,
    refuse_if_invalid,
    scoped_entry_id,
    watchlist_entry_id,
)
from registry.watchlists.policy import may_manage, refuse_unless_manages, role_of
from registry.watchlists.schemas import WatchlistEntryCreate

if TYPE_CHECKING:
    from registry.node import Node

ID_CHUNK = 500  # entry ids per IN (...) and rows per INSERT


@cache
def current_versions_query(*, portraits: bool = True) -> Any:
    """SELECT of the latest version of every entry (active or not); without ``portraits``
    the listed portraits are left in the database (never read: reading one raises)."""
    newer = aliased(WatchlistEntry)
    query = select(WatchlistEntry)
    if not portraits:
        query = query.options(raiseload_portrait())
    return query.where(
        ~exists().where(
            col(newer.entry_id) == col(WatchlistEntry.entry_id),
            newer.version > col(WatchlistEntry.version),
        )
    )


def raiseload_portrait() -> Any:
    """Loader option: leave ``listed_portrait`` unread (an access raises instead of loading)."""
    portrait: QueryableAttribute[Any] = WatchlistEntry.listed_portrait  # type: ignore[assignment]
    return defer(portrait, raiseload=True)


async def current_version(session: AsyncSession, entry_id: uuid.UUID) -> WatchlistEntry | None:
    query = (
        select(WatchlistEntry)
        .where(col(WatchlistEntry.entry_id) == entry_id)
        .order_by(col(WatchlistEntry.version).desc())
        .limit(1)
    )
    return await session.scalar(query)


async def _visible_current(
    session: AsyncSession, officer: Officer | None, entry_id: uuid.UUID
) -> WatchlistEntry:
    current = await current_version(session, entry_id)
    if current is None or not may_manage(role_of(officer), current.action):
        raise Problem(404, "Not found", field="entry_id", detail="no watchlist entry has this id")
    return current


async def write_versions(
    session: AsyncSession,
    *,
    node: Node,
    officer: Officer | None,
    rows: Sequence[WatchlistEntry],
    action: str,
    purpose: str,
    detail: dict[str, Any],
) -> None:
    """Insert entry versions, append them to the outbox, audit the write once."""
    for start in range(0, len(rows), ID_CHUNK):
        chunk = rows[start : start + ID_CHUNK]
        await session.execute(insert(WatchlistEntry), [row_of(row) for row in chunk])
        await enqueue(session, *chunk)
    record_id = rows[0].id if len(rows) == 1 else detail.get("file", "batch")
    await audit(
        session,
        origin=node.settings.node_code,
        officer=officer,
        action=action,
        record_type="watchlist_entry",
        record_id=record_id,
        purpose=purpose,
        detail={**detail, "versions": [f"{row.entry_id}/{row.version}" for row in rows]},
    )


async def create_entry(
    session: AsyncSession,
    *,
    node: Node,
    officer: Officer | None,
    data: WatchlistEntryCreate,
    face_template: bytes | None = None,
    modality_templates: dict[str, Any] | None = None,
) -> WatchlistEntry:
    """Write version 1 of a new entry; 409 if the source already lists this external id in
    an entry the officer manages (one it may not manage is not disclosed: see the module)."""
    refuse_unless_manages(officer, data.action)
    content = replace(
        content_from_create(data, today_at_node(node)),
        face_template=face_template,
        modality_templates=modality_templates or None,
    )
    refuse_if_invalid(content)
    external_id = data.external_id.strip() if data.external_id else str(uuid.uuid4())
    entry_id = await _free_entry_id(session, officer, data.source, external_id, data.action)
    entry = build_version(
        content,
        entry_id=entry_id,
        version=1,
        origin=node.settings.node_code,
        external_id=external_id,
        source=data.source.strip(),
        officer=officer,
        change_reason="created",
    )
    await write_versions(
        session,
        node=node,
        officer=officer,
        rows=[entry],
        action="create",
        purpose="watchlist_management",
        detail={"entry_id": str(entry_id)},
    )
    return entry


async def _free_entry_id(
    session: AsyncSession, officer: Officer | None, source: str, external_id: str, action: str
) -> uuid.UUID:
    """The id for a new entry: the source's own, else (taken by an entry the officer may not
    manage) a scoped one, else a random one; 409 only for an entry the officer manages."""
    for entry_id in (
        watchlist_entry_id(source, external_id),
        scoped_entry_id(source, external_id, action),
    ):
        taken = await current_version(session, entry_id)
        if taken is None:
            return entry_id
        if may_manage(role_of(officer), taken.action):
            raise Problem(
                409,
                "Entry exists",
                field="external_id",
                detail="this source already lists this external id: add a version instead",
            )
    return uuid.uuid4()


def today_at_node(node: Node) -> date:
    """Today in the node's time zone (a new entry's default ``valid_from``)."""
    return utcnow().astimezone(node.settings.zone).date()


async def update_entry(
    session: AsyncSession,
    *,
    node: Node,
    officer: Officer | None,
    entry_id: uuid.UUID,
    changes: dict[str, Any],
    change_reason: str,
) -> WatchlistEntry:
    """Write the next version with ``changes`` applied; the current version stays as it was."""
    current = await _visible_current(session, officer, entry_id)
    unknown = sorted(set(changes) - set(CONTENT_FIELDS))
    if unknown:
        raise Problem(422, "Unknown field", field=unknown[0], detail="this field cannot change")
    content = replace(content_of(current), **_cleaned(changes))
    refuse_unless_manages(officer, content.action)
    refuse_if_invalid(content)
    if content == content_of(current):
        raise Problem(
            422, "Nothing changed", field="body", detail="the new version equals the current one"
        )
    return await _next_version(session, node, officer, current, content, change_reason)


def _cleaned(changes: dict[str, Any]) -> dict[str, Any]:
    cleaned = {k: v.strip() if isinstance(v, str) else v for k, v in changes.items()}
    if cleaned.get("document_number") == "":
        cleaned["document_number"] = None
    return cleaned


async def _next_version(
    session: AsyncSession,
    node: Node,
    officer: Officer | None,
    current: WatchlistEntry,
    content: EntryContent,
    change_reason: str,
) -> WatchlistEntry:
    entry = build_version(
        content,
        entry_id=current.entry_id,
        version=current.version + 1,
        origin=node.settings.node_code,
        external_id=current.external_id,
        source=current.source,
        officer=officer,
        change_reason=change_reason,
    )
    await write_versions(
        session,
        node=node,
        officer=officer,
        rows=[entry],
        action="deactivate" if current.active and not entry.active else "update",
        purpose="watchlist_management",
        detail={"entry_id": str(entry.entry_id), "change_reason": change_reason},
    )
    return entry


async def deactivate_entry(
    session: AsyncSession,
    *,
    node: Node,
    officer: Officer | None,
    entry_id: uuid.UUID,
    reason: str,
) -> WatchlistEntry:
    """Remove an entry from matching by a new version with ``active=False``; 409 if removed."""
    current = await _visible_current(session, officer, entry_id)
    if not current.active:
        raise Problem(
            409, "Already inactive", field="entry_id", detail="this entry is already deactivated"
        )
    content = replace(content_of(current), active=False)
    return await _next_version(session, node, officer, current, content, reason)


async def list_entries(
    session: AsyncSession,
    *,
    node: Node,
    officer: Officer,
    kind: str | None = None,
    action: str | None = None,
    include_inactive: bool = False,
    limit: int = 100,
    offset: int = 0,
) -> list[WatchlistEntry]:
    """Current versions the officer may manage; the read is audited."""
    query = current_versions_query()
    visible = [a for a in WATCHLIST_ACTIONS if may_manage(officer.role, a)]
    query = query.where(col(WatchlistEntry.action).in_(visible))
    if kind is not None:
        query = query.where(WatchlistEntry.kind == kind)
    if action is not None:
        query = query.where(WatchlistEntry.action == action)
    if not include_inactive:
        query = query.where(col(WatchlistEntry.active).is_(True))
    query = query.order_by(WatchlistEntry.source, WatchlistEntry.external_id)
    entries = list((await session.scalars(query.limit(limit).offset(offset))).all())
    await _audit_read(session, node, officer, "list", [e.id for e in entries])
    return entries


async def entry_history(
    session: AsyncSession, *, node: Node, officer: Officer, entry_id: uuid.UUID
) -> list[WatchlistEntry]:
    """Every version of an entry, oldest first; the read is audited."""
    await _visible_current(session, officer, entry_id)
    query = (
        select(WatchlistEntry)
        .where(col(WatchlistEntry.entry_id) == entry_id)
        .order_by(col(WatchlistEntry.version))
    )
    versions = list((await session.scalars(query)).all())
    await _audit_read(session, node, officer, str(entry_id), [e.id for e in versions])
    return versions


async def _audit_read(
    session: AsyncSession,
    node: Node,
    officer: Officer,
    record_id: str,
    rows: list[uuid.UUID],
) -> None:
    await audit(
        session,
        origin=node.settings.node_code,
        officer=officer,
        action="read",
        record_type="watchlist_entry",
        record_id=record_id,
        purpose="watchlist_management",
        detail={"results": [str(row) for row in rows]},
    )


def iso_date(value: date | None) -> str | None:
    """A date as ISO text for a view or a CSV line; None stays None."""
    return value.isoformat() if value is not None else None


def entry_view(entry: WatchlistEntry) -> dict[str, Any]:
    """The JSON shape of an entry version (the face template and listed portrait themselves
    are never sent: the portrait is read, audited, through an alert)."""
    return {
        "id": str(entry.id),
        "entry_id": str(entry.entry_id),
        "version": entry.version,
        "origin": entry.origin,
        "external_id": entry.external_id,
        "source": entry.source,
        "kind": entry.kind,
        "surname": entry.surname,
        "given_names": entry.given_names,
        "date_of_birth": iso_date(entry.date_of_birth),
        "nationality": entry.nationality,
        "issuing_state": entry.issuing_state,
        "document_number": entry.document_number,
        "reason": entry.reason,
        "action": entry.action,
        "valid_from": iso_date(entry.valid_from),
        "valid_to": iso_date(entry.valid_to),
        "active": entry.active,
        "has_face_template": entry.face_template is not None,
        "has_listed_portrait": entry.listed_portrait is not None,
        "created_by": str(entry.created_by) if entry.created_by else None,
        "created_at": entry.created_at.isoformat(),
        "change_reason": entry.change_reason,
    }
