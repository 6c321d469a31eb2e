"""Group commit: concurrent writers share one transaction and one fsync.

SQLite allows one writer at a time and each commit costs an fsync; with aiosqlite every
statement also costs a thread hop. A ``GroupCommit`` queues the items submitted while the
node write lock is taken; whoever gets the lock next drains every waiting item and writes
them together in one transaction. Nobody is answered before the commit that holds their
item, so an acknowledged write is durable. A batch that fails as a whole is retried one
item at a time, so one bad item never takes the others down with it.

Used by registrations (``registry.crossings.registration_writer``) and by the audit events
of reads (``registry.audit.AuditJournal``).
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from typing import Generic, TypeVar

from registry.db import Database

Item = TypeVar("Item")
Result = TypeVar("Result")


class GroupCommit(ABC, Generic[Item, Result]):
    """Queues items and writes them in batches of at most ``max_batch`` under the node
    write lock; ``submit`` returns an item's result once its batch has committed."""

    def __init__(self, db: Database, max_batch: int) -> None:
        self.db = db
        self.max_batch = max_batch
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self.batches_written = 0
        self.largest_batch = 0

    async def submit(self, item: Item) -> Result:
        """Write one item; returns once it is committed (or raises its own error)."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        async with self.db.write_lock:
            if not future.done():
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                await self._write_batch(batch)
        return await future

    async def _write_batch(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        try:
            results = await self.transaction([item for item, _ in batch])
        except Exception as exc:  # noqa: BLE001 - a batch failure is retried item by item
            if len(batch) == 1:
                batch[0][1].set_exception(exc)
                return
            for pair in batch:
                await self._write_batch([pair])
            return
        self.batches_written += 1
        self.largest_batch = max(self.largest_batch, len(batch))
        for (_, future), result in zip(batch, results, strict=True):
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)

    @abstractmethod
    async def transaction(self, items: list[Item]) -> list[Result | BaseException]:
        """Write ``items`` in one committed transaction (the caller holds the write lock);
        an item refused on its own gets its exception in its place, the others commit."""
