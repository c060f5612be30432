"""GraphQL types of the send side: inputs, results and the communication configuration."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated, Any, ClassVar
from uuid import UUID

import strawberry
from strawberry.scalars import JSON

from mensajero.models import Channel as ChannelModel
from mensajero.schema.common import InvalidInputError, NotFoundError, UserError
from mensajero.schema.enums import Channel, CommunicationType, ContentType, MessageStatus
from mensajero.services.errors import DomainError, InsufficientCredits
from mensajero.services.messaging import EnqueueResult, ResendResult, SentMessage, UnknownTags

# --- errors ------------------------------------------------------------------------


@strawberry.type(description="The balance does not cover the send; nothing was enqueued.")
class InsufficientCreditsError(UserError):
    required: int
    available: int

    domain_error: ClassVar[type[DomainError]] = InsufficientCredits

    @classmethod
    def from_error(cls, error: InsufficientCredits) -> InsufficientCreditsError:
        return cls(
            code=error.code,
            message=error.message,
            required=error.required,
            available=error.available,
        )


@strawberry.type(description="Some tag ids are not tags of this organization.")
class UnknownTagsError(UserError):
    tag_ids: list[str] = strawberry.field(description="The ids as they were given.")

    domain_error: ClassVar[type[DomainError]] = UnknownTags

    @classmethod
    def from_error(cls, error: UnknownTags) -> UnknownTagsError:
        return cls(code=error.code, message=error.message, tag_ids=error.tag_ids)


# --- sendSmsByTags -----------------------------------------------------------------


@strawberry.input(description="sendme123's SmsTagsMessagePayload.")
class SendSmsByTagsInput:
    message: str = strawberry.field(description="The SMS text (at most 10 segments).")
    tag_ids: list[strawberry.ID] = strawberry.field(
        description="Tags (Relay ids or plain UUIDs): clients with any of them receive it."
    )
    type: Channel = strawberry.field(
        default=ChannelModel.SMS, description="The seed's MessageType; only SMS is accepted."
    )
    country: str | None = strawberry.field(
        default=None,
        description="ISO 3166-1 alpha-2 default region for phones written without +prefix.",
    )
    communication_type: CommunicationType = strawberry.field(
        default=CommunicationType.CAMPAIGN  # type: ignore[attr-defined]
    )
    campaign_id: strawberry.ID | None = None


@strawberry.type
class EnqueuedMessage:
    id: str = strawberry.field(description="UUID of the persisted message.")
    recipient: str = strawberry.field(description="The phone in E.164.")


@strawberry.type(description="sendme123's MessageEnqueueResultDto.")
class MessageEnqueueResult:
    queue_id: str = strawberry.field(description='The batch id; "" when nobody remained.')
    channel: Channel
    messages: list[EnqueuedMessage]
    segments: int = strawberry.field(description="SMS segments per message.")
    cost: int = strawberry.field(description="Credits debited for the whole batch.")
    scheduled_until: datetime | None = strawberry.field(
        description="Set when quiet hours hold the batch: when it goes out."
    )

    @classmethod
    def from_result(cls, result: EnqueueResult) -> MessageEnqueueResult:
        return cls(
            queue_id=result.queue_id,
            channel=result.channel,
            messages=[EnqueuedMessage(id=m.id, recipient=m.recipient) for m in result.messages],
            segments=result.segments,
            cost=result.cost,
            scheduled_until=result.scheduled_until,
        )


SendSmsByTagsResult = Annotated[
    MessageEnqueueResult | InsufficientCreditsError | UnknownTagsError | InvalidInputError,
    strawberry.union("SendSmsByTagsResult"),
]


# --- sendMessage -------------------------------------------------------------------


@strawberry.input(description="One message to one client on any channel.")
class SendMessageInput:
    client_id: strawberry.ID
    channel: Channel
    body: str
    type: CommunicationType = strawberry.field(
        default=CommunicationType.MANUAL  # type: ignore[attr-defined]
    )
    subject: str | None = None
    html: str | None = None
    template_id: str | None = None
    content_type: ContentType | None = None
    campaign_id: strawberry.ID | None = None
    metadata: JSON | None = strawberry.field(
        default=None,
        description="Business metadata kept on the message: sessionId, ventaId, session, ...",
    )


@strawberry.type
class SendMessagePayload:
    message_id: UUID
    log_id: UUID = strawberry.field(description="The first attempt (communication log).")
    queue_id: str
    channel: Channel
    recipient: str
    status: MessageStatus
    cost: int
    not_before: datetime | None = strawberry.field(
        description="When quiet hours hold the attempt: when it goes out."
    )

    @classmethod
    def from_result(cls, sent: SentMessage) -> SendMessagePayload:
        return cls(
            message_id=sent.message.id,
            log_id=sent.log.id,
            queue_id=sent.message.queue_id or "",
            channel=ChannelModel(sent.log.channel),
            recipient=sent.log.recipient,
            status=sent.log.status,  # type: ignore[arg-type]
            cost=sent.log.cost,
            not_before=sent.log.not_before,
        )


SendMessageResult = Annotated[
    SendMessagePayload | InsufficientCreditsError | InvalidInputError | NotFoundError,
    strawberry.union("SendMessageResult"),
]


# --- resend ------------------------------------------------------------------------


@strawberry.type(description="Coordinalo's resend answer; ids are communication log UUIDs.")
class ResendPayload:
    original_id: strawberry.ID
    new_id: strawberry.ID
    channel: Channel
    status: MessageStatus
    sent_at: datetime = strawberry.field(description="When the resend was accepted.")

    @classmethod
    def from_result(cls, result: ResendResult) -> ResendPayload:
        return cls(
            original_id=strawberry.ID(str(result.original_id)),
            new_id=strawberry.ID(str(result.new_id)),
            channel=result.channel,
            status=result.status,
            sent_at=result.sent_at,
        )


ResendResultType = Annotated[
    ResendPayload | InsufficientCreditsError | InvalidInputError | NotFoundError,
    strawberry.union("ResendResult"),
]


# --- communication configuration ---------------------------------------------------


@strawberry.type
class EmailConfig:
    enabled: bool
    provider: str
    from_email: str | None
    from_name: str | None
    reply_to: str | None
    status: str | None
    last_check: datetime | None


@strawberry.type
class WhatsAppConfig:
    enabled: bool
    provider: str
    instance_name: str | None
    phone_number: str | None
    status: str | None
    last_check: datetime | None


@strawberry.type
class QuietHours:
    enabled: bool
    start: str = strawberry.field(description="HH:MM, local time.")
    end: str = strawberry.field(description="HH:MM, local time; may be before start.")
    timezone: str | None = strawberry.field(
        description="IANA zone; null means the organization's time zone."
    )


@strawberry.type
class CommunicationPreferences:
    default_channel: Channel
    fallback_enabled: bool
    fallback_channel: Channel
    quiet_hours: QuietHours


def _datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        return datetime.fromisoformat(value)
    return None


@strawberry.type(description="Coordinalo's channel configuration document.")
class CommunicationConfig:
    email: EmailConfig
    whatsapp: WhatsAppConfig
    preferences: CommunicationPreferences

    @classmethod
    def from_document(cls, document: dict[str, dict[str, Any]]) -> CommunicationConfig:
        email, whatsapp, preferences = (
            document["email"],
            document["whatsapp"],
            document["preferences"],
        )
        quiet = preferences["quietHours"]
        return cls(
            email=EmailConfig(
                enabled=bool(email["enabled"]),
                provider=email["provider"],
                from_email=email.get("fromEmail"),
                from_name=email.get("fromName"),
                reply_to=email.get("replyTo"),
                status=email.get("status"),
                last_check=_datetime(email.get("lastCheck")),
            ),
            whatsapp=WhatsAppConfig(
                enabled=bool(whatsapp["enabled"]),
                provider=whatsapp["provider"],
                instance_name=whatsapp.get("instanceName"),
                phone_number=whatsapp.get("phoneNumber"),
                status=whatsapp.get("status"),
                last_check=_datetime(whatsapp.get("lastCheck")),
            ),
            preferences=CommunicationPreferences(
                default_channel=ChannelModel(preferences["defaultChannel"]),
                fallback_enabled=bool(preferences["fallbackEnabled"]),
                fallback_channel=ChannelModel(preferences["fallbackChannel"]),
                quiet_hours=QuietHours(
                    enabled=bool(quiet["enabled"]),
                    start=quiet["start"],
                    end=quiet["end"],
                    timezone=quiet.get("timezone"),
                ),
            ),
        )


@strawberry.input(description="Only the fields given change (like the seed's PUT).")
class EmailConfigInput:
    enabled: bool | None = strawberry.UNSET
    provider: str | None = strawberry.UNSET
    from_email: str | None = strawberry.UNSET
    from_name: str | None = strawberry.UNSET
    reply_to: str | None = strawberry.UNSET


@strawberry.input(description="Only the fields given change.")
class WhatsAppConfigInput:
    enabled: bool | None = strawberry.UNSET
    provider: str | None = strawberry.UNSET
    instance_name: str | None = strawberry.UNSET
    phone_number: str | None = strawberry.UNSET


@strawberry.input(description="Only the fields given change.")
class QuietHoursInput:
    enabled: bool | None = strawberry.UNSET
    start: str | None = strawberry.UNSET
    end: str | None = strawberry.UNSET
    timezone: str | None = strawberry.UNSET


@strawberry.input(description="Only the fields given change.")
class CommunicationPreferencesInput:
    default_channel: Channel | None = strawberry.UNSET
    fallback_enabled: bool | None = strawberry.UNSET
    fallback_channel: Channel | None = strawberry.UNSET
    quiet_hours: QuietHoursInput | None = strawberry.UNSET


@strawberry.input
class UpdateCommunicationConfigInput:
    email: EmailConfigInput | None = strawberry.UNSET
    whatsapp: WhatsAppConfigInput | None = strawberry.UNSET
    preferences: CommunicationPreferencesInput | None = strawberry.UNSET


_CAMEL = {
    "from_email": "fromEmail",
    "from_name": "fromName",
    "reply_to": "replyTo",
    "instance_name": "instanceName",
    "phone_number": "phoneNumber",
    "default_channel": "defaultChannel",
    "fallback_enabled": "fallbackEnabled",
    "fallback_channel": "fallbackChannel",
    "quiet_hours": "quietHours",
}


def changes_from_input(value: Any) -> dict[str, Any]:
    """The partial document the service merges: given fields only, in the seed's names."""
    changes: dict[str, Any] = {}
    for name, field_value in vars(value).items():
        if field_value is strawberry.UNSET:
            continue
        key = _CAMEL.get(name, name)
        if isinstance(field_value, Enum):
            changes[key] = field_value.value
        elif hasattr(field_value, "__strawberry_definition__"):
            changes[key] = changes_from_input(field_value)
        else:
            changes[key] = field_value
    return changes


@strawberry.type
class UpdateCommunicationConfigPayload:
    config: CommunicationConfig


UpdateCommunicationConfigResult = Annotated[
    UpdateCommunicationConfigPayload | InvalidInputError,
    strawberry.union("UpdateCommunicationConfigResult"),
]
