"""GraphQL types of the organization domain."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

import strawberry
from strawberry import relay
from strawberry.types import Info

from mensajero.models import ApiKey, Member, Organization
from mensajero.schema.relay import resolve_scoped_nodes

if TYPE_CHECKING:
    from mensajero.resolvers.report import ReportType


@strawberry.type(name="Organization")
class OrganizationType(relay.Node):
    row_id: relay.NodeID[UUID]
    uuid: UUID = strawberry.field(description="The plain UUID the REST routes use.")
    name: str
    timezone: str
    credit_balance: int
    terms_version: str
    created_at: datetime

    @classmethod
    def from_model(cls, organization: Organization) -> OrganizationType:
        return cls(
            row_id=organization.id,
            uuid=organization.id,
            name=organization.name,
            timezone=organization.timezone,
            credit_balance=organization.credit_balance,
            terms_version=organization.terms_version,
            created_at=organization.created_at,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info[Any, Any], node_ids: Iterable[str], required: bool = False
    ) -> list[OrganizationType | None]:
        return await resolve_scoped_nodes(
            info, Organization, node_ids, cls.from_model, required=required
        )


@strawberry.type(name="Member")
class MemberType(relay.Node):
    row_id: relay.NodeID[UUID]
    uuid: UUID
    email: str
    name: str
    role: str
    terms_accepted_version: str | None
    terms_accepted_at: datetime | None
    has_accepted_current_terms: bool

    @classmethod
    def from_model(cls, member: Member, organization: Organization) -> MemberType:
        return cls(
            row_id=member.id,
            uuid=member.id,
            email=member.email,
            name=member.name,
            role=member.role,
            terms_accepted_version=member.terms_accepted_version,
            terms_accepted_at=member.terms_accepted_at,
            has_accepted_current_terms=member.terms_accepted_version == organization.terms_version,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info[Any, Any], node_ids: Iterable[str], required: bool = False
    ) -> list[MemberType | None]:
        from mensajero.repositories.organization import get_organization

        async with info.context.read() as session:
            organization = await get_organization(session, info.context.principal.organization_id)
        return await resolve_scoped_nodes(
            info,
            Member,
            node_ids,
            lambda member: cls.from_model(member, organization),
            required=required,
        )


@strawberry.type(name="ApiKey")
class ApiKeyType(relay.Node):
    row_id: relay.NodeID[UUID]
    uuid: UUID
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def from_model(cls, api_key: ApiKey) -> ApiKeyType:
        return cls(
            row_id=api_key.id,
            uuid=api_key.id,
            name=api_key.name,
            prefix=api_key.prefix,
            scopes=list(api_key.scopes),
            created_at=api_key.created_at,
            last_used_at=api_key.last_used_at,
            revoked_at=api_key.revoked_at,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info[Any, Any], node_ids: Iterable[str], required: bool = False
    ) -> list[ApiKeyType | None]:
        return await resolve_scoped_nodes(info, ApiKey, node_ids, cls.from_model, required=required)


@strawberry.type(name="Viewer")
class ViewerType:
    organization: OrganizationType
    member: MemberType
    scopes: list[str]

    @strawberry.field(description="The organization's reports. Needs the `read` scope.")
    def report(self) -> Annotated[ReportType, strawberry.lazy("mensajero.resolvers.report")]:
        from mensajero.resolvers.report import ReportType

        return ReportType()
