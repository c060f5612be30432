"""attempt counts rollup

``attempt_counts``: per organization, UTC hour, channel, type and direction,
how many attempts (communication logs of live messages) were created, sent,
delivered, opened, clicked, read, bounced, failed and answered. Kept exact by
triggers created here for both dialects (design in
``mensajero/models/attempt_count.py``), backfilled from the existing rows
before the triggers exist, in the same transaction.

Revision ID: f2a3b4c5d6e7
Revises: e1f2a3b4c5d6
Create Date: 2026-11-22 14:30:00.000000+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mensajero.models.base

# revision identifiers, used by Alembic.
revision: str = "f2a3b4c5d6e7"
down_revision: str | Sequence[str] | None = "e1f2a3b4c5d6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTERS = (
    "total",
    "sent",
    "delivered",
    "opened",
    "clicked",
    "read",
    "bounced",
    "failed",
    "responded",
)
KEY = ("organization_id", "bucket", "channel", "communication_type", "direction")
COLUMNS = ", ".join((*KEY, *COUNTERS))


def upgrade() -> None:
    op.create_table(
        "attempt_counts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("bucket", mensajero.models.base.UTCDateTime(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("communication_type", sa.String(length=32), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in COUNTERS),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attempt_counts")),
    )
    op.create_index(
        op.f("ix_attempt_counts_organization_id_bucket"),
        "attempt_counts",
        ["organization_id", "bucket"],
        unique=False,
    )
    if op.get_context().dialect.name == "postgresql":
        _create_postgresql_triggers()
    else:
        _create_sqlite_triggers()


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        for table, name in PG_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS attempt_counts_{name} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS attempt_counts_after_{name}()")
    else:
        for name in ("insert", "update", "delete", "message_deleted"):
            op.execute(f"DROP TRIGGER IF EXISTS attempt_counts_{name}")
    op.drop_index(op.f("ix_attempt_counts_organization_id_bucket"), table_name="attempt_counts")
    op.drop_table("attempt_counts")


def _flags(row: str) -> list[str]:
    """The counters of one attempt, 0 or 1 each (the same rules as AttemptCounts)."""

    def flag(condition: str) -> str:
        return f"CASE WHEN {condition} THEN 1 ELSE 0 END"

    return list(
        (
            "1",
            flag(f"{row}.status NOT IN ('SCHEDULED', 'QUEUED', 'SENDING', 'CANCELED')"),
            flag(
                f"{row}.delivered_at IS NOT NULL"
                f" OR {row}.status IN ('DELIVERED', 'READ', 'RECEIVED')"
            ),
            flag(f"{row}.opened_at IS NOT NULL"),
            flag(f"{row}.clicked_at IS NOT NULL"),
            flag(f"{row}.read_at IS NOT NULL OR {row}.status = 'READ'"),
            flag(f"{row}.status = 'BOUNCED'"),
            flag(f"{row}.status IN ('FAILED', 'UNDELIVERED', 'CANCELED')"),
            flag(f"{row}.response_received_at IS NOT NULL"),
        )
    )


def _live(row: str) -> str:
    return (
        "NOT EXISTS (SELECT 1 FROM messages AS m"
        f" WHERE m.id = {row}.message_id AND m.deleted_at IS NOT NULL)"
    )


SUMS = ", ".join(f"sum({name})" for name in COUNTERS)
NONZERO = " OR ".join(f"sum({name}) <> 0" for name in COUNTERS)
FLAG_NAMES = ", ".join(COUNTERS)

# --- PostgreSQL ---------------------------------------------------------------------------

PG_TRIGGERS = (
    ("communication_logs", "insert"),
    ("communication_logs", "update"),
    ("communication_logs", "delete"),
    ("communication_logs", "truncate"),
    ("messages", "message_update"),
)


def _pg_rows(source: str, sign: int) -> str:
    flags = _signed_flags(str(sign))
    return (
        f"SELECT r.organization_id, date_trunc('hour', r.created_at, 'UTC') AS bucket,"
        f" r.channel, r.communication_type, r.direction, {flags}"
        f" FROM {source} AS r WHERE {_live('r')}"
    )


def _pg_insert(rows: str) -> str:
    return (
        f"INSERT INTO attempt_counts ({COLUMNS})"
        f" SELECT organization_id, bucket, channel, communication_type, direction, {SUMS}"
        f" FROM ({rows}) AS changes GROUP BY 1, 2, 3, 4, 5 HAVING {NONZERO}"
    )


def _signed_flags(sign: str) -> str:
    return ", ".join(
        f"{sign} * ({flag}) AS {name}" for flag, name in zip(_flags("r"), COUNTERS, strict=True)
    )


def _create_postgresql_triggers() -> None:
    op.execute(_pg_insert(_pg_rows("communication_logs", 1)))
    bodies = {
        "insert": _pg_insert(_pg_rows("new_rows", 1)),
        # Updates that change no counter (lease renewals, provider ids) write nothing.
        "update": _pg_insert(f"{_pg_rows('new_rows', 1)} UNION ALL {_pg_rows('old_rows', -1)}"),
        "delete": _pg_insert(_pg_rows("old_rows", -1)),
        "truncate": "TRUNCATE attempt_counts",
        # A message soft-deleted (or restored) takes its attempts out (or back in).
        "message_update": _pg_insert(
            f"""SELECT r.organization_id, date_trunc('hour', r.created_at, 'UTC') AS bucket,
                       r.channel, r.communication_type, r.direction,
                       {_signed_flags("c.sign")}
                FROM communication_logs AS r
                JOIN (SELECT n.id, CASE WHEN n.deleted_at IS NULL THEN 1 ELSE -1 END AS sign
                      FROM new_rows AS n JOIN old_rows AS o ON o.id = n.id
                      WHERE (o.deleted_at IS NULL) <> (n.deleted_at IS NULL)) AS c
                  ON c.id = r.message_id"""
        ),
    }
    referencing = {
        "insert": "REFERENCING NEW TABLE AS new_rows",
        "update": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
        "delete": "REFERENCING OLD TABLE AS old_rows",
        "truncate": "",
        "message_update": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
    }
    for table, name in PG_TRIGGERS:
        event = "update" if name == "message_update" else name
        op.execute(
            f"""
            CREATE FUNCTION attempt_counts_after_{name}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                {bodies[name]};
                RETURN NULL;
            END $$
            """
        )
        op.execute(
            f"CREATE TRIGGER attempt_counts_{name} AFTER {event.upper()} ON {table}"
            f" {referencing[name]} FOR EACH STATEMENT"
            f" EXECUTE FUNCTION attempt_counts_after_{name}()"
        )
        # Bulk loads with session_replication_role = replica still count.
        op.execute(f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER attempt_counts_{name}")


# --- SQLite -------------------------------------------------------------------------------


# SQLite stores UTCDateTime as naive "YYYY-MM-DD HH:MM:SS.ffffff" text.
def _sqlite_bucket(row: str) -> str:
    return f"substr({row}.created_at, 1, 13) || ':00:00.000000'"


def _sqlite_key_match(row: str) -> str:
    return (
        f"organization_id = {row}.organization_id AND bucket = {_sqlite_bucket(row)}"
        f" AND channel = {row}.channel AND communication_type = {row}.communication_type"
        f" AND direction = {row}.direction"
    )


def _sqlite_add(row: str, sign: int) -> str:
    """Add the row's counters (times ``sign``) to its key's row, creating it if needed."""
    flags = _flags(row)
    assignments = ", ".join(
        f"{name} = {name} + ({sign}) * ({flag})" for name, flag in zip(COUNTERS, flags, strict=True)
    )
    values = ", ".join(f"({sign}) * ({flag})" for flag in flags)
    condition = _live(row)
    return f"""
            UPDATE attempt_counts SET {assignments}
            WHERE {condition} AND id = (SELECT min(id) FROM attempt_counts
                                        WHERE {_sqlite_key_match(row)});
            INSERT INTO attempt_counts ({COLUMNS})
            SELECT {row}.organization_id, {_sqlite_bucket(row)}, {row}.channel,
                   {row}.communication_type, {row}.direction, {values}
            WHERE {condition} AND NOT EXISTS (SELECT 1 FROM attempt_counts
                                              WHERE {_sqlite_key_match(row)});"""


def _create_sqlite_triggers() -> None:
    flags = _flags("r")
    op.execute(
        f"""
        INSERT INTO attempt_counts ({COLUMNS})
        SELECT r.organization_id, {_sqlite_bucket("r")}, r.channel, r.communication_type,
               r.direction, {", ".join(f"sum({flag})" for flag in flags)}
        FROM communication_logs AS r WHERE {_live("r")}
        GROUP BY 1, 2, 3, 4, 5
        """
    )
    op.execute(
        f"""
        CREATE TRIGGER attempt_counts_insert AFTER INSERT ON communication_logs
        BEGIN {_sqlite_add("NEW", 1)}
        END
        """
    )
    op.execute(
        f"""
        CREATE TRIGGER attempt_counts_update AFTER UPDATE OF
            organization_id, created_at, channel, communication_type, direction, status,
            delivered_at, opened_at, clicked_at, read_at, response_received_at, message_id
        ON communication_logs
        BEGIN {_sqlite_add("OLD", -1)} {_sqlite_add("NEW", 1)}
        END
        """
    )
    op.execute(
        f"""
        CREATE TRIGGER attempt_counts_delete AFTER DELETE ON communication_logs
        BEGIN {_sqlite_add("OLD", -1)}
        END
        """
    )
    # A message soft-deleted (or restored): one delta row per key of its attempts.
    sign = "(CASE WHEN NEW.deleted_at IS NULL THEN 1 ELSE -1 END)"
    op.execute(
        f"""
        CREATE TRIGGER attempt_counts_message_deleted AFTER UPDATE OF deleted_at ON messages
        WHEN (OLD.deleted_at IS NULL) <> (NEW.deleted_at IS NULL)
        BEGIN
            INSERT INTO attempt_counts ({COLUMNS})
            SELECT r.organization_id, {_sqlite_bucket("r")}, r.channel, r.communication_type,
                   r.direction, {", ".join(f"{sign} * sum({flag})" for flag in flags)}
            FROM communication_logs AS r WHERE r.message_id = NEW.id
            GROUP BY 1, 2, 3, 4, 5;
        END
        """
    )
