"""attempt counts per local day

``attempt_counts_daily``: the counters of ``attempt_counts`` per calendar day
of the organization's time zone. PostgreSQL only maintains it (statement-level
triggers on ``communication_logs`` and ``messages`` like the hourly rollup's,
reading ``organizations.timezone`` once per organization and statement; an
unknown zone counts as UTC, as the services do); a change of an
organization's ``timezone`` rebuilds its rows. Backfilled here. On SQLite the
table exists (the schemas match) and stays empty: reports read the hourly
rollup there.

Revision ID: a7b8c9d0e1f2
Revises: f2a3b4c5d6e7
Create Date: 2026-11-22 15:00:00.000000+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "a7b8c9d0e1f2"
down_revision: str | Sequence[str] | None = "f2a3b4c5d6e7"
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
KEY = ("organization_id", "day", "channel", "communication_type", "direction")
COLUMNS = ", ".join((*KEY, *COUNTERS))
SUMS = ", ".join(f"sum({name})" for name in COUNTERS)
NONZERO = " OR ".join(f"sum({name}) <> 0" for name in COUNTERS)
TRIGGERS = (
    ("communication_logs", "insert", "insert"),
    ("communication_logs", "update", "update"),
    ("communication_logs", "delete", "delete"),
    ("communication_logs", "truncate", "truncate"),
    ("messages", "message_update", "update"),
    ("organizations", "timezone_update", "update"),
)


def upgrade() -> None:
    op.create_table(
        "attempt_counts_daily",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("communication_type", sa.String(length=32), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in COUNTERS),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attempt_counts_daily")),
    )
    op.create_index(
        op.f("ix_attempt_counts_daily_organization_id_day"),
        "attempt_counts_daily",
        ["organization_id", "day"],
        unique=False,
    )
    if op.get_context().dialect.name == "postgresql":
        _create_postgresql_triggers()


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        for table, name, _ in TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS attempt_counts_daily_{name} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS attempt_counts_daily_after_{name}()")
        op.execute("DROP FUNCTION IF EXISTS attempt_counts_zone(text)")
    op.drop_index(
        op.f("ix_attempt_counts_daily_organization_id_day"), table_name="attempt_counts_daily"
    )
    op.drop_table("attempt_counts_daily")


def _flags() -> list[str]:
    """The counters of one attempt ``r``, 0 or 1 each (the rules of AttemptCounts)."""

    def flag(condition: str) -> str:
        return f"CASE WHEN {condition} THEN 1 ELSE 0 END"

    return [
        "1",
        flag("r.status NOT IN ('SCHEDULED', 'QUEUED', 'SENDING', 'CANCELED')"),
        flag("r.delivered_at IS NOT NULL OR r.status IN ('DELIVERED', 'READ', 'RECEIVED')"),
        flag("r.opened_at IS NOT NULL"),
        flag("r.clicked_at IS NOT NULL"),
        flag("r.read_at IS NOT NULL OR r.status = 'READ'"),
        flag("r.status = 'BOUNCED'"),
        flag("r.status IN ('FAILED', 'UNDELIVERED', 'CANCELED')"),
        flag("r.response_received_at IS NOT NULL"),
    ]


LIVE = (
    "NOT EXISTS (SELECT 1 FROM messages AS m"
    " WHERE m.id = r.message_id AND m.deleted_at IS NOT NULL)"
)


def _rows(
    source: str, sign: str, *, extra_join: str = "", live: bool = True, orgs: str | None = None
) -> str:
    """Signed counters of the attempts in ``source`` keyed by their organization's local day.

    The zone is looked up once per organization of the statement."""
    flags = ", ".join(
        f"{sign} * ({flag}) AS {name}" for flag, name in zip(_flags(), COUNTERS, strict=True)
    )
    return f"""
        SELECT r.organization_id, (r.created_at AT TIME ZONE z.tz)::date AS day,
               r.channel, r.communication_type, r.direction, {flags}
        FROM {source} AS r
        JOIN (SELECT o.id, attempt_counts_zone(o.timezone) AS tz FROM organizations AS o
              WHERE o.id IN ({orgs or f"SELECT DISTINCT organization_id FROM {source}"})) AS z
          ON z.id = r.organization_id
        {extra_join}
        WHERE {LIVE if live else "TRUE"}"""


def _insert(rows: str) -> str:
    return (
        f"INSERT INTO attempt_counts_daily ({COLUMNS})"
        f" SELECT organization_id, day, channel, communication_type, direction, {SUMS}"
        f" FROM ({rows}) AS changes GROUP BY 1, 2, 3, 4, 5 HAVING {NONZERO}"
    )


def _create_postgresql_triggers() -> None:
    # An unknown zone counts as UTC (as the services read it) instead of failing the write.
    op.execute(
        """
        CREATE FUNCTION attempt_counts_zone(zone text) RETURNS text LANGUAGE plpgsql STABLE AS $$
        BEGIN
            PERFORM now() AT TIME ZONE zone;
            RETURN zone;
        EXCEPTION WHEN others THEN
            RETURN 'UTC';
        END $$
        """
    )
    op.execute(_insert(_rows("communication_logs", "1")))
    changed_messages = """
        JOIN (SELECT n.id, CASE WHEN n.deleted_at IS NULL THEN 1 ELSE -1 END AS sign
              FROM new_rows AS n JOIN old_rows AS o ON o.id = n.id
              WHERE (o.deleted_at IS NULL) <> (n.deleted_at IS NULL)) AS c
          ON c.id = r.message_id"""
    bodies = {
        "insert": _insert(_rows("new_rows", "1")),
        "update": _insert(f"{_rows('new_rows', '1')} UNION ALL {_rows('old_rows', '-1')}"),
        "delete": _insert(_rows("old_rows", "-1")),
        "truncate": "TRUNCATE attempt_counts_daily",
        # A message soft-deleted (or restored) takes its attempts out (or back in).
        "message_update": _insert(
            _rows(
                "communication_logs",
                "c.sign",
                extra_join=changed_messages,
                live=False,
                orgs="SELECT organization_id FROM new_rows",
            )
        ),
        # Another time zone: the organization's days are counted again.
        "timezone_update": f"""
            DELETE FROM attempt_counts_daily WHERE organization_id IN (
                SELECT n.id FROM new_rows AS n JOIN old_rows AS o ON o.id = n.id
                WHERE n.timezone IS DISTINCT FROM o.timezone);
            {
            _insert(
                _rows("communication_logs", "1")
                + " AND r.organization_id IN (SELECT n.id FROM new_rows AS n"
                " JOIN old_rows AS o ON o.id = n.id"
                " WHERE n.timezone IS DISTINCT FROM o.timezone)"
            )
        }""",
    }
    for table, name, event in TRIGGERS:
        referencing = {
            "insert": "REFERENCING NEW TABLE AS new_rows",
            "update": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
            "delete": "REFERENCING OLD TABLE AS old_rows",
            "truncate": "",
        }[event]
        op.execute(
            f"""
            CREATE FUNCTION attempt_counts_daily_after_{name}() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                {bodies[name]};
                RETURN NULL;
            END $$
            """
        )
        op.execute(
            f"CREATE TRIGGER attempt_counts_daily_{name} AFTER {event.upper()} ON {table}"
            f" {referencing} FOR EACH STATEMENT"
            f" EXECUTE FUNCTION attempt_counts_daily_after_{name}()"
        )
        # Bulk loads with session_replication_role = replica still count.
        op.execute(f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER attempt_counts_daily_{name}")
