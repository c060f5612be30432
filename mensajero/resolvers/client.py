"""Queries of clients and tags."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from mensajero.schema.client import ClientConnection, ClientType, TagConnection, TagType
from mensajero.schema.context import Context
from mensajero.schema.filters import ClientFilterInput, tag_filter
from mensajero.schema.pagination import PAGE_ARGUMENTS_HELP, counter, keyset_page
from mensajero.schema.relay import parse_id
from mensajero.services import client_queries as client_service
from mensajero.services.listing import ClientFilter


@strawberry.type
class ClientQuery:
    @strawberry.field(description=f"The organization's live clients. {PAGE_ARGUMENTS_HELP}")
    async def clients(
        self,
        info: Info[Context, None],
        filter: ClientFilterInput | None = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> ClientConnection:
        organization_id = info.context.principal.organization_id
        page = keyset_page(info, first, after, last, before)
        client_filter = filter.to_filter() if filter else ClientFilter()
        async with info.context.read() as session:
            found = await client_service.list_clients(
                session, organization_id=organization_id, client_filter=client_filter, page=page
            )
        return ClientConnection.build(
            found,
            ClientType.from_model,
            counter(
                info,
                lambda session: client_service.count_clients(
                    session, organization_id=organization_id, client_filter=client_filter
                ),
            ),
        )

    @strawberry.field(description="A client by global id or UUID; null if not the caller's.")
    async def client(self, info: Info[Context, None], id: strawberry.ID) -> ClientType | None:
        client_id = parse_id(id, type_name="Client")
        if client_id is None:
            return None
        async with info.context.read() as session:
            found = await client_service.get_live_clients(
                session,
                organization_id=info.context.principal.organization_id,
                client_ids=[client_id],
            )
        return ClientType.from_model(found[client_id]) if client_id in found else None

    @strawberry.field(description=f"The organization's tags. {PAGE_ARGUMENTS_HELP}")
    async def tags(
        self,
        info: Info[Context, None],
        search: str | None = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> TagConnection:
        organization_id = info.context.principal.organization_id
        page = keyset_page(info, first, after, last, before)
        wanted = tag_filter(search)
        async with info.context.read() as session:
            found = await client_service.list_tags(
                session, organization_id=organization_id, tag_filter=wanted, page=page
            )
        return TagConnection.build(
            found,
            TagType.from_model,
            counter(
                info,
                lambda session: client_service.count_tags(
                    session, organization_id=organization_id, tag_filter=wanted
                ),
            ),
        )

    @strawberry.field(description="A tag by global id or UUID; null if not the caller's.")
    async def tag(self, info: Info[Context, None], id: strawberry.ID) -> TagType | None:
        tag_id = parse_id(id, type_name="Tag")
        if tag_id is None:
            return None
        return (await TagType.resolve_nodes(info=info, node_ids=[str(tag_id)]))[0]
