"""Reports at a million messages: our rollup-backed services against naive GROUP BYs.

    uv run python bench/reports.py [--database-url postgresql://postgres@127.0.0.1/mensajero_bench]
        [--iterations 60] [--naive-iterations 5] [--conversations 20000]

What it does, in one run:

1. Makes sure ``mensajero_bench`` exists, is migrated (the ``attempt_counts``
   migration backfills its rollup) and holds the 1,000,000-message
   organization of ``bench/seed.py`` (seeding it if not). The seed makes no
   conversations, so this adds ``--conversations`` of them (once; reproducible
   with ``setseed``) over 10,000 of its clients, with categories, outcomes,
   five agents and first response / resolution times, then ANALYZEs.
2. Times, one after another on one connection (the service functions the
   GraphQL and REST doors call, PostgreSQL through asyncpg):

   - ``stats``: ``communication_stats`` for the last 90 local days grouped by
     day (reads ``attempt_counts_daily``);
   - ``messaging``: ``messaging_report`` since 90 days ago (all the data:
     ``attempt_counts_daily``, ``message_counts``, conversation times), and
     with its default window (the last 30 local days, ``messaging 30d``);
   - ``customers``: ``customers_report`` first page (20 clients, latest
     contact first, with medians);

   and, in the same run, the baselines:

   - ``naive messages``: one ``GROUP BY`` over the raw messages of those 90
     days by local day, channel and type with the same counters;
   - ``naive logs``: the previous implementation of the stats (a ``GROUP BY``
     over the raw communication logs, by UTC hour, channel and type).

   Each answer of ours is checked against the baseline (same sent/delivered
   totals as the raw logs). Prints p50 and p99 (ms) and the speed-up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from rest_list import DEFAULT_DATABASE_URL, ensure_database, sqlalchemy_url  # noqa: E402
from sqlalchemy import text  # noqa: E402

from mensajero.db import create_engine, create_sessionmaker  # noqa: E402
from mensajero.repositories.report import ReportRepository  # noqa: E402
from mensajero.services import report as report_service  # noqa: E402
from mensajero.services.listing import TimeRange  # noqa: E402

NAIVE_MESSAGES = """
SELECT (created_at AT TIME ZONE :zone)::date AS day, channel, communication_type,
       count(*) AS total,
       count(*) FILTER (WHERE status NOT IN ('SCHEDULED', 'QUEUED', 'SENDING', 'CANCELED')),
       count(*) FILTER (WHERE status IN ('DELIVERED', 'READ', 'RECEIVED')),
       count(*) FILTER (WHERE status = 'READ'),
       count(*) FILTER (WHERE status = 'BOUNCED'),
       count(*) FILTER (WHERE status IN ('FAILED', 'UNDELIVERED', 'CANCELED'))
FROM messages
WHERE organization_id = :org AND direction = 'outbound' AND deleted_at IS NULL
  AND created_at >= :start AND created_at < :end
GROUP BY 1, 2, 3
"""

SEED_CONVERSATIONS = """
WITH picked AS (
    SELECT id, row_number() OVER (ORDER BY id) AS n
    FROM clients WHERE organization_id = :org AND deleted_at IS NULL
    ORDER BY id LIMIT 10000
),
agents AS (
    SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM members WHERE organization_id = :org
),
draws AS (
    SELECT g, 1 + (g * 7919) % 10000 AS client_n,
           now() - (random() * interval '90 days') AS opened_at,
           random() AS r1, random() AS r2, (random() * 4)::int AS agent_n
    FROM generate_series(1, :conversations) AS g
)
INSERT INTO conversations (id, organization_id, client_id, channel, status, category,
    assigned_member_id, resolution_outcome, opened_at, last_message_at, first_response_at,
    first_response_seconds, resolved_at, resolution_seconds, created_at, updated_at)
SELECT gen_random_uuid(), :org, picked.id,
       (ARRAY['whatsapp', 'sms'])[1 + (g % 2)],
       CASE WHEN r1 < 0.7 THEN 'resolved' WHEN r1 < 0.85 THEN 'pending' ELSE 'open' END,
       (ARRAY['ventas', 'soporte', 'cobranza', 'agenda'])[1 + (g % 4)],
       CASE WHEN r2 < 0.9 THEN agents.id END,
       CASE WHEN r1 < 0.7 THEN (ARRAY['sale', 'solved', 'no_answer'])[1 + (g % 3)] END,
       opened_at,
       opened_at + (r2 * interval '2 days'),
       CASE WHEN r2 < 0.95 THEN opened_at + ((r2 * 3600)::int * interval '1 second') END,
       CASE WHEN r2 < 0.95 THEN (r2 * 3600)::int END,
       CASE WHEN r1 < 0.7 THEN opened_at + ((r1 * 86400)::int * interval '1 second') END,
       CASE WHEN r1 < 0.7 THEN (r1 * 86400)::int END,
       opened_at, opened_at
FROM draws
JOIN picked ON picked.n = draws.client_n
LEFT JOIN agents ON agents.n = draws.agent_n
"""


async def prepare(sessionmaker: Any, conversations: int) -> tuple[Any, str]:
    async with sessionmaker() as session:
        org_id, zone = (
            await session.execute(
                text(
                    "SELECT o.id, o.timezone FROM organizations o JOIN messages m"
                    " ON m.organization_id = o.id GROUP BY o.id ORDER BY count(*) DESC LIMIT 1"
                )
            )
        ).one()
        have = (
            await session.execute(
                text("SELECT count(*) FROM conversations WHERE organization_id = :org"),
                {"org": org_id},
            )
        ).scalar_one()
        if have == 0:
            members = (
                await session.execute(
                    text("SELECT count(*) FROM members WHERE organization_id = :org"),
                    {"org": org_id},
                )
            ).scalar_one()
            for index in range(members, 5):
                await session.execute(
                    text(
                        "INSERT INTO members (id, organization_id, email, name, role,"
                        " created_at, updated_at) VALUES (gen_random_uuid(), :org, :email,"
                        " :name, 'agent', now(), now())"
                    ),
                    {"org": org_id, "email": f"agent{index}@bench.test", "name": f"Agente {index}"},
                )
            await session.execute(text("SELECT setseed(0.42)"))
            await session.execute(
                text(SEED_CONVERSATIONS), {"org": org_id, "conversations": conversations}
            )
            await session.execute(text("ANALYZE conversations"))
            await session.commit()
            print(f"added {conversations:,} conversations", flush=True)
        else:
            print(f"reusing {have:,} conversations", flush=True)
    # Fresh statistics, as autovacuum would have them on a live system.
    async with sessionmaker() as session:
        for table in ("attempt_counts", "message_counts", "conversations", "credit_ledger"):
            await session.execute(text(f"ANALYZE {table}"))
        await session.commit()
    return org_id, zone


async def timed(
    label: str, iterations: int, run: Callable[[], Awaitable[Any]]
) -> tuple[list[float], Any]:
    result = None
    for _ in range(min(3, iterations)):  # warm-up: caches, prepared statements
        result = await run()
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        result = await run()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    print(
        f"{label:<16} p50 {percentile(samples, 50):8.1f} ms   p99 {percentile(samples, 99):8.1f} ms"
        f"   ({iterations} runs)",
        flush=True,
    )
    return samples, result


def percentile(samples: list[float], p: float) -> float:
    if len(samples) == 1:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[int(p) - 1]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    await ensure_database(args.database_url, messages=1_000_000, clients=100_000)
    engine = create_engine(sqlalchemy_url(args.database_url), pool_size=2)
    sessionmaker = create_sessionmaker(engine)
    org_id, zone = await prepare(sessionmaker, args.conversations)
    now = datetime.now(UTC)
    async with sessionmaker() as session:
        zone_info = await report_service.organization_zone(session, org_id)
        today = now.astimezone(zone_info).date()
        first_day = today - timedelta(days=89)
        window = report_service.local_days(first_day, today, zone_info)
        since = window.start

        async def stats() -> Any:
            return await report_service.communication_stats(
                session, organization_id=org_id, start=first_day, end=today, group_by="day"
            )

        async def messaging() -> Any:
            return await report_service.messaging_report(
                session, organization_id=org_id, since=since, now=now
            )

        async def messaging_default() -> Any:
            return await report_service.messaging_report(session, organization_id=org_id, now=now)

        async def customers() -> Any:
            return await report_service.customers_report(
                session, organization_id=org_id, query=report_service.CustomerQuery(limit=20)
            )

        async def naive_messages() -> Any:
            return (
                await session.execute(
                    text(NAIVE_MESSAGES),
                    {"zone": zone, "org": org_id, "start": window.start, "end": window.end},
                )
            ).all()

        async def naive_logs() -> Any:
            return await ReportRepository(session, org_id).raw_grouped_counts(
                created=TimeRange(window.start, window.end), by_hour=True
            )

        results: dict[str, list[float]] = {}
        results["stats"], stats_result = await timed("stats 90d/day", args.iterations, stats)
        results["messaging"], messaging_result = await timed(
            "messaging 90d", args.iterations, messaging
        )
        results["messaging_30d"], _ = await timed(
            "messaging 30d", args.iterations, messaging_default
        )
        results["customers"], customers_result = await timed(
            "customers p1", args.iterations, customers
        )
        results["naive_messages"], naive_rows = await timed(
            "naive messages", args.naive_iterations, naive_messages
        )
        results["naive_logs"], raw_groups = await timed(
            "naive logs", args.naive_iterations, naive_logs
        )
    await engine.dispose()

    # Same answers: the rollup's totals are the raw logs' totals.
    raw_sent = sum(group.counts.sent for group in raw_groups)
    raw_delivered = sum(group.counts.delivered for group in raw_groups)
    assert (stats_result.totals.sent, stats_result.totals.delivered) == (raw_sent, raw_delivered)
    assert messaging_result.outbound.sent == raw_sent
    assert len(customers_result.customers) == 20
    assert sum(row[3] for row in naive_rows) > 0
    ours = {name: percentile(results[name], 50) for name in ("stats", "messaging", "customers")}
    naive = percentile(results["naive_messages"], 50)
    print(
        "speed-up of the p50 over naive messages GROUP BY: "
        + ", ".join(f"{name} {naive / value:.0f}x" for name, value in ours.items()),
        flush=True,
    )
    return {
        name: {"p50_ms": round(percentile(s, 50), 2), "p99_ms": round(percentile(s, 99), 2)}
        for name, s in results.items()
    } | {"attempts_90d": raw_sent}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--naive-iterations", type=int, default=5)
    parser.add_argument("--conversations", type=int, default=20_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = asyncio.run(run(args))
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
