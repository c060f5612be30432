"""The single place the process gets its Redis connection.

Two modes, chosen by ``Settings.redis_url``:

* ``redis://host:port/db`` / ``rediss://...``: a real Redis, through ``arq.create_pool``.
* ``memory://`` or ``memory://<name>``: an in-process, Redis-compatible server (fakeredis). Every
  client created for the same name in this process talks to the *same* ``FakeServer``, so the
  API, the in-process arq worker and the pub/sub event bus share keys, queues and channels exactly
  as separate processes would through a real Redis.

Both modes return an ``arq.connections.ArqRedis`` that does not decode responses (arq reads job
ids, payloads and scores as bytes).
"""

from __future__ import annotations

import threading
from typing import cast

from arq.connections import ArqRedis, RedisSettings, create_pool
from fakeredis import FakeServer
from fakeredis._commands import SUPPORTED_COMMANDS, command  # private: only for the INFO patch
from fakeredis._socket import FakeSocket  # private: only for the INFO patch
from fakeredis.aioredis import FakeAsyncRedisConnection
from redis.asyncio import ConnectionPool

MEMORY_SCHEME = "memory://"
_REDIS_SCHEMES = ("redis://", "rediss://")

# The embedded server emulates Redis 7 (fakeredis' own default is 8), the version of the real
# Redis these modes are tested side by side against, so version-dependent command semantics and
# error texts match between the two.
_MEMORY_SERVER_VERSION = (7,)

# One FakeServer per ``memory://<name>``, for the whole process. Module-level on purpose: the
# server must outlive any single client or connection pool, otherwise the worker and the API
# would each see an empty, private Redis.
_memory_servers: dict[str, FakeServer] = {}
# Cheap insurance: a caller on another thread (e.g. a sync test client) must not race us into
# creating two servers for one name.
_memory_servers_lock = threading.Lock()


def _mensajero_info(self: FakeSocket, *sections: bytes) -> bytes:
    """A minimal ``INFO [section ...]`` for fakeredis: just the ``Server`` section.

    fakeredis (2.40) has no INFO at all, but ``arq.worker.Worker.main`` starts with
    ``log_redis_info``, which pipelines ``INFO server/memory/clients`` + ``DBSIZE`` and would
    raise "unknown command 'info'", so the in-process worker could not start. arq only logs
    ``redis_version``, ``used_memory_human`` and ``connected_clients`` and tolerates missing
    fields (``.get(..., '?')``), so the server version is all we report; other sections are
    empty, which is also what Redis answers for a section it does not know.
    """
    wanted = {section.lower() for section in sections} or {b"default"}
    if not wanted & {b"server", b"default", b"all", b"everything"}:
        return b""
    version = ".".join(str(part) for part in (*self._server.version, 0, 0)[:3])
    return f"# Server\r\nredis_version:{version}\r\nredis_mode:standalone\r\n".encode()


def _ensure_fakeredis_info() -> None:
    """Teach fakeredis the INFO command, once, unless it already has one.

    fakeredis dispatches commands through a process-wide registry (command name -> method name
    on the socket), so the method goes on the base ``FakeSocket`` and every fakeredis socket in
    the process stays consistent. The guard makes this a no-op on a fakeredis that implements
    INFO itself, so an upgrade silently retires the patch.
    """
    if "info" in SUPPORTED_COMMANDS:
        return
    # The registry stores the function's ``__name__`` and looks it up on the socket, so the
    # attribute name must match it; the prefix keeps it clear of fakeredis' own methods.
    FakeSocket._mensajero_info = _mensajero_info  # type: ignore[attr-defined]
    command((), (bytes,), name="info")(_mensajero_info)


def _memory_name(redis_url: str) -> str:
    """``memory://`` -> ``""``; ``memory://bus`` -> ``"bus"`` (a trailing slash is ignored)."""
    return redis_url[len(MEMORY_SCHEME) :].strip("/")


def _memory_server(name: str) -> FakeServer:
    with _memory_servers_lock:
        server = _memory_servers.get(name)
        if server is None:
            server = FakeServer(version=_MEMORY_SERVER_VERSION)
            _memory_servers[name] = server
        return server


def _create_memory_redis(name: str) -> ArqRedis:
    _ensure_fakeredis_info()
    # A plain redis-py pool whose connections are fakeredis connections bound to the shared
    # server: ArqRedis (a redis.asyncio.Redis subclass) then works unchanged, pipelines,
    # WATCH/MULTI/EXEC and pub/sub included. FakeAsyncRedisConnection is the class that
    # fakeredis.aioredis.FakeConnection wraps; the wrapper is deprecated in fakeredis 2.40 and
    # would warn on every new connection.
    pool = ConnectionPool(
        connection_class=FakeAsyncRedisConnection,
        server=_memory_server(name),
        # Same encoding arguments arq.create_pool passes: bytes out (no decode_responses).
        encoding="utf8",
        decode_responses=False,
    )
    # from_pool (rather than ArqRedis(connection_pool=...)) makes the client own its pool, so
    # ``await client.aclose()`` disconnects it, exactly like a client from arq.create_pool.
    return cast(ArqRedis, ArqRedis.from_pool(pool))


async def create_redis(redis_url: str) -> ArqRedis:
    """Open an arq-capable Redis client for ``redis_url`` (``memory://[name]`` or ``redis[s]://``).

    Each call returns a new client with its own connection pool; for ``memory://`` URLs all
    clients of the same name share one in-process server. The caller owns the client and should
    ``await client.aclose()`` it when done.
    """
    if redis_url.startswith(MEMORY_SCHEME):
        return _create_memory_redis(_memory_name(redis_url))
    if redis_url.startswith(_REDIS_SCHEMES):
        # create_pool pings the server (retrying per RedisSettings), so a wrong URL fails here,
        # at startup, rather than on the first enqueue.
        return await create_pool(RedisSettings.from_dsn(redis_url))
    raise ValueError(
        f"Unsupported redis_url {redis_url!r}: expected memory://[name], redis:// or rediss://"
    )


def reset_memory_servers() -> None:
    """Forget every in-process server (tests only): the next ``memory://`` client starts empty.

    Clients created before the reset keep talking to the old server; create new ones.
    """
    with _memory_servers_lock:
        _memory_servers.clear()
