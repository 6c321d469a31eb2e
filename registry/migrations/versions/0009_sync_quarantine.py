"""sync quarantine (records national could not store)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 20:40:00.000000

``sync_quarantine`` holds a received record that could not be stored (unreadable, text the
database refuses, a value over its column, a claimed origin that is not the sender, a row
the sender does not own, a reference to a row national lacks, a constraint), with its
reason and the payload as received, so that the rest of its batch is stored and
acknowledged past it. National keeps what its posts and the partner sent; a post keeps
national's answers about its own records. Both dialects.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import registry.models

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _text(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    op.create_table(
        "sync_quarantine",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("origin", _text(32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("record_type", _text(40), nullable=False),
        sa.Column("record_id", _text(80), nullable=False),
        sa.Column("reason", _text(40), nullable=False),
        sa.Column("detail", _text(500), nullable=False),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.Column("received_at", registry.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", _text(10), nullable=False),
        sa.Column("resolved_by", _text(64), nullable=True),
        sa.Column("resolved_at", registry.models.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("origin", "seq", "record_type", name="uq_sync_quarantine_record"),
    )
    with op.batch_alter_table("sync_quarantine", schema=None) as batch_op:
        batch_op.create_index("ix_sync_quarantine_origin", ["origin"], unique=False)
        batch_op.create_index("ix_sync_quarantine_status", ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sync_quarantine", schema=None) as batch_op:
        batch_op.drop_index("ix_sync_quarantine_status")
        batch_op.drop_index("ix_sync_quarantine_origin")
    op.drop_table("sync_quarantine")
