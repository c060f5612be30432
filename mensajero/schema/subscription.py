"""GraphQL types of live status subscriptions: the filter and the event payloads."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from mensajero import models
from mensajero.events import StatusEvent
from mensajero.schema import loaders
from mensajero.schema.enums import Channel, MessageStatus, TimelineEventType
from mensajero.schema.message import CommunicationLogType, MessageType


@strawberry.input(description="Narrow a subscription; every field given must match.")
class MessageEventFilter:
    queue_id: str | None = strawberry.field(
        default=None, description="The batch id sendSmsByTags answered."
    )
    campaign_id: strawberry.ID | None = strawberry.field(
        default=None, description="A Campaign global id or plain UUID."
    )
    client_id: strawberry.ID | None = strawberry.field(
        default=None, description="A Client global id or plain UUID."
    )
    message_id: strawberry.ID | None = strawberry.field(
        default=None, description="A Message global id or plain UUID."
    )
    channel: Channel | None = None
    statuses: list[MessageStatus] | None = strawberry.field(
        default=None, description="Only events whose (new) status is one of these."
    )


@strawberry.input(description="Narrow a communicationEvents subscription.")
class CommunicationEventFilter(MessageEventFilter):
    events: list[TimelineEventType] | None = strawberry.field(
        default=None, description="Only these timeline events (opened, clicked, response...)."
    )


@strawberry.type
class _EventFields:
    message_id: UUID = strawberry.field(description="The message's plain UUID.")
    log_id: UUID = strawberry.field(description="The communication log's (attempt's) plain UUID.")
    channel: Channel
    queue_id: str | None
    campaign_id: UUID | None
    client_id: UUID | None
    occurred_at: datetime = strawberry.field(description="When it happened (UTC).")
    metadata: JSON = strawberry.field(description="Details of the event (provider data...).")
    # The bus event itself, for the relation fields (message, log) loaded on demand.
    source: strawberry.Private[StatusEvent]

    @strawberry.field(description="The message, as it reads now (null if deleted).")
    async def message(self, info: Info[Any, Any]) -> MessageType | None:
        row = await loaders.message(info).load(UUID(self.source.message_id))
        return None if row is None or row.deleted_at is not None else MessageType.from_model(row)

    @strawberry.field(description="The communication log (delivery attempt), as it reads now.")
    async def log(self, info: Info[Any, Any]) -> CommunicationLogType | None:
        row = await loaders.log(info).load(UUID(self.source.log_id))
        return None if row is None else CommunicationLogType.from_model(row)

    @staticmethod
    def _common(status_event: StatusEvent) -> dict[str, object]:
        return {
            "message_id": UUID(status_event.message_id),
            "log_id": UUID(status_event.log_id),
            "channel": models.Channel(status_event.channel),
            "queue_id": status_event.queue_id,
            "campaign_id": _uuid_or_none(status_event.campaign_id),
            "client_id": _uuid_or_none(status_event.client_id),
            "occurred_at": datetime.fromisoformat(status_event.occurred_at),
            "metadata": status_event.metadata,
            "source": status_event,
        }


def _uuid_or_none(value: str | None) -> UUID | None:
    return None if value is None else UUID(value)


@strawberry.type(description="A communication log (delivery attempt) changed status.")
class MessageStatusChange(_EventFields):
    previous_status: MessageStatus | None = strawberry.field(
        description="Null for the attempt's first status."
    )
    status: MessageStatus
    event: TimelineEventType = strawberry.field(description="The timeline event recorded.")

    @classmethod
    def from_event(cls, status_event: StatusEvent) -> MessageStatusChange:
        previous = status_event.previous_status
        return cls(
            previous_status=None if previous is None else models.MessageStatus(previous),
            status=models.MessageStatus(status_event.status),
            event=models.TimelineEventType(status_event.event),
            **cls._common(status_event),  # type: ignore[arg-type]
        )


@strawberry.type(
    description="A timeline event that is not a status change: opened, clicked, response."
)
class CommunicationEvent(_EventFields):
    event: TimelineEventType
    status: MessageStatus = strawberry.field(description="The attempt's status (unchanged).")

    @classmethod
    def from_event(cls, status_event: StatusEvent) -> CommunicationEvent:
        return cls(
            event=models.TimelineEventType(status_event.event),
            status=models.MessageStatus(status_event.status),
            **cls._common(status_event),  # type: ignore[arg-type]
        )
