"""Organizations, members, terms and API keys."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from mensajero.models import (
    ALL_SCOPES,
    ApiKey,
    ChannelConfig,
    CreditLedgerEntry,
    LedgerEntryKind,
    Member,
    MemberRole,
    Organization,
    utcnow,
)
from mensajero.repositories.organization import ApiKeyRepository, get_organization
from mensajero.services.auth import generate_api_key, normalize_scopes, principal_cache
from mensajero.services.errors import InvalidInput, NotFound
from mensajero.settings import get_settings


@dataclass(frozen=True, slots=True)
class BootstrapResult:
    organization: Organization
    member: Member
    api_key: ApiKey
    plaintext_key: str


def default_channel_config(organization_id: uuid.UUID) -> ChannelConfig:
    settings = get_settings()
    return ChannelConfig(
        organization_id=organization_id,
        email={
            "enabled": True,
            "provider": settings.email_provider.value,
            "fromEmail": settings.resend_from_email,
            "fromName": "",
            "replyTo": None,
        },
        whatsapp={
            "enabled": True,
            "provider": settings.whatsapp_provider.value,
            "instanceName": settings.evolution_instance,
            "phoneNumber": None,
        },
        sms={"enabled": True, "provider": settings.sms_provider.value},
        preferences={
            "defaultChannel": "whatsapp",
            "fallbackEnabled": False,
            "fallbackChannel": "email",
            "quietHours": {
                "enabled": False,
                "start": "22:00",
                "end": "08:00",
                "timezone": None,
            },
        },
    )


async def bootstrap(
    session: AsyncSession,
    *,
    organization_name: str,
    member_email: str,
    credits: int = 0,
    timezone: str = "UTC",
    accept_terms: bool = True,
    key_name: str = "bootstrap",
) -> BootstrapResult:
    """An organization with one owner who accepted the terms and an all-scopes key."""
    name = organization_name.strip()
    email = member_email.strip().lower()
    if not name:
        raise InvalidInput("organization name must not be empty", field="org")
    if "@" not in email:
        raise InvalidInput("member email is not an email address", field="email")
    if credits < 0:
        raise InvalidInput("credits must not be negative", field="credits")
    settings = get_settings()
    now = utcnow()
    organization = Organization(
        name=name, timezone=timezone, credit_balance=credits, terms_version=settings.terms_version
    )
    session.add(organization)
    await session.flush()
    member = Member(
        organization_id=organization.id,
        email=email,
        role=MemberRole.OWNER,
        terms_accepted_version=settings.terms_version if accept_terms else None,
        terms_accepted_at=now if accept_terms else None,
    )
    session.add(member)
    session.add(default_channel_config(organization.id))
    if credits:
        session.add(
            CreditLedgerEntry(
                organization_id=organization.id,
                kind=LedgerEntryKind.TOPUP,
                amount=credits,
                balance_after=credits,
                description="initial credits",
            )
        )
    await session.flush()
    api_key, plaintext = await create_api_key(
        session,
        organization_id=organization.id,
        member_id=member.id,
        name=key_name,
        scopes=[scope.value for scope in ALL_SCOPES],
    )
    return BootstrapResult(organization, member, api_key, plaintext)


async def create_api_key(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    member_id: uuid.UUID,
    name: str,
    scopes: list[str],
) -> tuple[ApiKey, str]:
    """A new key; the plaintext is returned once and never stored."""
    settings = get_settings()
    generated = generate_api_key(settings.api_key_environment)
    api_key = ApiKey(
        organization_id=organization_id,
        member_id=member_id,
        name=name.strip(),
        prefix=generated.prefix,
        secret_hash=generated.secret_hash,
        scopes=normalize_scopes(scopes) if scopes else [scope.value for scope in ALL_SCOPES],
    )
    await ApiKeyRepository(session, organization_id).add(api_key)
    return api_key, generated.plaintext


async def revoke_api_key(
    session: AsyncSession, *, organization_id: uuid.UUID, api_key_id: uuid.UUID
) -> ApiKey:
    api_key = await ApiKeyRepository(session, organization_id).get(api_key_id)
    if api_key is None:
        raise NotFound("API key not found")
    if api_key.revoked_at is None:
        api_key.revoked_at = utcnow()
        await session.flush()
    principal_cache.forget(api_key_id=api_key.id)
    return api_key


async def accept_terms(
    session: AsyncSession, *, organization_id: uuid.UUID, member_id: uuid.UUID, version: str
) -> Member:
    organization = await get_organization(session, organization_id)
    member = await session.get(Member, member_id)
    if organization is None or member is None or member.organization_id != organization_id:
        raise NotFound("member not found")
    if version != organization.terms_version:
        raise InvalidInput(
            f"the current terms version is {organization.terms_version}", field="version"
        )
    member.terms_accepted_version = version
    member.terms_accepted_at = utcnow()
    await session.flush()
    principal_cache.forget(member_id=member.id)
    return member
