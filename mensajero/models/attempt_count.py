"""The attempt-count rollup: what happened to an organization's attempts, per hour and kind.

Communication stats (Coordinalo's ``/communication/stats``, GraphQL's
``communicationStats``, the mosend reports) count *attempts* (communication
logs) by what they reached: sent, delivered, opened, clicked, read, bounced,
failed, answered. ``message_counts`` cannot answer that: it counts messages
by their current status, and opened/clicked/answered are engagement
timestamps, not statuses. So database triggers on ``communication_logs`` keep
one set of counters per (organization, UTC hour of the attempt's creation,
channel, type, direction), on every write path (ORM, bulk inserts, the state
machine's updates, deletes), and a trigger on ``messages`` takes a
soft-deleted message's attempts out (and puts them back if it is restored).

Each counter means exactly what
:class:`mensajero.repositories.report.AttemptCounts` says ("reached
delivered": a READ attempt counts as delivered, a delivery time counts even
if a bounce came later).

As in ``message_counts`` (see :mod:`mensajero.models.message_count`), rows
are deltas summed on read: PostgreSQL appends one aggregated row per key per
statement (statement-level triggers over transition tables, no hot rows for
concurrent workers) and the arq cron ``stats.compact_message_counts`` folds
them; SQLite's row triggers update one row per key in place.

Known limit: hard-deleting a message that had been soft-deleted subtracts its
attempts a second time (nothing in the product hard-deletes messages except
deleting the organization).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, Index, Integer
from sqlmodel import Field, SQLModel

from mensajero.models.base import UTCDateTime, enum_column

_BigIntegerKey = BigInteger().with_variant(Integer(), "sqlite")

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


class AttemptCount(SQLModel, table=True):
    __tablename__ = "attempt_counts"
    __table_args__ = (Index(None, "organization_id", "bucket"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=_BigIntegerKey)
    organization_id: uuid.UUID
    # The UTC hour the attempts were created in.
    bucket: datetime = Field(sa_type=UTCDateTime)
    channel: str = Field(sa_type=enum_column(16))
    communication_type: str = Field(sa_type=enum_column(32))
    direction: str = Field(sa_type=enum_column(8))
    total: int = Field(default=0, sa_type=BigInteger)
    sent: int = Field(default=0, sa_type=BigInteger)
    delivered: int = Field(default=0, sa_type=BigInteger)
    opened: int = Field(default=0, sa_type=BigInteger)
    clicked: int = Field(default=0, sa_type=BigInteger)
    read: int = Field(default=0, sa_type=BigInteger)
    bounced: int = Field(default=0, sa_type=BigInteger)
    failed: int = Field(default=0, sa_type=BigInteger)
    # Attempts the recipient answered (a reply recorded on the attempt).
    responded: int = Field(default=0, sa_type=BigInteger)


class AttemptCountDaily(SQLModel, table=True):
    """The same counters per calendar day of the organization's time zone (PostgreSQL).

    Reports grouped by local day over months read a few dozen rows per day
    here instead of a few hundred hourly rows, and are exact for every zone
    (half-hour offsets and DST included). PostgreSQL triggers keep it next to
    ``attempt_counts`` (they read the organization's ``timezone``; changing it
    rebuilds that organization's rows). SQLite (the embedded mode) has no time
    zone database in SQL: there the table stays empty and reports read the
    hourly rollup.
    """

    __tablename__ = "attempt_counts_daily"
    __table_args__ = (Index(None, "organization_id", "day"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=_BigIntegerKey)
    organization_id: uuid.UUID
    day: date
    channel: str = Field(sa_type=enum_column(16))
    communication_type: str = Field(sa_type=enum_column(32))
    direction: str = Field(sa_type=enum_column(8))
    total: int = Field(default=0, sa_type=BigInteger)
    sent: int = Field(default=0, sa_type=BigInteger)
    delivered: int = Field(default=0, sa_type=BigInteger)
    opened: int = Field(default=0, sa_type=BigInteger)
    clicked: int = Field(default=0, sa_type=BigInteger)
    read: int = Field(default=0, sa_type=BigInteger)
    bounced: int = Field(default=0, sa_type=BigInteger)
    failed: int = Field(default=0, sa_type=BigInteger)
    responded: int = Field(default=0, sa_type=BigInteger)
