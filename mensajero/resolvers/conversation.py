"""Queries of conversations."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from mensajero.schema.context import Context
from mensajero.schema.conversation import ConversationConnection, ConversationType
from mensajero.schema.filters import ConversationFilterInput
from mensajero.schema.pagination import PAGE_ARGUMENTS_HELP, counter, keyset_page
from mensajero.schema.relay import parse_id
from mensajero.services import conversation as conversation_service
from mensajero.services.listing import ConversationFilter


@strawberry.type
class ConversationQuery:
    @strawberry.field(description=f"Conversations opened by replies. {PAGE_ARGUMENTS_HELP}")
    async def conversations(
        self,
        info: Info[Context, None],
        filter: ConversationFilterInput | None = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> ConversationConnection:
        organization_id = info.context.principal.organization_id
        page = keyset_page(info, first, after, last, before)
        wanted = filter.to_filter() if filter else ConversationFilter()
        async with info.context.read() as session:
            found = await conversation_service.list_conversations(
                session, organization_id=organization_id, conversation_filter=wanted, page=page
            )
        return ConversationConnection.build(
            found,
            ConversationType.from_model,
            counter(
                info,
                lambda session: conversation_service.count_conversations(
                    session, organization_id=organization_id, conversation_filter=wanted
                ),
            ),
        )

    @strawberry.field(description="A conversation by global id or UUID; null if not the caller's.")
    async def conversation(
        self, info: Info[Context, None], id: strawberry.ID
    ) -> ConversationType | None:
        conversation_id = parse_id(id, type_name="Conversation")
        if conversation_id is None:
            return None
        nodes = await ConversationType.resolve_nodes(info=info, node_ids=[str(conversation_id)])
        return nodes[0]
