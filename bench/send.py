"""sendSmsByTags to 100,000 clients on PostgreSQL, against a bare COPY of 100,000 messages.

    uv run python bench/send.py [--clients 100000] [--repeat 3] [--keep]
        [--admin-url postgresql://postgres@127.0.0.1:5432/postgres]
        [--redis-url redis://127.0.0.1:6379/7]

What it does, in one run:

1. creates a scratch database from the migrations and seeds one organization
   with ``--clients`` clients spread over 3 overlapping tags (each client
   carries one to three of them; 1% have only a raw local phone, normalized
   at send time with the request's country);
2. ``--repeat`` times, alternating, each in a FRESH subprocess so that the
   seeding and the other runs do not count in its memory:
   - ``copy``: a bare asyncpg ``COPY`` of ``--clients`` complete message rows
     into the same ``messages`` table (the floor: one table, no logic);
   - ``service``: ``send_sms_by_tags`` through the edge's unit of work
     (select, normalize, dedup, price, debit, insert messages + first
     attempts + their timeline, commit, publish the QUEUED events, enqueue the
     dispatch jobs on Redis), timed per phase;
   and deletes what the run wrote (then VACUUM ANALYZE), so every run starts
   equal; the rows of a first, uncounted send stay as the organization's
   history, so that the tables have real statistics as in production;
3. once, the same send through the GraphQL HTTP endpoint (in-process ASGI,
   the whole answer with its 100k messages serialized);
4. prints the times, the ratio service/COPY (medians) and each run's peak RSS
   (``ru_maxrss`` of its subprocess), and drops the scratch database.

The service writes four times the rows the COPY writes (a message, its first
attempt and two timeline events per recipient) into three indexed tables.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.loadgen import process_cpu_seconds  # noqa: E402

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/7"
MESSAGE = "¡Oferta exclusiva para clientes VIP! 30% de descuento en tu proxima compra."
TAG_NAMES = ("VIP", "Frecuente", "Newsletter")


def _dsn(admin_url: str, database: str) -> str:
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{database}"


def _sqlalchemy_url(dsn: str) -> str:
    return dsn.replace("postgresql://", "postgresql+asyncpg://", 1)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _own_cpu_s() -> float:
    times = os.times()
    return times.user + times.system


def _cpu_delta(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before


# --- seeding -----------------------------------------------------------------------


async def seed(dsn: str, clients: int) -> dict[str, Any]:
    from mensajero.models import uuid7
    from mensajero.services.auth import generate_api_key

    organization_id, member_id, api_key_id = uuid7(), uuid7(), uuid7()
    key = generate_api_key("live")
    now = datetime.now(UTC)
    tag_ids = [uuid7() for _ in TAG_NAMES]
    connection = await asyncpg.connect(dsn)
    try:
        async with connection.transaction():
            await connection.execute(
                "INSERT INTO organizations (id, created_at, updated_at, name, timezone,"
                " credit_balance, terms_version) VALUES ($1, $2, $2, 'Bench', 'UTC', $3, $4)",
                organization_id,
                now,
                1_000_000_000,
                "2026-01",
            )
            await connection.execute(
                "INSERT INTO credit_ledger (id, created_at, organization_id, kind, amount,"
                " balance_after, message_count, description)"
                " VALUES ($1, $2, $3, 'topup', $4, $4, 0, 'bench')",
                uuid7(),
                now,
                organization_id,
                1_000_000_000,
            )
            await connection.execute(
                "INSERT INTO members (id, created_at, updated_at, organization_id, email, name,"
                " role, terms_accepted_version, terms_accepted_at)"
                " VALUES ($1, $2, $2, $3, 'bench@example.com', 'Bench', 'owner', '2026-01', $2)",
                member_id,
                now,
                organization_id,
            )
            await connection.execute(
                "INSERT INTO api_keys (id, created_at, updated_at, organization_id, member_id,"
                " name, prefix, secret_hash, scopes)"
                " VALUES ($1, $2, $2, $3, $4, 'bench', $5, $6, $7::jsonb)",
                api_key_id,
                now,
                organization_id,
                member_id,
                key.prefix,
                key.secret_hash,
                json.dumps(["read", "send", "admin"]),
            )
            await connection.copy_records_to_table(
                "tags",
                records=[
                    (tag_id, now, now, organization_id, name, None)
                    for tag_id, name in zip(tag_ids, TAG_NAMES, strict=True)
                ],
                columns=["id", "created_at", "updated_at", "organization_id", "name", "color"],
            )
            client_records = []
            link_records = []
            for index in range(clients):
                client_id = uuid7()
                local = f"300{index:07d}"
                raw_only = index % 100 == 99  # 1%: only the phone as typed, no E.164 yet
                client_records.append(
                    (
                        client_id,
                        now,
                        now,
                        organization_id,
                        f"Cliente {index}",
                        f"cliente{index}@example.com",
                        f"{local[:3]} {local[3:6]} {local[6:]}",
                        None if raw_only else f"+57{local}",
                        None if raw_only else "CO",
                        "{}",
                    )
                )
                # Overlapping tags: every client has one to three of them.
                for tag_index, tag_id in enumerate(tag_ids):
                    if (
                        (tag_index == 0 and index % 3 != 2)
                        or (tag_index == 1 and index % 3 != 0)
                        or (tag_index == 2 and index % 5 == 0)
                    ):
                        link_records.append((uuid7(), now, organization_id, client_id, tag_id))
            await connection.copy_records_to_table(
                "clients",
                records=client_records,
                columns=[
                    "id",
                    "created_at",
                    "updated_at",
                    "organization_id",
                    "name",
                    "email",
                    "phone",
                    "phone_e164",
                    "country",
                    "metadata",
                ],
            )
            await connection.copy_records_to_table(
                "client_tags",
                records=link_records,
                columns=["id", "created_at", "organization_id", "client_id", "tag_id"],
            )
        await connection.execute("ANALYZE")
    finally:
        await connection.close()
    return {
        "organization_id": str(organization_id),
        "member_id": str(member_id),
        "tag_ids": [str(tag_id) for tag_id in tag_ids],
        "api_key": key.plaintext,
        "links": len(link_records),
    }


async def clean_sends(dsn: str, organization_id: str, history_queue_id: str) -> None:
    """Remove what a run wrote, so that every run starts from the same tables.

    The first send's rows stay as the organization's history: tables with
    real statistics, as in production. (Emptied and analyzed tables make
    PostgreSQL plan the foreign-key checks as sequential scans, and a bulk
    insert then goes quadratic: a benchmark artefact, not production.)
    """
    connection = await asyncpg.connect(dsn)
    try:
        # The ledger references attempts: drop the runs' debits first.
        await connection.execute(
            "DELETE FROM credit_ledger WHERE organization_id = $1 AND kind = 'debit'"
            " AND queue_id IS DISTINCT FROM $2",
            uuid.UUID(organization_id),
            history_queue_id,
        )
        # Attempts and their timelines go with their messages (ON DELETE CASCADE).
        await connection.execute(
            "DELETE FROM messages WHERE queue_id IS DISTINCT FROM $1", history_queue_id
        )
        await connection.execute(
            "UPDATE organizations SET credit_balance = 1000000000 WHERE id = $1",
            uuid.UUID(organization_id),
        )
        await connection.execute(
            "VACUUM ANALYZE messages, communication_logs, log_events, credit_ledger, organizations"
        )
    finally:
        await connection.close()


# --- the measured runs (each in its own process) -------------------------------------


async def run_copy(dsn: str, context: dict[str, Any], clients: int) -> dict[str, Any]:
    """A bare COPY of complete message rows: the floor for writing one row per recipient."""
    connection = await asyncpg.connect(dsn)
    organization_id = uuid.UUID(context["organization_id"])
    try:
        client_ids = [
            row[0]
            for row in await connection.fetch(
                "SELECT id FROM clients WHERE organization_id = $1 ORDER BY id", organization_id
            )
        ][:clients]
        backend_pid = await connection.fetchval("SELECT pg_backend_pid()")
        backend_before, own_before = process_cpu_seconds(backend_pid), _own_cpu_s()
        started = time.perf_counter()
        now = datetime.now(UTC)
        records = [
            (
                uuid.uuid4(),
                now,
                now,
                organization_id,
                client_id,
                "copy-baseline",
                "outbound",
                "sms",
                "campaign",
                "PLAIN_TEXT",
                MESSAGE,
                f"+57300{index:07d}",
                "57",
                "{}",
                1,
                1,
                "QUEUED",
            )
            for index, client_id in enumerate(client_ids)
        ]
        built = time.perf_counter()
        async with connection.transaction():
            await connection.copy_records_to_table(
                "messages",
                records=records,
                columns=[
                    "id",
                    "created_at",
                    "updated_at",
                    "organization_id",
                    "client_id",
                    "queue_id",
                    "direction",
                    "channel",
                    "communication_type",
                    "content_type",
                    "body",
                    "recipient",
                    "country_code",
                    "metadata",
                    "segments",
                    "cost",
                    "status",
                ],
            )
        finished = time.perf_counter()
        backend_cpu_s = _cpu_delta(backend_before, process_cpu_seconds(backend_pid))
        own_cpu_s = _own_cpu_s() - own_before
    finally:
        await connection.close()
    return {
        "rows": len(records),
        "build_s": built - started,
        "copy_s": finished - built,
        "total_s": finished - started,
        "python_cpu_s": own_cpu_s,
        "postgres_cpu_s": backend_cpu_s,
        "peak_rss_mb": _peak_rss_mb(),
    }


async def run_service(
    dsn: str, redis_url: str, context: dict[str, Any], *, settle_rss: float
) -> dict[str, Any]:
    from sqlalchemy import text

    from mensajero.db import create_engine, create_sessionmaker
    from mensajero.events import publish, take_pending
    from mensajero.outbox import enqueue_jobs, take_pending_jobs
    from mensajero.redis import create_redis
    from mensajero.services.messaging import send_sms_by_tags
    from mensajero.settings import Settings

    settings = Settings(database_url=_sqlalchemy_url(dsn), redis_url=redis_url)
    engine = create_engine(settings.database_url)
    sessionmaker = create_sessionmaker(engine)
    redis = await create_redis(redis_url)
    await redis.flushdb()
    # Warm the pool and the imports: the first connection is not the send's cost.
    async with sessionmaker() as warm:
        await warm.connection()
    rss_before = _peak_rss_mb()
    try:
        session = sessionmaker()
        # The session keeps this pooled connection (and backend) until it closes.
        backend_pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        await session.rollback()
        backend_before, own_before = process_cpu_seconds(backend_pid), _own_cpu_s()
        started = time.perf_counter()
        result = await send_sms_by_tags(
            session,
            organization_id=uuid.UUID(context["organization_id"]),
            message=MESSAGE,
            tag_ids=[uuid.UUID(tag_id) for tag_id in context["tag_ids"]],
            country="CO",
            settings=settings,
        )
        serviced = time.perf_counter()
        await session.commit()
        committed = time.perf_counter()
        backend_cpu_s = _cpu_delta(backend_before, process_cpu_seconds(backend_pid))
        db_own_cpu_s = _own_cpu_s() - own_before
        await publish(redis, take_pending(session))
        published = time.perf_counter()
        await enqueue_jobs(redis, take_pending_jobs(session))
        enqueued = time.perf_counter()
        own_cpu_s = _own_cpu_s() - own_before
        await session.close()
        jobs = await redis.zcard(settings.queue_name)
    finally:
        await redis.flushdb()
        await redis.aclose()
        await engine.dispose()
    return {
        "messages": len(result.messages),
        "queue_id": result.queue_id,
        "jobs": jobs,
        "service_s": serviced - started,
        "commit_s": committed - serviced,
        "publish_s": published - committed,
        "enqueue_s": enqueued - published,
        "db_s": committed - started,
        "total_s": enqueued - started,
        "python_cpu_to_commit_s": db_own_cpu_s,
        "python_cpu_s": own_cpu_s,
        "postgres_cpu_s": backend_cpu_s,
        "rss_before_mb": rss_before,
        "peak_rss_mb": _peak_rss_mb(),
    }


async def run_http(dsn: str, redis_url: str, context: dict[str, Any]) -> dict[str, Any]:
    import httpx

    from mensajero.app import create_app
    from mensajero.db import create_engine, create_sessionmaker
    from mensajero.redis import create_redis
    from mensajero.settings import Settings

    settings = Settings(
        database_url=_sqlalchemy_url(dsn),
        redis_url=redis_url,
        auto_migrate=False,
        embedded_worker=False,
    )
    app = create_app(settings)
    engine = create_engine(settings.database_url)
    app.state.engine = engine
    app.state.sessionmaker = create_sessionmaker(engine)
    app.state.redis = await create_redis(redis_url)
    await app.state.redis.flushdb()
    query = """
    mutation Send($input: SendSmsByTagsInput!) {
      sendSmsByTags(input: $input) {
        __typename
        ... on MessageEnqueueResult { queueId channel messages { id recipient } }
      }
    }"""
    variables = {"input": {"message": MESSAGE, "tagIds": context["tag_ids"], "country": "CO"}}
    headers = {"Authorization": f"Bearer {context['api_key']}"}
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            await client.post("/graphql", json={"query": "{ viewer { scopes } }"}, headers=headers)
            started = time.perf_counter()
            response = await client.post(
                "/graphql", json={"query": query, "variables": variables}, headers=headers
            )
            finished = time.perf_counter()
        body = response.json()
        answer = body["data"]["sendSmsByTags"]
    finally:
        await app.state.redis.flushdb()
        await app.state.redis.aclose()
        await engine.dispose()
    return {
        "status": response.status_code,
        "messages": len(answer["messages"]),
        "response_bytes": len(response.content),
        "total_s": finished - started,
        "peak_rss_mb": _peak_rss_mb(),
    }


def _child(mode: str, dsn: str, redis_url: str, context: dict[str, Any], clients: int) -> None:
    if mode == "copy":
        result = asyncio.run(run_copy(dsn, context, clients))
    elif mode == "service":
        result = asyncio.run(run_service(dsn, redis_url, context, settle_rss=0))
    elif mode == "http":
        result = asyncio.run(run_http(dsn, redis_url, context))
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps(result))


def _spawn(mode: str, dsn: str, redis_url: str, context: dict[str, Any], clients: int) -> dict:
    completed = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--dsn", dsn, "--redis-url", redis_url,
         "--context", json.dumps(context), "--clients", str(clients)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )  # fmt: skip
    return json.loads(completed.stdout.strip().splitlines()[-1])


async def _create_database(admin_url: str) -> tuple[str, str]:
    name = f"mensajero_bench_send_{uuid.uuid4().hex[:8]}"
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return name, _dsn(admin_url, name)


async def _drop_database(admin_url: str, name: str) -> None:
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--dsn", help=argparse.SUPPRESS)
    parser.add_argument("--context", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.dsn, args.redis_url, json.loads(args.context), args.clients)
        return

    from mensajero.migrate import upgrade_database

    name, dsn = asyncio.run(_create_database(args.admin_url))
    try:
        upgrade_database(_sqlalchemy_url(dsn))
        started = time.perf_counter()
        context = asyncio.run(seed(dsn, args.clients))
        print(
            f"seeded {args.clients:,} clients, {context['links']:,} tag links over 3 tags "
            f"in {time.perf_counter() - started:.1f}s (database {name})"
        )
        history = _spawn("service", dsn, args.redis_url, context, args.clients)
        print(f"history  (first send, fresh tables, not counted) {json.dumps(history)}")
        history_queue_id = history["queue_id"]
        copies: list[dict[str, Any]] = []
        services: list[dict[str, Any]] = []
        for round_number in range(1, args.repeat + 1):
            for mode, results in (("copy", copies), ("service", services)):
                asyncio.run(clean_sends(dsn, context["organization_id"], history_queue_id))
                result = _spawn(mode, dsn, args.redis_url, context, args.clients)
                results.append(result)
                print(f"round {round_number} {mode:8s} {json.dumps(result)}")
        asyncio.run(clean_sends(dsn, context["organization_id"], history_queue_id))
        http = _spawn("http", dsn, args.redis_url, context, args.clients)
        print(f"http     {json.dumps(http)}")

        copy_s = statistics.median(result["copy_s"] for result in copies)
        db_s = statistics.median(result["db_s"] for result in services)
        total_s = statistics.median(result["total_s"] for result in services)
        print()
        print(f"COPY of {copies[0]['rows']:,} message rows (median): {copy_s:.2f}s")
        print(
            f"sendSmsByTags to {services[0]['messages']:,} recipients (median): "
            f"{db_s:.2f}s to commit, {total_s:.2f}s with events published and "
            f"{services[0]['jobs']} jobs enqueued"
        )
        print(
            f"ratio service/COPY: {db_s / copy_s:.2f}x (to commit), {total_s / copy_s:.2f}x (all)"
        )
        print(
            f"peak RSS: service {max(r['peak_rss_mb'] for r in services):.0f} MB "
            f"(from {services[0]['rss_before_mb']:.0f} MB after imports), "
            f"COPY {max(r['peak_rss_mb'] for r in copies):.0f} MB, "
            f"GraphQL HTTP {http['peak_rss_mb']:.0f} MB"
        )
        copy_cpu = [r["postgres_cpu_s"] for r in copies if r["postgres_cpu_s"] is not None]
        service_cpu = [r["postgres_cpu_s"] for r in services if r["postgres_cpu_s"] is not None]
        if copy_cpu and service_cpu:
            print(
                f"CPU (medians): COPY postgres {statistics.median(copy_cpu):.2f}s + python "
                f"{statistics.median(r['python_cpu_s'] for r in copies):.2f}s; service postgres "
                f"{statistics.median(service_cpu):.2f}s + python "
                f"{statistics.median(r['python_cpu_to_commit_s'] for r in services):.2f}s to "
                f"commit, {statistics.median(r['python_cpu_s'] for r in services):.2f}s in all"
            )
        print(f"GraphQL over HTTP (in-process ASGI): {http['total_s']:.2f}s, "
              f"{http['response_bytes'] / 1e6:.1f} MB answer")  # fmt: skip
    finally:
        if not args.keep:
            asyncio.run(_drop_database(args.admin_url, name))


if __name__ == "__main__":
    os.environ.setdefault("MENSAJERO_DATABASE_ECHO", "false")
    main()
