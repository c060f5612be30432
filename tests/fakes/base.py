"""What every fake provider server shares: recording, knobs, and ways to run it.

A fake is a small Starlette app speaking one provider's protocol. It runs

- in-process: ``fake.client()`` is an ``httpx.AsyncClient`` over ``ASGITransport``
  (or pass ``fake.transport()`` to your own client);
- as a real TCP server on a free port: ``with fake.run_in_thread() as base_url:``
  (a uvicorn server in a background thread of this process), or in another
  process: ``python -m tests.fakes twilio --port 0`` prints its base URL.

Knobs (methods, or ``POST /_fake/...`` when the fake runs in another process):
fixed latency, failing the next N requests or every request to a recipient
pattern with a status code, 429 with ``Retry-After``. What it accepted is in
``fake.messages`` (or ``GET /_fake/messages``), every request in ``fake.requests``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route


@dataclass
class FailureRule:
    """Answer ``status`` (with the provider's error body) instead of accepting."""

    status: int
    remaining: int | None = None  # None: every matching request
    recipient: re.Pattern[str] | None = None
    retry_after: str | None = None
    code: str | None = None
    message: str | None = None

    def matches(self, recipient: str | None) -> bool:
        if self.recipient is None:
            return True
        return recipient is not None and self.recipient.search(recipient) is not None


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float = field(default_factory=time.time)


class FakeProviderServer:
    """Base class: subclasses add their routes and render errors in their dialect."""

    name = "fake"

    def __init__(self, *, latency: float = 0.0) -> None:
        self.latency = latency
        self._lock = threading.Lock()
        self._messages: list[dict[str, Any]] = []
        self._requests: list[RecordedRequest] = []
        self._rules: list[FailureRule] = []
        self.app = Starlette(routes=[*self.routes(), *self._control_routes()])

    # --- to implement ---------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        raise NotImplementedError

    def error_response(
        self, status: int, *, code: str | None = None, message: str | None = None
    ) -> Response:
        raise NotImplementedError

    def reset_state(self) -> None:
        """Subclasses clear their own state (idempotency records...)."""

    # --- what it received -----------------------------------------------------------------

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Every message accepted, in order (a copy)."""
        with self._lock:
            return list(self._messages)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request to the provider API (accepted or not), in order (a copy)."""
        with self._lock:
            return list(self._requests)

    def record_message(self, message: dict[str, Any]) -> None:
        with self._lock:
            self._messages.append(message)

    async def record_request(self, request: Request, body: Any) -> None:
        with self._lock:
            self._requests.append(
                RecordedRequest(
                    method=request.method,
                    path=request.url.path,
                    headers={k.lower(): v for k, v in request.headers.items()},
                    body=body,
                )
            )

    # --- knobs ----------------------------------------------------------------------------

    def fail_next(
        self,
        count: int = 1,
        status: int = 500,
        *,
        code: str | None = None,
        message: str | None = None,
        retry_after: float | str | None = None,
    ) -> None:
        """The next ``count`` requests answer ``status``."""
        with self._lock:
            self._rules.append(
                FailureRule(
                    status=status,
                    remaining=count,
                    retry_after=None if retry_after is None else str(retry_after),
                    code=code,
                    message=message,
                )
            )

    def fail_recipients(
        self,
        pattern: str,
        status: int = 400,
        *,
        code: str | None = None,
        message: str | None = None,
        count: int | None = None,
    ) -> None:
        """Requests whose recipient matches ``pattern`` (a regex) answer ``status``."""
        with self._lock:
            self._rules.append(
                FailureRule(
                    status=status,
                    remaining=count,
                    recipient=re.compile(pattern),
                    code=code,
                    message=message,
                )
            )

    def rate_limit_next(self, count: int = 1, *, retry_after: float | str = 1) -> None:
        """The next ``count`` requests answer 429 with ``Retry-After``."""
        self.fail_next(count, 429, retry_after=retry_after)

    def reset(self) -> None:
        with self._lock:
            self._messages.clear()
            self._requests.clear()
            self._rules.clear()
        self.reset_state()

    def take_failure(self, recipient: str | None) -> FailureRule | None:
        """The failure rule this request triggers, consuming one use of it."""
        with self._lock:
            for rule in self._rules:
                if rule.remaining == 0 or not rule.matches(recipient):
                    continue
                if rule.remaining is not None:
                    rule.remaining -= 1
                return rule
        return None

    def failure_response(self, rule: FailureRule) -> Response:
        response = self.error_response(rule.status, code=rule.code, message=rule.message)
        if rule.retry_after is not None:
            response.headers["Retry-After"] = rule.retry_after
        return response

    async def simulate_latency(self) -> None:
        if self.latency > 0:
            await asyncio.sleep(self.latency)

    # --- control API (for a fake running in another process) -------------------------------

    def _control_routes(self) -> list[BaseRoute]:
        async def messages(_: Request) -> Response:
            return JSONResponse(self.messages)

        async def requests(_: Request) -> Response:
            return JSONResponse(
                [
                    {"method": r.method, "path": r.path, "headers": r.headers, "body": r.body}
                    for r in self.requests
                ]
            )

        async def reset(_: Request) -> Response:
            self.reset()
            return JSONResponse({"ok": True})

        async def fail(request: Request) -> Response:
            knobs = await request.json()
            if knobs.get("recipient"):
                self.fail_recipients(
                    knobs["recipient"],
                    int(knobs.get("status", 400)),
                    code=knobs.get("code"),
                    message=knobs.get("message"),
                    count=knobs.get("count"),
                )
            else:
                self.fail_next(
                    int(knobs.get("count", 1)),
                    int(knobs.get("status", 500)),
                    code=knobs.get("code"),
                    message=knobs.get("message"),
                    retry_after=knobs.get("retry_after"),
                )
            return JSONResponse({"ok": True})

        async def latency(request: Request) -> Response:
            self.latency = float((await request.json())["seconds"])
            return JSONResponse({"ok": True})

        return [
            Route("/_fake/messages", messages, methods=["GET"]),
            Route("/_fake/requests", requests, methods=["GET"]),
            Route("/_fake/reset", reset, methods=["POST"]),
            Route("/_fake/fail", fail, methods=["POST"]),
            Route("/_fake/latency", latency, methods=["POST"]),
        ]

    # --- running it -----------------------------------------------------------------------

    def transport(self) -> httpx.ASGITransport:
        return httpx.ASGITransport(app=self.app)

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` whose requests go to this fake in-process."""
        kwargs.setdefault("base_url", "http://fake")
        return httpx.AsyncClient(transport=self.transport(), **kwargs)

    @contextlib.contextmanager
    def run_in_thread(self, *, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
        """Serve on a real TCP port in a background thread; yields the base URL."""
        server = ThreadedServer(self.app, host=host, port=port)
        server.start()
        try:
            yield server.base_url
        finally:
            server.stop()


class ThreadedServer:
    """A uvicorn server on its own event loop in a daemon thread."""

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit this on Linux: without it every answer
        # on a keep-alive connection waits ~40 ms for the client's delayed ACK.
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._socket.bind((host, port))
        self.host, self.port = self._socket.getsockname()[:2]
        config = uvicorn.Config(
            app, log_level="warning", lifespan="off", access_log=False, timeout_keep_alive=30
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._server.serve(sockets=[self._socket])),
            name=f"fake-provider-{self.port}",
            daemon=True,
        )

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("fake provider server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()


def json_body_or_none(raw: bytes) -> Any:
    import json

    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None
