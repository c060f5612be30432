"""Run the Alembic migrations from the application, whatever its working directory.

No ``alembic.ini`` is read: the Config is built here with ``script_location``
pointing at the migrations folder, found next to the package. In a source
checkout that is ``<repo>/migrations``; in a wheel it is ``mensajero/migrations``
(``force-include`` in pyproject.toml).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

_PACKAGE_DIR = Path(__file__).resolve().parent


def migrations_dir() -> Path:
    for candidate in (_PACKAGE_DIR / "migrations", _PACKAGE_DIR.parent / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise FileNotFoundError(f"no migrations folder (with env.py) next to {_PACKAGE_DIR}")


def alembic_config(database_url: str | None = None) -> Config:
    """An Alembic Config for our migrations; ``database_url`` overrides the settings'."""
    config = Config()
    # Main options go through ConfigParser interpolation: escape any "%".
    config.set_main_option("script_location", str(migrations_dir()).replace("%", "%%"))
    if database_url is not None:
        # Read by migrations/env.py. An attribute rather than ``sqlalchemy.url``,
        # so a percent-encoded password needs no escaping.
        config.attributes["database_url"] = database_url
    return config


def upgrade_database(database_url: str, revision: str = "head") -> None:
    """Upgrade the database to ``revision``.

    Blocking, and it runs its own event loop (env.py uses ``asyncio.run``), so
    it must not be called from a running loop: use
    :func:`upgrade_database_async` there.
    """
    command.upgrade(alembic_config(database_url), revision)


async def upgrade_database_async(database_url: str) -> None:
    """Upgrade the database to head from async code, in a worker thread."""
    await asyncio.to_thread(upgrade_database, database_url)
