"""Reading conversations."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from mensajero.models import Conversation
from mensajero.repositories.conversation import ConversationRepository
from mensajero.services.listing import ConversationFilter, KeysetPage, Page, matches_nothing


async def list_conversations(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    conversation_filter: ConversationFilter,
    page: KeysetPage,
) -> Page[Conversation]:
    if matches_nothing(conversation_filter.client_ids):
        return Page([], has_next=False, has_previous=False)
    return await ConversationRepository(session, organization_id).page(conversation_filter, page)


async def count_conversations(
    session: AsyncSession, *, organization_id: uuid.UUID, conversation_filter: ConversationFilter
) -> int:
    if matches_nothing(conversation_filter.client_ids):
        return 0
    return await ConversationRepository(session, organization_id).count(conversation_filter)
