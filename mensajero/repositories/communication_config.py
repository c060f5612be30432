"""SQL for an organization's channel configuration (one row per organization)."""

from __future__ import annotations

from mensajero.models import ChannelConfig
from mensajero.repositories.base import OrganizationScopedRepository


class ChannelConfigRepository(OrganizationScopedRepository[ChannelConfig]):
    model = ChannelConfig

    async def get_for_organization(self) -> ChannelConfig | None:
        result = await self.session.execute(self.scoped())
        return result.scalar_one_or_none()
