"""Viewer and organization resolvers."""

from __future__ import annotations

from typing import Annotated

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from mensajero.models import ApiKeyScope, Member
from mensajero.repositories.organization import get_organization
from mensajero.schema.common import InvalidInputError, NotFoundError, UserError, write
from mensajero.schema.context import Context
from mensajero.schema.organization import ApiKeyType, MemberType, OrganizationType, ViewerType
from mensajero.schema.relay import parse_id
from mensajero.services import organization as organization_service
from mensajero.services.errors import Unauthenticated


@strawberry.type
class OrganizationQuery:
    @strawberry.field(description="The caller: its organization and member.")
    async def viewer(self, info: Info[Context, None]) -> ViewerType:
        principal = info.context.principal
        async with info.context.read() as session:
            organization = await get_organization(session, principal.organization_id)
            member = await session.get(Member, principal.member_id)
        if organization is None or member is None:
            raise Unauthenticated("the API key's organization no longer exists")
        return ViewerType(
            organization=OrganizationType.from_model(organization),
            member=MemberType.from_model(member, organization),
            scopes=sorted(principal.scopes),
        )


@strawberry.type
class CreateApiKeyPayload:
    api_key: ApiKeyType
    plaintext_key: str = strawberry.field(
        description="The key itself, `mk_live_<prefix>.<secret>`; shown only in this answer."
    )


@strawberry.type
class RevokeApiKeyPayload:
    api_key: ApiKeyType


@strawberry.type
class AcceptTermsPayload:
    member: MemberType


CreateApiKeyResult = Annotated[
    CreateApiKeyPayload | InvalidInputError, strawberry.union("CreateApiKeyResult")
]
RevokeApiKeyResult = Annotated[
    RevokeApiKeyPayload | NotFoundError, strawberry.union("RevokeApiKeyResult")
]
AcceptTermsResult = Annotated[
    AcceptTermsPayload | InvalidInputError, strawberry.union("AcceptTermsResult")
]


@strawberry.type
class OrganizationMutation:
    @strawberry.mutation(description="Create an API key for the calling member (admin scope).")
    async def create_api_key(
        self, info: Info[Context, None], name: str, scopes: list[str] | None = None
    ) -> CreateApiKeyResult:
        principal = info.context.principal
        principal.require_scope(ApiKeyScope.ADMIN)
        created = await write(
            info,
            lambda session: organization_service.create_api_key(
                session,
                organization_id=principal.organization_id,
                member_id=principal.member_id,
                name=name,
                scopes=scopes or [],
            ),
            InvalidInputError,
        )
        if isinstance(created, UserError):
            return created  # type: ignore[return-value]
        api_key, plaintext = created
        return CreateApiKeyPayload(api_key=ApiKeyType.from_model(api_key), plaintext_key=plaintext)

    @strawberry.mutation(description="Revoke an API key of the organization (admin scope).")
    async def revoke_api_key(
        self, info: Info[Context, None], id: strawberry.ID
    ) -> RevokeApiKeyResult:
        principal = info.context.principal
        principal.require_scope(ApiKeyScope.ADMIN)
        api_key_id = parse_id(id, type_name="ApiKey")
        if api_key_id is None:
            return NotFoundError.of("API key")
        api_key = await write(
            info,
            lambda session: organization_service.revoke_api_key(
                session, organization_id=principal.organization_id, api_key_id=api_key_id
            ),
            NotFoundError,
        )
        if isinstance(api_key, UserError):
            return api_key  # type: ignore[return-value]
        return RevokeApiKeyPayload(api_key=ApiKeyType.from_model(api_key))

    @strawberry.mutation(description="Accept the organization's current terms of service.")
    async def accept_terms(self, info: Info[Context, None], version: str) -> AcceptTermsResult:
        principal = info.context.principal

        async def accept(session: AsyncSession) -> AcceptTermsPayload:
            member = await organization_service.accept_terms(
                session,
                organization_id=principal.organization_id,
                member_id=principal.member_id,
                version=version,
            )
            organization = await get_organization(session, principal.organization_id)
            assert organization is not None
            return AcceptTermsPayload(member=MemberType.from_model(member, organization))

        return await write(info, accept, InvalidInputError)  # type: ignore[return-value]
