"""Dispatch throughput: queued SMS delivered by one worker process to a fake Twilio.

    uv run python bench/dispatch.py [--messages 100000] [--latency-ms 20] \\
        [--batch-size 500] [--jobs 8] [--send-concurrency 200] [--keep]

What runs, each in its own process: PostgreSQL (a scratch database, created
and dropped), Redis (``--redis-url``, a private queue name), the fake Twilio
(answering after ``--latency-ms``: by default :class:`LeanTwilio`, a raw-protocol
server that checks path, Basic auth and form and answers Twilio's 201 body, cheap
enough not to compete with the worker for the 2 cores; ``--fake tests`` uses the
tests' FakeTwilio on uvicorn instead), and one ``mensajero worker``. The messages
are inserted QUEUED with one ``INSERT ... SELECT generate_series`` per table
(not timed); the clock starts
when the first dispatch job is enqueued and stops when the database holds
every attempt SENT (polled). Throughput = messages / that time.

Baseline in the same run: the same number of bare POSTs to the same fake, from
one process, with the same client settings and the same number in flight: the
provider-bound ceiling of a single Python process, with no database at all.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mensajero.migrate import upgrade_database  # noqa: E402
from mensajero.providers.http import create_provider_http_client, post  # noqa: E402
from mensajero.redis import create_redis  # noqa: E402
from mensajero.settings import Settings  # noqa: E402
from mensajero.workers import enqueue  # noqa: E402

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "bench-auth-token"


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def create_database(admin_url: str, name: str) -> str:
    connection = await asyncpg.connect(_dsn(admin_url))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


async def drop_database(admin_url: str, name: str) -> None:
    connection = await asyncpg.connect(_dsn(admin_url))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def load_queued(database_url: str, count: int) -> uuid.UUID:
    """One organization and ``count`` QUEUED SMS attempts, inserted by PostgreSQL itself."""
    organization_id = uuid.uuid4()
    connection = await asyncpg.connect(_dsn(database_url))
    try:
        await connection.execute(
            """
            INSERT INTO organizations (id, created_at, updated_at, name, timezone,
                                       credit_balance, terms_version)
            VALUES ($1, now(), now(), 'Bench', 'UTC', 0, '2026-01')
            """,
            organization_id,
        )
        await connection.execute(
            """
            INSERT INTO messages (id, created_at, updated_at, organization_id, direction, channel,
                                  communication_type, content_type, body, recipient, metadata,
                                  segments, cost, status, queue_id)
            SELECT gen_random_uuid(), now(), now(), $1, 'outbound', 'sms', 'campaign',
                   'PLAIN_TEXT', 'Hola ' || n || ', te recordamos tu cita de mañana.',
                   '+57300' || lpad(n::text, 7, '0'), '{}', 1, 1, 'QUEUED', 'bench'
            FROM generate_series(1, $2) AS n
            """,
            organization_id,
            count,
        )
        await connection.execute(
            """
            INSERT INTO communication_logs (id, created_at, updated_at, organization_id,
                                            message_id, communication_type, channel, direction,
                                            attempt_number, recipient, status, cost, refunded,
                                            provider_metadata)
            SELECT gen_random_uuid(), now(), now(), organization_id, id, 'campaign', 'sms',
                   'outbound', 1, recipient, 'QUEUED', 1, false, '{}'
            FROM messages WHERE organization_id = $1
            """,
            organization_id,
        )
        await connection.execute("ANALYZE messages; ANALYZE communication_logs")
    finally:
        await connection.close()
    return organization_id


async def queued_ids(database_url: str, organization_id: uuid.UUID) -> list[str]:
    connection = await asyncpg.connect(_dsn(database_url))
    try:
        rows = await connection.fetch(
            "SELECT id FROM communication_logs WHERE organization_id = $1 ORDER BY id",
            organization_id,
        )
    finally:
        await connection.close()
    return [str(row["id"]) for row in rows]


async def distinct_external_ids(database_url: str, organization_id: uuid.UUID) -> int:
    """Provider message ids recorded: one per attempt when each was sent exactly once."""
    connection = await asyncpg.connect(_dsn(database_url))
    try:
        return await connection.fetchval(
            "SELECT count(DISTINCT external_id) FROM communication_logs WHERE organization_id = $1",
            organization_id,
        )
    finally:
        await connection.close()


async def count_sent(connection: asyncpg.Connection) -> int:
    return await connection.fetchval(
        "SELECT count(*) FROM communication_logs WHERE status = 'SENT'"
    )


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def baseline(base_url: str, count: int, concurrency: int) -> tuple[float, float]:
    """Bare POSTs to the fake at the same concurrency: the single-process ceiling."""
    settings = Settings(provider_max_connections=concurrency, provider_timeout_seconds=30.0)
    url = f"{base_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    semaphore = asyncio.Semaphore(concurrency)
    async with create_provider_http_client(settings) as http:

        async def one(index: int) -> None:
            async with semaphore:
                response = await post(
                    http,
                    "twilio",
                    url,
                    data={
                        "To": f"+57301{index:07d}",
                        "From": "+15005550006",
                        "Body": "Hola, te recordamos tu cita de mañana.",
                    },
                    auth=(ACCOUNT_SID, AUTH_TOKEN),
                )
                assert response.status_code == 201, response.status_code

        started = time.perf_counter()
        cpu_started = time.process_time()
        await asyncio.gather(*(one(index) for index in range(count)))
        cpu = time.process_time() - cpu_started
        return count / (time.perf_counter() - started), cpu / count


def _shared_port_server(port: int, latency_ms: float) -> Any:
    """A fake Twilio server on ``port`` (0: any), sharing it with others (SO_REUSEPORT).

    ``tests.fakes``' server leaves Nagle's algorithm on for the connections it
    accepts: on a keep-alive connection the response's second segment then waits
    for the client's delayed ACK, ~40 ms per request, which no provider does. So
    TCP_NODELAY is set on the listening socket (accepted sockets inherit it).
    """
    import socket

    from tests.fakes.base import ThreadedServer
    from tests.fakes.twilio import FakeTwilio

    fake = FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, latency=latency_ms / 1000)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    listener.bind(("127.0.0.1", port))
    server = ThreadedServer(fake.app, port=0)
    server._socket.close()
    server._socket = listener
    server.port = listener.getsockname()[1]
    return server


class LeanTwilio:
    """Twilio's Messages API and nothing else, as a raw asyncio protocol (``--fake lean``).

    The tests' fake (a Starlette app on uvicorn) costs ~0.3 ms of CPU per request:
    at thousands of sends a second it would take a core from the worker it
    measures. This one checks what the worker's requests must get right (the
    path, Basic auth with the account's SID and token, a form with To and Body)
    and answers Twilio's 201 body with a unique ``sid`` after the latency, for
    ~30 us per request. Keep-alive, pipelining-safe (answers in order).
    """

    def __init__(self, latency_ms: float) -> None:
        import base64
        import itertools

        self.latency = latency_ms / 1000
        self.path = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json".encode()
        token = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode())
        self.authorization = b"basic " + token.lower()
        self.sids = (f"SM{os.getpid():08x}{n:024x}" for n in itertools.count())

    def protocol(self) -> Any:
        import urllib.parse

        fake = self

        class Connection(asyncio.Protocol):
            def connection_made(self, transport: Any) -> None:
                self.transport = transport
                self.buffer = b""
                self.loop = asyncio.get_running_loop()
                self.last = 0.0  # answers leave in request order

            def data_received(self, data: bytes) -> None:
                self.buffer += data
                while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
                    head = self.buffer[:end].decode("latin-1").split("\r\n")
                    headers = dict(
                        (name.strip().lower(), value.strip())
                        for name, _, value in (line.partition(":") for line in head[1:])
                    )
                    length = int(headers.get("content-length", "0"))
                    if len(self.buffer) < end + 4 + length:
                        return
                    body = self.buffer[end + 4 : end + 4 + length]
                    self.buffer = self.buffer[end + 4 + length :]
                    self.answer(head[0], headers, body)

            def answer(self, request_line: str, headers: dict[str, str], body: bytes) -> None:
                method, path, _ = request_line.split(" ", 2)
                form = urllib.parse.parse_qs(body.decode())
                if method != "POST" or path.encode() != fake.path:
                    status, payload = "404 Not Found", {"code": 20404, "status": 404}
                elif headers.get("authorization", "").lower().encode() != fake.authorization:
                    status, payload = "401 Unauthorized", {"code": 20003, "status": 401}
                elif not form.get("To") or not form.get("Body"):
                    status, payload = "400 Bad Request", {"code": 21604, "status": 400}
                else:
                    status = "201 Created"
                    payload = {
                        "sid": next(fake.sids),
                        "status": "queued",
                        "to": form["To"][0],
                        "from": form.get("From", [""])[0],
                        "body": form["Body"][0],
                        "num_segments": "1",
                    }
                content = json.dumps(payload).encode()
                response = (
                    f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(content)}\r\n\r\n"
                ).encode() + content
                when = max(self.loop.time() + fake.latency, self.last)
                self.last = when
                self.loop.call_at(when, self.write, response)

            def write(self, response: bytes) -> None:
                if not self.transport.is_closing():
                    self.transport.write(response)

        return Connection


def _serve_lean(listener: Any, latency_ms: float) -> None:
    """Serve on ``listener`` until SIGTERM or SIGINT."""
    import signal

    import uvloop

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        stop = loop.create_future()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
        server = await loop.create_server(LeanTwilio(latency_ms).protocol(), sock=listener)
        async with server:
            await stop

    uvloop.run(serve())


def _listener(port: int) -> Any:
    """A listening socket on ``port`` (0: any) that other processes may share (SO_REUSEPORT),
    with Nagle's algorithm off for the connections it accepts."""
    import socket

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(1024)
    return listener


def serve_fake(latency_ms: float, processes: int, port: int = 0, kind: str = "lean") -> None:
    """Serve until SIGTERM; the first process prints ``LISTENING <url>`` and starts the others.

    Several processes share the port (the kernel spreads connections) so that
    the fake is not the bottleneck of the measurement. ``kind``: ``lean``
    (:class:`LeanTwilio`) or ``tests`` (the tests' FakeTwilio on uvicorn).
    """
    import signal
    import threading

    if kind == "lean":
        listener = _listener(port)
        bound = listener.getsockname()[1]
    else:
        server = _shared_port_server(port, latency_ms)
        bound = server.port
    children = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--serve-fake",
                "--fake",
                kind,
                "--fake-processes",
                "1",
                "--fake-port",
                str(bound),
                "--latency-ms",
                str(latency_ms),
            ],
            cwd=ROOT,
        )
        for _ in range(processes - 1)
    ]
    if port == 0:
        print(f"LISTENING http://127.0.0.1:{bound}", flush=True)
    if kind == "lean":
        _serve_lean(listener, latency_ms)
    else:
        server.start()
        done = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: done.set())
        done.wait()
        server.stop()
    for child in children:
        child.terminate()
        child.wait(timeout=30)


@contextlib.contextmanager
def fake_twilio(latency_ms: float, processes: int, kind: str) -> Iterator[str]:
    process = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--serve-fake",
            "--fake",
            kind,
            "--latency-ms",
            str(latency_ms),
            "--fake-processes",
            str(processes),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.startswith("LISTENING "):
            raise RuntimeError(f"fake did not start: {line!r}")
        time.sleep(1.0)  # the other processes join the port
        yield line.split(" ", 1)[1]
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextlib.contextmanager
def worker_process(env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """The worker, its output appended to ``$BENCH_WORKER_LOG`` (default: discarded)."""
    with open(os.environ.get("BENCH_WORKER_LOG", os.devnull), "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "mensajero.cli", "worker"],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=log,
        )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def wait_for_worker(redis: object, within: float = 120.0) -> None:
    from mensajero.workers import count_live_workers

    deadline = time.monotonic() + within
    while await count_live_workers(redis) == 0:  # type: ignore[arg-type]
        if time.monotonic() > deadline:
            raise RuntimeError("the worker did not start")
        await asyncio.sleep(0.2)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--jobs", type=int, default=8, help="dispatch jobs run at once")
    parser.add_argument("--send-concurrency", type=int, default=200)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "MENSAJERO_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/9")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--fake-processes", type=int, default=1)
    parser.add_argument(
        "--fake",
        choices=["lean", "tests"],
        default="lean",
        help="lean: a raw-protocol fake Twilio; tests: the tests' FakeTwilio on uvicorn",
    )
    parser.add_argument(
        "--baseline-requests", type=int, default=0, help="bare POSTs (default: --messages)"
    )
    parser.add_argument("--serve-fake", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--fake-port", type=int, default=0, help=argparse.SUPPRESS)
    return parser.parse_args()


async def main(args: argparse.Namespace) -> None:
    database_name = f"mensajero_bench_dispatch_{os.getpid()}"
    database_url = await create_database(args.postgres_url, database_name)
    queue_name = f"mensajero:bench:dispatch:{os.getpid()}"
    redis = await create_redis(args.redis_url)
    try:
        await asyncio.to_thread(upgrade_database, database_url)
        load_started = time.perf_counter()
        organization_id = await load_queued(database_url, args.messages)
        ids = await queued_ids(database_url, organization_id)
        load_seconds = time.perf_counter() - load_started
        with fake_twilio(args.latency_ms, args.fake_processes, args.fake) as base_url:
            ceiling, baseline_cpu = await baseline(
                base_url, args.baseline_requests or args.messages, args.send_concurrency
            )
            env = {
                **os.environ,
                "MENSAJERO_DATABASE_URL": database_url,
                "MENSAJERO_REDIS_URL": args.redis_url,
                "MENSAJERO_QUEUE_NAME": queue_name,
                "MENSAJERO_SMS_PROVIDER": "twilio",
                "MENSAJERO_TWILIO_BASE_URL": base_url,
                "MENSAJERO_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
                "MENSAJERO_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                "MENSAJERO_TWILIO_FROM_NUMBER": "+15005550006",
                "MENSAJERO_WORKER_CONCURRENCY": str(args.jobs),
                "MENSAJERO_DISPATCH_BATCH_SIZE": str(args.batch_size),
                "MENSAJERO_DISPATCH_SEND_CONCURRENCY": str(args.send_concurrency),
                "MENSAJERO_PROVIDER_MAX_CONNECTIONS": str(args.send_concurrency),
                "MENSAJERO_DATABASE_POOL_SIZE": str(max(args.jobs, 4)),
            }
            settings = Settings(redis_url=args.redis_url, queue_name=queue_name)
            with worker_process(env) as worker:
                await wait_for_worker(redis)
                connection = await asyncpg.connect(_dsn(database_url))
                try:
                    started = time.perf_counter()
                    worker_cpu_started = process_cpu_seconds(worker.pid)
                    for start in range(0, len(ids), args.batch_size):
                        await enqueue(
                            redis,
                            settings,
                            "delivery.dispatch",
                            ids[start : start + args.batch_size],
                            job_id=f"bench:{os.getpid()}:{start}",  # arq keeps results by id,
                        )
                    enqueued = time.perf_counter() - started
                    while (sent := await count_sent(connection)) < args.messages:
                        if worker.poll() is not None:
                            raise RuntimeError("the worker exited")
                        await asyncio.sleep(0.25)
                    elapsed = time.perf_counter() - started
                    worker_cpu = process_cpu_seconds(worker.pid) - worker_cpu_started
                finally:
                    await connection.close()
            received = await distinct_external_ids(database_url, organization_id)
        result = {
            "messages": args.messages,
            "latency_ms": args.latency_ms,
            "batch_size": args.batch_size,
            "jobs": args.jobs,
            "send_concurrency": args.send_concurrency,
            "load_seconds": round(load_seconds, 1),
            "enqueue_seconds": round(enqueued, 2),
            "dispatch_seconds": round(elapsed, 2),
            "dispatch_per_second": round(sent / elapsed),
            "worker_cpu_ms_per_message": round(worker_cpu / sent * 1000, 3),
            "baseline_bare_posts_per_second": round(ceiling),
            "baseline_client_cpu_ms_per_post": round(baseline_cpu * 1000, 3),
            "load_average_1m": os.getloadavg()[0],
            "distinct_provider_ids": received,
            "fake": args.fake,
            "fake_processes": args.fake_processes,
        }
        if args.json:
            print(json.dumps(result))
        else:
            print(
                f"{args.messages} SMS, fake Twilio at {args.latency_ms:.0f} ms, "
                f"batches of {args.batch_size}, {args.jobs} jobs at once, "
                f"{args.send_concurrency} sends in flight"
            )
            print(f"  loaded in {load_seconds:.1f}s (not timed), enqueued in {enqueued:.2f}s")
            print(
                f"  dispatch: QUEUED -> SENT persisted: {elapsed:.1f}s = "
                f"{sent / elapsed:,.0f} msg/s ({received} distinct provider ids)"
            )
            print(
                f"  worker CPU: {worker_cpu / sent * 1000:.3f} ms per message "
                f"(= {sent / worker_cpu:,.0f} msg/s for one dedicated core)"
            )
            print(
                f"  baseline: bare POSTs from one process: {ceiling:,.0f} req/s, "
                f"client CPU {baseline_cpu * 1000:.3f} ms per POST "
                f"(= {1 / baseline_cpu:,.0f} req/s for one dedicated core)"
            )
            print(f"  load average (1 min) at the end: {os.getloadavg()[0]:.1f}")
            print(f"  fake: {args.fake}, {args.fake_processes} process(es)")
    finally:
        await redis.delete(queue_name)
        await redis.aclose()
        if not args.keep:
            await drop_database(args.postgres_url, database_name)


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.serve_fake:
        serve_fake(
            arguments.latency_ms, arguments.fake_processes, arguments.fake_port, arguments.fake
        )
    else:
        asyncio.run(main(arguments))
