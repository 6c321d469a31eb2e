"""Alembic environment: runs Borderpost migrations on a connection handed over by
``registry.migrate`` (async engines: SQLite via aiosqlite, PostgreSQL via asyncpg)."""

from __future__ import annotations

import re
from typing import Any

from alembic import context
from sqlmodel import SQLModel

import registry.models  # noqa: F401 - registers the tables on SQLModel.metadata
import sync.models  # noqa: F401

target_metadata = SQLModel.metadata

# PostgreSQL-only schema made by migration 0004 (monthly crossing partitions, the trigram
# name-key dictionary, and no foreign keys into the partitioned crossing table): not drift.
_PG_ONLY = re.compile(r"^(crossing_(y\d{4}m\d{2}|default)|traveller_name_key)$")


# Foreign keys migration 0006 drops on PostgreSQL: national ingest checks them per batch.
_CHECKED_AT_INGEST = {
    ("crossing", "traveller_id"),
    ("crossing", "document_id"),
    ("crossing", "officer_id"),
    ("crossing", "photo_sha256"),
    ("travel_document", "traveller_id"),
}


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    if type_ == "table" and name and _PG_ONLY.match(name):
        return False
    if type_ == "index" and _PG_ONLY.match(obj.table.name):
        return False
    if type_ == "foreign_key_constraint" and obj.referred_table.name == "crossing":
        return False
    if type_ == "foreign_key_constraint" and len(obj.column_keys) == 1:
        return (obj.table.name, obj.column_keys[0]) not in _CHECKED_AT_INGEST
    return True


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through `borderpost db upgrade` (registry.migrate)")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=include_object if connection.dialect.name == "postgresql" else None,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
