"""Live subscriptions: every status change of every channel, pushed as it commits."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from typing import TypeVar

import strawberry
from strawberry.types import Info

from mensajero.events import EventFilter, EventHub, EventSubscription, StatusEvent
from mensajero.models import ApiKeyScope
from mensajero.schema.context import Context
from mensajero.schema.relay import parse_id
from mensajero.schema.subscription import (
    CommunicationEvent,
    CommunicationEventFilter,
    MessageEventFilter,
    MessageStatusChange,
)
from mensajero.services.errors import InvalidInput

PayloadT = TypeVar("PayloadT")


def _id_or_invalid(value: strawberry.ID | None, *, type_name: str, field: str) -> str | None:
    if value is None:
        return None
    parsed = parse_id(value, type_name=type_name)
    if parsed is None:
        raise InvalidInput(f"{field} is not a {type_name} id", field=f"filter.{field}")
    return str(parsed)


def event_filter_from_input(
    given: MessageEventFilter | None, *, status_changes: bool
) -> EventFilter:
    if given is None:
        return EventFilter(status_changes=status_changes)
    events = getattr(given, "events", None)
    return EventFilter(
        queue_id=given.queue_id,
        campaign_id=_id_or_invalid(given.campaign_id, type_name="Campaign", field="campaignId"),
        client_id=_id_or_invalid(given.client_id, type_name="Client", field="clientId"),
        message_id=_id_or_invalid(given.message_id, type_name="Message", field="messageId"),
        channel=None if given.channel is None else str(given.channel),
        statuses=None if given.statuses is None else frozenset(map(str, given.statuses)),
        events=None if events is None else frozenset(map(str, events)),
        status_changes=status_changes,
    )


def _open_stream(
    info: Info[Context, None],
    event_filter: EventFilter,
    to_payload: Callable[[StatusEvent], PayloadT],
) -> AsyncGenerator[PayloadT, None]:
    """Authorize and subscribe now (errors reach the caller as the operation's errors,
    and events committed from here on are caught), then stream lazily."""
    principal = info.context.principal
    principal.require_scope(ApiKeyScope.READ)
    hub: EventHub = info.context.request.app.state.event_hub
    # Scoped by the caller's organization here and by channel in the hub: a filter
    # naming another organization's ids simply never matches.
    subscription = hub.subscribe(principal.organization_id, event_filter)
    return _stream(info.context, subscription, to_payload)


async def _stream(
    context: Context,
    subscription: EventSubscription,
    to_payload: Callable[[StatusEvent], PayloadT],
) -> AsyncGenerator[PayloadT, None]:
    async with subscription:
        async for status_event in subscription:
            yield to_payload(status_event)
            # The event's selection has been executed: release its session and
            # DataLoaders, so a long-lived subscription holds no connection between
            # events and the next event reads fresh rows.
            await context.end_event()


@strawberry.type
class MessageSubscription:
    @strawberry.subscription(
        description=(
            "Every status change of the organization's communication logs, live "
            "(QUEUED, SENDING, SENT, DELIVERED, READ, FAILED...), as each commits."
        )
    )
    async def message_status_changed(
        self, info: Info[Context, None], filter: MessageEventFilter | None = None
    ) -> AsyncGenerator[MessageStatusChange, None]:
        event_filter = event_filter_from_input(filter, status_changes=True)
        return _open_stream(info, event_filter, MessageStatusChange.from_event)

    @strawberry.subscription(
        description="Timeline events that are not status changes: opened, clicked, response."
    )
    async def communication_events(
        self, info: Info[Context, None], filter: CommunicationEventFilter | None = None
    ) -> AsyncGenerator[CommunicationEvent, None]:
        event_filter = event_filter_from_input(filter, status_changes=False)
        return _open_stream(info, event_filter, CommunicationEvent.from_event)
