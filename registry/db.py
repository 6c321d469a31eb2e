"""Database engine and sessions: SQLite (WAL, synchronous=FULL) or PostgreSQL via asyncpg.

Sessions are plain SQLAlchemy ``AsyncSession`` objects provided by our own provider;
queries use ``session.execute``/``session.scalars`` everywhere (see design.md pitfall).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from registry.json_text import compact_json
from registry.settings import Settings

SQLITE_BUSY_TIMEOUT_MS = 10_000

Result = TypeVar("Result")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(settings: Settings) -> AsyncEngine:
    """Create the async engine for this node, with durable SQLite pragmas."""
    url = settings.db_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            json_serializer=compact_json,
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        url, pool_size=10, max_overflow=10, pool_pre_ping=True, json_serializer=compact_json
    )


class Database:
    """Owns the engine, the session factory and the write lock of one node."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = make_engine(settings)
        # session.info["role"] lets the audit log skip the outbox on national (see audit())
        self.sessions = async_sessionmaker(
            self.engine, expire_on_commit=False, info={"role": settings.role}
        )
        # SQLite allows one writer; serialising writes in-process avoids snapshot conflicts
        # and keeps the audit hash chain linear.  PostgreSQL uses an advisory lock instead.
        self.write_lock = asyncio.Lock()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    @asynccontextmanager
    async def write_transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction that holds the node write lock; commits on success."""
        async with self.write_lock, self.sessions() as session, session.begin():
            await lock_for_write(session)
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()


def dialect_name(session: AsyncSession) -> str:
    """The session's database: "postgresql" (national) or "sqlite" (a post)."""
    bind = session.bind
    assert bind is not None, "every session is made by Database, bound to its engine"
    return bind.dialect.name


async def lock_for_write(session: AsyncSession) -> None:
    """Take the node-wide write lock inside the current PostgreSQL transaction."""
    if dialect_name(session) == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(7214001)"))


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()  # an error after the caller was cancelled has no one to go to


async def finish_even_if_cancelled(work: Coroutine[Any, Any, Result]) -> Result:
    """Await ``work`` in a task of its own that cancelling the caller does not stop.

    For raw driver reads on SQLite (aiosqlite runs each call in its thread): cancelled
    between ``execute`` and ``fetchall``, such a read leaves its statement open, and the
    read snapshot it holds makes the connection's next write fail at once with "database is
    locked", for whoever takes the connection from the pool next. ``work`` must open and
    close its own session, so the connection goes back only once the read is done. The
    caller is still cancelled at once."""
    task = asyncio.ensure_future(work)
    task.add_done_callback(_retrieve)
    return await asyncio.shield(task)
