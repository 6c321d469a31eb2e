"""superseded crossings

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 02:05:00.000000

``superseded_crossing`` holds the id of every crossing that a correction supersedes, kept
up to date by a trigger on ``crossing`` on both dialects (a statement-level trigger over
the inserted rows on PostgreSQL, ENABLE ALWAYS so that bulk loads under
session_replication_role=replica keep it too; a row-level trigger on SQLite). Crossings are
never updated or deleted (a correction is a new row), so inserts are all it must follow;
rows a partition move re-inserts are ignored as already present.

Why: every search, statistic and stay asks "is this crossing the current version?". Against
the partitioned crossing table that was one index probe per monthly partition for every
crossing returned, which took half of a document lookup on 5 million crossings. Against
this table it is one probe.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "superseded_crossing"
TRIGGER = "crossing_superseded_on_insert"


def _is_postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    op.create_table(
        TABLE, sa.Column("id", sa.Uuid(), nullable=False), sa.PrimaryKeyConstraint("id")
    )
    op.execute(
        f"INSERT INTO {TABLE} (id) SELECT DISTINCT supersedes FROM crossing "
        "WHERE supersedes IS NOT NULL"
    )
    if _is_postgresql():
        op.execute(
            f"CREATE FUNCTION {TRIGGER}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"INSERT INTO {TABLE} (id) SELECT DISTINCT supersedes FROM new_rows "
            "WHERE supersedes IS NOT NULL ON CONFLICT DO NOTHING; RETURN NULL; END $$"
        )
        op.execute(
            f"CREATE TRIGGER {TRIGGER} AFTER INSERT ON crossing REFERENCING NEW TABLE AS "
            f"new_rows FOR EACH STATEMENT EXECUTE FUNCTION {TRIGGER}()"
        )
        op.execute(f"ALTER TABLE crossing ENABLE ALWAYS TRIGGER {TRIGGER}")
    else:
        op.execute(
            f"CREATE TRIGGER {TRIGGER} AFTER INSERT ON crossing "
            "WHEN NEW.supersedes IS NOT NULL BEGIN "
            f"INSERT OR IGNORE INTO {TABLE} (id) VALUES (NEW.supersedes); END"
        )


def downgrade() -> None:
    op.execute(f"DROP TRIGGER {TRIGGER}" + (" ON crossing" if _is_postgresql() else ""))
    if _is_postgresql():
        op.execute(f"DROP FUNCTION {TRIGGER}()")
    op.drop_table(TABLE)
