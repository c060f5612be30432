"""Organizations, their members, API keys and channel configuration."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Index, UniqueConstraint
from sqlmodel import Field

from mensajero.models.base import JSONType, TimestampedModel, UTCDateTime, enum_column


class MemberRole(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    AGENT = "agent"


class ApiKeyScope(StrEnum):
    READ = "read"
    SEND = "send"
    ADMIN = "admin"


ALL_SCOPES: tuple[ApiKeyScope, ...] = tuple(ApiKeyScope)


class Organization(TimestampedModel, table=True):
    __tablename__ = "organizations"
    __table_args__ = (CheckConstraint("credit_balance >= 0", name="credit_balance_not_negative"),)

    name: str = Field(max_length=200)
    timezone: str = Field(default="UTC", max_length=64)
    # Always equal to the sum of the organization's credit ledger.
    credit_balance: int = Field(default=0, sa_type=BigInteger)
    # The terms version its members must have accepted before sending.
    terms_version: str = Field(max_length=32)


class Member(TimestampedModel, table=True):
    __tablename__ = "members"
    __table_args__ = (UniqueConstraint("organization_id", "email"),)

    organization_id: uuid.UUID = Field(foreign_key="organizations.id", ondelete="CASCADE")
    email: str = Field(max_length=320)
    name: str = Field(default="", max_length=200)
    role: str = Field(default=MemberRole.OWNER, sa_type=enum_column(16))
    terms_accepted_version: str | None = Field(default=None, max_length=32)
    terms_accepted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ApiKey(TimestampedModel, table=True):
    """An API key, shown once as ``mk_live_<prefix>.<secret>``; only the secret's hash is kept."""

    __tablename__ = "api_keys"
    __table_args__ = (Index(None, "organization_id", "created_at"),)

    organization_id: uuid.UUID = Field(foreign_key="organizations.id", ondelete="CASCADE")
    member_id: uuid.UUID = Field(foreign_key="members.id", ondelete="CASCADE", index=True)
    name: str = Field(default="", max_length=200)
    prefix: str = Field(max_length=32, unique=True)
    secret_hash: str = Field(max_length=64)
    scopes: list[str] = Field(default_factory=list, sa_type=JSONType)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ChannelConfig(TimestampedModel, table=True):
    """Per-organization channel settings in the shape of Coordinalo's config document."""

    __tablename__ = "channel_configs"

    organization_id: uuid.UUID = Field(
        foreign_key="organizations.id", ondelete="CASCADE", unique=True
    )
    email: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    whatsapp: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    sms: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    preferences: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
