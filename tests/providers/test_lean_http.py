"""The lean HTTP/1.1 client against scripted servers over real TCP (and TLS).

The provider protocol tests (Twilio, Resend, Evolution) already run through it
(``CLIENT_KINDS``); these cover what those fakes never do: chunked and
close-delimited bodies, ``Connection: close``, servers dropping keep-alive
connections, the pool's bound, malformed answers, TLS.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import pytest
import pytest_asyncio

from mensajero.providers.base import ProviderError
from mensajero.providers.http import LeanProviderClient, post
from mensajero.providers.lean_http import (
    ConnectFailed,
    ConnectTimeout,
    LeanHTTPClient,
    ResponseFailed,
    form_urlencode,
)
from mensajero.settings import Settings


@dataclass
class Request:
    connection: int  # which connection (0, 1, ...) it came on
    number: int  # its position on that connection
    head: str
    body: bytes


# An answer: bytes to write, then whether to close; None: close without answering.
Answer = tuple[bytes, bool] | None


def ok(body: bytes = b'{"ok": true}', *, extra: str = "", close: bool = False) -> Answer:
    head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    return head.encode() + body, close


@dataclass
class ScriptedServer:
    """Answers each request with ``script(request)``; records requests and connections."""

    script: Callable[[Request], Answer]
    requests: list[Request] = field(default_factory=list)
    connections: int = 0
    transports: list[asyncio.Transport] = field(default_factory=list)
    server: asyncio.Server | None = None
    port: int = 0

    def protocol(self) -> asyncio.Protocol:
        scripted = self

        class Connection(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport: asyncio.Transport = transport  # type: ignore[assignment]
                self.index = scripted.connections
                self.count = 0
                self.buffer = b""
                scripted.connections += 1
                scripted.transports.append(self.transport)

            def data_received(self, data: bytes) -> None:
                self.buffer += data
                while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
                    head = self.buffer[:end].decode("latin-1")
                    length = 0
                    for line in head.split("\r\n")[1:]:
                        name, _, value = line.partition(":")
                        if name.strip().lower() == "content-length":
                            length = int(value)
                    if len(self.buffer) < end + 4 + length:
                        return
                    body = self.buffer[end + 4 : end + 4 + length]
                    self.buffer = self.buffer[end + 4 + length :]
                    request = Request(self.index, self.count, head, body)
                    self.count += 1
                    scripted.requests.append(request)
                    answer = scripted.script(request)
                    if answer is None:
                        self.transport.close()
                        return
                    payload, close = answer
                    self.transport.write(payload)
                    if close:
                        self.transport.close()
                        return

        return Connection()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/send"


@pytest_asyncio.fixture
async def serve() -> AsyncIterator[Callable[..., asyncio.Future[ScriptedServer]]]:
    servers: list[ScriptedServer] = []

    async def start(
        script: Callable[[Request], Answer], *, ssl_context: ssl.SSLContext | None = None
    ) -> ScriptedServer:
        scripted = ScriptedServer(script)
        loop = asyncio.get_running_loop()
        scripted.server = await loop.create_server(
            scripted.protocol, "127.0.0.1", 0, ssl=ssl_context
        )
        scripted.port = scripted.server.sockets[0].getsockname()[1]
        servers.append(scripted)
        return scripted

    yield start  # type: ignore[misc]
    for scripted in servers:
        assert scripted.server is not None
        scripted.server.close()
        for transport in scripted.transports:
            transport.close()


async def test_keep_alive_reuses_one_connection(serve: Callable[..., object]) -> None:
    server: ScriptedServer = await serve(lambda request: ok())  # type: ignore[misc]
    async with LeanHTTPClient() as http:
        for _ in range(3):
            response = await http.post(server.url, body=b"a=1", content_type="text/plain")
            assert response.status_code == 200
            assert response.json() == {"ok": True}

    assert server.connections == 1
    assert [r.number for r in server.requests] == [0, 1, 2]


async def test_request_head_and_body(serve: Callable[..., object]) -> None:
    server: ScriptedServer = await serve(lambda request: ok())  # type: ignore[misc]
    async with LeanHTTPClient(user_agent="mensajero/test") as http:
        await http.post(
            server.url + "?x=1",
            body=b"To=%2B57&Body=hola",
            content_type="application/x-www-form-urlencoded",
            headers={"X-Key": "k1"},
            auth=("AC1", "secret"),
        )

    request = server.requests[0]
    lines = request.head.split("\r\n")
    assert lines[0] == "POST /api/send?x=1 HTTP/1.1"
    headers = {
        name.lower(): value.strip() for name, _, value in (h.partition(":") for h in lines[1:])
    }
    assert headers["host"] == f"127.0.0.1:{server.port}"
    assert headers["user-agent"] == "mensajero/test"
    assert headers["authorization"] == "Basic QUMxOnNlY3JldA=="  # base64("AC1:secret")
    assert headers["content-type"] == "application/x-www-form-urlencoded"
    assert headers["x-key"] == "k1"
    assert headers["content-length"] == str(len(request.body))
    assert request.body == b"To=%2B57&Body=hola"


async def test_header_injection_is_refused(serve: Callable[..., object]) -> None:
    server: ScriptedServer = await serve(lambda request: ok())  # type: ignore[misc]
    async with LeanHTTPClient() as http:
        with pytest.raises(ValueError):
            await http.post(server.url, body=b"", headers={"X-Key": "a\r\nX-Evil: 1"})
    assert server.requests == []


async def test_chunked_answer(serve: Callable[..., object]) -> None:
    answer = (
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nRetry-After: 3\r\n\r\n"
        b'5\r\n{"id"\r\n7\r\n: "e1"}\r\n0\r\n\r\n'
    )
    server: ScriptedServer = await serve(lambda request: (answer, False))  # type: ignore[misc]
    async with LeanHTTPClient() as http:
        first = await http.post(server.url, body=b"{}")
        second = await http.post(server.url, body=b"{}")

    assert first.status_code == 201
    assert first.reason_phrase == "Created"
    assert first.json() == {"id": "e1"}
    assert first.headers["retry-after"] == "3"
    assert first.headers.get("RETRY-AFTER") == "3"
    assert second.json() == {"id": "e1"}
    assert server.connections == 1


async def test_answer_delimited_by_close(serve: Callable[..., object]) -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n[1, 2]"
    server: ScriptedServer = await serve(lambda request: (answer, True))  # type: ignore[misc]
    async with LeanHTTPClient() as http:
        first = await http.post(server.url, body=b"")
        second = await http.post(server.url, body=b"")

    assert first.json() == [1, 2]
    assert second.json() == [1, 2]
    assert server.connections == 2


async def test_gzip_answer_is_decoded(serve: Callable[..., object]) -> None:
    body = gzip.compress(b'{"sid": "SM1"}')
    server: ScriptedServer = await serve(  # type: ignore[misc]
        lambda request: ok(body, extra="Content-Encoding: gzip\r\n")
    )
    async with LeanHTTPClient() as http:
        response = await http.post(server.url, body=b"")
    assert response.json() == {"sid": "SM1"}


@pytest.mark.parametrize("close_header", ["Connection: close\r\n", ""])
async def test_connection_close_answer_opens_a_new_connection(
    serve: Callable[..., object], close_header: str
) -> None:
    # With the header, the client must not reuse the connection even though
    # the server leaves it open; without it (and the server closing at once),
    # it must notice the close before the next request.
    server: ScriptedServer = await serve(  # type: ignore[misc]
        lambda request: ok(extra=close_header, close=not close_header)
    )
    async with LeanHTTPClient() as http:
        for _ in range(3):
            assert (await http.post(server.url, body=b"")).status_code == 200
            await asyncio.sleep(0.01)  # the server's FIN arrives

    assert server.connections == 3
    assert [r.number for r in server.requests] == [0, 0, 0]


async def test_http_1_0_answer_is_not_kept_alive(serve: Callable[..., object]) -> None:
    server: ScriptedServer = await serve(  # type: ignore[misc]
        lambda request: (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}", False)
    )
    async with LeanHTTPClient() as http:
        await http.post(server.url, body=b"")
        await http.post(server.url, body=b"")
    assert server.connections == 2


async def test_idle_connections_expire(serve: Callable[..., object]) -> None:
    server: ScriptedServer = await serve(lambda request: ok())  # type: ignore[misc]
    async with LeanHTTPClient(keepalive_seconds=0.0) as http:
        await http.post(server.url, body=b"")
        await asyncio.sleep(0.01)
        await http.post(server.url, body=b"")
    assert server.connections == 2


def _drop_second_request_on_a_connection(request: Request) -> Answer:
    """A server that dropped the keep-alive connection just as the client reused it."""
    if request.number == 1:
        return None
    return ok()


@pytest.mark.parametrize("kind", ["lean-client", "provider-client"])
async def test_dropped_keep_alive_is_ambiguous_without_idempotency(
    serve: Callable[..., object], kind: str
) -> None:
    server: ScriptedServer = await serve(_drop_second_request_on_a_connection)  # type: ignore[misc]
    if kind == "lean-client":
        async with LeanHTTPClient() as http:
            await http.post(server.url, body=b"")
            with pytest.raises(ResponseFailed) as caught:
                await http.post(server.url, body=b"")
        assert caught.value.before_answer is True
    else:
        async with LeanProviderClient(Settings()) as client:
            await post(client, "twilio", server.url, data={"To": "1"})
            with pytest.raises(ProviderError) as error:
                await post(client, "twilio", server.url, data={"To": "1"})
        assert error.value.ambiguous is True
        assert error.value.transient is True
        assert error.value.code == "connection_error"
    # Never sent again: the server may have acted on it.
    assert len(server.requests) == 2


async def test_dropped_keep_alive_is_resent_when_idempotent(
    serve: Callable[..., object],
) -> None:
    server: ScriptedServer = await serve(_drop_second_request_on_a_connection)  # type: ignore[misc]
    async with LeanProviderClient(Settings()) as client:
        await post(client, "resend", server.url, json={"a": 1}, idempotent=True)
        response = await post(client, "resend", server.url, json={"a": 1}, idempotent=True)

    assert response.status_code == 200
    assert [(r.connection, r.number) for r in server.requests] == [(0, 0), (0, 1), (1, 0)]
    assert server.requests[2].body == b'{"a":1}'


async def test_a_new_connection_dropped_is_not_resent_even_when_idempotent(
    serve: Callable[..., object],
) -> None:
    # Not the keep-alive race: the server got the request and gave up on it.
    server: ScriptedServer = await serve(lambda request: None)  # type: ignore[misc]
    async with LeanHTTPClient() as http:
        with pytest.raises(ResponseFailed):
            await http.post(server.url, body=b"", idempotent=True)
    assert len(server.requests) == 1


async def test_malformed_answer_is_ambiguous(serve: Callable[..., object]) -> None:
    server: ScriptedServer = await serve(  # type: ignore[misc]
        lambda request: (b"HTTP/1.1 2xx Nope\r\n\r\n", False)
    )
    async with LeanProviderClient(Settings()) as client:
        with pytest.raises(ProviderError) as caught:
            await post(client, "twilio", server.url, data={})
    assert caught.value.ambiguous is True
    assert caught.value.transient is True


async def test_the_pool_is_bounded(serve: Callable[..., object]) -> None:
    server: ScriptedServer = await serve(lambda request: ok())  # type: ignore[misc]
    async with LeanHTTPClient(max_connections=2) as http:
        results = await asyncio.gather(*(http.post(server.url, body=b"") for _ in range(20)))

    assert all(response.status_code == 200 for response in results)
    assert server.connections == 2
    assert len(server.requests) == 20


async def test_waiting_for_a_pooled_connection_times_out_unsent(
    serve: Callable[..., object],
) -> None:
    server: ScriptedServer = await serve(lambda request: (b"", False))  # type: ignore[misc]
    async with LeanHTTPClient(max_connections=1, timeout=2.0, pool_timeout=0.1) as http:
        # The first request holds the one connection (no answer comes).
        first = asyncio.create_task(http.post(server.url, body=b""))
        await asyncio.sleep(0.05)
        with pytest.raises(ConnectTimeout):
            await http.post(server.url, body=b"")
        first.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await first

    assert len(server.requests) == 1
    assert issubclass(ConnectTimeout, ConnectFailed)


async def test_pool_wait_timeout_maps_to_not_ambiguous(serve: Callable[..., object]) -> None:
    server: ScriptedServer = await serve(lambda request: (b"", False))  # type: ignore[misc]
    settings = Settings(provider_max_connections=1, provider_timeout_seconds=0.3)
    async with LeanProviderClient(settings) as client:
        # The second call waits for the pool less than the first waits for its
        # answer, so it gives up before the first frees the connection.
        client._http.pool_timeout = 0.1
        first = asyncio.create_task(post(client, "twilio", server.url, data={}))
        await asyncio.sleep(0.05)
        with pytest.raises(ProviderError) as waited:
            await post(client, "twilio", server.url, data={})
        with pytest.raises(ProviderError) as unanswered:
            await first

    assert waited.value.code == "timeout"
    assert waited.value.ambiguous is False
    assert unanswered.value.code == "timeout"
    assert unanswered.value.ambiguous is True


async def test_cancelled_request_does_not_leave_its_connection_in_the_pool(
    serve: Callable[..., object],
) -> None:
    server: ScriptedServer = await serve(  # type: ignore[misc]
        lambda request: (b"", False) if request.connection == 0 else ok()
    )
    async with LeanHTTPClient(max_connections=1) as http:
        task = asyncio.create_task(http.post(server.url, body=b""))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The connection with an answer still owed is closed, not reused.
        assert (await http.post(server.url, body=b"")).status_code == 200
    assert server.connections == 2


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a certificate")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_https(serve: Callable[..., object], tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    server: ScriptedServer = await serve(  # type: ignore[misc]
        lambda request: ok(), ssl_context=server_context
    )
    url = f"https://localhost:{server.port}/api/send"
    trusting = ssl.create_default_context(cafile=str(cert))
    async with LeanHTTPClient(ssl_context=trusting) as http:
        for _ in range(2):
            assert (await http.post(url, body=b"x=1")).json() == {"ok": True}
    assert server.connections == 1
    assert server.requests[0].body == b"x=1"

    # Without trusting the certificate, TLS fails before anything is sent.
    async with LeanHTTPClient() as http:
        with pytest.raises(ConnectFailed):
            await http.post(url, body=b"x=1")
    assert len(server.requests) == 2


@pytest.mark.parametrize(
    "data",
    [
        {"To": "+573001234567", "Body": "Hola, te recordamos tu cita de mañana 😀"},
        {"StatusCallback": "https://example.com/cb?attempt=0193-ab&x=1 2", "From": ""},
        {"ñ=&+": "a\r\nb\t~._-%", "k": "".join(chr(c) for c in range(1, 300))},
        {},
    ],
)
def test_form_urlencode_is_urlencode(data: dict[str, str]) -> None:
    assert form_urlencode(data) == urlencode(data).encode()
