"""WhatsApp through Evolution API v2, and Evolution's webhooks.

Send: ``POST {base}/message/sendText/{instance}`` with the ``apikey`` header and
``{"number": "<digits>", "text": ...}``; the answer (201) is the stored message,
``key.id`` being the WhatsApp message id that later callbacks name as ``keyId``.
Evolution has no idempotency key: a retry after an ambiguous failure may deliver
twice (those errors carry ``ambiguous=True``).

Webhooks post ``{"event", "instance", "data", "date_time", "sender", "server_url",
"apikey"}``. ``event`` is ``messages.update`` (or ``MESSAGES_UPDATE`` /
``messages-update`` depending on version and the by-events URL style). There is
no signature: the shared secret is the ``apikey`` body field (the instance key,
when Evolution exposes it) or an ``apikey`` header set in the webhook's custom
headers; either must equal ``evolution_webhook_api_key`` (default: the API key).
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from mensajero.models import Channel, MessageStatus, TimelineEventType
from mensajero.providers.base import (
    InboundReply,
    InvalidSignature,
    OutboundMessage,
    ProviderAccepted,
    ProviderError,
    ProviderEvent,
)
from mensajero.providers.http import (
    ProviderHTTP,
    ProviderResponse,
    first,
    http_error,
    post,
    response_json,
)
from mensajero.settings import Settings

PROVIDER = "evolution"
API_KEY_HEADER = "apikey"

# Evolution's message status (Baileys' ack levels) -> timeline event and status.
_STATUS_EVENTS: dict[str, tuple[TimelineEventType, MessageStatus | None]] = {
    "PENDING": (TimelineEventType.SENDING, None),
    "SERVER_ACK": (TimelineEventType.SENT, MessageStatus.SENT),
    "DELIVERY_ACK": (TimelineEventType.DELIVERED, MessageStatus.DELIVERED),
    "READ": (TimelineEventType.READ, MessageStatus.READ),
    "PLAYED": (TimelineEventType.READ, MessageStatus.READ),
    "ERROR": (TimelineEventType.FAILED, MessageStatus.FAILED),
}
# Older versions send Baileys' numeric ack levels.
_NUMERIC_STATUS = {
    "0": "ERROR",
    "1": "PENDING",
    "2": "SERVER_ACK",
    "3": "DELIVERY_ACK",
    "4": "READ",
    "5": "PLAYED",
}

_JID_SUFFIXES = ("@s.whatsapp.net", "@c.us")


def normalize_event_name(event: str) -> str:
    """``messages.update`` / ``MESSAGES_UPDATE`` / ``messages-update`` -> ``MESSAGES_UPDATE``."""
    return re.sub(r"[.\-]", "_", event.strip()).upper()


def phone_from_jid(jid: str | None) -> str | None:
    """``573001234567@s.whatsapp.net`` (or ``...:12@s.whatsapp.net``) -> ``+573001234567``.

    Groups, broadcasts and LIDs (``@lid``, not a phone number) give ``None``.
    """
    if not jid or not jid.endswith(_JID_SUFFIXES):
        return None
    user = jid.split("@", 1)[0].split(":", 1)[0]
    digits = re.sub(r"\D", "", user)
    return f"+{digits}" if digits else None


class EvolutionWhatsAppProvider:
    """Sends WhatsApp text messages through an Evolution API instance."""

    name = PROVIDER
    channel = Channel.WHATSAPP
    idempotent = False

    def __init__(self, settings: Settings, http: ProviderHTTP) -> None:
        self._http = http
        self._api_key = settings.evolution_api_key.get_secret_value()
        self._instance = settings.evolution_instance
        self._base_url = settings.evolution_base_url.rstrip("/")

    def send_text_url(self, instance: str | None = None) -> str:
        return f"{self._base_url}/message/sendText/{instance or self._instance}"

    async def send(self, message: OutboundMessage) -> ProviderAccepted:
        # Evolution wants the number as digits (country code first, no "+").
        number = re.sub(r"\D", "", message.recipient)
        if not number:
            raise ProviderError(
                "invalid_number",
                f"{message.recipient!r} is not a phone number",
                transient=False,
                provider=PROVIDER,
            )
        instance = message.metadata.get("instanceName") or self._instance
        response = await post(
            self._http,
            PROVIDER,
            self.send_text_url(str(instance)),
            json={"number": number, "text": message.body},
            headers={API_KEY_HEADER: self._api_key},
        )
        body = response_json(response)
        if response.is_success:
            key = body.get("key") if isinstance(body.get("key"), Mapping) else {}
            message_id = key.get("id")
            if not message_id:
                raise ProviderError(
                    "invalid_response",
                    "Evolution accepted the message without key.id",
                    transient=False,
                    provider=PROVIDER,
                    status_code=response.status_code,
                    # It may have been sent: never resend it blindly.
                    ambiguous=True,
                )
            return ProviderAccepted(
                provider=PROVIDER,
                external_id=str(message_id),
                status=MessageStatus.SENT,
                raw=body,
            )
        raise http_error(
            PROVIDER, response, code=_error_code(response, body), message=_error_message(body)
        )


def _error_code(response: ProviderResponse, body: Mapping[str, Any]) -> str:
    detail = body.get("response")
    messages = detail.get("message") if isinstance(detail, Mapping) else None
    # "Not on WhatsApp" comes back as 400 with [{"exists": false, "jid": ..., "number": ...}].
    if isinstance(messages, list) and any(
        isinstance(m, Mapping) and m.get("exists") is False for m in messages
    ):
        return "not_on_whatsapp"
    error = body.get("error")
    if isinstance(error, str) and error:
        return re.sub(r"\W+", "_", error.strip().lower()).strip("_")
    return f"http_{response.status_code}"


def _error_message(body: Mapping[str, Any]) -> str | None:
    detail = body.get("response")
    messages = detail.get("message") if isinstance(detail, Mapping) else detail
    if isinstance(messages, list):
        parts = []
        for item in messages:
            if isinstance(item, Mapping) and item.get("exists") is False:
                parts.append(f"{item.get('number') or item.get('jid')} is not on WhatsApp")
            else:
                parts.append(str(item))
        return "; ".join(parts) or None
    if messages:
        return str(messages)
    return first(body, "message", "error")


# --- webhooks --------------------------------------------------------------------------------


def verify_evolution_api_key(
    payload: Mapping[str, Any], headers: Mapping[str, str], expected: str
) -> None:
    """Check the webhook's ``apikey`` (header or body field) or raise :class:`InvalidSignature`."""
    if not expected:
        raise InvalidSignature("no Evolution webhook key configured")
    lowered = {k.lower(): v for k, v in headers.items()}
    candidates = [lowered.get(API_KEY_HEADER), payload.get("apikey")]
    matched = False
    for candidate in candidates:
        if isinstance(candidate, str) and candidate:
            matched |= hmac.compare_digest(candidate.encode(), expected.encode())
    if not matched:
        raise InvalidSignature("apikey does not match")


def evolution_webhook_key(settings: Settings) -> str:
    """The key Evolution webhooks must carry."""
    return (
        settings.evolution_webhook_api_key.get_secret_value()
        or settings.evolution_api_key.get_secret_value()
    )


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, int | float) and value > 0:
        # messageTimestamp: seconds (or milliseconds in some versions).
        seconds = value / 1000 if value > 10**11 else value
        return datetime.fromtimestamp(seconds, UTC)
    if isinstance(value, str) and value:
        if value.isdigit():
            return _parse_time(int(value))
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _items(data: Any) -> list[Mapping[str, Any]]:
    if isinstance(data, Mapping):
        # Some versions wrap batches as {"messages": [...]}.
        nested = data.get("messages")
        if isinstance(nested, list):
            return [m for m in nested if isinstance(m, Mapping)]
        return [data]
    if isinstance(data, list):
        return [m for m in data if isinstance(m, Mapping)]
    return []


def _status_event(
    item: Mapping[str, Any], *, instance: str | None, occurred_at: datetime
) -> ProviderEvent | None:
    key = item.get("key") if isinstance(item.get("key"), Mapping) else {}
    # v2 sends keyId (the WhatsApp id we got from sendText); v1 nested it in key.
    external_id = first(item, "keyId") or first(key, "id")
    from_me = item.get("fromMe", key.get("fromMe"))
    raw_status = item.get("status")
    if raw_status is None and isinstance(item.get("update"), Mapping):
        raw_status = item["update"].get("status")
    status_name = _NUMERIC_STATUS.get(str(raw_status), str(raw_status or "").upper())
    mapped = _STATUS_EVENTS.get(status_name)
    # Updates about messages we did not send (receipts of inbound ones) are not ours.
    if not external_id or mapped is None or from_me is False:
        return None
    event, status = mapped
    metadata: dict[str, Any] = {"evolutionStatus": status_name}
    if instance:
        metadata["instanceName"] = instance
    remote_jid = first(item, "remoteJid") or first(key, "remoteJid")
    if remote_jid:
        metadata["remoteJid"] = remote_jid
    return ProviderEvent(
        provider=PROVIDER,
        external_id=external_id,
        event=event,
        status=status,
        occurred_at=_parse_time(item.get("messageTimestamp")) or occurred_at,
        dedup_key=f"evolution:{external_id}:{status_name}"[:200],
        error_code="whatsapp_error" if status_name == "ERROR" else None,
        error_message="WhatsApp reported an error delivering the message"
        if status_name == "ERROR"
        else None,
        metadata=metadata,
    )


def _message_text(message: Any) -> str | None:
    if not isinstance(message, Mapping):
        return None
    if isinstance(message.get("conversation"), str):
        return message["conversation"]
    for kind, field in (
        ("extendedTextMessage", "text"),
        ("imageMessage", "caption"),
        ("videoMessage", "caption"),
        ("documentMessage", "caption"),
        ("buttonsResponseMessage", "selectedDisplayText"),
        ("templateButtonReplyMessage", "selectedDisplayText"),
    ):
        part = message.get(kind)
        if isinstance(part, Mapping) and isinstance(part.get(field), str):
            return part[field]
    list_reply = message.get("listResponseMessage")
    if isinstance(list_reply, Mapping) and isinstance(list_reply.get("title"), str):
        return list_reply["title"]
    return None


def _inbound(
    item: Mapping[str, Any], *, instance: str | None, sender_jid: str | None, received_at: datetime
) -> InboundReply | None:
    key = item.get("key") if isinstance(item.get("key"), Mapping) else {}
    if key.get("fromMe") is not False:
        return None  # our own outgoing messages echo back as upserts
    # With LID addressing the phone jid travels in remoteJidAlt / senderPn.
    phone = (
        phone_from_jid(first(key, "remoteJid"))
        or phone_from_jid(first(key, "remoteJidAlt", "senderPn"))
        or phone_from_jid(first(item, "senderPn"))
    )
    text = _message_text(item.get("message"))
    message_id = first(key, "id")
    if phone is None or text is None or not message_id:
        return None  # groups, statuses, media without caption, reactions...
    metadata: dict[str, Any] = {}
    for name in ("pushName", "messageType"):
        if item.get(name):
            metadata[name] = item[name]
    if instance:
        metadata["instanceName"] = instance
    return InboundReply(
        provider=PROVIDER,
        channel=Channel.WHATSAPP,
        sender=phone,
        text=text,
        external_id=message_id,
        received_at=_parse_time(item.get("messageTimestamp")) or received_at,
        recipient=phone_from_jid(sender_jid) or instance,
        metadata=metadata,
    )


def parse_evolution_webhook(
    payload: Mapping[str, Any], *, received_at: datetime | None = None
) -> list[ProviderEvent | InboundReply]:
    """Status updates and inbound replies in one Evolution webhook; others give ``[]``.

    ``MESSAGES_UPDATE`` items become :class:`ProviderEvent` (deduplicated by
    message id and status); ``MESSAGES_UPSERT`` items not sent by us become
    :class:`InboundReply`. Unknown statuses and events are ignored.
    """
    event_name = normalize_event_name(str(payload.get("event") or ""))
    instance = first(payload, "instance")
    moment = _parse_time(payload.get("date_time")) or received_at or datetime.now(UTC)
    results: list[ProviderEvent | InboundReply] = []
    if event_name == "MESSAGES_UPDATE":
        for item in _items(payload.get("data")):
            status_event = _status_event(item, instance=instance, occurred_at=moment)
            if status_event is not None:
                results.append(status_event)
    elif event_name == "MESSAGES_UPSERT":
        sender_jid = first(payload, "sender")
        for item in _items(payload.get("data")):
            reply = _inbound(item, instance=instance, sender_jid=sender_jid, received_at=moment)
            if reply is not None:
                results.append(reply)
    return results
