"""Jobs enqueued only after the transaction that made their rows commits.

A service that creates rows a worker must process (communication logs to
dispatch) cannot enqueue the job itself: a worker could pick it up before the
rows are visible, or the transaction could roll back and leave a job pointing
at nothing. So, exactly like :func:`mensajero.events.defer_publish`, jobs are
kept on the session while the transaction runs, dropped if it rolls back, and
enqueued by the edge right after the commit
(:func:`mensajero.events.commit_and_publish`).

A crash between the commit and the enqueue leaves rows without a job; the
delivery reconciler picks up attempts stuck in QUEUED/SCHEDULED, so the rows
are the source of truth and the job only a wake-up call.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from arq.constants import job_key_prefix, result_key_prefix
from arq.jobs import serialize_job
from arq.utils import timestamp_ms, to_ms
from redis.asyncio import Redis
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from mensajero.settings import Settings

_PENDING_KEY = "mensajero_pending_jobs"


@dataclass(frozen=True, slots=True)
class PendingJob:
    settings: Settings
    job_name: str
    args: tuple[Any, ...]
    job_id: str | None = None
    defer_by: float | None = None


def defer_enqueue(
    session: AsyncSession,
    settings: Settings,
    job_name: str,
    *args: Any,
    job_id: str | None = None,
    defer_by: float | None = None,
) -> None:
    """Enqueue ``job_name(*args)`` once the session's transaction commits."""
    session.sync_session.info.setdefault(_PENDING_KEY, []).append(
        PendingJob(settings, job_name, args, job_id, defer_by)
    )


def pending_jobs(session: AsyncSession) -> list[PendingJob]:
    """What would be enqueued if the session committed now (tests look at this)."""
    return list(session.sync_session.info.get(_PENDING_KEY, []))


def take_pending_jobs(session: AsyncSession) -> list[PendingJob]:
    return session.sync_session.info.pop(_PENDING_KEY, [])


@event.listens_for(Session, "after_soft_rollback")
def _drop_pending_on_rollback(session: Session, _previous_transaction: Any) -> None:
    # Jobs of a rolled-back transaction would point at rows that do not exist.
    session.info.pop(_PENDING_KEY, None)


# arq's enqueue_job, for one job, as one script: create the job unless a job or
# a result with its id exists (arq's WATCH/EXISTS/MULTI, without the round
# trips), then put it on the queue.
_ENQUEUE_IF_NEW = """
if redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 then return 0 end
redis.call('PSETEX', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
return 1
"""


async def enqueue_jobs(redis: Redis, jobs: Sequence[PendingJob]) -> None:
    """Enqueue committed jobs in the order they were deferred.

    One job goes through :func:`mensajero.workers.enqueue` (arq's
    ``enqueue_job``). Several (a bulk send's dispatch batches) go in ONE
    pipeline of scripts that do exactly what ``enqueue_job`` does per job: same
    keys, same serialized payload, same score and expiry, same "a job id that
    exists or has a result is not enqueued again" rule; 200 jobs then take one
    round trip instead of three each.
    """
    if not jobs:
        return
    if len(jobs) == 1:
        # Imported here: the worker package imports the database layer, which
        # imports the event bus, which imports this module.
        from mensajero.workers import enqueue

        (job,) = jobs
        await enqueue(
            redis,  # type: ignore[arg-type]
            job.settings,
            job.job_name,
            *job.args,
            job_id=job.job_id,
            defer_by=job.defer_by,
        )
        return
    script = redis.register_script(_ENQUEUE_IF_NEW)
    serializer = getattr(redis, "job_serializer", None)
    expires_extra_ms = getattr(redis, "expires_extra_ms", 86_400_000)
    async with redis.pipeline(transaction=False) as pipe:
        for job in jobs:
            job_id = job.job_id or uuid.uuid4().hex
            enqueue_time_ms = timestamp_ms()
            defer_by_ms = to_ms(job.defer_by)
            score = enqueue_time_ms + defer_by_ms if defer_by_ms else enqueue_time_ms
            payload = serialize_job(
                job.job_name, job.args, {}, None, enqueue_time_ms, serializer=serializer
            )
            await script(
                keys=[job_key_prefix + job_id, result_key_prefix + job_id, job.settings.queue_name],
                args=[score - enqueue_time_ms + expires_extra_ms, payload, score, job_id],
                client=pipe,
            )
        await pipe.execute()
