"""communication log recipient index

An inbound reply (WhatsApp, SMS) arrives on numbers shared by every
organization; the organization that most recently wrote to the sender owns
it. This index answers "newest attempt to this recipient" without a scan.

Revision ID: c3f1d2e4b5a6
Revises: a244c9e1cc24
Create Date: 2026-11-22 14:00:00.000000+00:00

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "c3f1d2e4b5a6"
down_revision: str | Sequence[str] | None = "a244c9e1cc24"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_communication_logs_recipient_created_at",
        "communication_logs",
        ["recipient", "created_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_communication_logs_recipient_created_at", table_name="communication_logs")
