"""Helpers shared by the provider tests."""

from __future__ import annotations

import asyncio

import httpx

from mensajero.providers.http import ProviderHTTP, create_provider_http_client
from mensajero.settings import ProviderHTTPClientName, Settings
from tests.fakes.base import FakeProviderServer

# Every provider test runs through the workers' clients (the lean one, the
# default, and aiohttp's pool, the fallback) and through a plain httpx client
# (what tests and tools pass in): same behaviour.
CLIENT_KINDS = ["lean", "pooled", "httpx"]


def provider_client(kind: str, *, timeout: float) -> ProviderHTTP:
    if kind in ("lean", "pooled"):
        return create_provider_http_client(
            Settings(
                provider_timeout_seconds=timeout,
                provider_connect_timeout_seconds=timeout,
                provider_http_client=(
                    ProviderHTTPClientName.LEAN
                    if kind == "lean"
                    else ProviderHTTPClientName.AIOHTTP
                ),
            )
        )
    return httpx.AsyncClient(timeout=timeout)


async def wait_for_messages(fake: FakeProviderServer, count: int) -> None:
    """Wait until the fake has accepted ``count`` messages (requests still in flight)."""
    for _ in range(1000):
        if len(fake.messages) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the fake accepted {len(fake.messages)} messages, not {count}")
