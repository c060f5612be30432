"""SQL of the communication reports: attempt counts grouped by hour, channel and type.

Counts over a period come from the ``attempt_counts`` rollup
(:mod:`mensajero.models.attempt_count`), a few rows per hour whatever the
volume; one client's counts are read from its attempts (an index range).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from mensajero.models import AttemptCount, CommunicationLog, Direction, MessageStatus
from mensajero.repositories.message import (
    DELIVERED_STATUSES,
    FAILED_STATUSES,
    CommunicationLogRepository,
)
from mensajero.services.listing import TimeRange

# Attempts still on their way to a provider (Coordinalo's "pending").
PENDING_STATUSES = (MessageStatus.SCHEDULED, MessageStatus.QUEUED, MessageStatus.SENDING)


@dataclass(slots=True)
class AttemptCounts:
    """Outbound attempts of one group, counted by what happened to them.

    ``sent``: handed to a provider (not pending, not canceled), whatever came
    after; ``delivered``: reached the recipient (DELIVERED, READ, RECEIVED or
    a delivery time); ``opened``/``clicked``/``read``: have those times (READ
    status counts as read); ``bounced``: status BOUNCED; ``failed``: FAILED,
    UNDELIVERED or CANCELED (Coordinalo's failed).
    """

    sent: int = 0
    delivered: int = 0
    opened: int = 0
    clicked: int = 0
    read: int = 0
    bounced: int = 0
    failed: int = 0
    total: int = 0
    # Attempts the recipient answered.
    responded: int = 0

    def add(self, other: AttemptCounts) -> None:
        for name in self.__slots__:  # type: ignore[attr-defined]
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass(frozen=True, slots=True)
class GroupedCounts:
    bucket: datetime | None  # the UTC hour, when grouped by hour
    channel: str
    communication_type: str
    counts: AttemptCounts


def _count_columns() -> list[ColumnElement[Any]]:
    log = CommunicationLog
    not_sent = (*PENDING_STATUSES, MessageStatus.CANCELED)
    return [
        func.count().filter(log.status.not_in(not_sent)),
        func.count().filter(or_(log.delivered_at.is_not(None), log.status.in_(DELIVERED_STATUSES))),
        func.count().filter(log.opened_at.is_not(None)),
        func.count().filter(log.clicked_at.is_not(None)),
        func.count().filter(or_(log.read_at.is_not(None), log.status == MessageStatus.READ)),
        func.count().filter(log.status == MessageStatus.BOUNCED),
        func.count().filter(log.status.in_(FAILED_STATUSES)),
        func.count(),
        func.count().filter(log.response_received_at.is_not(None)),
    ]


class ReportRepository(CommunicationLogRepository):
    """Aggregates over the live outbound attempts of one organization."""

    def _hour_bucket(self) -> ColumnElement[Any]:
        if self.session.get_bind().dialect.name == "postgresql":
            # Truncated in UTC whatever the session's TimeZone is.
            return func.date_trunc("hour", func.timezone("UTC", CommunicationLog.created_at))
        return func.strftime("%Y-%m-%d %H:00:00", CommunicationLog.created_at)

    async def grouped_counts(
        self,
        *,
        created: TimeRange | None = None,
        client_id: uuid.UUID | None = None,
        by_hour: bool = False,
    ) -> list[GroupedCounts]:
        """Counts per (hour,) channel and type; one statement, one row per group.

        Without a client, from the rollup: a range's bounds are taken to the
        hour (exact for bounds on whole hours, as the local midnights of every
        zone with a whole-hour offset are).
        """
        if client_id is None:
            return await self.rolled_up_counts(created=created, by_hour=by_hour)
        return await self.raw_grouped_counts(created=created, client_id=client_id, by_hour=by_hour)

    async def rolled_up_counts(
        self, *, created: TimeRange | None = None, by_hour: bool = False
    ) -> list[GroupedCounts]:
        rollup = AttemptCount
        keys: list[ColumnElement[Any]] = [rollup.channel, rollup.communication_type]
        if by_hour:
            keys.insert(0, rollup.bucket)
        statement = (
            select(*keys, *(func.sum(getattr(rollup, name)) for name in _ROLLUP_COUNTERS))
            .where(
                rollup.organization_id == self.organization_id,
                rollup.direction == Direction.OUTBOUND,
            )
            .group_by(*keys)
        )
        if created is not None and created.start is not None:
            statement = statement.where(rollup.bucket >= _hour_floor(created.start))
        if created is not None and created.end is not None:
            statement = statement.where(rollup.bucket < created.end)
        groups = []
        for row in (await self.session.execute(statement)).all():
            values = list(row)
            bucket = _as_utc(values.pop(0)) if by_hour else None
            channel, communication_type, *numbers = values
            counts = AttemptCounts(*(int(n or 0) for n in numbers))
            if counts.total:
                groups.append(GroupedCounts(bucket, channel, communication_type, counts))
        return groups

    async def raw_grouped_counts(
        self,
        *,
        created: TimeRange | None = None,
        client_id: uuid.UUID | None = None,
        by_hour: bool = False,
    ) -> list[GroupedCounts]:
        """The same counts read from the attempts themselves (one client's; benchmarks)."""
        log = CommunicationLog
        keys: list[ColumnElement[Any]] = [log.channel, log.communication_type]
        if by_hour:
            keys.insert(0, self._hour_bucket().label("bucket"))
        statement = self.live(*keys, *_count_columns()).where(log.direction == Direction.OUTBOUND)
        if client_id is not None:
            statement = statement.where(log.client_id == client_id)
        if created is not None and created.start is not None:
            statement = statement.where(log.created_at >= created.start)
        if created is not None and created.end is not None:
            statement = statement.where(log.created_at < created.end)
        statement = statement.group_by(*keys)
        groups = []
        for row in (await self.session.execute(statement)).all():
            values = list(row)
            bucket = _as_utc(values.pop(0)) if by_hour else None
            channel, communication_type, *numbers = values
            groups.append(
                GroupedCounts(
                    bucket, channel, communication_type, AttemptCounts(*(int(n) for n in numbers))
                )
            )
        return groups


# AttemptCounts' fields in order, as the rollup's columns.
_ROLLUP_COUNTERS = (
    "sent",
    "delivered",
    "opened",
    "clicked",
    "read",
    "bounced",
    "failed",
    "total",
    "responded",
)


def _hour_floor(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _as_utc(value: Any) -> datetime:
    if isinstance(value, str):  # SQLite's strftime
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    if value.tzinfo is None:  # PostgreSQL's timezone('UTC', timestamptz) is a naive UTC time
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


_COUNTERS_SQL = ", ".join(_ROLLUP_COUNTERS)
_ATTEMPT_KEY = "organization_id, bucket, channel, communication_type, direction"
_FOLD_ATTEMPT_COUNTS = f"""
WITH keys AS (
    SELECT {_ATTEMPT_KEY} FROM attempt_counts GROUP BY {_ATTEMPT_KEY}
    HAVING count(*) > 1 OR sum(total) = 0
),
folded AS (
    DELETE FROM attempt_counts AS m USING keys AS k
    WHERE {" AND ".join(f"m.{c} = k.{c}" for c in _ATTEMPT_KEY.split(", "))}
    RETURNING {", ".join(f"m.{c}" for c in (*_ATTEMPT_KEY.split(", "), *_ROLLUP_COUNTERS))}
),
inserted AS (
    INSERT INTO attempt_counts ({_ATTEMPT_KEY}, {_COUNTERS_SQL})
    SELECT {_ATTEMPT_KEY}, {", ".join(f"sum({c})" for c in _ROLLUP_COUNTERS)}
    FROM folded GROUP BY {_ATTEMPT_KEY}
    HAVING {" OR ".join(f"sum({c}) <> 0" for c in _ROLLUP_COUNTERS)}
    RETURNING 1
)
SELECT (SELECT count(*) FROM folded) - (SELECT count(*) FROM inserted)
"""


async def compact_attempt_counts(session: AsyncSession) -> int:
    """Fold each key's delta rows into one (PostgreSQL; SQLite keeps one row per key).

    Safe next to concurrent writers, like the message-count fold: the DELETE
    takes only rows that exist when it starts. Returns how many rows went away.
    """
    if session.get_bind().dialect.name != "postgresql":
        return 0
    return int((await session.execute(text(_FOLD_ATTEMPT_COUNTS))).scalar_one())
