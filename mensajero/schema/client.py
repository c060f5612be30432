"""GraphQL types of clients and tags.

Relation fields (a client's tags, messages and logs; a tag's clients) are
added next to these scalar fields and resolved through DataLoaders.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

import strawberry
from strawberry import relay
from strawberry.scalars import JSON
from strawberry.types import Info

from mensajero.models import Client, Tag
from mensajero.schema import loaders
from mensajero.schema.pagination import Connection, keyset_page
from mensajero.schema.relay import resolve_scoped_nodes
from mensajero.services import message as message_service
from mensajero.services.errors import NotFound
from mensajero.services.listing import LogFilter, LogSummary

if TYPE_CHECKING:
    from mensajero.schema.message import CommunicationLogConnection, MessageConnection
    from mensajero.schema.report import ClientCommunicationSummary


@strawberry.type(name="Tag")
class TagType(relay.Node):
    row_id: relay.NodeID[UUID]
    uuid: UUID
    name: str
    color: str | None
    created_at: datetime
    updated_at: datetime

    @strawberry.field(description="How many live clients carry this tag.")
    async def client_count(self, info: Info[Any, Any]) -> int:
        return await loaders.client_count_by_tag(info).load(self.row_id)

    @strawberry.field(description="The live clients carrying this tag, newest first.")
    async def clients(
        self,
        info: Info[Any, Any],
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> ClientConnection:
        page = keyset_page(info, first, after, last, before)
        found = await loaders.clients_by_tag(info, page).load(self.row_id)
        count_loader = loaders.client_count_by_tag(info)
        return ClientConnection.build(
            found, ClientType.from_model, lambda: count_loader.load(self.row_id)
        )

    @classmethod
    def from_model(cls, tag: Tag) -> TagType:
        return cls(
            row_id=tag.id,
            uuid=tag.id,
            name=tag.name,
            color=tag.color,
            created_at=tag.created_at,
            updated_at=tag.updated_at,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info[Any, Any], node_ids: Iterable[str], required: bool = False
    ) -> list[TagType | None]:
        return await resolve_scoped_nodes(info, Tag, node_ids, cls.from_model, required=required)


@strawberry.type(name="Client")
class ClientType(relay.Node):
    row_id: relay.NodeID[UUID]
    uuid: UUID
    name: str
    email: str | None
    phone: str | None = strawberry.field(description="The phone as it was given.")
    phone_e164: str | None = strawberry.field(description="The phone normalized to E.164.")
    country: str | None = strawberry.field(description="ISO 3166-1 alpha-2.")
    metadata: JSON
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None

    @strawberry.field(description="The client's tags, by name.")
    async def tags(self, info: Info[Any, Any]) -> list[TagType]:
        return [
            TagType.from_model(tag) for tag in await loaders.tags_by_client(info).load(self.row_id)
        ]

    @strawberry.field(description="Messages to (and replies from) this client, newest first.")
    async def messages(
        self,
        info: Info[Any, Any],
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Annotated[MessageConnection, strawberry.lazy("mensajero.schema.message")]:
        from mensajero.schema.message import MessageConnection, MessageType

        page = keyset_page(info, first, after, last, before)
        found = await loaders.messages_by_client(info, page).load(self.row_id)
        count_loader = loaders.message_count_by_client(info)
        return MessageConnection.build(
            found, MessageType.from_model, lambda: count_loader.load(self.row_id)
        )

    @strawberry.field(description="Delivery attempts to this client, newest first.")
    async def communication_logs(
        self,
        info: Info[Any, Any],
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Annotated[CommunicationLogConnection, strawberry.lazy("mensajero.schema.message")]:
        from mensajero.schema.message import CommunicationLogConnection, CommunicationLogType

        page = keyset_page(info, first, after, last, before)
        found = await loaders.logs_by_client(info, page).load(self.row_id)
        count_loader = loaders.log_count_by_client(info)
        client_id = self.row_id

        async def summary() -> LogSummary:
            # One query per client whose summary is asked for: a detail view's field.
            async with info.context.read() as session:
                return await message_service.summarize_logs(
                    session,
                    organization_id=info.context.principal.organization_id,
                    log_filter=LogFilter(client_ids=(client_id,)),
                )

        return CommunicationLogConnection.build(
            found,
            CommunicationLogType.from_model,
            lambda: count_loader.load(client_id),
            summary_loader=summary,
        )

    @strawberry.field(
        description="Attempts to this client by channel and type, and their rates (all time)."
    )
    async def communication_summary(
        self, info: Info[Any, Any]
    ) -> Annotated[ClientCommunicationSummary, strawberry.lazy("mensajero.schema.report")] | None:
        from mensajero.schema.report import ClientCommunicationSummary
        from mensajero.services import report as report_service

        try:
            async with info.context.read() as session:
                history = await report_service.client_communication_history(
                    session,
                    organization_id=info.context.principal.organization_id,
                    client_id=self.row_id,
                    recent_limit=0,
                )
        except NotFound:  # a soft-deleted client has no live summary
            return None
        return ClientCommunicationSummary.of(history)

    @classmethod
    def from_model(cls, client: Client) -> ClientType:
        return cls(
            row_id=client.id,
            uuid=client.id,
            name=client.name,
            email=client.email,
            phone=client.phone,
            phone_e164=client.phone_e164,
            country=client.country,
            metadata=client.metadata_,
            created_at=client.created_at,
            updated_at=client.updated_at,
            deleted_at=client.deleted_at,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info[Any, Any], node_ids: Iterable[str], required: bool = False
    ) -> list[ClientType | None]:
        # A soft-deleted client is gone for node() exactly as for client(id).
        clients = await resolve_scoped_nodes(info, Client, node_ids, lambda client: client)
        nodes = [
            None if client is None or client.deleted_at is not None else cls.from_model(client)
            for client in clients
        ]
        if required and any(node is None for node in nodes):
            raise ValueError("some nodes were not found")
        return nodes


@strawberry.type(name="ClientConnection")
class ClientConnection(Connection[ClientType]):
    pass


@strawberry.type(name="TagConnection")
class TagConnection(Connection[TagType]):
    pass
