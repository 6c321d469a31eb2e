"""the listed portrait of a face watchlist entry

``watchlist_entry.listed_portrait``: a small JPEG (150x188, EXIF-free, re-encoded by
``registry.photos.listed_portrait``) of the face an entry's template was taken from, so the
supervisor who adjudicates a face alert sees the listed face beside the one taken at the
crossing. Nullable: entries enrolled before keep only their template. It travels to the posts
with the rest of the row.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 01:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("watchlist_entry", sa.Column("listed_portrait", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("watchlist_entry", schema=None) as batch_op:
        batch_op.drop_column("listed_portrait")
