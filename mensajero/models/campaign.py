"""Campaigns group the messages sent together."""

from __future__ import annotations

import uuid

from sqlalchemy import Index
from sqlmodel import Field

from mensajero.models.base import TimestampedModel


class Campaign(TimestampedModel, table=True):
    __tablename__ = "campaigns"
    __table_args__ = (Index(None, "organization_id", "created_at", "id"),)

    organization_id: uuid.UUID = Field(foreign_key="organizations.id", ondelete="CASCADE")
    name: str = Field(max_length=200)
    description: str = Field(default="", max_length=2000)
