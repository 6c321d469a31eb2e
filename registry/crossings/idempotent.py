"""Registering a crossing once per ``Idempotency-Key``: the first request with a key
registers, a later one of the same officer with the same key answers the first crossing
again (its read audited as ``registration_replay``). The key store and its per-key locks
are ``registry.idempotency``; this is the registration slice's use of them, for
``POST /api/crossings`` and the desk's save.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from sqlalchemy import select
from sqlmodel import col

from registry.audit import audited_read
from registry.crossings.records import audited_crossing_rows
from registry.crossings.registration import Registration
from registry.idempotency import registered_crossing
from registry.models import Alert, Officer
from registry.node import Node


async def replayed_registration(
    node: Node, officer: Officer, crossing_id: uuid.UUID
) -> Registration:
    """The registration as it was answered the first time (the read is audited)."""
    async with audited_read(node) as session:
        crossing, traveller, document = await audited_crossing_rows(
            session,
            node=node,
            officer=officer,
            crossing_id=crossing_id,
            purpose="registration_replay",
        )
        alerts = (
            await session.scalars(
                select(Alert).where(col(Alert.crossing_id) == crossing.id).order_by(col(Alert.id))
            )
        ).all()
    return Registration(crossing, traveller, document, None, tuple(alerts))


async def register_once(
    node: Node,
    officer: Officer,
    key: str | None,
    register: Callable[[str | None], Awaitable[Registration]],
) -> tuple[Registration, bool]:
    """Run ``register(key)`` unless this officer's key already registered a crossing;
    returns the registration and whether it is a replay of the first one."""
    if key is None:
        return await register(None), False
    async with node.idempotency.hold(officer.id, key):
        existing = await registered_crossing(node, officer, key)
        if existing is not None:
            return await replayed_registration(node, officer, existing), True
        return await register(key), False
