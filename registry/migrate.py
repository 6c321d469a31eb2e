"""Schema migrations: apply Alembic revisions and refuse to run on an unmigrated database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class SchemaNotCurrent(RuntimeError):
    """The database is not at the latest migration; run `borderpost db upgrade`."""


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migrations found"
    return head


def _upgrade(sync_connection: Any, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = sync_connection
    command.upgrade(config, revision)


def _autogenerate(sync_connection: Any, message: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = sync_connection
    command.revision(config, message=message, autogenerate=True)


def _current(sync_connection: Any) -> str | None:
    return MigrationContext.configure(sync_connection).get_current_revision()


async def upgrade_database(engine: AsyncEngine, revision: str = "head") -> None:
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade, revision)


async def autogenerate_revision(engine: AsyncEngine, message: str) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(_autogenerate, message)


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        return await connection.run_sync(_current)


async def ensure_schema_current(engine: AsyncEngine) -> None:
    current = await current_revision(engine)
    head = head_revision()
    if current != head:
        raise SchemaNotCurrent(
            f"database schema is at {current or 'nothing (empty database)'}, code needs {head}: "
            "run `borderpost db upgrade`"
        )
