"""Reading messages and their attempts: lists, counts and summaries for every door.

GraphQL connections and the REST shim's ``GET /api/messages`` and Coordinalo
log routes all come through here with the filters of
:mod:`mensajero.services.listing`, so they answer the same rows and totals.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.ext.asyncio import AsyncSession

from mensajero.models import Campaign, Client, CommunicationLog, LogEvent, Message
from mensajero.repositories.message import (
    CommunicationLogRepository,
    ListedMessage,
    ListingColumns,
    LogEventRepository,
    MessageCountRepository,
    MessageRepository,
    compact_message_counts,
)
from mensajero.repositories.organization import get_organization
from mensajero.repositories.report import AttemptCounts, ReportRepository, compact_attempt_counts
from mensajero.services.errors import InvalidInput
from mensajero.services.listing import (
    KeysetPage,
    LogFilter,
    LogSummary,
    MessageFilter,
    OffsetPage,
    Page,
    TimeRange,
    matches_nothing,
)

# Filters the rollup can answer; any other filter needs an exact COUNT.
_ROLLUP_FIELDS = {"statuses", "channels", "communication_types", "direction", "created"}


def _intersect(first: TimeRange | None, second: TimeRange | None) -> TimeRange | None:
    if first is None or second is None:
        return first or second
    starts = [value for value in (first.start, second.start) if value is not None]
    ends = [value for value in (first.end, second.end) if value is not None]
    return TimeRange(max(starts) if starts else None, min(ends) if ends else None)


async def _organization_zone(session: AsyncSession, organization_id: uuid.UUID) -> ZoneInfo:
    organization = await get_organization(session, organization_id)
    try:
        return ZoneInfo(organization.timezone if organization else "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


async def resolve_message_filter(
    session: AsyncSession, *, organization_id: uuid.UUID, message_filter: MessageFilter
) -> MessageFilter:
    """Turn the calendar days of ``start_date``/``end_date`` into a creation time range.

    The days are the organization's (a Bogotá clinic's "2026-01-31" ends at
    05:00 UTC on February 1st); ``end_date`` is inclusive.
    """
    f = message_filter
    if f.start_date is None and f.end_date is None:
        return f
    if f.start_date and f.end_date and f.start_date > f.end_date:
        raise InvalidInput("'startDate' must not be after 'endDate'", field="startDate")
    zone = await _organization_zone(session, organization_id)

    def midnight(day: object) -> datetime:
        return datetime.combine(day, time(), zone).astimezone(UTC)  # type: ignore[arg-type]

    days = TimeRange(
        midnight(f.start_date) if f.start_date else None,
        midnight(f.end_date + timedelta(days=1)) if f.end_date else None,
    )
    return replace(f, start_date=None, end_date=None, created=_intersect(f.created, days))


def _on_whole_hours(created: TimeRange | None) -> bool:
    """Whether a creation range starts and ends on whole hours (the rollups' buckets)."""
    bounds = [] if created is None else [created.start, created.end]
    return all(
        bound is None or (bound.minute, bound.second, bound.microsecond) == (0, 0, 0)
        for bound in bounds
    )


def _rollup_can_answer(f: MessageFilter) -> bool:
    for name in MessageFilter.__slots__:  # type: ignore[attr-defined]
        if name not in _ROLLUP_FIELDS and getattr(f, name) is not None:
            return False
    return _on_whole_hours(f.created)


async def list_messages(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    message_filter: MessageFilter,
    page: KeysetPage,
) -> Page[Message]:
    f = await resolve_message_filter(
        session, organization_id=organization_id, message_filter=message_filter
    )
    if matches_nothing(f.campaign_ids, f.client_ids):
        return Page([], has_next=False, has_previous=False)
    return await MessageRepository(session, organization_id).page(f, page)


async def list_messages_with_relations(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    message_filter: MessageFilter,
    page: KeysetPage,
    client: bool,
    campaign: bool,
) -> tuple[Page[Message], dict[uuid.UUID, Client], dict[uuid.UUID, Campaign]]:
    """:func:`list_messages` with the page's clients and/or campaigns, in one statement."""
    f = await resolve_message_filter(
        session, organization_id=organization_id, message_filter=message_filter
    )
    if matches_nothing(f.campaign_ids, f.client_ids):
        return Page([], has_next=False, has_previous=False), {}, {}
    return await MessageRepository(session, organization_id).page_with_relations(
        f, page, client=client, campaign=campaign
    )


async def list_message_rows(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    message_filter: MessageFilter,
    page: KeysetPage,
    columns: ListingColumns,
    with_total: bool,
) -> tuple[Page[Sequence[Any]], int | None]:
    """:func:`list_messages_with_relations` as plain rows of ``columns`` (client and campaign
    columns joined when asked), and, with ``with_total``, :func:`count_messages`'s total,
    in one statement whenever the page holds a row."""
    f = await resolve_message_filter(
        session, organization_id=organization_id, message_filter=message_filter
    )
    if matches_nothing(f.campaign_ids, f.client_ids):
        return Page([], has_next=False, has_previous=False), (0 if with_total else None)
    total = ("rollup" if _rollup_can_answer(f) else "exact") if with_total else None
    return await MessageRepository(session, organization_id).keyset_listing(
        f, page, columns, total=total
    )


async def count_messages(
    session: AsyncSession, *, organization_id: uuid.UUID, message_filter: MessageFilter
) -> int:
    """How many live messages match, from the rollup whenever the filter allows.

    The rollup answers filters on status, channel, type, direction and
    hour-aligned creation ranges (whole days in a whole-hour timezone are) in
    a few milliseconds at any size; other filters count the matching rows.
    """
    f = await resolve_message_filter(
        session, organization_id=organization_id, message_filter=message_filter
    )
    if matches_nothing(f.campaign_ids, f.client_ids):
        return 0
    if _rollup_can_answer(f):
        return await MessageCountRepository(session, organization_id).count(f)
    return await MessageRepository(session, organization_id).count(f)


async def list_messages_by_offset(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    message_filter: MessageFilter,
    page: OffsetPage,
) -> tuple[list[ListedMessage], int]:
    """A REST page (``page``/``limit``) of messages with their clients' and campaigns' names,
    and the exact total of matching messages (from the rollup whenever the filter allows),
    in one statement (see :meth:`MessageRepository.listed_offset_page_with_total`)."""
    f = await resolve_message_filter(
        session, organization_id=organization_id, message_filter=message_filter
    )
    if matches_nothing(f.campaign_ids, f.client_ids):
        return [], 0
    return await MessageRepository(session, organization_id).listed_offset_page_with_total(
        f, page, total_from_rollup=_rollup_can_answer(f)
    )


async def get_messages(
    session: AsyncSession, *, organization_id: uuid.UUID, message_ids: list[uuid.UUID]
) -> dict[uuid.UUID, Message]:
    return await MessageRepository(session, organization_id).get_many(message_ids)


async def message_pages_for_clients(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    client_ids: list[uuid.UUID],
    page: KeysetPage,
) -> dict[uuid.UUID, Page[Message]]:
    return await MessageRepository(session, organization_id).pages_for_clients(client_ids, page)


async def message_counts_for_clients(
    session: AsyncSession, *, organization_id: uuid.UUID, client_ids: list[uuid.UUID]
) -> dict[uuid.UUID, int]:
    return await MessageRepository(session, organization_id).count_for_clients(client_ids)


# --- communication logs ------------------------------------------------------


async def list_logs(
    session: AsyncSession, *, organization_id: uuid.UUID, log_filter: LogFilter, page: KeysetPage
) -> Page[CommunicationLog]:
    if matches_nothing(log_filter.client_ids, log_filter.campaign_ids, log_filter.message_ids):
        return Page([], has_next=False, has_previous=False)
    return await CommunicationLogRepository(session, organization_id).page(log_filter, page)


async def list_logs_by_offset(
    session: AsyncSession, *, organization_id: uuid.UUID, log_filter: LogFilter, page: OffsetPage
) -> tuple[list[CommunicationLog], LogSummary]:
    """A REST page of logs and the summary of the whole filtered set (its total included)."""
    summary = await summarize_logs(session, organization_id=organization_id, log_filter=log_filter)
    if summary.total == 0:
        return [], summary
    rows = await CommunicationLogRepository(session, organization_id).offset_page(log_filter, page)
    return rows, summary


async def count_logs(
    session: AsyncSession, *, organization_id: uuid.UUID, log_filter: LogFilter
) -> int:
    if matches_nothing(log_filter.client_ids, log_filter.campaign_ids, log_filter.message_ids):
        return 0
    return await CommunicationLogRepository(session, organization_id).count(log_filter)


async def summarize_logs(
    session: AsyncSession, *, organization_id: uuid.UUID, log_filter: LogFilter
) -> LogSummary:
    """Counts of the attempts matching ``log_filter``, from the attempt rollup when it can
    answer (a few thousand rows instead of every attempt of the organization)."""
    if matches_nothing(log_filter.client_ids, log_filter.campaign_ids, log_filter.message_ids):
        return LogSummary(0, 0, 0, 0, 0, 0)
    if _attempt_rollup_can_answer(log_filter):
        return await _rolled_up_log_summary(session, organization_id, log_filter)
    return await CommunicationLogRepository(session, organization_id).summary(log_filter)


def _attempt_rollup_can_answer(f: LogFilter) -> bool:
    """The rollup counts attempts per hour, channel, type and direction: nothing finer."""
    if any(ids is not None for ids in (f.client_ids, f.statuses, f.campaign_ids, f.message_ids)):
        return False
    return _on_whole_hours(f.created)


async def _rolled_up_log_summary(
    session: AsyncSession, organization_id: uuid.UUID, f: LogFilter
) -> LogSummary:
    # Its counters mean what LogSummary's do (see AttemptCounts), both directions
    # included, and it leaves out the attempts of soft-deleted messages too.
    groups = await ReportRepository(session, organization_id).rolled_up_counts(
        created=f.created, direction=None
    )
    counts = AttemptCounts()
    for group in groups:
        if (f.channels is None or group.channel in f.channels) and (
            f.communication_types is None or group.communication_type in f.communication_types
        ):
            counts.add(group.counts)
    return LogSummary(
        total=counts.total,
        delivered=counts.delivered,
        opened=counts.opened,
        read=counts.read,
        bounced=counts.bounced,
        failed=counts.failed,
    )


async def get_logs(
    session: AsyncSession, *, organization_id: uuid.UUID, log_ids: list[uuid.UUID]
) -> dict[uuid.UUID, CommunicationLog]:
    return await CommunicationLogRepository(session, organization_id).get_many(log_ids)


async def logs_for_messages(
    session: AsyncSession, *, organization_id: uuid.UUID, message_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[CommunicationLog]]:
    return await CommunicationLogRepository(session, organization_id).for_messages(message_ids)


async def log_pages_for_clients(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    client_ids: list[uuid.UUID],
    page: KeysetPage,
) -> dict[uuid.UUID, Page[CommunicationLog]]:
    return await CommunicationLogRepository(session, organization_id).pages_for_clients(
        client_ids, page
    )


async def log_counts_for_clients(
    session: AsyncSession, *, organization_id: uuid.UUID, client_ids: list[uuid.UUID]
) -> dict[uuid.UUID, int]:
    return await CommunicationLogRepository(session, organization_id).count_for_clients(client_ids)


async def timelines_for_logs(
    session: AsyncSession, *, organization_id: uuid.UUID, log_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[LogEvent]]:
    return await LogEventRepository(session, organization_id).for_logs(log_ids)


async def compact_counts(session: AsyncSession) -> int:
    """Fold the message-count and attempt-count rollups' deltas; how many rows went away."""
    return await compact_message_counts(session) + await compact_attempt_counts(session)
