"""Factory functions: ``create_x(session, **overrides)`` returning persisted rows."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mensajero.models import ALL_SCOPES, ApiKey, Client, ClientTag, Member, Organization, Tag
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
