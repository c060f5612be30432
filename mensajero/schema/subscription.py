"""GraphQL types of live status subscriptions: the filter and the event payloads."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import strawberry
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from strawberry.dataloader import DataLoader
from strawberry.scalars import JSON
from strawberry.types import Info

from mensajero import models
from mensajero.events import StatusEvent
from mensajero.models import CommunicationLog, Message
from mensajero.repositories.subscription import EventKey, logs_with_messages
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
        rows = await _event_rows(info, self.source)
        if rows is None or rows[1].deleted_at is not None:
            return None
        return MessageType.from_model(rows[1])

    @strawberry.field(description="The communication log (delivery attempt), as it reads now.")
    async def log(self, info: Info[Any, Any]) -> CommunicationLogType | None:
        rows = await _event_rows(info, self.source)
        return None if rows is None else CommunicationLogType.from_model(rows[0])

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


class EventRowsLoader:
    """Loads the attempt and message behind events for every subscription of the process.

    Executions of many shared subscriptions (organizations, filters) run at once when
    a burst of events arrives; their ``message``/``log`` fields are gathered here into
    ONE statement per loop tick (a DataLoader without a cache, so every burst reads
    fresh rows) instead of two statements per event and subscription.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._loader: DataLoader[EventKey, tuple[CommunicationLog, Message] | None] = DataLoader(
            load_fn=self._load, cache=False
        )

    async def _load(self, keys: list[EventKey]) -> list[tuple[CommunicationLog, Message] | None]:
        # One statement, read in autocommit: no BEGIN/ROLLBACK round trips around it,
        # and on SQLite no BEGIN IMMEDIATE that would queue the read behind writers.
        async with self._engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            async with AsyncSession(bind=autocommit, expire_on_commit=False) as session:
                found = await logs_with_messages(session, keys)
        return [found.get(key) for key in keys]

    async def load(
        self, organization_id: UUID, log_id: UUID
    ) -> tuple[CommunicationLog, Message] | None:
        return await self._loader.load((organization_id, log_id))


async def _event_rows(
    info: Info[Any, Any], status_event: StatusEvent
) -> tuple[CommunicationLog, Message] | None:
    context = info.context
    # The caller's organization, never the event's word for it.
    organization_id = context.principal.organization_id
    state = context.request.app.state
    loader: EventRowsLoader | None = getattr(state, "event_rows_loader", None)
    if loader is None:
        loader = state.event_rows_loader = EventRowsLoader(state.engine)
    return await loader.load(organization_id, UUID(status_event.log_id))


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
