"""Live subscriptions over real websockets against a real server, on both backends.

Rows are committed for real (the server reads them on its own connections); each test
makes its own organizations and deletes them at the end. Events are published the way
the state machine publishes them: after the commit, through ``events.publish``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from arq.connections import ArqRedis
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from websockets.exceptions import ConnectionClosed

from mensajero.db import create_sessionmaker
from mensajero.events import EventHub, StatusEvent, publish
from mensajero.models import CommunicationLog, Organization, utcnow
from mensajero.schema.broadcast import SubscriptionBroadcaster
from mensajero.services.organization import revoke_api_key
from tests.conftest import Backend
from tests.factories import Caller, create_caller, create_message
from tests.live import (
    LEGACY_WS,
    LiveServer,
    graphql_ws,
    live_server,
    small_buffer_socket,
    wait_until,
)

STATUS_CHANGES = """
subscription($filter: MessageEventFilter) {
  messageStatusChanged(filter: $filter) {
    messageId logId channel queueId campaignId clientId
    previousStatus status event occurredAt metadata
  }
}
"""
COMMUNICATION_EVENTS = """
subscription($filter: CommunicationEventFilter) {
  communicationEvents(filter: $filter) { messageId logId event status metadata }
}
"""


@dataclass
class World:
    backend: Backend
    server: LiveServer
    redis: ArqRedis
    org_a: Caller
    org_b: Caller
    direct_writes: bool = True

    @property
    def hub(self) -> EventHub:
        return self.server.app.state.event_hub

    @property
    def broadcaster(self) -> SubscriptionBroadcaster:
        return self.server.app.state.subscription_broadcaster

    async def wait_for_bus_subscribers(self, count: int) -> None:
        await wait_until(lambda: self.hub.subscriber_count == count)


async def _committed_callers(backend: Backend, count: int) -> list[Caller]:
    async with create_sessionmaker(backend.engine)() as session:
        callers = [await create_caller(session) for _ in range(count)]
        await session.commit()
    return callers


async def _delete_organizations(backend: Backend, callers: list[Caller]) -> None:
    async with create_sessionmaker(backend.engine)() as session:
        await session.execute(
            delete(Organization).where(Organization.id.in_([c.organization.id for c in callers]))
        )
        await session.commit()


@asynccontextmanager
async def _world(backend: Backend, redis: ArqRedis, **settings: Any) -> AsyncIterator[World]:
    callers = await _committed_callers(backend, 2)
    try:
        async with live_server(
            backend.settings(subscription_outbox_limit=50, **settings)
        ) as server:
            yield World(backend, server, redis, *callers)
    finally:
        await _delete_organizations(backend, callers)


@pytest_asyncio.fixture
async def world(backend: Backend, redis: ArqRedis) -> AsyncIterator[World]:
    async with _world(backend, redis) as world:
        yield world


@pytest_asyncio.fixture(params=[True, False], ids=["direct-writes", "asgi-writes"])
async def fanout_world(
    backend: Backend, redis: ArqRedis, request: pytest.FixtureRequest
) -> AsyncIterator[World]:
    """Fan-out frames written straight to uvicorn's connection, or through ASGI sends."""
    async with _world(backend, redis, subscription_direct_writes=request.param) as world:
        world.direct_writes = request.param
        yield world


def status_event(
    caller: Caller,
    *,
    previous: str | None,
    status: str,
    message_id: uuid.UUID | None = None,
    log_id: uuid.UUID | None = None,
    event: str | None = None,
    channel: str = "sms",
    queue_id: str | None = None,
    client_id: uuid.UUID | None = None,
    metadata: dict[str, Any] | None = None,
) -> StatusEvent:
    return StatusEvent.build(
        organization_id=caller.organization.id,
        message_id=message_id or uuid.uuid4(),
        log_id=log_id or uuid.uuid4(),
        event=event or status.lower(),
        previous_status=previous,
        status=status,
        occurred_at=utcnow(),
        channel=channel,
        queue_id=queue_id,
        client_id=client_id,
        metadata=metadata,
    )


def lifecycle(caller: Caller, *, queue_id: str, messages: int) -> list[list[StatusEvent]]:
    """For each message of a batch: QUEUED, SENT, DELIVERED, as the state machine says."""
    batch = []
    for _ in range(messages):
        message_id, log_id = uuid.uuid4(), uuid.uuid4()
        steps = [(None, "QUEUED"), ("QUEUED", "SENT"), ("SENT", "DELIVERED")]
        batch.append(
            [
                status_event(
                    caller,
                    previous=previous,
                    status=status,
                    message_id=message_id,
                    log_id=log_id,
                    queue_id=queue_id,
                )
                for previous, status in steps
            ]
        )
    return batch


async def test_a_subscriber_sees_every_status_change_in_order(world: World) -> None:
    batch = lifecycle(world.org_a, queue_id="q-1", messages=3)
    async with graphql_ws(world.server, key=world.org_a.key) as client:
        await client.subscribe("1", STATUS_CHANGES)
        await world.wait_for_bus_subscribers(1)
        # Published as separate commits would: all QUEUED, then all SENT, then DELIVERED.
        for step in range(3):
            await publish(world.redis, [events[step] for events in batch])
        seen: dict[str, list[tuple[str | None, str]]] = {}
        for _ in range(9):
            operation_id, data = await client.next_data()
            assert operation_id == "1"
            change = data["messageStatusChanged"]
            seen.setdefault(change["messageId"], []).append(
                (change["previousStatus"], change["status"])
            )
            assert change["queueId"] == "q-1"
            assert change["channel"] == "SMS"
            assert change["occurredAt"].endswith("+00:00")
    assert seen == {
        events[0].message_id: [(None, "QUEUED"), ("QUEUED", "SENT"), ("SENT", "DELIVERED")]
        for events in batch
    }


async def test_filters_narrow_the_stream(world: World) -> None:
    org = world.org_a
    wanted_message, wanted_client = uuid.uuid4(), uuid.uuid4()
    async with graphql_ws(world.server, key=org.key) as client:
        await client.subscribe(
            "by-message", STATUS_CHANGES, {"filter": {"messageId": str(wanted_message)}}
        )
        await client.subscribe("by-queue", STATUS_CHANGES, {"filter": {"queueId": "q-9"}})
        await client.subscribe(
            "by-status", STATUS_CHANGES, {"filter": {"statuses": ["FAILED"], "channel": "EMAIL"}}
        )
        await client.subscribe(
            "by-client", STATUS_CHANGES, {"filter": {"clientId": str(wanted_client)}}
        )
        await world.wait_for_bus_subscribers(4)
        await publish(
            world.redis,
            [
                status_event(org, previous="QUEUED", status="SENT"),  # matches nothing
                status_event(org, previous="SENDING", status="FAILED", channel="sms"),
                status_event(org, previous="QUEUED", status="SENT", message_id=wanted_message),
                status_event(org, previous="SENDING", status="FAILED", channel="email"),
                status_event(org, previous="SENT", status="DELIVERED", queue_id="q-9"),
                status_event(org, previous="SENT", status="READ", client_id=wanted_client),
            ],
        )
        received = {}
        for _ in range(4):
            operation_id, data = await client.next_data()
            assert operation_id not in received, "each filter matches exactly one event"
            received[operation_id] = data["messageStatusChanged"]
        with pytest.raises(TimeoutError):
            await client.receive(within=0.3)
    assert received["by-message"]["messageId"] == str(wanted_message)
    assert received["by-queue"]["status"] == "DELIVERED"
    assert received["by-status"]["channel"] == "EMAIL"
    assert received["by-client"]["clientId"] == str(wanted_client)


async def test_another_organization_sees_nothing_whatever_its_filter(world: World) -> None:
    a_events = lifecycle(world.org_a, queue_id="q-a", messages=2)
    a_message = a_events[0][0].message_id
    async with graphql_ws(world.server, key=world.org_b.key) as spy:
        await spy.subscribe("all", STATUS_CHANGES)
        await spy.subscribe("message", STATUS_CHANGES, {"filter": {"messageId": a_message}})
        await spy.subscribe("queue", STATUS_CHANGES, {"filter": {"queueId": "q-a"}})
        await spy.subscribe(
            "engagement", COMMUNICATION_EVENTS, {"filter": {"messageId": a_message}}
        )
        await world.wait_for_bus_subscribers(4)
        for events in a_events:
            await publish(world.redis, events)
        await publish(
            world.redis,
            [
                status_event(
                    world.org_a,
                    previous="SENT",
                    status="SENT",
                    event="opened",
                    message_id=uuid.UUID(a_message),
                )
            ],
        )
        # B's own event is the sentinel: it arrives after everything A published.
        sentinel = status_event(world.org_b, previous="SENT", status="DELIVERED")
        await publish(world.redis, [sentinel])
        operation_id, data = await spy.next_data()
        assert operation_id == "all"
        assert data["messageStatusChanged"]["messageId"] == sentinel.message_id
        with pytest.raises(TimeoutError):
            await spy.receive(within=0.3)


async def test_communication_events_carry_engagement_not_status_changes(world: World) -> None:
    org = world.org_a
    message_id = uuid.uuid4()
    async with graphql_ws(world.server, key=org.key) as client:
        await client.subscribe(
            "1", COMMUNICATION_EVENTS, {"filter": {"events": ["OPENED", "RESPONSE"]}}
        )
        await world.wait_for_bus_subscribers(1)
        await publish(
            world.redis,
            [
                status_event(org, previous="SENT", status="DELIVERED", message_id=message_id),
                status_event(org, previous="DELIVERED", status="DELIVERED", event="clicked"),
                status_event(
                    org,
                    previous="DELIVERED",
                    status="DELIVERED",
                    event="opened",
                    message_id=message_id,
                    metadata={"userAgent": "Mail/1.0"},
                ),
                status_event(
                    org,
                    previous="READ",
                    status="READ",
                    event="response",
                    channel="whatsapp",
                    metadata={"text": "Confirmo"},
                ),
            ],
        )
        _, opened = await client.next_data()
        _, response = await client.next_data()
    assert opened["communicationEvents"] == {
        "messageId": str(message_id),
        "logId": opened["communicationEvents"]["logId"],
        "event": "OPENED",
        "status": "DELIVERED",
        "metadata": {"userAgent": "Mail/1.0"},
    }
    assert response["communicationEvents"]["event"] == "RESPONSE"
    assert response["communicationEvents"]["metadata"] == {"text": "Confirmo"}


@pytest.mark.parametrize("header", ["Authorization", "X-Api-Key", "api-key"])
async def test_connection_init_accepts_every_header_name(world: World, header: str) -> None:
    async with graphql_ws(world.server, key=world.org_a.key, header=header) as client:
        await client.subscribe("1", STATUS_CHANGES)
        await world.wait_for_bus_subscribers(1)
        sent = status_event(world.org_a, previous="QUEUED", status="SENT")
        await publish(world.redis, [sent])
        _, data = await client.next_data()
    assert data["messageStatusChanged"]["messageId"] == sent.message_id


@pytest.mark.parametrize(
    "payload",
    [{}, {"Authorization": "Bearer mk_live_000000000000.nope"}, {"api-key": "garbage"}],
)
async def test_a_bad_key_closes_the_socket_with_4403(world: World, payload: dict[str, str]) -> None:
    async with graphql_ws(world.server) as client:
        await client.send({"type": "connection_init", "payload": payload})
        with pytest.raises(ConnectionClosed) as closed:
            await client.receive()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4403


async def test_a_key_revoked_mid_subscription_closes_its_socket_only(
    backend: Backend, redis: ArqRedis
) -> None:
    """Keys are checked again while subscriptions live: revoking one closes its sockets
    with 4403; other keys' sockets go on receiving."""
    async with (
        _world(backend, redis, websocket_key_recheck_seconds=0.2) as world,
        graphql_ws(world.server, key=world.org_a.key) as revoked,
        graphql_ws(world.server, key=world.org_b.key) as kept,
    ):
        await revoked.subscribe("1", STATUS_CHANGES)
        await kept.subscribe("1", STATUS_CHANGES)
        await world.wait_for_bus_subscribers(2)
        await asyncio.sleep(0.5)  # a few checks pass while the keys are valid
        first = status_event(world.org_a, previous="QUEUED", status="SENT")
        await publish(world.redis, [first])
        _, data = await revoked.next_data()
        assert data["messageStatusChanged"]["messageId"] == first.message_id

        async with create_sessionmaker(backend.engine)() as session:
            await revoke_api_key(
                session,
                organization_id=world.org_a.organization.id,
                api_key_id=world.org_a.api_key.id,
            )
            await session.commit()
        with pytest.raises(ConnectionClosed) as closed:
            await revoked.receive(within=10.0)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4403
        assert closed.value.rcvd.reason == "API key revoked"

        later = status_event(world.org_b, previous="QUEUED", status="SENT")
        await publish(world.redis, [later])
        _, data = await kept.next_data()
        assert data["messageStatusChanged"]["messageId"] == later.message_id


async def test_subscribing_before_connection_init_closes_with_4401(world: World) -> None:
    async with graphql_ws(world.server) as client:
        await client.subscribe("1", STATUS_CHANGES)
        with pytest.raises(ConnectionClosed) as closed:
            await client.receive()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401


async def test_a_key_without_read_scope_gets_a_forbidden_error(
    world: World, backend: Backend
) -> None:
    async with create_sessionmaker(backend.engine)() as session:
        sender = await create_caller(session, scopes=["send"])
        await session.commit()
    try:
        async with graphql_ws(world.server, key=sender.key) as client:
            await client.subscribe("1", STATUS_CHANGES)
            message = await client.receive()
        assert message["type"] == "error"
        assert message["payload"][0]["extensions"]["code"] == "FORBIDDEN"
    finally:
        await _delete_organizations(backend, [sender])


async def test_an_invalid_filter_id_is_an_invalid_input_error(world: World) -> None:
    async with graphql_ws(world.server, key=world.org_a.key) as client:
        await client.subscribe("1", STATUS_CHANGES, {"filter": {"messageId": "not-an-id"}})
        message = await client.receive()
    assert message["type"] == "error"
    assert message["payload"][0]["extensions"]["code"] == "INVALID_INPUT"


async def test_the_legacy_graphql_ws_protocol_works_too(world: World) -> None:
    async with graphql_ws(world.server, subprotocol=LEGACY_WS) as client:
        await client.send({"type": "connection_init", "payload": {"X-Api-Key": world.org_a.key}})
        assert (await client.receive())["type"] == "connection_ack"
        await client.send(
            {"id": "1", "type": "start", "payload": {"query": STATUS_CHANGES, "variables": {}}}
        )
        await world.wait_for_bus_subscribers(1)
        sent = status_event(world.org_a, previous="SENT", status="DELIVERED")
        await publish(world.redis, [sent])
        message = await client.receive()
    assert message["type"] == "data"
    assert message["payload"]["data"]["messageStatusChanged"]["status"] == "DELIVERED"


async def test_legacy_graphql_ws_rejects_a_bad_key(world: World) -> None:
    async with graphql_ws(world.server, subprotocol=LEGACY_WS) as client:
        await client.send({"type": "connection_init", "payload": {"api-key": "nope"}})
        message = await client.receive()
        assert message["type"] == "connection_error"
        with pytest.raises(ConnectionClosed):
            await client.receive()


async def test_identical_subscriptions_share_one_execution(fanout_world: World) -> None:
    world = fanout_world
    org = world.org_a
    reformatted = " ".join(STATUS_CHANGES.split())  # same operation, other formatting
    async with (
        graphql_ws(world.server, key=org.key) as first,
        graphql_ws(world.server, key=org.key) as second,
        graphql_ws(world.server, key=org.key) as third,
    ):
        await first.subscribe("a", STATUS_CHANGES)
        await second.subscribe("b", reformatted)
        await third.subscribe("c", STATUS_CHANGES, {"filter": {"queueId": "q-x"}})
        await wait_until(lambda: world.broadcaster.member_count == 3)
        # Under uvicorn's websockets-sansio (as served) frames go straight to the wire.
        assert world.broadcaster.direct_write_sockets == (3 if world.direct_writes else 0)
        # Two executions (two distinct operations), hence two bus subscriptions.
        assert world.broadcaster.group_count == 2
        await world.wait_for_bus_subscribers(2)
        executions_before = world.broadcaster.executions
        sent = [status_event(org, previous="QUEUED", status="SENT") for _ in range(5)]
        await publish(world.redis, sent)
        for client, operation_id in ((first, "a"), (second, "b")):
            for expected in sent:
                got_id, data = await client.next_data()
                assert got_id == operation_id
                assert data["messageStatusChanged"]["messageId"] == expected.message_id
        assert world.broadcaster.executions - executions_before == 5
        # Completing one subscriber keeps the execution for the other.
        await first.send({"id": "a", "type": "complete"})
        await wait_until(lambda: world.broadcaster.member_count == 2)
        assert world.broadcaster.group_count == 2
    await wait_until(lambda: world.broadcaster.group_count == 0)
    await world.wait_for_bus_subscribers(0)


async def test_a_slow_consumer_is_told_and_disconnected_without_slowing_others(
    fanout_world: World,
) -> None:
    world = fanout_world
    org = world.org_a
    padding = {"note": "x" * 4_000}
    events = [
        status_event(org, previous="QUEUED", status="SENT", metadata=padding) for _ in range(3_000)
    ]
    async with (
        graphql_ws(world.server, key=org.key) as fast,
        # max_queue=1: the client library stops reading the socket after one message,
        # and a small receive buffer makes the server's writes back up at once.
        graphql_ws(
            world.server,
            key=org.key,
            max_queue=1,
            sock=small_buffer_socket(world.server),
            compression=None,  # or the padding would shrink to nothing on the wire
        ) as slow,
    ):
        await fast.subscribe("fast", STATUS_CHANGES)
        await slow.subscribe("slow", STATUS_CHANGES)
        await wait_until(lambda: world.broadcaster.member_count == 2)
        # Bursts smaller than the outbox (50 frames here): a client reading along keeps up.
        for start in range(0, len(events), 20):
            await publish(world.redis, events[start : start + 20])
            for expected in events[start : start + 20]:
                _, data = await fast.next_data()
                assert data["messageStatusChanged"]["messageId"] == expected.message_id
        await wait_until(lambda: world.broadcaster.slow_consumers == 1)
        # The slow client, once it reads again: what was already on the wire, then the
        # error naming the reason, then the close.
        last: dict[str, Any] = {}
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                last = await slow.receive()
        assert last["type"] == "error", (last, closed.value)
        assert last["id"] == "slow"
        assert last["payload"][0]["extensions"]["code"] == "SLOW_CONSUMER"
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1008
        await wait_until(lambda: world.broadcaster.member_count == 1)
        # The fast one is still subscribed and served.
        after = status_event(org, previous="SENT", status="DELIVERED")
        await publish(world.redis, [after])
        _, data = await fast.next_data()
        assert data["messageStatusChanged"]["messageId"] == after.message_id


async def test_queries_still_work_over_the_websocket(world: World) -> None:
    async with graphql_ws(world.server, key=world.org_a.key) as client:
        await client.subscribe("q", "{ viewer { organization { uuid } } }")
        _, data = await client.next_data()
        assert data["viewer"]["organization"]["uuid"] == str(world.org_a.organization.id)
        assert (await client.receive())["type"] == "complete"


async def test_unsubscribing_releases_the_bus_subscription(world: World) -> None:
    async with graphql_ws(world.server, key=world.org_a.key) as client:
        await client.subscribe("1", STATUS_CHANGES)
        await world.wait_for_bus_subscribers(1)
        await client.send({"id": "1", "type": "complete"})
        await world.wait_for_bus_subscribers(0)
        await client.subscribe("2", STATUS_CHANGES)
        await world.wait_for_bus_subscribers(1)
    # Closing the socket ends its subscriptions.
    await world.wait_for_bus_subscribers(0)
    await asyncio.sleep(0)


async def test_message_and_log_are_read_within_the_subscriber_organization(
    world: World, backend: Backend
) -> None:
    async with create_sessionmaker(backend.engine)() as session:
        own = await create_message(session, world.org_b.organization, body="Hola B")
        foreign = await create_message(session, world.org_a.organization, body="Secreto de A")
        await session.commit()
        own_log = await _first_log_id(session, own.id)
        foreign_log = await _first_log_id(session, foreign.id)
    selection = """
    subscription { messageStatusChanged { logId message { body } log { uuid status } } }
    """
    async with graphql_ws(world.server, key=world.org_b.key) as client:
        await client.subscribe("1", selection)
        await world.wait_for_bus_subscribers(1)
        # B's own channel, but the second event names A's rows (a forged or buggy
        # publisher): they must resolve to null, never to A's data.
        await publish(
            world.redis,
            [
                status_event(
                    world.org_b, previous="QUEUED", status="SENT", message_id=own.id, log_id=own_log
                ),
                status_event(
                    world.org_b,
                    previous="QUEUED",
                    status="SENT",
                    message_id=foreign.id,
                    log_id=foreign_log,
                ),
            ],
        )
        _, first = await client.next_data()
        _, second = await client.next_data()
    assert first["messageStatusChanged"]["message"] == {"body": "Hola B"}
    assert first["messageStatusChanged"]["log"]["uuid"] == str(own_log)
    assert second["messageStatusChanged"]["message"] is None
    assert second["messageStatusChanged"]["log"] is None


async def _first_log_id(session: AsyncSession, message_id: uuid.UUID) -> uuid.UUID:
    result = await session.execute(
        select(CommunicationLog.id).where(CommunicationLog.message_id == message_id)
    )
    return result.scalar_one()
