"""idempotency keys of registrations

``idempotency_key`` maps (officer, Idempotency-Key header) to the crossing that
registration created, so that a desk retrying ``POST /api/crossings`` after a timeout,
even across a restart, gets the first answer instead of a second crossing.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 20:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import registry.models

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "idempotency_key",
        sa.Column("officer_id", sa.Uuid(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("crossing_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", registry.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("officer_id", "key"),
    )


def downgrade() -> None:
    op.drop_table("idempotency_key")
