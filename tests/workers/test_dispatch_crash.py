"""A worker dying mid-batch: after a restart every attempt is delivered exactly once.

PostgreSQL + Redis: real processes. ``mensajero worker`` runs as a subprocess
against the fake Twilio served on a real TCP port with latency; it is killed
with SIGKILL once some but not all messages reached the fake, and a new worker
finishes the job (its reconciler recovers the dead worker's claims and its
lost jobs).

SQLite: the embedded mode's Redis lives inside one process, so a second
process cannot share its queue. The same scenario runs in-process instead: the
dispatch task is cancelled at an arbitrary point of its batch (while claiming,
sending or recording), then the reconciler and a new dispatch finish. A
cancellation unwinds like a crash for the database (the open transaction is
rolled back, the committed claim stays), but unlike SIGKILL it cannot stop
mid-write at the fake, which ASGITransport runs in the same task.

The fake honours ``I-Twilio-Idempotency-Token`` here: it stands for an
idempotent provider, for which resending an unconfirmed claim is safe. (Twilio
itself is not idempotent: there the reconciler relies on status callbacks,
which carry the attempt id, to confirm claims within its window; see
mensajero/workers/delivery.py.)
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from arq.connections import ArqRedis
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mensajero.db import create_sessionmaker
from mensajero.models import CommunicationLog, MessageStatus, Organization
from mensajero.providers.registry import build_providers
from mensajero.settings import Settings, SmsProviderName
from mensajero.workers import delivery as delivery_jobs
from mensajero.workers import enqueue
from tests.conftest import Backend
from tests.delivery_support import create_attempt_row
from tests.factories import create_organization
from tests.fakes.twilio import FakeTwilio

ACCOUNT_SID = "AC" + "2" * 32
AUTH_TOKEN = "crash-test-token"
ATTEMPTS = 300
ROOT = Path(__file__).resolve().parents[2]


async def _commit_queued(session: AsyncSession, count: int) -> tuple[Organization, list[uuid.UUID]]:
    organization = await create_organization(session, credit_balance=count)
    ids = []
    for index in range(count):
        log = await create_attempt_row(
            session, organization, recipient=f"+57310{index:07d}", body=f"Mensaje {index}"
        )
        ids.append(log.id)
    await session.commit()
    return organization, ids


async def _statuses(session: AsyncSession, organization_id: uuid.UUID) -> dict[str, int]:
    result = await session.execute(
        select(CommunicationLog.status, func.count())
        .where(CommunicationLog.organization_id == organization_id)
        .group_by(CommunicationLog.status)
    )
    return {status: count for status, count in result.all()}


def _assert_delivered_exactly_once(
    fake: FakeTwilio, ids: list[uuid.UUID], external_ids: dict[uuid.UUID, str]
) -> None:
    tokens = collections.Counter(message["idempotency_token"] for message in fake.messages)
    assert set(tokens) == {str(log_id) for log_id in ids}
    assert max(tokens.values()) == 1
    sids = {message["idempotency_token"]: message["sid"] for message in fake.messages}
    assert all(external_ids[log_id] == sids[str(log_id)] for log_id in ids)


async def _external_ids(session: AsyncSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    result = await session.execute(
        select(CommunicationLog.id, CommunicationLog.external_id).where(
            CommunicationLog.id.in_(ids)
        )
    )
    return dict(result.all())


@contextlib.contextmanager
def _worker(env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "mensajero.cli", "worker"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def _wait_for(condition: Any, *, within: float, interval: float = 0.01) -> None:
    deadline = time.monotonic() + within
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(interval)


async def test_a_worker_killed_mid_batch_delivers_everything_exactly_once(
    backend: Backend, redis: ArqRedis
) -> None:
    sessionmaker = create_sessionmaker(backend.engine)
    async with sessionmaker() as session:
        organization, ids = await _commit_queued(session, ATTEMPTS)
    try:
        if backend.name == "postgres":
            await _kill_a_worker_process(backend, redis, sessionmaker, organization, ids)
        else:
            await _cancel_an_in_process_dispatch(backend, redis, sessionmaker, organization, ids)
    finally:
        async with sessionmaker() as session:
            await session.execute(delete(Organization).where(Organization.id == organization.id))
            await session.commit()


async def _kill_a_worker_process(
    backend: Backend,
    redis: ArqRedis,
    sessionmaker: Any,
    organization: Organization,
    ids: list[uuid.UUID],
) -> None:
    queue_name = f"mensajero:test-crash:{uuid.uuid4().hex[:8]}"
    fake = FakeTwilio(
        account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, latency=0.05, honour_idempotency_token=True
    )
    with fake.run_in_thread() as base_url:
        env = {
            **os.environ,
            "MENSAJERO_DATABASE_URL": backend.database_url,
            "MENSAJERO_REDIS_URL": backend.redis_url,
            "MENSAJERO_QUEUE_NAME": queue_name,
            "MENSAJERO_SMS_PROVIDER": "twilio",
            "MENSAJERO_TWILIO_BASE_URL": base_url,
            "MENSAJERO_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "MENSAJERO_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "MENSAJERO_TWILIO_FROM_NUMBER": "+15005550006",
            "MENSAJERO_WORKER_CONCURRENCY": "4",
            "MENSAJERO_DISPATCH_SEND_CONCURRENCY": "16",
            "MENSAJERO_DISPATCH_STALE_AFTER_SECONDS": "3",
            "MENSAJERO_RECONCILE_INTERVAL_SECONDS": "1",
        }
        settings = Settings(redis_url=backend.redis_url, queue_name=queue_name)
        for start in range(0, len(ids), 50):
            await enqueue(
                redis,
                settings,
                delivery_jobs.DISPATCH_JOB,
                [str(log_id) for log_id in ids[start : start + 50]],
                job_id=f"crash-test:{start}",
            )

        async def some_received() -> bool:
            return len(fake.messages) >= 40

        with _worker(env) as first:
            await _wait_for(some_received, within=60)
            first.send_signal(signal.SIGKILL)
            first.wait()
        received_at_kill = len(fake.messages)
        async with sessionmaker() as session:
            statuses = await _statuses(session, organization.id)
        assert received_at_kill < len(ids), "the worker finished before it was killed"
        assert statuses.get(MessageStatus.SENT, 0) < len(ids)
        assert statuses.get(MessageStatus.SENDING, 0) > 0  # claims the dead worker left
        started = time.monotonic()

        async def all_sent() -> bool:
            async with sessionmaker() as session:
                counts = await _statuses(session, organization.id)
            return counts.get(MessageStatus.SENT, 0) == len(ids)

        with _worker(env) as second:
            await _wait_for(all_sent, within=120, interval=0.2)
            assert second.poll() is None
        print(f"recovered in {time.monotonic() - started:.1f}s")
        async with sessionmaker() as session:
            assert await _statuses(session, organization.id) == {MessageStatus.SENT: len(ids)}
            _assert_delivered_exactly_once(fake, ids, await _external_ids(session, ids))
        await redis.delete(queue_name)


async def _cancel_an_in_process_dispatch(
    backend: Backend,
    redis: ArqRedis,
    sessionmaker: Any,
    organization: Organization,
    ids: list[uuid.UUID],
) -> None:
    fake = FakeTwilio(
        account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, latency=0.02, honour_idempotency_token=True
    )
    settings = backend.settings(
        sms_provider=SmsProviderName.TWILIO,
        twilio_base_url="http://fake",
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_from_number="+15005550006",
        dispatch_stale_after_seconds=0.5,
    )
    async with fake.client() as http:

        async def emit(*_: Any) -> None:
            raise AssertionError("no sandbox here")

        ctx = {
            "settings": settings,
            "sessionmaker": sessionmaker,
            "redis": redis,
            "providers": build_providers(settings, http, emit=emit),
            "send_semaphore": asyncio.Semaphore(16),
        }
        batch = [str(log_id) for log_id in ids]
        task = asyncio.create_task(delivery_jobs.dispatch(ctx, batch))

        async def some_received() -> bool:
            return len(fake.messages) >= 40

        await _wait_for(some_received, within=60)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        received_at_cancel = len(fake.messages)
        assert received_at_cancel < len(ids)
        await asyncio.sleep(0.6)  # the claims are now stale
        recovered = await delivery_jobs.reconcile(ctx)
        assert recovered["recovered"] == len(ids)  # nothing was recorded before the cancel
        await delivery_jobs.dispatch(ctx, batch)
    async with sessionmaker() as session:
        assert await _statuses(session, organization.id) == {MessageStatus.SENT: len(ids)}
        _assert_delivered_exactly_once(fake, ids, await _external_ids(session, ids))
    assert len(fake.requests) > len(ids)  # the unconfirmed claims really were sent again
