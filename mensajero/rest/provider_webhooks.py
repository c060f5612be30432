"""Provider webhooks in: verify the signature, parse, apply through one service.

* ``POST /webhooks/twilio/status``: Twilio status callbacks (``X-Twilio-Signature``).
* ``POST /webhooks/twilio/inbound``: incoming SMS (same signature).
* ``POST /webhooks/resend``: Resend events (Svix signature headers).
* ``POST /webhooks/evolution``: Evolution ``MESSAGES_UPDATE``/``MESSAGES_UPSERT``
  (its ``apikey``, header or body).

A bad signature answers 401 ``{"error": "invalid signature"}`` and changes
nothing. Events about attempts we do not know are acknowledged (200) and
logged: answering an error would only make the provider retry forever.

Twilio signs the full URL it called. Behind proxies the URL this process sees
is not that one, so it is rebuilt from ``settings.public_base_url`` (the
public origin configured for callbacks) plus the request's path and query; the
status route uses ``settings.twilio_status_callback_url`` instead when that is
set, since that is the URL Twilio was given.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from mensajero.db import transaction
from mensajero.models import utcnow
from mensajero.providers.base import InvalidSignature
from mensajero.providers.email.resend import parse_resend_event, verify_resend_signature
from mensajero.providers.sms.twilio import (
    SIGNATURE_HEADER,
    parse_twilio_inbound,
    parse_twilio_status_callback,
    verify_twilio_signature,
)
from mensajero.providers.whatsapp.evolution import (
    evolution_webhook_key,
    parse_evolution_webhook,
    verify_evolution_api_key,
)
from mensajero.services import delivery as delivery_service
from mensajero.services import inbound as inbound_service
from mensajero.settings import Settings

logger = logging.getLogger(__name__)

_EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def _invalid_signature() -> JSONResponse:
    return JSONResponse({"error": "invalid signature"}, status_code=401)


def _ok(applied: bool) -> JSONResponse:
    return JSONResponse({"received": True, "applied": applied})


def public_url(settings: Settings, request: Request, *, configured: str = "") -> str:
    """The URL the provider called, as it signed it (see the module docstring)."""
    if configured:
        parts = urlsplit(configured)
        base = urlunsplit(parts._replace(query="", fragment=""))
    else:
        base = settings.public_base_url.rstrip("/") + request.url.path
    query = request.url.query
    return f"{base}?{query}" if query else base


async def twilio_status(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    form = await request.form()
    url = public_url(settings, request, configured=settings.twilio_status_callback_url)
    if not verify_twilio_signature(
        url,
        form,
        request.headers.get(SIGNATURE_HEADER),
        settings.twilio_auth_token.get_secret_value(),
    ):
        return _invalid_signature()
    event = parse_twilio_status_callback(form, url=url, received_at=utcnow())
    if event is None:
        return _ok(False)
    async with transaction(request.app.state.sessionmaker, redis=request.app.state.redis) as s:
        outcome = await delivery_service.apply_provider_event(s, event=event)
    return _ok(outcome is not None and outcome.applied)


async def twilio_inbound(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    form = await request.form()
    if not verify_twilio_signature(
        public_url(settings, request),
        form,
        request.headers.get(SIGNATURE_HEADER),
        settings.twilio_auth_token.get_secret_value(),
    ):
        return _invalid_signature()
    reply = parse_twilio_inbound(form, received_at=utcnow())
    if reply is not None:
        async with transaction(
            request.app.state.sessionmaker, redis=request.app.state.redis
        ) as session:
            await inbound_service.record_inbound_reply(session, reply=reply)
    # Twilio expects TwiML from a messaging webhook: an empty response sends nothing back.
    return Response(_EMPTY_TWIML, media_type="text/xml")


async def resend(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    body = await request.body()
    try:
        verify_resend_signature(
            body, request.headers, settings.resend_webhook_secret.get_secret_value()
        )
    except InvalidSignature:
        return _invalid_signature()
    payload = _json_object(body)
    if payload is None:
        return JSONResponse({"error": "invalid payload"}, status_code=400)
    event = parse_resend_event(
        payload,
        svix_id=request.headers.get("svix-id") or request.headers.get("webhook-id"),
        received_at=utcnow(),
    )
    if event is None:
        return _ok(False)
    async with transaction(request.app.state.sessionmaker, redis=request.app.state.redis) as s:
        outcome = await delivery_service.apply_provider_event(s, event=event)
    return _ok(outcome is not None and outcome.applied)


async def evolution(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    payload = _json_object(await request.body())
    if payload is None:
        # Without a body there is no key to check either.
        return _invalid_signature()
    try:
        verify_evolution_api_key(payload, request.headers, evolution_webhook_key(settings))
    except InvalidSignature:
        return _invalid_signature()
    items = parse_evolution_webhook(payload, received_at=utcnow())
    if not items:
        return _ok(False)
    async with transaction(request.app.state.sessionmaker, redis=request.app.state.redis) as s:
        applied = await inbound_service.apply_webhook_items(s, items=items)
    return _ok(applied > 0)


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return payload if isinstance(payload, dict) else None


def provider_webhook_routes() -> list[BaseRoute]:
    return [
        Route("/webhooks/twilio/status", twilio_status, methods=["POST"]),
        Route("/webhooks/twilio/inbound", twilio_inbound, methods=["POST"]),
        Route("/webhooks/resend", resend, methods=["POST"]),
        Route("/webhooks/evolution", evolution, methods=["POST"]),
    ]
