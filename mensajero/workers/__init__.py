"""arq workers: job registry, the worker's shared context, and how a worker is built.

Jobs take ids, reload what they need, and are safe to run twice. Job names
read ``"<domain>.<action>"``.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from arq import cron
from arq.connections import ArqRedis
from arq.worker import Function, Worker, func

from mensajero.db import create_engine, create_sessionmaker
from mensajero.settings import Settings
from mensajero.workers import delivery as delivery_jobs
from mensajero.workers import stats as stats_jobs
from mensajero.workers import webhook as webhook_jobs

HEARTBEAT_KEY_PREFIX = "mensajero:worker:heartbeat:"
HEARTBEAT_TTL_SECONDS = 30


async def heartbeat(ctx: dict[str, Any]) -> None:
    """Lets /readyz and operators see which workers are alive."""
    redis: ArqRedis = ctx["redis"]
    await redis.set(f"{HEARTBEAT_KEY_PREFIX}{ctx['worker_name']}", b"1", ex=HEARTBEAT_TTL_SECONDS)


async def enqueue(
    redis: ArqRedis,
    settings: Settings,
    job_name: str,
    *args: Any,
    job_id: str | None = None,
    defer_by: float | None = None,
) -> None:
    """Enqueue on the queue the workers listen to; a ``job_id`` makes it run once."""
    await redis.enqueue_job(
        job_name,
        *args,
        _job_id=job_id,
        _queue_name=settings.queue_name,
        _defer_by=defer_by,
    )


async def count_live_workers(redis: ArqRedis) -> int:
    count = 0
    async for _ in redis.scan_iter(match=f"{HEARTBEAT_KEY_PREFIX}*", count=100):
        count += 1
    return count


def job_functions() -> list[Function]:
    """Every job the workers run; later domains add theirs here."""
    return [
        func(heartbeat, name="system.heartbeat"),
        func(stats_jobs.compact_message_counts, name=stats_jobs.COMPACT_COUNTS_JOB),
        func(delivery_jobs.dispatch, name=delivery_jobs.DISPATCH_JOB),
        func(delivery_jobs.apply_provider_event, name=delivery_jobs.APPLY_EVENT_JOB),
        func(delivery_jobs.reconcile, name=delivery_jobs.RECONCILE_JOB),
        func(webhook_jobs.deliver, name=webhook_jobs.DELIVER_JOB),
        func(webhook_jobs.reconcile, name=webhook_jobs.RECONCILE_JOB),
    ]


async def _on_startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx["settings"]
    if "sessionmaker" not in ctx:
        engine = create_engine(settings.database_url, pool_size=settings.database_pool_size)
        ctx["engine"] = engine
        ctx["sessionmaker"] = create_sessionmaker(engine)
        ctx["owns_engine"] = True
    await delivery_jobs.start_delivery(ctx)
    await webhook_jobs.start_webhooks(ctx)
    await heartbeat(ctx)


async def _on_shutdown(ctx: dict[str, Any]) -> None:
    await delivery_jobs.stop_delivery(ctx)
    await webhook_jobs.stop_webhooks(ctx)
    if ctx.get("owns_engine"):
        await ctx["engine"].dispose()


def build_worker(
    settings: Settings,
    redis: ArqRedis,
    *,
    shared_context: dict[str, Any] | None = None,
    handle_signals: bool = True,
    burst: bool = False,
) -> Worker:
    """A worker on ``redis``; the embedded server passes its own engine in ``shared_context``."""
    ctx: dict[str, Any] = {
        "settings": settings,
        "worker_name": f"{socket.gethostname()}:{os.getpid()}:{id(redis):x}",
    }
    ctx.update(shared_context or {})
    return Worker(
        functions=job_functions(),
        cron_jobs=[
            # The rollup's deltas are folded every five minutes (see models/message_count.py).
            cron(
                stats_jobs.compact_message_counts,
                name=f"{stats_jobs.COMPACT_COUNTS_JOB}.cron",
                minute=set(range(0, 60, 5)),
                second=30,
                run_at_startup=False,
            ),
            cron(
                heartbeat,
                name="system.heartbeat.cron",
                second={0, 10, 20, 30, 40, 50},
                run_at_startup=False,
                unique=False,
            ),
            cron(
                delivery_jobs.reconcile,
                name=f"{delivery_jobs.RECONCILE_JOB}.cron",
                second=set(range(0, 60, max(min(settings.reconcile_interval_seconds, 60), 1))),
                # A restarted worker recovers a dead one's claims without waiting.
                run_at_startup=True,
            ),
            # Pending webhook deliveries whose job was lost get one again.
            cron(
                webhook_jobs.reconcile,
                name=f"{webhook_jobs.RECONCILE_JOB}.cron",
                second=15,
                run_at_startup=False,
            ),
        ],
        redis_pool=redis,
        queue_name=settings.queue_name,
        max_jobs=settings.worker_concurrency,
        ctx=ctx,
        on_startup=_on_startup,
        on_shutdown=_on_shutdown,
        handle_signals=handle_signals,
        burst=burst,
        keep_result=60,
        poll_delay=0.05,
    )
