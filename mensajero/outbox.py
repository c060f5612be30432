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

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from mensajero.settings import Settings

_PENDING_KEY = "mensajero_pending_jobs"
# Enqueue this many jobs at once: each arq enqueue is a WATCH/MULTI round trip.
_ENQUEUE_CONCURRENCY = 32


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


async def enqueue_jobs(redis: Redis, jobs: Sequence[PendingJob]) -> None:
    """Enqueue committed jobs, a few at a time, in the order they were deferred."""
    if not jobs:
        return
    # Imported here: the worker package imports the database layer, which
    # imports the event bus, which imports this module.
    from mensajero.workers import enqueue

    for start in range(0, len(jobs), _ENQUEUE_CONCURRENCY):
        await asyncio.gather(
            *(
                enqueue(
                    redis,  # type: ignore[arg-type]
                    job.settings,
                    job.job_name,
                    *job.args,
                    job_id=job.job_id,
                    defer_by=job.defer_by,
                )
                for job in jobs[start : start + _ENQUEUE_CONCURRENCY]
            )
        )
