"""A real server on a real port, for tests that need real websockets and real commits."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect

from mensajero.app import create_app
from mensajero.settings import Settings

TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"


@dataclass
class LiveServer:
    app: Starlette
    port: int

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@asynccontextmanager
async def live_server(settings: Settings) -> AsyncIterator[LiveServer]:
    """The real app (lifespan included) under uvicorn on a free port of 127.0.0.1."""
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        ws="websockets-sansio",
        lifespan="on",
        log_level="warning",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()  # raises the startup error
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield LiveServer(app, port)
    finally:
        server.should_exit = True
        await task


class GraphQLWebSocket:
    """A minimal graphql-transport-ws client over ``websockets``."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection

    async def send(self, message: Mapping[str, Any]) -> None:
        await self.connection.send(json.dumps(message))

    async def receive(self, within: float = 10.0) -> dict[str, Any]:
        return json.loads(await asyncio.wait_for(self.connection.recv(), within))

    async def init(self, payload: Mapping[str, Any] | None) -> dict[str, Any]:
        await self.send({"type": "connection_init", "payload": dict(payload or {})})
        return await self.receive()

    async def subscribe(
        self, operation_id: str, query: str, variables: Mapping[str, Any] | None = None
    ) -> None:
        await self.send(
            {
                "id": operation_id,
                "type": "subscribe",
                "payload": {"query": query, "variables": dict(variables or {})},
            }
        )

    async def next_data(self, within: float = 10.0) -> tuple[str, dict[str, Any]]:
        """The next ``next`` message's (id, data); fails on anything else."""
        message = await self.receive(within)
        assert message["type"] == "next", message
        assert "errors" not in message["payload"], message
        return message["id"], message["payload"]["data"]


@asynccontextmanager
async def graphql_ws(
    server: LiveServer,
    *,
    subprotocol: str = TRANSPORT_WS,
    key: str | None = None,
    header: str = "Authorization",
    **connect_options: Any,
) -> AsyncIterator[GraphQLWebSocket]:
    """Open a websocket; with ``key``, send connection_init and expect the ack."""
    async with connect(
        server.ws_url,
        subprotocols=[subprotocol],
        **connect_options,  # type: ignore[list-item]
    ) as connection:
        client = GraphQLWebSocket(connection)
        if key is not None:
            value = f"Bearer {key}" if header.lower() == "authorization" else key
            ack = await client.init({header: value})
            assert ack["type"] == "connection_ack", ack
        yield client


def small_buffer_socket(server: LiveServer, receive_buffer: int = 16_384) -> socket.socket:
    """A connected TCP socket with a small, fixed receive buffer (no autotuning).

    With it a client that stops reading stalls the server's writes after kilobytes,
    not after the tens of megabytes loopback autotuning would otherwise absorb.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.connect(("127.0.0.1", server.port))
    sock.setblocking(False)
    return sock


async def wait_until(predicate: Any, within: float = 10.0) -> None:
    """Poll ``predicate()`` until it is true (for state another task reaches)."""
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)
