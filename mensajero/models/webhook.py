"""Outbound webhook endpoints of an organization, the events sent to them and every attempt."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, Text, text
from sqlmodel import Field

from mensajero.models.base import CreatedModel, JSONType, TimestampedModel, UTCDateTime, enum_column


class WebhookDeliveryStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class WebhookEndpoint(TimestampedModel, table=True):
    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index(None, "organization_id", "created_at"),)

    organization_id: uuid.UUID = Field(foreign_key="organizations.id", ondelete="CASCADE")
    url: str = Field(max_length=2000)
    description: str = Field(default="", max_length=500)
    # Empty means every event.
    event_types: list[str] = Field(default_factory=list, sa_type=JSONType)
    # Standard Webhooks secret ("whsec_..."); needed in clear to sign.
    secret: str = Field(max_length=200)
    enabled: bool = Field(default=True)
    disabled_reason: str | None = Field(default=None, max_length=500)
    consecutive_failures: int = Field(default=0)
    # When the current run of failed deliveries began (None while healthy): an
    # endpoint failing for longer than the settings allow is disabled.
    failing_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    disabled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # After a rotation the previous secret also signs until it expires, so
    # receivers can roll their configuration without dropping events.
    previous_secret: str | None = Field(default=None, max_length=200)
    previous_secret_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WebhookDelivery(TimestampedModel, table=True):
    """One event for one endpoint; retried until it succeeds or gives up."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index(None, "organization_id", "created_at"),
        Index(None, "endpoint_id", "created_at"),
        # The reconciler's scan: pending deliveries whose next attempt is overdue.
        Index(
            "ix_webhook_deliveries_pending_next_attempt_at",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
    )

    organization_id: uuid.UUID = Field(foreign_key="organizations.id", ondelete="CASCADE")
    endpoint_id: uuid.UUID = Field(foreign_key="webhook_endpoints.id", ondelete="CASCADE")
    event_type: str = Field(max_length=64)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    status: str = Field(default=WebhookDeliveryStatus.PENDING, sa_type=enum_column(16))
    attempt_count: int = Field(default=0)
    # attempt_count when the current schedule of retries began: 0, or the count
    # at the last replay (a replay gets the whole schedule again).
    schedule_start: int = Field(default=0)
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WebhookAttempt(CreatedModel, table=True):
    __tablename__ = "webhook_attempts"
    __table_args__ = (Index(None, "delivery_id", "created_at"),)

    organization_id: uuid.UUID = Field(foreign_key="organizations.id", ondelete="CASCADE")
    delivery_id: uuid.UUID = Field(foreign_key="webhook_deliveries.id", ondelete="CASCADE")
    response_status: int | None = Field(default=None)
    response_body: str | None = Field(default=None, sa_type=Text)
    error: str | None = Field(default=None, sa_type=Text)
    duration_ms: int = Field(default=0)
    succeeded: bool = Field(default=False)
