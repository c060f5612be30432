"""mensajero.redis against both backends: the embedded fakeredis server and a real local Redis.

Every test runs twice, once per backend, through real arq APIs (enqueue_job, Worker, Job) and
real redis-py pub/sub. The real-Redis variant is never skipped: if 127.0.0.1:6379 is down, the
test fails, because proving that both modes behave the same is the point of this file.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from arq import Retry
from arq.connections import ArqRedis, log_redis_info
from arq.jobs import Job, JobStatus
from arq.worker import Worker
from redis.asyncio.client import PubSub

from mensajero.redis import create_redis, reset_memory_servers
from tests.conftest import REDIS_TEST_URL

MEMORY_URL = "memory://"
# Its own database, next to the one conftest uses, so the two never flush each other.
_redis_base, _, _redis_db = REDIS_TEST_URL.rpartition("/")
REAL_REDIS_URL = f"{_redis_base}/{int(_redis_db) + 1}"
# A second embedded server; compared against each backend to prove servers do not leak.
OTHER_MEMORY_URL = "memory://isolated"

# Short enough to keep the suite fast, long enough that "before its time" is measurable.
POLL_DELAY_S = 0.05
DEFER_S = 0.6
RETRY_DEFER_S = 0.3
RESULT_TIMEOUT_S = 10.0

OpenRedis = Callable[[str], Awaitable[ArqRedis]]


# --- job functions (module level: arq names them by __qualname__) -----------------------------


async def add(ctx: dict[str, Any], a: int, b: int) -> int:
    ctx["calls"].append((a, b))
    return a + b


async def record_time(ctx: dict[str, Any]) -> float:
    now = time.time()
    ctx["calls"].append(now)
    return now


async def flaky(ctx: dict[str, Any]) -> int:
    """Asks to be retried on its first try, succeeds on the second."""
    ctx["calls"].append((ctx["job_try"], time.time()))
    if ctx["job_try"] == 1:
        raise Retry(defer=RETRY_DEFER_S)
    return ctx["job_try"]


# --- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture(
    params=[pytest.param(MEMORY_URL, id="memory"), pytest.param(REAL_REDIS_URL, id="redis")]
)
def redis_url(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def open_redis(redis_url: str) -> AsyncIterator[OpenRedis]:
    """A ``create_redis`` that starts every test from an empty backend and closes what it opened.

    The real Redis is flushed on the test's first connection, inside the test body rather than in
    fixture setup, so an unreachable Redis makes the test FAIL (an error in setup would be
    reported as an ERROR, and a skip would hide it).
    """
    reset_memory_servers()
    clients: list[ArqRedis] = []
    flushed = False

    async def _open(url: str) -> ArqRedis:
        nonlocal flushed
        client = await create_redis(url)
        clients.append(client)
        if url == REAL_REDIS_URL and not flushed:
            await client.flushdb()
            flushed = True
        return client

    yield _open
    for client in clients:
        await client.aclose()
    reset_memory_servers()


def make_worker(
    pool: ArqRedis, functions: list[Any], calls: list[Any], *, burst: bool = True
) -> Worker:
    # handle_signals=False: the embedded worker lives inside the API process, whose signals
    # belong to the ASGI server; and pytest's loop should not get SIGINT handlers either.
    return Worker(
        functions=functions,
        redis_pool=pool,
        burst=burst,
        poll_delay=POLL_DELAY_S,
        handle_signals=False,
        ctx={"calls": calls},
    )


async def run_burst(worker: Worker) -> None:
    await asyncio.wait_for(worker.main(), RESULT_TIMEOUT_S)


async def stop_worker(worker: Worker, task: asyncio.Task[None]) -> None:
    # Not worker.close(): it would also close the pool, which the fixture owns and closes.
    assert worker.main_task is not None
    worker.main_task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await asyncio.gather(*worker.tasks.values(), return_exceptions=True)


async def result_of(job: Job) -> Any:
    return await job.result(timeout=RESULT_TIMEOUT_S, poll_delay=POLL_DELAY_S)


async def next_message(pubsub: PubSub) -> dict[str, Any]:
    async def _wait() -> dict[str, Any]:
        async for message in pubsub.listen():
            if message["type"] == "message":
                return message
        raise AssertionError("pub/sub connection closed before a message arrived")

    return await asyncio.wait_for(_wait(), RESULT_TIMEOUT_S)


# --- tests -------------------------------------------------------------------------------------


async def test_client_speaks_bytes_like_arq_expects(open_redis: OpenRedis, redis_url: str) -> None:
    client = await open_redis(redis_url)

    assert isinstance(client, ArqRedis)
    assert await client.ping() is True
    await client.set("greeting", "hola")
    assert await client.get("greeting") == b"hola"
    # arq's Worker.main starts with this (INFO + DBSIZE in a pipeline); fakeredis lacks INFO
    # natively, mensajero.redis adds it.
    lines: list[str] = []
    await log_redis_info(client, lines.append)
    assert lines[0].startswith("redis_version=7.")
    assert "db_keys=1" in lines[0]


async def test_enqueued_job_runs_in_burst_worker(open_redis: OpenRedis, redis_url: str) -> None:
    api = await open_redis(redis_url)
    # The worker gets its own client, as the in-process worker and the API do in embedded mode.
    worker_pool = await open_redis(redis_url)
    calls: list[Any] = []

    job = await api.enqueue_job("add", 2, 3)
    assert job is not None
    assert await job.status() == JobStatus.queued

    worker = make_worker(worker_pool, [add], calls)
    await run_burst(worker)

    assert await result_of(job) == 5
    assert await job.status() == JobStatus.complete
    assert calls == [(2, 3)]
    assert worker.jobs_complete == 1
    assert worker.jobs_failed == 0


async def test_deferred_job_runs_only_after_its_time(open_redis: OpenRedis, redis_url: str) -> None:
    api = await open_redis(redis_url)
    worker_pool = await open_redis(redis_url)
    calls: list[float] = []

    before_ms = time.time() * 1000
    job = await api.enqueue_job("record_time", _defer_by=DEFER_S)
    assert job is not None
    info = await job.info()
    assert info is not None and info.score is not None
    due_ms = info.score
    assert due_ms >= before_ms + DEFER_S * 1000 - 1
    assert await job.status() == JobStatus.deferred

    # A burst worker keeps polling while a deferred job is queued, so it must wait for it.
    worker = make_worker(worker_pool, [record_time], calls)
    task = asyncio.create_task(worker.async_run())
    await asyncio.sleep(DEFER_S / 2)
    assert calls == [], "the deferred job ran before its time"
    assert await job.status() == JobStatus.deferred

    await asyncio.wait_for(task, RESULT_TIMEOUT_S)
    ran_at = await result_of(job)
    assert calls == [ran_at]
    assert ran_at * 1000 >= due_ms


async def test_job_raising_retry_is_retried_and_succeeds(
    open_redis: OpenRedis, redis_url: str
) -> None:
    api = await open_redis(redis_url)
    worker_pool = await open_redis(redis_url)
    calls: list[tuple[int, float]] = []

    job = await api.enqueue_job("flaky")
    assert job is not None

    worker = make_worker(worker_pool, [flaky], calls)
    await run_burst(worker)

    assert await result_of(job) == 2
    assert [job_try for job_try, _ in calls] == [1, 2]
    (_, first_at), (_, second_at) = calls
    # Small slack: arq rounds scores to whole milliseconds.
    assert second_at - first_at >= RETRY_DEFER_S - 0.01
    assert worker.jobs_retried == 1
    assert worker.jobs_complete == 1


async def test_same_job_id_is_enqueued_and_run_once(open_redis: OpenRedis, redis_url: str) -> None:
    api = await open_redis(redis_url)
    worker_pool = await open_redis(redis_url)
    calls: list[Any] = []

    first = await api.enqueue_job("add", 1, 1, _job_id="welcome-message:42")
    second = await api.enqueue_job("add", 1, 1, _job_id="welcome-message:42")
    assert first is not None
    assert second is None
    assert len(await api.queued_jobs()) == 1

    worker = make_worker(worker_pool, [add], calls)
    await run_burst(worker)

    assert await result_of(first) == 2
    assert calls == [(1, 1)]
    # While the result is kept, the id stays taken.
    assert await api.enqueue_job("add", 1, 1, _job_id="welcome-message:42") is None


async def test_worker_task_picks_up_jobs_enqueued_concurrently(
    open_redis: OpenRedis, redis_url: str
) -> None:
    """Embedded mode: a long-running (non-burst) worker task in the same loop as the API."""
    api = await open_redis(redis_url)
    worker_pool = await open_redis(redis_url)
    calls: list[Any] = []

    worker = make_worker(worker_pool, [add], calls, burst=False)
    task = asyncio.create_task(worker.async_run())
    try:
        # Let it start and poll an empty queue a few times before any job exists.
        await asyncio.sleep(POLL_DELAY_S * 4)
        assert not task.done()

        jobs: list[Job] = []
        for i in range(5):
            job = await api.enqueue_job("add", i, i)
            assert job is not None
            jobs.append(job)
            await asyncio.sleep(POLL_DELAY_S / 2)

        results = await asyncio.gather(*(result_of(job) for job in jobs))
        assert results == [0, 2, 4, 6, 8]
        assert sorted(calls) == [(i, i) for i in range(5)]
        assert not task.done(), "a non-burst worker must keep running after the queue drains"
    finally:
        await stop_worker(worker, task)
    assert worker.jobs_complete == 5


async def test_pubsub_between_two_clients(open_redis: OpenRedis, redis_url: str) -> None:
    subscriber = await open_redis(redis_url)
    publisher = await open_redis(redis_url)
    channel = f"mensajero:test:{uuid.uuid4().hex}"

    pubsub = subscriber.pubsub()
    try:
        await pubsub.subscribe(channel)
        # Consume in a task, as the event bus does, while the publisher runs in this one.
        receiving = asyncio.create_task(next_message(pubsub))
        receivers = await publisher.publish(channel, b'{"event":"delivered"}')
        message = await receiving
    finally:
        await pubsub.aclose()

    assert receivers == 1
    assert message["channel"] == channel.encode()
    assert message["data"] == b'{"event":"delivered"}'


async def test_servers_are_isolated_by_url(open_redis: OpenRedis, redis_url: str) -> None:
    """Same URL -> same data; a differently named memory server shares nothing with it.

    With the memory backend this compares ``memory://`` with ``memory://isolated``; with the real
    backend it shows an embedded server never sees (or writes to) the real Redis.
    """
    client = await open_redis(redis_url)
    same = await open_redis(redis_url)
    other = await open_redis(OTHER_MEMORY_URL)

    await client.set("shared-key", b"from-main")
    await other.set("other-key", b"from-other")
    assert await same.get("shared-key") == b"from-main"
    assert await other.get("shared-key") is None
    assert await client.get("other-key") is None

    assert await client.enqueue_job("add", 1, 2) is not None
    assert await client.zcard(client.default_queue_name) == 1
    assert await other.zcard(other.default_queue_name) == 0

    channel = f"mensajero:test:{uuid.uuid4().hex}"
    pubsub = other.pubsub()
    try:
        await pubsub.subscribe(channel)
        assert await client.publish(channel, b"hello") == 0
        assert await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2) is None
    finally:
        await pubsub.aclose()


async def test_reset_memory_servers_only_drops_embedded_data(
    open_redis: OpenRedis, redis_url: str
) -> None:
    client = await open_redis(redis_url)
    await client.set("survivor", b"1")

    reset_memory_servers()
    fresh = await open_redis(redis_url)

    expected = None if redis_url.startswith("memory://") else b"1"
    assert await fresh.get("survivor") == expected
