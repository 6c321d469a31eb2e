"""The post's background sync: push and pull whenever the link is up, backing off while
it is down, for as long as the service runs."""

from __future__ import annotations

import asyncio
import logging

import httpx

from registry.node import Node
from sync.client import SyncClient, SyncError, national_link

log = logging.getLogger("borderpost.sync")


class SyncRunner:
    """Sync every ``interval`` seconds; after a failure wait twice as long, up to a cap."""

    def __init__(self, node: Node, *, interval: float, max_backoff: float = 600.0) -> None:
        self.node = node
        self.interval = interval
        self.max_backoff = max_backoff
        self.stopping = asyncio.Event()
        self.cycles = 0
        self.failures = 0

    async def _cycle(self) -> bool:
        async with self.node.db.session() as session:
            link = await national_link(session)
        if link is None:
            return True
        async with httpx.AsyncClient(timeout=30) as http:
            await SyncClient(self.node, link, http).sync_once()
        return True

    async def run(self) -> None:
        delay = self.interval
        while not self.stopping.is_set():
            try:
                await self._cycle()
                delay = self.interval
                self.cycles += 1
            except (SyncError, httpx.HTTPError, OSError) as exc:
                self.failures += 1
                delay = min(max(delay * 2, self.interval), self.max_backoff)
                log.warning("sync failed (%s); next attempt in %.0f s", exc, delay)
            try:
                await asyncio.wait_for(self.stopping.wait(), timeout=delay)
            except TimeoutError:
                pass

    def stop(self) -> None:
        self.stopping.set()
