"""communication log cost

Each attempt keeps the credits debited for it, so that a refund gives back
exactly that attempt's cost (a resend or a fallback costs its own channel's
price, which can differ from the first attempt's).

Existing rows get 0 through the server default, which stays (harmless, and
on SQLite dropping it would mean rebuilding the table).

Revision ID: 5c0d7e2a9b41
Revises: 8de0edc82529
Create Date: 2026-11-22 13:30:00.000000+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "5c0d7e2a9b41"
down_revision: str | Sequence[str] | None = "8de0edc82529"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("communication_logs") as batch_op:
        batch_op.add_column(sa.Column("cost", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("communication_logs") as batch_op:
        batch_op.drop_column("cost")
