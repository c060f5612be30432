"""GraphQL type of campaigns."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

import strawberry
from strawberry import relay
from strawberry.types import Info

from mensajero.models import Campaign
from mensajero.schema.pagination import Connection
from mensajero.schema.relay import resolve_scoped_nodes


@strawberry.type(name="Campaign", description="Groups the messages sent together.")
class CampaignType(relay.Node):
    row_id: relay.NodeID[UUID]
    uuid: UUID = strawberry.field(description="The plain UUID the REST routes use.")
    name: str
    description: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_model(cls, campaign: Campaign) -> CampaignType:
        return cls(
            row_id=campaign.id,
            uuid=campaign.id,
            name=campaign.name,
            description=campaign.description,
            created_at=campaign.created_at,
            updated_at=campaign.updated_at,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info[Any, Any], node_ids: Iterable[str], required: bool = False
    ) -> list[CampaignType | None]:
        return await resolve_scoped_nodes(
            info, Campaign, node_ids, cls.from_model, required=required
        )


@strawberry.type(name="CampaignConnection")
class CampaignConnection(Connection[CampaignType]):
    pass
