"""A fake Twilio Messages API (2010-04-01) and builders for signed status callbacks.

``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` with basic auth and a form
body, answering like Twilio: 201 with the Message resource (``sid`` ``SM...``,
``status`` ``queued``, or ``accepted`` through a Messaging Service), 400 with
Twilio's ``{"code", "message", "more_info", "status"}`` for invalid requests
(21604 missing To, 21603 missing From, 21602 missing Body, 21211 invalid To,
21617 body too long), 401 (20003) for bad credentials, 429 (20429).

Idempotency: Twilio's Messages API does not document an idempotency key; the real
service would create a second message for a repeated request. So does this fake,
unless built with ``honour_idempotency_token=True``, which deduplicates on the
``I-Twilio-Idempotency-Token`` header our client sends: a simulation of a
Twilio-compatible provider that honours it, not of Twilio itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from tests.fakes.base import FakeProviderServer

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
MAX_BODY = 1600
IDEMPOTENCY_HEADER = "i-twilio-idempotency-token"

_ERRORS: dict[int, tuple[int, str]] = {
    400: (21211, "The 'To' number is not a valid phone number."),
    401: (20003, "Authenticate"),
    404: (20404, "The requested resource was not found"),
    429: (20429, "Too Many Requests"),
    500: (20500, "Internal Server Error"),
    503: (20503, "Service Unavailable"),
}


def twilio_error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status_code=status,
    )


def new_sid(prefix: str = "SM") -> str:
    return prefix + secrets.token_hex(16)


class FakeTwilio(FakeProviderServer):
    name = "twilio"

    def __init__(
        self,
        *,
        account_sid: str = "AC" + "0" * 32,
        auth_token: str = "test-auth-token",
        latency: float = 0.0,
        honour_idempotency_token: bool = False,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.honour_idempotency_token = honour_idempotency_token
        self._by_token: dict[str, dict[str, Any]] = {}
        self._token_lock = threading.Lock()
        super().__init__(latency=latency)

    def routes(self) -> list[BaseRoute]:
        return [Route("/2010-04-01/Accounts/{sid}/Messages.json", self.create, methods=["POST"])]

    def error_response(
        self, status: int, *, code: str | None = None, message: str | None = None
    ) -> Response:
        default_code, default_message = _ERRORS.get(status, (20500, "Error"))
        return twilio_error(status, int(code or default_code), message or default_message)

    def reset_state(self) -> None:
        with self._token_lock:
            self._by_token.clear()

    def _authorized(self, request: Request, sid: str) -> bool:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return (
            hmac.compare_digest(user, self.account_sid)
            and hmac.compare_digest(password, self.auth_token)
            and sid == self.account_sid
        )

    async def create(self, request: Request) -> Response:
        form = await request.form()
        params = {k: str(v) for k, v in form.items()}
        await self.record_request(request, params)
        await self.simulate_latency()
        sid = request.path_params["sid"]
        if not self._authorized(request, sid):
            return twilio_error(401, 20003, "Authenticate")
        to = params.get("To", "")
        rule = self.take_failure(to)
        if rule is not None:
            return self.failure_response(rule)
        if not to:
            return twilio_error(400, 21604, "A 'To' phone number is required.")
        if not params.get("From") and not params.get("MessagingServiceSid"):
            return twilio_error(400, 21603, "A 'From' phone number is required.")
        body = params.get("Body", "")
        if not body and not params.get("MediaUrl"):
            return twilio_error(400, 21602, "Message body is required.")
        if not E164.match(to):
            return twilio_error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if len(body) > MAX_BODY:
            return twilio_error(
                400, 21617, "The concatenated message body exceeds the 1600 character limit."
            )
        token = request.headers.get(IDEMPOTENCY_HEADER)
        if self.honour_idempotency_token and token:
            with self._token_lock:
                existing = self._by_token.get(token)
                if existing is not None:
                    return JSONResponse(existing, status_code=201)
                resource = self._resource(params)
                self._by_token[token] = resource
        else:
            resource = self._resource(params)
        self.record_message(
            {
                **resource,
                "status_callback": params.get("StatusCallback"),
                "idempotency_token": token,
            }
        )
        return JSONResponse(resource, status_code=201)

    def message(self, sid: str) -> dict[str, Any]:
        """The accepted message with this sid."""
        for message in self.messages:
            if message["sid"] == sid:
                return message
        raise KeyError(sid)

    def status_callback(
        self, sid: str, status: str, *, error_code: str | None = None, **extra: str
    ) -> tuple[str, dict[str, str], dict[str, str]]:
        """(url, form, headers) of the callback Twilio would post for message ``sid``.

        Signed with this fake's auth token for the StatusCallback URL the client gave.
        """
        message = self.message(sid)
        url = message["status_callback"]
        form, headers = signed_status_callback(
            url,
            self.auth_token,
            sid,
            status,
            account_sid=self.account_sid,
            to=message["to"],
            sender=message["from"] or "+15005550006",
            error_code=error_code,
            **extra,
        )
        return url, form, headers

    def _resource(self, params: dict[str, str]) -> dict[str, Any]:
        now = format_datetime(datetime.now(UTC), usegmt=True)
        sid = new_sid()
        via_service = bool(params.get("MessagingServiceSid"))
        body = params.get("Body", "")
        return {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": params.get("From") or None,
            "messaging_service_sid": params.get("MessagingServiceSid") or None,
            "num_media": "0",
            "num_segments": "0" if via_service else str(max(1, -(-len(body) // 153))),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "accepted" if via_service else "queued",
            "subresource_uris": {
                "media": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}/Media.json"
            },
            "to": params["To"],
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }


# --- status callbacks, as Twilio would send them -----------------------------------------------


def sign(url: str, params: dict[str, str], auth_token: str) -> str:
    """X-Twilio-Signature computed from Twilio's documented algorithm."""
    payload = url + "".join(k + params[k] for k in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def status_callback_params(
    message_sid: str,
    status: str,
    *,
    account_sid: str = "AC" + "0" * 32,
    to: str = "+573001234567",
    sender: str = "+15005550006",
    error_code: str | None = None,
    **extra: str,
) -> dict[str, str]:
    """The form Twilio posts to StatusCallback (same fields, same names)."""
    params = {
        "AccountSid": account_sid,
        "ApiVersion": "2010-04-01",
        "From": sender,
        "MessageSid": message_sid,
        "MessageStatus": status,
        "SmsSid": message_sid,
        "SmsStatus": status,
        "To": to,
    }
    if error_code:
        params["ErrorCode"] = error_code
    params.update(extra)
    return params


def signed_status_callback(
    url: str, auth_token: str, message_sid: str, status: str, **kwargs: Any
) -> tuple[dict[str, str], dict[str, str]]:
    """(form, headers) of a status callback signed for ``url``."""
    params = status_callback_params(message_sid, status, **kwargs)
    return params, {"X-Twilio-Signature": sign(url, params, auth_token)}


def inbound_sms_params(
    sender: str, body: str, *, to: str = "+15005550006", message_sid: str | None = None
) -> dict[str, str]:
    """The form Twilio posts to a number's messaging webhook for an incoming SMS."""
    sid = message_sid or new_sid()
    return {
        "ToCountry": "US",
        "ToState": "",
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "ToCity": "",
        "FromZip": "",
        "SmsSid": sid,
        "FromState": "",
        "SmsStatus": "received",
        "FromCity": "",
        "Body": body,
        "FromCountry": "CO",
        "To": to,
        "ToZip": "",
        "NumSegments": "1",
        "MessageSid": sid,
        "AccountSid": "AC" + "0" * 32,
        "From": sender,
        "ApiVersion": "2010-04-01",
    }
