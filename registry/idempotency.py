"""Idempotent registration: the ``Idempotency-Key`` header of ``POST /api/crossings`` and of
the desk's save.

A desk that times out and sends its registration again must not register the traveller
twice. With a key, the first request registers the crossing and stores (officer, key) ->
crossing id in ``idempotency_key``, in the registration's own transaction (the group
commit writes it with the crossing, so either both are stored or neither is). A later
request of the same officer with the same key registers nothing and answers the first
crossing again (its read is audited as ``registration_replay``: the crossings slice's
``registry.crossings.idempotent.register_once``); the mapping survives a restart. Requests
with the same key that arrive together wait for the first (``IdempotencyLocks``). A
registration that was refused stored nothing, so sending it again
tries again. Without the header nothing changes.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlmodel import col

from registry.models import IdempotencyKey, Officer
from registry.problems import Problem

if TYPE_CHECKING:
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
