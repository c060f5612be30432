"""The Alembic migrations build exactly the models' schema, on SQLite and on PostgreSQL.

PostgreSQL is required: when it can't be reached the PostgreSQL case fails
(it is never skipped). Its admin URL defaults to the local trust-auth server
and can be overridden with ``MENSAJERO_TEST_POSTGRES_ADMIN_URL``.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sqlite3
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, make_url, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from sqlmodel import SQLModel

import mensajero.models  # noqa: F401  (registers every table)
from mensajero.db import create_unpooled_engine
from mensajero.migrate import alembic_config, migrations_dir, upgrade_database_async

POSTGRES_ADMIN_URL = os.environ.get(
    "MENSAJERO_TEST_POSTGRES_ADMIN_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
VERSION_TABLE = "alembic_version"


@asynccontextmanager
async def scratch_postgres_database() -> AsyncIterator[str]:
    """Create an empty database for one test and drop it afterwards."""
    admin_url = make_url(POSTGRES_ADMIN_URL).set(drivername="postgresql+asyncpg")
    name = f"mensajero_mig_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(
        admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool, connect_args={"timeout": 10}
    )
    try:
        try:
            async with admin.connect() as conn:
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
        except Exception as exc:
            pytest.fail(
                f"PostgreSQL is required for the migration tests and is unreachable at "
                f"{admin_url.render_as_string(hide_password=True)}: {exc!r}"
            )
        try:
            yield admin_url.set(database=name).render_as_string(hide_password=False)
        finally:
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


@asynccontextmanager
async def scratch_database(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}"
    else:
        async with scratch_postgres_database() as url:
            yield url


def _diffs(connection: Connection) -> list[Any]:
    # Same comparison options as migrations/env.py. The version table is left
    # out by alembic itself. No difference needs ignoring today: UTCDateTime
    # compares as its impl (DateTime(timezone=True)), which SQLite reflects as
    # DATETIME and PostgreSQL as TIMESTAMP WITH TIME ZONE, both accepted by
    # compare_type; the JSON/JSONB variant is compared per dialect; long index
    # names are compared after PostgreSQL's 63-character truncation.
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return compare_metadata(context, SQLModel.metadata)


PartialIndexes = set[tuple[str, tuple[str, ...]]]


def _model_partial_indexes(dialect_name: str) -> PartialIndexes:
    return {
        (table.name, tuple(column.name for column in index.columns))
        for table in SQLModel.metadata.tables.values()
        for index in table.indexes
        if index.dialect_options[dialect_name].get("where") is not None
    }


def _reflect(connection: Connection) -> tuple[list[Any], set[str], list[str], PartialIndexes]:
    diffs = _diffs(connection)
    inspector = inspect(connection)
    tables = set(inspector.get_table_names())
    versions: list[str] = []
    if VERSION_TABLE in tables:
        versions = list(
            connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars()
        )
    tables.discard(VERSION_TABLE)
    # compare_metadata does not look at a partial index's WHERE clause, so a
    # migration that lost ``sqlite_where`` (or ``postgresql_where``) would pass
    # unnoticed: check that the same indexes are partial on both sides.
    where_key = f"{connection.dialect.name}_where"
    partial = {
        (table, tuple(index["column_names"]))
        for table in tables
        for index in inspector.get_indexes(table)
        if index.get("dialect_options", {}).get(where_key) is not None
    }
    return diffs, tables, versions, partial


async def _inspect(url: str) -> tuple[list[Any], set[str], list[str], PartialIndexes]:
    engine = create_unpooled_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_reflect)
    finally:
        await engine.dispose()


async def _downgrade(url: str, revision: str) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(url), revision)


def _head() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


# SQLite cannot reflect expression indexes (uq_tags_organization_id_lower_name), so
# autogenerate skips comparing them there; PostgreSQL compares them, and
# tests/services/test_client.py shows the index working on both backends.
@pytest.mark.filterwarnings("ignore:.*expression-based index:UserWarning")
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_upgrade_matches_models_and_downgrade_is_clean(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Run from elsewhere than the repo root: no alembic.ini is needed.
    monkeypatch.chdir(tmp_path)
    model_tables = set(SQLModel.metadata.tables)
    model_partial = _model_partial_indexes(backend)
    assert model_partial  # the models do declare partial indexes for this backend
    head = _head()

    async with scratch_database(backend, tmp_path) as url:
        await upgrade_database_async(url)
        diffs, tables, versions, partial = await _inspect(url)
        assert diffs == []
        assert tables == model_tables
        assert partial == model_partial
        assert versions == [head]

        if backend == "postgresql":
            engine = create_unpooled_engine(url)
            try:
                async with engine.connect() as conn:
                    extensions = set(
                        (await conn.execute(text("SELECT extname FROM pg_extension"))).scalars()
                    )
            finally:
                await engine.dispose()
            assert "pg_trgm" in extensions

        await _downgrade(url, "base")
        _, tables, versions, _ = await _inspect(url)
        assert tables == set()
        assert versions == []

        # And back up again from base.
        await upgrade_database_async(url)
        diffs, tables, versions, partial = await _inspect(url)
        assert diffs == []
        assert tables == model_tables
        assert partial == model_partial
        assert versions == [head]


def test_single_head_and_portable_revision_files() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    # Two engineers adding revisions in parallel leave two heads: merge them.
    assert len(script.get_heads()) == 1

    name_pattern = re.compile(r"^\d{8}_\d{4}_[0-9a-f]+_\w+\.py$")
    for path in (migrations_dir() / "versions").glob("*.py"):
        assert name_pattern.match(path.name), path.name
        source = path.read_text()
        # sqlmodel's AutoString must be rendered as sa.String (env.py's render_item).
        assert "sqlmodel" not in source, path.name


_BATCH_REVISION = """
import sqlalchemy as sa
from alembic import op

revision = "batchtest"
down_revision = {down!r}
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        "INSERT INTO organizations (id, created_at, updated_at, name, timezone, credit_balance,"
        " terms_version) VALUES ('00000000000000000000000000000001', '2026-01-01 00:00:00',"
        " '2026-01-01 00:00:00', 'org', 'UTC', 0, 'v1')"
    )
    op.execute(
        "INSERT INTO campaigns (id, created_at, updated_at, organization_id, name, description)"
        " VALUES ('00000000000000000000000000000002', '2026-01-01 00:00:00',"
        " '2026-01-01 00:00:00', '00000000000000000000000000000001', 'campaign', '')"
    )
    # SQLite recreates the parent table: CREATE new, copy, DROP old, rename.
    with op.batch_alter_table("organizations", recreate="always") as batch:
        batch.add_column(sa.Column("extra", sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table("organizations", recreate="always") as batch:
        batch.drop_column("extra")
"""


def test_sqlite_batch_recreate_keeps_child_rows(tmp_path: Path) -> None:
    """env.py runs SQLite migrations with foreign keys off.

    With them on (as db.py sets for the app), dropping the old parent table
    in a batch recreate fires ON DELETE CASCADE and empties its children.
    """
    scripts = tmp_path / "migrations"
    shutil.copytree(migrations_dir(), scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / "batchtest.py").write_text(_BATCH_REVISION.format(down=_head()))
    database = tmp_path / "batch.db"
    config = alembic_config(f"sqlite+aiosqlite:///{database}")
    config.set_main_option("script_location", str(scripts))

    command.upgrade(config, "head")

    with closing(sqlite3.connect(database)) as db:
        assert db.execute("SELECT count(*) FROM campaigns").fetchone() == (1,)
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
