"""A lean HTTP/1.1 client for provider calls: keep-alive pool, pre-built requests, llhttp.

Why not aiohttp: at thousands of sends a second, aiohttp's request machinery
(URL objects, header multidicts, tracing hooks, stream readers, timers per
read) cost ~0.19 ms of CPU per POST, more than everything else a dispatch
worker does for a message. Provider calls need far less: a POST to a handful of
fixed origins, a small body, a small answer. So:

- one :class:`asyncio.Protocol` per TCP (or TLS) connection, kept alive in a
  per-origin LIFO pool, ``max_connections`` open at most over all origins,
  closed after ``keepalive_seconds`` idle;
- the request's head is bytes prepared once per URL (request line, Host,
  User-Agent) and per credential (``Authorization``): a send joins a few byte
  strings and makes one ``write``;
- the answer is parsed by httptools (llhttp, the parser uvicorn uses), with
  Content-Length, chunked, or read-until-close bodies; ``Connection: close``
  and HTTP/1.0 answers close the connection after use.

Failure semantics match :class:`~mensajero.providers.http.PooledProviderClient`:
no connection (refused, DNS, connect timeout, no free pooled connection in
time) means the request never left (not ambiguous); a failure after the
request was written (timeout, reset, malformed answer) is ambiguous, because
the provider may have acted on it.

The one retry: a server may close an idle keep-alive connection just as we
reuse it. A pooled connection whose close we already saw is never used; if one
fails *before any byte of an answer* arrived, the request may still have reached
the server (HTTP/1.1 cannot tell), so it is sent again on a fresh connection
only when the caller says the call is idempotent (``idempotent=True``: the
provider deduplicates by an idempotency key). Otherwise it stays ambiguous.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
import zlib
from collections import deque
from collections.abc import Iterator, Mapping
from typing import Any, Self
from urllib.parse import urlsplit

import httptools
import orjson

CRLF = b"\r\n"


class ConnectFailed(Exception):
    """No connection could be made: the request never left."""


class ConnectTimeout(ConnectFailed, TimeoutError):
    """No connection (or no free pooled one) in time: the request never left."""


class ResponseFailed(Exception):
    """The request was written (or may have been) and no whole answer came back."""

    def __init__(self, message: str, *, before_answer: bool) -> None:
        super().__init__(message)
        # Nothing of an answer arrived: on a reused connection, likely the
        # server closed it as we wrote (the stale keep-alive race).
        self.before_answer = before_answer


class Headers(Mapping[str, str]):
    """Response headers, case-insensitive (last value wins, which providers never repeat)."""

    __slots__ = ("_items",)

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self._items = {
            name.decode("latin-1").lower(): value.decode("latin-1") for name, value in raw
        }

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        return self._items.get(name.lower(), default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


class LeanResponse:
    """The provider clients' response surface (status, headers, reason, JSON body)."""

    __slots__ = ("_headers", "_raw_headers", "content", "reason_phrase", "status_code")

    def __init__(
        self, status_code: int, reason: str, raw_headers: list[tuple[bytes, bytes]], content: bytes
    ) -> None:
        self.status_code = status_code
        self.reason_phrase = reason
        self.content = content
        self._raw_headers = raw_headers
        self._headers: Headers | None = None

    @property
    def headers(self) -> Headers:
        # Built on first use: a successful send never reads them.
        if self._headers is None:
            self._headers = Headers(self._raw_headers)
        return self._headers

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    def json(self) -> Any:
        return orjson.loads(self.content)  # orjson.JSONDecodeError is a ValueError


class _Origin:
    """Where connections go, and the idle ones kept for reuse."""

    __slots__ = ("host", "idle", "key", "port", "ssl")

    def __init__(self, key: tuple[str, str, int], ssl_context: ssl.SSLContext | None) -> None:
        self.key = key
        _scheme, self.host, self.port = key
        self.ssl = ssl_context
        self.idle: deque[_Connection] = deque()


class _Target:
    """A URL's prepared request head (request line, Host, User-Agent) and its origin."""

    __slots__ = ("head", "origin")

    def __init__(self, origin: _Origin, head: bytes) -> None:
        self.origin = origin
        self.head = head


class _Connection(asyncio.Protocol):
    """One keep-alive connection: at most one request in flight, answers parsed by llhttp."""

    def __init__(self, loop: asyncio.AbstractEventLoop, origin: _Origin) -> None:
        self.loop = loop
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.parser: Any = None
        self.waiter: asyncio.Future[LeanResponse] | None = None
        self.closed = False
        self.idle_since = 0.0
        self.uses = 0
        self._reset()

    def _reset(self) -> None:
        self.received = False
        self.status = 0
        self.reason = b""
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.headers_done = False
        self.message_done = False
        self.keep_alive = True
        self.delimited_by_close = False

    # --- asyncio.Protocol ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.waiter is None:
            # Bytes nobody asked for (a pooled connection): its state is unknown.
            self.close()
            return
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as e:
            self._fail(ResponseFailed(f"malformed answer: {e}", before_answer=False))
            self.close()

    def eof_received(self) -> bool:
        # Unusable from now on, though connection_lost comes a loop iteration later:
        # a request written in between would be lost unsent yet look ambiguous.
        self.closed = True
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        if self.headers_done and self.delimited_by_close:
            # A body without Content-Length or chunking ends when the server closes.
            self.message_done = True
            self.keep_alive = False
            waiter.set_result(self._response())
            return
        reason = f"connection closed ({exc})" if exc else "connection closed by the server"
        waiter.set_exception(ResponseFailed(reason, before_answer=not self.received))

    # --- httptools callbacks ---

    def on_status(self, status: bytes) -> None:
        self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self.raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        parser = self.parser
        self.status = parser.get_status_code()
        self.keep_alive = parser.should_keep_alive()
        self.headers_done = True
        if self.status >= 200 and not any(
            name.lower() in (b"content-length", b"transfer-encoding")
            for name, _ in self.raw_headers
        ):
            self.delimited_by_close = self.status not in (204, 304)

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.status < 200:
            # An interim answer (100 Continue): the real one follows.
            self.reason = b""
            self.raw_headers = []
            self.body = []
            self.headers_done = False
            return
        self.message_done = True
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(self._response())

    # --- use ---

    def _response(self) -> LeanResponse:
        content = b"".join(self.body)
        if content:
            content = _decode(content, self.raw_headers)
        return LeanResponse(self.status, self.reason.decode("latin-1"), self.raw_headers, content)

    def _fail(self, error: Exception) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)

    def _timeout(self) -> None:
        self._fail(TimeoutError("no answer in time"))

    async def request(self, data: bytes, deadline_seconds: float) -> LeanResponse:
        self._reset()
        self.parser = httptools.HttpResponseParser(self)
        waiter = self.waiter = self.loop.create_future()
        self.uses += 1
        self.transport.write(data)  # type: ignore[union-attr]
        # A timer handle, not asyncio.timeout(): no task or context manager per request.
        timer = self.loop.call_later(deadline_seconds, self._timeout)
        try:
            return await waiter
        finally:
            timer.cancel()
            self.waiter = None

    @property
    def reusable(self) -> bool:
        return self.message_done and self.keep_alive and not self.closed

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def _decode(content: bytes, raw_headers: list[tuple[bytes, bytes]]) -> bytes:
    """Undo gzip/deflate if a server compressed anyway (we ask for no encoding)."""
    for name, value in raw_headers:
        if name.lower() == b"content-encoding":
            encoding = value.strip().lower()
            if encoding in (b"gzip", b"x-gzip"):
                return zlib.decompress(content, 16 + zlib.MAX_WBITS)
            if encoding == b"deflate":
                try:
                    return zlib.decompress(content)
                except zlib.error:
                    return zlib.decompress(content, -zlib.MAX_WBITS)
    return content


# urlencode's quoting (quote_plus, nothing safe beyond RFC 3986's unreserved
# characters) as one str.translate over the UTF-8 bytes seen as Latin-1: the
# same output at a quarter of the CPU (urlencode was 6% of a dispatch worker).
_UNRESERVED = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~"
_FORM_QUOTE = [
    "+" if byte == 0x20 else chr(byte) if byte in _UNRESERVED else f"%{byte:02X}"
    for byte in range(256)
]


def _form_quote(value: str) -> str:
    if not value.isascii():
        value = value.encode("utf-8").decode("latin-1")
    return value.translate(_FORM_QUOTE)


def form_urlencode(data: Mapping[str, Any]) -> bytes:
    """``urllib.parse.urlencode(data).encode()`` for a flat mapping, faster."""
    return "&".join(
        f"{_form_quote(str(name))}={_form_quote(str(value))}" for name, value in data.items()
    ).encode("ascii")


def _header_bytes(name: str, value: str) -> bytes:
    if "\r" in value or "\n" in value or "\r" in name or "\n" in name or ":" in name:
        raise ValueError(f"invalid header {name!r}")
    return f"{name}: {value}\r\n".encode()


class LeanHTTPClient:
    """A keep-alive HTTP/1.1 client for POSTs to a few origins (module docstring).

    ``post`` raises :class:`ConnectFailed` (the request never left),
    :class:`ResponseFailed` or :class:`TimeoutError` (it may have); the
    provider-facing wrapper maps them to ``ProviderError``.
    """

    def __init__(
        self,
        *,
        max_connections: int = 100,
        connect_timeout: float = 5.0,
        timeout: float = 10.0,
        pool_timeout: float | None = None,
        keepalive_seconds: float = 30.0,
        user_agent: str = "mensajero",
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.max_connections = max(max_connections, 1)
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        # To get a connection, from the pool or new (connecting included).
        self.pool_timeout = timeout if pool_timeout is None else pool_timeout
        self.keepalive_seconds = keepalive_seconds
        self.user_agent = user_agent
        self._ssl_context = ssl_context
        self._origins: dict[tuple[str, str, int], _Origin] = {}
        self._targets: dict[str, _Target] = {}
        self._auth: dict[tuple[str, str], bytes] = {}
        self._open = 0  # connections open or opening, idle included
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closed = False

    # --- preparation (cached) ---

    def _target(self, url: str) -> _Target:
        target = self._targets.get(url)
        if target is not None:
            return target
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"unsupported URL {url!r}")
        port = parts.port or (443 if scheme == "https" else 80)
        key = (scheme, parts.hostname, port)
        origin = self._origins.get(key)
        if origin is None:
            context = None
            if scheme == "https":
                if self._ssl_context is None:
                    self._ssl_context = ssl.create_default_context()
                context = self._ssl_context
            origin = self._origins[key] = _Origin(key, context)
        host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        if parts.port is not None and parts.port != (443 if scheme == "https" else 80):
            host = f"{host}:{parts.port}"
        path = parts.path or "/"
        if parts.query:
            path = f"{path}?{parts.query}"
        if any(c in path for c in " \r\n"):
            raise ValueError(f"unsupported URL {url!r}")
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {self.user_agent}\r\n"
            "Accept-Encoding: identity\r\n"
        ).encode()
        if len(self._targets) > 1024:
            # URLs with ids in them (e.g. Evolution's instance) must not grow this forever.
            self._targets.clear()
        target = self._targets[url] = _Target(origin, head)
        return target

    def _authorization(self, auth: tuple[str, str]) -> bytes:
        line = self._auth.get(auth)
        if line is None:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
            line = self._auth[auth] = _header_bytes("Authorization", f"Basic {token}")
        return line

    # --- the pool ---

    async def _acquire(self, origin: _Origin, deadline: float) -> tuple[_Connection, bool]:
        """A connection to ``origin``: an idle one (reused: True) or a new one."""
        loop = asyncio.get_running_loop()
        while True:
            idle = origin.idle
            while idle:
                connection = idle.pop()  # the most recently used: least likely stale
                if connection.closed or connection.transport.is_closing():  # type: ignore[union-attr]
                    connection.close()
                    self._open -= 1
                    continue
                if loop.time() - connection.idle_since > self.keepalive_seconds:
                    # This one and every older one expired.
                    connection.close()
                    self._open -= 1
                    while idle:
                        idle.popleft().close()
                        self._open -= 1
                    break
                return connection, True
            if self._open < self.max_connections:
                self._open += 1
                try:
                    return await self._connect(origin, loop, deadline), False
                except BaseException:
                    self._open -= 1
                    self._wake()
                    raise
            if self._evict_other(origin):
                continue
            waiter = loop.create_future()
            self._waiters.append(waiter)
            try:
                async with asyncio.timeout_at(deadline):
                    await waiter
            except TimeoutError:
                raise ConnectTimeout("no free connection in the pool in time") from None
            finally:
                if not waiter.done():
                    waiter.cancel()
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)

    def _evict_other(self, origin: _Origin) -> bool:
        """Close an idle connection of another origin to make room; False if none."""
        for other in self._origins.values():
            if other is not origin and other.idle:
                other.idle.popleft().close()
                self._open -= 1
                return True
        return False

    async def _connect(
        self, origin: _Origin, loop: asyncio.AbstractEventLoop, deadline: float
    ) -> _Connection:
        connection = _Connection(loop, origin)
        try:
            async with asyncio.timeout(min(self.connect_timeout, max(deadline - loop.time(), 0))):
                await loop.create_connection(
                    lambda: connection,
                    origin.host,
                    origin.port,
                    ssl=origin.ssl,
                    server_hostname=origin.host if origin.ssl is not None else None,
                )
        except TimeoutError:
            connection.close()
            raise ConnectTimeout(
                f"could not connect to {origin.host}:{origin.port} in time"
            ) from None
        except (OSError, ssl.SSLError) as e:
            connection.close()
            raise ConnectFailed(f"could not connect to {origin.host}:{origin.port}: {e}") from e
        return connection

    def _release(self, connection: _Connection) -> None:
        if connection.reusable and not self._closed:
            connection.idle_since = connection.loop.time()
            connection.origin.idle.append(connection)
        else:
            connection.close()
            self._open -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    # --- requests ---

    async def post(
        self,
        url: str,
        *,
        body: bytes,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        idempotent: bool = False,
    ) -> LeanResponse:
        """POST ``body``; see the class docstring for what it raises."""
        if self._closed:
            raise RuntimeError("the client is closed")
        target = self._target(url)
        parts = [target.head]
        if auth is not None:
            parts.append(self._authorization(auth))
        if content_type is not None:
            parts.append(_header_bytes("Content-Type", content_type))
        if headers:
            for name, value in headers.items():
                parts.append(_header_bytes(name, value))
        parts.append(b"Content-Length: %d\r\n\r\n" % len(body))
        parts.append(body)
        data = b"".join(parts)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.pool_timeout
        connection, reused = await self._acquire(target.origin, deadline)
        try:
            return await connection.request(data, self.timeout)
        except ResponseFailed as e:
            if not (reused and e.before_answer and idempotent):
                raise
        finally:
            self._release(connection)
        # The stale keep-alive race on an idempotent call: once more, on a new connection.
        connection = await self._fresh(target.origin, loop, loop.time() + self.pool_timeout)
        try:
            return await connection.request(data, self.timeout)
        finally:
            self._release(connection)

    async def _fresh(
        self, origin: _Origin, loop: asyncio.AbstractEventLoop, deadline: float
    ) -> _Connection:
        # Idle connections of this origin may be as stale as the one that failed.
        while origin.idle:
            origin.idle.popleft().close()
            self._open -= 1
        return (await self._acquire(origin, deadline))[0]

    async def aclose(self) -> None:
        self._closed = True
        for origin in self._origins.values():
            while origin.idle:
                origin.idle.pop().close()
                self._open -= 1
        for waiter in self._waiters:
            if not waiter.done():
                waiter.cancel()
        self._waiters.clear()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
