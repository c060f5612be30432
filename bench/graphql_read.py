"""GraphQL read throughput and latency at a million messages, against PostGraphile.

    uv run python bench/graphql_read.py [--database-url postgresql://postgres@127.0.0.1/mensajero_bench]
        [--duration 15] [--concurrency 16] [--skip-postgraphile] [--executor]

What it does, in one run:

1. Makes sure ``mensajero_bench`` exists, is migrated, and holds the
   1,000,000-message organization of ``bench/seed.py`` (seeding it if not);
   folds the message-count rollup and ANALYZEs.
2. Starts our server (``mensajero serve``, one process, production settings:
   PostgreSQL + Redis) and PostGraphile 4.14.1 (one Node process,
   ``-s public --simple-collections both``) against the same database.
3. For each scenario and server: checks a few answers (200, no ``errors``, 50
   edges, the exact ``totalCount`` where asked); warms up; then 16 keep-alive
   connections send the query back to back for ``--duration`` seconds (any
   answer but 200 fails the run); checks the answers again; then one client
   alone for ``--probe-duration`` seconds (latency without queueing). The load
   comes from ``wrk`` (``--client asyncio`` without it; see bench/loadgen.py):
   a Python client would eat the CPU the servers need on a small machine.
   It prints req/s, p50 and p99 per server, the throughput ratio, and CPU per
   request of each server and of the PostgreSQL backends serving it.

Scenarios (both servers fetch the same 50 rows of the same organization,
newest first, live messages only, each with its client's and campaign's name):

- ``first page``: ``messages(first: 50)``;
- ``10,000 deep``: the page after the 10,000th message (ours: a cursor; PostGraphile:
  ``offset: 10000``, its usual way; its own cursors are also keyset-less);
- ``status + totalCount``: ``messages(first: 50, filter: {status: DELIVERED})``
  with ``totalCount``;
- ``status + totalCount, 10,000 deep``.

Our server answers these operations on its compiled list path
(``mensajero/schema/compiled.py``, ``graphql_compiled_lists``); ``--executor``
turns it off to measure strawberry's executor instead.

PostGraphile is installed with npm under a scratch directory (``--npm-dir``),
never in the repository.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.loadgen import (  # noqa: E402
    WRK_INSTALL_HINT,
    CpuPerRequest,
    Load,
    Request,
    checked_measurement,
    stop,
)
from mensajero.migrate import upgrade_database  # noqa: E402
from mensajero.services.listing import Cursor  # noqa: E402

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/mensajero_bench"
POSTGRAPHILE_VERSION = "4.14.1"
PAGE_SIZE = 50
DEEP_ROWS = 10_000

OUR_FIELDS = "uuid body status createdAt client { name } campaign { name }"
PGL_FIELDS = "id body status createdAt clientByClientId { name } campaignByCampaignId { name }"


def asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def sqlalchemy_url(url: str) -> str:
    return asyncpg_dsn(url).replace("postgresql://", "postgresql+asyncpg://", 1)


# --- the database -------------------------------------------------------------


async def ensure_database(url: str, *, messages: int, clients: int) -> None:
    dsn = asyncpg_dsn(url)
    name = dsn.rsplit("/", 1)[1].split("?")[0]
    admin = await asyncpg.connect(dsn.rsplit("/", 1)[0] + "/postgres")
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await admin.execute(f'CREATE DATABASE "{name}"')
            print(f"created database {name}")
    finally:
        await admin.close()
    started = time.perf_counter()
    await asyncio.to_thread(upgrade_database, sqlalchemy_url(url))
    print(f"migrated ({time.perf_counter() - started:.1f} s)")
    connection = await asyncpg.connect(dsn)
    try:
        have = await connection.fetchval("SELECT count(*) FROM messages")
    finally:
        await connection.close()
    if have < messages:
        from bench.seed import seed

        print(f"seeding {messages:,} messages (found {have:,})")
        await seed(url, clients=clients, messages=messages, reset=True, progress=False)
    else:
        print(f"reusing {have:,} messages")


async def prepare(url: str) -> dict[str, Any]:
    """Fold the rollup, refresh statistics, and pick the organization, key and cursors."""
    from mensajero.db import create_sessionmaker, create_unpooled_engine, transaction
    from mensajero.repositories.message import compact_message_counts
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
    finally:
        await connection.close()

    engine = create_unpooled_engine(sqlalchemy_url(url))
    try:
        async with transaction(create_sessionmaker(engine)) as session:
            started = time.perf_counter()
            folded = await compact_message_counts(session)
            print(f"rollup: folded {folded:,} delta rows ({time.perf_counter() - started:.1f} s)")
            _, key = await create_api_key(
                session,
                organization_id=organization_id,
                member_id=member_id,
                name=f"bench {uuid.uuid4().hex[:6]}",
                scopes=["read"],
            )
    finally:
        await engine.dispose()

    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await connection.execute("ANALYZE messages; ANALYZE message_counts; ANALYZE clients")
        deep = {}
        for name, condition in (("all", ""), ("delivered", "AND status = 'DELIVERED'")):
            row = await connection.fetchrow(
                f"""
                SELECT created_at, id FROM messages
                WHERE organization_id = $1 AND deleted_at IS NULL {condition}
                ORDER BY created_at DESC, id DESC OFFSET {DEEP_ROWS - 1} LIMIT 1
                """,
                organization_id,
            )
            deep[name] = Cursor(row["created_at"], row["id"]).encode()
        counts = await connection.fetchrow(
            """
            SELECT count(*) AS total, count(*) FILTER (WHERE status = 'DELIVERED') AS delivered
            FROM messages WHERE organization_id = $1 AND deleted_at IS NULL
            """,
            organization_id,
        )
    finally:
        await connection.close()
    return {
        "organization_id": organization_id,
        "key": key,
        "deep_cursor": deep,
        "total": counts["total"],
        "delivered": counts["delivered"],
    }


# --- the servers ----------------------------------------------------------------


def start_ours(
    url: str, redis_url: str, port: int, *, compiled: bool = True
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "MENSAJERO_GRAPHQL_COMPILED_LISTS": "true" if compiled else "false",
        "MENSAJERO_DATABASE_URL": sqlalchemy_url(url),
        "MENSAJERO_REDIS_URL": redis_url,
        "MENSAJERO_AUTO_MIGRATE": "false",
        "MENSAJERO_EMBEDDED_WORKER": "false",
    }
    return subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mensajero"),
            "serve",
            "--port",
            str(port),
            "--workers",
            "1",
            "--log-level",
            "warning",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )


def install_postgraphile(npm_dir: Path) -> Path:
    binary = npm_dir / "node_modules" / ".bin" / "postgraphile"
    if not binary.exists():
        npm_dir.mkdir(parents=True, exist_ok=True)
        npm = shutil.which("npm")
        if npm is None:
            raise SystemExit("npm is needed to install PostGraphile")
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", f"postgraphile@{POSTGRAPHILE_VERSION}"],
            cwd=npm_dir,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return binary


def start_postgraphile(binary: Path, url: str, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            str(binary),
            "-c",
            asyncpg_dsn(url),
            "-s",
            "public",
            "--simple-collections",
            "both",
            "--port",
            str(port),
            "--disable-query-log",
            "--disable-graphiql",
        ],
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )


async def wait_until_up(url: str, body: dict[str, Any], headers: dict[str, str]) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        for _ in range(240):
            try:
                response = await client.post(url, json=body, headers=headers)
                if response.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.5)
    raise SystemExit(f"{url} did not come up")


# --- the load ---------------------------------------------------------------------


@dataclass
class Scenario:
    name: str
    ours: dict[str, Any]
    postgraphile: dict[str, Any]


def scenarios(prepared: dict[str, Any]) -> list[Scenario]:
    organization = str(prepared["organization_id"])
    ours = "query($after: String, $filter: MessageFilterInput) { messages(first: 50, after: $after, filter: $filter) { %s edges { node { %s } } } }"  # noqa: E501
    pgl = "query($offset: Int, $condition: MessageCondition) { allMessages(first: 50, offset: $offset, condition: $condition, orderBy: [CREATED_AT_DESC, ID_DESC]) { %s edges { node { %s } } } }"  # noqa: E501
    base_condition = {"organizationId": organization, "deletedAt": None}
    delivered = {**base_condition, "status": "DELIVERED"}

    def pair(name: str, total: bool, deep: bool, status: bool) -> Scenario:
        count = "totalCount" if total else ""
        our_vars: dict[str, Any] = {}
        pgl_vars: dict[str, Any] = {"condition": delivered if status else base_condition}
        if status:
            our_vars["filter"] = {"status": "DELIVERED"}
        if deep:
            our_vars["after"] = prepared["deep_cursor"]["delivered" if status else "all"]
            pgl_vars["offset"] = DEEP_ROWS
        return Scenario(
            name,
            {"query": ours % (count, OUR_FIELDS), "variables": our_vars},
            {"query": pgl % (count, PGL_FIELDS), "variables": pgl_vars},
        )

    return [
        pair("first page", total=False, deep=False, status=False),
        pair("10,000 deep", total=False, deep=True, status=False),
        pair("status + totalCount", total=True, deep=False, status=True),
        pair("status + totalCount, 10,000 deep", total=True, deep=True, status=True),
    ]


def check(payload: dict[str, Any], expected_total: int | None) -> None:
    if payload.get("errors"):
        raise RuntimeError(json.dumps(payload["errors"])[:500])
    (connection,) = payload["data"].values()
    if len(connection["edges"]) != PAGE_SIZE:
        raise RuntimeError(f"expected {PAGE_SIZE} edges, got {len(connection['edges'])}")
    if expected_total is not None and connection.get("totalCount") != expected_total:
        raise RuntimeError(f"totalCount {connection.get('totalCount')} != {expected_total}")


async def check_answers(
    url: str, body: dict[str, Any], headers: dict[str, str], expected_total: int | None
) -> None:
    async with httpx.AsyncClient(timeout=60, headers=headers) as client:
        for _ in range(3):
            response = await client.post(url, json=body)
            if response.status_code != 200:
                raise RuntimeError(f"{response.status_code}: {response.text[:300]}")
            check(response.json(), expected_total)


@dataclass
class Row:
    name: str
    server: str
    load: Load
    cpu: CpuPerRequest | None  # None for the one-client probe


async def measure(
    args: argparse.Namespace,
    name: str,
    server_name: str,
    server: subprocess.Popen[bytes],
    url: str,
    body: dict[str, Any],
    headers: dict[str, str],
    expected_total: int | None,
) -> list[Row]:
    """Answers checked, a warm-up, the load at ``--concurrency``, answers checked, one client."""
    request = Request(
        name,
        "POST",
        url,
        {**headers, "Content-Type": "application/json"},
        json.dumps(body).encode(),
    )
    measured = await checked_measurement(
        request,
        server,
        asyncpg_dsn(args.database_url),
        lambda: check_answers(url, body, headers, expected_total),
        client=args.client,
        connections=args.concurrency,
        warmup=args.warmup,
        duration=args.duration,
        alone_duration=args.probe_duration,
    )
    rows = [Row(name, server_name, measured.load, measured.cpu)]
    if measured.alone is not None:
        rows.append(Row(f"{name} (1 client)", server_name, measured.alone, None))
    return rows


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


async def run(args: argparse.Namespace) -> None:
    if args.client == "wrk" and shutil.which("wrk") is None:
        raise SystemExit(f"wrk not found: {WRK_INSTALL_HINT}")
    await ensure_database(args.database_url, messages=args.messages, clients=args.clients)
    prepared = await prepare(args.database_url)
    print(
        f"organization {prepared['organization_id']}: {prepared['total']:,} live messages, "
        f"{prepared['delivered']:,} DELIVERED; load generator {args.client}; "
        f"load average {load_average()}",
        flush=True,
    )
    servers: dict[str, subprocess.Popen[bytes]] = {}
    our_url = f"http://127.0.0.1:{args.port}/graphql"
    pgl_url = f"http://127.0.0.1:{args.postgraphile_port}/graphql"
    our_headers = {"Authorization": f"Bearer {prepared['key']}"}
    rows: list[Row] = []
    try:
        servers["mensajero"] = start_ours(
            args.database_url, args.redis_url, args.port, compiled=not args.executor
        )
        if not args.skip_postgraphile:
            binary = install_postgraphile(Path(args.npm_dir))
            servers["postgraphile"] = start_postgraphile(
                binary, args.database_url, args.postgraphile_port
            )
        await wait_until_up(our_url, {"query": "{ viewer { scopes } }"}, our_headers)
        if not args.skip_postgraphile:
            await wait_until_up(pgl_url, {"query": "{ __typename }"}, {})
        for scenario in scenarios(prepared):
            total = prepared["delivered"] if "totalCount" in scenario.name else None
            targets = [("mensajero", our_url, scenario.ours, our_headers)]
            if not args.skip_postgraphile:
                targets.append(("postgraphile", pgl_url, scenario.postgraphile, {}))
            for server_name, url, body, headers in targets:
                measured = await measure(
                    args, scenario.name, server_name, servers[server_name], url, body, headers,
                    total,
                )  # fmt: skip
                for row in measured:
                    rows.append(row)
                    cpu = ""
                    if row.cpu is not None:
                        postgres = (
                            "n/a" if row.cpu.postgres_ms is None else (f"{row.cpu.postgres_ms:.2f}")
                        )
                        cpu = (
                            f"  CPU/req: server {row.cpu.server_ms:.2f} ms, PostgreSQL "
                            f"{postgres} ms, load generator {row.cpu.client_ms:.2f} ms"
                        )
                    print(
                        f"{row.name:45} {server_name:13} {row.load.throughput:8.1f} req/s  "
                        f"p50 {row.load.p50_ms:8.1f} ms  p99 {row.load.p99_ms:8.1f} ms{cpu}"
                        f"  (load {load_average()})",
                        flush=True,
                    )
    finally:
        for process in servers.values():
            stop(process)

    print()
    print(
        "| scenario | server | req/s | p50 ms | p99 ms | server CPU ms/req "
        "| PostgreSQL CPU ms/req | vs PostGraphile |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    by_scenario: dict[str, dict[str, Row]] = {}
    for row in rows:
        by_scenario.setdefault(row.name, {})[row.server] = row
    for name, results in by_scenario.items():
        baseline = results.get("postgraphile")
        for server_name, row in results.items():
            ratio = f"{row.load.throughput / baseline.load.throughput:.2f}x" if baseline else "-"
            server_cpu = f"{row.cpu.server_ms:.2f}" if row.cpu else ""
            postgres = (
                f"{row.cpu.postgres_ms:.2f}" if row.cpu and row.cpu.postgres_ms is not None else ""
            )
            print(
                f"| {name} | {server_name} | {row.load.throughput:.0f} | "
                f"{row.load.p50_ms:.1f} | {row.load.p99_ms:.1f} | {server_cpu} | {postgres} "
                f"| {ratio} |"
            )
    print(f"\nload average at the end: {load_average()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/1")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument(
        "--probe-duration", type=float, default=5.0, help="seconds of the 1-client probe (0: none)"
    )
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--postgraphile-port", type=int, default=5678)
    parser.add_argument("--npm-dir", default="/tmp/mensajero-bench-postgraphile")
    parser.add_argument("--skip-postgraphile", action="store_true")
    parser.add_argument(
        "--executor",
        action="store_true",
        help="our server without the compiled list path (graphql_compiled_lists=false)",
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
