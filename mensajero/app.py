"""The Starlette application: GraphQL, REST shim, provider webhooks, health and metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from mensajero.db import create_engine, create_read_sessionmaker, create_sessionmaker
from mensajero.events import EventHub
from mensajero.gc_tuning import tune_garbage_collection
from mensajero.metrics import MetricsMiddleware, metrics_endpoint
from mensajero.redis import create_redis
from mensajero.rest import shim_routes
from mensajero.rest.provider_webhooks import provider_webhook_routes
from mensajero.schema.broadcast import SubscriptionBroadcaster
from mensajero.schema.frames import ServerSendMiddleware
from mensajero.schema.graphiql import STATIC_DIRECTORY, STATIC_URL_PATH
from mensajero.schema.view import create_graphql_endpoint
from mensajero.settings import Settings, get_settings
from mensajero.workers import build_worker, count_live_workers

logger = logging.getLogger("mensajero")

READINESS_TIMEOUT_SECONDS = 2.0


async def healthz(_request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    """Ready when both the database and Redis answer; reports live workers too."""
    checks: dict[str, Any] = {}
    ready = True
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_SECONDS):
            async with request.app.state.engine.connect() as connection:
                autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
                await autocommit.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as error:  # any failure means not ready; say which
        ready = False
        checks["database"] = f"error: {type(error).__name__}"
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_SECONDS):
            await request.app.state.redis.ping()
            checks["workers"] = await count_live_workers(request.app.state.redis)
        checks["redis"] = "ok"
    except Exception as error:
        ready = False
        checks["redis"] = f"error: {type(error).__name__}"
    checks["status"] = "ready" if ready else "unavailable"
    return JSONResponse(checks, status_code=200 if ready else 503)


def build_routes() -> list[BaseRoute]:
    graphql = create_graphql_endpoint()
    return [
        Route("/graphql", graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics_endpoint),
        # GraphiQL's vendored assets (mensajero/static/graphiql): no CDN needed.
        Mount(STATIC_URL_PATH, app=StaticFiles(directory=STATIC_DIRECTORY), name="static"),
        *provider_webhook_routes(),
        # The REST shim of the legacy APIs, /openapi.json and /docs.
        *shim_routes(),
    ]


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    if settings.should_auto_migrate:
        from mensajero.migrate import upgrade_database_async

        await upgrade_database_async(settings.database_url)
    engine = create_engine(
        settings.database_url, echo=settings.database_echo, pool_size=settings.database_pool_size
    )
    app.state.engine = engine
    app.state.sessionmaker = create_sessionmaker(engine)
    app.state.read_sessionmaker = create_read_sessionmaker(engine)
    app.state.redis = await create_redis(settings.redis_url)
    # One bus subscription for the whole process, fanned out to its websockets.
    app.state.event_hub = EventHub(app.state.redis, buffer_size=settings.subscription_buffer_size)
    await app.state.event_hub.start()
    app.state.subscription_broadcaster = SubscriptionBroadcaster()
    worker_task: asyncio.Task[None] | None = None
    worker = None
    if settings.should_run_embedded_worker:
        # The worker gets a client of its own: arq closes its pool on shutdown,
        # which must not cut the API's connections (pub/sub listeners).
        worker = build_worker(
            settings,
            await create_redis(settings.redis_url),
            shared_context={"engine": engine, "sessionmaker": app.state.sessionmaker},
            handle_signals=False,
        )
        worker_task = asyncio.create_task(worker.async_run(), name="embedded-arq-worker")
        logger.info("embedded arq worker started")
    try:
        yield
    finally:
        if worker is not None and worker_task is not None:
            worker_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker_task
            await worker.close()
        await app.state.event_hub.stop()
        await app.state.redis.aclose()
        await engine.dispose()


def create_served_app() -> Starlette:
    """The app as ``mensajero serve`` runs it (each uvicorn worker calls this)."""
    app = create_app()
    if app.state.settings.server_gc_tuning:
        tune_garbage_collection()
    return app


def create_app(settings: Settings | None = None) -> Starlette:
    app = Starlette(
        routes=build_routes(),
        middleware=[Middleware(ServerSendMiddleware), Middleware(MetricsMiddleware)],
        lifespan=lifespan,
    )
    app.state.settings = settings or get_settings()
    return app
