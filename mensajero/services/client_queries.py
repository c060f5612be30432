"""Reading clients and tags: filtered lists, and the relations between them."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from mensajero.models import Client, Tag
from mensajero.repositories.client_queries import ClientQueryRepository, TagQueryRepository
from mensajero.services.listing import ClientFilter, KeysetPage, Page, TagFilter, matches_nothing


async def list_clients(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    client_filter: ClientFilter,
    page: KeysetPage,
) -> Page[Client]:
    if matches_nothing(client_filter.tag_ids):
        return Page([], has_next=False, has_previous=False)
    return await ClientQueryRepository(session, organization_id).page(client_filter, page)


async def count_clients(
    session: AsyncSession, *, organization_id: uuid.UUID, client_filter: ClientFilter
) -> int:
    if matches_nothing(client_filter.tag_ids):
        return 0
    return await ClientQueryRepository(session, organization_id).count(client_filter)


async def get_clients(
    session: AsyncSession, *, organization_id: uuid.UUID, client_ids: list[uuid.UUID]
) -> dict[uuid.UUID, Client]:
    """Clients by id, soft-deleted ones included (a message still names whom it went to)."""
    return await ClientQueryRepository(session, organization_id).get_many(client_ids)


async def client_pages_for_tags(
    session: AsyncSession, *, organization_id: uuid.UUID, tag_ids: list[uuid.UUID], page: KeysetPage
) -> dict[uuid.UUID, Page[Client]]:
    return await ClientQueryRepository(session, organization_id).pages_for_tags(tag_ids, page)


async def client_counts_for_tags(
    session: AsyncSession, *, organization_id: uuid.UUID, tag_ids: list[uuid.UUID]
) -> dict[uuid.UUID, int]:
    return await ClientQueryRepository(session, organization_id).count_for_tags(tag_ids)


async def list_tags(
    session: AsyncSession, *, organization_id: uuid.UUID, tag_filter: TagFilter, page: KeysetPage
) -> Page[Tag]:
    return await TagQueryRepository(session, organization_id).page(tag_filter, page)


async def count_tags(
    session: AsyncSession, *, organization_id: uuid.UUID, tag_filter: TagFilter
) -> int:
    return await TagQueryRepository(session, organization_id).count(tag_filter)


async def tags_for_clients(
    session: AsyncSession, *, organization_id: uuid.UUID, client_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[Tag]]:
    return await TagQueryRepository(session, organization_id).for_clients(client_ids)


async def get_live_clients(
    session: AsyncSession, *, organization_id: uuid.UUID, client_ids: list[uuid.UUID]
) -> dict[uuid.UUID, Client]:
    """Clients by id that are not soft-deleted."""
    return await ClientQueryRepository(session, organization_id).get_many_live(client_ids)
