"""Rows with what the legacy APIs show next to them: a page in a few queries, never one per row.

The REST shim renders a message with its contact and campaign (sendme123) and
an attempt with its client, its message's content and metadata (Coordinalo).
These functions read a page through :mod:`mensajero.services.message` (the
filters and pagination GraphQL uses too) and then load the related rows of
the whole page at once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from mensajero.models import Client, CommunicationLog, LogEvent, Message
from mensajero.services import client_queries
from mensajero.services import message as message_service
from mensajero.services import report as report_service
from mensajero.services.errors import InvalidInput, NotFound
from mensajero.services.listing import LogFilter, LogSummary, OffsetPage, TimeRange


@dataclass(frozen=True, slots=True)
class LogView:
    log: CommunicationLog
    message: Message
    client: Client | None


@dataclass(frozen=True, slots=True)
class LogDetail:
    log: CommunicationLog
    message: Message
    client: Client | None
    timeline: list[LogEvent]


def _ids(values: list[uuid.UUID | None]) -> list[uuid.UUID]:
    return list(dict.fromkeys(value for value in values if value is not None))


def _bound(value: date | datetime | None, zone: ZoneInfo, *, end: bool) -> datetime | None:
    """A day in ``zone`` or an instant, as the limit of a half-open range (``end`` inclusive)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value + timedelta(microseconds=1) if end else value
    day = value + timedelta(days=1) if end else value
    return datetime.combine(day, time(), zone).astimezone(UTC)


async def list_log_views_by_offset(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    log_filter: LogFilter,
    page: OffsetPage,
    start: date | datetime | None = None,
    end: date | datetime | None = None,
) -> tuple[list[LogView], LogSummary]:
    """A ``page``/``limit`` page of attempts with messages and clients, and the set's summary.

    ``start``/``end`` (Coordinalo's ``from``/``to``) are both inclusive: instants,
    or calendar days of the organization's time zone; they narrow ``log_filter.created``.
    """
    if start is not None or end is not None:
        zone = await report_service.organization_zone(session, organization_id)
        lower, upper = _bound(start, zone, end=False), _bound(end, zone, end=True)
        if lower is not None and upper is not None and lower >= upper:
            raise InvalidInput("'from' must not be after 'to'", field="from")
        created = log_filter.created or TimeRange()
        log_filter = replace(
            log_filter,
            created=TimeRange(
                max(filter(None, (created.start, lower)), default=None),
                min(filter(None, (created.end, upper)), default=None),
            ),
        )
    logs, summary = await message_service.list_logs_by_offset(
        session, organization_id=organization_id, log_filter=log_filter, page=page
    )
    messages = await message_service.get_messages(
        session, organization_id=organization_id, message_ids=_ids([log.message_id for log in logs])
    )
    clients = await client_queries.get_clients(
        session, organization_id=organization_id, client_ids=_ids([log.client_id for log in logs])
    )
    views = [
        LogView(
            log, messages[log.message_id], clients.get(log.client_id) if log.client_id else None
        )
        for log in logs
        if log.message_id in messages
    ]
    return views, summary


async def get_log_detail(
    session: AsyncSession, *, organization_id: uuid.UUID, log_id: uuid.UUID
) -> LogDetail:
    """One attempt with its message, client and timeline; NotFound if not the caller's."""
    logs = await message_service.get_logs(
        session, organization_id=organization_id, log_ids=[log_id]
    )
    log = logs.get(log_id)
    if log is None:
        raise NotFound("communication log not found")
    messages = await message_service.get_messages(
        session, organization_id=organization_id, message_ids=[log.message_id]
    )
    message = messages.get(log.message_id)
    if message is None or message.deleted_at is not None:
        raise NotFound("communication log not found")
    client = None
    if log.client_id is not None:
        clients = await client_queries.get_clients(
            session, organization_id=organization_id, client_ids=[log.client_id]
        )
        client = clients.get(log.client_id)
    timelines = await message_service.timelines_for_logs(
        session, organization_id=organization_id, log_ids=[log.id]
    )
    return LogDetail(log, message, client, timelines.get(log.id, []))
