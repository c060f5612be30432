"""Queries of campaigns."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from mensajero.schema.campaign import CampaignConnection, CampaignType
from mensajero.schema.context import Context
from mensajero.schema.filters import campaign_filter
from mensajero.schema.pagination import PAGE_ARGUMENTS_HELP, counter, keyset_page
from mensajero.schema.relay import parse_id
from mensajero.services import campaign as campaign_service


@strawberry.type
class CampaignQuery:
    @strawberry.field(description=f"The organization's campaigns. {PAGE_ARGUMENTS_HELP}")
    async def campaigns(
        self,
        info: Info[Context, None],
        search: str | None = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> CampaignConnection:
        organization_id = info.context.principal.organization_id
        page = keyset_page(info, first, after, last, before)
        wanted = campaign_filter(search)
        async with info.context.read() as session:
            found = await campaign_service.list_campaigns(
                session, organization_id=organization_id, campaign_filter=wanted, page=page
            )
        return CampaignConnection.build(
            found,
            CampaignType.from_model,
            counter(
                info,
                lambda session: campaign_service.count_campaigns(
                    session, organization_id=organization_id, campaign_filter=wanted
                ),
            ),
        )

    @strawberry.field(description="A campaign by global id or UUID; null if not the caller's.")
    async def campaign(self, info: Info[Context, None], id: strawberry.ID) -> CampaignType | None:
        campaign_id = parse_id(id, type_name="Campaign")
        if campaign_id is None:
            return None
        return (await CampaignType.resolve_nodes(info=info, node_ids=[str(campaign_id)]))[0]
