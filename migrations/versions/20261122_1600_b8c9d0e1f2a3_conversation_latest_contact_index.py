"""conversation latest contact index

The customers report orders clients by their latest contact (the newest
``last_message_at`` of their conversations). Walking this index newest first
finds a page's clients in a few rows instead of aggregating every
conversation of the organization per page.

Revision ID: b8c9d0e1f2a3
Revises: a7b8c9d0e1f2
Create Date: 2026-11-22 16:00:00.000000+00:00

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "b8c9d0e1f2a3"
down_revision: str | Sequence[str] | None = "a7b8c9d0e1f2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_conversations_organization_id_last_message_at_client_id"


def upgrade() -> None:
    op.create_index(
        INDEX, "conversations", ["organization_id", "last_message_at", "client_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(INDEX, table_name="conversations")
