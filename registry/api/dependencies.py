"""What Litestar injects into handlers by parameter name, for every route of the app.

- ``node``: this node (settings, database, keys, caches);
- ``officer``: the officer the guard authenticated (``registry.api.auth.current_officer``);
- ``transaction``: a session in a write transaction holding the node's write lock,
  committed after the handler returns and before the response is sent, rolled back if the
  handler raises;
- ``reading``: a session for an audited read (``registry.audit.audited_read``): it takes no
  write lock, and the audit events the handler records are committed by the journal before
  the answer leaves.

A handler opens its transaction itself with ``node.db.write_transaction()`` only where the
injected one cannot serve: slow work that must stay outside the write lock (argon2, image
decoding), or work that must follow the commit (a watchlist entry reaches the matcher only
once it is committed). Reads that touch no personal data (figures, the audit chain's
verdict, the list of accounts) use ``node.db.session()``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from litestar.datastructures import State
from litestar.di import Provide
from sqlalchemy.ext.asyncio import AsyncSession

from registry.api.auth import current_officer
from registry.audit import audited_read
from registry.node import Node


def provide_node(state: State) -> Node:
    node: Node = state.node
    return node


async def provide_transaction(node: Node) -> AsyncIterator[AsyncSession]:
    async with node.db.write_transaction() as session:
        yield session


async def provide_reading(node: Node) -> AsyncIterator[AsyncSession]:
    async with audited_read(node) as session:
        yield session


DEPENDENCIES: dict[str, Any] = {
    "node": Provide(provide_node, sync_to_thread=False),
    "officer": Provide(current_officer, sync_to_thread=False),
    "transaction": Provide(provide_transaction),
    "reading": Provide(provide_reading),
}
