"""Helpers shared by the provider tests."""

from __future__ import annotations

import asyncio

from tests.fakes.base import FakeProviderServer


async def wait_for_messages(fake: FakeProviderServer, count: int) -> None:
    """Wait until the fake has accepted ``count`` messages (requests still in flight)."""
    for _ in range(1000):
        if len(fake.messages) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the fake accepted {len(fake.messages)} messages, not {count}")
