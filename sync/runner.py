"""The post's background sync: push and pull whenever the link is up, backing off while
it is down (or anything else fails), for as long as the service runs."""

from __future__ import annotations

import logging
import random

from registry.node import Node
from sync.backoff import ResilientRunner
from sync.client import SyncClient, national_link
from sync.links import link_client

log = logging.getLogger("borderpost.sync")


class SyncRunner(ResilientRunner):
    """Sync every ``interval`` seconds; after failures wait a jittered, exponentially
    growing delay, up to ``max_backoff`` (``sync.backoff``)."""

    name = "sync"

    def __init__(
        self,
        node: Node,
        *,
        interval: float,
        max_backoff: float = 600.0,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(interval=interval, max_backoff=max_backoff, log=log, rng=rng)
        self.node = node

    async def cycle(self) -> None:
        async with self.node.db.session() as session:
            link = await national_link(session)
        if link is None:
            return
        async with link_client(
            self.node.settings, link.url, pin=link.cert_sha256, timeout=30
        ) as http:
            await SyncClient(self.node, link, http).sync_once()
