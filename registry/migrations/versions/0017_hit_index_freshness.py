"""indexes for the hit index's freshness pass (national, PostgreSQL)

A hit/no-hit query first blinds what was stored since the last complete refresh of the
index (``sync.exchange.hits.refresh_index(since=...)``): travellers and documents by
``created_at``. Without an index that pass read the whole registry on every query. Only
national answers hit queries, so the indexes are made there, as BRIN: rows arrive in
``created_at`` order, and a BRIN index costs the ingest next to nothing to keep (a B-tree
on each table slowed national's ingest of a post's batches by about 15%). Not declared in
the models, like the trigram index of 0004 (see the schema-drift test).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 01:40:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("ix_traveller_created_at", "traveller"),
    ("ix_travel_document_created_at", "travel_document"),
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, table in INDEXES:
        op.create_index(name, table, ["created_at"], postgresql_using="brin")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, table in INDEXES:
        op.drop_index(name, table_name=table)
