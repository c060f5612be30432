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

import base64
import statistics
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.ext.asyncio import AsyncSession

from mensajero.models import (
    Client,
    CommunicationLog,
    Conversation,
    CreditLedgerEntry,
    Direction,
    LedgerEntryKind,
    Message,
)
from mensajero.repositories.organization import MemberRepository, get_organization
from mensajero.repositories.report import (
    AttemptCounts,
    ConversationReportRepository,
    ConversationTotals,
    ConversationWindow,
    LedgerReportRepository,
    MessageCountReportRepository,
    ReportRepository,
    TagReportRepository,
    client_messages,
    count_live_clients,
)
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
        created=local_days(start, end, zone), local_days=zone
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
    logs: list[CommunicationLog] = []
    messages: dict[uuid.UUID, Message] = {}
    if recent_limit > 0:  # GraphQL's communicationSummary asks for none
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


# --- mosend reports (seed 003: "volumen, tiempos, agentes, etiquetas") -----------------------
#
# Volumes and rates come from the rollups (attempt_counts, message_counts), never
# from scanning messages; conversation metrics from the conversations table (one
# row per conversation, far fewer than messages); billing from the credit ledger
# (one entry per batch, refund or top-up). Durations are in seconds; averages
# have two decimals; a median of an even number of values is the mean of the two
# middle ones; a metric over nothing is null.

DEFAULT_MESSAGING_DAYS = 30
DEFAULT_CUSTOMERS_LIMIT = 20
MAX_CUSTOMERS_LIMIT = 100
TIMELINE_LIMIT = 50
LATEST_TOPUPS = 20
BILLING_MONTHS = 12


def average(total: int, count: int) -> float | None:
    return round(total / count, 2) if count else None


def median(values: Iterable[int | None]) -> float | None:
    present = [value for value in values if value is not None]
    return float(statistics.median(present)) if present else None


@dataclass(frozen=True, slots=True)
class DurationStats:
    """Conversation times: first response and resolution, in seconds."""

    responded: int
    avg_first_response_seconds: float | None
    median_first_response_seconds: float | None
    resolved: int
    avg_resolution_seconds: float | None
    median_resolution_seconds: float | None

    @classmethod
    def of(
        cls, totals: ConversationTotals, medians: tuple[float | None, float | None] | None
    ) -> DurationStats:
        median_first, median_resolution = medians or (None, None)
        return cls(
            responded=totals.responded,
            avg_first_response_seconds=average(totals.first_response_sum, totals.responded),
            median_first_response_seconds=median_first,
            resolved=totals.resolved,
            avg_resolution_seconds=average(totals.resolution_sum, totals.resolution_measured),
            median_resolution_seconds=median_resolution,
        )


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    total: int
    open: int
    pending: int
    resolved: int
    unassigned: int
    times: DurationStats


async def _conversation_summary(
    session: AsyncSession,
    organization_id: uuid.UUID,
    window: ConversationWindow,
    *,
    client_id: uuid.UUID | None = None,
) -> ConversationSummary:
    repository = ConversationReportRepository(session, organization_id)
    totals = await repository.totals(window, client_id=client_id)
    medians = await repository.medians(window, client_id=client_id)
    return _summary_of(totals, medians.get(None))


def _summary_of(
    totals: ConversationTotals, medians: tuple[float | None, float | None] | None
) -> ConversationSummary:
    return ConversationSummary(
        total=totals.total,
        open=totals.open,
        pending=totals.pending,
        resolved=totals.resolved,
        unassigned=totals.unassigned,
        times=DurationStats.of(totals, medians),
    )


@dataclass(frozen=True, slots=True)
class AgentStats:
    member_id: uuid.UUID | None  # None: the unassigned conversations
    name: str | None
    email: str | None
    conversations: int
    open: int
    resolved: int
    times: DurationStats


async def agents_report(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    window: ConversationWindow | None = None,
) -> list[AgentStats]:
    """Per assigned member (and the unassigned): conversations, resolved, times."""
    window = window or ConversationWindow()
    repository = ConversationReportRepository(session, organization_id)
    column = Conversation.assigned_member_id
    groups = await repository.totals_by(window, column)
    medians = await repository.medians(window, group=column)
    members = await MemberRepository(session, organization_id).get_many(
        [member_id for member_id, _ in groups if member_id is not None]
    )
    agents = []
    for member_id, totals in groups:
        member = members.get(member_id) if member_id is not None else None
        agents.append(
            AgentStats(
                member_id=member_id,
                name=member.name if member else None,
                email=member.email if member else None,
                conversations=totals.total,
                open=totals.open + totals.pending,
                resolved=totals.resolved,
                times=DurationStats.of(totals, medians.get(member_id)),
            )
        )
    # Busiest first; the unassigned last among equals; then by id for a stable order.
    agents.sort(key=lambda a: (-a.conversations, a.member_id is None, str(a.member_id)))
    return agents


@dataclass(frozen=True, slots=True)
class TagStats:
    tag_id: uuid.UUID
    name: str
    color: str | None
    clients: int
    messages: int
    conversations: int


async def tags_report(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    since: datetime,
) -> list[TagStats]:
    """Per tag: clients carrying it, messages to them and conversations with them since."""
    rows = await TagReportRepository(session, organization_id).breakdown(since=since)
    return [
        TagStats(row.tag_id, row.name, row.color, row.clients, row.messages, row.conversations)
        for row in rows
    ]


@dataclass(frozen=True, slots=True)
class ReportSummary:
    organization_id: uuid.UUID
    name: str
    timezone: str
    balance: int
    clients: int
    # All-time messages by current status (message_count_totals).
    messages_total: int
    messages_outbound: int
    messages_inbound: int
    # The last DEFAULT_MESSAGING_DAYS days of attempts (attempt_counts).
    period_start: datetime
    period: AttemptCounts
    period_rates: Rates
    conversations: ConversationSummary
    agents: list[AgentStats]
    tags: list[TagStats]


def _days_ago_start(now: datetime, zone: ZoneInfo, days: int) -> datetime:
    """Local midnight ``days - 1`` days before today: a window of ``days`` calendar days."""
    today = now.astimezone(zone).date()
    return datetime.combine(today - timedelta(days=days - 1), time(), zone).astimezone(UTC)


async def report_summary(
    session: AsyncSession, *, organization_id: uuid.UUID, now: datetime | None = None
) -> ReportSummary:
    """The dashboard: balance, clients, volumes, rates of the last 30 days, conversations,
    agents and tags."""
    organization = await get_organization(session, organization_id)
    if organization is None:
        raise NotFound("organization not found")
    zone = await organization_zone(session, organization_id)
    start = _days_ago_start(now or datetime.now(UTC), zone, DEFAULT_MESSAGING_DAYS)
    statuses = await MessageCountReportRepository(session, organization_id).by_status()
    period = AttemptCounts()
    for group in await ReportRepository(session, organization_id).rolled_up_counts(
        created=TimeRange(start, None)
    ):
        period.add(group.counts)
    return ReportSummary(
        organization_id=organization.id,
        name=organization.name,
        timezone=organization.timezone,
        balance=organization.credit_balance,
        clients=await count_live_clients(session, organization_id),
        messages_total=sum(n for *_, n in statuses),
        messages_outbound=sum(n for _, d, _, n in statuses if d == Direction.OUTBOUND),
        messages_inbound=sum(n for _, d, _, n in statuses if d == Direction.INBOUND),
        period_start=start,
        period=period,
        period_rates=Rates.of(period),
        conversations=await _conversation_summary(session, organization_id, ConversationWindow()),
        agents=await agents_report(session, organization_id=organization_id),
        tags=await tags_report(session, organization_id=organization_id, since=start),
    )


@dataclass(frozen=True, slots=True)
class ChannelMessaging:
    channel: str
    outbound: AttemptCounts
    inbound: int
    rates: Rates
    read_rate: float
    response_rate: float
    by_status: dict[str, int]
    conversations: int
    times: DurationStats | None


@dataclass(frozen=True, slots=True)
class DayMessaging:
    day: date
    outbound: int
    inbound: int
    delivered: int
    failed: int


@dataclass(frozen=True, slots=True)
class MessagingReport:
    since: datetime
    outbound: AttemptCounts
    inbound: int
    rates: Rates
    read_rate: float
    response_rate: float
    by_channel: list[ChannelMessaging]
    by_status: dict[str, int]
    by_day: list[DayMessaging]
    conversations: ConversationSummary


def fields_of(value: Any, **replaced: Any) -> dict[str, Any]:
    """A report dataclass's fields by name (shallow), some of them replaced.

    The REST models and the GraphQL types name their fields as the service's results
    do, so both doors build their shapes from this instead of copying field by field.
    """
    return {item.name: getattr(value, item.name) for item in fields(value)} | replaced


def attempt_metrics(counts: AttemptCounts) -> dict[str, int | float]:
    """An attempt group's counters and rates, named as both doors' ``AttemptMetrics`` name
    them (the REST model and the GraphQL type are built from this one mapping)."""
    rates = Rates.of(counts)
    return {
        "total": counts.total,
        "sent": counts.sent,
        "delivered": counts.delivered,
        "opened": counts.opened,
        "clicked": counts.clicked,
        "read": counts.read,
        "bounced": counts.bounced,
        "failed": counts.failed,
        "responded": counts.responded,
        "delivery_rate": rates.delivery,
        "open_rate": rates.open,
        "click_rate": rates.click,
        "bounce_rate": rates.bounce,
        "read_rate": read_rate(counts),
        "response_rate": response_rate(counts),
    }


def local_instant(
    value: date | datetime | None, zone: ZoneInfo, *, end: bool = False
) -> datetime | None:
    """A calendar day means its local midnight (``end``: the next one, so the day is
    included); an instant stays as it is (naive = UTC)."""
    if value is None or isinstance(value, datetime):
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value
    day = value + timedelta(days=1) if end else value
    return datetime.combine(day, time(), zone).astimezone(UTC)


def read_rate(counts: AttemptCounts) -> float:
    return percentage(counts.read, counts.delivered)


def response_rate(counts: AttemptCounts) -> float:
    return percentage(counts.responded, counts.delivered)


async def messaging_report(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    since: date | datetime | None = None,
    now: datetime | None = None,
) -> MessagingReport:
    """Volume by channel, status and local day, delivery/read/response rates and
    conversation times since ``since`` (default: the last 30 local days).

    Attempts are counted from the UTC hour containing ``since``; statuses are the
    current statuses of the messages created since then."""
    now = now or datetime.now(UTC)
    zone = await organization_zone(session, organization_id)
    since = local_instant(since, zone) or _days_ago_start(now, zone, DEFAULT_MESSAGING_DAYS)
    groups = await ReportRepository(session, organization_id).rolled_up_counts(
        created=TimeRange(since, None), local_days=zone, direction=None, by_type=False
    )
    outbound = AttemptCounts()
    inbound = 0
    channel_out: dict[str, AttemptCounts] = defaultdict(AttemptCounts)
    channel_in: dict[str, int] = defaultdict(int)
    days: dict[date, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for group in groups:
        assert group.bucket is not None
        day = days[group.bucket.astimezone(zone).date()]
        if group.direction == Direction.INBOUND:
            inbound += group.counts.total
            channel_in[group.channel] += group.counts.total
            day[1] += group.counts.total
            continue
        outbound.add(group.counts)
        channel_out[group.channel].add(group.counts)
        day[0] += group.counts.total
        day[2] += group.counts.delivered
        day[3] += group.counts.failed + group.counts.bounced
    statuses = await MessageCountReportRepository(session, organization_id).by_status(
        since=since, now=now
    )
    by_status: dict[str, int] = defaultdict(int)
    channel_status: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for channel, _, status, count in statuses:
        by_status[status] += count
        channel_status[channel][status] += count
    window = ConversationWindow(since=since)
    by_conversation_channel, overall = await ConversationReportRepository(
        session, organization_id
    ).totals_and_medians_by(window, Conversation.channel)
    channel_totals = {key: totals for key, (totals, _) in by_conversation_channel.items()}
    channel_medians = {key: medians for key, (_, medians) in by_conversation_channel.items()}
    channels = sorted(
        set(channel_out) | set(channel_in) | set(channel_status) | set(channel_totals)
    )
    by_channel = [
        ChannelMessaging(
            channel=channel,
            outbound=channel_out.get(channel, AttemptCounts()),
            inbound=channel_in.get(channel, 0),
            rates=Rates.of(channel_out.get(channel, AttemptCounts())),
            read_rate=read_rate(channel_out.get(channel, AttemptCounts())),
            response_rate=response_rate(channel_out.get(channel, AttemptCounts())),
            by_status=dict(sorted(channel_status.get(channel, {}).items())),
            conversations=channel_totals[channel].total if channel in channel_totals else 0,
            times=(
                DurationStats.of(channel_totals[channel], channel_medians.get(channel))
                if channel in channel_totals
                else None
            ),
        )
        for channel in channels
    ]
    first_day = since.astimezone(zone).date()
    last_day = now.astimezone(zone).date()
    by_day = []
    cursor = first_day
    while cursor <= last_day:  # every day, the empty ones too
        outbound_n, inbound_n, delivered, failed = days.get(cursor, [0, 0, 0, 0])
        by_day.append(DayMessaging(cursor, outbound_n, inbound_n, delivered, failed))
        cursor += timedelta(days=1)
    return MessagingReport(
        since=since,
        outbound=outbound,
        inbound=inbound,
        rates=Rates.of(outbound),
        read_rate=read_rate(outbound),
        response_rate=response_rate(outbound),
        by_channel=by_channel,
        by_status=dict(sorted(by_status.items())),
        by_day=by_day,
        conversations=_summary_of(*overall),
    )


@dataclass(frozen=True, slots=True)
class ChannelConsumption:
    channel: str
    debited: int  # credits spent (positive)
    refunded: int
    net: int
    messages: int


@dataclass(frozen=True, slots=True)
class MonthBilling:
    month: date  # first day of the local month
    debited: int
    refunded: int
    topped_up: int
    net_consumption: int
    messages: int


@dataclass(frozen=True, slots=True)
class BillingReport:
    balance: int
    topped_up: int
    debited: int
    refunded: int
    adjusted: int
    consumption_by_channel: list[ChannelConsumption]
    months: list[MonthBilling]
    topups: list[CreditLedgerEntry]


async def billing_report(
    session: AsyncSession, *, organization_id: uuid.UUID, now: datetime | None = None
) -> BillingReport:
    """Balance, top-ups, consumption by channel (all time) and by local month (last 12),
    from the credit ledger. Consumption is debits minus refunds."""
    organization = await get_organization(session, organization_id)
    if organization is None:
        raise NotFound("organization not found")
    zone = await organization_zone(session, organization_id)
    repository = LedgerReportRepository(session, organization_id)
    kinds: dict[str, int] = defaultdict(int)
    channels: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    months: dict[date, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for group in await repository.grouped():
        kinds[group.kind] += group.amount
        month = months[group.hour.astimezone(zone).date().replace(day=1)]
        if group.kind == LedgerEntryKind.DEBIT:
            channel = channels[group.channel or "unknown"]
            channel[0] += -group.amount
            channel[2] += group.messages
            month[0] += -group.amount
            month[3] += group.messages
        elif group.kind == LedgerEntryKind.REFUND:
            channels[group.channel or "unknown"][1] += group.amount
            month[1] += group.amount
        elif group.kind == LedgerEntryKind.TOPUP:
            month[2] += group.amount
    this_month = (now or datetime.now(UTC)).astimezone(zone).date().replace(day=1)
    month_list = []
    cursor = this_month
    for _ in range(BILLING_MONTHS):  # newest first, the empty months too
        debited, refunded, topped_up, messages = months.get(cursor, [0, 0, 0, 0])
        month_list.append(
            MonthBilling(cursor, debited, refunded, topped_up, debited - refunded, messages)
        )
        cursor = (cursor - timedelta(days=1)).replace(day=1)
    return BillingReport(
        balance=organization.credit_balance,
        topped_up=kinds.get(LedgerEntryKind.TOPUP, 0),
        debited=-kinds.get(LedgerEntryKind.DEBIT, 0),
        refunded=kinds.get(LedgerEntryKind.REFUND, 0),
        adjusted=kinds.get(LedgerEntryKind.ADJUSTMENT, 0),
        consumption_by_channel=[
            ChannelConsumption(name, debited, refunded, debited - refunded, messages)
            for name, (debited, refunded, messages) in sorted(channels.items())
        ],
        months=month_list,
        topups=await repository.latest(kinds=[LedgerEntryKind.TOPUP], limit=LATEST_TOPUPS),
    )


@dataclass(frozen=True, slots=True)
class CustomerQuery:
    """``since``/``until`` bound when conversations opened: instants, or local calendar
    days (both inclusive)."""

    since: date | datetime | None = None
    until: date | datetime | None = None
    category: str | None = None
    resolution_outcome: str | None = None
    search: str | None = None
    limit: int = DEFAULT_CUSTOMERS_LIMIT
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class CustomerStats:
    client_id: uuid.UUID
    name: str
    email: str | None
    phone: str | None
    conversations: int
    open: int
    resolved: int
    times: DurationStats
    first_contact_at: datetime
    last_contact_at: datetime
    cursor: str


@dataclass(frozen=True, slots=True)
class CustomerPage:
    customers: list[CustomerStats]
    next_cursor: str | None


def encode_customer_cursor(last_contact_at: datetime, client_id: uuid.UUID) -> str:
    raw = f"{last_contact_at.astimezone(UTC).isoformat()}|{client_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_customer_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, client_id = raw.split("|")
        instant = datetime.fromisoformat(at)
        if instant.tzinfo is None:
            raise ValueError
        return instant, uuid.UUID(client_id)
    except ValueError:
        raise InvalidInput("cursor is not valid", field="cursor") from None


async def customers_report(
    session: AsyncSession, *, organization_id: uuid.UUID, query: CustomerQuery
) -> CustomerPage:
    """Clients with conversation metrics, latest contact first; keyset pages (a page's last
    cursor continues it) that neither skip nor repeat."""
    if not 1 <= query.limit <= MAX_CUSTOMERS_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_CUSTOMERS_LIMIT}", field="limit")
    zone = await organization_zone(session, organization_id)
    since = local_instant(query.since, zone)
    until = local_instant(query.until, zone, end=True)
    if since and until and since >= until:
        raise InvalidInput("since must be before until", field="since")
    after = decode_customer_cursor(query.cursor) if query.cursor else None
    window = ConversationWindow(
        since=since,
        until=until,
        category=query.category,
        resolution_outcome=query.resolution_outcome,
    )
    repository = ConversationReportRepository(session, organization_id)
    rows = await repository.customers_page(
        window,
        search=(query.search or "").strip() or None,
        after=after,
        limit=query.limit + 1,
    )
    has_more = len(rows) > query.limit
    rows = rows[: query.limit]
    medians = (
        await repository.medians(
            window, group=Conversation.client_id, group_values=[r.client_id for r in rows]
        )
        if rows
        else {}
    )
    customers = [
        CustomerStats(
            client_id=row.client_id,
            name=row.name,
            email=row.email,
            phone=row.phone,
            conversations=row.totals.total,
            open=row.totals.open + row.totals.pending,
            resolved=row.totals.resolved,
            times=DurationStats.of(row.totals, medians.get(row.client_id)),
            first_contact_at=row.first_contact_at,
            last_contact_at=row.last_contact_at,
            cursor=encode_customer_cursor(row.last_contact_at, row.client_id),
        )
        for row in rows
    ]
    return CustomerPage(customers, customers[-1].cursor if has_more and customers else None)


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at: datetime
    kind: str  # message_outbound, message_inbound, conversation_opened, first_response, resolved
    channel: str
    message_id: uuid.UUID | None
    conversation_id: uuid.UUID | None
    status: str | None
    text: str | None
    member_id: uuid.UUID | None


@dataclass(frozen=True, slots=True)
class CustomerDetail:
    client: Client
    conversations: ConversationSummary
    by_category: dict[str, int]
    by_outcome: dict[str, int]
    attempts: AttemptCounts  # outbound attempts to the client, all time
    rates: Rates
    inbound: int
    first_contact_at: datetime | None
    last_contact_at: datetime | None
    timeline: list[TimelineEntry]


async def customer_report(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    client_id: uuid.UUID,
    timeline_limit: int = TIMELINE_LIMIT,
) -> CustomerDetail:
    """One client: historical conversation metrics, attempts and rates, and a timeline of
    its newest messages and conversation events, newest first."""
    clients = await client_queries.get_live_clients(
        session, organization_id=organization_id, client_ids=[client_id]
    )
    client = clients.get(client_id)
    if client is None:
        raise NotFound("client not found")
    summary = await _conversation_summary(
        session, organization_id, ConversationWindow(), client_id=client_id
    )
    report_repository = ReportRepository(session, organization_id)
    attempts = AttemptCounts()
    for group in await report_repository.raw_grouped_counts(client_id=client_id):
        attempts.add(group.counts)
    inbound = await report_repository.inbound_count(client_id=client_id)
    conversations = await ConversationReportRepository(session, organization_id).of_client(
        client_id, limit=timeline_limit
    )
    by_category: dict[str, int] = defaultdict(int)
    by_outcome: dict[str, int] = defaultdict(int)
    entries: list[TimelineEntry] = []
    for conversation in conversations:
        by_category[conversation.category or "uncategorized"] += 1
        if conversation.resolution_outcome:
            by_outcome[conversation.resolution_outcome] += 1
        common = {
            "channel": conversation.channel,
            "message_id": None,
            "conversation_id": conversation.id,
            "text": None,
            "member_id": conversation.assigned_member_id,
        }
        entries.append(
            TimelineEntry(conversation.opened_at, "conversation_opened", status="open", **common)
        )
        if conversation.first_response_at is not None:
            entries.append(
                TimelineEntry(
                    conversation.first_response_at, "first_response", status=None, **common
                )
            )
        if conversation.resolved_at is not None:
            entries.append(
                TimelineEntry(
                    conversation.resolved_at,
                    "conversation_resolved",
                    status=conversation.resolution_outcome,
                    **common,
                )
            )
    messages = await client_messages(session, organization_id, client_id, limit=timeline_limit)
    for message in messages:
        entries.append(
            TimelineEntry(
                at=message.created_at,
                kind=f"message_{message.direction}",
                channel=message.channel,
                message_id=message.id,
                conversation_id=message.conversation_id,
                status=message.status,
                text=message.body,
                member_id=message.author_member_id,
            )
        )
    entries.sort(key=lambda entry: (entry.at, entry.kind), reverse=True)
    first_message, last_message = await report_repository.contact_span(client_id=client_id)
    conversation_span = await ConversationReportRepository(session, organization_id).contact_span(
        client_id
    )
    contact_times = [t for t in (first_message, last_message, *conversation_span) if t]
    return CustomerDetail(
        client=client,
        conversations=summary,
        by_category=dict(sorted(by_category.items())),
        by_outcome=dict(sorted(by_outcome.items())),
        attempts=attempts,
        rates=Rates.of(attempts),
        inbound=inbound,
        first_contact_at=min(contact_times) if contact_times else None,
        last_contact_at=max(contact_times) if contact_times else None,
        timeline=entries[:timeline_limit],
    )
