"""Communication reports: stats of a period and a client's communication history.

Rates are percentages with two decimals (SPEC section 9): delivery =
delivered/sent, open = opened/delivered, click = clicked/delivered, bounce =
bounced/sent; a rate over nothing is 0. Counts are of outbound attempts (a
resend is a second attempt and counts again), as defined by
:class:`mensajero.repositories.report.AttemptCounts`.

Periods are calendar days of the organization's time zone: ``from`` and
``to`` are both inclusive. The database groups by UTC hour and the hours are
folded into local days, weeks (starting Monday) or months here, which is
exact for every zone whose offset is a whole number of hours.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.ext.asyncio import AsyncSession

from mensajero.models import Client, CommunicationLog, Message
from mensajero.repositories.organization import get_organization
from mensajero.repositories.report import AttemptCounts, ReportRepository
from mensajero.services import client_queries
from mensajero.services import message as message_service
from mensajero.services.errors import InvalidInput, NotFound
from mensajero.services.listing import LogFilter, OffsetPage, TimeRange

GROUP_BY = ("day", "week", "month")
DEFAULT_PERIOD_DAYS = 30
MAX_PERIOD_DAYS = 366 * 2
RECENT_COMMUNICATIONS = 10


def percentage(numerator: int, denominator: int) -> float:
    return round(100 * numerator / denominator, 2) if denominator else 0.0


@dataclass(frozen=True, slots=True)
class Rates:
    delivery: float
    open: float
    click: float
    bounce: float

    @classmethod
    def of(cls, counts: AttemptCounts) -> Rates:
        return cls(
            delivery=percentage(counts.delivered, counts.sent),
            open=percentage(counts.opened, counts.delivered),
            click=percentage(counts.clicked, counts.delivered),
            bounce=percentage(counts.bounced, counts.sent),
        )


@dataclass(slots=True)
class CommunicationStats:
    start: date
    end: date
    group_by: str
    totals: AttemptCounts
    rates: Rates
    by_channel: dict[str, AttemptCounts]
    by_type: dict[str, AttemptCounts]
    # Period start (day, Monday of the week, first of the month) -> counts, oldest first.
    periods: list[tuple[date, AttemptCounts]] = field(default_factory=list)


async def organization_zone(session: AsyncSession, organization_id: uuid.UUID) -> ZoneInfo:
    organization = await get_organization(session, organization_id)
    try:
        return ZoneInfo(organization.timezone if organization else "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _period_start(day: date, group_by: str) -> date:
    if group_by == "week":
        return day - timedelta(days=day.weekday())
    if group_by == "month":
        return day.replace(day=1)
    return day


def local_days(start: date, end: date, zone: ZoneInfo) -> TimeRange:
    """The instants of the calendar days ``start`` to ``end`` (inclusive) in ``zone``."""
    return TimeRange(
        datetime.combine(start, time(), zone).astimezone(UTC),
        datetime.combine(end + timedelta(days=1), time(), zone).astimezone(UTC),
    )


async def communication_stats(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    start: date | None = None,
    end: date | None = None,
    group_by: str = "day",
    now: datetime | None = None,
) -> CommunicationStats:
    """Coordinalo's ``GET /communication/stats``; without dates, the last 30 days."""
    if group_by not in GROUP_BY:
        raise InvalidInput(f"groupBy must be one of {', '.join(GROUP_BY)}", field="groupBy")
    zone = await organization_zone(session, organization_id)
    today = (now or datetime.now(UTC)).astimezone(zone).date()
    end = end or (today if start is None else max(start, today))
    start = start or end - timedelta(days=DEFAULT_PERIOD_DAYS - 1)
    if start > end:
        raise InvalidInput("'from' must not be after 'to'", field="from")
    if (end - start).days > MAX_PERIOD_DAYS:
        raise InvalidInput(f"a period spans at most {MAX_PERIOD_DAYS} days", field="to")
    groups = await ReportRepository(session, organization_id).grouped_counts(
        created=local_days(start, end, zone), by_hour=True
    )
    totals = AttemptCounts()
    by_channel: dict[str, AttemptCounts] = defaultdict(AttemptCounts)
    by_type: dict[str, AttemptCounts] = defaultdict(AttemptCounts)
    by_period: dict[date, AttemptCounts] = defaultdict(AttemptCounts)
    for group in groups:
        totals.add(group.counts)
        by_channel[group.channel].add(group.counts)
        by_type[group.communication_type].add(group.counts)
        assert group.bucket is not None
        by_period[_period_start(group.bucket.astimezone(zone).date(), group_by)].add(group.counts)
    periods = []
    cursor = _period_start(start, group_by)
    while cursor <= end:  # every period, the empty ones too
        periods.append((cursor, by_period.get(cursor, AttemptCounts())))
        cursor = _next_period(cursor, group_by)
    return CommunicationStats(
        start=start,
        end=end,
        group_by=group_by,
        totals=totals,
        rates=Rates.of(totals),
        by_channel=dict(by_channel),
        by_type=dict(by_type),
        periods=periods,
    )


def _next_period(day: date, group_by: str) -> date:
    if group_by == "week":
        return day + timedelta(days=7)
    if group_by == "month":
        return (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return day + timedelta(days=1)


@dataclass(frozen=True, slots=True)
class RecentCommunication:
    log: CommunicationLog
    message: Message | None


@dataclass(frozen=True, slots=True)
class ClientHistory:
    client: Client
    total: int
    by_channel: dict[str, int]
    by_type: dict[str, int]
    rates: Rates
    recent: list[RecentCommunication]


async def client_communication_history(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    client_id: uuid.UUID,
    recent_limit: int = RECENT_COMMUNICATIONS,
) -> ClientHistory:
    """Coordinalo's per-client history: totals by channel and type, rates, latest attempts."""
    clients = await client_queries.get_live_clients(
        session, organization_id=organization_id, client_ids=[client_id]
    )
    client = clients.get(client_id)
    if client is None:
        raise NotFound("client not found")
    groups = await ReportRepository(session, organization_id).grouped_counts(client_id=client_id)
    totals = AttemptCounts()
    by_channel: dict[str, int] = defaultdict(int)
    by_type: dict[str, int] = defaultdict(int)
    for group in groups:
        totals.add(group.counts)
        by_channel[group.channel] += group.counts.total
        by_type[group.communication_type] += group.counts.total
    logs, _ = await message_service.list_logs_by_offset(
        session,
        organization_id=organization_id,
        log_filter=LogFilter(client_ids=(client_id,)),
        page=OffsetPage(page=1, limit=recent_limit),
    )
    messages = await message_service.get_messages(
        session, organization_id=organization_id, message_ids=[log.message_id for log in logs]
    )
    return ClientHistory(
        client=client,
        total=totals.total,
        by_channel=dict(sorted(by_channel.items(), key=lambda item: -item[1])),
        by_type=dict(sorted(by_type.items(), key=lambda item: -item[1])),
        rates=Rates.of(totals),
        recent=[RecentCommunication(log, messages.get(log.message_id)) for log in logs],
    )
