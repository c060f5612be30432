"""GraphQL type of conversations (opened by an inbound reply)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

import strawberry
from strawberry import relay
from strawberry.types import Info

from mensajero import models
from mensajero.models import Conversation
from mensajero.schema import loaders
from mensajero.schema.common import InvalidInputError, NotFoundError
from mensajero.schema.enums import Channel, ConversationStatus
from mensajero.schema.pagination import Connection
from mensajero.schema.relay import resolve_scoped_nodes

if TYPE_CHECKING:
    from mensajero.schema.client import ClientType


@strawberry.type(name="Conversation")
class ConversationType(relay.Node):
    row_id: relay.NodeID[UUID]
    uuid: UUID = strawberry.field(description="The plain UUID the REST routes use.")
    channel: Channel
    status: ConversationStatus
    category: str | None
    resolution_outcome: str | None
    opened_at: datetime
    last_message_at: datetime
    first_response_at: datetime | None
    first_response_seconds: int | None
    resolved_at: datetime | None
    resolution_seconds: int | None
    created_at: datetime
    updated_at: datetime
    assigned_member_id: UUID | None = strawberry.field(
        description="The member (agent) working the conversation."
    )
    client_id: strawberry.Private[UUID]

    @strawberry.field
    async def client(
        self, info: Info[Any, Any]
    ) -> Annotated[ClientType, strawberry.lazy("mensajero.schema.client")] | None:
        from mensajero.schema.client import ClientType

        row = await loaders.client(info).load(self.client_id)
        return None if row is None else ClientType.from_model(row)

    @classmethod
    def from_model(cls, conversation: Conversation) -> ConversationType:
        return cls(
            row_id=conversation.id,
            uuid=conversation.id,
            channel=models.Channel(conversation.channel),
            status=models.ConversationStatus(conversation.status),
            category=conversation.category,
            resolution_outcome=conversation.resolution_outcome,
            opened_at=conversation.opened_at,
            last_message_at=conversation.last_message_at,
            first_response_at=conversation.first_response_at,
            first_response_seconds=conversation.first_response_seconds,
            resolved_at=conversation.resolved_at,
            resolution_seconds=conversation.resolution_seconds,
            created_at=conversation.created_at,
            updated_at=conversation.updated_at,
            assigned_member_id=conversation.assigned_member_id,
            client_id=conversation.client_id,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info[Any, Any], node_ids: Iterable[str], required: bool = False
    ) -> list[ConversationType | None]:
        return await resolve_scoped_nodes(
            info, Conversation, node_ids, cls.from_model, required=required
        )


@strawberry.type(name="ConversationConnection")
class ConversationConnection(Connection[ConversationType]):
    pass


@strawberry.type(description="The conversation after the change.")
class ConversationPayload:
    conversation: ConversationType


ConversationResult = Annotated[
    ConversationPayload | NotFoundError | InvalidInputError,
    strawberry.union("ConversationResult"),
]
