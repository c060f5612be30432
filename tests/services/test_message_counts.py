"""The message_counts rollup stays exact on every write path, and counts come from it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from mensajero.db import create_sessionmaker
from mensajero.models import Message, MessageCount, MessageCountTotal, uuid7
from mensajero.repositories.message import (
    CommunicationLogRepository,
    MessageRepository,
    compact_message_counts,
)
from mensajero.services import message as message_service
from mensajero.services.listing import LogFilter, MessageFilter, TimeRange
from mensajero.workers import stats as stats_jobs
from tests.conftest import Backend
from tests.factories import create_caller, create_client, create_log, create_message

BASE = datetime(2026, 4, 1, 10, 0, tzinfo=UTC)
KEY = ("organization_id", "channel", "communication_type", "status", "direction")


async def rollup_by_key(session: AsyncSession) -> dict[tuple[Any, ...], int]:
    columns = [getattr(MessageCount, name) for name in KEY]
    rows = await session.execute(
        select(*columns, MessageCount.bucket, func.sum(MessageCount.count)).group_by(
            *columns, MessageCount.bucket
        )
    )
    return {tuple(row[:-1]): int(row[-1]) for row in rows if row[-1]}


async def totals_by_key(session: AsyncSession) -> dict[tuple[Any, ...], int]:
    columns = [getattr(MessageCountTotal, name) for name in KEY]
    rows = await session.execute(
        select(*columns, func.sum(MessageCountTotal.count)).group_by(*columns)
    )
    return {tuple(row[:-1]): int(row[-1]) for row in rows if row[-1]}


def without_hours(counts: dict[tuple[Any, ...], int]) -> dict[tuple[Any, ...], int]:
    totals: dict[tuple[Any, ...], int] = {}
    for key, count in counts.items():
        totals[key[:-1]] = totals.get(key[:-1], 0) + count
    return {key: count for key, count in totals.items() if count}


async def assert_rollup_exact(session: AsyncSession) -> None:
    exact = await exact_by_key(session)
    assert await rollup_by_key(session) == exact
    assert await totals_by_key(session) == without_hours(exact)


async def rollup_rows(session: AsyncSession) -> int:
    hourly = (await session.execute(select(func.count()).select_from(MessageCount))).scalar()
    totals = (await session.execute(select(func.count()).select_from(MessageCountTotal))).scalar()
    return int(hourly or 0) + int(totals or 0)


async def exact_by_key(session: AsyncSession) -> dict[tuple[Any, ...], int]:
    columns = [getattr(Message, name) for name in KEY]
    rows = (
        await session.execute(
            select(*columns, Message.created_at).where(Message.deleted_at.is_(None))
        )
    ).all()
    counts: dict[tuple[Any, ...], int] = {}
    for row in rows:
        bucket = row[-1].replace(minute=0, second=0, microsecond=0)
        key = (*row[:-1], bucket)
        counts[key] = counts.get(key, 0) + 1
    return counts


async def test_triggers_keep_the_rollup_exact(session: AsyncSession, backend: Backend) -> None:
    caller = await create_caller(session)
    org = caller.organization
    client = await create_client(session, org)
    # ORM inserts, one by one.
    created = [
        await create_message(
            session,
            org,
            client=client,
            channel=("sms", "email", "whatsapp")[index % 3],
            status=("QUEUED", "SENT")[index % 2],
            created_at=BASE + timedelta(minutes=25 * index),
            log=False,
        )
        for index in range(9)
    ]
    # A bulk insert of many rows in one statement (the sending pipeline's way).
    rows = [
        {
            "id": uuid7(),
            "organization_id": org.id,
            "client_id": client.id,
            "channel": "sms",
            "communication_type": "campaign",
            "direction": "outbound",
            "content_type": "PLAIN_TEXT",
            "body": "hola",
            "recipient": "+573000000000",
            "metadata": {},
            "status": "QUEUED",
            "created_at": BASE + timedelta(hours=3, seconds=index),
            "updated_at": BASE,
            "segments": 1,
            "cost": 1,
        }
        for index in range(250)
    ]
    await session.execute(insert(Message), rows)
    await assert_rollup_exact(session)

    # Bulk status changes, a soft delete, an undelete, moving hours, hard deletes.
    await session.execute(
        update(Message)
        .where(Message.organization_id == org.id, Message.communication_type == "campaign")
        .values(status="DELIVERED")
    )
    await session.execute(
        update(Message).where(Message.id == created[0].id).values(deleted_at=BASE)
    )
    await session.execute(
        update(Message).where(Message.id == created[1].id).values(deleted_at=BASE)
    )
    await session.execute(
        update(Message).where(Message.id == created[1].id).values(deleted_at=None, status="READ")
    )
    await session.execute(
        update(Message)
        .where(Message.id == created[2].id)
        .values(created_at=BASE - timedelta(days=2))
    )
    await session.execute(update(Message).where(Message.id == created[3].id).values(body="x"))
    await session.execute(delete(Message).where(Message.id.in_([m.id for m in created[4:6]])))
    await assert_rollup_exact(session)

    repository = MessageRepository(session, org.id)
    for message_filter in (
        MessageFilter(),
        MessageFilter(statuses=("DELIVERED",)),
        MessageFilter(statuses=("READ", "SENT"), channels=("email", "sms")),
        MessageFilter(communication_types=("manual",), direction="outbound"),
        MessageFilter(created=TimeRange(BASE, BASE + timedelta(hours=2))),
        MessageFilter(created=TimeRange(None, BASE)),
    ):
        exact = await repository.count(message_filter)
        counted = await message_service.count_messages(
            session, organization_id=org.id, message_filter=message_filter
        )
        assert counted == exact, message_filter
    assert await repository.count(MessageFilter(statuses=("DELIVERED",))) == 250

    if backend.name == "postgres":
        deltas = await rollup_rows(session)
        folded = await compact_message_counts(session)
        assert folded > 0
        assert await rollup_rows(session) == deltas - folded
        await assert_rollup_exact(session)
        # One row per key after compaction.
        duplicates = await session.execute(
            text(
                "SELECT count(*) FROM (SELECT 1 FROM message_counts GROUP BY organization_id,"
                " bucket, channel, communication_type, status, direction HAVING count(*) > 1) d"
            )
        )
        assert duplicates.scalar() == 0


async def test_counts_that_the_rollup_cannot_answer_are_exact(session: AsyncSession) -> None:
    caller = await create_caller(session)
    org = caller.organization
    client = await create_client(session, org)
    for index in range(4):
        await create_message(
            session,
            org,
            client=client if index % 2 else None,
            status="DELIVERED",
            created_at=BASE + timedelta(minutes=10 * index),
            log=False,
        )
    for message_filter, expected in (
        (MessageFilter(statuses=("DELIVERED",), client_ids=(client.id,)), 2),
        # Not hour-aligned: counted row by row.
        (MessageFilter(created=TimeRange(BASE + timedelta(minutes=5), None)), 3),
        (MessageFilter(client_ids=()), 0),
    ):
        counted = await message_service.count_messages(
            session, organization_id=org.id, message_filter=message_filter
        )
        assert counted == expected, message_filter


async def test_compaction_job_keeps_every_sum(
    session: AsyncSession, connection: AsyncConnection, backend: Backend
) -> None:
    caller = await create_caller(session)
    for index in range(3):
        await create_message(
            session, caller.organization, created_at=BASE + timedelta(seconds=index), log=False
        )
    await session.execute(update(Message).values(status="SENT"))
    await session.commit()  # a savepoint of the test's transaction
    before = await rollup_by_key(session)
    folded = await stats_jobs.compact_message_counts(
        {"sessionmaker": create_sessionmaker(connection)}
    )
    # PostgreSQL appended a delta per statement; SQLite updates one row per key in place.
    assert (folded > 0) is (backend.name == "postgres")
    assert await rollup_by_key(session) == before
    await assert_rollup_exact(session)
    assert (
        await stats_jobs.compact_message_counts({"sessionmaker": create_sessionmaker(connection)})
        == 0
    )


async def test_log_summaries_from_the_attempt_rollup_equal_the_exact_ones(
    session: AsyncSession,
) -> None:
    caller = await create_caller(session)
    org = caller.organization
    client = await create_client(session, org, email="ana@example.com")
    statuses = ["DELIVERED", "READ", "BOUNCED", "FAILED", "SENT", "QUEUED"]
    messages = []
    for index, status in enumerate(statuses * 2):
        message = await create_message(
            session,
            org,
            client=client,
            channel=("email", "whatsapp", "sms")[index % 3],
            communication_type=("manual", "receipt")[index % 2],
            status=status,
            created_at=BASE + timedelta(minutes=25 * index),
            log=False,
        )
        await create_log(
            session,
            message,
            opened_at=BASE if index % 4 == 0 else None,
            delivered_at=BASE if status == "BOUNCED" else None,
        )
        messages.append(message)
    inbound = await create_message(
        session,
        org,
        client=client,
        channel="whatsapp",
        direction="inbound",
        status="RECEIVED",
        log=False,
    )
    await create_log(session, inbound)
    # A soft-deleted message's attempts count nowhere.
    await session.execute(
        update(Message).where(Message.id == messages[0].id).values(deleted_at=BASE)
    )

    repository = CommunicationLogRepository(session, org.id)
    for log_filter in (
        LogFilter(),
        LogFilter(channels=("email",)),
        LogFilter(channels=("whatsapp",), communication_types=("receipt",)),
        LogFilter(created=TimeRange(BASE + timedelta(hours=1), BASE + timedelta(hours=4))),
    ):
        exact = await repository.summary(log_filter)
        summarized = await message_service.summarize_logs(
            session, organization_id=org.id, log_filter=log_filter
        )
        assert summarized == exact, log_filter
    assert (await repository.summary(LogFilter())).total == 12
