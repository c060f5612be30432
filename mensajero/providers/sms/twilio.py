"""SMS through a Twilio-compatible Messages API, and Twilio's status callbacks.

Send: ``POST {base}/2010-04-01/Accounts/{sid}/Messages.json`` (form body, basic
auth). Callbacks: Twilio posts a form to ``StatusCallback`` on every status change,
signed in ``X-Twilio-Signature`` (HMAC-SHA1 of the full URL followed by the sorted
POST parameters, base64, keyed with the auth token).

Idempotency: Twilio's Messages API documents no idempotency key for creating a
message. ``I-Twilio-Idempotency-Token`` is the header Twilio puts on the *webhooks
it sends* so that receivers can drop its retries. We still send the attempt id in
that header (unknown headers are ignored, and a compatible provider or a proxy may
honour it), but nothing may assume Twilio deduplicates: a retry after an ambiguous
failure (read timeout) can deliver twice, so those errors carry ``ambiguous=True``.
The attempt id also travels in the callback URL, so callbacks find their attempt
even when the worker died before saving Twilio's message sid.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from mensajero.models import Channel, MessageStatus, TimelineEventType
from mensajero.providers.base import (
    InboundReply,
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

PROVIDER = "twilio"
IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"
SIGNATURE_HEADER = "X-Twilio-Signature"
# Query parameter of the StatusCallback URL that carries our attempt id.
ATTEMPT_QUERY_PARAM = "attempt"
STATUS_CALLBACK_PATH = "/webhooks/twilio/status"

# Twilio's MessageStatus -> (timeline event, status it moves the attempt to).
# ``None`` as status records the event without changing the status: "queued"
# and "sending" arrive after we already hold the attempt as SENT (handed over).
_STATUS_EVENTS: dict[str, tuple[TimelineEventType, MessageStatus | None]] = {
    "accepted": (TimelineEventType.QUEUED, None),
    "scheduled": (TimelineEventType.SCHEDULED, None),
    "queued": (TimelineEventType.QUEUED, None),
    "sending": (TimelineEventType.SENDING, None),
    "sent": (TimelineEventType.SENT, MessageStatus.SENT),
    "delivered": (TimelineEventType.DELIVERED, MessageStatus.DELIVERED),
    "undelivered": (TimelineEventType.UNDELIVERED, MessageStatus.UNDELIVERED),
    "failed": (TimelineEventType.FAILED, MessageStatus.FAILED),
    "read": (TimelineEventType.READ, MessageStatus.READ),
    "canceled": (TimelineEventType.CANCELED, MessageStatus.CANCELED),
}

# Twilio API error codes worth retrying whatever the HTTP status says
# (too many requests, internal error, service unavailable).
_TRANSIENT_TWILIO_CODES = frozenset({"20429", "20500", "20503"})

FormParams = Mapping[str, Any] | Iterable[tuple[str, str]]


class TwilioSmsProvider:
    """Sends SMS through a Twilio-compatible Messages API."""

    name = PROVIDER
    channel = Channel.SMS
    idempotent = False  # see the module docstring

    def __init__(self, settings: Settings, http: ProviderHTTP) -> None:
        self._http = http
        self._account_sid = settings.twilio_account_sid
        self._auth_token = settings.twilio_auth_token.get_secret_value()
        self._from_number = settings.twilio_from_number
        self._messaging_service_sid = settings.twilio_messaging_service_sid
        self._messages_url = (
            f"{settings.twilio_base_url.rstrip('/')}/2010-04-01/Accounts/"
            f"{self._account_sid}/Messages.json"
        )
        self._status_callback_url = (
            settings.twilio_status_callback_url
            or f"{settings.public_base_url.rstrip('/')}{STATUS_CALLBACK_PATH}"
        )

        # Every attempt's callback URL is this prefix plus its id (URL-safe): parsing
        # and re-encoding the URL per message cost a tenth of a worker's CPU.
        empty = _with_query(self._status_callback_url, {ATTEMPT_QUERY_PARAM: ""})
        self._callback_prefix = empty if empty.endswith(f"{ATTEMPT_QUERY_PARAM}=") else None

    def status_callback_url(self, attempt_id: uuid.UUID) -> str:
        if self._callback_prefix is not None:
            return f"{self._callback_prefix}{attempt_id}"
        return _with_query(self._status_callback_url, {ATTEMPT_QUERY_PARAM: str(attempt_id)})

    async def send(self, message: OutboundMessage) -> ProviderAccepted:
        form: dict[str, str] = {
            "To": message.recipient,
            "Body": message.body,
            "StatusCallback": self.status_callback_url(message.attempt_id),
        }
        # An organization's own sender wins; then the Messaging Service; then the
        # account's default number.
        if message.from_address:
            form["From"] = message.from_address
        elif self._messaging_service_sid:
            form["MessagingServiceSid"] = self._messaging_service_sid
        else:
            form["From"] = self._from_number
        response = await post(
            self._http,
            PROVIDER,
            self._messages_url,
            data=form,
            auth=(self._account_sid, self._auth_token),
            headers={IDEMPOTENCY_HEADER: str(message.attempt_id), "Accept": "application/json"},
        )
        body = response_json(response)
        if response.is_success:
            sid = body.get("sid")
            if not sid:
                raise ProviderError(
                    "invalid_response",
                    "Twilio accepted the message without a sid",
                    transient=False,
                    provider=PROVIDER,
                    status_code=response.status_code,
                    # It may have been sent: never resend it blindly.
                    ambiguous=True,
                )
            status = str(body.get("status") or "queued")
            if status in ("failed", "undelivered", "canceled"):
                # Accepted by the API but rejected at once (e.g. a blocked number).
                raise ProviderError(
                    str(body.get("error_code") or status),
                    str(body.get("error_message") or f"Twilio reported {status}"),
                    transient=False,
                    provider=PROVIDER,
                    status_code=response.status_code,
                )
            return ProviderAccepted(
                provider=PROVIDER,
                external_id=str(sid),
                status=MessageStatus.SENT,
                raw=body,
            )
        code = first(body, "code")
        raise http_error(
            PROVIDER,
            response,
            code=code,
            message=first(body, "message", "detail"),
            transient=True if code in _TRANSIENT_TWILIO_CODES else None,
        )


# --- webhooks --------------------------------------------------------------------------------


def _items(params: FormParams) -> list[tuple[str, str]]:
    """Every (name, value) pair, keeping repeated names (Starlette's FormData too)."""
    multi_items = getattr(params, "multi_items", None)
    if callable(multi_items):
        return [(str(k), str(v)) for k, v in multi_items()]
    if isinstance(params, Mapping):
        pairs: list[tuple[str, str]] = []
        for key, value in params.items():
            if isinstance(value, Sequence) and not isinstance(value, str | bytes):
                pairs.extend((str(key), str(v)) for v in value)
            else:
                pairs.append((str(key), str(value)))
        return pairs
    return [(str(k), str(v)) for k, v in params]


def compute_twilio_signature(url: str, params: FormParams, auth_token: str) -> str:
    """Twilio's signature: base64(HMAC-SHA1(token, url + name1 + value1 + ...)).

    Parameters are sorted by name, and the distinct values of a repeated name by
    value (as Twilio's own validators do).
    """
    payload = url + "".join(name + value for name, value in sorted(set(_items(params))))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _url_variants(url: str) -> list[str]:
    """The URL as given, and with its default port added or removed.

    Twilio signs the URL exactly as it requested it; proxies in front of us may
    add or strip ``:443``/``:80``, so the official helpers accept both forms.
    """
    parts = urlsplit(url)
    variants = [url]
    default_port = {"https": 443, "http": 80}.get(parts.scheme)
    host = parts.hostname or ""
    if parts.port is not None:
        variants.append(urlunsplit(parts._replace(netloc=_netloc(parts, host))))
    elif default_port is not None:
        netloc = _netloc(parts, f"{host}:{default_port}")
        variants.append(urlunsplit(parts._replace(netloc=netloc)))
    return variants


def _netloc(parts: Any, host_and_port: str) -> str:
    userinfo = parts.netloc.rpartition("@")[0]
    return f"{userinfo}@{host_and_port}" if userinfo else host_and_port


def verify_twilio_signature(
    url: str, params: FormParams, signature: str | None, auth_token: str
) -> bool:
    """Whether ``X-Twilio-Signature`` matches the request (constant-time compare).

    ``url`` is the full URL Twilio requested, query string included; ``params``
    the POST form (empty for GET). An empty token or signature never verifies.
    """
    if not signature or not auth_token:
        return False
    given = signature.strip().encode()
    matched = False
    for candidate in _url_variants(url):
        expected = compute_twilio_signature(candidate, params, auth_token).encode()
        # No early exit: every variant is compared.
        matched |= hmac.compare_digest(expected, given)
    return matched


def _parse_dlr_done_date(value: str | None) -> datetime | None:
    """Carrier delivery receipt time, ``YYMMDDhhmm`` (UTC), when Twilio relays it."""
    if not value or len(value) < 10 or not value[:10].isdigit():
        return None
    try:
        return datetime.strptime(value[:10], "%y%m%d%H%M").replace(tzinfo=UTC)
    except ValueError:
        return None


def _attempt_id(value: str | None) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def attempt_id_from_url(url: str) -> uuid.UUID | None:
    """The attempt id we put in the StatusCallback URL, if any."""
    query = dict(parse_qsl(urlsplit(url).query))
    return _attempt_id(query.get(ATTEMPT_QUERY_PARAM))


def parse_twilio_status_callback(
    params: FormParams,
    *,
    url: str | None = None,
    received_at: datetime | None = None,
) -> ProviderEvent | None:
    """A status callback as a :class:`ProviderEvent`; ``None`` for statuses we ignore.

    Inbound statuses (``receiving``/``received``) and unknown ones are ignored,
    as are callbacks without a MessageSid. ``url`` (the callback URL) yields the
    attempt id we embedded when sending.
    """
    data = dict(_items(params))
    sid = first(data, "MessageSid", "SmsSid")
    raw_status = (first(data, "MessageStatus", "SmsStatus") or "").lower()
    mapped = _STATUS_EVENTS.get(raw_status)
    if not sid or mapped is None:
        return None
    event, status = mapped
    error_code = first(data, "ErrorCode")
    error_message = first(data, "ErrorMessage")
    if error_code and not error_message:
        error_message = f"Twilio error {error_code}"
    occurred_at = (
        _parse_dlr_done_date(data.get("RawDlrDoneDate")) or received_at or datetime.now(UTC)
    )
    metadata = {
        key: data[key]
        for key in ("AccountSid", "MessagingServiceSid", "From", "To", "ChannelStatusMessage")
        if data.get(key)
    }
    dedup_key = f"twilio:{sid}:{raw_status}" + (f":{error_code}" if error_code else "")
    return ProviderEvent(
        provider=PROVIDER,
        external_id=sid,
        event=event,
        status=status,
        occurred_at=occurred_at,
        dedup_key=dedup_key,
        error_code=error_code,
        error_message=error_message,
        metadata=metadata,
        attempt_id=attempt_id_from_url(url) if url else None,
    )


def parse_twilio_inbound(
    params: FormParams, *, received_at: datetime | None = None
) -> InboundReply | None:
    """An incoming SMS (Twilio's messaging webhook) as an :class:`InboundReply`."""
    data = dict(_items(params))
    sid = first(data, "MessageSid", "SmsSid", "SmsMessageSid")
    sender = first(data, "From")
    if not sid or not sender:
        return None
    metadata = {
        key: data[key]
        for key in ("AccountSid", "MessagingServiceSid", "NumSegments", "NumMedia", "FromCountry")
        if data.get(key)
    }
    return InboundReply(
        provider=PROVIDER,
        channel=Channel.SMS,
        sender=sender,
        text=data.get("Body", ""),
        external_id=sid,
        received_at=received_at or datetime.now(UTC),
        recipient=first(data, "To"),
        metadata=metadata,
    )


def _with_query(url: str, extra: Mapping[str, str]) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in extra]
    query.extend(extra.items())
    return urlunsplit(parts._replace(query=urlencode(query)))
