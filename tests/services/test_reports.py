"""Reports against hand-built datasets whose answers are known, on both backends."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from mensajero.models import CommunicationLog, Message
from mensajero.repositories.report import ReportRepository
from tests.factories import create_caller, create_client, create_log, create_message

BASE = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


async def assert_attempt_rollup_exact(session: AsyncSession, organization_id: uuid.UUID) -> None:
    repository = ReportRepository(session, organization_id)
    rolled = await repository.rolled_up_counts(by_hour=True)
    raw = await repository.raw_grouped_counts(by_hour=True)
    key = lambda g: (g.bucket, g.channel, g.communication_type)  # noqa: E731
    assert sorted(rolled, key=key) == sorted(raw, key=key)


async def test_attempt_rollup_follows_every_write(session: AsyncSession) -> None:
    caller = await create_caller(session)
    client = await create_client(session, caller.organization)
    first = await create_message(session, caller.organization, client=client, created_at=BASE)
    second = await create_message(
        session, caller.organization, client=client, channel="email", created_at=BASE
    )
    await create_log(session, second, channel="email", status="SENT", created_at=BASE)
    await assert_attempt_rollup_exact(session, caller.organization.id)

    # The state machine's kinds of change: status, delivery, engagement, reply.
    await session.execute(
        update(CommunicationLog)
        .where(CommunicationLog.message_id == first.id)
        .values(status="DELIVERED", delivered_at=BASE, response_received_at=BASE)
    )
    await session.execute(
        update(CommunicationLog)
        .where(CommunicationLog.message_id == second.id)
        .values(status="DELIVERED", delivered_at=BASE, opened_at=BASE, clicked_at=BASE)
    )
    await assert_attempt_rollup_exact(session, caller.organization.id)
    groups = await ReportRepository(session, caller.organization.id).rolled_up_counts()
    email = next(g.counts for g in groups if g.channel == "email")
    sms = next(g.counts for g in groups if g.channel == "sms")
    assert (email.total, email.sent, email.delivered, email.opened, email.clicked) == (
        2,
        2,
        2,
        2,
        2,
    )
    assert (sms.total, sms.sent, sms.delivered, sms.responded) == (1, 1, 1, 1)

    # A soft-deleted message takes its attempts out; restoring puts them back.
    await session.execute(update(Message).where(Message.id == second.id).values(deleted_at=BASE))
    await assert_attempt_rollup_exact(session, caller.organization.id)
    groups = await ReportRepository(session, caller.organization.id).rolled_up_counts()
    assert [g.channel for g in groups] == ["sms"]
    await session.execute(update(Message).where(Message.id == second.id).values(deleted_at=None))
    await assert_attempt_rollup_exact(session, caller.organization.id)

    await session.execute(delete(CommunicationLog).where(CommunicationLog.message_id == first.id))
    await assert_attempt_rollup_exact(session, caller.organization.id)
