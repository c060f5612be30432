"""Queries of messages and communication logs."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from mensajero.schema import loaders
from mensajero.schema.context import Context
from mensajero.schema.filters import CommunicationLogFilterInput, MessageFilterInput
from mensajero.schema.message import (
    CommunicationLogConnection,
    CommunicationLogType,
    MessageConnection,
    MessageType,
)
from mensajero.schema.pagination import PAGE_ARGUMENTS_HELP, counter, keyset_page
from mensajero.schema.relay import parse_id
from mensajero.services import message as message_service
from mensajero.services.listing import LogFilter, LogSummary, MessageFilter


@strawberry.type
class MessageQuery:
    @strawberry.field(description=f"The organization's messages. {PAGE_ARGUMENTS_HELP}")
    async def messages(
        self,
        info: Info[Context, None],
        filter: MessageFilterInput | None = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> MessageConnection:
        organization_id = info.context.principal.organization_id
        page = keyset_page(info, first, after, last, before)
        message_filter = filter.to_filter() if filter else MessageFilter()
        # The page's clients and campaigns, when selected, come with it.
        with_client = loaders.selects_node_field(info, "client")
        with_campaign = loaders.selects_node_field(info, "campaign")
        async with info.context.read() as session:
            found, clients, campaigns = await message_service.list_messages_with_relations(
                session,
                organization_id=organization_id,
                message_filter=message_filter,
                page=page,
                client=with_client,
                campaign=with_campaign,
            )
        # Only relations actually read: priming ids not loaded would cache them as None
        # for the whole request (a sibling connection selecting client would see null).
        if with_client:
            loaders.prime(loaders.client(info), clients, [row.client_id for row in found.rows])
        if with_campaign:
            loaders.prime(
                loaders.campaign(info), campaigns, [row.campaign_id for row in found.rows]
            )
        return MessageConnection.build(
            found,
            MessageType.from_model,
            counter(
                info,
                lambda session: message_service.count_messages(
                    session, organization_id=organization_id, message_filter=message_filter
                ),
            ),
        )

    @strawberry.field(description="A message by global id or UUID; null if not the caller's.")
    async def message(self, info: Info[Context, None], id: strawberry.ID) -> MessageType | None:
        message_id = parse_id(id, type_name="Message")
        if message_id is None:
            return None
        return (await MessageType.resolve_nodes(info=info, node_ids=[str(message_id)]))[0]

    @strawberry.field(
        description=f"Delivery attempts, with a summary of the filtered set. {PAGE_ARGUMENTS_HELP}"
    )
    async def communication_logs(
        self,
        info: Info[Context, None],
        filter: CommunicationLogFilterInput | None = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> CommunicationLogConnection:
        organization_id = info.context.principal.organization_id
        page = keyset_page(info, first, after, last, before)
        log_filter = filter.to_filter() if filter else LogFilter()
        async with info.context.read() as session:
            found = await message_service.list_logs(
                session, organization_id=organization_id, log_filter=log_filter, page=page
            )
        await prefetch_relations(info, found.rows)
        return log_connection(info, found, log_filter)

    @strawberry.field(description="An attempt by global id or UUID; null if not the caller's.")
    async def communication_log(
        self, info: Info[Context, None], id: strawberry.ID
    ) -> CommunicationLogType | None:
        log_id = parse_id(id, type_name="CommunicationLog")
        if log_id is None:
            return None
        return (await CommunicationLogType.resolve_nodes(info=info, node_ids=[str(log_id)]))[0]


async def prefetch_relations(info: Info[Context, None], rows: list[Any]) -> None:
    """Load the page's clients and campaigns now if selected, so nodes resolve them at once."""
    if rows and loaders.selects_node_field(info, "client"):
        await loaders.prefetch(loaders.client(info), (row.client_id for row in rows))
    if rows and loaders.selects_node_field(info, "campaign"):
        await loaders.prefetch(loaders.campaign(info), (row.campaign_id for row in rows))


def log_connection(
    info: Info[Context, None], found: object, log_filter: LogFilter
) -> CommunicationLogConnection:
    """A log connection whose totalCount and summary are computed only when selected."""
    organization_id = info.context.principal.organization_id
    summary: list[LogSummary] = []

    async def summarize() -> LogSummary:
        # totalCount and summary.total come from the same query.
        if not summary:
            async with info.context.read() as session:
                summary.append(
                    await message_service.summarize_logs(
                        session, organization_id=organization_id, log_filter=log_filter
                    )
                )
        return summary[0]

    async def count() -> int:
        return (await summarize()).total

    return CommunicationLogConnection.build(
        found, CommunicationLogType.from_model, count, summary_loader=summarize
    )
