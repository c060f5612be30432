"""Executing a long-lived subscription: each event's work is released after the event."""

from __future__ import annotations

import gc
import inspect
from collections.abc import AsyncIterator
from typing import Any

from graphql import build_schema, parse, subscribe
from graphql.execution.collect_fields import FieldDetails

from mensajero.schema.schema import SubscriptionEventExecutionContext

SDL = """
type Query { ok: Boolean }
type Detail { name: String }
type Change { id: String detail: Detail }
type Subscription { changed: Change }
"""
DOCUMENT = parse("subscription { changed { id detail { name } } }")
EVENTS = 300


def _live_field_details() -> int:
    gc.collect()
    return sum(isinstance(thing, FieldDetails) for thing in gc.get_objects())


async def _changes(_info: Any) -> AsyncIterator[dict[str, Any]]:
    for number in range(EVENTS):
        yield {"changed": {"id": str(number), "detail": {"name": f"n{number}"}}}


async def test_a_subscription_does_not_keep_every_event_collected_fields() -> None:
    stream = subscribe(
        build_schema(SDL),
        DOCUMENT,
        root_value={"changed": _changes},
        executor_class=SubscriptionEventExecutionContext,  # type: ignore[call-arg]
    )
    if inspect.isawaitable(stream):
        stream = await stream
    assert isinstance(stream, AsyncIterator), stream
    first = await anext(stream)
    assert first.data == {"changed": {"id": "0", "detail": {"name": "n0"}}}
    before = _live_field_details()
    received = 1
    async for result in stream:
        assert result.errors is None
        received += 1
        if received == EVENTS - 1:
            # The stream is still open: whatever it holds on to is alive here.
            during = _live_field_details()
    assert received == EVENTS
    # graphql-core's stock executor kept a few per event (hundreds here).
    assert during - before < 20
