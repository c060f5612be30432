"""delivery.dispatch against the fake Twilio in-process, on both backends."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest_asyncio
from arq.connections import ArqRedis
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from mensajero.db import create_sessionmaker
from mensajero.models import (
    CommunicationLog,
    LogEvent,
    Message,
    MessageStatus,
    Organization,
    utcnow,
)
from mensajero.providers.registry import build_providers
from mensajero.settings import SmsProviderName
from mensajero.workers import delivery as delivery_jobs
from tests.conftest import Backend
from tests.delivery_support import create_attempt_row, listen, reload, timeline
from tests.factories import create_organization
from tests.fakes.twilio import FakeTwilio

S = MessageStatus
ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "dispatch-test-token"


@pytest_asyncio.fixture
async def fake_twilio() -> FakeTwilio:
    return FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN)


@pytest_asyncio.fixture
async def worker_ctx(
    backend: Backend, connection: AsyncConnection, redis: ArqRedis, fake_twilio: FakeTwilio
) -> AsyncIterator[dict[str, Any]]:
    """The context a worker builds on startup, with the fake Twilio in-process."""
    settings = backend.settings(
        sms_provider=SmsProviderName.TWILIO,
        twilio_base_url="http://fake",
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_from_number="+15005550006",
        dispatch_max_retries=2,
    )
    async with fake_twilio.client() as http:

        async def emit(*_: Any) -> None:
            raise AssertionError("no sandbox here")

        yield {
            "settings": settings,
            "sessionmaker": create_sessionmaker(connection),
            "redis": redis,
            "providers": build_providers(settings, http, emit=emit),
            "send_semaphore": asyncio.Semaphore(8),
        }


async def _queued(session: AsyncSession, count: int, **kwargs: Any) -> tuple[Organization, list]:
    organization = await create_organization(session, credit_balance=100)
    logs = [
        await create_attempt_row(
            session, organization, recipient=f"+5730012300{index:02d}", **kwargs
        )
        for index in range(count)
    ]
    await session.commit()
    return organization, logs


async def _queue_jobs(redis: ArqRedis, queue_name: str) -> list[bytes]:
    return list(await redis.zrange(queue_name, 0, -1))


async def test_dispatch_sends_each_attempt_and_records_sent(
    session: AsyncSession, worker_ctx: dict[str, Any], fake_twilio: FakeTwilio
) -> None:
    _, logs = await _queued(session, 3)
    result = await delivery_jobs.dispatch(worker_ctx, [str(log.id) for log in logs])
    assert result == {"claimed": 3, "sent": 3, "failed": 0, "retried": 0, "unknown": 0}
    sent = {m["to"]: m for m in fake_twilio.messages}
    for log in logs:
        log = await reload(session, CommunicationLog, log.id)
        assert log.status == S.SENT and log.provider == "twilio"
        assert log.external_id == sent[log.recipient]["sid"]
        assert sent[log.recipient]["idempotency_token"] == str(log.id)
        assert await timeline(session, log.id) == ["sending", "sent"]
        message = await reload(session, Message, log.message_id)
        assert (message.status, message.provider) == (S.SENT, "twilio")
        assert message.sent_at is not None


async def test_dispatch_publishes_sending_then_sent(
    session: AsyncSession, worker_ctx: dict[str, Any], fake_twilio: FakeTwilio, redis: ArqRedis
) -> None:
    organization, logs = await _queued(session, 2, queue_id="q-bus")
    async with listen(redis, organization.id) as bus:
        await delivery_jobs.dispatch(worker_ctx, [str(log.id) for log in logs])
        published = await bus.settle()

    sids = {m["to"]: m["sid"] for m in fake_twilio.messages}
    expected = []
    for event, previous, status in (("sending", "QUEUED", "SENDING"), ("sent", "SENDING", "SENT")):
        for log in logs:
            metadata = (
                {"provider": "twilio", "externalId": sids[log.recipient]} if event == "sent" else {}
            )
            expected.append(
                (
                    str(organization.id),
                    str(log.message_id),
                    str(log.id),
                    event,
                    previous,
                    status,
                    "sms",
                    "q-bus",
                    None,
                    None,
                    metadata,
                )
            )
    assert sorted(
        (
            e.organization_id,
            e.message_id,
            e.log_id,
            e.event,
            e.previous_status,
            e.status,
            e.channel,
            e.queue_id,
            e.campaign_id,
            e.client_id,
            e.metadata,
        )
        for e in published
    ) == sorted(expected)
    assert all(datetime.fromisoformat(e.occurred_at).tzinfo is not None for e in published)


async def test_an_id_listed_twice_in_a_job_is_claimed_and_sent_once(
    session: AsyncSession, worker_ctx: dict[str, Any], fake_twilio: FakeTwilio
) -> None:
    _, logs = await _queued(session, 2)
    ids = [str(log.id) for log in logs]
    result = await delivery_jobs.dispatch(worker_ctx, [*ids, ids[0]])
    assert result == {"claimed": 2, "sent": 2, "failed": 0, "retried": 0, "unknown": 0}
    assert len(fake_twilio.messages) == 2
    assert await timeline(session, logs[0].id) == ["sending", "sent"]


async def test_a_job_run_twice_sends_once(
    session: AsyncSession, worker_ctx: dict[str, Any], fake_twilio: FakeTwilio
) -> None:
    _, logs = await _queued(session, 4)
    ids = [str(log.id) for log in logs]
    first, second = await asyncio.gather(
        delivery_jobs.dispatch(worker_ctx, ids), delivery_jobs.dispatch(worker_ctx, ids)
    )
    third = await delivery_jobs.dispatch(worker_ctx, ids)
    assert first["claimed"] + second["claimed"] == 4
    assert third == {"claimed": 0}
    assert len(fake_twilio.messages) == 4


async def test_permanent_error_fails_with_provider_code_and_refunds(
    session: AsyncSession, worker_ctx: dict[str, Any], fake_twilio: FakeTwilio
) -> None:
    organization, logs = await _queued(session, 2)
    balance = organization.credit_balance
    fake_twilio.fail_recipients(
        re.escape(logs[0].recipient), 400, code="21211", message="The 'To' number is not valid."
    )
    result = await delivery_jobs.dispatch(worker_ctx, [str(log.id) for log in logs])
    assert (result["sent"], result["failed"]) == (1, 1)
    failed = await reload(session, CommunicationLog, logs[0].id)
    assert (failed.status, failed.error_code) == (S.FAILED, "21211")
    assert failed.error_message == "The 'To' number is not valid."
    assert failed.refunded and failed.failed_at is not None
    assert await timeline(session, failed.id) == ["sending", "failed"]
    organization = await reload(session, Organization, organization.id)
    assert organization.credit_balance == balance + 1
    message = await reload(session, Message, failed.message_id)
    assert message.status == S.FAILED


async def test_transient_error_requeues_with_backoff_then_sends(
    session: AsyncSession,
    worker_ctx: dict[str, Any],
    fake_twilio: FakeTwilio,
    redis: ArqRedis,
) -> None:
    _, logs = await _queued(session, 1)
    log_id = logs[0].id
    fake_twilio.fail_next(1, 503)
    before = utcnow()
    result = await delivery_jobs.dispatch(worker_ctx, [str(log_id)])
    assert result["retried"] == 1
    log = await reload(session, CommunicationLog, log_id)
    assert log.status == S.QUEUED
    assert log.provider_metadata["retries"] == 1
    assert log.provider_metadata["lastError"]["code"] == "20503"
    assert log.not_before is not None and log.not_before > before
    assert not log.refunded
    jobs = await _queue_jobs(redis, worker_ctx["settings"].queue_name)
    assert any(job.startswith(b"delivery.dispatch:retry:") for job in jobs)
    # Not due yet: a run now claims nothing.
    assert await delivery_jobs.dispatch(worker_ctx, [str(log_id)]) == {"claimed": 0}
    await session.execute(
        update(CommunicationLog)
        .where(CommunicationLog.id == log_id)
        .values(not_before=utcnow() - timedelta(seconds=1))
    )
    await session.commit()
    assert (await delivery_jobs.dispatch(worker_ctx, [str(log_id)]))["sent"] == 1
    assert await timeline(session, log_id) == ["sending", "queued", "sending", "sent"]
    assert len(fake_twilio.messages) == 1
    entries = (
        await session.execute(
            select(LogEvent.event, LogEvent.dedup_key, LogEvent.metadata_)
            .where(LogEvent.log_id == log_id, LogEvent.event != "queued")
            .order_by(LogEvent.created_at)
        )
    ).all()
    # The retry's claim says which attempt it is; SENT carries the provider's id.
    assert [tuple(entry) for entry in entries] == [
        ("sending", None, None),
        ("sending", None, {"attempt": 2}),
        (
            "sent",
            "status:sent",
            {"provider": "twilio", "externalId": fake_twilio.messages[0]["sid"]},
        ),
    ]


async def test_rate_limit_honours_retry_after(
    session: AsyncSession, worker_ctx: dict[str, Any], fake_twilio: FakeTwilio
) -> None:
    _, logs = await _queued(session, 1)
    fake_twilio.rate_limit_next(1, retry_after=120)
    before = utcnow()
    await delivery_jobs.dispatch(worker_ctx, [str(logs[0].id)])
    log = await reload(session, CommunicationLog, logs[0].id)
    assert log.status == S.QUEUED
    assert log.not_before is not None
    assert log.not_before >= before + timedelta(seconds=119)


async def test_retries_exhausted_fail_and_refund(
    session: AsyncSession, worker_ctx: dict[str, Any], fake_twilio: FakeTwilio
) -> None:
    _, logs = await _queued(session, 1)
    log_id = logs[0].id
    fake_twilio.fail_next(10, 500)
    for _ in range(3):  # dispatch_max_retries=2: the third failure is final
        await session.execute(
            update(CommunicationLog).where(CommunicationLog.id == log_id).values(not_before=None)
        )
        await session.commit()
        await delivery_jobs.dispatch(worker_ctx, [str(log_id)])
    log = await reload(session, CommunicationLog, log_id)
    assert (log.status, log.refunded) == (S.FAILED, True)
    assert len(fake_twilio.messages) == 0


async def test_whatsapp_permanent_failure_creates_the_email_fallback_attempt(
    session: AsyncSession, worker_ctx: dict[str, Any]
) -> None:
    from mensajero.models import ChannelConfig
    from tests.factories import create_client

    organization = await create_organization(session, credit_balance=10)
    session.add(
        ChannelConfig(
            organization_id=organization.id,
            preferences={"fallbackEnabled": True, "fallbackChannel": "email"},
        )
    )
    client = await create_client(session, organization)
    log = await create_attempt_row(session, organization, client, channel="whatsapp")
    await session.commit()
    # No WhatsApp provider in this worker: a permanent failure before any provider.
    worker_ctx["providers"] = {
        channel: provider
        for channel, provider in worker_ctx["providers"].items()
        if channel != "whatsapp"
    }
    result = await delivery_jobs.dispatch(worker_ctx, [str(log.id)])
    assert result["failed"] == 1
    attempts = (
        await session.execute(
            select(CommunicationLog.channel, CommunicationLog.status, CommunicationLog.recipient)
            .where(CommunicationLog.message_id == log.message_id)
            .order_by(CommunicationLog.attempt_number)
        )
    ).all()
    assert [tuple(a) for a in attempts] == [
        ("whatsapp", S.FAILED, log.recipient),
        ("email", S.QUEUED, client.email),
    ]


async def test_reconciler_confirms_bound_claims_requeues_the_others_and_finds_lost_jobs(
    session: AsyncSession,
    worker_ctx: dict[str, Any],
    fake_twilio: FakeTwilio,
    redis: ArqRedis,
) -> None:
    _, (bound, unbound, lost) = await _queued(session, 3)
    long_ago = utcnow() - timedelta(minutes=10)
    # A dead worker's claims: one a status callback already bound to Twilio's sid.
    await session.execute(
        update(CommunicationLog)
        .where(CommunicationLog.id.in_([bound.id, unbound.id]))
        .values(status=S.SENDING, updated_at=long_ago)
    )
    await session.execute(
        update(CommunicationLog)
        .where(CommunicationLog.id == bound.id)
        .values(provider="twilio", external_id="SMbound")
    )
    # An attempt whose enqueue was lost.
    await session.execute(
        update(CommunicationLog).where(CommunicationLog.id == lost.id).values(updated_at=long_ago)
    )
    await session.commit()
    result = await delivery_jobs.reconcile(worker_ctx)
    assert result == {"recovered": 1, "confirmed": 1, "lost": 1}
    assert (await reload(session, CommunicationLog, bound.id)).status == S.SENT
    assert (await reload(session, CommunicationLog, unbound.id)).status == S.QUEUED
    jobs = await _queue_jobs(redis, worker_ctx["settings"].queue_name)
    assert sum(job.startswith(b"delivery.dispatch:recovered:") for job in jobs) == 1
    assert sum(job.startswith(b"delivery.dispatch:lost:") for job in jobs) == 1
    await delivery_jobs.dispatch(worker_ctx, [str(unbound.id), str(lost.id), str(bound.id)])
    assert sorted(m["idempotency_token"] for m in fake_twilio.messages) == sorted(
        [str(unbound.id), str(lost.id)]
    )
    # Nothing is stale any more.
    assert await delivery_jobs.reconcile(worker_ctx) == {"recovered": 0, "confirmed": 0, "lost": 0}


async def test_an_ambiguous_failure_at_a_non_idempotent_provider_is_not_retried_blindly(
    session: AsyncSession, worker_ctx: dict[str, Any], fake_twilio: FakeTwilio
) -> None:
    from mensajero.providers.base import ProviderError

    _, logs = await _queued(session, 1)

    class TimingOut:
        name = "twilio"
        channel = "sms"
        idempotent = False

        async def send(self, message: Any) -> Any:
            raise ProviderError("timeout", "read timeout", transient=True, ambiguous=True)

    worker_ctx["providers"] = {"sms": TimingOut()}
    result = await delivery_jobs.dispatch(worker_ctx, [str(logs[0].id)])
    assert result["unknown"] == 1
    # Left SENDING for a callback or the reconciler's window to decide.
    assert (await reload(session, CommunicationLog, logs[0].id)).status == S.SENDING
