"""national partitions and indexes

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 22:40:00.000000

Indexes for the headquarters queries (``registry.hq``), on every dialect:

- ``ix_crossing_post_occurred`` crossing(post, occurred_at); on PostgreSQL it also INCLUDEs
  (direction, decision, id), so one post's flow statistics are an index-only scan;
- ``ix_crossing_document`` crossing(document_id, occurred_at): crossings made on a document;
- ``ix_traveller_nationality`` traveller(nationality);
- ``ix_alert_created_at`` alert(created_at): alert statistics over a date range.

Already present and used as they are: travel_document(number_norm, issuing_state),
crossing(occurred_at, direction), crossing(traveller_id, occurred_at), crossing(supersedes),
traveller(date_of_birth, name_key), traveller(name_key).

PostgreSQL only (the national node):

- ``CREATE EXTENSION IF NOT EXISTS pg_trgm``. The trigram GIN index ``ix_traveller_name_key_trgm``
  is on ``traveller_name_key``, the dictionary of DISTINCT traveller name keys, not on
  traveller itself: common names repeat (1.2 million travellers had 21,500 distinct keys in
  the benchmark), and a fuzzy search over the dictionary read 5-15 ms where the same search
  over traveller read 400 ms. Statement-level triggers on traveller (ENABLE ALWAYS, so they
  also fire under session_replication_role=replica) add new keys; keys of deleted travellers
  stay and simply match no row.
- ``crossing`` becomes RANGE-partitioned by month on ``occurred_at``: one partition per UTC
  month named ``crossing_yYYYYmMM``, from the month of the oldest crossing held (this month
  when there is none) through 12 months ahead, plus ``crossing_default`` for anything outside.
  Empty months are not created in advance: every query that cannot prune (by document, by
  traveller) visits every partition, and 120 partitions instead of 50 doubled the time of a
  document lookup. ``registry.hq.partitions.ensure_month_partitions`` adds months at start-up
  (12 ahead, plus any month the default partition has received rows for, moving those rows);
  call it with ``since=`` before importing older history.

Trade-offs of partitioning, all on PostgreSQL only:

- A partitioned table's primary key must contain the partition key: the primary key becomes
  (id, occurred_at). ``id`` is a UUIDv7 made where the crossing was born and a crossing's
  ``occurred_at`` never changes (a correction is a new row), so uniqueness of ``id`` alone is no
  longer enforced by the database but holds by construction. Idempotent ingest must use
  ``ON CONFLICT (id, occurred_at)``, not ``ON CONFLICT (id)``.
- Nothing can reference crossing(id) any more (no unique constraint on id alone), so the foreign
  keys alert.crossing_id, protection_referral.crossing_id and crossing's own
  guardian_crossing_id / closes_crossing_id / supersedes are dropped. National only receives
  records that were consistent at their post; dangling references are found by the digest
  check instead of being refused at insert. SQLite posts keep every foreign key.
- Foreign keys FROM crossing (officer, traveller, travel_document, photo) are kept.
- The SQLModel tables still declare the single-column primary key and those foreign keys; the
  Alembic environment must ignore these PostgreSQL-only differences (partitions, the name key
  dictionary, the trigram index, the foreign keys to crossing).

Downgrade works on both dialects. On PostgreSQL it converts crossing back to a plain table:
it restores the primary key on id and the foreign keys to crossing, and fails (rolling the
whole downgrade back) if the data now violates them, e.g. an alert whose crossing never
arrived. The pg_trgm extension is left installed (other objects may use it).
"""

from collections.abc import Sequence
from datetime import UTC, date, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.engine.interfaces import ReflectedForeignKeyConstraint, ReflectedIndex

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONTHS_AHEAD = 12
OLD_TABLE = "crossing_unpartitioned"
PARTITIONED_TABLE = "crossing_partitioned"
DEFAULT_PARTITION = "crossing_default"
NAME_KEYS = "traveller_name_key"
TRGM_INDEX = "ix_traveller_name_key_trgm"
NAME_KEY_TRIGGERS = ("traveller_name_key_on_insert", "traveller_name_key_on_update")
# (table, index name, columns, PostgreSQL INCLUDE columns)
INDEXES: tuple[tuple[str, str, list[str], list[str]], ...] = (
    (
        "crossing",
        "ix_crossing_post_occurred",
        ["post", "occurred_at"],
        ["direction", "decision", "id"],
    ),
    ("crossing", "ix_crossing_document", ["document_id", "occurred_at"], []),
    ("traveller", "ix_traveller_nationality", ["nationality"], []),
    ("alert", "ix_alert_created_at", ["created_at"], []),
)

# Foreign keys to crossing.id that partitioning removes: (table, column).
REFERENCES_TO_CROSSING: tuple[tuple[str, str], ...] = (
    ("alert", "crossing_id"),
    ("protection_referral", "crossing_id"),
    ("crossing", "guardian_crossing_id"),
    ("crossing", "closes_crossing_id"),
    ("crossing", "supersedes"),
)


def _is_postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def _partition_ddl(month: date) -> str:
    name = f"crossing_y{month.year:04d}m{month.month:02d}"
    upper = _add_months(month, 1)
    return (
        f"CREATE TABLE {name} PARTITION OF crossing FOR VALUES "
        f"FROM ('{month.isoformat()} 00:00:00+00') TO ('{upper.isoformat()} 00:00:00+00')"
    )


def _this_month() -> date:
    return datetime.now(UTC).date().replace(day=1)


def _first_month(table: str) -> date:
    oldest = op.get_bind().execute(sa.text(f"SELECT min(occurred_at) FROM {table}")).scalar()
    if oldest is None:
        return _this_month()
    return min(_this_month(), oldest.astimezone(UTC).date().replace(day=1))


def _create_partitions(first: date) -> None:
    last = _add_months(_this_month(), MONTHS_AHEAD)
    month = first
    while month <= last:
        op.execute(_partition_ddl(month))
        month = _add_months(month, 1)
    op.execute(f"CREATE TABLE {DEFAULT_PARTITION} PARTITION OF crossing DEFAULT")


def _drop_references_to_crossing() -> None:
    inspector = sa.inspect(op.get_bind())
    for table in sorted({table for table, _ in REFERENCES_TO_CROSSING}):
        for fk in inspector.get_foreign_keys(table):
            if fk["referred_table"] == "crossing":
                assert fk["name"] is not None, "PostgreSQL names every constraint"
                op.drop_constraint(fk["name"], table, type_="foreignkey")


def _outgoing_foreign_keys(table: str) -> list[ReflectedForeignKeyConstraint]:
    """Foreign keys from ``table`` to tables other than crossing (kept across the rebuild)."""
    keys = sa.inspect(op.get_bind()).get_foreign_keys(table)
    return [fk for fk in keys if fk["referred_table"] not in ("crossing", table)]


def _add_foreign_keys(table: str, keys: list[ReflectedForeignKeyConstraint]) -> None:
    for fk in keys:
        op.create_foreign_key(
            fk["name"],
            table,
            fk["referred_table"],
            fk["constrained_columns"],
            fk["referred_columns"],
        )


def _move_indexes(source: str) -> list[ReflectedIndex]:
    """Drop the indexes of ``source`` (to free their names) and return them to recreate."""
    indexes = sa.inspect(op.get_bind()).get_indexes(source)
    for index in indexes:
        assert index["name"] is not None, "PostgreSQL names every index"
        op.drop_index(index["name"], table_name=source)
    return indexes


def _recreate_indexes(indexes: list[ReflectedIndex]) -> None:
    for index in indexes:
        columns = [name for name in index["column_names"] if name is not None]
        assert len(columns) == len(index["column_names"]), "crossing has no expression index"
        op.create_index(index["name"], "crossing", columns, unique=bool(index["unique"]))


def _rebuild_crossing(old_name: str, partitioned: bool) -> None:
    """Swap crossing for a partitioned (or plain) copy with the same columns, indexes and
    outgoing foreign keys; the caller deals with references TO crossing."""
    outgoing = _outgoing_foreign_keys("crossing")
    indexes = _move_indexes("crossing")
    op.execute(f"ALTER TABLE crossing RENAME TO {old_name}")
    op.execute(f"ALTER TABLE {old_name} RENAME CONSTRAINT crossing_pkey TO {old_name}_pkey")
    partition_clause = " PARTITION BY RANGE (occurred_at)" if partitioned else ""
    op.execute(
        f"CREATE TABLE crossing (LIKE {old_name} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        f"{partition_clause}"
    )
    key = "id, occurred_at" if partitioned else "id"
    op.execute(f"ALTER TABLE crossing ADD CONSTRAINT crossing_pkey PRIMARY KEY ({key})")
    if partitioned:
        _create_partitions(_first_month(old_name))
    op.execute(f"INSERT INTO crossing SELECT * FROM {old_name}")
    op.execute(f"DROP TABLE {old_name}")
    _add_foreign_keys("crossing", outgoing)
    _recreate_indexes(indexes)


def _restore_references_to_crossing() -> None:
    for table, column in REFERENCES_TO_CROSSING:
        op.create_foreign_key(f"{table}_{column}_fkey", table, "crossing", [column], ["id"])


def _create_query_indexes() -> None:
    for table, name, columns, include in INDEXES:
        op.create_index(name, table, columns, postgresql_include=include)


def _create_name_key_dictionary() -> None:
    """The distinct traveller name keys with a trigram index, kept up to date by triggers."""
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute(f"CREATE TABLE {NAME_KEYS} (name_key VARCHAR(400) PRIMARY KEY)")
    op.execute(f"INSERT INTO {NAME_KEYS} SELECT DISTINCT name_key FROM traveller")
    op.execute(f"CREATE INDEX {TRGM_INDEX} ON {NAME_KEYS} USING gin (name_key gin_trgm_ops)")
    op.execute(
        f"CREATE FUNCTION {NAME_KEYS}_add() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"INSERT INTO {NAME_KEYS} (name_key) SELECT DISTINCT name_key FROM new_rows "
        "ON CONFLICT DO NOTHING; RETURN NULL; END $$"
    )
    for trigger, event in zip(NAME_KEY_TRIGGERS, ("INSERT", "UPDATE"), strict=True):
        op.execute(
            f"CREATE TRIGGER {trigger} AFTER {event} ON traveller "
            f"REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
            f"EXECUTE FUNCTION {NAME_KEYS}_add()"
        )
        op.execute(f"ALTER TABLE traveller ENABLE ALWAYS TRIGGER {trigger}")


def _drop_name_key_dictionary() -> None:
    for trigger in NAME_KEY_TRIGGERS:
        op.execute(f"DROP TRIGGER {trigger} ON traveller")
    op.execute(f"DROP FUNCTION {NAME_KEYS}_add()")
    op.execute(f"DROP TABLE {NAME_KEYS}")


def upgrade() -> None:
    if _is_postgresql():
        _drop_references_to_crossing()
        _rebuild_crossing(OLD_TABLE, partitioned=True)
        _create_name_key_dictionary()
    _create_query_indexes()


def downgrade() -> None:
    for table, name, _, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
    if _is_postgresql():
        _drop_name_key_dictionary()
        _rebuild_crossing(PARTITIONED_TABLE, partitioned=False)
        _restore_references_to_crossing()
