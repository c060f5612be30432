"""Engines, sessions and the bulk-insert helper shared by both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import orjson
from redis.asyncio import Redis
from sqlalchemy import Table, event, insert
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

from mensajero.events import commit_and_publish
from mensajero.outbox import pending_jobs

SQLITE_BUSY_TIMEOUT_MS = 30_000


def _orjson_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _unicode_lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _configure_sqlite(engine: AsyncEngine) -> None:
    """Make SQLite behave like a server database for our purposes.

    pysqlite's own transaction handling defers BEGIN and breaks SAVEPOINTs, so
    we take control (SQLAlchemy's documented recipe) and start every
    transaction with BEGIN IMMEDIATE: with one writer at a time, a transaction
    that reads and then writes can never fail half-way with SQLITE_BUSY, and
    the busy timeout queues writers instead of erroring.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()
        # SQLite's lower() folds ASCII only; case-insensitive searches
        # (ILIKE compiles to lower(x) LIKE lower(y)) must match "MARÍA" to "María".
        dbapi_connection.create_function("lower", 1, _unicode_lower, deterministic=True)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # AUTOCOMMIT connections (health checks) read outside any transaction
        # and so never wait for a writer.
        if connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
            return
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_engine(url: str, *, echo: bool = False, pool_size: int = 10) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(
            url,
            echo=echo,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            # One file, one writer: a small pool of connections is plenty.
            pool_size=4,
            max_overflow=4,
        )
        _configure_sqlite(engine)
        return engine
    return create_async_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=False,
        # JSONB columns (message and client metadata) are decoded on every row
        # read: orjson does it several times faster than the json module.
        json_deserializer=orjson.loads,
        json_serializer=_orjson_dumps,
    )


def create_unpooled_engine(url: str) -> AsyncEngine:
    """For one-off commands (migrate, bootstrap) that should not keep connections."""
    engine = create_async_engine(url, poolclass=NullPool)
    if url.startswith("sqlite"):
        _configure_sqlite(engine)
    return engine


def create_sessionmaker(bind: AsyncEngine | AsyncConnection) -> async_sessionmaker[AsyncSession]:
    kwargs: dict[str, Any] = {"expire_on_commit": False, "autoflush": False}
    if isinstance(bind, AsyncConnection):
        # Tests bind sessions to a connection whose outer transaction is rolled
        # back at the end; the session's own commits become savepoints.
        kwargs["join_transaction_mode"] = "create_savepoint"
    return async_sessionmaker(bind, class_=AsyncSession, **kwargs)


def create_read_sessionmaker(
    bind: AsyncEngine | AsyncConnection,
) -> async_sessionmaker[AsyncSession]:
    """Sessions for read-only work: autocommit, so no BEGIN and ROLLBACK round trips.

    Each statement still reads one consistent snapshot, as under READ
    COMMITTED (our isolation level) inside a transaction; on SQLite, reads
    also stop taking the write lock that BEGIN IMMEDIATE takes. Never write
    through these sessions: every statement would commit on its own.
    """
    if isinstance(bind, AsyncConnection):
        return create_sessionmaker(bind)  # tests: inside the test's transaction
    return create_sessionmaker(bind.execution_options(isolation_level="AUTOCOMMIT"))


@asynccontextmanager
async def transaction(
    sessionmaker: async_sessionmaker[AsyncSession], *, redis: Redis | None = None
) -> AsyncIterator[AsyncSession]:
    """The edge's unit of work: commit on success, roll back on any error.

    With ``redis``, the status events the transaction deferred are published
    and its deferred jobs enqueued after the commit (see :mod:`mensajero.events`
    and :mod:`mensajero.outbox`).
    """
    async with sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            if redis is None:
                if pending_jobs(session):
                    # Committing would strand the rows the jobs were meant for.
                    await session.rollback()
                    raise RuntimeError("the transaction deferred jobs: pass redis= to enqueue")
                await session.commit()
            else:
                await commit_and_publish(session, redis)


async def bulk_insert(
    session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]], *, chunk_size: int = 5000
) -> None:
    """Insert many rows with executemany in chunks, bypassing the ORM unit of work.

    asyncpg turns this into a prepared statement executed per row in one round
    trip pipeline; SQLite runs executemany in C. Either is tens of times faster
    than ``add_all``.
    """
    for start in range(0, len(rows), chunk_size):
        await session.execute(insert(table), list(rows[start : start + chunk_size]))
