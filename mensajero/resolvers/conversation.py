"""Queries and mutations of conversations."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from mensajero.models import ApiKeyScope, Conversation
from mensajero.schema.common import InvalidInputError, NotFoundError, UserError, write
from mensajero.schema.context import Context
from mensajero.schema.conversation import (
    ConversationConnection,
    ConversationPayload,
    ConversationResult,
    ConversationType,
)
from mensajero.schema.filters import ConversationFilterInput
from mensajero.schema.pagination import PAGE_ARGUMENTS_HELP, counter, keyset_page
from mensajero.schema.relay import parse_id
from mensajero.services import conversation as conversation_service
from mensajero.services.errors import NotFound
from mensajero.services.listing import ConversationFilter

SCOPE_NOTE = " Needs the `send` (or `admin`) scope."


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


async def _change(
    info: Info[Context, None],
    id: strawberry.ID,
    change: Callable[[AsyncSession, uuid.UUID, uuid.UUID], Awaitable[Conversation]],
) -> ConversationResult:
    """Authorize, apply one service change in a unit of work, answer the payload or the error."""
    principal = info.context.principal
    principal.require_scope(ApiKeyScope.SEND)
    conversation_id = parse_id(id, type_name="Conversation")
    if conversation_id is None:
        return NotFoundError.of("conversation", ids=[str(id)])
    conversation = await write(
        info,
        lambda session: change(session, principal.organization_id, conversation_id),
        NotFoundError,
        InvalidInputError,
    )
    if isinstance(conversation, UserError):
        return conversation  # type: ignore[return-value]
    return ConversationPayload(conversation=ConversationType.from_model(conversation))


@strawberry.type
class ConversationMutation:
    @strawberry.mutation(
        description="Assign the conversation to a member (agent); null unassigns." + SCOPE_NOTE
    )
    async def assign_conversation(
        self, info: Info[Context, None], id: strawberry.ID, member_id: strawberry.ID | None
    ) -> ConversationResult:
        member_uuid = None
        if member_id is not None:
            member_uuid = parse_id(member_id, type_name="Member")
            if member_uuid is None:
                return NotFoundError(
                    code=NotFound.code, message="member not found", ids=[str(member_id)]
                )

        async def change(session: AsyncSession, org: uuid.UUID, cid: uuid.UUID) -> Conversation:
            return await conversation_service.assign_conversation(
                session, organization_id=org, conversation_id=cid, member_id=member_uuid
            )

        return await _change(info, id, change)

    @strawberry.mutation(
        description="Set the conversation's category (null or blank clears it)." + SCOPE_NOTE
    )
    async def categorize_conversation(
        self, info: Info[Context, None], id: strawberry.ID, category: str | None
    ) -> ConversationResult:
        async def change(session: AsyncSession, org: uuid.UUID, cid: uuid.UUID) -> Conversation:
            return await conversation_service.categorize_conversation(
                session, organization_id=org, conversation_id=cid, category=category
            )

        return await _change(info, id, change)

    @strawberry.mutation(
        description=(
            "Resolve the conversation with an outcome (e.g. `sale`, `solved`, `no_answer`); "
            "sets resolvedAt and resolutionSeconds the first time." + SCOPE_NOTE
        )
    )
    async def resolve_conversation(
        self, info: Info[Context, None], id: strawberry.ID, outcome: str
    ) -> ConversationResult:
        async def change(session: AsyncSession, org: uuid.UUID, cid: uuid.UUID) -> Conversation:
            return await conversation_service.resolve_conversation(
                session, organization_id=org, conversation_id=cid, outcome=outcome
            )

        return await _change(info, id, change)

    @strawberry.mutation(
        description="Open a resolved conversation again (its resolution is cleared)." + SCOPE_NOTE
    )
    async def reopen_conversation(
        self, info: Info[Context, None], id: strawberry.ID
    ) -> ConversationResult:
        async def change(session: AsyncSession, org: uuid.UUID, cid: uuid.UUID) -> Conversation:
            return await conversation_service.reopen_conversation(
                session, organization_id=org, conversation_id=cid
            )

        return await _change(info, id, change)
