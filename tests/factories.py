"""Factory functions: ``create_x(session, **overrides)`` returning persisted rows."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mensajero.models import (
    ALL_SCOPES,
    ApiKey,
    Campaign,
    Client,
    ClientTag,
    CommunicationLog,
    Conversation,
    LogEvent,
    Member,
    Message,
    Organization,
    Tag,
)
from mensajero.services import organization as organization_service

_sequence = itertools.count(1)
TERMS_VERSION = "2026-01"


@dataclass
class Caller:
    """An organization with a member and a key: what a test authenticates as."""

    organization: Organization
    member: Member
    api_key: ApiKey
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


async def create_organization(session: AsyncSession, **overrides: Any) -> Organization:
    values: dict[str, Any] = {
        "name": f"Org {next(_sequence)}",
        "terms_version": TERMS_VERSION,
        "credit_balance": 0,
    }
    values.update(overrides)
    organization = Organization(**values)
    session.add(organization)
    await session.flush()
    return organization


async def create_member(
    session: AsyncSession, organization: Organization, **overrides: Any
) -> Member:
    values: dict[str, Any] = {
        "organization_id": organization.id,
        "email": f"member{next(_sequence)}@example.com",
        "terms_accepted_version": organization.terms_version,
    }
    values.update(overrides)
    member = Member(**values)
    session.add(member)
    await session.flush()
    return member


async def create_api_key(
    session: AsyncSession, member: Member, *, scopes: list[str] | None = None, name: str = "test"
) -> tuple[ApiKey, str]:
    return await organization_service.create_api_key(
        session,
        organization_id=member.organization_id,
        member_id=member.id,
        name=name,
        scopes=scopes if scopes is not None else [scope.value for scope in ALL_SCOPES],
    )


async def create_caller(
    session: AsyncSession,
    *,
    scopes: list[str] | None = None,
    terms_accepted: bool = True,
    **organization_overrides: Any,
) -> Caller:
    organization = await create_organization(session, **organization_overrides)
    member = await create_member(
        session,
        organization,
        terms_accepted_version=organization.terms_version if terms_accepted else None,
    )
    api_key, key = await create_api_key(session, member, scopes=scopes)
    return Caller(organization, member, api_key, key)


async def create_client(
    session: AsyncSession, organization: Organization, **overrides: Any
) -> Client:
    number = next(_sequence)
    values: dict[str, Any] = {
        "organization_id": organization.id,
        "name": f"Cliente {number}",
        "email": f"cliente{number}@example.com",
        "phone": f"300 {number:07d}",
        "phone_e164": f"+57300{number:07d}",
        "country": "CO",
    }
    values.update(overrides)
    client = Client(**values)
    session.add(client)
    await session.flush()
    return client


async def create_tag(session: AsyncSession, organization: Organization, **overrides: Any) -> Tag:
    values: dict[str, Any] = {"organization_id": organization.id, "name": f"tag-{next(_sequence)}"}
    values.update(overrides)
    tag = Tag(**values)
    session.add(tag)
    await session.flush()
    return tag


async def tag_client(session: AsyncSession, client: Client, tag: Tag) -> None:
    session.add(
        ClientTag(organization_id=client.organization_id, client_id=client.id, tag_id=tag.id)
    )
    await session.flush()


async def create_campaign(
    session: AsyncSession, organization: Organization, **overrides: Any
) -> Campaign:
    values: dict[str, Any] = {
        "organization_id": organization.id,
        "name": f"Campaña {next(_sequence)}",
    }
    values.update(overrides)
    campaign = Campaign(**values)
    session.add(campaign)
    await session.flush()
    return campaign


# The timeline a first attempt has by the time it reaches each status.
_TIMELINE_BY_STATUS: dict[str, tuple[str, ...]] = {
    "SCHEDULED": ("created", "scheduled"),
    "QUEUED": ("created", "queued"),
    "SENDING": ("created", "queued", "sending"),
    "SENT": ("created", "queued", "sent"),
    "DELIVERED": ("created", "queued", "sent", "delivered"),
    "READ": ("created", "queued", "sent", "delivered", "read"),
    "UNDELIVERED": ("created", "queued", "sent", "undelivered"),
    "BOUNCED": ("created", "queued", "sent", "bounced"),
    "FAILED": ("created", "queued", "failed"),
    "CANCELED": ("created", "queued", "canceled"),
    "RECEIVED": ("received",),
}


async def create_log(
    session: AsyncSession, message: Message, *, timeline: bool = True, **overrides: Any
) -> CommunicationLog:
    """An attempt of ``message`` (its channel, recipient and status unless overridden),
    with the timeline events of its status."""
    values: dict[str, Any] = {
        "organization_id": message.organization_id,
        "message_id": message.id,
        "client_id": message.client_id,
        "campaign_id": message.campaign_id,
        "communication_type": message.communication_type,
        "channel": message.channel,
        "direction": message.direction,
        "recipient": message.recipient,
        "provider": message.provider,
        "status": message.status,
        "sent_at": message.sent_at,
        "created_at": message.created_at,
    }
    values.update(overrides)
    log = CommunicationLog(**values)
    session.add(log)
    await session.flush()
    if timeline:
        for offset, event in enumerate(_TIMELINE_BY_STATUS.get(log.status, ("created",))):
            session.add(
                LogEvent(
                    organization_id=log.organization_id,
                    log_id=log.id,
                    event=event,
                    occurred_at=log.created_at + timedelta(seconds=offset),
                )
            )
        await session.flush()
    return log


async def create_message(
    session: AsyncSession,
    organization: Organization,
    *,
    client: Client | None = None,
    campaign: Campaign | None = None,
    log: bool = True,
    **overrides: Any,
) -> Message:
    """A message to ``client`` (its phone, or e-mail on the email channel) with a first
    attempt and its timeline unless ``log=False``."""
    channel = overrides.get("channel", "sms")
    recipient = f"+5730{next(_sequence):08d}"
    if client is not None:
        recipient = (client.email if channel == "email" else client.phone_e164) or recipient
    values: dict[str, Any] = {
        "organization_id": organization.id,
        "client_id": client.id if client else None,
        "campaign_id": campaign.id if campaign else None,
        "channel": channel,
        "communication_type": "campaign" if campaign else "manual",
        "body": f"Mensaje {next(_sequence)}",
        "recipient": recipient,
        "country_code": "57" if channel != "email" else None,
        "provider": {"sms": "twilio", "whatsapp": "evolution", "email": "resend"}[channel],
        "status": "QUEUED",
    }
    values.update(overrides)
    if "created_at" in overrides and "updated_at" not in overrides:
        values["updated_at"] = overrides["created_at"]
    message = Message(**values)
    session.add(message)
    await session.flush()
    if log:
        await create_log(session, message)
    return message


async def create_conversation(
    session: AsyncSession, organization: Organization, client: Client, **overrides: Any
) -> Conversation:
    values: dict[str, Any] = {
        "organization_id": organization.id,
        "client_id": client.id,
        "channel": "whatsapp",
    }
    values.update(overrides)
    conversation = Conversation(**values)
    session.add(conversation)
    await session.flush()
    return conversation
