"""SQL for campaigns."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, select

from mensajero.models import Campaign
from mensajero.repositories.base import OrganizationScopedRepository
from mensajero.repositories.pagination import fetch_page
from mensajero.services.listing import CampaignFilter, KeysetPage, Page, escape_like


class CampaignRepository(OrganizationScopedRepository[Campaign]):
    model = Campaign

    def filtered(self, f: CampaignFilter) -> Select[Any]:
        statement = self.scoped()
        if f.search:
            statement = statement.where(
                Campaign.name.ilike(f"%{escape_like(f.search)}%", escape="\\")
            )
        return statement

    async def page(self, f: CampaignFilter, page: KeysetPage) -> Page[Campaign]:
        return await fetch_page(self.session, self.filtered(f), Campaign, page)

    async def count(self, f: CampaignFilter) -> int:
        statement = select(func.count()).select_from(self.filtered(f).subquery())
        return int((await self.session.execute(statement)).scalar_one())
