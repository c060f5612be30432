"""Report queries: ``report { ... }`` (also ``viewer { report }``) and ``communicationStats``.

Every field needs the ``read`` scope and calls one report service function.
Invalid arguments (a bad cursor, a limit out of range) are GraphQL errors with
the code ``INVALID_INPUT``; a customer that is not the caller's is null.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

from mensajero.models import ApiKeyScope
from mensajero.schema.context import Context
from mensajero.schema.relay import parse_id
from mensajero.schema.report import (
    AgentReport,
    BillingReport,
    CommunicationStats,
    CustomerDetail,
    CustomerReportConnection,
    CustomerReportFilter,
    MessagingReport,
    ReportSummary,
    TagReport,
)
from mensajero.services import report as report_service
from mensajero.services.errors import NotFound


def _organization(info: Info[Context, None]) -> uuid.UUID:
    principal = info.context.principal
    principal.require_scope(ApiKeyScope.READ)
    return principal.organization_id


async def _communication_stats(
    info: Info[Context, None], start: date | None, end: date | None, group_by: str
) -> CommunicationStats:
    organization_id = _organization(info)
    async with info.context.read() as session:
        stats = await report_service.communication_stats(
            session, organization_id=organization_id, start=start, end=end, group_by=group_by
        )
    return CommunicationStats.of(stats)


@strawberry.type(name="Report", description="The organization's reports (mosend's, and more).")
class ReportType:
    @strawberry.field(description="The dashboard: balance, volumes, conversations, agents, tags.")
    async def summary(self, info: Info[Context, None]) -> ReportSummary:
        organization_id = _organization(info)
        async with info.context.read() as session:
            summary = await report_service.report_summary(session, organization_id=organization_id)
        return ReportSummary.of(summary)

    @strawberry.field(description="Messaging metrics since a date (default: last 30 local days).")
    async def messaging(
        self, info: Info[Context, None], since: datetime | None = None
    ) -> MessagingReport:
        organization_id = _organization(info)
        async with info.context.read() as session:
            report = await report_service.messaging_report(
                session, organization_id=organization_id, since=since
            )
        return MessagingReport.of(report)

    @strawberry.field(description="Balance, top-ups and consumption, from the credit ledger.")
    async def billing(self, info: Info[Context, None]) -> BillingReport:
        organization_id = _organization(info)
        async with info.context.read() as session:
            billing = await report_service.billing_report(session, organization_id=organization_id)
        return BillingReport.of(billing)

    @strawberry.field(
        description=(
            "Clients with conversation metrics, latest contact first; `first` at most 100, "
            "`after` an edge's cursor."
        )
    )
    async def customers(
        self,
        info: Info[Context, None],
        filter: CustomerReportFilter | None = None,
        first: int = report_service.DEFAULT_CUSTOMERS_LIMIT,
        after: str | None = None,
    ) -> CustomerReportConnection:
        organization_id = _organization(info)
        wanted = filter or CustomerReportFilter()
        async with info.context.read() as session:
            page = await report_service.customers_report(
                session,
                organization_id=organization_id,
                query=report_service.CustomerQuery(
                    since=wanted.since,
                    until=wanted.until,
                    category=wanted.category,
                    resolution_outcome=wanted.resolution_outcome,
                    search=wanted.q,
                    limit=first,
                    cursor=after,
                ),
            )
        return CustomerReportConnection.of(page)

    @strawberry.field(description="One client's metrics and timeline; null if not the caller's.")
    async def customer(self, info: Info[Context, None], id: strawberry.ID) -> CustomerDetail | None:
        organization_id = _organization(info)
        client_id = parse_id(id, type_name="Client")
        if client_id is None:
            return None
        try:
            async with info.context.read() as session:
                detail = await report_service.customer_report(
                    session, organization_id=organization_id, client_id=client_id
                )
        except NotFound:
            return None
        return CustomerDetail.of(detail)

    @strawberry.field(description="Per agent: conversations opened in [since, until).")
    async def agents(
        self,
        info: Info[Context, None],
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[AgentReport]:
        organization_id = _organization(info)
        async with info.context.read() as session:
            agents = await report_service.agents_report(
                session,
                organization_id=organization_id,
                window=report_service.ConversationWindow(since=since, until=until),
            )
        return [AgentReport.of(agent) for agent in agents]

    @strawberry.field(description="Per tag: clients, and their messages and conversations since.")
    async def tags(self, info: Info[Context, None], since: datetime) -> list[TagReport]:
        organization_id = _organization(info)
        async with info.context.read() as session:
            tags = await report_service.tags_report(
                session, organization_id=organization_id, since=since
            )
        return [TagReport.of(tag) for tag in tags]

    @strawberry.field(
        description=(
            "Outbound attempts of the local days from..to (inclusive; default the last 30), "
            "grouped by day, week or month."
        )
    )
    async def communication_stats(
        self,
        info: Info[Context, None],
        from_: Annotated[date | None, strawberry.argument(name="from")] = None,
        to: date | None = None,
        group_by: str = "day",
    ) -> CommunicationStats:
        return await _communication_stats(info, from_, to, group_by)


@strawberry.type
class ReportQuery:
    @strawberry.field(description="The organization's reports. Needs the `read` scope.")
    def report(self) -> ReportType:
        return ReportType()

    @strawberry.field(
        description="Outbound attempts of a period, grouped by day, week or month (local days)."
    )
    async def communication_stats(
        self,
        info: Info[Context, None],
        from_: Annotated[date | None, strawberry.argument(name="from")] = None,
        to: date | None = None,
        group_by: str = "day",
    ) -> CommunicationStats:
        return await _communication_stats(info, from_, to, group_by)
