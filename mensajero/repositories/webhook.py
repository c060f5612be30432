"""SQL for outbound webhooks: endpoints, deliveries and their attempts.

Reads and writes on behalf of a caller go through the organization-scoped
repositories. The state machine's fan-out and the delivery worker act for
whichever organization an event or a delivery belongs to, by id, through the
module-level functions.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mensajero.db import bulk_insert
from mensajero.models import (
    Client,
    CommunicationLog,
    Message,
    WebhookAttempt,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEndpoint,
)
from mensajero.repositories.base import OrganizationScopedRepository

ID_LIST_CHUNK = 1000


def _chunks(items: Sequence[Any], size: int = ID_LIST_CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class WebhookEndpointRepository(OrganizationScopedRepository[WebhookEndpoint]):
    model = WebhookEndpoint

    async def list_newest_first(self) -> list[WebhookEndpoint]:
        result = await self.session.execute(
            self.scoped().order_by(WebhookEndpoint.created_at.desc(), WebhookEndpoint.id.desc())
        )
        return list(result.scalars())

    async def delete(self, endpoint: WebhookEndpoint) -> None:
        await self.session.delete(endpoint)
        await self.session.flush()


class WebhookDeliveryRepository(OrganizationScopedRepository[WebhookDelivery]):
    model = WebhookDelivery

    async def lock(self, delivery_id: uuid.UUID) -> WebhookDelivery | None:
        """The delivery as committed now, locked until the transaction ends (PostgreSQL)."""
        result = await self.session.execute(
            self.scoped()
            .where(WebhookDelivery.id == delivery_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return result.scalar_one_or_none()

    async def recent_per_endpoint(
        self, endpoint_ids: Sequence[uuid.UUID], *, limit: int
    ) -> dict[uuid.UUID, list[WebhookDelivery]]:
        """The ``limit`` newest deliveries of each endpoint, in one statement."""
        found: dict[uuid.UUID, list[WebhookDelivery]] = {endpoint: [] for endpoint in endpoint_ids}
        if not endpoint_ids or limit <= 0:
            return found
        position = (
            func.row_number()
            .over(
                partition_by=WebhookDelivery.endpoint_id,
                order_by=(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc()),
            )
            .label("position")
        )
        ranked = (
            self.scoped(WebhookDelivery.id, position)
            .where(WebhookDelivery.endpoint_id.in_(list(endpoint_ids)))
            .subquery()
        )
        statement = (
            select(WebhookDelivery)
            .join(ranked, ranked.c.id == WebhookDelivery.id)
            .where(ranked.c.position <= limit)
            .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
        )
        for delivery in (await self.session.execute(statement)).scalars():
            found[delivery.endpoint_id].append(delivery)
        return found


class WebhookAttemptRepository(OrganizationScopedRepository[WebhookAttempt]):
    model = WebhookAttempt

    async def for_deliveries(
        self, delivery_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[WebhookAttempt]]:
        """Every attempt of each delivery, oldest first."""
        found: dict[uuid.UUID, list[WebhookAttempt]] = {delivery: [] for delivery in delivery_ids}
        for chunk in _chunks(list(delivery_ids)):
            result = await self.session.execute(
                self.scoped()
                .where(WebhookAttempt.delivery_id.in_(chunk))
                .order_by(WebhookAttempt.created_at, WebhookAttempt.id)
            )
            for attempt in result.scalars():
                found[attempt.delivery_id].append(attempt)
        return found


# --- fan-out (the state machine, any organization) ---------------------------------------------


async def enabled_endpoints_of(
    session: AsyncSession, organization_ids: Iterable[uuid.UUID]
) -> list[WebhookEndpoint]:
    """The enabled endpoints of these organizations (index on organization_id)."""
    wanted = list(set(organization_ids))
    if not wanted:
        return []
    result = await session.execute(
        select(WebhookEndpoint).where(
            WebhookEndpoint.organization_id.in_(wanted), WebhookEndpoint.enabled.is_(True)
        )
    )
    return list(result.scalars())


@dataclass(frozen=True, slots=True)
class LogDetails:
    """What an event's payload says about its attempt, beyond the bus event."""

    log_id: uuid.UUID
    communication_type: str
    recipient: str
    provider: str | None
    external_id: str | None
    error_code: str | None
    error_message: str | None
    queue_id: str | None
    client_name: str | None
    client_email: str | None
    client_phone: str | None


async def log_details(
    session: AsyncSession, log_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, LogDetails]:
    found: dict[uuid.UUID, LogDetails] = {}
    for chunk in _chunks(list(set(log_ids))):
        result = await session.execute(
            select(
                CommunicationLog.id,
                CommunicationLog.communication_type,
                CommunicationLog.recipient,
                CommunicationLog.provider,
                CommunicationLog.external_id,
                CommunicationLog.error_code,
                CommunicationLog.error_message,
                Message.queue_id,
                Client.name,
                Client.email,
                Client.phone_e164,
            )
            .join(Message, Message.id == CommunicationLog.message_id)
            .outerjoin(Client, Client.id == CommunicationLog.client_id)
            .where(CommunicationLog.id.in_(chunk))
        )
        for row in result:
            found[row[0]] = LogDetails(*row)
    return found


async def insert_deliveries(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    await bulk_insert(session, WebhookDelivery.__table__, rows)  # type: ignore[arg-type]


# --- the delivery worker -----------------------------------------------------------------------


async def get_delivery_with_endpoint(
    session: AsyncSession, delivery_id: uuid.UUID
) -> tuple[WebhookDelivery, WebhookEndpoint] | None:
    result = await session.execute(
        select(WebhookDelivery, WebhookEndpoint)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(WebhookDelivery.id == delivery_id)
    )
    row = result.one_or_none()
    return None if row is None else (row[0], row[1])


async def claim_attempt(
    session: AsyncSession,
    delivery_id: uuid.UUID,
    *,
    attempt_count: int,
    lease_until: datetime,
    now: datetime,
) -> bool:
    """Count one more attempt if the delivery is still pending at ``attempt_count``.

    A compare-and-set: of two runs of the same job, one claims the attempt and
    the other finds the count moved and sends nothing.
    """
    result = await session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.status == WebhookDeliveryStatus.PENDING,
            WebhookDelivery.attempt_count == attempt_count,
        )
        .values(attempt_count=attempt_count + 1, next_attempt_at=lease_until, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


async def lock_endpoint(session: AsyncSession, endpoint_id: uuid.UUID) -> WebhookEndpoint | None:
    """The endpoint, locked (PostgreSQL) so concurrent outcomes update its health in turn."""
    result = await session.execute(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return result.scalar_one_or_none()


async def overdue_pending_deliveries(
    session: AsyncSession, *, before: datetime, limit: int
) -> list[tuple[uuid.UUID, int]]:
    """Pending deliveries whose next attempt is overdue: their job was lost (partial index)."""
    result = await session.execute(
        select(WebhookDelivery.id, WebhookDelivery.attempt_count)
        .where(
            WebhookDelivery.status == WebhookDeliveryStatus.PENDING,
            WebhookDelivery.next_attempt_at < before,
        )
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(limit)
    )
    return [(row[0], row[1]) for row in result]
