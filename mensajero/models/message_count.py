"""The message-count rollup: how many live messages an organization has per hour and kind.

Exact counts over large filtered sets (``totalCount`` of ``messages(filter:
{status: DELIVERED})`` at a million rows, the reports' totals) would read
hundreds of thousands of index entries per request. Instead, database triggers
on ``messages`` keep this table exact on every write path (the ORM, bulk
``INSERT ... SELECT``/COPY, status updates, soft deletes, hard deletes), and
counts are sums over it. A soft-deleted message (``deleted_at`` set) is not
counted.

Rows are *deltas*: a key may have many rows, and the count of a key is
``SUM(count)``. On PostgreSQL each write statement appends one aggregated row
per key it touched (statement-level triggers over transition tables), so
concurrent workers updating statuses never wait on a shared counter row (an
upsert would serialize them on hot keys and can deadlock when two
transactions touch the same keys in different orders). Compaction
(:func:`mensajero.repositories.message_count.compact_message_counts`) folds
the deltas of each key back into one row. SQLite has one writer at a time, so
its row-level triggers update a single row per key in place.

``message_count_totals`` holds the same counts without the hour: a total
(``messages(filter: {status: DELIVERED}) { totalCount }``) sums a few dozen
rows there instead of one row per hour and kind here (tens of thousands over
three months). The same triggers maintain both, the same way.

There is deliberately no foreign key to ``organizations``: deleting an
organization cascades to its messages, whose delete trigger then writes
negative deltas for an organization that no longer exists.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer
from sqlmodel import Field, SQLModel

from mensajero.models.base import UTCDateTime, enum_column

# SQLite only auto-increments an ``INTEGER PRIMARY KEY``.
_BigIntegerKey = BigInteger().with_variant(Integer(), "sqlite")


class MessageCount(SQLModel, table=True):
    __tablename__ = "message_counts"
    __table_args__ = (
        # Counts by status (the common totalCount) and everything by time range.
        Index(None, "organization_id", "status", "bucket"),
        Index(None, "organization_id", "bucket"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=_BigIntegerKey)
    organization_id: uuid.UUID
    # The UTC hour the messages were created in.
    bucket: datetime = Field(sa_type=UTCDateTime)
    channel: str = Field(sa_type=enum_column(16))
    communication_type: str = Field(sa_type=enum_column(32))
    status: str = Field(sa_type=enum_column(16))
    direction: str = Field(sa_type=enum_column(8))
    count: int = Field(sa_type=BigInteger)


class MessageCountTotal(SQLModel, table=True):
    """All-time counts per kind: ``message_counts`` summed over every hour."""

    __tablename__ = "message_count_totals"
    __table_args__ = (Index(None, "organization_id", "status"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=_BigIntegerKey)
    organization_id: uuid.UUID
    channel: str = Field(sa_type=enum_column(16))
    communication_type: str = Field(sa_type=enum_column(32))
    status: str = Field(sa_type=enum_column(16))
    direction: str = Field(sa_type=enum_column(8))
    count: int = Field(sa_type=BigInteger)
