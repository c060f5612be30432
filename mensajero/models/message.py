"""Messages, their delivery attempts (communication logs) and each attempt's timeline."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, Text, text
from sqlmodel import Field

from mensajero.models.base import (
    CreatedModel,
    JSONType,
    TimestampedModel,
    UTCDateTime,
    enum_column,
    utcnow,
)


class Channel(StrEnum):
    SMS = "sms"
    WHATSAPP = "whatsapp"
    EMAIL = "email"


class MessageStatus(StrEnum):
    """Internal status of an attempt (SPEC section 4); a message shows its latest attempt's."""

    SCHEDULED = "SCHEDULED"
    QUEUED = "QUEUED"
    SENDING = "SENDING"
    SENT = "SENT"
    DELIVERED = "DELIVERED"
    READ = "READ"
    UNDELIVERED = "UNDELIVERED"
    BOUNCED = "BOUNCED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    RECEIVED = "RECEIVED"


class CommunicationType(StrEnum):
    SESSION_REMINDER = "session_reminder"
    PAYMENT_REMINDER = "payment_reminder"
    CAMPAIGN = "campaign"
    MANUAL = "manual"
    CONFIRMATION = "confirmation"
    REACTIVATION = "reactivation"
    RECEIPT = "receipt"


class ContentType(StrEnum):
    PLAIN_TEXT = "PLAIN_TEXT"
    HTML = "HTML"


class Direction(StrEnum):
    OUTBOUND = "outbound"
    INBOUND = "inbound"


class TimelineEventType(StrEnum):
    CREATED = "created"
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    OPENED = "opened"
    CLICKED = "clicked"
    # The recipient marked the email as spam (an engagement event: no status change).
    COMPLAINED = "complained"
    READ = "read"
    UNDELIVERED = "undelivered"
    BOUNCED = "bounced"
    FAILED = "failed"
    CANCELED = "canceled"
    RECEIVED = "received"
    RESPONSE = "response"


class Message(TimestampedModel, table=True):
    """One logical communication to one client; its status is that of its latest attempt."""

    __tablename__ = "messages"
    __table_args__ = (
        # Every list is newest first within an organization: each filter the
        # seeds offer gets an index ending in (created_at, id) for keyset pages.
        Index(None, "organization_id", "created_at", "id"),
        Index(None, "organization_id", "status", "created_at", "id"),
        Index(None, "organization_id", "channel", "created_at", "id"),
        Index(None, "organization_id", "client_id", "created_at", "id"),
        Index(None, "organization_id", "campaign_id", "created_at", "id"),
        Index(None, "organization_id", "queue_id"),
        Index(None, "organization_id", "recipient"),
        Index(None, "organization_id", "sent_at"),
        Index(None, "conversation_id"),
        # Only the soft-deleted messages (usually none): attempt lists and summaries
        # keep out the attempts of deleted messages by probing it, not the table.
        Index(
            "ix_messages_soft_deleted",
            "id",
            postgresql_where=text("deleted_at IS NOT NULL"),
            sqlite_where=text("deleted_at IS NOT NULL"),
        ),
        # Case-insensitive "content contains" (ILIKE '%...%') through trigrams on
        # PostgreSQL. SQLite has no trigram index: there the index is partial
        # over no rows (WHERE 0), so it costs nothing and the schemas still match.
        Index(
            "ix_messages_body_trgm",
            "body",
            postgresql_using="gin",
            postgresql_ops={"body": "gin_trgm_ops"},
            sqlite_where=text("0"),
        ),
    )

    organization_id: uuid.UUID = Field(foreign_key="organizations.id", ondelete="CASCADE")
    client_id: uuid.UUID | None = Field(default=None, foreign_key="clients.id")
    campaign_id: uuid.UUID | None = Field(default=None, foreign_key="campaigns.id")
    conversation_id: uuid.UUID | None = Field(default=None, foreign_key="conversations.id")
    # The member who wrote it, for manual messages (counts as an agent response).
    author_member_id: uuid.UUID | None = Field(default=None, foreign_key="members.id")
    # The enqueue batch this message went out in (sendSmsByTags' queueId).
    queue_id: str | None = Field(default=None, max_length=64)
    direction: str = Field(default=Direction.OUTBOUND, sa_type=enum_column(8))
    channel: str = Field(sa_type=enum_column(16))
    communication_type: str = Field(default=CommunicationType.MANUAL, sa_type=enum_column(32))
    content_type: str = Field(default=ContentType.PLAIN_TEXT, sa_type=enum_column(16))
    body: str = Field(sa_type=Text)
    subject: str | None = Field(default=None, max_length=998)
    html: str | None = Field(default=None, sa_type=Text)
    template_id: str | None = Field(default=None, max_length=200)
    # Recipient of the latest attempt: E.164 phone or email address.
    recipient: str = Field(max_length=320)
    # Calling code of a phone recipient ("57"), as sendme123 reports it.
    country_code: str | None = Field(default=None, max_length=4)
    # Business metadata: sessionId, ventaId, session, provider (the practitioner), ...
    metadata_: dict[str, Any] = Field(
        default_factory=dict, sa_type=JSONType, sa_column_kwargs={"name": "metadata"}
    )
    segments: int = Field(default=1)
    cost: int = Field(default=0)
    status: str = Field(default=MessageStatus.QUEUED, sa_type=enum_column(16))
    provider: str | None = Field(default=None, max_length=32)
    error_message: str | None = Field(default=None, sa_type=Text)
    scheduled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class CommunicationLog(TimestampedModel, table=True):
    """One delivery attempt of a message on one channel through one provider."""

    __tablename__ = "communication_logs"
    __table_args__ = (
        Index(None, "organization_id", "channel", "created_at", "id"),
        Index(None, "organization_id", "channel", "status", "created_at", "id"),
        Index(None, "organization_id", "client_id", "created_at", "id"),
        Index(None, "organization_id", "campaign_id", "created_at", "id"),
        Index(None, "message_id", "created_at"),
        # An inbound reply finds the newest attempt sent to its phone, any organization.
        Index(None, "recipient", "created_at"),
        # Provider callbacks find their attempt by the provider's id.
        Index(
            "ix_communication_logs_provider_external_id",
            "provider",
            "external_id",
            unique=True,
            postgresql_where=text("external_id IS NOT NULL"),
            sqlite_where=text("external_id IS NOT NULL"),
        ),
        # The reconciler looks only at attempts still in flight.
        Index(
            "ix_communication_logs_in_flight",
            "status",
            "updated_at",
            postgresql_where=text("status IN ('SCHEDULED', 'QUEUED', 'SENDING')"),
            sqlite_where=text("status IN ('SCHEDULED', 'QUEUED', 'SENDING')"),
        ),
    )

    organization_id: uuid.UUID = Field(foreign_key="organizations.id", ondelete="CASCADE")
    message_id: uuid.UUID = Field(foreign_key="messages.id", ondelete="CASCADE")
    # Denormalized from the message so that log lists filter without a join.
    client_id: uuid.UUID | None = Field(default=None, foreign_key="clients.id")
    campaign_id: uuid.UUID | None = Field(default=None, foreign_key="campaigns.id")
    communication_type: str = Field(default=CommunicationType.MANUAL, sa_type=enum_column(32))
    channel: str = Field(sa_type=enum_column(16))
    direction: str = Field(default=Direction.OUTBOUND, sa_type=enum_column(8))
    attempt_number: int = Field(default=1)
    recipient: str = Field(max_length=320)
    # Overrides the message body for this attempt (resend with customMessage).
    body_override: str | None = Field(default=None, sa_type=Text)
    provider: str | None = Field(default=None, max_length=32)
    external_id: str | None = Field(default=None, max_length=128)
    status: str = Field(default=MessageStatus.QUEUED, sa_type=enum_column(16))
    not_before: datetime | None = Field(default=None, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    read_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    opened_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    clicked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    failed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    error_code: str | None = Field(default=None, max_length=64)
    error_message: str | None = Field(default=None, sa_type=Text)
    response_text: str | None = Field(default=None, sa_type=Text)
    response_received_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Credits debited for this attempt: what a refund gives back.
    cost: int = Field(default=0)
    # Whether credits for this attempt were given back (never reached a provider).
    refunded: bool = Field(default=False)
    provider_metadata: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)


class LogEvent(CreatedModel, table=True):
    """One entry of an attempt's timeline."""

    __tablename__ = "log_events"
    __table_args__ = (
        # The only index besides the primary key (every send writes two rows per
        # recipient): the same provider event delivered twice is recorded once
        # (NULL dedup keys never conflict), and an attempt's timeline is found
        # by its log_id prefix (then sorted by time: an attempt has a few).
        Index("ix_log_events_log_id_dedup_key", "log_id", "dedup_key", unique=True),
    )

    # No foreign key of its own: the attempt's (log_id) reaches the organization
    # and cascades from it; a key per timeline row was a lookup and a lock each.
    organization_id: uuid.UUID
    log_id: uuid.UUID = Field(foreign_key="communication_logs.id", ondelete="CASCADE")
    event: str = Field(sa_type=enum_column(16))
    occurred_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    dedup_key: str | None = Field(default=None, max_length=200)
    metadata_: dict[str, Any] | None = Field(
        default=None, sa_type=JSONType, sa_column_kwargs={"name": "metadata"}
    )
