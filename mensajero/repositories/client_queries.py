"""SQL for reading clients and tags: filtered lists and the relations between them."""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import ColumnElement, Select, func, or_, select

from mensajero.models import Client, ClientTag, Tag
from mensajero.repositories.base import OrganizationScopedRepository
from mensajero.repositories.pagination import fetch_page, fetch_pages_per_parent
from mensajero.services.listing import ClientFilter, KeysetPage, Page, TagFilter, escape_like


def _contains(column: Any, value: str) -> ColumnElement[bool]:
    return column.ilike(f"%{escape_like(value)}%", escape="\\")


def _present(column: Any) -> ColumnElement[bool]:
    return (column.is_not(None)) & (column != "")


class ClientQueryRepository(OrganizationScopedRepository[Client]):
    """Reads of live (not soft-deleted) clients."""

    model = Client

    def live(self, *columns: Any) -> Select[Any]:
        return self.scoped(*columns).where(Client.deleted_at.is_(None))

    def filtered(self, f: ClientFilter) -> Select[Any]:
        statement = self.live()
        if f.search:
            statement = statement.where(
                or_(
                    _contains(Client.name, f.search),
                    _contains(Client.email, f.search),
                    _contains(Client.phone, f.search),
                    _contains(Client.phone_e164, f.search),
                )
            )
        if f.tag_ids is not None:
            wanted = list(dict.fromkeys(f.tag_ids))
            carriers = select(ClientTag.client_id).where(
                ClientTag.organization_id == self.organization_id, ClientTag.tag_id.in_(wanted)
            )
            if f.all_tags:
                carriers = carriers.group_by(ClientTag.client_id).having(
                    func.count(func.distinct(ClientTag.tag_id)) == len(wanted)
                )
            statement = statement.where(Client.id.in_(carriers))
        if f.has_phone is not None:
            has_phone = _present(Client.phone)
            statement = statement.where(has_phone if f.has_phone else ~has_phone)
        if f.has_email is not None:
            has_email = _present(Client.email)
            statement = statement.where(has_email if f.has_email else ~has_email)
        return statement

    async def page(self, f: ClientFilter, page: KeysetPage) -> Page[Client]:
        return await fetch_page(self.session, self.filtered(f), Client, page)

    async def count(self, f: ClientFilter) -> int:
        statement = select(func.count()).select_from(self.filtered(f).subquery())
        return int((await self.session.execute(statement)).scalar_one())

    async def get_many_live(self, ids: list[uuid.UUID]) -> dict[uuid.UUID, Client]:
        result = await self.session.execute(self.live().where(Client.id.in_(ids)))
        return {client.id: client for client in result.scalars()}

    async def pages_for_tags(
        self, tag_ids: list[uuid.UUID], page: KeysetPage
    ) -> dict[uuid.UUID, Page[Client]]:
        statement = self.live().join(ClientTag, ClientTag.client_id == Client.id)
        return await fetch_pages_per_parent(
            self.session, statement, Client, ClientTag.tag_id, tag_ids, page
        )

    async def count_for_tags(self, tag_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
        statement = (
            self.live(ClientTag.tag_id, func.count())
            .select_from(Client)
            .join(ClientTag, ClientTag.client_id == Client.id)
            .where(ClientTag.tag_id.in_(tag_ids))
            .group_by(ClientTag.tag_id)
        )
        counts = {key: count for key, count in await self.session.execute(statement)}
        return {tag_id: counts.get(tag_id, 0) for tag_id in tag_ids}


class TagQueryRepository(OrganizationScopedRepository[Tag]):
    model = Tag

    def filtered(self, f: TagFilter) -> Select[Any]:
        statement = self.scoped()
        if f.search:
            statement = statement.where(_contains(Tag.name, f.search))
        return statement

    async def page(self, f: TagFilter, page: KeysetPage) -> Page[Tag]:
        return await fetch_page(self.session, self.filtered(f), Tag, page)

    async def count(self, f: TagFilter) -> int:
        statement = select(func.count()).select_from(self.filtered(f).subquery())
        return int((await self.session.execute(statement)).scalar_one())

    async def for_clients(self, client_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Tag]]:
        """Each client's tags, by name."""
        statement = (
            self.scoped(ClientTag.client_id, Tag)
            .join(ClientTag, ClientTag.tag_id == Tag.id)
            .where(ClientTag.client_id.in_(client_ids))
            .order_by(Tag.name, Tag.id)
        )
        grouped: dict[uuid.UUID, list[Tag]] = defaultdict(list)
        for client_id, tag in await self.session.execute(statement):
            grouped[client_id].append(tag)
        return grouped
