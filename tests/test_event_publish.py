"""Bulk publishing on the status-event bus, on both Redis flavours (real and in-process)."""

from __future__ import annotations

import asyncio
import uuid

from arq.connections import ArqRedis

from mensajero.events import PendingEvents, StatusEvent, StatusEventBatch, channel_for, publish


def _event(organization_id: str, number: int) -> StatusEvent:
    return StatusEvent(
        organization_id=organization_id,
        message_id=f"m{number}",
        log_id=f"l{number}",
        event="queued",
        previous_status=None,
        status="QUEUED",
        occurred_at="2026-11-22T13:00:00+00:00",
        channel="sms",
    )


async def test_many_events_arrive_in_order_on_their_channels(redis: ArqRedis) -> None:
    pubsub = redis.pubsub()
    await pubsub.subscribe(channel_for("org-a"), channel_for("org-b"))
    await pubsub.get_message(timeout=1.0)
    await pubsub.get_message(timeout=1.0)
    events = [_event("org-a", n) for n in range(2500)] + [_event("org-b", n) for n in range(3)]

    await publish(redis, (event for event in events))  # any iterable, even a generator
    await publish(redis, [_event("org-b", 3)])  # a single event takes the plain path

    received: dict[str, list[StatusEvent]] = {"org-a": [], "org-b": []}
    async with asyncio.timeout(10):
        while len(received["org-a"]) < 2500 or len(received["org-b"]) < 4:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is not None:
                event = StatusEvent.from_json(message["data"])
                received[event.organization_id].append(event)
    await pubsub.aclose()
    assert received["org-a"] == events[:2500]
    assert [e.log_id for e in received["org-b"]] == ["l0", "l1", "l2", "l3"]


def test_a_batch_serializes_each_event_as_the_event_itself_would() -> None:
    # Ids of every shape a batch carries: UUID strings and UUID objects (client ids).
    template = StatusEvent(
        organization_id=str(uuid.uuid4()),
        message_id="",
        log_id="",
        event="queued",
        previous_status=None,
        status="QUEUED",
        occurred_at="2026-11-22T13:00:00+00:00",
        channel="sms",
        queue_id="sms-0193",
        campaign_id=str(uuid.uuid4()),
    )
    batch = StatusEventBatch(
        template=template,
        message_ids=[str(uuid.uuid4()) for _ in range(3)],
        log_ids=[str(uuid.uuid4()) for _ in range(3)],
        client_ids=[uuid.uuid4() for _ in range(3)],
    )

    events = list(batch)

    assert [event.client_id for event in events] == [str(c) for c in batch.client_ids]
    assert [event.log_id for event in events] == batch.log_ids
    assert list(batch.payloads()) == [event.to_json() for event in events]
    assert [StatusEvent.from_json(payload) for payload in batch.payloads()] == events


async def test_deferred_batches_and_single_events_arrive_in_the_order_deferred(
    redis: ArqRedis,
) -> None:
    pubsub = redis.pubsub()
    await pubsub.subscribe(channel_for("org-a"))
    await pubsub.get_message(timeout=1.0)
    batch = StatusEventBatch(
        template=_event("org-a", 0),
        message_ids=[f"m{n}" for n in range(1, 1501)],
        log_ids=[f"l{n}" for n in range(1, 1501)],
        client_ids=[f"c{n}" for n in range(1, 1501)],
    )
    pending = PendingEvents([_event("org-a", 0), batch, _event("org-a", 1501)])
    assert len(pending) == 1502

    await publish(redis, pending)

    received: list[StatusEvent] = []
    async with asyncio.timeout(10):
        while len(received) < 1502:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is not None:
                received.append(StatusEvent.from_json(message["data"]))
    await pubsub.aclose()
    assert received == list(pending)
    assert [event.log_id for event in received] == [f"l{n}" for n in range(1502)]
    assert received[1].client_id == "c1"
