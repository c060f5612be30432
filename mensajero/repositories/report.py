"""SQL of the communication reports: attempt counts grouped by hour, channel and type."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, or_

from mensajero.models import CommunicationLog, Direction, MessageStatus
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
        """Counts per (hour,) channel and type; one statement, one row per group."""
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


def _as_utc(value: Any) -> datetime:
    if isinstance(value, str):  # SQLite's strftime
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    if value.tzinfo is None:  # PostgreSQL's timezone('UTC', timestamptz) is a naive UTC time
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
