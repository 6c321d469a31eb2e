"""Idempotent registration: the ``Idempotency-Key`` header of ``POST /api/crossings`` and of
the desk's save.

A desk that times out and sends its registration again must not register the traveller
twice. With a key, the first request registers the crossing and stores (officer, key) ->
crossing id in ``idempotency_key``, in the registration's own transaction (the group
commit writes it with the crossing, so either both are stored or neither is). A later
request of the same officer with the same key registers nothing and answers the first
crossing again (its read is audited as ``registration_replay``); the mapping survives a
restart. Requests with the same key that arrive together wait for the first
(``IdempotencyLocks``). A registration that was refused stored nothing, so sending it again
tries again. Without the header nothing changes.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlmodel import col

from registry.models import Alert, IdempotencyKey, Officer, TravelDocument, Traveller
from registry.problems import Problem

if TYPE_CHECKING:
    from registry.crossings.registration import Registration
    from registry.node import Node

IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 200
_KEY = re.compile(rf"[\x21-\x7e]{{1,{MAX_KEY_LENGTH}}}")  # visible ASCII, no spaces


KEY_PATTERN = rf"^\s*[\x21-\x7e]{{1,{MAX_KEY_LENGTH}}}\s*$"  # for the OpenAPI document


def idempotency_key(raw: str | None) -> str | None:
    """The ``Idempotency-Key`` header's value checked (None without one); 400 when
    malformed."""
    if raw is None:
        return None
    key = raw.strip()
    if not _KEY.fullmatch(key):
        raise Problem(
            400,
            "Invalid idempotency key",
            field=IDEMPOTENCY_HEADER,
            detail=f"1 to {MAX_KEY_LENGTH} visible ASCII characters, e.g. a UUID",
        )
    return key


class IdempotencyLocks:
    """One lock per (officer, key) in use, so that simultaneous retries wait for the first;
    a lock is dropped as soon as nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[tuple[uuid.UUID, str], tuple[asyncio.Lock, int]] = {}

    def __len__(self) -> int:
        return len(self._locks)

    @asynccontextmanager
    async def hold(self, officer_id: uuid.UUID, key: str) -> AsyncIterator[None]:
        slot = (officer_id, key)
        lock, users = self._locks.get(slot, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[slot] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[slot]
            if users <= 1:
                del self._locks[slot]
            else:
                self._locks[slot] = (lock, users - 1)


async def registered_crossing(node: Node, officer: Officer, key: str) -> uuid.UUID | None:
    """The crossing this officer already registered with this key, if any."""
    async with node.db.session() as session:
        found = await session.scalar(
            select(col(IdempotencyKey.crossing_id)).where(
                col(IdempotencyKey.officer_id) == officer.id, col(IdempotencyKey.key) == key
            )
        )
    return found


async def replayed_registration(
    node: Node, officer: Officer, crossing_id: uuid.UUID
) -> Registration:
    """The registration as it was answered the first time (the read is audited)."""
    from registry.audit import audit
    from registry.crossings.records import load_crossing
    from registry.crossings.registration import Registration

    async with node.db.write_transaction() as session:
        crossing = await load_crossing(session, crossing_id)
        traveller = await session.get(Traveller, crossing.traveller_id)
        document = await session.get(TravelDocument, crossing.document_id)
        alerts = (
            await session.scalars(
                select(Alert).where(col(Alert.crossing_id) == crossing.id).order_by(col(Alert.id))
            )
        ).all()
        await audit(
            session,
            origin=node.settings.node_code,
            officer=officer,
            action="read",
            record_type="crossing",
            record_id=crossing.id,
            purpose="registration_replay",
        )
    assert traveller is not None and document is not None
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
