"""Test infrastructure: every data test runs on both backends, rolled back per test.

Backends (``MENSAJERO_TEST_BACKENDS``, default both):
- ``sqlite``: a SQLite file + the in-process Redis (the embedded mode);
- ``postgres``: PostgreSQL + Redis (production), at ``MENSAJERO_TEST_POSTGRES_URL``
  and ``MENSAJERO_TEST_REDIS_URL``.

Each run builds its databases from the migrations (a fresh PostgreSQL database
per run, dropped at the end). A missing PostgreSQL or Redis makes the tests
fail, never skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
import pytest_asyncio
from arq.connections import ArqRedis
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from starlette.applications import Starlette

from mensajero.app import create_app
from mensajero.db import create_engine, create_read_sessionmaker, create_sessionmaker
from mensajero.migrate import upgrade_database_async
from mensajero.redis import create_redis, reset_memory_servers
from mensajero.settings import Settings

POSTGRES_ADMIN_URL = os.environ.get(
    "MENSAJERO_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
REDIS_TEST_URL = os.environ.get("MENSAJERO_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
BACKENDS = [
    name.strip()
    for name in os.environ.get("MENSAJERO_TEST_BACKENDS", "sqlite,postgres").split(",")
    if name.strip()
]


@dataclass
class Backend:
    name: str
    database_url: str
    redis_url: str
    engine: AsyncEngine

    def settings(self, **overrides: object) -> Settings:
        return Settings(
            database_url=self.database_url,
            redis_url=self.redis_url,
            auto_migrate=False,
            embedded_worker=False,
            # Tests change keys and members behind the doors' back; the cache
            # has its own tests (tests/services/test_auth.py).
            auth_cache_seconds=0,
            **overrides,  # type: ignore[arg-type]
        )


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _create_postgres_database() -> str:
    admin_dsn = _asyncpg_dsn(POSTGRES_ADMIN_URL)
    name = f"mensajero_test_{uuid.uuid4().hex[:12]}"
    connection = await asyncpg.connect(admin_dsn)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


async def _drop_postgres_database(database_url: str) -> None:
    name = make_url(database_url).database
    connection = await asyncpg.connect(_asyncpg_dsn(POSTGRES_ADMIN_URL))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


@pytest_asyncio.fixture(scope="session", params=BACKENDS)
async def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Backend]:
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("sqlite") / "mensajero.db"
        database_url = f"sqlite+aiosqlite:///{path}"
        redis_url = "memory://tests"
    elif request.param == "postgres":
        database_url = await _create_postgres_database()
        redis_url = REDIS_TEST_URL
    else:
        raise ValueError(f"unknown test backend {request.param!r}")
    await upgrade_database_async(database_url)
    engine = create_engine(database_url)
    try:
        yield Backend(request.param, database_url, redis_url, engine)
    finally:
        await engine.dispose()
        if request.param == "postgres":
            await _drop_postgres_database(database_url)


@pytest_asyncio.fixture
async def connection(backend: Backend) -> AsyncIterator[AsyncConnection]:
    """A connection whose transaction is rolled back after the test."""
    async with backend.engine.connect() as connection:
        transaction = await connection.begin()
        try:
            yield connection
        finally:
            await transaction.rollback()


@pytest_asyncio.fixture
async def session(connection: AsyncConnection) -> AsyncIterator[AsyncSession]:
    async with create_sessionmaker(connection)() as session:
        yield session


@pytest_asyncio.fixture
async def redis(backend: Backend) -> AsyncIterator[ArqRedis]:
    """The backend's Redis, empty at the start of each test."""
    client = await create_redis(backend.redis_url)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.aclose()
        if backend.name == "sqlite":
            reset_memory_servers()


@pytest_asyncio.fixture
async def app(backend: Backend, connection: AsyncConnection, redis: ArqRedis) -> Starlette:
    """The real application, its sessions joined to the test's rolled-back transaction."""
    application = create_app(backend.settings())
    application.state.engine = backend.engine
    application.state.sessionmaker = create_sessionmaker(connection)
    application.state.read_sessionmaker = create_read_sessionmaker(connection)
    application.state.redis = redis
    return application


@pytest_asyncio.fixture
async def http(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://mensajero.test") as client:
        yield client
