"""What every resolver receives as ``info.context``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.websockets import WebSocket

from mensajero.events import commit_and_publish
from mensajero.services.auth import Principal
from mensajero.services.errors import Unauthenticated


@dataclass
class Context:
    request: Request | WebSocket
    sessionmaker: async_sessionmaker[AsyncSession]
    principal_or_none: Principal | None
    # Per-request DataLoaders, keyed by name, created on first use.
    loaders: dict[str, Any] = field(default_factory=dict)
    _session: AsyncSession | None = None
    # GraphQL resolves sibling fields concurrently, but an AsyncSession allows
    # one operation at a time: every use of the request's session takes turns.
    _session_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # A websocket's periodic check of its key (see MensajeroGraphQL.on_ws_connect).
    key_watch: asyncio.Task[None] | None = None

    @property
    def principal(self) -> Principal:
        if self.principal_or_none is None:
            raise Unauthenticated("missing or invalid API key")
        return self.principal_or_none

    def _get_session(self) -> AsyncSession:
        if self._session is None:
            self._session = self.sessionmaker()
        return self._session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """The request's session for reads, opened on first use and closed by the view."""
        async with self._session_lock:
            yield self._get_session()

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncSession]:
        """A mutation's transaction: committed when the block ends, rolled back on error.

        Status events the transaction produced are published, and the jobs it
        deferred enqueued, after the commit.
        """
        async with self._session_lock:
            session = self._get_session()
            try:
                yield session
            except BaseException:
                await session.rollback()
                raise
            else:
                await commit_and_publish(session, self.request.app.state.redis)

    async def end_event(self) -> None:
        """Between two events of a subscription: drop the session and the DataLoaders.

        A subscription lives for hours; holding a session would pin a pooled
        connection (idle in transaction) and DataLoaders would serve stale rows.
        """
        async with self._session_lock:
            await self.close()
            self.loaders.clear()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
