"""The status-change bus on Redis pub/sub.

Publishing side (used by the state machine and the send services): events are
collected on the session while a transaction runs and published only after it
commits, so a subscriber never hears of a change that was rolled back.

Channel per organization: ``mensajero:events:<organization_id>``; payloads are
JSON objects (see :class:`StatusEvent`). The subscribing side (one Redis
subscription per API process, fanned out to local subscribers) lives here too.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import orjson
from redis.asyncio import Redis
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

CHANNEL_PREFIX = "mensajero:events:"
CHANNEL_PATTERN = f"{CHANNEL_PREFIX}*"
_PENDING_KEY = "mensajero_pending_events"


def channel_for(organization_id: uuid.UUID | str) -> str:
    return f"{CHANNEL_PREFIX}{organization_id}"


@dataclass(frozen=True, slots=True)
class StatusEvent:
    """A change on a communication log: a status transition or an engagement event.

    ``previous_status == status`` for events that are not status changes
    (opened, clicked, response).
    """

    organization_id: str
    message_id: str
    log_id: str
    event: str  # TimelineEventType value
    previous_status: str | None
    status: str
    occurred_at: str  # ISO 8601 UTC
    channel: str
    queue_id: str | None = None
    campaign_id: str | None = None
    client_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def is_status_change(self) -> bool:
        return self.previous_status != self.status

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: bytes | str) -> StatusEvent:
        return cls(**orjson.loads(raw))

    @classmethod
    def build(
        cls,
        *,
        organization_id: uuid.UUID,
        message_id: uuid.UUID,
        log_id: uuid.UUID,
        event: str,
        previous_status: str | None,
        status: str,
        occurred_at: datetime,
        channel: str,
        queue_id: str | None = None,
        campaign_id: uuid.UUID | None = None,
        client_id: uuid.UUID | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> StatusEvent:
        return cls(
            organization_id=str(organization_id),
            message_id=str(message_id),
            log_id=str(log_id),
            event=str(event),
            previous_status=None if previous_status is None else str(previous_status),
            status=str(status),
            occurred_at=occurred_at.isoformat(),
            channel=str(channel),
            queue_id=queue_id,
            campaign_id=None if campaign_id is None else str(campaign_id),
            client_id=None if client_id is None else str(client_id),
            metadata=metadata or {},
        )


def defer_publish(session: AsyncSession, events: Iterable[StatusEvent]) -> None:
    """Queue events to publish once the session's transaction commits."""
    session.sync_session.info.setdefault(_PENDING_KEY, []).extend(events)


def take_pending(session: AsyncSession) -> list[StatusEvent]:
    return session.sync_session.info.pop(_PENDING_KEY, [])


@event.listens_for(Session, "after_soft_rollback")
def _drop_pending_on_rollback(session: Session, _previous_transaction: Any) -> None:
    # Events of a rolled-back transaction must never be published.
    session.info.pop(_PENDING_KEY, None)


async def publish(redis: Redis, events: Sequence[StatusEvent]) -> None:
    """Publish events in one round trip (a pipeline, not a transaction)."""
    if not events:
        return
    async with redis.pipeline(transaction=False) as pipe:
        for status_event in events:
            pipe.publish(channel_for(status_event.organization_id), status_event.to_json())
        await pipe.execute()


async def commit_and_publish(session: AsyncSession, redis: Redis) -> None:
    """Commit, then publish what the transaction produced: the edge's way to finish."""
    await session.commit()
    await publish(redis, take_pending(session))
