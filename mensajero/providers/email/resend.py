"""Email through Resend, and Resend's webhook events.

Send: ``POST {base}/emails`` with ``Authorization: Bearer``. Resend honours an
``Idempotency-Key`` header for 24 hours (same key and payload: the original answer,
no second email; same key, other payload: 409 ``invalid_idempotent_request``), so
the attempt id as key makes retries, even after an ambiguous timeout, deliver once.

Webhooks are signed by Svix, which is the Standard Webhooks scheme with ``svix-``
header names: HMAC-SHA256 over ``{id}.{timestamp}.{body}`` keyed with the base64
secret after ``whsec_``, one or more ``v1,<base64>`` signatures, and a timestamp
within five minutes. The ``standardwebhooks`` package verifies exactly that.
"""

from __future__ import annotations

import binascii
import hashlib
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from mensajero.models import Channel, MessageStatus, TimelineEventType
from mensajero.providers.base import (
    InvalidSignature,
    OutboundMessage,
    ProviderAccepted,
    ProviderError,
    ProviderEvent,
)
from mensajero.providers.http import (
    ProviderHTTP,
    first,
    http_error,
    post,
    response_json,
)
from mensajero.settings import Settings

PROVIDER = "resend"
ATTEMPT_TAG = "attempt_id"
ORGANIZATION_TAG = "organization_id"

# Resend error names worth retrying whatever their status says.
_TRANSIENT_ERROR_NAMES = frozenset(
    {
        "rate_limit_exceeded",
        "daily_quota_exceeded",  # the quota resets within a day
        "concurrent_idempotent_requests",  # the first request is still running
        "application_error",
        "internal_server_error",
    }
)
# A 429 that will not clear by waiting minutes: fail the attempt (and refund it).
_PERMANENT_ERROR_NAMES = frozenset({"monthly_quota_exceeded"})
# Without a Retry-After, wait this long before retrying a daily quota error.
_DAILY_QUOTA_RETRY_SECONDS = 3600.0

_NAME_ADDR = re.compile(r"^\s*(?P<name>.*?)\s*<(?P<addr>[^<>]+)>\s*$")
# Tag values: ASCII letters, numbers, underscores or dashes (Resend's rule).
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


class ResendEmailProvider:
    """Sends email through Resend's ``POST /emails``."""

    name = PROVIDER
    channel = Channel.EMAIL
    idempotent = True

    def __init__(self, settings: Settings, http: ProviderHTTP) -> None:
        self._http = http
        self._api_key = settings.resend_api_key.get_secret_value()
        self._default_from = settings.resend_from_email
        self._emails_url = f"{settings.resend_base_url.rstrip('/')}/emails"

    def _sender(self, message: OutboundMessage) -> str:
        address = message.from_address or self._default_from
        if _NAME_ADDR.match(address) or not message.from_name:
            return address
        # Quote names with characters that would otherwise break the header.
        name = message.from_name.replace("\\", "\\\\").replace('"', '\\"')
        if re.search(r'[,;:<>@()\[\]"\\.]', message.from_name):
            name = f'"{name}"'
        return f"{name} <{address}>"

    def payload(self, message: OutboundMessage) -> dict[str, Any]:
        body: dict[str, Any] = {
            "from": self._sender(message),
            "to": [message.recipient],
            "subject": message.subject or "",
            "text": message.body,
            "tags": [
                {"name": ATTEMPT_TAG, "value": str(message.attempt_id)},
                {"name": ORGANIZATION_TAG, "value": str(message.organization_id)},
            ],
        }
        if message.html:
            body["html"] = message.html
        if message.reply_to:
            body["reply_to"] = message.reply_to
        return body

    async def send(self, message: OutboundMessage) -> ProviderAccepted:
        response = await post(
            self._http,
            PROVIDER,
            self._emails_url,
            json=self.payload(message),
            headers={
                "Authorization": f"Bearer {self._api_key}",
                "Idempotency-Key": str(message.attempt_id),
            },
            # Resend deduplicates by the key: safe to resend after a dropped keep-alive.
            idempotent=True,
        )
        body = response_json(response)
        if response.is_success:
            email_id = body.get("id")
            if not email_id:
                raise ProviderError(
                    "invalid_response",
                    "Resend accepted the email without an id",
                    transient=False,
                    provider=PROVIDER,
                    status_code=response.status_code,
                    # It may have been sent: never resend it blindly.
                    ambiguous=True,
                )
            return ProviderAccepted(
                provider=PROVIDER, external_id=str(email_id), status=MessageStatus.SENT, raw=body
            )
        name = first(body, "name")
        transient: bool | None = None
        if name in _TRANSIENT_ERROR_NAMES:
            transient = True
        elif name in _PERMANENT_ERROR_NAMES:
            transient = False
        error = http_error(
            PROVIDER, response, code=name, message=first(body, "message"), transient=transient
        )
        if name == "daily_quota_exceeded" and error.retry_after is None:
            error.retry_after = _DAILY_QUOTA_RETRY_SECONDS
        raise error


# --- webhooks --------------------------------------------------------------------------------


def verify_resend_signature(body: bytes | str, headers: Mapping[str, str], secret: str) -> None:
    """Verify a Svix-signed Resend webhook or raise :class:`InvalidSignature`.

    ``headers`` needs ``svix-id``, ``svix-timestamp`` and ``svix-signature`` (the
    ``webhook-*`` names of Standard Webhooks are accepted too); ``body`` must be
    the raw bytes received, before any JSON parsing.
    """
    if not secret:
        raise InvalidSignature("no webhook secret configured")
    lowered = {k.lower(): v for k, v in headers.items()}
    normalized = {
        f"webhook-{part}": lowered.get(f"svix-{part}") or lowered.get(f"webhook-{part}") or ""
        for part in ("id", "timestamp", "signature")
    }
    try:
        Webhook(secret).verify(body, normalized, json_parse=False)
    except (WebhookVerificationError, ValueError, binascii.Error, UnicodeDecodeError) as e:
        raise InvalidSignature(str(e) or "invalid signature") from e
    except Exception as e:  # a malformed secret: reject rather than crash the route
        raise InvalidSignature(f"cannot verify: {type(e).__name__}") from e


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    # Resend writes "2024-02-22 23:41:12.126+00" in some events: make it ISO.
    text = re.sub(r"([+-]\d{2})$", r"\1:00", text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _tags(data: Mapping[str, Any]) -> dict[str, str]:
    """Tags as a dict: Resend sends them as a list of {name, value} or as a dict."""
    raw = data.get("tags")
    if isinstance(raw, Mapping):
        return {str(k): str(v) for k, v in raw.items()}
    if isinstance(raw, list):
        return {
            str(tag["name"]): str(tag.get("value", ""))
            for tag in raw
            if isinstance(tag, Mapping) and "name" in tag
        }
    return {}


def _uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None


def _dedup_key(svix_id: str | None, event_type: str, email_id: str, created_at: Any) -> str:
    if svix_id:
        return f"resend:{svix_id}"[:200]
    # Without the delivery id, the event's own identity: type, email and time.
    digest = hashlib.sha256(f"{event_type}|{email_id}|{created_at}".encode()).hexdigest()[:32]
    return f"resend:{event_type}:{digest}"


def parse_resend_event(
    payload: Mapping[str, Any],
    *,
    svix_id: str | None = None,
    received_at: datetime | None = None,
) -> ProviderEvent | None:
    """A Resend webhook as a :class:`ProviderEvent`; ``None`` for events we ignore.

    Delivery events move the status (sent, delivered, bounced, failed,
    suppressed); delivery_delayed, complained, opened and clicked are recorded
    on the timeline without changing it. Unknown types (contact.*, domain.*,
    email.received, ...) are ignored.
    """
    event_type = str(payload.get("type") or "")
    data = payload.get("data")
    if not isinstance(data, Mapping):
        return None
    email_id = first(data, "email_id", "id")
    if not email_id:
        return None
    occurred_at = (
        _parse_time(payload.get("created_at"))
        or _parse_time(data.get("created_at"))
        or received_at
        or datetime.now(UTC)
    )
    tags = _tags(data)
    metadata: dict[str, Any] = {"type": event_type}
    if tags:
        metadata["tags"] = tags
    error_code: str | None = None
    error_message: str | None = None
    status: MessageStatus | None
    match event_type:
        case "email.sent":
            event, status = TimelineEventType.SENT, MessageStatus.SENT
        case "email.delivered":
            event, status = TimelineEventType.DELIVERED, MessageStatus.DELIVERED
        case "email.delivery_delayed":
            # A soft failure the receiving server may still clear: no status change.
            event, status = TimelineEventType.SENDING, None
            metadata["deliveryDelayed"] = True
        case "email.bounced":
            bounce = data.get("bounce") if isinstance(data.get("bounce"), Mapping) else {}
            bounce_type = str(bounce.get("type") or "Permanent")
            hard = bounce_type.lower() in ("permanent", "hard")
            event, status = TimelineEventType.BOUNCED, MessageStatus.BOUNCED
            error_code = "bounce_hard" if hard else "bounce_soft"
            error_message = str(bounce.get("message") or f"{bounce_type} bounce")
            metadata["bounceType"] = "hard" if hard else "soft"
            if bounce.get("subType"):
                metadata["bounceSubType"] = bounce["subType"]
            if bounce.get("diagnosticCode"):
                metadata["diagnosticCode"] = bounce["diagnosticCode"]
        case "email.failed":
            failed = data.get("failed") if isinstance(data.get("failed"), Mapping) else {}
            event, status = TimelineEventType.FAILED, MessageStatus.FAILED
            error_code = str(failed.get("reason") or "failed")
            error_message = str(failed.get("message") or failed.get("reason") or "Send failed")
        case "email.suppressed":
            suppressed = (
                data.get("suppressed") if isinstance(data.get("suppressed"), Mapping) else {}
            )
            # Resend refused to send to an address on its suppression list.
            event, status = TimelineEventType.FAILED, MessageStatus.FAILED
            error_code = "suppressed"
            error_message = str(suppressed.get("message") or "Recipient is suppressed")
            if suppressed.get("type"):
                metadata["suppressionType"] = suppressed["type"]
        case "email.complained":
            event, status = TimelineEventType.COMPLAINED, None
            metadata["complained"] = True
        case "email.opened":
            event, status = TimelineEventType.OPENED, None
            metadata.update(_engagement(data.get("open")))
        case "email.clicked":
            event, status = TimelineEventType.CLICKED, None
            click = data.get("click")
            metadata.update(_engagement(click))
            if isinstance(click, Mapping):
                occurred_at = _parse_time(click.get("timestamp")) or occurred_at
        case _:
            return None
    return ProviderEvent(
        provider=PROVIDER,
        external_id=email_id,
        event=event,
        status=status,
        occurred_at=occurred_at,
        dedup_key=_dedup_key(svix_id, event_type, email_id, payload.get("created_at")),
        error_code=error_code,
        error_message=error_message,
        metadata=metadata,
        attempt_id=_uuid(tags.get(ATTEMPT_TAG)),
    )


def _engagement(details: Any) -> dict[str, Any]:
    """Opened/clicked details in the seed's timeline vocabulary (ip, userAgent, link)."""
    if not isinstance(details, Mapping):
        return {}
    out: dict[str, Any] = {}
    if details.get("ipAddress"):
        out["ip"] = details["ipAddress"]
    if details.get("userAgent"):
        out["userAgent"] = details["userAgent"]
    if details.get("link"):
        out["link"] = details["link"]
    return out


def tag_value(value: str) -> str:
    """A string made safe for a Resend tag value."""
    return _TAG_UNSAFE.sub("_", value)[:256]
