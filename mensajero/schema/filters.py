"""Filter inputs of the list queries, and their conversion to the services' filters.

Every id filter accepts Relay global ids or the plain UUIDs of the REST routes.
Ids that don't parse (or are global ids of another type) are dropped; if only
such ids were given the filter matches nothing, never everything. Ids of
another organization simply match no row. List filters also accept a single
value (GraphQL input coercion): ``status: DELIVERED``.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import TypeVar

import strawberry

from mensajero.schema.enums import (
    Channel,
    CommunicationType,
    ContentType,
    ConversationStatus,
    Direction,
    MessageStatus,
)
from mensajero.schema.relay import parse_id
from mensajero.services.listing import (
    CampaignFilter,
    ClientFilter,
    ConversationFilter,
    LogFilter,
    MessageFilter,
    TagFilter,
    TimeRange,
)

_MICROSECOND = timedelta(microseconds=1)
T = TypeVar("T")


def ids(values: Sequence[strawberry.ID] | None, type_name: str) -> tuple[uuid.UUID, ...] | None:
    if values is None:
        return None
    parsed = (parse_id(str(value), type_name=type_name) for value in values)
    return tuple(dict.fromkeys(value for value in parsed if value is not None))


def values(members: Sequence[enum.Enum] | None) -> tuple[str, ...] | None:
    if members is None:
        return None
    return tuple(dict.fromkeys(str(member.value) for member in members))


def _both(first: tuple[T, ...] | None, second: tuple[T, ...] | None) -> tuple[T, ...] | None:
    """Two spellings of one filter given together must both hold."""
    if first is None or second is None:
        return first if second is None else second
    return tuple(value for value in first if value in set(second))


def time_range(start: datetime | None, end: datetime | None) -> TimeRange | None:
    if start is None and end is None:
        return None
    return TimeRange(start, end)


@strawberry.input(description="Filters of sendme123's GET /api/messages, plus ours.")
class MessageFilterInput:
    content: str | None = strawberry.field(
        default=None, description="The body contains this text (any case)."
    )
    content_type: ContentType | None = None
    status: list[MessageStatus] | None = None
    sent_at: datetime | None = strawberry.field(
        default=None, description="Sent within this second."
    )
    recipient: str | None = strawberry.field(
        default=None, description="E.164 phone (with or without +) or e-mail address."
    )
    country_code: str | None = strawberry.field(
        default=None, description='Calling code of the recipient: "57" or "+57".'
    )
    channel: list[Channel] | None = None
    message_type: list[Channel] | None = strawberry.field(
        default=None, description="sendme123's name for channel."
    )
    type: list[CommunicationType] | None = None
    direction: Direction | None = None
    provider_id: str | None = strawberry.field(
        default=None, description='The provider: "twilio", "resend", "evolution".'
    )
    campaign_id: list[strawberry.ID] | None = None
    client_id: list[strawberry.ID] | None = None
    contact_id: list[strawberry.ID] | None = strawberry.field(
        default=None, description="sendme123's name for clientId."
    )
    queue_id: str | None = strawberry.field(default=None, description="The send batch.")
    start_date: date | None = strawberry.field(
        default=None, description="Created on or after this day (organization's timezone)."
    )
    end_date: date | None = strawberry.field(
        default=None, description="Created on or before this day (organization's timezone)."
    )
    created_after: datetime | None = strawberry.field(
        default=None, description="Created at or after this instant."
    )
    created_before: datetime | None = strawberry.field(
        default=None, description="Created before this instant."
    )

    def to_filter(self) -> MessageFilter:
        client_ids = _both(ids(self.client_id, "Client"), ids(self.contact_id, "Client"))
        return MessageFilter(
            content=self.content or None,
            content_type=self.content_type.value if self.content_type else None,
            statuses=values(self.status),
            sent_at=self.sent_at,
            recipient=self.recipient or None,
            country_code=self.country_code or None,
            channels=_both(values(self.channel), values(self.message_type)),
            communication_types=values(self.type),
            direction=self.direction.value if self.direction else None,
            provider=self.provider_id or None,
            campaign_ids=ids(self.campaign_id, "Campaign"),
            client_ids=client_ids,
            queue_id=self.queue_id or None,
            start_date=self.start_date,
            end_date=self.end_date,
            created=time_range(self.created_after, self.created_before),
        )


@strawberry.input(description="Filters of Coordinalo's email-logs and whatsapp-logs, plus channel.")
class CommunicationLogFilterInput:
    from_: datetime | None = strawberry.field(
        default=None, name="from", description="Created at or after this instant."
    )
    to: datetime | None = strawberry.field(
        default=None, description="Created at or before this instant."
    )
    client_id: list[strawberry.ID] | None = None
    type: list[CommunicationType] | None = None
    status: list[MessageStatus] | None = None
    campaign_id: list[strawberry.ID] | None = None
    channel: list[Channel] | None = None
    message_id: list[strawberry.ID] | None = None

    def to_filter(self) -> LogFilter:
        # Coordinalo's "to" is inclusive.
        end = None if self.to is None else self.to + _MICROSECOND
        return LogFilter(
            created=time_range(self.from_, end),
            client_ids=ids(self.client_id, "Client"),
            communication_types=values(self.type),
            statuses=values(self.status),
            campaign_ids=ids(self.campaign_id, "Campaign"),
            channels=values(self.channel),
            message_ids=ids(self.message_id, "Message"),
        )


@strawberry.enum(description="How a client must match several tags.")
class TagMatch(enum.Enum):
    ANY = "any"
    ALL = "all"


@strawberry.input
class ClientFilterInput:
    search: str | None = strawberry.field(
        default=None, description="Contained in the name, e-mail or phone (any case)."
    )
    tag_ids: list[strawberry.ID] | None = None
    tag_match: TagMatch = strawberry.field(
        default=TagMatch.ANY, description="ANY: carries at least one of tagIds; ALL: every one."
    )
    has_phone: bool | None = None
    has_email: bool | None = None

    def to_filter(self) -> ClientFilter:
        return ClientFilter(
            search=self.search or None,
            tag_ids=ids(self.tag_ids, "Tag"),
            all_tags=self.tag_match is TagMatch.ALL,
            has_phone=self.has_phone,
            has_email=self.has_email,
        )


@strawberry.input
class ConversationFilterInput:
    status: list[ConversationStatus] | None = None
    client_id: list[strawberry.ID] | None = None
    channel: list[Channel] | None = None
    category: str | None = None
    resolution_outcome: str | None = None

    def to_filter(self) -> ConversationFilter:
        return ConversationFilter(
            statuses=values(self.status),
            client_ids=ids(self.client_id, "Client"),
            channels=values(self.channel),
            category=self.category,
            resolution_outcome=self.resolution_outcome,
        )


def tag_filter(search: str | None) -> TagFilter:
    return TagFilter(search=search or None)


def campaign_filter(search: str | None) -> CampaignFilter:
    return CampaignFilter(search=search or None)
