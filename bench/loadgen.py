"""What the HTTP benchmarks share: load generators and CPU accounting.

The load generator must not starve the server of CPU on a small machine: by
default it is ``wrk`` (C; Debian/Ubuntu: ``apt-get install -y wrk``), given a
Lua script for the method, headers and body and ``--latency`` for
percentiles. Without wrk, ``asyncio_load`` is a lean HTTP/1.1 keep-alive client
on raw asyncio streams (several times wrk's CPU per request, a fraction of
httpx's). CPU is read from /proc (Linux), so that each run can say what a
request cost the server, its PostgreSQL backends and the load generator.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import signal
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

WRK_INSTALL_HINT = "install wrk (Debian/Ubuntu: apt-get install -y wrk) or pass --client asyncio"


@dataclass
class Request:
    """One HTTP request, sent back to back by a load generator."""

    name: str
    method: str
    url: str  # absolute: http://host:port/path?query
    headers: dict[str, str]
    body: bytes | None = None


@dataclass
class Load:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds


# --- load generators --------------------------------------------------------------------

_WRK_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _wrk_script(request: Request, directory: str) -> str:
    path = Path(directory) / "request.lua"
    lines = [f"wrk.method = {json.dumps(request.method)}"]
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in request.headers.items()]
    if request.body is not None:
        lines.append(f"wrk.body = {json.dumps(request.body.decode())}")
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _wrk_latency(output: str, percentile: str) -> float:
    match = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no {percentile}% latency in wrk's output:\n{output}")
    return float(match.group(1)) * _WRK_UNITS[match.group(2)]


async def wrk_load(request: Request, *, connections: int, duration: float) -> Load:
    """``connections`` keep-alive connections from one wrk thread; any non-2xx fails the run."""
    with tempfile.TemporaryDirectory() as directory:
        script = _wrk_script(request, directory)
        process = await asyncio.create_subprocess_exec(
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            "--latency",
            "--timeout",
            "60s",  # wrk's 2 s default counts slow answers under load as errors
            "-s",
            script,
            request.url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output = (await process.communicate())[0].decode()
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed:\n{output}")
    for failure in ("Non-2xx or 3xx responses", "Socket errors"):
        if failure in output:
            raise RuntimeError(f"{request.name}: {failure.lower()}:\n{output}")
    requests = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", output)
    if requests is None:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    seconds = float(requests.group(2)) * _WRK_UNITS[requests.group(3)] / 1000
    return Load(
        int(requests.group(1)), seconds, _wrk_latency(output, "50"), _wrk_latency(output, "99")
    )


async def asyncio_load(request: Request, *, connections: int, duration: float) -> Load:
    """``connections`` keep-alive HTTP/1.1 connections sending back to back (no wrk)."""
    parts = urlsplit(request.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    head = [f"{request.method} {target} HTTP/1.1", f"Host: {host}:{port}"]
    head += [f"{name}: {value}" for name, value in request.headers.items()]
    if request.body is not None:
        head.append(f"Content-Length: {len(request.body)}")
    raw = ("\r\n".join(head) + "\r\n\r\n").encode() + (request.body or b"")
    latencies: list[float] = []
    stop_at = time.perf_counter() + duration

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while (started := time.perf_counter()) < stop_at:
                writer.write(raw)
                header = await reader.readuntil(b"\r\n\r\n")
                if not header.startswith(b"HTTP/1.1 200"):
                    raise RuntimeError(f"{request.name}: {header[:200]!r}")
                length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", header)
                if length is None:
                    raise RuntimeError(f"{request.name}: no Content-Length in {header!r}")
                await reader.readexactly(int(length.group(1)))
                latencies.append((time.perf_counter() - started) * 1000)
        finally:
            writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    seconds = time.perf_counter() - began
    ordered = sorted(latencies)
    return Load(
        len(ordered),
        seconds,
        ordered[len(ordered) // 2],
        ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
    )


# --- processes and their CPU (Linux /proc) ----------------------------------------------


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a server started in its own session, with every process of its group."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def _stat_fields(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def _cpu_seconds(fields: list[str]) -> float:
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU of one process so far; None when it is not on this machine."""
    fields = _stat_fields(pid)
    return None if fields is None else _cpu_seconds(fields)


def group_pids(group: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None and int(fields[2]) == group:
                pids.append(int(entry.name))
    return pids


def pids_cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes so far (gone ones count nothing)."""
    total = 0.0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            total += _cpu_seconds(fields)
    return total


def _postgres_ports(pids: list[int], port: int) -> list[int]:
    """Local ports of the processes' TCP connections to ``port`` (the database's)."""
    inodes = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except (FileNotFoundError, PermissionError):
            continue
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            columns = line.split()
            local, remote, inode = columns[1], columns[2], columns[9]
            if inode in inodes and int(remote.rsplit(":", 1)[1], 16) == port:
                ports.append(int(local.rsplit(":", 1)[1], 16))
    return ports


async def postgres_backend_pids(dsn: str, server_group: int) -> list[int]:
    """The PostgreSQL backends serving a server's connections (database on this machine)."""
    ports = _postgres_ports(group_pids(server_group), urlsplit(dsn).port or 5432)
    if not ports:
        return []
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE client_port = ANY($1::int[])", ports
        )
    finally:
        await connection.close()
    pids = [row["pid"] for row in rows]
    return pids if all(_stat_fields(pid) is not None for pid in pids) else []


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class CpuPerRequest:
    server_ms: float
    postgres_ms: float | None  # None: the database's backends could not be found
    client_ms: float  # nan with the in-process asyncio client


async def measured_load(
    request: Request,
    server: subprocess.Popen[bytes],
    dsn: str,
    *,
    client: str,
    connections: int,
    duration: float,
) -> tuple[Load, CpuPerRequest]:
    """One load with the CPU it cost the server's process group, its backends and wrk."""
    generate = wrk_load if client == "wrk" else asyncio_load
    server_pids = group_pids(server.pid)
    backends_before = {
        pid: pids_cpu_seconds([pid]) for pid in await postgres_backend_pids(dsn, server.pid)
    }
    server_before = pids_cpu_seconds(server_pids)
    client_before = children_cpu_seconds()
    load = await generate(request, connections=connections, duration=duration)
    client_cpu = children_cpu_seconds() - client_before
    server_cpu = pids_cpu_seconds(server_pids) - server_before
    # Backends of connections opened during the run count from their start.
    backend_pids = await postgres_backend_pids(dsn, server.pid)
    backends_cpu = sum(
        pids_cpu_seconds([pid]) - backends_before.get(pid, 0.0) for pid in backend_pids
    )
    per = 1000 / max(load.requests, 1)
    return load, CpuPerRequest(
        server_cpu * per,
        backends_cpu * per if backend_pids else None,
        client_cpu * per if client == "wrk" else float("nan"),
    )


@dataclass
class Measurement:
    load: Load  # at ``connections`` in flight
    cpu: CpuPerRequest
    alone: Load | None  # one connection alone: a request's latency without queueing


async def checked_measurement(
    request: Request,
    server: subprocess.Popen[bytes],
    dsn: str,
    check: Callable[[], Awaitable[None]],
    *,
    client: str,
    connections: int,
    warmup: float,
    duration: float,
    alone_duration: float,
) -> Measurement:
    """Answers checked, a warm-up, the measured load, answers checked again, one client alone."""
    generate = wrk_load if client == "wrk" else asyncio_load
    await check()
    await generate(request, connections=connections, duration=warmup)
    load, cpu = await measured_load(
        request, server, dsn, client=client, connections=connections, duration=duration
    )
    await check()
    alone = None
    if alone_duration > 0:
        alone = await generate(request, connections=1, duration=alone_duration)
    return Measurement(load, cpu, alone)
