"""tag names unique ignoring case

Tag names are unique per organization ignoring case. The service checked it,
but two concurrent requests ("VIP" and "vip") could both pass the check; the
case-sensitive unique constraint let both in. This unique index on
``lower(name)`` settles the race in the database, on both backends.

Revision ID: c9d0e1f2a3b4
Revises: 10876419e5d1
Create Date: 2026-11-22 16:40:00.000000+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "c9d0e1f2a3b4"
down_revision: str | Sequence[str] | None = "10876419e5d1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "uq_tags_organization_id_lower_name"


def upgrade() -> None:
    op.create_index(INDEX, "tags", ["organization_id", sa.text("lower(name)")], unique=True)


def downgrade() -> None:
    op.drop_index(INDEX, table_name="tags")
