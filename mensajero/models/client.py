"""Clients (the seeds' "client" and "contact"), tags and their link."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Index, UniqueConstraint, text
from sqlmodel import Field

from mensajero.models.base import CreatedModel, JSONType, TimestampedModel, UTCDateTime, utcnow


class Client(TimestampedModel, table=True):
    __tablename__ = "clients"
    __table_args__ = (
        Index(None, "organization_id", "created_at", "id"),
        Index(None, "organization_id", "phone_e164"),
        Index(None, "organization_id", "email"),
    )

    organization_id: uuid.UUID = Field(foreign_key="organizations.id", ondelete="CASCADE")
    name: str = Field(default="", max_length=200)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=64)  # as given by the caller
    phone_e164: str | None = Field(default=None, max_length=20)
    country: str | None = Field(default=None, max_length=2)  # ISO 3166-1 alpha-2
    metadata_: dict[str, Any] = Field(
        default_factory=dict, sa_type=JSONType, sa_column_kwargs={"name": "metadata"}
    )
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Tag(TimestampedModel, table=True):
    __tablename__ = "tags"
    __table_args__ = (
        UniqueConstraint("organization_id", "name"),
        # Names are unique ignoring case ("VIP" and "vip" are one tag): the service
        # checks first, this settles two requests that pass the check at once.
        Index(
            "uq_tags_organization_id_lower_name",
            "organization_id",
            text("lower(name)"),
            unique=True,
        ),
    )

    organization_id: uuid.UUID = Field(foreign_key="organizations.id", ondelete="CASCADE")
    name: str = Field(max_length=100)
    color: str | None = Field(default=None, max_length=16)


class ClientTag(CreatedModel, table=True):
    __tablename__ = "client_tags"
    __table_args__ = (
        UniqueConstraint("client_id", "tag_id"),
        # Sending by tags walks tag -> clients.
        Index(None, "tag_id", "client_id"),
    )

    organization_id: uuid.UUID = Field(foreign_key="organizations.id", ondelete="CASCADE")
    client_id: uuid.UUID = Field(foreign_key="clients.id", ondelete="CASCADE")
    tag_id: uuid.UUID = Field(foreign_key="tags.id", ondelete="CASCADE")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
