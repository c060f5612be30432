"""A local webhook receiver that verifies Standard Webhooks signatures, and helpers to drive it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from standardwebhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

RECEIVER_URL = "http://receiver.test/hooks"


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    payload: Any  # what the verifier returned, or None when verification failed
    error: str | None


@dataclass
class Receiver:
    """An ASGI app at ``RECEIVER_URL`` answering ``statuses`` in turn (then 200).

    Every request is checked with ``standardwebhooks.Webhook(secret).verify``
    against the secret the test says the endpoint has now.
    """

    secret: str = ""
    statuses: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    on_request: Callable[[Received], None] | None = None

    def app(self) -> Starlette:
        async def hooks(request: Request) -> JSONResponse:
            body = await request.body()
            headers = dict(request.headers)
            try:
                payload = Webhook(self.secret).verify(body, headers)
                error = None
            except WebhookVerificationError as exc:
                payload, error = None, str(exc)
            self.received.append(Received(headers, body, payload, error))
            status = self.statuses.pop(0) if self.statuses else 200
            return JSONResponse({"ok": status < 300}, status_code=status)

        return Starlette(routes=[Route("/hooks", hooks, methods=["POST"])])

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app()))

    @property
    def verified(self) -> list[Any]:
        return [item.payload for item in self.received if item.error is None]
