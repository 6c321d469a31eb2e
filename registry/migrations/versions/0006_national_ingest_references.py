"""national ingest checks references per batch

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 01:55:00.000000

PostgreSQL only (the national node). The foreign keys from ``crossing`` (traveller,
travel_document, officer, photo) and from ``travel_document`` (traveller) are dropped.
Posts push hundreds of thousands of these rows, and the row-by-row foreign-key triggers
took a third of national's bulk ingest time. ``sync.ingest`` checks the same references
instead, once per batch and table: one query per reference finds any referenced id national
does not hold, and the whole batch is refused as malformed, as the constraint would have
refused it. Only ingest writes these tables on a national node. SQLite (the posts) keeps
every foreign key; the Alembic environment ignores the difference on PostgreSQL
(``registry.migrations.env``).

Downgrade restores the constraints (failing, and rolling back, if data now violates them).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column, referred table, referred column): checked by sync.ingest instead.
CHECKED_AT_INGEST: tuple[tuple[str, str, str, str], ...] = (
    ("crossing", "traveller_id", "traveller", "id"),
    ("crossing", "document_id", "travel_document", "id"),
    ("crossing", "officer_id", "officer", "id"),
    ("crossing", "photo_sha256", "photo", "sha256"),
    ("travel_document", "traveller_id", "traveller", "id"),
)


def _is_postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    if not _is_postgresql():
        return
    inspector = sa.inspect(op.get_bind())
    for table, column, referred, _ in CHECKED_AT_INGEST:
        for fk in inspector.get_foreign_keys(table):
            if fk["constrained_columns"] == [column] and fk["referred_table"] == referred:
                assert fk["name"] is not None, "PostgreSQL names every constraint"
                op.drop_constraint(fk["name"], table, type_="foreignkey")


def downgrade() -> None:
    if not _is_postgresql():
        return
    for table, column, referred, referred_column in CHECKED_AT_INGEST:
        op.create_foreign_key(
            f"{table}_{column}_fkey", table, referred, [column], [referred_column]
        )
