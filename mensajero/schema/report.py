"""GraphQL types of the reports: the same service objects the REST routes shape.

Dictionaries of the service (counts by status, category, outcome) are lists of
``{key, count}`` here, so they can be selected and ordered like any list.
Durations are seconds; rates are percentages with two decimals.
"""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

import strawberry

from mensajero.repositories.report import AttemptCounts
from mensajero.services import report as report_service


@strawberry.type(description="A count of one key (a status, a category, an outcome...).")
class KeyCount:
    key: str
    count: int


def key_counts(values: dict[str, int]) -> list[KeyCount]:
    return [KeyCount(key=key, count=count) for key, count in values.items()]


@strawberry.type(description="Attempts by what they reached, and the rates over them.")
class AttemptMetrics:
    total: int
    sent: int
    delivered: int
    opened: int
    clicked: int
    read: int
    bounced: int
    failed: int
    responded: int
    delivery_rate: float = strawberry.field(description="delivered / sent, %")
    open_rate: float = strawberry.field(description="opened / delivered, %")
    click_rate: float = strawberry.field(description="clicked / delivered, %")
    bounce_rate: float = strawberry.field(description="bounced / sent, %")
    read_rate: float = strawberry.field(description="read / delivered, %")
    response_rate: float = strawberry.field(description="responded / delivered, %")

    @classmethod
    def of(cls, counts: AttemptCounts) -> AttemptMetrics:
        return cls(**report_service.attempt_metrics(counts))


@strawberry.type(description="First response and resolution times of conversations.")
class ConversationTimes:
    responded: int
    avg_first_response_seconds: float | None
    median_first_response_seconds: float | None
    resolved: int
    avg_resolution_seconds: float | None
    median_resolution_seconds: float | None

    @classmethod
    def of(cls, times: report_service.DurationStats) -> ConversationTimes:
        return cls(**report_service.fields_of(times))


@strawberry.type
class ConversationMetrics:
    total: int
    open: int
    pending: int
    resolved: int
    unassigned: int
    times: ConversationTimes

    @classmethod
    def of(cls, summary: report_service.ConversationSummary) -> ConversationMetrics:
        return cls(**report_service.fields_of(summary, times=ConversationTimes.of(summary.times)))


@strawberry.type(description="One agent's conversations (memberId null: the unassigned ones).")
class AgentReport:
    member_id: UUID | None
    name: str | None
    email: str | None
    conversations: int
    open: int
    resolved: int
    times: ConversationTimes

    @classmethod
    def of(cls, agent: report_service.AgentStats) -> AgentReport:
        return cls(**report_service.fields_of(agent, times=ConversationTimes.of(agent.times)))


@strawberry.type(description="One tag: its clients, their messages and conversations.")
class TagReport:
    tag_id: UUID
    name: str
    color: str | None
    clients: int
    messages: int
    conversations: int

    @classmethod
    def of(cls, tag: report_service.TagStats) -> TagReport:
        return cls(**report_service.fields_of(tag))


@strawberry.type(description="The dashboard.")
class ReportSummary:
    organization_id: UUID
    name: str
    timezone: str
    balance: int
    clients: int
    messages_total: int
    messages_outbound: int
    messages_inbound: int
    period_start: datetime = strawberry.field(description="Start of the last 30 local days.")
    last_30_days: AttemptMetrics = strawberry.field(name="last30Days")
    conversations: ConversationMetrics
    agents: list[AgentReport]
    tags: list[TagReport]

    @classmethod
    def of(cls, summary: report_service.ReportSummary) -> ReportSummary:
        return cls(
            organization_id=summary.organization_id,
            name=summary.name,
            timezone=summary.timezone,
            balance=summary.balance,
            clients=summary.clients,
            messages_total=summary.messages_total,
            messages_outbound=summary.messages_outbound,
            messages_inbound=summary.messages_inbound,
            period_start=summary.period_start,
            last_30_days=AttemptMetrics.of(summary.period),
            conversations=ConversationMetrics.of(summary.conversations),
            agents=[AgentReport.of(agent) for agent in summary.agents],
            tags=[TagReport.of(tag) for tag in summary.tags],
        )


@strawberry.type
class DayVolume:
    day: date
    outbound: int
    inbound: int
    delivered: int
    failed: int = strawberry.field(description="Failed and bounced.")


@strawberry.type
class ChannelMessaging:
    channel: str
    outbound: AttemptMetrics
    inbound: int
    by_status: list[KeyCount]
    conversations: int
    response_times: ConversationTimes | None


@strawberry.type(description="Messaging metrics since a date.")
class MessagingReport:
    since: datetime
    outbound: AttemptMetrics
    inbound: int
    by_status: list[KeyCount] = strawberry.field(
        description="Messages created since, by current status."
    )
    by_channel: list[ChannelMessaging]
    by_day: list[DayVolume] = strawberry.field(description="Local days, empty ones included.")
    conversations: ConversationMetrics

    @classmethod
    def of(cls, report: report_service.MessagingReport) -> MessagingReport:
        return cls(
            since=report.since,
            outbound=AttemptMetrics.of(report.outbound),
            inbound=report.inbound,
            by_status=key_counts(report.by_status),
            by_channel=[
                ChannelMessaging(
                    channel=c.channel,
                    outbound=AttemptMetrics.of(c.outbound),
                    inbound=c.inbound,
                    by_status=key_counts(c.by_status),
                    conversations=c.conversations,
                    response_times=ConversationTimes.of(c.times) if c.times else None,
                )
                for c in report.by_channel
            ],
            by_day=[DayVolume(**report_service.fields_of(d)) for d in report.by_day],
            conversations=ConversationMetrics.of(report.conversations),
        )


@strawberry.type
class ChannelConsumption:
    channel: str
    debited: int
    refunded: int
    net: int
    messages: int


@strawberry.type
class MonthBilling:
    month: date = strawberry.field(description="First day of the local month.")
    debited: int
    refunded: int
    topped_up: int
    net_consumption: int
    messages: int


@strawberry.type
class TopUp:
    id: UUID
    amount: int
    balance_after: int
    description: str
    created_at: datetime


@strawberry.type(description="Balance and consumption, from the credit ledger.")
class BillingReport:
    balance: int
    topped_up: int
    debited: int
    refunded: int
    adjusted: int
    consumption_by_channel: list[ChannelConsumption]
    months: list[MonthBilling] = strawberry.field(description="Last 12 local months, newest first.")
    topups: list[TopUp]

    @classmethod
    def of(cls, billing: report_service.BillingReport) -> BillingReport:
        return cls(
            **report_service.fields_of(
                billing,
                consumption_by_channel=[
                    ChannelConsumption(**report_service.fields_of(c))
                    for c in billing.consumption_by_channel
                ],
                months=[MonthBilling(**report_service.fields_of(m)) for m in billing.months],
                topups=[
                    TopUp(
                        id=t.id,
                        amount=t.amount,
                        balance_after=t.balance_after,
                        description=t.description,
                        created_at=t.created_at,
                    )
                    for t in billing.topups
                ],
            )
        )


@strawberry.type(description="A client with its conversation metrics.")
class CustomerReport:
    client_id: UUID
    name: str
    email: str | None
    phone: str | None
    conversations: int
    open: int
    resolved: int
    times: ConversationTimes
    first_contact_at: datetime
    last_contact_at: datetime

    @classmethod
    def of(cls, customer: report_service.CustomerStats) -> CustomerReport:
        return cls(
            client_id=customer.client_id,
            name=customer.name,
            email=customer.email,
            phone=customer.phone,
            conversations=customer.conversations,
            open=customer.open,
            resolved=customer.resolved,
            times=ConversationTimes.of(customer.times),
            first_contact_at=customer.first_contact_at,
            last_contact_at=customer.last_contact_at,
        )


@strawberry.type
class CustomerReportEdge:
    cursor: str
    node: CustomerReport


@strawberry.type
class CustomerReportPageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type(description="Clients with conversation metrics, latest contact first.")
class CustomerReportConnection:
    edges: list[CustomerReportEdge]
    page_info: CustomerReportPageInfo

    @classmethod
    def of(cls, page: report_service.CustomerPage) -> CustomerReportConnection:
        edges = [
            CustomerReportEdge(cursor=c.cursor, node=CustomerReport.of(c)) for c in page.customers
        ]
        return cls(
            edges=edges,
            page_info=CustomerReportPageInfo(
                has_next_page=page.next_cursor is not None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
        )


@strawberry.input(description="Which conversations count: opened in [since, until], of a kind.")
class CustomerReportFilter:
    since: datetime | None = None
    until: datetime | None = None
    category: str | None = None
    resolution_outcome: str | None = None
    q: str | None = strawberry.field(default=None, description="Name, email or phone contains.")


@strawberry.type
class TimelineEntry:
    at: datetime
    kind: str = strawberry.field(
        description=(
            "message_outbound, message_inbound, conversation_opened, first_response, "
            "conversation_resolved"
        )
    )
    channel: str
    message_id: UUID | None
    conversation_id: UUID | None
    status: str | None
    text: str | None
    member_id: UUID | None


@strawberry.type(description="One client's history: metrics and timeline.")
class CustomerDetail:
    client_id: UUID
    name: str
    conversations: ConversationMetrics
    by_category: list[KeyCount]
    by_outcome: list[KeyCount]
    outbound: AttemptMetrics
    inbound: int
    first_contact_at: datetime | None
    last_contact_at: datetime | None
    timeline: list[TimelineEntry]

    @classmethod
    def of(cls, detail: report_service.CustomerDetail) -> CustomerDetail:
        return cls(
            client_id=detail.client.id,
            name=detail.client.name,
            conversations=ConversationMetrics.of(detail.conversations),
            by_category=key_counts(detail.by_category),
            by_outcome=key_counts(detail.by_outcome),
            outbound=AttemptMetrics.of(detail.attempts),
            inbound=detail.inbound,
            first_contact_at=detail.first_contact_at,
            last_contact_at=detail.last_contact_at,
            timeline=[
                TimelineEntry(
                    at=e.at,
                    kind=e.kind,
                    channel=e.channel,
                    message_id=e.message_id,
                    conversation_id=e.conversation_id,
                    status=e.status,
                    text=e.text,
                    member_id=e.member_id,
                )
                for e in detail.timeline
            ],
        )


@strawberry.type
class NamedMetrics:
    name: str
    metrics: AttemptMetrics


@strawberry.type
class PeriodMetrics:
    start: date = strawberry.field(description="The day, Monday of the week or 1st of the month.")
    metrics: AttemptMetrics


@strawberry.type(description="Outbound attempts of a period of local days.")
class CommunicationStats:
    from_: date = strawberry.field(name="from")
    to: date
    group_by: str
    totals: AttemptMetrics
    by_channel: list[NamedMetrics]
    by_type: list[NamedMetrics]
    periods: list[PeriodMetrics]

    @classmethod
    def of(cls, stats: report_service.CommunicationStats) -> CommunicationStats:
        return cls(
            from_=stats.start,
            to=stats.end,
            group_by=stats.group_by,
            totals=AttemptMetrics.of(stats.totals),
            by_channel=[
                NamedMetrics(name=k, metrics=AttemptMetrics.of(v))
                for k, v in sorted(stats.by_channel.items())
            ],
            by_type=[
                NamedMetrics(name=k, metrics=AttemptMetrics.of(v))
                for k, v in sorted(stats.by_type.items())
            ],
            periods=[
                PeriodMetrics(start=start, metrics=AttemptMetrics.of(counts))
                for start, counts in stats.periods
            ],
        )


@strawberry.type(description="A client's communications: totals by channel and type, rates.")
class ClientCommunicationSummary:
    total: int
    by_channel: list[KeyCount]
    by_type: list[KeyCount]
    delivery_rate: float
    open_rate: float
    click_rate: float
    bounce_rate: float

    @classmethod
    def of(cls, history: report_service.ClientHistory) -> ClientCommunicationSummary:
        return cls(
            total=history.total,
            by_channel=key_counts(history.by_channel),
            by_type=key_counts(history.by_type),
            delivery_rate=history.rates.delivery,
            open_rate=history.rates.open,
            click_rate=history.rates.click,
            bounce_rate=history.rates.bounce,
        )
