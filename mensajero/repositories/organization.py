"""SQL for organizations, members and API keys."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mensajero.models import ApiKey, Member, Organization
from mensajero.repositories.base import OrganizationScopedRepository


async def get_api_key_with_owner(
    session: AsyncSession, prefix: str
) -> tuple[ApiKey, Member, Organization] | None:
    """The key with this prefix, its member and organization, in one query."""
    statement = (
        select(ApiKey, Member, Organization)
        .join(Member, Member.id == ApiKey.member_id)
        .join(Organization, Organization.id == ApiKey.organization_id)
        .where(ApiKey.prefix == prefix)
    )
    row = (await session.execute(statement)).one_or_none()
    return None if row is None else (row[0], row[1], row[2])


async def touch_api_key(session: AsyncSession, api_key_id: uuid.UUID, at: datetime) -> None:
    await session.execute(update(ApiKey).where(ApiKey.id == api_key_id).values(last_used_at=at))


async def get_organization(
    session: AsyncSession, organization_id: uuid.UUID
) -> Organization | None:
    return await session.get(Organization, organization_id)


class MemberRepository(OrganizationScopedRepository[Member]):
    model = Member

    async def get_by_email(self, email: str) -> Member | None:
        result = await self.session.execute(self.scoped().where(Member.email == email.lower()))
        return result.scalar_one_or_none()


class ApiKeyRepository(OrganizationScopedRepository[ApiKey]):
    model = ApiKey

    async def list_for_member(self, member_id: uuid.UUID) -> list[ApiKey]:
        result = await self.session.execute(
            self.scoped().where(ApiKey.member_id == member_id).order_by(ApiKey.created_at.desc())
        )
        return list(result.scalars())
