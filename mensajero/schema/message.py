"""GraphQL types of messages, their attempts (communication logs) and timelines."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

import strawberry
from strawberry import relay
from strawberry.scalars import JSON
from strawberry.types import Info

from mensajero import models
from mensajero.models import CommunicationLog, LogEvent, Message
from mensajero.schema import loaders
from mensajero.schema.campaign import CampaignType
from mensajero.schema.enums import (
    Channel,
    CommunicationType,
    ContentType,
    Direction,
    MessageStatus,
    TimelineEventType,
)
from mensajero.schema.pagination import Connection
from mensajero.schema.relay import parse_uuid

if TYPE_CHECKING:
    from mensajero.schema.client import ClientType

ClientRef = Annotated["ClientType", strawberry.lazy("mensajero.schema.client")]


def _client(info: Info[Any, Any], client_id: UUID | None) -> Any:
    from mensajero.schema.client import ClientType

    return loaders.resolve_now(loaders.client(info), client_id, ClientType.from_model)


def _campaign(info: Info[Any, Any], campaign_id: UUID | None) -> Any:
    return loaders.resolve_now(loaders.campaign(info), campaign_id, CampaignType.from_model)


@strawberry.type(name="TimelineEvent", description="One entry of an attempt's timeline.")
class TimelineEvent:
    event: TimelineEventType
    timestamp: datetime
    metadata: JSON | None

    @classmethod
    def from_model(cls, event: LogEvent) -> TimelineEvent:
        return cls(
            event=models.TimelineEventType(event.event),
            timestamp=event.occurred_at,
            metadata=event.metadata_,
        )


@strawberry.type(name="CommunicationError")
class CommunicationError:
    code: str | None
    message: str | None
    timestamp: datetime | None


@strawberry.type(name="CommunicationResponse", description="The recipient's reply.")
class CommunicationResponse:
    text: str
    received_at: datetime | None


@strawberry.type(
    name="CommunicationLog",
    description="One delivery attempt of a message on one channel through one provider.",
)
class CommunicationLogType(relay.Node):
    row_id: relay.NodeID[UUID]
    uuid: UUID = strawberry.field(description="The plain UUID the REST routes use.")
    channel: Channel
    type: CommunicationType
    status: MessageStatus
    direction: Direction
    attempt_number: int
    recipient: str
    body_override: str | None = strawberry.field(
        description="This attempt's own text (a resend with a custom message)."
    )
    provider: str | None
    external_id: str | None = strawberry.field(description="The provider's id of the attempt.")
    sent_at: datetime | None
    delivered_at: datetime | None
    read_at: datetime | None
    opened_at: datetime | None
    clicked_at: datetime | None
    failed_at: datetime | None
    error: CommunicationError | None
    response: CommunicationResponse | None
    provider_metadata: JSON
    created_at: datetime
    updated_at: datetime
    message_id: strawberry.Private[UUID]
    client_id: strawberry.Private[UUID | None]
    campaign_id: strawberry.Private[UUID | None]

    @strawberry.field(description="Created, queued, sent, delivered, opened, ... in order.")
    async def timeline(self, info: Info[Any, Any]) -> list[TimelineEvent]:
        events = await loaders.timeline_by_log(info).load(self.row_id)
        return [TimelineEvent.from_model(event) for event in events]

    @strawberry.field
    async def message(self, info: Info[Any, Any]) -> MessageType | None:
        row = await loaders.message(info).load(self.message_id)
        return None if row is None or row.deleted_at is not None else MessageType.from_model(row)

    # Plain (not async) resolvers: they answer from the loader's cache when the
    # connection prefetched the relation, and hand back an awaitable otherwise.
    @strawberry.field
    def client(self, info: Info[Any, Any]) -> ClientRef | None:
        return _client(info, self.client_id)  # type: ignore[no-any-return]

    @strawberry.field
    def campaign(self, info: Info[Any, Any]) -> CampaignType | None:
        return _campaign(info, self.campaign_id)  # type: ignore[no-any-return]

    @classmethod
    def from_model(cls, log: CommunicationLog) -> CommunicationLogType:
        error = None
        if log.error_code is not None or log.error_message is not None:
            error = CommunicationError(
                code=log.error_code, message=log.error_message, timestamp=log.failed_at
            )
        response = None
        if log.response_text is not None:
            response = CommunicationResponse(
                text=log.response_text, received_at=log.response_received_at
            )
        return cls(
            row_id=log.id,
            uuid=log.id,
            channel=models.Channel(log.channel),
            type=models.CommunicationType(log.communication_type),
            status=models.MessageStatus(log.status),
            direction=models.Direction(log.direction),
            attempt_number=log.attempt_number,
            recipient=log.recipient,
            body_override=log.body_override,
            provider=log.provider,
            external_id=log.external_id,
            sent_at=log.sent_at,
            delivered_at=log.delivered_at,
            read_at=log.read_at,
            opened_at=log.opened_at,
            clicked_at=log.clicked_at,
            failed_at=log.failed_at,
            error=error,
            response=response,
            provider_metadata=log.provider_metadata,
            created_at=log.created_at,
            updated_at=log.updated_at,
            message_id=log.message_id,
            client_id=log.client_id,
            campaign_id=log.campaign_id,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info[Any, Any], node_ids: Iterable[str], required: bool = False
    ) -> list[CommunicationLogType | None]:
        ids = [parse_uuid(node_id) for node_id in node_ids]
        loader = loaders.log(info)
        rows = await loader.load_many([node_id for node_id in ids if node_id is not None])
        found = {row.id: row for row in rows if row is not None}
        return [cls.from_model(found[i]) if i in found else None for i in ids]


@strawberry.type(name="Message", description="One logical communication to one client.")
class MessageType(relay.Node):
    row_id: relay.NodeID[UUID]
    uuid: UUID = strawberry.field(description="The plain UUID the REST routes use.")
    body: str = strawberry.field(description="The text (sendme123's `content`).")
    subject: str | None
    html: str | None
    template_id: str | None
    content_type: ContentType
    channel: Channel = strawberry.field(description="The channel (sendme123's `messageType`).")
    type: CommunicationType = strawberry.field(description="What it is for (Coordinalo's type).")
    direction: Direction
    status: MessageStatus = strawberry.field(description="The status of its latest attempt.")
    recipient: str
    country_code: str | None = strawberry.field(description="Calling code of a phone recipient.")
    provider: str | None
    queue_id: str | None = strawberry.field(description="The send batch it went out in.")
    metadata: JSON = strawberry.field(description="Business metadata: sessionId, ventaId, ...")
    segments: int
    cost: int
    error_message: str | None
    scheduled_at: datetime | None
    sent_at: datetime | None
    created_at: datetime
    updated_at: datetime
    client_id: strawberry.Private[UUID | None]
    campaign_id: strawberry.Private[UUID | None]

    # Plain (not async) resolvers: they answer from the loader's cache when the
    # connection prefetched the relation, and hand back an awaitable otherwise.
    @strawberry.field
    def client(self, info: Info[Any, Any]) -> ClientRef | None:
        return _client(info, self.client_id)  # type: ignore[no-any-return]

    @strawberry.field
    def campaign(self, info: Info[Any, Any]) -> CampaignType | None:
        return _campaign(info, self.campaign_id)  # type: ignore[no-any-return]

    @strawberry.field(description="Every delivery attempt, first attempt first.")
    async def logs(self, info: Info[Any, Any]) -> list[CommunicationLogType]:
        rows = await loaders.logs_by_message(info).load(self.row_id)
        return [CommunicationLogType.from_model(row) for row in rows]

    @classmethod
    def from_model(cls, message: Message) -> MessageType:
        return cls(
            row_id=message.id,
            uuid=message.id,
            body=message.body,
            subject=message.subject,
            html=message.html,
            template_id=message.template_id,
            content_type=models.ContentType(message.content_type),
            channel=models.Channel(message.channel),
            type=models.CommunicationType(message.communication_type),
            direction=models.Direction(message.direction),
            status=models.MessageStatus(message.status),
            recipient=message.recipient,
            country_code=message.country_code,
            provider=message.provider,
            queue_id=message.queue_id,
            metadata=message.metadata_,
            segments=message.segments,
            cost=message.cost,
            error_message=message.error_message,
            scheduled_at=message.scheduled_at,
            sent_at=message.sent_at,
            created_at=message.created_at,
            updated_at=message.updated_at,
            client_id=message.client_id,
            campaign_id=message.campaign_id,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info[Any, Any], node_ids: Iterable[str], required: bool = False
    ) -> list[MessageType | None]:
        """Messages by id; soft-deleted and other organizations' messages are null."""
        ids = [parse_uuid(node_id) for node_id in node_ids]
        rows = await loaders.message(info).load_many([i for i in ids if i is not None])
        found = {row.id: row for row in rows if row is not None and row.deleted_at is None}
        return [cls.from_model(found[i]) if i in found else None for i in ids]


@strawberry.type(name="MessageConnection")
class MessageConnection(Connection[MessageType]):
    pass


@strawberry.type(name="CommunicationSummary", description="Coordinalo's summary of a log list.")
class CommunicationSummaryType:
    total: int
    delivered: int = strawberry.field(
        description="Reached the recipient (DELIVERED, READ, RECEIVED, or a delivery time)."
    )
    opened: int = strawberry.field(description="Have an opened time (e-mail).")
    read: int = strawberry.field(description="Have a read time or READ status.")
    bounced: int = strawberry.field(description="Status BOUNCED.")
    failed: int = strawberry.field(description="Status FAILED, UNDELIVERED or CANCELED.")


@strawberry.type(name="CommunicationLogConnection")
class CommunicationLogConnection(Connection[CommunicationLogType]):
    summary_loader: strawberry.Private[Any] = None

    @strawberry.field(description="Totals of the whole filtered set (computed only if asked).")
    async def summary(self) -> CommunicationSummaryType:
        totals = await self.summary_loader()
        return CommunicationSummaryType(
            total=totals.total,
            delivered=totals.delivered,
            opened=totals.opened,
            read=totals.read,
            bounced=totals.bounced,
            failed=totals.failed,
        )
