"""one-time enrolment invitations for posts

National keeps only the SHA-256 of each enrolment code an admin issues, with its post
code, issuer, expiry and use. A post keeps the pin of national's TLS certificate on its
national peer row (``sync_peer.tls_cert_sha256``) when the link is pinned.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 20:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import registry.models

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "enrolment_invitation",
        sa.Column("code_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("node_code", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("issued_at", registry.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("issued_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("expires_at", registry.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", registry.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("used_key_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.PrimaryKeyConstraint("code_sha256"),
    )
    with op.batch_alter_table("enrolment_invitation", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_enrolment_invitation_node_code"), ["node_code"], unique=False
        )
    with op.batch_alter_table("sync_peer", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("tls_cert_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("sync_peer", schema=None) as batch_op:
        batch_op.drop_column("tls_cert_sha256")
    with op.batch_alter_table("enrolment_invitation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_enrolment_invitation_node_code"))
    op.drop_table("enrolment_invitation")
