"""Database engine and sessions: SQLite (WAL, synchronous=FULL) or PostgreSQL via asyncpg.

Sessions are plain SQLAlchemy ``AsyncSession`` objects provided by our own provider;
queries use ``session.execute``/``session.scalars`` everywhere (see design.md pitfall).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

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
