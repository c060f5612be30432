"""log_events: one index on log_id instead of three

Every send writes two timeline rows per recipient (``created`` and
``queued``), and every dispatch and provider callback more: each row paid
four index entries (primary key, ``(log_id, occurred_at)``,
``(organization_id, occurred_at)``, and the partial unique
``(log_id, dedup_key)`` for provider events).

- ``(organization_id, occurred_at)``: no query reads timelines by
  organization or time (the timeline is read per attempt). Dropped. (Deleting
  an organization now finds its rows here by scanning; that is rare and its
  messages' cascade reaches the same rows through their attempts anyway.)
- ``(log_id, occurred_at)`` and the partial unique ``(log_id, dedup_key)``
  become ONE unique ``(log_id, dedup_key)`` over every row: NULL dedup keys
  (timeline rows nobody deduplicates) never conflict, so the uniqueness rule
  for provider events is unchanged, and the timeline loader
  (``LogEventRepository.for_logs``: ``WHERE log_id IN (...)``), the
  ``ON DELETE CASCADE`` from ``communication_logs`` and the
  ``ON CONFLICT DO NOTHING`` of the event writers all use it. The loader's
  ``ORDER BY occurred_at`` now sorts an attempt's few events after the index
  lookup, as it already did when it loaded several attempts at once.

A timeline row now costs two index entries instead of three (four for a
provider event).

Revision ID: d1e2f3a4b5c6
Revises: c9d0e1f2a3b4
Create Date: 2026-11-22 17:00:00.000000+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "d1e2f3a4b5c6"
down_revision: str | Sequence[str] | None = "c9d0e1f2a3b4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNIQUE = "ix_log_events_log_id_dedup_key"
PARTIAL = sa.text("dedup_key IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_log_events_organization_id_occurred_at", table_name="log_events")
    op.drop_index(UNIQUE, table_name="log_events")
    op.create_index(UNIQUE, "log_events", ["log_id", "dedup_key"], unique=True)
    op.drop_index("ix_log_events_log_id_occurred_at", table_name="log_events")


def downgrade() -> None:
    op.create_index(
        "ix_log_events_log_id_occurred_at", "log_events", ["log_id", "occurred_at"], unique=False
    )
    op.drop_index(UNIQUE, table_name="log_events")
    op.create_index(
        UNIQUE,
        "log_events",
        ["log_id", "dedup_key"],
        unique=True,
        postgresql_where=PARTIAL,
        sqlite_where=PARTIAL,
    )
    op.create_index(
        "ix_log_events_organization_id_occurred_at",
        "log_events",
        ["organization_id", "occurred_at"],
        unique=False,
    )
