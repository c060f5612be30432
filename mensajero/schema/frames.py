"""Writing a subscription fan-out's frames onto the websocket with the least work per frame.

Through ASGI every frame costs an ``await send({...})`` that runs Starlette's wrappers
and uvicorn's checks, from a writer task woken per frame. Under the server we ship
(uvicorn with its sans-I/O ``websockets`` implementation, see ``mensajero serve``) a
frame can instead be handed to the connection's ``websockets`` protocol object and
written to its transport synchronously, from the task that produced it: the same
framing (extensions included) and the same flow control (the transport's
pause/resume), without a task switch or a dict per frame.

Any other server, or uvicorn's other websocket implementations, get the ASGI path.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import InvalidState

# Where ServerSendMiddleware keeps the server's own ``send`` of a websocket.
SERVER_SEND_SCOPE_KEY = "mensajero.server_send"


class ServerSendMiddleware:
    """Keeps the ASGI server's ``send`` of each websocket in its scope.

    Starlette wraps ``send`` on the way to an endpoint; the subscription writer looks
    at the server's own to find out whether it may write frames directly.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            scope[SERVER_SEND_SCOPE_KEY] = send
        await self.app(scope, receive, send)


class DirectFrameWriter:
    """Text frames straight onto one uvicorn websockets-sansio connection."""

    __slots__ = ("_connection", "_protocol", "_transport", "_writable")

    def __init__(self, protocol: WebSocketsSansIOProtocol) -> None:
        self._protocol = protocol
        self._connection = protocol.conn
        self._transport = protocol.transport
        self._writable = protocol.writable

    @classmethod
    def for_scope(cls, scope: Scope) -> DirectFrameWriter | None:
        """A writer if the socket is served by uvicorn's websockets-sansio, else None."""
        send = scope.get(SERVER_SEND_SCOPE_KEY)
        protocol = getattr(send, "__self__", None)
        if not (
            isinstance(protocol, WebSocketsSansIOProtocol)
            and getattr(send, "__func__", None) is WebSocketsSansIOProtocol.send
        ):
            return None
        # The attributes this writer relies on: another uvicorn release may rename
        # them, in which case the socket simply takes the ASGI path.
        if not all(
            hasattr(protocol, name)
            for name in ("conn", "transport", "writable", "close_sent", "disconnected")
        ):
            return None
        return cls(protocol)

    @property
    def open(self) -> bool:
        """False once either side started closing or the connection is gone."""
        return not (self._protocol.close_sent or self._protocol.disconnected)

    @property
    def can_write_now(self) -> bool:
        """Open, and the transport's buffer is under its high-water mark."""
        return self._writable.is_set() and self.open

    async def wait_writable(self) -> bool:
        """Wait until the transport drains below its low-water mark; False if closed."""
        await self._writable.wait()
        return self.open

    def write(self, frames: list[bytes]) -> bool:
        """Frame each message and write them all in one call; False if the socket closed."""
        connection = self._connection
        try:
            for message in frames:
                connection.send_text(message)
        except InvalidState:  # the closing handshake started in between
            return False
        self._transport.write(b"".join(connection.data_to_send()))
        return True
