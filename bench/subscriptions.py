"""Live subscriptions under load: shared execution against a naive fan-out, same run.

    uv run python bench/subscriptions.py [--subscribers 2000] [--organizations 100]
        [--rate 500] [--seconds 20] [--redis-url redis://127.0.0.1:6379/11]
        [--admin-url postgresql://postgres@127.0.0.1:5432/postgres] [--modes shared,naive]

What it does:

1. creates a scratch PostgreSQL database from the migrations and seeds
   ``--organizations`` organizations, each with an API key and 50 messages with
   their first attempt (communication log);
2. for each mode, starts ONE API process (``mensajero serve``, production mode:
   PostgreSQL + Redis) with ``MENSAJERO_SUBSCRIPTION_SHARED_EXECUTION`` on
   (``shared``: identical operations share one execution, serialized once) or off
   (``naive``: strawberry's stock handler, one ``schema.subscribe`` per subscriber
   executing every event);
3. opens ``--subscribers`` websockets (graphql-transport-ws), spread evenly over the
   organizations; in each organization 70% are "dashboards" (every change, no
   filter) and 30% "delivery monitors" (``statuses: [SENT, DELIVERED]``); both ask
   for the event's fields plus ``message { uuid recipient status }`` and
   ``log { uuid status }`` (so each execution reads the database);
4. a publisher process commits status changes on PostgreSQL (UPDATE of the
   attempts, ``--rate`` events per second in 20 ms transactions, for ``--seconds``)
   and publishes each transaction's events after its commit, stamping
   ``occurredAt`` with the commit time;
5. every client records, per event, the time from that commit to its receipt.

Reported per mode: p50/p99 latency commit -> client, deliveries per second,
expected vs received deliveries (missing = the difference once deliveries stop, at
most 60 s after the load: dropped, or still queued in an API that could not keep
up), subscribers cut off as slow consumers (told SLOW_CONSUMER), the API process's
CPU seconds and deliveries per API CPU second (the load-independent efficiency).
The publisher, the clients (``--client-processes``) and the API share the
machine's two cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import uvloop
from sqlalchemy import bindparam, update
from sqlalchemy.engine import make_url
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mensajero.db import bulk_insert, create_engine, create_sessionmaker
from mensajero.events import StatusEvent, publish
from mensajero.migrate import upgrade_database_async
from mensajero.models import CommunicationLog, Message, utcnow
from mensajero.redis import create_redis
from mensajero.services.organization import bootstrap

MESSAGES_PER_ORGANIZATION = 50
CYCLE = ["QUEUED", "SENDING", "SENT", "DELIVERED"]
MONITORED = ["SENT", "DELIVERED"]
DASHBOARD_SHARE = 0.7
TICK_SECONDS = 0.02

SELECTION = """
subscription($filter: MessageEventFilter) {
  messageStatusChanged(filter: $filter) {
    messageId logId queueId previousStatus status occurredAt
    message { uuid recipient status }
    log { uuid status }
  }
}
"""


@dataclass
class Org:
    id: str
    key: str
    logs: list[tuple[str, str]]  # (message id, log id)


# --- Set-up -----------------------------------------------------------------------------------


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def create_database(admin_url: str) -> str:
    name = f"mensajero_bench_subs_{uuid.uuid4().hex[:8]}"
    connection = await asyncpg.connect(_asyncpg_dsn(admin_url))
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    url = make_url(admin_url).set(drivername="postgresql+asyncpg", database=name)
    return url.render_as_string(hide_password=False)


async def drop_database(admin_url: str, database_url: str) -> None:
    connection = await asyncpg.connect(_asyncpg_dsn(admin_url))
    try:
        name = make_url(database_url).database
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def seed(database_url: str, organizations: int) -> list[Org]:
    await upgrade_database_async(database_url)
    engine = create_engine(database_url)
    orgs: list[Org] = []
    try:
        async with create_sessionmaker(engine)() as session:
            messages: list[dict[str, Any]] = []
            logs: list[dict[str, Any]] = []
            for index in range(organizations):
                created = await bootstrap(
                    session,
                    organization_name=f"Bench {index}",
                    member_email=f"bench{index}@example.com",
                )
                org_id = created.organization.id
                pairs = []
                now = utcnow()
                for number in range(MESSAGES_PER_ORGANIZATION):
                    message_id, log_id = uuid.uuid4(), uuid.uuid4()
                    recipient = f"+57300{index:03d}{number:04d}"
                    common = {
                        "organization_id": org_id,
                        "channel": "sms",
                        "recipient": recipient,
                        "status": "QUEUED",
                        "created_at": now,
                        "updated_at": now,
                    }
                    messages.append(
                        {
                            **common,
                            "id": message_id,
                            "body": "Su cita es mañana",
                            "queue_id": f"bench-{index}",
                            "direction": "outbound",
                            "communication_type": "campaign",
                            "content_type": "PLAIN_TEXT",
                            "metadata": {},
                            "segments": 1,
                            "cost": 1,
                        }
                    )
                    logs.append(
                        {
                            **common,
                            "id": log_id,
                            "message_id": message_id,
                            "direction": "outbound",
                            "communication_type": "campaign",
                            "attempt_number": 1,
                            "refunded": False,
                            "provider_metadata": {},
                        }
                    )
                    pairs.append((str(message_id), str(log_id)))
                orgs.append(Org(str(org_id), created.plaintext_key, pairs))
            await bulk_insert(session, Message.__table__, messages)  # type: ignore[attr-defined]
            await bulk_insert(session, CommunicationLog.__table__, logs)  # type: ignore[attr-defined]
            await session.commit()
    finally:
        await engine.dispose()
    return orgs


# --- The API process --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_api(database_url: str, redis_url: str, port: int, *, shared: bool) -> subprocess.Popen:
    env = {
        **os.environ,
        "MENSAJERO_DATABASE_URL": database_url,
        "MENSAJERO_REDIS_URL": redis_url,
        "MENSAJERO_SUBSCRIPTION_SHARED_EXECUTION": "true" if shared else "false",
        "MENSAJERO_DATABASE_POOL_SIZE": "10",
    }
    command = [sys.executable, "-m", "mensajero.cli", "serve", "--port", str(port)]
    return subprocess.Popen(
        [*command, "--log-level", "warning"], env=env, stdout=subprocess.DEVNULL
    )


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def wait_ready(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=2) as http:
        for _ in range(300):
            try:
                if (await http.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("the API process never became ready")


async def bus_subscribers(base_url: str) -> float:
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as http:
        for line in (await http.get("/metrics")).text.splitlines():
            if line.startswith("mensajero_event_subscribers "):
                return float(line.split()[1])
    return 0.0


# --- Subscribers ------------------------------------------------------------------------------


@dataclass
class Subscriber:
    org_index: int
    monitor: bool
    received: int = 0
    latencies: list[float] = field(default_factory=list)
    cut_off: bool = False
    errors: list[Any] = field(default_factory=list)
    first_at: float | None = None
    last_at: float = 0.0


async def run_subscriber(url: str, org: Org, subscriber: Subscriber, ready: asyncio.Event) -> None:
    """Receive until cancelled (the end of the run) or cut off by the server.

    The receive loop is as lean as the client library allows: the clients share the
    machine with the API, so every microsecond they spend per message is taken from it.
    """
    variables = {"filter": {"statuses": MONITORED}} if subscriber.monitor else {}
    async with connect(
        url,
        subprotocols=["graphql-transport-ws"],
        compression=None,
        max_size=None,  # type: ignore[list-item]
    ) as ws:
        init = {"type": "connection_init", "payload": {"X-Api-Key": org.key}}
        await ws.send(orjson.dumps(init), text=True)
        ack = orjson.loads(await ws.recv())
        assert ack["type"] == "connection_ack", ack
        await ws.send(
            orjson.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": SELECTION, "variables": variables},
                }
            ),
            text=True,
        )
        ready.set()
        latencies = subscriber.latencies
        try:
            async for raw in ws:
                now = time.time()
                message = orjson.loads(raw)
                if message["type"] != "next":
                    subscriber.errors.append(message)
                    if message["type"] == "error":
                        subscriber.cut_off = True
                    continue
                payload = message["payload"]
                if "errors" in payload:
                    subscriber.errors.append(payload["errors"])
                change = (payload.get("data") or {}).get("messageStatusChanged")
                if change is None:
                    continue
                subscriber.received += 1
                if subscriber.first_at is None:
                    subscriber.first_at = now
                subscriber.last_at = now
                latencies.append(now - datetime.fromisoformat(change["occurredAt"]).timestamp())
        except ConnectionClosed:
            pass
        # The server ended the connection before the run did.
        subscriber.cut_off = True


# --- Publisher (its own process) --------------------------------------------------------------


def publisher_main(
    database_url: str, redis_url: str, orgs: list[Org], rate: int, seconds: float, out: Any
) -> None:
    out.put(uvloop.run(_publish_load(database_url, redis_url, orgs, rate, seconds)))


async def _publish_load(
    database_url: str, redis_url: str, orgs: list[Org], rate: int, seconds: float
) -> dict[str, Any]:
    engine = create_engine(database_url)
    sessionmaker = create_sessionmaker(engine)
    redis = await create_redis(redis_url)
    rng = random.Random(7)
    position: dict[str, int] = {}
    counts = {"all": [0] * len(orgs), "monitored": [0] * len(orgs)}
    statement = (
        update(CommunicationLog.__table__)  # type: ignore[attr-defined]
        .where(CommunicationLog.__table__.c.id == bindparam("log_id"))  # type: ignore[attr-defined]
        .values(status=bindparam("new_status"))
    )
    published = 0
    started = time.perf_counter()
    next_tick = started
    try:
        while time.perf_counter() - started < seconds:
            # Time-based: a tick that ran late publishes what the rate owes by now.
            count = int(rate * (time.perf_counter() - started)) - published
            plan = []
            for _ in range(count):
                org_index = rng.randrange(len(orgs))
                message_id, log_id = rng.choice(orgs[org_index].logs)
                step = position.get(log_id, 0)
                position[log_id] = step + 1
                previous = CYCLE[(step - 1) % len(CYCLE)] if step else None
                status = CYCLE[step % len(CYCLE)]
                plan.append((org_index, message_id, log_id, previous, status))
            if plan:
                async with sessionmaker() as session:
                    await session.execute(
                        statement,
                        [{"log_id": uuid.UUID(p[2]), "new_status": p[4]} for p in plan],
                    )
                    await session.commit()
                committed_at = datetime.now(UTC)
                status_events = []
                for org_index, message_id, log_id, previous, status in plan:
                    status_events.append(
                        StatusEvent(
                            organization_id=orgs[org_index].id,
                            message_id=message_id,
                            log_id=log_id,
                            event=status.lower(),
                            previous_status=previous,
                            status=status,
                            occurred_at=committed_at.isoformat(),
                            channel="sms",
                            queue_id=f"bench-{org_index}",
                        )
                    )
                    counts["all"][org_index] += 1
                    if status in MONITORED:
                        counts["monitored"][org_index] += 1
                await publish(redis, status_events)
                published += len(status_events)
            next_tick += TICK_SECONDS
            await asyncio.sleep(max(0.0, next_tick - time.perf_counter()))
        elapsed = time.perf_counter() - started
    finally:
        await redis.aclose()
        await engine.dispose()
    return {"published": published, "elapsed": elapsed, "counts": counts}


# --- Client processes ---------------------------------------------------------------------------


def clients_main(
    url: str,
    orgs: list[Org],
    specs: list[tuple[int, bool]],
    slot: int,
    ready: Any,
    stop: Any,
    progress: Any,
    out: Any,
) -> None:
    # uvloop, as the API runs on: the default selector loop costs the clients more CPU
    # per message, taken from the machine the API runs on.
    out.put(uvloop.run(_run_clients(url, orgs, specs, slot, ready, stop, progress)))


async def _run_clients(
    url: str,
    orgs: list[Org],
    specs: list[tuple[int, bool]],
    slot: int,
    ready: Any,
    stop: Any,
    progress: Any,
) -> list[dict[str, Any]]:
    subscribers = [Subscriber(org_index, monitor) for org_index, monitor in specs]
    tasks = []
    for start in range(0, len(subscribers), 50):
        batch_ready = []
        for subscriber in subscribers[start : start + 50]:
            connected = asyncio.Event()
            batch_ready.append(connected)
            tasks.append(
                asyncio.create_task(
                    run_subscriber(url, orgs[subscriber.org_index], subscriber, connected)
                )
            )
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in batch_ready)), 120)
    ready.set()
    while not stop.is_set():
        progress[slot] = sum(s.received for s in subscribers)
        await asyncio.sleep(0.1)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return [
        {
            "org_index": s.org_index,
            "monitor": s.monitor,
            "received": s.received,
            "latencies": s.latencies,
            "cut_off": s.cut_off,
            "errors": len(s.errors),
            "first_at": s.first_at,
            "last_at": s.last_at,
        }
        for s in subscribers
    ]


# --- One mode ---------------------------------------------------------------------------------


async def run_mode(
    mode: str, database_url: str, redis_url: str, orgs: list[Org], args: argparse.Namespace
) -> dict[str, Any]:
    port = free_port()
    api = start_api(database_url, redis_url, port, shared=mode == "shared")
    base_url = f"http://127.0.0.1:{port}"
    spawn = multiprocessing.get_context("spawn")
    clients: list[Any] = []
    try:
        await wait_ready(base_url)
        per_org = args.subscribers // len(orgs)
        dashboards = round(per_org * DASHBOARD_SHARE)
        specs = [
            (org_index, slot >= dashboards)
            for org_index in range(len(orgs))
            for slot in range(per_org)
        ]
        url = f"ws://127.0.0.1:{port}/graphql"
        stop = spawn.Event()
        progress = spawn.Array("q", args.client_processes)
        results_queue: Any = spawn.Queue()
        readies = []
        for slot in range(args.client_processes):
            ready = spawn.Event()
            readies.append(ready)
            process = spawn.Process(
                target=clients_main,
                args=(
                    url,
                    orgs,
                    specs[slot :: args.client_processes],
                    slot,
                    ready,
                    stop,
                    progress,
                    results_queue,
                ),
            )
            process.start()
            clients.append(process)
        # Polling: these are other processes' primitives, not awaitable.
        for ready in readies:
            while not ready.is_set():  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        expected_bus = len(orgs) * 2 if mode == "shared" else len(specs)
        for _ in range(600):
            if await bus_subscribers(base_url) >= expected_bus:
                break
            await asyncio.sleep(0.1)
        else:
            raise RuntimeError("subscriptions were not all set up")

        cpu_before = cpu_seconds(api.pid)
        out: Any = spawn.Queue()
        publisher = spawn.Process(
            target=publisher_main,
            args=(database_url, redis_url, orgs, args.rate, args.seconds, out),
        )
        started = time.perf_counter()
        publisher.start()
        while publisher.is_alive():  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        load = out.get(timeout=10)
        publisher.join()
        expected = sum(
            load["counts"]["monitored"][org_index] if monitor else load["counts"]["all"][org_index]
            for org_index, monitor in specs
        )
        # Let what is in flight arrive (a lagging mode keeps delivering after the load).
        last_total, idle_since = -1, time.perf_counter()
        while (
            time.perf_counter() - idle_since < 3.0
            and time.perf_counter() - started < args.seconds + 60
        ):
            total = sum(progress)
            if total != last_total:
                last_total, idle_since = total, time.perf_counter()
            if total >= expected:
                break
            await asyncio.sleep(0.1)
        cpu_used = cpu_seconds(api.pid) - cpu_before
        stop.set()
        collected = [results_queue.get(timeout=60) for _ in clients]
        for process in clients:
            process.join(timeout=30)
    finally:
        for process in clients:
            if process.is_alive():
                process.terminate()
        api.send_signal(signal.SIGTERM)
        try:
            api.wait(timeout=15)
        except subprocess.TimeoutExpired:
            api.kill()
            api.wait()

    subscribers = [
        Subscriber(
            r["org_index"],
            r["monitor"],
            received=r["received"],
            latencies=r["latencies"],
            cut_off=r["cut_off"],
            first_at=r["first_at"],
            last_at=r["last_at"],
        )
        for batch in collected
        for r in batch
    ]
    subscribers_errors = sum(r["errors"] for batch in collected for r in batch)
    received = sum(s.received for s in subscribers)
    latencies = sorted(latency for s in subscribers for latency in s.latencies)
    firsts = [s.first_at for s in subscribers if s.first_at is not None]
    delivery_window = (
        max(max(s.last_at for s in subscribers) - min(firsts), 1e-9) if firsts else 1.0
    )
    keeping_up = [s for s in subscribers if not s.cut_off]
    expected_keeping_up = sum(
        load["counts"]["monitored"][s.org_index]
        if s.monitor
        else load["counts"]["all"][s.org_index]
        for s in keeping_up
    )
    return {
        "mode": mode,
        "subscribers": len(subscribers),
        "events_published": load["published"],
        "publish_rate": load["published"] / load["elapsed"],
        "expected_deliveries": expected,
        "received_deliveries": received,
        # Expected but not received by the end of the wait (60 s after the load at most):
        # dropped, or still queued in an API that could not keep up.
        "missing": expected - received,
        "missing_for_clients_not_cut_off": expected_keeping_up
        - sum(s.received for s in keeping_up),
        "cut_off": len(subscribers) - len(keeping_up),
        "errors": subscribers_errors,
        "deliveries_per_second": received / delivery_window,
        "p50_ms": 1000 * statistics.median(latencies) if latencies else None,
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99) - 1] if latencies else None,
        "max_ms": 1000 * latencies[-1] if latencies else None,
        "api_cpu_seconds": cpu_used,
        # Load-independent efficiency: what one second of the API's CPU delivers.
        "deliveries_per_api_cpu_second": received / max(cpu_used, 1e-9),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=2000)
    parser.add_argument("--organizations", type=int, default=100)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--modes", default="shared,naive")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/11")
    parser.add_argument(
        "--admin-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    )
    parser.add_argument(
        "--client-processes",
        type=int,
        default=4,
        help="processes the websocket clients are spread over (the API is always one)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    database_url = await create_database(args.admin_url)
    try:
        orgs = await seed(database_url, args.organizations)
        results = [
            await run_mode(mode, database_url, args.redis_url, orgs, args)
            for mode in args.modes.split(",")
        ]
    finally:
        await drop_database(args.admin_url, database_url)

    if args.json:
        print(json.dumps(results, indent=2))
    print(
        f"\n{args.subscribers} subscribers over {args.organizations} organizations, "
        f"{args.rate} events/s for {args.seconds:.0f} s, one API process\n"
    )
    header = (
        f"{'mode':<8}{'p50 ms':>9}{'p99 ms':>9}{'deliv/s':>10}{'expected':>10}"
        f"{'received':>10}{'missing':>9}{'cut off':>9}{'API CPU s':>11}{'deliv/CPU s':>13}"
    )
    print(header)
    for r in results:
        p50 = f"{r['p50_ms']:.1f}" if r["p50_ms"] is not None else "-"
        p99 = f"{r['p99_ms']:.1f}" if r["p99_ms"] is not None else "-"
        print(
            f"{r['mode']:<8}{p50:>9}{p99:>9}{r['deliveries_per_second']:>10.0f}"
            f"{r['expected_deliveries']:>10}{r['received_deliveries']:>10}{r['missing']:>9}"
            f"{r['cut_off']:>9}{r['api_cpu_seconds']:>11.1f}"
            f"{r['deliveries_per_api_cpu_second']:>13.0f}"
        )
    by_mode = {r["mode"]: r for r in results}
    if "shared" in by_mode and "naive" in by_mode:
        ratio = by_mode["shared"]["deliveries_per_second"] / max(
            by_mode["naive"]["deliveries_per_second"], 1e-9
        )
        efficiency = by_mode["shared"]["deliveries_per_api_cpu_second"] / max(
            by_mode["naive"]["deliveries_per_api_cpu_second"], 1e-9
        )
        print(f"\nshared / naive delivery rate: {ratio:.1f}x")
        print(f"shared / naive deliveries per API CPU second: {efficiency:.1f}x")
    print(f"load average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    asyncio.run(main())
