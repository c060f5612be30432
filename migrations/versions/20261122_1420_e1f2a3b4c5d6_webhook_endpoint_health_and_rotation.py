"""webhook endpoint health and secret rotation

``webhook_endpoints``: ``failing_since`` (start of the current run of failed
deliveries) and ``disabled_at`` for disabling an endpoint after sustained
failure; ``previous_secret``/``previous_secret_expires_at`` so a rotated
secret keeps signing (alongside the new one) for a grace period.
``webhook_deliveries``: a partial index of pending deliveries by their next
attempt, for the reconciler that re-enqueues deliveries whose job was lost,
and ``schedule_start`` (the attempt count when the retry schedule began: a
replay gets the whole schedule again).

Revision ID: e1f2a3b4c5d6
Revises: d7e8f9a0b1c2
Create Date: 2026-11-22 14:20:00.000000+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mensajero.models.base

# revision identifiers, used by Alembic.
revision: str = "e1f2a3b4c5d6"
down_revision: str | Sequence[str] | None = "d7e8f9a0b1c2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch_op:
        batch_op.add_column(
            sa.Column("failing_since", mensajero.models.base.UTCDateTime(), nullable=True)
        )
        batch_op.add_column(
            sa.Column("disabled_at", mensajero.models.base.UTCDateTime(), nullable=True)
        )
        batch_op.add_column(sa.Column("previous_secret", sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column(
                "previous_secret_expires_at", mensajero.models.base.UTCDateTime(), nullable=True
            )
        )
    with op.batch_alter_table("webhook_deliveries") as batch_op:
        batch_op.add_column(
            sa.Column("schedule_start", sa.Integer(), server_default="0", nullable=False)
        )
    with op.batch_alter_table("webhook_deliveries") as batch_op:
        batch_op.alter_column("schedule_start", server_default=None)
    op.create_index(
        "ix_webhook_deliveries_pending_next_attempt_at",
        "webhook_deliveries",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_pending_next_attempt_at", table_name="webhook_deliveries")
    with op.batch_alter_table("webhook_deliveries") as batch_op:
        batch_op.drop_column("schedule_start")
    with op.batch_alter_table("webhook_endpoints") as batch_op:
        batch_op.drop_column("previous_secret_expires_at")
        batch_op.drop_column("previous_secret")
        batch_op.drop_column("disabled_at")
        batch_op.drop_column("failing_since")
