"""Deferred jobs: enqueued exactly as arq's enqueue_job would, only after commit."""

from __future__ import annotations

import pytest
from arq.connections import ArqRedis
from arq.jobs import Job, JobStatus
from sqlalchemy.ext.asyncio import AsyncSession

from mensajero.db import transaction
from mensajero.outbox import PendingJob, defer_enqueue, enqueue_jobs, pending_jobs
from mensajero.settings import Settings
from tests.conftest import Backend


async def test_many_jobs_are_enqueued_like_arq_does(redis: ArqRedis) -> None:
    settings = Settings()
    jobs = [
        PendingJob(settings, "delivery.dispatch", (["a", "b"],), job_id="dispatch:q:0"),
        PendingJob(settings, "delivery.dispatch", (["c"],), job_id="dispatch:q:1", defer_by=3600),
        PendingJob(settings, "delivery.dispatch", (["d"],)),  # arq picks an id
    ]
    await enqueue_jobs(redis, jobs)
    # The same ids again change nothing (arq: "a job with this id exists").
    await enqueue_jobs(redis, [PendingJob(settings, "other", (), job_id="dispatch:q:0")] * 2)

    assert await redis.zcard(settings.queue_name) == 3
    first = await Job("dispatch:q:0", redis, _queue_name=settings.queue_name).info()
    deferred = await Job("dispatch:q:1", redis, _queue_name=settings.queue_name).info()
    assert first is not None and deferred is not None
    assert (first.function, first.args) == ("delivery.dispatch", (["a", "b"],))
    assert deferred.args == (["c"],)
    assert deferred.score - first.score == pytest.approx(3_600_000, abs=5_000)
    status = await Job("dispatch:q:0", redis, _queue_name=settings.queue_name).status()
    assert status == JobStatus.queued
    ttl_ms = await redis.pttl("arq:job:dispatch:q:1")
    assert 86_400_000 < ttl_ms <= 86_400_000 + 3_600_000


async def test_jobs_wait_for_the_commit_and_vanish_on_rollback(
    backend: Backend, session: AsyncSession, redis: ArqRedis
) -> None:
    settings = Settings()
    await session.connection()  # inside a transaction, as any service would be
    defer_enqueue(session, settings, "delivery.dispatch", ["x"], job_id="x")
    assert len(pending_jobs(session)) == 1
    await session.rollback()
    assert pending_jobs(session) == []

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with transaction(backend_sessionmaker(backend), redis=redis) as failing:
            defer_enqueue(failing, settings, "delivery.dispatch", ["y"], job_id="y")
            raise Boom
    async with transaction(backend_sessionmaker(backend), redis=redis) as committing:
        defer_enqueue(committing, settings, "delivery.dispatch", ["z"], job_id="z")
        assert await redis.zcard(settings.queue_name) == 0  # not before the commit
    assert await redis.zrange(settings.queue_name, 0, -1) == [b"z"]

    with pytest.raises(RuntimeError):  # jobs need a redis to go to
        async with transaction(backend_sessionmaker(backend)) as no_redis:
            defer_enqueue(no_redis, settings, "delivery.dispatch", ["w"], job_id="w")


def backend_sessionmaker(backend: Backend):  # type: ignore[no-untyped-def]
    from mensajero.db import create_sessionmaker

    return create_sessionmaker(backend.engine)
