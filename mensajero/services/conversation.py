"""Conversations: reading them and working them (assign, categorize, resolve, reopen)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from mensajero.models import Conversation, ConversationStatus
from mensajero.models.base import utcnow
from mensajero.repositories.conversation import ConversationRepository
from mensajero.repositories.organization import MemberRepository
from mensajero.services.errors import InvalidInput, NotFound
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


# --- working a conversation ------------------------------------------------------------
#
# Agents assign, categorize, resolve and reopen conversations. Resolution time is
# measured from the opening, first response time is set by the state machine when a
# member's outbound message to the client is SENT (services/delivery.py).

MAX_LABEL_LENGTH = 100


async def _get_or_raise(
    session: AsyncSession, organization_id: uuid.UUID, conversation_id: uuid.UUID
) -> Conversation:
    conversation = await ConversationRepository(session, organization_id).get(conversation_id)
    if conversation is None:
        raise NotFound("conversation not found")
    return conversation


def _label(value: str | None, *, field: str, required: bool = False) -> str | None:
    cleaned = (value or "").strip()
    if not cleaned:
        if required:
            raise InvalidInput(f"{field} must not be empty", field=field)
        return None
    if len(cleaned) > MAX_LABEL_LENGTH:
        raise InvalidInput(f"{field} has at most {MAX_LABEL_LENGTH} characters", field=field)
    return cleaned


def _touch(conversation: Conversation, now: datetime | None) -> datetime:
    now = now or utcnow()
    conversation.updated_at = now
    return now


async def assign_conversation(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    conversation_id: uuid.UUID,
    member_id: uuid.UUID | None,
) -> Conversation:
    """Give the conversation to a member of the organization (``None`` unassigns it)."""
    conversation = await _get_or_raise(session, organization_id, conversation_id)
    if member_id is not None and not await MemberRepository(session, organization_id).get(
        member_id
    ):
        raise NotFound("member not found", ids=[member_id])
    conversation.assigned_member_id = member_id
    _touch(conversation, None)
    await session.flush()
    return conversation


async def categorize_conversation(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    conversation_id: uuid.UUID,
    category: str | None,
) -> Conversation:
    """Set (or clear, with ``None`` or blank) the conversation's category."""
    cleaned = _label(category, field="category")
    conversation = await _get_or_raise(session, organization_id, conversation_id)
    conversation.category = cleaned
    _touch(conversation, None)
    await session.flush()
    return conversation


async def resolve_conversation(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    conversation_id: uuid.UUID,
    outcome: str,
    now: datetime | None = None,
) -> Conversation:
    """Close the conversation with an outcome; resolving again only changes the outcome."""
    cleaned = _label(outcome, field="outcome", required=True)
    conversation = await _get_or_raise(session, organization_id, conversation_id)
    at = _touch(conversation, now)
    conversation.resolution_outcome = cleaned
    if conversation.status != ConversationStatus.RESOLVED:
        conversation.status = ConversationStatus.RESOLVED
        conversation.resolved_at = at
        conversation.resolution_seconds = max(int((at - conversation.opened_at).total_seconds()), 0)
    await session.flush()
    return conversation


async def reopen_conversation(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    conversation_id: uuid.UUID,
) -> Conversation:
    """Open a resolved conversation again; its resolution is forgotten, its first response kept."""
    conversation = await _get_or_raise(session, organization_id, conversation_id)
    if conversation.status == ConversationStatus.RESOLVED:
        conversation.status = ConversationStatus.OPEN
        conversation.resolved_at = None
        conversation.resolution_seconds = None
        conversation.resolution_outcome = None
        _touch(conversation, None)
        await session.flush()
    return conversation
