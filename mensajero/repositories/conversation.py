"""SQL for conversations."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, select

from mensajero.models import Conversation
from mensajero.repositories.base import OrganizationScopedRepository
from mensajero.repositories.pagination import fetch_page
from mensajero.services.listing import ConversationFilter, KeysetPage, Page


class ConversationRepository(OrganizationScopedRepository[Conversation]):
    model = Conversation

    def filtered(self, f: ConversationFilter) -> Select[Any]:
        statement = self.scoped()
        if f.statuses is not None:
            statement = statement.where(Conversation.status.in_(f.statuses))
        if f.client_ids is not None:
            statement = statement.where(Conversation.client_id.in_(f.client_ids))
        if f.channels is not None:
            statement = statement.where(Conversation.channel.in_(f.channels))
        if f.category is not None:
            statement = statement.where(Conversation.category == f.category)
        if f.resolution_outcome is not None:
            statement = statement.where(Conversation.resolution_outcome == f.resolution_outcome)
        return statement

    async def page(self, f: ConversationFilter, page: KeysetPage) -> Page[Conversation]:
        return await fetch_page(self.session, self.filtered(f), Conversation, page)

    async def count(self, f: ConversationFilter) -> int:
        statement = select(func.count()).select_from(self.filtered(f).subquery())
        return int((await self.session.execute(statement)).scalar_one())
