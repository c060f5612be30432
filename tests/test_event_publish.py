"""Bulk publishing on the status-event bus, on both Redis flavours (real and in-process)."""

from __future__ import annotations

import asyncio

from arq.connections import ArqRedis

from mensajero.events import StatusEvent, channel_for, publish


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
