"""timeline rows: organization through their attempt, not a foreign key of their own

``log_events.organization_id`` is a copy of its attempt's organization, kept
on the row so that reads filter without a join. Its own foreign key to
``organizations`` cost a lookup and a row lock per inserted row (a send to a
hundred thousand clients writes 200,000 timeline rows: about 7% of its
database time) and guarded nothing the parent chain does not: every
timeline row references its attempt, every attempt its message, every
message its organization, each with ``ON DELETE CASCADE``, so deleting an
organization still removes its timelines (through their attempts). An
existing but wrong organization id was never caught by this key either: the
writers copy it from the attempt.

(``communication_logs`` keeps its own key to ``organizations``: deleting an
organization must remove its attempts in the same step as its clients, which
the attempts reference without a cascade.)

Revision ID: e2f3a4b5c6d7
Revises: d1e2f3a4b5c6
Create Date: 2026-11-22 17:10:00.000000+00:00

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "e2f3a4b5c6d7"
down_revision: str | Sequence[str] | None = "d1e2f3a4b5c6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = "fk_log_events_organization_id_organizations"


def upgrade() -> None:
    # A rebuild on SQLite: log_events has no triggers and none names it.
    with op.batch_alter_table("log_events") as batch_op:
        batch_op.drop_constraint(KEY, type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("log_events") as batch_op:
        batch_op.create_foreign_key(
            KEY, "organizations", ["organization_id"], ["id"], ondelete="CASCADE"
        )
