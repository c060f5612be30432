"""sendme123's ``GET /api/messages?status=DELIVERED&limit=20`` at a million messages, and GraphQL.

    uv run python bench/rest_list.py [--database-url postgresql://postgres@127.0.0.1/mensajero_bench]
        [--duration 15] [--concurrency 16] [--redis-url redis://127.0.0.1:6379/14]

What it does, in one run:

1. Makes sure ``mensajero_bench`` exists, is migrated and holds the
   1,000,000-message organization of ``bench/seed.py`` (seeding it if not);
   refreshes statistics and makes a read-only API key.
2. Starts our server (``mensajero serve``, one uvicorn process, production
   settings: PostgreSQL + Redis, no embedded worker).
3. For each scenario, 16 concurrent clients (httpx, one event loop) send the
   request back to back for ``--duration`` seconds after a warm-up. Every
   answer must be 200 and hold 20 items; the REST ``meta.totalRecords`` and the
   GraphQL ``totalCount`` must equal the exact number of live DELIVERED
   messages (counted with ``count(*)`` before the run). Prints req/s, p50, p99.

Scenarios (same 20 rows with the same fields, contact and campaign included):

- REST first page: ``GET /api/messages?status=DELIVERED&limit=20``;
- REST page 500: ``...&page=500`` (OFFSET 9,980: the legacy contract pages by number);
- GraphQL first page (the baseline): ``messages(first: 20, filter: {status: DELIVERED})``
  with ``totalCount``;
- GraphQL row 9,981 on: the same with ``after`` the cursor of the 9,980th row
  (keyset), the GraphQL way to reach page 500.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mensajero.migrate import upgrade_database  # noqa: E402
from mensajero.services.listing import Cursor  # noqa: E402

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/mensajero_bench"
LIMIT = 20
DEEP_PAGE = 500
GRAPHQL_FIELDS = (
    "uuid body contentType status sentAt errorMessage recipient countryCode channel provider "
    "createdAt updatedAt campaign { uuid name } client { uuid name }"
)
GRAPHQL_QUERY = (
    f"query($after: String) {{ messages(first: {LIMIT}, after: $after, "
    f"filter: {{status: DELIVERED}}) {{ totalCount edges {{ node {{ {GRAPHQL_FIELDS} }} }} }} }}"
)


def asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def sqlalchemy_url(url: str) -> str:
    return asyncpg_dsn(url).replace("postgresql://", "postgresql+asyncpg://", 1)


async def ensure_database(url: str, *, messages: int, clients: int) -> None:
    dsn = asyncpg_dsn(url)
    name = dsn.rsplit("/", 1)[1].split("?")[0]
    admin = await asyncpg.connect(dsn.rsplit("/", 1)[0] + "/postgres")
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    await asyncio.to_thread(upgrade_database, sqlalchemy_url(url))
    connection = await asyncpg.connect(dsn)
    try:
        have = await connection.fetchval("SELECT count(*) FROM messages")
    finally:
        await connection.close()
    if have < messages:
        from bench.seed import seed

        print(f"seeding {messages:,} messages (found {have:,})", flush=True)
        await seed(url, clients=clients, messages=messages, reset=True, progress=False)
    else:
        print(f"reusing {have:,} messages", flush=True)


async def prepare(url: str) -> dict[str, Any]:
    """The busiest organization, a read key, the exact DELIVERED total and the deep cursor."""
    from mensajero.db import create_sessionmaker, create_unpooled_engine, transaction
    from mensajero.services.organization import create_api_key

    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        organization_id, member_id = await connection.fetchrow(
            """
            SELECT m.organization_id, m.id FROM members m
            JOIN (SELECT organization_id, count(*) AS n FROM messages GROUP BY 1
                  ORDER BY n DESC LIMIT 1) busiest USING (organization_id)
            ORDER BY m.created_at LIMIT 1
            """
        )
        await connection.execute("ANALYZE messages; ANALYZE message_counts; ANALYZE clients")
        delivered = await connection.fetchval(
            """SELECT count(*) FROM messages
               WHERE organization_id = $1 AND deleted_at IS NULL AND status = 'DELIVERED'""",
            organization_id,
        )
        row = await connection.fetchrow(
            f"""SELECT created_at, id FROM messages
                WHERE organization_id = $1 AND deleted_at IS NULL AND status = 'DELIVERED'
                ORDER BY created_at DESC, id DESC OFFSET {(DEEP_PAGE - 1) * LIMIT - 1} LIMIT 1""",
            organization_id,
        )
    finally:
        await connection.close()
    engine = create_unpooled_engine(sqlalchemy_url(url))
    try:
        async with transaction(create_sessionmaker(engine)) as session:
            _, key = await create_api_key(
                session,
                organization_id=organization_id,
                member_id=member_id,
                name=f"bench rest {uuid.uuid4().hex[:6]}",
                scopes=["read"],
            )
    finally:
        await engine.dispose()
    return {
        "organization_id": organization_id,
        "key": key,
        "delivered": delivered,
        "deep_cursor": Cursor(row["created_at"], row["id"]).encode(),
    }


def start_server(url: str, redis_url: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "MENSAJERO_DATABASE_URL": sqlalchemy_url(url),
        "MENSAJERO_REDIS_URL": redis_url,
        "MENSAJERO_AUTO_MIGRATE": "false",
        "MENSAJERO_EMBEDDED_WORKER": "false",
    }
    command = [str(Path(sys.executable).parent / "mensajero"), "serve", "--port", str(port)]
    return subprocess.Popen(
        [*command, "--workers", "1", "--log-level", "warning"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc), to compare cost per request."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Scenario:
    name: str
    method: str
    path: str
    params: dict[str, Any] | None = None
    body: dict[str, Any] | None = None


@dataclass
class Result:
    requests: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def check(payload: dict[str, Any], expected_total: int) -> None:
    """20 items and the exact total, through either door."""
    if "meta" in payload:
        items, total = payload["data"], payload["meta"]["totalRecords"]
    else:
        if payload.get("errors"):
            raise RuntimeError(str(payload["errors"])[:300])
        connection = payload["data"]["messages"]
        items, total = connection["edges"], connection["totalCount"]
    if len(items) != LIMIT or total != expected_total:
        raise RuntimeError(f"{len(items)} items, total {total} (expected {expected_total})")


async def load(
    client: httpx.AsyncClient,
    scenario: Scenario,
    *,
    concurrency: int,
    duration: float,
    warmup: float,
    expected_total: int,
) -> Result:
    async def send() -> httpx.Response:
        return await client.request(
            scenario.method, scenario.path, params=scenario.params, json=scenario.body
        )

    first = await send()
    if first.status_code != 200:
        raise RuntimeError(f"{first.status_code}: {first.text[:300]}")
    check(first.json(), expected_total)
    latencies: list[float] = []
    measuring = False
    stop_at = 0.0

    async def worker() -> None:
        while True:
            started = time.perf_counter()
            if measuring and started >= stop_at:
                return
            response = await send()
            elapsed = time.perf_counter() - started
            if response.status_code != 200:
                raise RuntimeError(f"{response.status_code}: {response.text[:300]}")
            if measuring and started < stop_at:
                latencies.append(elapsed * 1000)

    tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
    await asyncio.sleep(warmup)
    begin = time.perf_counter()
    stop_at = begin + duration
    measuring = True
    await asyncio.gather(*tasks)
    return Result(len(latencies), stop_at - begin, latencies)


async def single_request_latency(
    client: httpx.AsyncClient, scenario: Scenario, *, requests: int = 200
) -> float:
    """p50 of one client alone: the latency a request has without queueing behind others."""
    latencies = []
    for _ in range(requests):
        started = time.perf_counter()
        response = await client.request(
            scenario.method, scenario.path, params=scenario.params, json=scenario.body
        )
        latencies.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(response.text[:300])
    return sorted(latencies)[len(latencies) // 2]


async def run(args: argparse.Namespace) -> None:
    await ensure_database(args.database_url, messages=args.messages, clients=args.clients)
    prepared = await prepare(args.database_url)
    delivered = prepared["delivered"]
    print(f"organization {prepared['organization_id']}: {delivered:,} live DELIVERED", flush=True)
    scenarios = [
        Scenario(
            "REST first page", "GET", "/api/messages", {"status": "DELIVERED", "limit": LIMIT}
        ),
        Scenario(
            f"REST page {DEEP_PAGE}",
            "GET",
            "/api/messages",
            {"status": "DELIVERED", "limit": LIMIT, "page": DEEP_PAGE},
        ),
        Scenario("GraphQL first page", "POST", "/graphql", body={"query": GRAPHQL_QUERY}),
        Scenario(
            f"GraphQL after row {(DEEP_PAGE - 1) * LIMIT:,} (keyset)",
            "POST",
            "/graphql",
            body={"query": GRAPHQL_QUERY, "variables": {"after": prepared["deep_cursor"]}},
        ),
    ]
    server = start_server(args.database_url, args.redis_url, args.port)
    rows: list[tuple[Scenario, Result, float, float]] = []
    limits = httpx.Limits(
        max_connections=args.concurrency, max_keepalive_connections=args.concurrency
    )
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{args.port}",
            headers={"Authorization": f"Bearer {prepared['key']}"},
            timeout=60,
            limits=limits,
        ) as client:
            for _ in range(240):
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.5)
            for scenario in scenarios:
                cpu_before = process_cpu_seconds(server.pid)
                result = await load(
                    client,
                    scenario,
                    concurrency=args.concurrency,
                    duration=args.duration,
                    warmup=args.warmup,
                    expected_total=delivered,
                )
                # Server CPU per request over the whole scenario (warm-up included).
                served = result.requests + int(result.throughput * args.warmup) + 1
                cpu_ms = 1000 * (process_cpu_seconds(server.pid) - cpu_before) / served
                alone = await single_request_latency(client, scenario)
                rows.append((scenario, result, alone, cpu_ms))
                print(
                    f"{scenario.name:36} {result.throughput:7.1f} req/s  "
                    f"p50 {result.percentile(0.5):7.1f} ms  p99 {result.percentile(0.99):7.1f} ms"
                    f"  (one client alone: p50 {alone:5.1f} ms; ~{cpu_ms:.1f} ms server CPU/req)",
                    flush=True,
                )
    finally:
        stop(server)
    baseline = rows[2][1].throughput
    print()
    print(
        "| scenario | req/s | p50 ms | p99 ms | p50 ms, one client | server CPU ms/req "
        "| req/s vs GraphQL first page |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for scenario, result, alone, cpu_ms in rows:
        print(
            f"| {scenario.name} | {result.throughput:.0f} | {result.percentile(0.5):.1f} | "
            f"{result.percentile(0.99):.1f} | {alone:.1f} | {cpu_ms:.1f} | "
            f"{result.throughput / baseline:.2f}x |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--port", type=int, default=8714)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
