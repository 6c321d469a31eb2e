"""indexes for the hit index's freshness pass

A hit/no-hit query first blinds what was stored since the last complete refresh of the
index (``sync.exchange.hits.refresh_index(since=...)``): travellers and documents by
``created_at``. Without these indexes that pass read the whole registry on every query.

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


def upgrade() -> None:
    op.create_index("ix_traveller_created_at", "traveller", ["created_at"])
    op.create_index("ix_travel_document_created_at", "travel_document", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_travel_document_created_at", table_name="travel_document")
    op.drop_index("ix_traveller_created_at", table_name="traveller")
