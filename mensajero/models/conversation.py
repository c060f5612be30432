"""Conversations: opened by an inbound reply, worked by an agent, resolved with an outcome."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index
from sqlmodel import Field

from mensajero.models.base import TimestampedModel, UTCDateTime, enum_column, utcnow


class ConversationStatus(StrEnum):
    OPEN = "open"
    PENDING = "pending"
    RESOLVED = "resolved"


class Conversation(TimestampedModel, table=True):
    __tablename__ = "conversations"
    __table_args__ = (
        Index(None, "organization_id", "opened_at", "id"),
        Index(None, "organization_id", "client_id", "status"),
        Index(None, "organization_id", "assigned_member_id", "opened_at"),
        # The customers report walks it newest first to find a page's clients.
        Index(None, "organization_id", "last_message_at", "client_id"),
    )

    organization_id: uuid.UUID = Field(foreign_key="organizations.id", ondelete="CASCADE")
    client_id: uuid.UUID = Field(foreign_key="clients.id")
    channel: str = Field(sa_type=enum_column(16))
    status: str = Field(default=ConversationStatus.OPEN, sa_type=enum_column(16))
    category: str | None = Field(default=None, max_length=100)
    assigned_member_id: uuid.UUID | None = Field(default=None, foreign_key="members.id")
    resolution_outcome: str | None = Field(default=None, max_length=100)
    opened_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    last_message_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    first_response_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    first_response_seconds: int | None = Field(default=None)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolution_seconds: int | None = Field(default=None)
