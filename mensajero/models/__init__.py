"""All tables; importing this module registers them on ``SQLModel.metadata``."""

from mensajero.models.attempt_count import AttemptCount, AttemptCountDaily
from mensajero.models.base import utcnow, uuid7, uuid7_strings
from mensajero.models.campaign import Campaign
from mensajero.models.client import Client, ClientTag, Tag
from mensajero.models.conversation import Conversation, ConversationStatus
from mensajero.models.credit import CreditLedgerEntry, LedgerEntryKind
from mensajero.models.message import (
    Channel,
    CommunicationLog,
    CommunicationType,
    ContentType,
    Direction,
    LogEvent,
    Message,
    MessageStatus,
    TimelineEventType,
)
from mensajero.models.message_count import MessageCount, MessageCountTotal
from mensajero.models.organization import (
    ALL_SCOPES,
    ApiKey,
    ApiKeyScope,
    ChannelConfig,
    Member,
    MemberRole,
    Organization,
)
from mensajero.models.webhook import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEndpoint,
)

__all__ = [
    "ALL_SCOPES",
    "ApiKey",
    "ApiKeyScope",
    "AttemptCount",
    "AttemptCountDaily",
    "Campaign",
    "Channel",
    "ChannelConfig",
    "Client",
    "ClientTag",
    "CommunicationLog",
    "CommunicationType",
    "ContentType",
    "Conversation",
    "ConversationStatus",
    "CreditLedgerEntry",
    "Direction",
    "LedgerEntryKind",
    "LogEvent",
    "Member",
    "MemberRole",
    "Message",
    "MessageCount",
    "MessageCountTotal",
    "MessageStatus",
    "Organization",
    "Tag",
    "TimelineEventType",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookDeliveryStatus",
    "WebhookEndpoint",
    "utcnow",
    "uuid7",
    "uuid7_strings",
]
