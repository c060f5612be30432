"""Command line: serve | worker | migrate | bootstrap | demo."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Coroutine
from typing import Annotated, Any

import typer

from mensajero.settings import Settings, get_settings

app = typer.Typer(help="mensajero: multi-channel messaging backend.", no_args_is_help=True)


def _fail(message: str) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def prepare_worker_process(settings: Settings) -> None:
    """Once the worker's code is loaded: the server's garbage-collector tuning, unless off.

    A dispatching worker holds thousands of sends in flight (tasks, rows,
    events): the same reasons as the server's (see mensajero.gc_tuning).
    """
    if settings.server_gc_tuning:
        from mensajero.gc_tuning import tune_garbage_collection

        tune_garbage_collection()


def _ensure_schema(settings: Settings) -> None:
    """The embedded mode migrates on its own; production runs ``mensajero migrate``."""
    if settings.should_auto_migrate:
        from mensajero.migrate import upgrade_database

        upgrade_database(settings.database_url)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    workers: Annotated[int, typer.Option(help="API processes.")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the API (GraphQL, REST shim, webhooks, health, metrics)."""
    import uvicorn

    settings = get_settings()
    if workers > 1 and settings.uses_memory_redis:
        _fail(
            "--workers > 1 needs a shared Redis: the in-process one (memory://) is private "
            "to each process. Set MENSAJERO_REDIS_URL=redis://... (and a PostgreSQL "
            "MENSAJERO_DATABASE_URL) for several processes."
        )
    typer.echo(
        f"mensajero {settings.mode.value} mode on http://{host}:{port}/graphql "
        f"(database: {settings.database_url.split('://')[0]}, redis: {settings.redis_url})",
        err=True,
    )
    uvicorn.run(
        "mensajero.app:create_served_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        ws="websockets-sansio",
        # Compressing every frame per socket costs CPU on each subscriber of a
        # fan-out; status events are small.
        ws_per_message_deflate=False,
    )


@app.command()
def worker(
    burst: Annotated[bool, typer.Option(help="Exit when the queue is empty.")] = False,
) -> None:
    """Run an arq worker process (production mode)."""
    settings = get_settings()
    if settings.uses_memory_redis:
        _fail(
            "the in-process Redis (memory://) is private to the API process, which already "
            "runs its own worker; set MENSAJERO_REDIS_URL=redis://... to run separate workers."
        )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    async def run() -> None:
        from mensajero.redis import create_redis
        from mensajero.workers import build_worker

        redis = await create_redis(settings.redis_url)
        arq_worker = build_worker(settings, redis, burst=burst)
        prepare_worker_process(settings)
        try:
            await arq_worker.async_run()
        finally:
            await arq_worker.close()

    _run_event_loop(run())


def _run_event_loop(main: Coroutine[Any, Any, None]) -> None:
    """uvloop where installed (uvicorn's standard extras bring it; not on Windows): a worker
    spends its time in the event loop, moving hundreds of provider requests at once."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


@app.command()
def migrate() -> None:
    """Apply every database migration."""
    from mensajero.migrate import upgrade_database

    settings = get_settings()
    upgrade_database(settings.database_url)
    typer.echo("database is at the latest migration", err=True)


@app.command()
def bootstrap(
    org: Annotated[str, typer.Option(help="Organization name.")],
    email: Annotated[str, typer.Option(help="The first member's email.")],
    credits: Annotated[int, typer.Option(help="Initial credit balance.")] = 0,
    timezone: Annotated[str, typer.Option(help="Organization time zone (IANA).")] = "UTC",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Create an organization, a member who accepted the terms and an all-scopes API key."""
    from mensajero.services.errors import DomainError

    settings = get_settings()
    _ensure_schema(settings)

    async def run() -> dict[str, str]:
        from mensajero.db import create_sessionmaker, create_unpooled_engine, transaction
        from mensajero.services.organization import bootstrap as bootstrap_organization

        engine = create_unpooled_engine(settings.database_url)
        try:
            async with transaction(create_sessionmaker(engine)) as session:
                result = await bootstrap_organization(
                    session,
                    organization_name=org,
                    member_email=email,
                    credits=credits,
                    timezone=timezone,
                )
        finally:
            await engine.dispose()
        return {
            "organizationId": str(result.organization.id),
            "memberId": str(result.member.id),
            "apiKey": result.plaintext_key,
        }

    try:
        created = asyncio.run(run())
    except DomainError as error:
        _fail(error.message)
        return
    if as_json:
        sys.stdout.write(json.dumps(created) + "\n")
        return
    typer.echo(f"organization  {created['organizationId']}")
    typer.echo(f"member        {created['memberId']}")
    typer.echo(f"api key       {created['apiKey']}  (shown once; keep it)")


@app.command()
def demo(
    clients: Annotated[int, typer.Option(help="How many clients.")] = 300,
    messages: Annotated[int, typer.Option(help="How many messages.")] = 3000,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Create a realistic demo organization and print its API key."""
    settings = get_settings()
    _ensure_schema(settings)

    async def run() -> dict[str, object]:
        from mensajero.db import create_sessionmaker, create_unpooled_engine, transaction
        from mensajero.demo import create_demo_organization

        engine = create_unpooled_engine(settings.database_url)
        try:
            async with transaction(create_sessionmaker(engine)) as session:
                return await create_demo_organization(session, clients=clients, messages=messages)
        finally:
            await engine.dispose()

    created = asyncio.run(run())
    if as_json:
        sys.stdout.write(json.dumps(created) + "\n")
        return
    for key, value in created.items():
        typer.echo(f"{key:<16}{value}")


if __name__ == "__main__":
    app()
