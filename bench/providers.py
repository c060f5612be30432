"""Provider clients against the fake providers over real TCP: what the pooled client buys.

    uv run python bench/providers.py [--messages 2000] [--concurrency 64] [--latency-ms 20]

Each fake (Twilio, Resend, Evolution) runs in its own child process with a fixed
answer latency. For each provider the same sends go out twice:

- ``pooled``: one ``create_provider_http_client(settings)`` shared by every send,
  as the workers do (keep-alive connections, bounded pool);
- ``baseline``: a new ``httpx.AsyncClient`` per send (a TCP connection each),
  what a job that builds its own client would do.

Prints sends per second and latency percentiles per mode; ``--json`` for machines.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mensajero.models import Channel
from mensajero.providers.base import ChannelProvider, OutboundMessage
from mensajero.providers.email.resend import ResendEmailProvider
from mensajero.providers.http import create_provider_http_client
from mensajero.providers.sms.twilio import TwilioSmsProvider
from mensajero.providers.whatsapp.evolution import EvolutionWhatsAppProvider
from mensajero.settings import Settings
from tests.fakes.process import fake_process

Factory = Callable[[Settings, httpx.AsyncClient], ChannelProvider]
PROVIDERS: dict[str, tuple[Channel, str, Factory]] = {
    "twilio": (Channel.SMS, "+573001234567", TwilioSmsProvider),
    "resend": (Channel.EMAIL, "ana@example.com", ResendEmailProvider),
    "evolution": (Channel.WHATSAPP, "+573001234567", EvolutionWhatsAppProvider),
}


def settings_for(provider: str, base_url: str, concurrency: int) -> Settings:
    common = {"provider_max_connections": concurrency, "provider_timeout_seconds": 30.0}
    if provider == "twilio":
        return Settings(
            twilio_base_url=base_url,
            twilio_account_sid="AC" + "0" * 32,
            twilio_auth_token=SecretStr("test-auth-token"),
            twilio_from_number="+15005550006",
            **common,
        )
    if provider == "resend":
        return Settings(resend_base_url=base_url, resend_api_key=SecretStr("re_test_key"), **common)
    return Settings(
        evolution_base_url=base_url, evolution_api_key=SecretStr("evolution-test-key"), **common
    )


def message(channel: Channel, recipient: str) -> OutboundMessage:
    return OutboundMessage(
        attempt_id=uuid.uuid4(),
        organization_id=uuid.uuid4(),
        channel=channel,
        recipient=recipient,
        body="Hola Ana, te recordamos tu sesión de mañana a las 10:00.",
        subject="Recordatorio",
    )


async def run(
    count: int, concurrency: int, send: Callable[[], Awaitable[None]]
) -> dict[str, float]:
    latencies: list[float] = []
    semaphore = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with semaphore:
            started = time.perf_counter()
            await send()
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(count)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "sends_per_second": round(count / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1),
        "seconds": round(elapsed, 2),
    }


async def bench_provider(
    provider: str, base_url: str, count: int, concurrency: int
) -> dict[str, dict[str, float]]:
    channel, recipient, factory = PROVIDERS[provider]
    settings = settings_for(provider, base_url, concurrency)

    async with create_provider_http_client(settings) as http:
        pooled_provider = factory(settings, http)
        await pooled_provider.send(message(channel, recipient))  # warm the pool

        async def pooled() -> None:
            await pooled_provider.send(message(channel, recipient))

        pooled_result = await run(count, concurrency, pooled)

    async def fresh_client() -> None:
        async with httpx.AsyncClient(timeout=30.0) as own:
            await factory(settings, own).send(message(channel, recipient))

    baseline_result = await run(count, concurrency, fresh_client)
    return {"pooled": pooled_result, "baseline": baseline_result}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--providers", default="twilio,resend,evolution")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    results: dict[str, dict[str, dict[str, float]]] = {}
    for provider in args.providers.split(","):
        with contextlib.ExitStack() as stack:
            base_url = stack.enter_context(
                fake_process(provider, "--latency-ms", str(args.latency_ms))
            )
            results[provider] = await bench_provider(
                provider, base_url, args.messages, args.concurrency
            )
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(
        f"{args.messages} sends per mode, concurrency {args.concurrency}, "
        f"fake latency {args.latency_ms:g} ms"
    )
    print(f"{'provider':<10} {'mode':<9} {'sends/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for provider, modes in results.items():
        for mode, figures in modes.items():
            print(
                f"{provider:<10} {mode:<9} {figures['sends_per_second']:>9} "
                f"{figures['p50_ms']:>8} {figures['p99_ms']:>8}"
            )
        speedup = modes["pooled"]["sends_per_second"] / modes["baseline"]["sends_per_second"]
        print(f"{provider:<10} pooled/baseline throughput: {speedup:.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
