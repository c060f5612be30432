"""message counts rollup and content search

- ``message_counts``: per organization, UTC hour, channel, type, status and
  direction, how many live (not soft-deleted) messages exist. Kept exact by
  triggers on ``messages`` created here for both dialects (see
  ``mensajero/models/message_count.py`` for the design), and backfilled from
  the existing rows before the triggers exist, in the same transaction.
  PostgreSQL: statement-level AFTER triggers over transition tables append one
  aggregated delta row per key per statement; they are ENABLE ALWAYS so that
  bulk loads running with ``session_replication_role = replica`` (which skips
  ordinary triggers, foreign keys included) still count. A TRUNCATE of
  ``messages`` empties the rollup. SQLite: row-level triggers update one row
  per key in place.
- ``ix_messages_body_trgm``: a trigram GIN index for the case-insensitive
  "content contains" filter on PostgreSQL; on SQLite a partial index over no
  rows, so that both backends match the models.

Revision ID: a244c9e1cc24
Revises: 5c0d7e2a9b41
Create Date: 2026-11-22 13:40:00.000000+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mensajero.models.base

# revision identifiers, used by Alembic.
revision: str = "a244c9e1cc24"
down_revision: str | Sequence[str] | None = "5c0d7e2a9b41"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "message_counts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("bucket", mensajero.models.base.UTCDateTime(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("communication_type", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_counts")),
    )
    op.create_index(
        op.f("ix_message_counts_organization_id_bucket"),
        "message_counts",
        ["organization_id", "bucket"],
        unique=False,
    )
    op.create_index(
        op.f("ix_message_counts_organization_id_status_bucket"),
        "message_counts",
        ["organization_id", "status", "bucket"],
        unique=False,
    )
    op.create_index(
        "ix_messages_body_trgm",
        "messages",
        ["body"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"body": "gin_trgm_ops"},
        sqlite_where=sa.text("0"),
    )
    if op.get_context().dialect.name == "postgresql":
        _create_postgresql_triggers()
    else:
        _create_sqlite_triggers()


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        for name in ("insert", "update", "delete", "truncate"):
            op.execute(f"DROP TRIGGER IF EXISTS message_counts_{name} ON messages")
            op.execute(f"DROP FUNCTION IF EXISTS message_counts_after_{name}()")
    else:
        for name in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS message_counts_{name}")
    op.drop_index(
        "ix_messages_body_trgm",
        table_name="messages",
        postgresql_using="gin",
        postgresql_ops={"body": "gin_trgm_ops"},
        sqlite_where=sa.text("0"),
    )
    op.drop_index(
        op.f("ix_message_counts_organization_id_status_bucket"), table_name="message_counts"
    )
    op.drop_index(op.f("ix_message_counts_organization_id_bucket"), table_name="message_counts")
    op.drop_table("message_counts")


COLUMNS = "organization_id, bucket, channel, communication_type, status, direction, count"
PG_KEY = (
    "organization_id, date_trunc('hour', created_at, 'UTC') AS bucket,"
    " channel, communication_type, status, direction"
)


def _create_postgresql_triggers() -> None:
    op.execute(
        f"""
        INSERT INTO message_counts ({COLUMNS})
        SELECT {PG_KEY}, count(*) FROM messages WHERE deleted_at IS NULL
        GROUP BY 1, 2, 3, 4, 5, 6
        """
    )
    op.execute(
        f"""
        CREATE FUNCTION message_counts_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO message_counts ({COLUMNS})
            SELECT {PG_KEY}, count(*) FROM new_rows WHERE deleted_at IS NULL
            GROUP BY 1, 2, 3, 4, 5, 6;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        f"""
        CREATE FUNCTION message_counts_after_update() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            -- Updates that leave every key column (and deleted_at) alone net to
            -- zero per key and write nothing.
            INSERT INTO message_counts ({COLUMNS})
            SELECT organization_id, bucket, channel, communication_type, status, direction,
                   sum(delta)
            FROM (
                SELECT {PG_KEY}, 1 AS delta FROM new_rows WHERE deleted_at IS NULL
                UNION ALL
                SELECT {PG_KEY}, -1 AS delta FROM old_rows WHERE deleted_at IS NULL
            ) AS changes
            GROUP BY 1, 2, 3, 4, 5, 6
            HAVING sum(delta) <> 0;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        f"""
        CREATE FUNCTION message_counts_after_delete() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO message_counts ({COLUMNS})
            SELECT {PG_KEY}, -count(*) FROM old_rows WHERE deleted_at IS NULL
            GROUP BY 1, 2, 3, 4, 5, 6;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION message_counts_after_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            TRUNCATE message_counts;
            RETURN NULL;
        END $$
        """
    )
    for event, referencing in (
        ("insert", "REFERENCING NEW TABLE AS new_rows"),
        ("update", "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"),
        ("delete", "REFERENCING OLD TABLE AS old_rows"),
        ("truncate", ""),
    ):
        op.execute(
            f"CREATE TRIGGER message_counts_{event} AFTER {event.upper()} ON messages"
            f" {referencing} FOR EACH STATEMENT EXECUTE FUNCTION message_counts_after_{event}()"
        )
        op.execute(f"ALTER TABLE messages ENABLE ALWAYS TRIGGER message_counts_{event}")


# SQLite stores UTCDateTime as naive "YYYY-MM-DD HH:MM:SS.ffffff" text.
def _sqlite_bucket(row: str) -> str:
    return f"substr({row}.created_at, 1, 13) || ':00:00.000000'"


def _sqlite_key_match(row: str) -> str:
    return (
        f"organization_id = {row}.organization_id AND bucket = {_sqlite_bucket(row)}"
        f" AND channel = {row}.channel AND communication_type = {row}.communication_type"
        f" AND status = {row}.status AND direction = {row}.direction"
    )


def _sqlite_add(row: str, delta: int) -> str:
    """Add ``delta`` to the row's key: update its row, or create it if there is none."""
    condition = f"{row}.deleted_at IS NULL"
    return f"""
            UPDATE message_counts SET count = count + ({delta})
            WHERE {condition} AND id = (SELECT min(id) FROM message_counts
                                        WHERE {_sqlite_key_match(row)});
            INSERT INTO message_counts ({COLUMNS})
            SELECT {row}.organization_id, {_sqlite_bucket(row)}, {row}.channel,
                   {row}.communication_type, {row}.status, {row}.direction, {delta}
            WHERE {condition} AND NOT EXISTS (SELECT 1 FROM message_counts
                                              WHERE {_sqlite_key_match(row)});"""


def _create_sqlite_triggers() -> None:
    op.execute(
        f"""
        INSERT INTO message_counts ({COLUMNS})
        SELECT organization_id, substr(created_at, 1, 13) || ':00:00.000000', channel,
               communication_type, status, direction, count(*)
        FROM messages WHERE deleted_at IS NULL
        GROUP BY 1, 2, 3, 4, 5, 6
        """
    )
    op.execute(
        f"""
        CREATE TRIGGER message_counts_insert AFTER INSERT ON messages
        BEGIN {_sqlite_add("NEW", 1)}
        END
        """
    )
    op.execute(
        f"""
        CREATE TRIGGER message_counts_update AFTER UPDATE OF
            organization_id, created_at, channel, communication_type, status, direction,
            deleted_at
        ON messages
        BEGIN {_sqlite_add("OLD", -1)} {_sqlite_add("NEW", 1)}
        END
        """
    )
    op.execute(
        f"""
        CREATE TRIGGER message_counts_delete AFTER DELETE ON messages
        BEGIN {_sqlite_add("OLD", -1)}
        END
        """
    )
