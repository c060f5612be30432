"""What the transactional webhook fan-out adds to the state machine, on PostgreSQL.

    uv run python bench/webhook_fanout.py [--batch 500] [--callbacks 200] [--repeat 7]

A scratch database (created, migrated, dropped) holds one organization with
``--batch`` QUEUED SMS attempts. Two measurements, each rolled back after
every run so that every run starts from the same rows:

* a dispatch batch: ``claim_for_dispatch`` + ``record_sent`` of the whole batch
  (the worker's two transactions' statements, in one here);
* provider callbacks: ``--callbacks`` DELIVERED transitions, one
  ``apply_transition`` each (one per provider webhook in production).

Scenarios, in the same run: baseline = the fan-out hook replaced by a no-op
(the state machine as it was before webhooks); no endpoints (the hook's one
indexed query); one endpoint subscribed to everything; three endpoints.
Medians of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import delete
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mensajero.db import create_engine, create_sessionmaker  # noqa: E402
from mensajero.migrate import upgrade_database  # noqa: E402
from mensajero.models import (  # noqa: E402
    MessageStatus,
    TimelineEventType,
    WebhookEndpoint,
    utcnow,
)
from mensajero.providers.base import ProviderAccepted  # noqa: E402
from mensajero.services import delivery as delivery_service  # noqa: E402
from mensajero.services import webhook as webhook_service  # noqa: E402
from tests.delivery_support import create_attempt_row  # noqa: E402
from tests.factories import create_organization  # noqa: E402

ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _no_fan_out(*_args: Any, **_kwargs: Any) -> int:
    return 0


async def main(batch: int, callbacks: int, repeat: int) -> None:
    name = f"mensajero_bench_webhooks_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(_dsn(ADMIN_URL))
    await admin.execute(f'CREATE DATABASE "{name}"')
    database_url = make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    engine = create_engine(database_url)
    try:
        await asyncio.to_thread(upgrade_database, database_url)
        sessionmaker = create_sessionmaker(engine)
        async with sessionmaker() as session:
            organization = await create_organization(session)
            log_ids = [
                (
                    await create_attempt_row(
                        session, organization, recipient=f"+57300{index:07d}", status="QUEUED"
                    )
                ).id
                for index in range(batch)
            ]
            await session.commit()

        async def dispatch_batch() -> float:
            async with sessionmaker() as session:
                started = time.perf_counter()
                claimed = await delivery_service.claim_for_dispatch(session, log_ids=log_ids)
                now = utcnow()
                await delivery_service.record_sent(
                    session,
                    accepted=[
                        (attempt, ProviderAccepted("twilio", f"SM{attempt.id.hex}"), now)
                        for attempt in claimed
                    ],
                )
                await session.flush()
                elapsed = time.perf_counter() - started
                await session.rollback()
            return elapsed * 1000

        async def provider_callbacks() -> float:
            async with sessionmaker() as session:
                claimed = await delivery_service.claim_for_dispatch(
                    session, log_ids=log_ids[:callbacks]
                )
                now = utcnow()
                await delivery_service.record_sent(
                    session,
                    accepted=[
                        (a, ProviderAccepted("twilio", f"SM{a.id.hex}"), now) for a in claimed
                    ],
                )
                started = time.perf_counter()
                for log_id in log_ids[:callbacks]:
                    await delivery_service.apply_transition(
                        session,
                        log_id=log_id,
                        transition=delivery_service.Transition(
                            event=TimelineEventType.DELIVERED,
                            status=MessageStatus.DELIVERED,
                            occurred_at=utcnow(),
                            dedup_key="status:delivered",
                        ),
                    )
                elapsed = time.perf_counter() - started
                await session.rollback()
            return elapsed * 1000 / callbacks

        async def median(run: Callable[[], Awaitable[float]]) -> float:
            await run()  # warm-up
            return statistics.median([await run() for _ in range(repeat)])

        async def set_endpoints(count: int) -> None:
            async with sessionmaker() as session:
                await session.execute(delete(WebhookEndpoint))
                for index in range(count):
                    await webhook_service.create_endpoint(
                        session,
                        organization_id=organization.id,
                        url=f"https://hooks{index}.example.com/x",
                    )
                await session.commit()

        real_fan_out = webhook_service.fan_out
        rows: list[tuple[str, float, float]] = []
        for label, endpoints, hooked in (
            ("baseline: no fan-out hook", 0, False),
            ("hook, no endpoints", 0, True),
            ("hook, 1 endpoint", 1, True),
            ("hook, 3 endpoints", 3, True),
        ):
            webhook_service.fan_out = real_fan_out if hooked else _no_fan_out  # type: ignore[assignment]
            await set_endpoints(endpoints)
            rows.append((label, await median(dispatch_batch), await median(provider_callbacks)))
        webhook_service.fan_out = real_fan_out  # type: ignore[assignment]

        print(f"batch={batch} callbacks={callbacks} repeat={repeat} (medians)")
        print(f"| scenario | dispatch batch of {batch} (ms) | per callback (ms) |")
        print("|---|---|---|")
        base_batch, base_callback = rows[0][1], rows[0][2]
        for label, batch_ms, callback_ms in rows:
            print(
                f"| {label} | {batch_ms:.1f} ({batch_ms / base_batch:.2f}x) |"
                f" {callback_ms:.2f} ({callback_ms / base_callback:.2f}x) |"
            )
    finally:
        await engine.dispose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--callbacks", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=7)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.batch, arguments.callbacks, arguments.repeat))
