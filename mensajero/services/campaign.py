"""Reading campaigns."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from mensajero.models import Campaign
from mensajero.repositories.campaign import CampaignRepository
from mensajero.services.listing import CampaignFilter, KeysetPage, Page


async def list_campaigns(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    campaign_filter: CampaignFilter,
    page: KeysetPage,
) -> Page[Campaign]:
    return await CampaignRepository(session, organization_id).page(campaign_filter, page)


async def count_campaigns(
    session: AsyncSession, *, organization_id: uuid.UUID, campaign_filter: CampaignFilter
) -> int:
    return await CampaignRepository(session, organization_id).count(campaign_filter)


async def get_campaigns(
    session: AsyncSession, *, organization_id: uuid.UUID, campaign_ids: list[uuid.UUID]
) -> dict[uuid.UUID, Campaign]:
    return await CampaignRepository(session, organization_id).get_many(campaign_ids)
