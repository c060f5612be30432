"""Viewer and organization resolvers."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from mensajero.models import Member
from mensajero.repositories.organization import get_organization
from mensajero.schema.context import Context
from mensajero.schema.organization import MemberType, OrganizationType, ViewerType
from mensajero.services.errors import Unauthenticated


@strawberry.type
class OrganizationQuery:
    @strawberry.field(description="The caller: its organization and member.")
    async def viewer(self, info: Info[Context, None]) -> ViewerType:
        principal = info.context.principal
        session = await info.context.session()
        organization = await get_organization(session, principal.organization_id)
        member = await session.get(Member, principal.member_id)
        if organization is None or member is None:
            raise Unauthenticated("the API key's organization no longer exists")
        return ViewerType(
            organization=OrganizationType.from_model(organization),
            member=MemberType.from_model(member, organization),
            scopes=sorted(principal.scopes),
        )
