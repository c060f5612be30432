"""message count totals

``message_count_totals``: the all-time counts per organization and kind
(``message_counts`` without the hour), so that a total without a date range
sums a few dozen rows instead of one row per hour and kind. Backfilled from
``message_counts``; the triggers on ``messages`` now maintain both tables in
the same statement (PostgreSQL: one data-modifying CTE per statement over the
transition tables; SQLite: row-level triggers updating one row per key). A
TRUNCATE of ``messages`` now empties the rollup with DELETE, so that a
TRUNCATE that also names the rollup tables does not fail.

Revision ID: d7e8f9a0b1c2
Revises: c3f1d2e4b5a6
Create Date: 2026-11-22 14:10:00.000000+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "d7e8f9a0b1c2"
down_revision: str | Sequence[str] | None = "c3f1d2e4b5a6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HOURLY_COLUMNS = "organization_id, bucket, channel, communication_type, status, direction, count"
TOTAL_KEY = "organization_id, channel, communication_type, status, direction"
PG_KEY = (
    "organization_id, date_trunc('hour', created_at, 'UTC') AS bucket,"
    " channel, communication_type, status, direction"
)
PG_CHANGES = {
    "insert": f"SELECT {PG_KEY}, 1 AS delta FROM new_rows WHERE deleted_at IS NULL",
    "update": (
        f"SELECT {PG_KEY}, 1 AS delta FROM new_rows WHERE deleted_at IS NULL"
        f" UNION ALL SELECT {PG_KEY}, -1 AS delta FROM old_rows WHERE deleted_at IS NULL"
    ),
    "delete": f"SELECT {PG_KEY}, -1 AS delta FROM old_rows WHERE deleted_at IS NULL",
}


def upgrade() -> None:
    op.create_table(
        "message_count_totals",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("communication_type", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_count_totals")),
    )
    op.create_index(
        op.f("ix_message_count_totals_organization_id_status"),
        "message_count_totals",
        ["organization_id", "status"],
        unique=False,
    )
    op.execute(
        f"""
        INSERT INTO message_count_totals ({TOTAL_KEY}, count)
        SELECT {TOTAL_KEY}, sum(count) FROM message_counts
        GROUP BY {TOTAL_KEY} HAVING sum(count) <> 0
        """
    )
    if op.get_context().dialect.name == "postgresql":
        _postgresql_functions(with_totals=True)
    else:
        _sqlite_triggers(with_totals=True)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        _postgresql_functions(with_totals=False)
    else:
        _sqlite_triggers(with_totals=False)
    op.drop_index(
        op.f("ix_message_count_totals_organization_id_status"), table_name="message_count_totals"
    )
    op.drop_table("message_count_totals")


def _postgresql_functions(*, with_totals: bool) -> None:
    """Replace the trigger functions (the triggers themselves stay)."""
    for event, changes in PG_CHANGES.items():
        totals = (
            f"""
            , hourly AS (INSERT INTO message_counts ({HOURLY_COLUMNS}) SELECT * FROM delta)
            INSERT INTO message_count_totals ({TOTAL_KEY}, count)
            SELECT {TOTAL_KEY}, sum(n) FROM delta GROUP BY {TOTAL_KEY} HAVING sum(n) <> 0;"""
            if with_totals
            else f"""
            INSERT INTO message_counts ({HOURLY_COLUMNS}) SELECT * FROM delta;"""
        )
        op.execute(
            f"""
            CREATE OR REPLACE FUNCTION message_counts_after_{event}() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                -- Statements that leave every key column (and deleted_at) alone
                -- net to zero per key and write nothing.
                WITH delta AS (
                    SELECT organization_id, bucket, channel, communication_type, status,
                           direction, sum(delta) AS n
                    FROM ({changes}) AS changes
                    GROUP BY 1, 2, 3, 4, 5, 6
                    HAVING sum(delta) <> 0
                ){totals}
                RETURN NULL;
            END $$
            """
        )
    # DELETE, not TRUNCATE: a TRUNCATE listing messages and the rollup tables
    # together (bench/seed.py --reset) can't truncate them again from here.
    deletes = "DELETE FROM message_counts;"
    if with_totals:
        deletes += " DELETE FROM message_count_totals;"
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION message_counts_after_truncate() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            {deletes}
            RETURN NULL;
        END $$
        """
    )


# SQLite stores UTCDateTime as naive "YYYY-MM-DD HH:MM:SS.ffffff" text.
def _sqlite_bucket(row: str) -> str:
    return f"substr({row}.created_at, 1, 13) || ':00:00.000000'"


def _sqlite_key_match(row: str, *, hourly: bool) -> str:
    bucket = f" AND bucket = {_sqlite_bucket(row)}" if hourly else ""
    return (
        f"organization_id = {row}.organization_id{bucket}"
        f" AND channel = {row}.channel AND communication_type = {row}.communication_type"
        f" AND status = {row}.status AND direction = {row}.direction"
    )


def _sqlite_add_to(table: str, row: str, delta: int, *, hourly: bool) -> str:
    """Add ``delta`` to the row's key in ``table``: update its row, or create it."""
    condition = f"{row}.deleted_at IS NULL"
    match = _sqlite_key_match(row, hourly=hourly)
    columns = HOURLY_COLUMNS if hourly else f"{TOTAL_KEY}, count"
    bucket = f"{_sqlite_bucket(row)}, " if hourly else ""
    return f"""
            UPDATE {table} SET count = count + ({delta})
            WHERE {condition} AND id = (SELECT min(id) FROM {table} WHERE {match});
            INSERT INTO {table} ({columns})
            SELECT {row}.organization_id, {bucket}{row}.channel, {row}.communication_type,
                   {row}.status, {row}.direction, {delta}
            WHERE {condition} AND NOT EXISTS (SELECT 1 FROM {table} WHERE {match});"""


def _sqlite_add(row: str, delta: int, *, with_totals: bool) -> str:
    sql = _sqlite_add_to("message_counts", row, delta, hourly=True)
    if with_totals:
        sql += _sqlite_add_to("message_count_totals", row, delta, hourly=False)
    return sql


def _sqlite_triggers(*, with_totals: bool) -> None:
    for name in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS message_counts_{name}")
    op.execute(
        f"""
        CREATE TRIGGER message_counts_insert AFTER INSERT ON messages
        BEGIN {_sqlite_add("NEW", 1, with_totals=with_totals)}
        END
        """
    )
    op.execute(
        f"""
        CREATE TRIGGER message_counts_update AFTER UPDATE OF
            organization_id, created_at, channel, communication_type, status, direction,
            deleted_at
        ON messages
        BEGIN {_sqlite_add("OLD", -1, with_totals=with_totals)}
              {_sqlite_add("NEW", 1, with_totals=with_totals)}
        END
        """
    )
    op.execute(
        f"""
        CREATE TRIGGER message_counts_delete AFTER DELETE ON messages
        BEGIN {_sqlite_add("OLD", -1, with_totals=with_totals)}
        END
        """
    )
