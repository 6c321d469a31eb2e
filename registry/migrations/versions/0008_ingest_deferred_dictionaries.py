"""ingest defers the trigger-kept dictionaries

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 07:30:00.000000

PostgreSQL only. The two statement-level triggers that keep dictionaries up to date
(``traveller_name_key`` from traveller, migration 0004; ``superseded_crossing`` from
crossing, migration 0007) do nothing in a transaction that set
``borderpost.defer_dictionaries`` to ``on`` (transaction-local, ``set_config(..., true)``).
Every other writer is unchanged.

Why: national applies a post's consecutive batches in parallel transactions that commit in
order (``sync.ingest.apply.apply_overlapped``). A dictionary key new to both batches (a common
name seen for the first time) made the earlier batch wait in PostgreSQL for the later
one's uncommitted key, while the later one waited in the application for the earlier one:
a cycle the database cannot see. The ingest path sets the flag and inserts the batch's
keys itself once its predecessor has committed, under the sender's ingest-state lock.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEFERRED = "coalesce(current_setting('borderpost.defer_dictionaries', true), '') = 'on'"
NAME_KEYS = (
    "traveller_name_key_add",
    "INSERT INTO traveller_name_key (name_key) SELECT DISTINCT name_key FROM new_rows "
    "ON CONFLICT DO NOTHING;",
)
SUPERSEDED = (
    "crossing_superseded_on_insert",
    "INSERT INTO superseded_crossing (id) SELECT DISTINCT supersedes FROM new_rows "
    "WHERE supersedes IS NOT NULL ON CONFLICT DO NOTHING;",
)


def _function(name: str, body: str, *, deferrable: bool) -> None:
    guard = f"IF {DEFERRED} THEN RETURN NULL; END IF; " if deferrable else ""
    op.execute(
        f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"{guard}{body} RETURN NULL; END $$"
    )


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name, body in (NAME_KEYS, SUPERSEDED):
            _function(name, body, deferrable=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name, body in (NAME_KEYS, SUPERSEDED):
            _function(name, body, deferrable=False)
