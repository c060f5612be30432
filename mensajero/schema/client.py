"""GraphQL types of clients and tags.

Relation fields (a client's tags, messages and logs; a tag's clients) are
added next to these scalar fields and resolved through DataLoaders.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

import strawberry
from strawberry import relay
from strawberry.scalars import JSON
from strawberry.types import Info

from mensajero.models import Client, Tag
from mensajero.schema.relay import resolve_scoped_nodes


@strawberry.type(name="Tag")
class TagType(relay.Node):
    row_id: relay.NodeID[UUID]
    uuid: UUID
    name: str
    color: str | None
    created_at: datetime
    updated_at: datetime

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
        return await resolve_scoped_nodes(info, Client, node_ids, cls.from_model, required=required)
