"""The subscribing side of the status-event bus: routing, filters, bounded buffers, reconnects."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from arq.connections import ArqRedis

from mensajero.events import (
    EVENT_SUBSCRIBERS,
    EventFilter,
    EventHub,
    StatusEvent,
    SubscriberLagging,
    channel_for,
    publish,
)
from mensajero.models import utcnow
from mensajero.redis import create_redis
from tests.conftest import REDIS_TEST_URL, Backend
from tests.live import wait_until


def make_event(organization_id: uuid.UUID, **overrides: object) -> StatusEvent:
    values: dict[str, object] = {
        "organization_id": organization_id,
        "message_id": uuid.uuid4(),
        "log_id": uuid.uuid4(),
        "event": "sent",
        "previous_status": "QUEUED",
        "status": "SENT",
        "occurred_at": utcnow(),
        "channel": "sms",
    }
    values.update(overrides)
    return StatusEvent.build(**values)  # type: ignore[arg-type]


@pytest_asyncio.fixture
async def hub(backend: Backend, redis: ArqRedis) -> AsyncIterator[EventHub]:
    event_hub = EventHub(redis, buffer_size=5)
    await event_hub.start()
    try:
        yield event_hub
    finally:
        await event_hub.stop()


async def test_events_reach_only_their_organization(hub: EventHub, redis: ArqRedis) -> None:
    org_a, org_b = uuid.uuid4(), uuid.uuid4()
    a, b = hub.subscribe(org_a), hub.subscribe(org_b)
    a_events = [make_event(org_a) for _ in range(3)]
    await publish(redis, [*a_events, make_event(org_b)])
    assert [await a.get() for _ in range(3)] == a_events
    assert (await b.get()).organization_id == str(org_b)
    assert a.pending() == b.pending() == 0


async def test_an_event_on_the_wrong_channel_is_ignored(hub: EventHub, redis: ArqRedis) -> None:
    # Defence in depth: a payload naming another organization than its channel's.
    org_a, org_b = uuid.uuid4(), uuid.uuid4()
    b = hub.subscribe(org_b)
    await redis.publish(channel_for(org_b), make_event(org_a).to_json())
    sentinel = make_event(org_b)
    await publish(redis, [sentinel])
    assert await b.get() == sentinel


def test_filters_match_every_given_field() -> None:
    org = uuid.uuid4()
    event = make_event(org, queue_id="q", channel="email", status="FAILED", event="failed")
    assert EventFilter().matches(event)
    assert EventFilter(queue_id="q", channel="email", statuses=frozenset({"FAILED"})).matches(event)
    assert not EventFilter(queue_id="other").matches(event)
    assert not EventFilter(message_id=str(uuid.uuid4())).matches(event)
    assert not EventFilter(statuses=frozenset({"SENT"})).matches(event)
    assert EventFilter(status_changes=True).matches(event)
    assert not EventFilter(status_changes=False).matches(event)
    opened = make_event(org, previous_status="DELIVERED", status="DELIVERED", event="opened")
    assert EventFilter(status_changes=False, events=frozenset({"opened"})).matches(opened)
    assert not EventFilter(status_changes=True).matches(opened)


async def test_a_subscriber_that_falls_behind_is_cut_off_not_buffered_forever() -> None:
    # No Redis needed: the hub's routing is a plain function of channel and payload.
    hub = EventHub(redis=None, buffer_size=5)  # type: ignore[arg-type]
    org = uuid.uuid4()
    before = EVENT_SUBSCRIBERS._value.get()
    slow, fast = hub.subscribe(org), hub.subscribe(org, buffer_size=100)
    events = [make_event(org) for _ in range(8)]
    for event in events:
        hub.dispatch(channel_for(org), event.to_json())
        if fast.pending():
            await fast.get()  # the fast one keeps reading
    assert slow.lagging and slow.closed and slow.pending() == 0
    with pytest.raises(SubscriberLagging):
        await slow.get()
    assert hub.subscriber_count == 1
    assert hub.subscribers_dropped == 1
    assert not fast.lagging
    fast.close()
    assert hub.subscriber_count == 0
    assert EVENT_SUBSCRIBERS._value.get() == before


async def test_closing_wakes_a_waiting_reader() -> None:
    hub = EventHub(redis=None)  # type: ignore[arg-type]
    subscription = hub.subscribe(uuid.uuid4())
    reader = asyncio.create_task(anext(subscription))
    await asyncio.sleep(0)
    subscription.close()
    with pytest.raises(StopAsyncIteration):
        await reader


async def test_the_hub_resubscribes_after_redis_drops_the_connection() -> None:
    redis = await create_redis(REDIS_TEST_URL)
    hub = EventHub(redis)
    await hub.start()
    org = uuid.uuid4()
    subscription = hub.subscribe(org)
    try:
        # Kill exactly our pub/sub connection (other test runs share this Redis).
        clients = await redis.client_list()
        ours = [
            client
            for client in clients
            if int(client.get("psub", 0)) > 0
            and client.get("db") == str(redis.connection_pool.connection_kwargs.get("db", 0))
        ]
        assert ours
        for client in ours:
            await redis.client_kill_filter(_id=client["id"])
        sentinel = make_event(org)

        async def republish_until_heard() -> StatusEvent:
            while True:
                await publish(redis, [sentinel])
                try:
                    return await asyncio.wait_for(subscription.get(), 0.2)
                except TimeoutError:
                    continue

        assert await asyncio.wait_for(republish_until_heard(), 15) == sentinel
        await wait_until(lambda: hub.ready.is_set())
    finally:
        subscription.close()
        await hub.stop()
        await redis.aclose()
