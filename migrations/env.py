"""Alembic environment: async engines, both backends, stable rendering of custom types.

The database URL is taken, in order, from ``-x url=...`` on the command line,
from ``config.attributes["database_url"]`` (what :mod:`mensajero.migrate`
sets), from ``sqlalchemy.url`` in the ini file if one is set, and finally from
the application settings (``MENSAJERO_DATABASE_URL``).

A caller that already holds a connection may pass it as
``config.attributes["connection"]`` (a sync :class:`~sqlalchemy.engine.Connection`,
e.g. from ``AsyncConnection.run_sync``); migrations then run on it, inside
its transaction, and nothing is committed here. On SQLite such a connection
must have ``PRAGMA foreign_keys=OFF`` (see :func:`run_async_migrations`).
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig
from typing import Any

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import event, make_url
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

import mensajero.models  # noqa: F401  (registers every table on SQLModel.metadata)
from mensajero.db import create_unpooled_engine
from mensajero.models.base import UTCDateTime
from mensajero.settings import get_settings

config = context.config

if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = SQLModel.metadata


def get_database_url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        url = config.attributes.get("database_url")
    if not url:
        url = config.get_main_option("sqlalchemy.url")
    if not url:
        url = get_settings().database_url
    return url


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | bool:
    """Render our custom and sqlmodel's types as expressions a migration can import.

    Without this, alembic writes ``mensajero.models.base.UTCDateTime()`` without
    the import and ``sqlmodel.sql.sqltypes.AutoString(length=...)``, which ties
    the migration to a sqlmodel internal; AutoString is only ``VARCHAR(n)``.
    """
    if type_ == "type":
        if isinstance(obj, UTCDateTime):
            # The TypeDecorator (not a bare DateTime) so that data migrations
            # using op.bulk_insert store aware datetimes the way the app does.
            autogen_context.imports.add("import mensajero.models.base")
            return "mensajero.models.base.UTCDateTime()"
        if isinstance(obj, AutoString):
            return f"sa.String(length={obj.length!r})" if obj.length else "sa.String()"
    return False


def _configure_kwargs(dialect_name: str) -> dict[str, Any]:
    is_sqlite = dialect_name == "sqlite"
    return {
        "target_metadata": target_metadata,
        "compare_type": True,
        "compare_server_default": False,
        # SQLite can't ALTER most things: autogenerate emits batch blocks
        # (copy-and-move) there, plain ALTERs on PostgreSQL.
        "render_as_batch": is_sqlite,
        "render_item": render_item,
        # db.py's SQLite engine issues real BEGIN statements, so DDL there is
        # transactional: the whole upgrade commits or rolls back as one.
        "transactional_ddl": True if is_sqlite else None,
    }


def run_migrations_offline() -> None:
    """``alembic upgrade --sql``: print the SQL instead of running it."""
    url = get_database_url()
    context.configure(
        url=url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **_configure_kwargs(make_url(url).get_backend_name()),
    )
    with context.begin_transaction():
        context.run_migrations()


def _check_sqlite_foreign_keys(connection: Connection) -> None:
    rows = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if rows:
        raise RuntimeError(f"migration left foreign key violations: {rows[:10]}")


def do_run_migrations(connection: Connection) -> None:
    dialect_name = connection.dialect.name
    kwargs = _configure_kwargs(dialect_name)
    if kwargs["transactional_ddl"] is None:
        del kwargs["transactional_ddl"]
    context.configure(connection=connection, **kwargs)
    with context.begin_transaction():
        context.run_migrations()
        if dialect_name == "sqlite":
            _check_sqlite_foreign_keys(connection)


async def run_async_migrations(url: str) -> None:
    engine = create_unpooled_engine(url)
    if engine.dialect.name == "sqlite":
        # db.py turns foreign keys on for every connection. Batch operations
        # recreate tables (CREATE new, copy, DROP old, rename); with foreign
        # keys on, dropping a parent table runs its ON DELETE CASCADE actions
        # and silently empties the children. The pragma is ignored inside a
        # transaction, so it is turned off right after connecting (this
        # listener runs after db.py's) and integrity is checked at the end.
        @event.listens_for(engine.sync_engine, "connect")
        def _foreign_keys_off(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=OFF")
            cursor.close()

    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
        return
    asyncio.run(run_async_migrations(get_database_url()))


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
