"""A fake Evolution API v2 ``sendText`` and builders for its webhooks.

``POST /message/sendText/{instance}`` with the ``apikey`` header and JSON
``{"number", "text"}``, answering like Evolution v2: 201 with the stored message
(``key.id`` the WhatsApp id, ``status`` ``PENDING``); errors as ``{"status",
"error", "response": {"message": ...}}``: 401 Unauthorized, 404 unknown instance,
400 for a missing property or a number not on WhatsApp (``[{"exists": false,
"jid", "number"}]``). Evolution has no idempotency key: repeats send again.
"""

from __future__ import annotations

import hmac
import re
import secrets
import time
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from tests.fakes.base import FakeProviderServer, json_body_or_none

_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def evolution_error(status: int, message: Any) -> JSONResponse:
    return JSONResponse(
        {
            "status": status,
            "error": _REASONS.get(status, "Error"),
            "response": {"message": message},
        },
        status_code=status,
    )


def new_message_id() -> str:
    """A WhatsApp message id as Baileys makes them (``3EB0`` + hex)."""
    return "3EB0" + secrets.token_hex(9).upper()


class FakeEvolution(FakeProviderServer):
    name = "evolution"

    def __init__(
        self,
        *,
        api_key: str = "evolution-test-key",
        instances: tuple[str, ...] = ("mensajero",),
        latency: float = 0.0,
    ) -> None:
        self.api_key = api_key
        self.instances = set(instances)
        self.instance_ids = {name: str(uuid.uuid4()) for name in instances}
        # Numbers (digits) that are not on WhatsApp.
        self.not_on_whatsapp: set[str] = set()
        super().__init__(latency=latency)

    def routes(self) -> list[BaseRoute]:
        return [Route("/message/sendText/{instance}", self.send_text, methods=["POST"])]

    def error_response(
        self, status: int, *, code: str | None = None, message: str | None = None
    ) -> Response:
        return evolution_error(status, [message or code or _REASONS.get(status, "Error")])

    def status_webhook(self, key_id: str, status: str, **kwargs: Any) -> dict[str, Any]:
        """The ``messages.update`` webhook Evolution would post about message ``key_id``."""
        for message in self.messages:
            if message["key"]["id"] == key_id:
                return messages_update(
                    key_id,
                    status,
                    remote_jid=message["key"]["remoteJid"],
                    instance=message["instance"],
                    **{"apikey": self.api_key, **kwargs},
                )
        raise KeyError(key_id)

    async def send_text(self, request: Request) -> Response:
        payload = json_body_or_none(await request.body())
        await self.record_request(request, payload)
        await self.simulate_latency()
        if not hmac.compare_digest(request.headers.get("apikey", ""), self.api_key):
            return evolution_error(401, "Unauthorized")
        instance = request.path_params["instance"]
        if instance not in self.instances:
            return evolution_error(404, [f'The "{instance}" instance does not exist'])
        if not isinstance(payload, dict):
            return evolution_error(400, ["instance is not of a type(s) object"])
        for required in ("number", "text"):
            if not payload.get(required):
                return evolution_error(400, [f'instance requires property "{required}"'])
        number = re.sub(r"\D", "", str(payload["number"]))
        rule = self.take_failure(number)
        if rule is not None:
            return self.failure_response(rule)
        jid = f"{number}@s.whatsapp.net"
        if not number or number in self.not_on_whatsapp:
            return evolution_error(400, [{"jid": jid, "exists": False, "number": number}])
        answer = {
            "key": {"remoteJid": jid, "fromMe": True, "id": new_message_id()},
            "pushName": "",
            "status": "PENDING",
            "message": {"conversation": payload["text"]},
            "contextInfo": None,
            "messageType": "conversation",
            "messageTimestamp": int(time.time()),
            "instanceId": self.instance_ids[instance],
            "source": "unknown",
        }
        self.record_message({**answer, "instance": instance, "number": number})
        return JSONResponse(answer, status_code=201)


# --- webhooks, as Evolution sends them ---------------------------------------------------------


def webhook(
    event: str,
    data: Any,
    *,
    apikey: str | None = "evolution-test-key",
    instance: str = "mensajero",
    sender: str = "573009876543@s.whatsapp.net",
    date_time: str = "2026-11-22T10:00:05.000Z",
) -> dict[str, Any]:
    """The envelope Evolution v2 posts (``event`` as it names it: ``messages.update``)."""
    return {
        "event": event,
        "instance": instance,
        "data": data,
        "destination": "http://127.0.0.1:8000/webhooks/evolution",
        "date_time": date_time,
        "sender": sender,
        "server_url": "http://localhost:8080",
        "apikey": apikey,
    }


def messages_update(
    key_id: str,
    status: str,
    *,
    remote_jid: str = "573001234567@s.whatsapp.net",
    from_me: bool = True,
    **kwargs: Any,
) -> dict[str, Any]:
    """A ``messages.update`` webhook about message ``key_id`` (v2 data shape)."""
    data = {
        "keyId": key_id,
        "remoteJid": remote_jid,
        "fromMe": from_me,
        "participant": None,
        "status": status,
        "instanceId": str(uuid.uuid4()),
        "messageId": "cm" + secrets.token_hex(11),
    }
    return webhook("messages.update", data, **kwargs)


def messages_upsert(
    sender_phone_digits: str,
    text: str,
    *,
    message_id: str | None = None,
    extended: bool = False,
    from_me: bool = False,
    push_name: str = "Juan Pérez",
    **kwargs: Any,
) -> dict[str, Any]:
    """A ``messages.upsert`` webhook: a message someone sent to our instance."""
    message = {"extendedTextMessage": {"text": text}} if extended else {"conversation": text}
    data = {
        "key": {
            "remoteJid": f"{sender_phone_digits}@s.whatsapp.net",
            "fromMe": from_me,
            "id": message_id or new_message_id(),
        },
        "pushName": push_name,
        "status": "DELIVERY_ACK",
        "message": message,
        "messageType": "extendedTextMessage" if extended else "conversation",
        "messageTimestamp": 1795341606,
        "instanceId": str(uuid.uuid4()),
        "source": "android",
    }
    return webhook("messages.upsert", data, **kwargs)
