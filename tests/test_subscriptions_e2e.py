"""Live subscriptions end to end: real sends through the real pipeline.

Embedded (both backends): one server process with its in-process worker and the
sandbox provider. Production: two API processes (uvicorn) and one ``mensajero worker``
against PostgreSQL and Redis; a subscriber on the first process sees every status
change of a send made through the second.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
import pytest_asyncio
from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncEngine

from mensajero.db import create_engine, create_sessionmaker
from mensajero.migrate import upgrade_database_async
from tests.conftest import (
    REDIS_TEST_URL,
    Backend,
    _create_postgres_database,
    _drop_postgres_database,
)
from tests.factories import Caller, create_caller, create_client, create_tag, tag_client
from tests.live import GraphQLWebSocket, LiveServer, graphql_ws, live_server, wait_until
from tests.test_subscriptions import _delete_organizations

LIFECYCLE = """
subscription($filter: MessageEventFilter) {
  messageStatusChanged(filter: $filter) {
    messageId logId queueId previousStatus status occurredAt
    message { uuid recipient body status queueId }
    log { uuid recipient channel }
  }
}
"""
SEND_BY_TAGS = """
mutation($input: SendSmsByTagsInput!) {
  sendSmsByTags(input: $input) {
    __typename
    ... on MessageEnqueueResult { queueId messages { id recipient } }
  }
}
"""
WANTED = ["QUEUED", "SENT", "DELIVERED"]


async def _org_with_tagged_clients(engine: AsyncEngine, clients: int) -> tuple[Caller, str]:
    async with create_sessionmaker(engine)() as session:
        caller = await create_caller(session, credit_balance=1_000)
        tag = await create_tag(session, caller.organization, name="pacientes")
        for _ in range(clients):
            await tag_client(session, await create_client(session, caller.organization), tag)
        await session.commit()
    return caller, str(tag.id)


async def _send_by_tags(http_url: str, caller: Caller, tag_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=http_url, timeout=30) as http:
        response = await http.post(
            "/graphql",
            json={
                "query": SEND_BY_TAGS,
                "variables": {
                    "input": {"message": "Su cita es mañana a las 9", "tagIds": [tag_id]}
                },
            },
            headers=caller.headers,
        )
    assert response.status_code == 200, response.text
    result = response.json()["data"]["sendSmsByTags"]
    assert result["__typename"] == "MessageEnqueueResult", result
    return result


async def _collect_lifecycles(
    subscriber: GraphQLWebSocket, sent: dict[str, Any]
) -> dict[str, list[dict[str, Any]]]:
    """Every change of every message of the batch, in arrival order."""
    message_ids = {message["id"] for message in sent["messages"]}
    seen: dict[str, list[dict[str, Any]]] = {message_id: [] for message_id in message_ids}
    for _ in range(len(message_ids) * len(WANTED)):
        _, data = await subscriber.next_data(within=30)
        change = data["messageStatusChanged"]
        seen[change["messageId"]].append(change)
    return seen


def _assert_lifecycles(seen: dict[str, list[dict[str, Any]]], sent: dict[str, Any]) -> None:
    recipients = {message["id"]: message["recipient"] for message in sent["messages"]}
    for message_id, changes in seen.items():
        assert [change["status"] for change in changes] == WANTED, changes
        assert changes[0]["previousStatus"] is None
        for change in changes:
            assert change["queueId"] == sent["queueId"]
            assert change["message"]["uuid"] == message_id
            assert change["message"]["recipient"] == recipients[message_id]
            assert change["message"]["body"] == "Su cita es mañana a las 9"
            assert change["log"]["uuid"] == change["logId"]
            assert change["log"]["channel"] == "SMS"
        timestamps = [change["occurredAt"] for change in changes]
        assert timestamps == sorted(timestamps)


@pytest_asyncio.fixture
async def embedded(backend: Backend, redis: ArqRedis) -> AsyncIterator[LiveServer]:
    settings = backend.settings(sandbox_delay_seconds=0.2).model_copy(
        update={"embedded_worker": True}
    )
    async with live_server(settings) as server:
        yield server


async def test_a_send_is_seen_live_queued_sent_delivered_for_each_message(
    backend: Backend, embedded: LiveServer
) -> None:
    caller, tag_id = await _org_with_tagged_clients(backend.engine, clients=4)
    other, other_tag_id = await _org_with_tagged_clients(backend.engine, clients=1)
    try:
        async with (
            graphql_ws(embedded, key=caller.key) as subscriber,
            graphql_ws(embedded, key=other.key) as spy,
        ):
            await subscriber.subscribe("live", LIFECYCLE, {"filter": {"statuses": WANTED}})
            # The other organization listens to everything, and to A's tag's clients.
            await spy.subscribe("all", LIFECYCLE)
            hub = embedded.app.state.event_hub
            await wait_until(lambda: hub.subscriber_count == 2)
            sent = await _send_by_tags(embedded.http_url, caller, tag_id)
            assert len(sent["messages"]) == 4
            seen = await _collect_lifecycles(subscriber, sent)
            _assert_lifecycles(seen, sent)
            # Nothing of A reached B: B's first event is from B's own send.
            own = await _send_by_tags(embedded.http_url, other, other_tag_id)
            _, first = await spy.next_data(within=30)
            assert first["messageStatusChanged"]["messageId"] == own["messages"][0]["id"]
            assert first["messageStatusChanged"]["status"] == "QUEUED"
    finally:
        await _drain_jobs(embedded)
        await _delete_organizations(backend, [caller, other])


async def _drain_jobs(server: LiveServer) -> None:
    """Let the in-process worker finish its deferred sandbox callbacks."""
    await asyncio.sleep(0.6)


# --- Production: two API processes and one worker -----------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def _processes(
    env: dict[str, str], *commands: list[str]
) -> Iterator[list[subprocess.Popen[bytes]]]:
    started = [
        subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for command in commands
    ]
    try:
        yield started
    finally:
        for process in started:
            process.terminate()
        for process in started:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def _wait_ready(base_url: str, process: subprocess.Popen[bytes]) -> None:
    # Generous: on a loaded machine starting a Python process takes a while.
    deadline = asyncio.get_running_loop().time() + 120
    last = "no answer"
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as http:
        while asyncio.get_running_loop().time() < deadline:
            if process.poll() is not None:
                raise AssertionError(process.stderr.read().decode() if process.stderr else "")
            try:
                response = await http.get("/readyz")
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text}"
            except httpx.TransportError as error:
                last = repr(error)
            await asyncio.sleep(0.2)
    raise AssertionError(f"{base_url} never became ready: {last}")


async def _wait_for_bus_subscribers(base_url: str, count: int) -> None:
    """Poll the process's /metrics until its bus has ``count`` local subscribers."""
    wanted = f"mensajero_event_subscribers {float(count)}"
    async with httpx.AsyncClient(base_url=base_url, timeout=2) as http:
        for _ in range(200):
            if wanted in (await http.get("/metrics")).text.splitlines():
                return
            await asyncio.sleep(0.05)
    raise AssertionError(f"{base_url} never had {count} bus subscribers")


@asynccontextmanager
async def _scratch_postgres() -> AsyncIterator[tuple[str, AsyncEngine]]:
    database_url = await _create_postgres_database()
    engine = create_engine(database_url)
    try:
        await upgrade_database_async(database_url)
        yield database_url, engine
    finally:
        await engine.dispose()
        await _drop_postgres_database(database_url)


async def test_a_subscriber_on_one_api_process_sees_a_send_made_through_another() -> None:
    async with _scratch_postgres() as (database_url, engine):
        caller, tag_id = await _org_with_tagged_clients(engine, clients=3)
        # A queue of its own, so no other test's worker takes these jobs.
        queue_name = f"mensajero:test-queue:{uuid.uuid4().hex[:8]}"
        env = {
            **os.environ,
            "MENSAJERO_DATABASE_URL": database_url,
            "MENSAJERO_REDIS_URL": REDIS_TEST_URL,
            "MENSAJERO_QUEUE_NAME": queue_name,
            "MENSAJERO_SANDBOX_DELAY_SECONDS": "0.2",
        }
        ports = [_free_port(), _free_port()]
        cli = [sys.executable, "-m", "mensajero.cli"]
        with _processes(
            env,
            *[[*cli, "serve", "--port", str(port), "--log-level", "warning"] for port in ports],
            [*cli, "worker"],
        ) as processes:
            first, second = (f"http://127.0.0.1:{port}" for port in ports)
            await _wait_ready(first, processes[0])
            await _wait_ready(second, processes[1])
            subscriber_server = LiveServer(app=None, port=ports[0])  # type: ignore[arg-type]
            async with graphql_ws(subscriber_server, key=caller.key) as subscriber:
                await subscriber.subscribe("live", LIFECYCLE, {"filter": {"statuses": WANTED}})
                await _wait_for_bus_subscribers(first, 1)
                sent = await _send_by_tags(second, caller, tag_id)
                seen = await _collect_lifecycles(subscriber, sent)
        _assert_lifecycles(seen, sent)
