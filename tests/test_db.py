"""Engines and sessions (mensajero/db.py)."""

from __future__ import annotations

from sqlalchemy import func, select, text

from mensajero.db import create_read_sessionmaker
from mensajero.models import Organization
from tests.conftest import Backend


async def test_read_sessions_run_each_statement_outside_any_transaction(backend: Backend) -> None:
    read_sessions = create_read_sessionmaker(backend.engine)
    async with backend.engine.connect() as writer:
        # On SQLite this BEGIN IMMEDIATE holds the write lock: a session that began a
        # transaction of its own would wait for it, then fail with "database is locked".
        await writer.begin()
        async with read_sessions() as session:
            organizations = await session.scalar(select(func.count()).select_from(Organization))
            if backend.name == "postgres":
                # Each statement its own transaction: two statements, two transaction ids.
                first = await session.scalar(text("SELECT txid_current()"))
                second = await session.scalar(text("SELECT txid_current()"))
                assert first != second
        await writer.rollback()

    assert organizations is not None
