"""The rows behind live events: each attempt with its message, for many events at once."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from mensajero.models import CommunicationLog, Message

# (organization id, communication log id)
EventKey = tuple[uuid.UUID, uuid.UUID]


async def logs_with_messages(
    session: AsyncSession, keys: Sequence[EventKey]
) -> dict[EventKey, tuple[CommunicationLog, Message]]:
    """Each asked attempt with its message, in one statement for events of any organizations.

    Unlike the per-organization repositories this serves the whole process's
    subscriptions together (one query per burst of events instead of two per event
    and subscriber); it stays scoped all the same: every key pairs the log id with
    the organization that asked, and the WHERE clause matches the pair, so a log of
    another organization is never returned for it.
    """
    wanted = list(set(keys))
    if not wanted:
        return {}
    result = await session.execute(
        select(CommunicationLog, Message)
        .join(
            Message,
            (Message.id == CommunicationLog.message_id)
            & (Message.organization_id == CommunicationLog.organization_id),
        )
        .where(tuple_(CommunicationLog.organization_id, CommunicationLog.id).in_(wanted))
    )
    return {(log.organization_id, log.id): (log, message) for log, message in result}
