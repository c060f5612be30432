"""A fake Resend ``POST /emails`` and builders for Svix-signed webhook events.

Answers like Resend: 200 ``{"id": "<uuid>"}``; errors as ``{"statusCode", "name",
"message"}``: 401 ``missing_api_key``, 403 ``invalid_api_key``, 422
``missing_required_field`` / ``invalid_from_address`` / ``validation_error``, 429
``rate_limit_exceeded`` (with ``retry-after`` and ``ratelimit-*`` headers), 500
``internal_server_error``.

``Idempotency-Key`` behaves as Resend documents it: within 24 hours the same key
and payload return the original answer without sending again; the same key with
another payload is 409 ``invalid_idempotent_request``; while the first request
is still running, 409 ``concurrent_idempotent_requests``; a key longer than 256
characters is 400 ``invalid_idempotency_key``. Failed requests keep no record.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from tests.fakes.base import FakeProviderServer, json_body_or_none

EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
NAME_ADDR = re.compile(r"^\s*[^<>]*<(?P<addr>[^<>]+)>\s*$")
IDEMPOTENCY_TTL_SECONDS = 24 * 3600

_ERRORS: dict[int, tuple[str, str]] = {
    400: ("validation_error", "We found an error with one or more fields in the request."),
    401: ("missing_api_key", "Missing API key in the authorization header."),
    403: ("invalid_api_key", "API key is invalid"),
    409: ("concurrent_idempotent_requests", "Same idempotency key used while in progress."),
    422: ("validation_error", "Invalid `to` field."),
    429: ("rate_limit_exceeded", "Too many requests. Please limit the number of requests."),
    500: ("internal_server_error", "An unexpected error occurred."),
    503: ("application_error", "An unexpected error occurred."),
}


def resend_error(status: int, name: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"statusCode": status, "name": name, "message": message}, status_code=status
    )


def _address(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    match = NAME_ADDR.match(value)
    address = match.group("addr") if match else value.strip()
    return address if EMAIL.match(address) else None


class FakeResend(FakeProviderServer):
    name = "resend"

    def __init__(self, *, api_key: str = "re_test_key", latency: float = 0.0) -> None:
        self.api_key = api_key
        # key -> (payload fingerprint, stored answer, stored at)
        self._idempotent: dict[str, tuple[str, dict[str, Any], float]] = {}
        self._in_progress: set[str] = set()
        self._idem_lock = threading.Lock()
        super().__init__(latency=latency)

    def routes(self) -> list[BaseRoute]:
        return [Route("/emails", self.send_email, methods=["POST"])]

    def error_response(
        self, status: int, *, code: str | None = None, message: str | None = None
    ) -> Response:
        default_name, default_message = _ERRORS.get(status, ("application_error", "Error"))
        response = resend_error(status, code or default_name, message or default_message)
        if status == 429:
            response.headers["ratelimit-limit"] = "2"
            response.headers["ratelimit-remaining"] = "0"
            response.headers["ratelimit-reset"] = "1"
        return response

    def reset_state(self) -> None:
        with self._idem_lock:
            self._idempotent.clear()
            self._in_progress.clear()

    def message(self, email_id: str) -> dict[str, Any]:
        """The accepted email with this id."""
        for message in self.messages:
            if message["id"] == email_id:
                return message
        raise KeyError(email_id)

    def webhook_event(
        self, email_id: str, event_type: str, secret: str, *, msg_id: str | None = None, **data: Any
    ) -> tuple[bytes, dict[str, str]]:
        """(raw body, headers) of the event Resend would send about ``email_id``, signed.

        Carries the tags the client sent (so the attempt id comes back, as it does
        from Resend).
        """
        message = self.message(email_id)
        payload = event_payload(event_type, email_id, to=message["to"][0], **data)
        payload["data"]["tags"] = message.get("tags") or []
        return signed_event(payload, secret, msg_id=msg_id)

    async def send_email(self, request: Request) -> Response:
        raw = await request.body()
        payload = json_body_or_none(raw)
        await self.record_request(request, payload)
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            return resend_error(
                401,
                "missing_api_key",
                "Missing API key in the authorization header. Include the following header "
                "Authorization: Bearer YOUR_API_KEY in the request.",
            )
        if not hmac.compare_digest(auth[7:].strip(), self.api_key):
            return resend_error(403, "invalid_api_key", "API key is invalid")
        key = request.headers.get("idempotency-key")
        if key is not None and not 1 <= len(key) <= 256:
            return resend_error(
                400, "invalid_idempotency_key", "The key must be between 1-256 chars."
            )
        fingerprint = hashlib.sha256(raw).hexdigest()
        if key is not None:
            with self._idem_lock:
                stored = self._idempotent.get(key)
                if stored is not None and time.time() - stored[2] > IDEMPOTENCY_TTL_SECONDS:
                    del self._idempotent[key]
                    stored = None
                if stored is not None:
                    if stored[0] != fingerprint:
                        return resend_error(
                            409,
                            "invalid_idempotent_request",
                            "Same idempotency key used with a different request payload. "
                            "Change your idempotency key or payload.",
                        )
                    return JSONResponse(stored[1])
                if key in self._in_progress:
                    return resend_error(
                        409,
                        "concurrent_idempotent_requests",
                        "Same idempotency key used while original request is still in "
                        "progress. Try the request again later.",
                    )
                self._in_progress.add(key)
        try:
            response, answer = await self._process(payload)
            if answer is not None and key is not None:
                with self._idem_lock:
                    self._idempotent[key] = (fingerprint, answer, time.time())
            return response
        finally:
            if key is not None:
                with self._idem_lock:
                    self._in_progress.discard(key)

    async def _process(self, payload: Any) -> tuple[Response, dict[str, Any] | None]:
        await self.simulate_latency()
        if not isinstance(payload, dict):
            return resend_error(422, "validation_error", "Invalid JSON body."), None
        to = payload.get("to")
        recipients = to if isinstance(to, list) else [to] if to else []
        rule = self.take_failure(",".join(str(r) for r in recipients))
        if rule is not None:
            return self.failure_response(rule), None
        for required in ("from", "to", "subject"):
            if not payload.get(required) and payload.get(required) != "":
                return resend_error(
                    422, "missing_required_field", f"Missing `{required}` field."
                ), None
        if _address(payload["from"]) is None:
            return resend_error(
                422,
                "invalid_from_address",
                "Invalid `from` field. The email address needs to follow the "
                "`email@example.com` or `Name <email@example.com>` format.",
            ), None
        if not recipients or len(recipients) > 50:
            return resend_error(422, "validation_error", "Invalid `to` field."), None
        for recipient in recipients:
            if _address(recipient) is None:
                return resend_error(
                    422,
                    "validation_error",
                    "Invalid `to` field. The email address needs to follow the "
                    "`email@example.com` or `Name <email@example.com>` format.",
                ), None
        if not payload.get("html") and not payload.get("text") and not payload.get("react"):
            return resend_error(422, "validation_error", "Missing `html` or `text` field."), None
        answer = {"id": str(uuid.uuid4())}
        self.record_message(
            {
                "id": answer["id"],
                "from": payload["from"],
                "to": recipients,
                "subject": payload.get("subject"),
                "text": payload.get("text"),
                "html": payload.get("html"),
                "reply_to": payload.get("reply_to"),
                "tags": payload.get("tags"),
                "created_at": datetime.now(UTC).isoformat(),
            }
        )
        return JSONResponse(answer), answer


# --- webhook events, as Resend (through Svix) sends them ---------------------------------------


def svix_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256>`` per the Svix / Standard Webhooks spec."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(uuid.uuid4().bytes + uuid.uuid4().bytes).decode()


def signed_event(
    payload: dict[str, Any],
    secret: str,
    *,
    msg_id: str | None = None,
    timestamp: int | None = None,
) -> tuple[bytes, dict[str, str]]:
    """(raw body, headers) of a webhook delivery signed with ``secret``."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    msg_id = msg_id or f"msg_{uuid.uuid4().hex[:27]}"
    timestamp = int(time.time()) if timestamp is None else timestamp
    return body, {
        "svix-id": msg_id,
        "svix-timestamp": str(timestamp),
        "svix-signature": svix_signature(secret, msg_id, timestamp, body),
        "content-type": "application/json",
    }


def event_payload(
    event_type: str,
    email_id: str,
    *,
    to: str = "ana@example.com",
    attempt_id: str | None = None,
    created_at: str = "2026-11-22T10:00:05.000Z",
    **data: Any,
) -> dict[str, Any]:
    """A Resend webhook payload shaped as Resend's docs and SDKs describe it."""
    tags = [{"name": "attempt_id", "value": attempt_id}] if attempt_id else []
    return {
        "type": event_type,
        "created_at": created_at,
        "data": {
            "created_at": "2026-11-22T10:00:00.000Z",
            "email_id": email_id,
            "from": "Centro <no-reply@example.com>",
            "to": [to],
            "subject": "Recordatorio",
            "tags": tags,
            **data,
        },
    }
