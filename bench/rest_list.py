"""sendme123's ``GET /api/messages?status=DELIVERED&limit=20`` at a million messages, and GraphQL.

    uv run python bench/rest_list.py [--database-url postgresql://postgres@127.0.0.1/mensajero_bench]
        [--duration 15] [--concurrency 16] [--workers 1 2] [--client wrk|asyncio]
        [--redis-url redis://127.0.0.1:6379/14]

What it does, in one run:

1. Makes sure ``mensajero_bench`` exists, is migrated and holds the
   1,000,000-message organization of ``bench/seed.py`` (seeding it if not);
   refreshes statistics, compacts the count rollups (as the stats cron does)
   and makes a read-only API key.
2. For each ``--workers`` count, starts our server (``mensajero serve --workers N``:
   N uvicorn processes, production settings: PostgreSQL + Redis, no embedded worker).
3. For each scenario: checks a few answers (200, 20 items, the REST
   ``meta.totalRecords`` and the GraphQL ``totalCount`` equal to the exact number
   of live DELIVERED messages, counted with ``count(*)`` before the run); warms
   up; then ``--concurrency`` keep-alive connections send the request back to
   back for ``--duration`` seconds (any answer but 200 fails the run); checks
   the answers again; then one connection alone, for the latency a request has
   without queueing behind others.

The load generator must not starve the server of CPU on a small machine: by
default it is ``wrk`` (C; Debian/Ubuntu: ``apt-get install -y wrk``), with a Lua
script for the method, key header and body, and ``--latency`` for percentiles.
Without wrk, ``--client asyncio`` uses a lean HTTP/1.1 keep-alive client on raw
asyncio streams (several times the CPU per request of wrk, a fraction of httpx's).

Printed per scenario: req/s, p50, p99, the p50 of one client alone, and CPU
per request of the server processes and of the PostgreSQL backends serving
them (from /proc; "n/a" when the database is on another machine), and of the
load generator. By Little's law, p50 at 16 in flight is about 16 / throughput,
so the CPU per request is what sets the latency on a busy machine.

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
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import asyncpg
import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.loadgen import (  # noqa: E402
    WRK_INSTALL_HINT,
    Load,
    Request,
    checked_measurement,
    stop,
)
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
SERVER_LOG = Path(tempfile.gettempdir()) / "mensajero-bench-rest-list-server.log"


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
    from mensajero.services.message import compact_counts
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
        # What the stats cron does every few minutes in production: fold the count
        # rollups' delta rows (seeding leaves hundreds per key), keeping every sum.
        async with transaction(create_sessionmaker(engine)) as session:
            folded = await compact_counts(session)
        print(f"compacted the count rollups: {folded:,} delta rows folded", flush=True)
    finally:
        await engine.dispose()
    return {
        "organization_id": organization_id,
        "key": key,
        "delivered": delivered,
        "deep_cursor": Cursor(row["created_at"], row["id"]).encode(),
    }


def start_server(url: str, redis_url: str, port: int, workers: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "MENSAJERO_DATABASE_URL": sqlalchemy_url(url),
        "MENSAJERO_REDIS_URL": redis_url,
        "MENSAJERO_AUTO_MIGRATE": "false",
        "MENSAJERO_EMBEDDED_WORKER": "false",
    }
    command = [str(Path(sys.executable).parent / "mensajero"), "serve", "--port", str(port)]
    # Its log (e.g. ClientDisconnect when wrk stops mid-request) goes to a file, not the table.
    log = SERVER_LOG.open("ab")
    print(f"server log: {SERVER_LOG}", flush=True)
    return subprocess.Popen(
        [*command, "--workers", str(workers), "--log-level", "warning"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=log,
        start_new_session=True,  # its own process group: the workers are counted and stopped
    )


# --- scenarios and checks ---------------------------------------------------------------


@dataclass
class Scenario:
    name: str
    method: str
    path: str
    params: dict[str, Any] | None = None
    body: dict[str, Any] | None = None

    @property
    def target(self) -> str:
        return self.path + (f"?{urlencode(self.params)}" if self.params else "")

    @property
    def payload(self) -> bytes:
        return json.dumps(self.body).encode() if self.body is not None else b""

    def request(self, base_url: str, key: str) -> Request:
        headers = {"Authorization": f"Bearer {key}"}
        if self.body is not None:
            headers["Content-Type"] = "application/json"
        return Request(
            self.name,
            self.method,
            base_url + self.target,
            headers,
            self.payload if self.body is not None else None,
        )


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


async def check_answers(
    base_url: str, key: str, scenario: Scenario, expected_total: int, *, times: int = 3
) -> None:
    async with httpx.AsyncClient(
        base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60
    ) as client:
        for _ in range(times):
            response = await client.request(
                scenario.method, scenario.path, params=scenario.params, json=scenario.body
            )
            if response.status_code != 200:
                raise RuntimeError(
                    f"{scenario.name}: {response.status_code}: {response.text[:300]}"
                )
            check(response.json(), expected_total)


# --- the run ----------------------------------------------------------------------------


@dataclass
class Row:
    scenario: Scenario
    workers: int
    load: Load
    alone_p50_ms: float
    server_cpu_ms: float
    postgres_cpu_ms: float | None
    client_cpu_ms: float


async def measure(
    args: argparse.Namespace,
    prepared: dict[str, Any],
    scenario: Scenario,
    server: subprocess.Popen[bytes],
    base_url: str,
    workers: int,
) -> Row:
    key, delivered = prepared["key"], prepared["delivered"]
    measured = await checked_measurement(
        scenario.request(base_url, key),
        server,
        asyncpg_dsn(args.database_url),
        lambda: check_answers(base_url, key, scenario, delivered),
        client=args.client,
        connections=args.concurrency,
        warmup=args.warmup,
        duration=args.duration,
        alone_duration=args.alone_duration,
    )
    cpu = measured.cpu
    assert measured.alone is not None
    return Row(
        scenario,
        workers,
        measured.load,
        measured.alone.p50_ms,
        cpu.server_ms,
        cpu.postgres_ms,
        cpu.client_ms,
    )


async def wait_until_healthy(base_url: str, server: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as client:
        for _ in range(240):
            if server.poll() is not None:
                raise RuntimeError("the server exited")
            try:
                if (await client.get("/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.5)
    raise RuntimeError("the server did not become healthy")


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


async def run(args: argparse.Namespace) -> None:
    if args.client == "wrk" and shutil.which("wrk") is None:
        raise SystemExit(f"wrk not found: {WRK_INSTALL_HINT}")
    await ensure_database(args.database_url, messages=args.messages, clients=args.clients)
    prepared = await prepare(args.database_url)
    delivered = prepared["delivered"]
    print(f"organization {prepared['organization_id']}: {delivered:,} live DELIVERED", flush=True)
    print(f"load generator: {args.client}; load average {load_average()}", flush=True)
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
    base_url = f"http://127.0.0.1:{args.port}"
    rows: list[Row] = []
    for workers in args.workers:
        server = start_server(args.database_url, args.redis_url, args.port, workers)
        try:
            await wait_until_healthy(base_url, server)
            for scenario in scenarios:
                row = await measure(args, prepared, scenario, server, base_url, workers)
                rows.append(row)
                postgres = "n/a" if row.postgres_cpu_ms is None else f"{row.postgres_cpu_ms:.2f}"
                print(
                    f"{workers} process(es) {scenario.name:36} {row.load.throughput:7.1f} req/s"
                    f"  p50 {row.load.p50_ms:6.1f} ms  p99 {row.load.p99_ms:6.1f} ms"
                    f"  (one client alone: p50 {row.alone_p50_ms:5.1f} ms; CPU per request:"
                    f" server {row.server_cpu_ms:.2f} ms, PostgreSQL {postgres} ms,"
                    f" load generator {row.client_cpu_ms:.2f} ms; load {load_average()})",
                    flush=True,
                )
        finally:
            stop(server)
    print()
    print(
        "| scenario | server processes | req/s | p50 ms | p99 ms | p50 ms, one client "
        "| server CPU ms/req | PostgreSQL CPU ms/req | req/s vs GraphQL first page |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        baseline = next(
            r.load.throughput
            for r in rows
            if r.workers == row.workers and r.scenario.name == "GraphQL first page"
        )
        postgres = "n/a" if row.postgres_cpu_ms is None else f"{row.postgres_cpu_ms:.2f}"
        print(
            f"| {row.scenario.name} | {row.workers} | {row.load.throughput:.0f} | "
            f"{row.load.p50_ms:.1f} | {row.load.p99_ms:.1f} | {row.alone_p50_ms:.1f} | "
            f"{row.server_cpu_ms:.2f} | {postgres} | {row.load.throughput / baseline:.2f}x |"
        )
    print(f"\nload average at the end: {load_average()}")


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
    parser.add_argument(
        "--alone-duration", type=float, default=4.0, help="seconds of the one-client run"
    )
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[1, 2],
        help="server process counts to measure, one server after the other",
    )
    parser.add_argument(
        "--client",
        choices=["wrk", "asyncio"],
        default="wrk" if shutil.which("wrk") else "asyncio",
        help=f"load generator (default wrk when installed; to get it: {WRK_INSTALL_HINT})",
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
