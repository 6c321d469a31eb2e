"""two crossing indexes every ingest paid for and no query needed

- ``ix_crossing_post`` (post) is dropped: ``ix_crossing_post_occurred`` (post, occurred_at)
  starts with the same column, so every query on ``post`` alone is served by it.
- ``ix_crossing_supersedes`` becomes partial (``WHERE supersedes IS NOT NULL``): the only
  query on it asks for the correction of a given crossing (``supersedes = :id``), which a
  partial index serves on both databases, and almost every crossing is a first version
  whose NULL the full index stored.

Each crossing stored (a post's registration, national's COPY of a post's batch) wrote both;
at national that is two of the seven indexes of every monthly partition. On PostgreSQL the
partitioned parent's index is dropped and created with its partitions'.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 04:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FIRST_VERSIONS_LEFT_OUT = sa.text("supersedes IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_crossing_post", table_name="crossing")
    op.drop_index("ix_crossing_supersedes", table_name="crossing")
    op.create_index(
        "ix_crossing_supersedes",
        "crossing",
        ["supersedes"],
        postgresql_where=FIRST_VERSIONS_LEFT_OUT,
        sqlite_where=FIRST_VERSIONS_LEFT_OUT,
    )


def downgrade() -> None:
    op.drop_index("ix_crossing_supersedes", table_name="crossing")
    op.create_index("ix_crossing_supersedes", "crossing", ["supersedes"])
    op.create_index("ix_crossing_post", "crossing", ["post"])
