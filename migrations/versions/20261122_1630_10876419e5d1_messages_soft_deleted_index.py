"""messages soft-deleted index

Every attempt list and summary keeps out the attempts of soft-deleted
messages (``NOT EXISTS (... messages.deleted_at IS NOT NULL)``). Without an
index PostgreSQL answers that by reading the whole messages table (190 ms at
a million messages) for every Coordinalo log summary. This partial index
holds only the soft-deleted messages, usually none or a few, so the check
reads a handful of index entries.

Revision ID: 10876419e5d1
Revises: b8c9d0e1f2a3
Create Date: 2026-11-22 16:30:00.000000+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "10876419e5d1"
down_revision: str | Sequence[str] | None = "b8c9d0e1f2a3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_messages_soft_deleted"


def upgrade() -> None:
    op.create_index(
        INDEX,
        "messages",
        ["id"],
        unique=False,
        postgresql_where=sa.text("deleted_at IS NOT NULL"),
        sqlite_where=sa.text("deleted_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index(INDEX, table_name="messages")
