"""Shared helpers of the delivery tests: attempts in a given state, timelines, bus listeners."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mensajero.events import StatusEvent, channel_for
from mensajero.models import (
    Client,
    CommunicationLog,
    LogEvent,
    Message,
    MessageStatus,
    Organization,
    utcnow,
)


async def create_attempt_row(
    session: AsyncSession,
    organization: Organization,
    client: Client | None = None,
    *,
    channel: str = "sms",
    status: str = MessageStatus.QUEUED,
    recipient: str | None = None,
    cost: int = 1,
    body: str = "Hola, te recordamos tu sesión de mañana",
    **message_overrides: Any,
) -> CommunicationLog:
    """A message with one attempt in ``status`` (no timeline: tests look at what is added)."""
    if recipient is None:
        if client is not None:
            recipient = client.email if channel == "email" else client.phone_e164
        else:
            recipient = "+573001112233"
    now = utcnow()
    message = Message(
        organization_id=organization.id,
        client_id=None if client is None else client.id,
        channel=channel,
        body=body,
        recipient=recipient,
        status=status,
        cost=cost,
        created_at=now,
        updated_at=now,
        **message_overrides,
    )
    session.add(message)
    await session.flush()
    log = CommunicationLog(
        organization_id=organization.id,
        message_id=message.id,
        client_id=message.client_id,
        channel=channel,
        recipient=recipient,
        status=status,
        cost=cost,
        communication_type=message.communication_type,
        created_at=now,
        updated_at=now,
    )
    session.add(log)
    await session.flush()
    return log


async def timeline(session: AsyncSession, log_id: Any) -> list[str]:
    result = await session.execute(
        select(LogEvent.event).where(LogEvent.log_id == log_id).order_by(LogEvent.created_at)
    )
    return list(result.scalars())


async def reload(session: AsyncSession, model: type, row_id: Any) -> Any:
    result = await session.execute(
        select(model).where(model.id == row_id).execution_options(populate_existing=True)
    )
    return result.scalar_one()


class BusListener:
    """Collects the status events published on one organization's channel."""

    def __init__(self) -> None:
        self.events: list[StatusEvent] = []

    async def settle(self, seconds: float = 0.3) -> list[StatusEvent]:
        await asyncio.sleep(seconds)
        return self.events


@contextlib.asynccontextmanager
async def listen(redis: Redis, organization_id: Any) -> AsyncIterator[BusListener]:
    listener = BusListener()
    pubsub = redis.pubsub()
    await pubsub.subscribe(channel_for(organization_id))

    async def pump() -> None:
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.05)
            if message is not None:
                listener.events.append(StatusEvent.from_json(message["data"]))

    task = asyncio.create_task(pump())
    try:
        yield listener
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await pubsub.unsubscribe()
        await pubsub.aclose()
