"""Outbound webhooks (SPEC section 10): endpoints, the events they receive, signed deliveries.

Fan-out is transactional, not a pub/sub listener: when the state machine
defers a status event it also calls :func:`fan_out` in the same transaction,
which writes one ``WebhookDelivery`` per subscribed enabled endpoint and defers
the ``webhooks.deliver`` job until after the commit. A rolled-back transition
therefore sends nothing, and a worker restart loses nothing (pub/sub would).

Each delivery is signed per Standard Webhooks (``webhook-id`` = the delivery
id, stable across retries and replays so receivers can deduplicate;
``webhook-timestamp``; ``webhook-signature``), retried with the delays of
``settings.webhook_retry_delays_seconds`` and recorded attempt by attempt.

Secrets are stored in clear: HMAC signing needs the key itself (a hash could
not sign). They are shown on creation and rotation and never again.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import orjson
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks import Webhook

from mensajero.events import StatusEvent
from mensajero.models import (
    Channel,
    MessageStatus,
    TimelineEventType,
    WebhookAttempt,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEndpoint,
    utcnow,
    uuid7,
)
from mensajero.outbox import defer_enqueue
from mensajero.repositories import webhook as repository
from mensajero.repositories.webhook import (
    LogDetails,
    WebhookAttemptRepository,
    WebhookDeliveryRepository,
    WebhookEndpointRepository,
)
from mensajero.services.errors import InvalidInput, NotFound
from mensajero.services.status_vocabulary import to_coordinalo
from mensajero.settings import Settings, get_settings

DELIVER_JOB = "webhooks.deliver"
RECONCILE_JOB = "webhooks.reconcile"
SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
MAX_URL_LENGTH = 2000
MAX_DESCRIPTION_LENGTH = 500


class WebhookEventType(StrEnum):
    """The Coordinalo seed's events."""

    COMMUNICATION_SENT = "communication.sent"
    COMMUNICATION_DELIVERED = "communication.delivered"
    COMMUNICATION_OPENED = "communication.opened"
    COMMUNICATION_CLICKED = "communication.clicked"
    COMMUNICATION_BOUNCED = "communication.bounced"
    COMMUNICATION_FAILED = "communication.failed"
    WHATSAPP_RESPONSE = "whatsapp.response"


E = WebhookEventType
_TIMELINE_TO_WEBHOOK: dict[str, WebhookEventType] = {
    TimelineEventType.SENT: E.COMMUNICATION_SENT,
    TimelineEventType.DELIVERED: E.COMMUNICATION_DELIVERED,
    TimelineEventType.OPENED: E.COMMUNICATION_OPENED,
    TimelineEventType.CLICKED: E.COMMUNICATION_CLICKED,
    TimelineEventType.BOUNCED: E.COMMUNICATION_BOUNCED,
    TimelineEventType.FAILED: E.COMMUNICATION_FAILED,
    TimelineEventType.UNDELIVERED: E.COMMUNICATION_FAILED,
    TimelineEventType.RESPONSE: E.WHATSAPP_RESPONSE,
}
_FAILURES: frozenset[str] = frozenset({E.COMMUNICATION_BOUNCED, E.COMMUNICATION_FAILED})
_POSITIVE: frozenset[str] = frozenset(
    {MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ}
)


def webhook_event_for(status_event: StatusEvent) -> WebhookEventType | None:
    """The webhook event a bus event stands for, or None (QUEUED, SENDING, read, ...).

    A failure is announced only when it became the attempt's status (a bounce
    reported after delivery is recorded on the timeline, not announced as a
    failure); ``sent``/``delivered`` only while the attempt is on the positive
    chain (a late ``delivered`` after ``read`` is real news; after a failure it
    is not). Replies are ``whatsapp.response`` on WhatsApp only, as the seed names them.
    """
    event_type = _TIMELINE_TO_WEBHOOK.get(status_event.event)
    if event_type is None:
        return None
    if event_type in _FAILURES:
        return event_type if status_event.is_status_change else None
    if event_type in (E.COMMUNICATION_SENT, E.COMMUNICATION_DELIVERED):
        return event_type if status_event.status in _POSITIVE else None
    if event_type == E.WHATSAPP_RESPONSE and status_event.channel != Channel.WHATSAPP:
        return None
    return event_type


# --- payloads ------------------------------------------------------------------------------------


def iso_utc(value: datetime) -> str:
    """``2026-01-15T10:00:11.000Z``, as the seed writes times."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def build_payload(
    event_type: WebhookEventType,
    status_event: StatusEvent,
    details: LogDetails | None,
    *,
    now: datetime,
) -> dict[str, Any]:
    """The seed's envelope ``{event, data, timestamp}`` for one event."""
    metadata = status_event.metadata
    occurred_at = iso_utc(datetime.fromisoformat(status_event.occurred_at))
    data: dict[str, Any] = {
        "logId": status_event.log_id,
        "messageId": status_event.message_id,
        "clientId": status_event.client_id,
        "clientName": details.client_name if details else None,
        "clientEmail": details.client_email if details else None,
        "clientPhone": details.client_phone if details else None,
        "recipient": details.recipient if details else None,
        "channel": status_event.channel,
        "type": details.communication_type if details else None,
        "status": to_coordinalo(status_event.status),
        "provider": (details.provider if details else None) or metadata.get("provider"),
        "externalId": (details.external_id if details else None) or metadata.get("externalId"),
        "queueId": status_event.queue_id,
        "campaignId": status_event.campaign_id,
        "timestamp": occurred_at,
    }
    error_code = metadata.get("errorCode") or (details.error_code if details else None)
    error_message = metadata.get("errorMessage") or (details.error_message if details else None)
    if event_type == E.COMMUNICATION_BOUNCED:
        data["bounceType"] = metadata.get("bounceType") or (
            "soft" if error_code == "bounce_soft" else "hard"
        )
        data["reason"] = error_message
    elif event_type == E.COMMUNICATION_FAILED:
        data["reason"] = error_message
        data["error"] = {"code": error_code, "message": error_message, "timestamp": occurred_at}
    elif event_type in (E.COMMUNICATION_OPENED, E.COMMUNICATION_CLICKED):
        for key in ("userAgent", "ip", "link"):
            if metadata.get(key):
                data[key] = metadata[key]
    elif event_type == E.WHATSAPP_RESPONSE:
        data["text"] = metadata.get("text")
        data["receivedAt"] = iso_utc(
            datetime.fromisoformat(metadata.get("receivedAt") or status_event.occurred_at)
        )
    return {"event": str(event_type), "data": data, "timestamp": iso_utc(now)}


def _test_payload(event_type: WebhookEventType, *, now: datetime) -> dict[str, Any]:
    """A sample of ``event_type`` for "send a test event": shaped like the real thing."""
    sample = StatusEvent(
        organization_id="",
        message_id="00000000-0000-0000-0000-000000000000",
        log_id="00000000-0000-0000-0000-000000000000",
        event=next(k for k, v in _TIMELINE_TO_WEBHOOK.items() if v == event_type),
        previous_status=MessageStatus.SENT,
        status={
            E.COMMUNICATION_BOUNCED: MessageStatus.BOUNCED,
            E.COMMUNICATION_FAILED: MessageStatus.FAILED,
            E.COMMUNICATION_SENT: MessageStatus.SENT,
        }.get(event_type, MessageStatus.DELIVERED),
        occurred_at=now.isoformat(),
        channel=Channel.WHATSAPP if event_type == E.WHATSAPP_RESPONSE else Channel.EMAIL,
        metadata={
            "bounceType": "hard",
            "errorCode": "test",
            "errorMessage": "This is a test event",
            "text": "This is a test reply",
            "userAgent": "Mozilla/5.0 (test)",
            "ip": "192.0.2.1",
            "link": "https://example.com/",
        },
    )
    payload = build_payload(event_type, sample, None, now=now)
    payload["test"] = True
    return payload


# --- fan-out (called by the state machine inside its transaction) ---------------------------------


def _subscribed(endpoint: WebhookEndpoint, event_type: str) -> bool:
    return not endpoint.event_types or event_type in endpoint.event_types


async def fan_out(
    session: AsyncSession,
    status_events: Sequence[StatusEvent],
    *,
    settings: Settings | None = None,
    now: datetime | None = None,
) -> int:
    """Create the deliveries of these events for subscribed endpoints; enqueue after commit.

    Costs nothing for events no webhook announces (QUEUED, SENDING, ...) and one
    indexed query when the organizations have no enabled endpoint. Returns how
    many deliveries were created.
    """
    announced = [
        (event_type, status_event)
        for status_event in status_events
        if (event_type := webhook_event_for(status_event)) is not None
    ]
    if not announced:
        return 0
    endpoints = await repository.enabled_endpoints_of(
        session, {uuid.UUID(status_event.organization_id) for _, status_event in announced}
    )
    if not endpoints:
        return 0
    by_organization: dict[str, list[WebhookEndpoint]] = {}
    for endpoint in endpoints:
        by_organization.setdefault(str(endpoint.organization_id), []).append(endpoint)
    now = now or utcnow()
    wanted = [
        (event_type, status_event, endpoint)
        for event_type, status_event in announced
        for endpoint in by_organization.get(status_event.organization_id, ())
        if _subscribed(endpoint, event_type)
    ]
    if not wanted:
        return 0
    details = await repository.log_details(
        session, [uuid.UUID(status_event.log_id) for _, status_event, _ in wanted]
    )
    payloads: dict[tuple[str, str], dict[str, Any]] = {}
    rows: list[dict[str, Any]] = []
    for event_type, status_event, endpoint in wanted:
        key = (status_event.log_id + status_event.event + status_event.occurred_at, event_type)
        payload = payloads.get(key)
        if payload is None:
            payload = build_payload(
                event_type, status_event, details.get(uuid.UUID(status_event.log_id)), now=now
            )
            payloads[key] = payload
        rows.append(
            {
                "id": uuid7(),
                "organization_id": endpoint.organization_id,
                "endpoint_id": endpoint.id,
                "event_type": str(event_type),
                "payload": payload,
                "status": WebhookDeliveryStatus.PENDING,
                "attempt_count": 0,
                "schedule_start": 0,
                "next_attempt_at": now,
                "delivered_at": None,
                "created_at": now,
                "updated_at": now,
            }
        )
    await repository.insert_deliveries(session, rows)
    settings = settings or get_settings()
    for row in rows:
        defer_deliver(session, settings, row["id"], attempt_count=0)
    return len(rows)


def defer_deliver(
    session: AsyncSession,
    settings: Settings,
    delivery_id: uuid.UUID,
    *,
    attempt_count: int,
    defer_by: float | None = None,
) -> None:
    # The job id names the attempt: re-enqueueing the same attempt is a no-op,
    # the next attempt (or a replay, which moves the count) is a new job.
    defer_enqueue(
        session,
        settings,
        DELIVER_JOB,
        str(delivery_id),
        attempt_count,
        job_id=f"{DELIVER_JOB}:{delivery_id}:{attempt_count}",
        defer_by=defer_by,
    )


# --- endpoints (GraphQL management) ---------------------------------------------------------------


def generate_secret() -> str:
    """``whsec_`` + base64 of 32 random bytes: the Standard Webhooks secret format."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _validate_url(url: str) -> str:
    url = url.strip()
    if not url or len(url) > MAX_URL_LENGTH:
        raise InvalidInput(f"url must be 1 to {MAX_URL_LENGTH} characters", field="url")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("url must be an absolute http or https URL", field="url")
    return url


def _validate_description(description: str | None) -> str:
    description = (description or "").strip()
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise InvalidInput(
            f"description must be at most {MAX_DESCRIPTION_LENGTH} characters",
            field="description",
        )
    return description


def _validate_event_types(event_types: Iterable[str] | None) -> list[str]:
    """Known event names, once each, in the enum's order; empty means every event."""
    given = {str(value) for value in event_types or ()}
    unknown = given - {str(value) for value in WebhookEventType}
    if unknown:
        raise InvalidInput(f"unknown event types: {', '.join(sorted(unknown))}", field="eventTypes")
    return [str(value) for value in WebhookEventType if value in given]


async def _get_endpoint(
    session: AsyncSession, organization_id: uuid.UUID, endpoint_id: uuid.UUID
) -> WebhookEndpoint:
    endpoint = await WebhookEndpointRepository(session, organization_id).get(endpoint_id)
    if endpoint is None:
        raise NotFound("webhook endpoint not found")
    return endpoint


async def create_endpoint(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    url: str,
    description: str | None = None,
    event_types: Iterable[str] | None = None,
) -> WebhookEndpoint:
    now = utcnow()
    endpoint = WebhookEndpoint(
        organization_id=organization_id,
        url=_validate_url(url),
        description=_validate_description(description),
        event_types=_validate_event_types(event_types),
        secret=generate_secret(),
        created_at=now,
        updated_at=now,
    )
    return await WebhookEndpointRepository(session, organization_id).add(endpoint)


UPDATABLE_FIELDS = ("url", "description", "event_types", "enabled")


async def update_endpoint(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    changes: dict[str, Any],
) -> WebhookEndpoint:
    """Change an endpoint; enabling it again clears its failure record."""
    endpoint = await _get_endpoint(session, organization_id, endpoint_id)
    now = utcnow()
    if "url" in changes:
        endpoint.url = _validate_url(changes["url"] or "")
    if "description" in changes:
        endpoint.description = _validate_description(changes["description"])
    if "event_types" in changes:
        endpoint.event_types = _validate_event_types(changes["event_types"])
    if "enabled" in changes and changes["enabled"] is not None:
        enabled = bool(changes["enabled"])
        if enabled and not endpoint.enabled:
            endpoint.consecutive_failures = 0
            endpoint.failing_since = None
            endpoint.disabled_reason = None
            endpoint.disabled_at = None
        elif not enabled and endpoint.enabled:
            endpoint.disabled_reason = "disabled by a member"
            endpoint.disabled_at = now
        endpoint.enabled = enabled
    endpoint.updated_at = now
    await session.flush()
    return endpoint


async def delete_endpoint(
    session: AsyncSession, *, organization_id: uuid.UUID, endpoint_id: uuid.UUID
) -> WebhookEndpoint:
    """Delete an endpoint with its deliveries and attempts (foreign keys cascade)."""
    endpoint = await _get_endpoint(session, organization_id, endpoint_id)
    await WebhookEndpointRepository(session, organization_id).delete(endpoint)
    return endpoint


async def rotate_secret(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    settings: Settings | None = None,
    now: datetime | None = None,
) -> WebhookEndpoint:
    """A new secret; the previous one keeps signing too during the grace period."""
    settings = settings or get_settings()
    now = now or utcnow()
    endpoint = await _get_endpoint(session, organization_id, endpoint_id)
    grace = timedelta(hours=settings.webhook_secret_grace_hours)
    if grace > timedelta(0):
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_expires_at = now + grace
    else:
        endpoint.previous_secret = None
        endpoint.previous_secret_expires_at = None
    endpoint.secret = generate_secret()
    endpoint.updated_at = now
    await session.flush()
    return endpoint


async def send_test_event(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    event_type: str,
    settings: Settings | None = None,
) -> WebhookDelivery:
    """Queue a sample event (``"test": true`` in the envelope) to one endpoint.

    Sent even to an endpoint filtered to other events; a disabled endpoint
    answers InvalidInput (enable it first).
    """
    (validated,) = _validate_event_types([event_type]) or [None]
    if validated is None:
        raise InvalidInput("eventType is required", field="eventType")
    endpoint = await _get_endpoint(session, organization_id, endpoint_id)
    if not endpoint.enabled:
        raise InvalidInput("the endpoint is disabled; enable it first", field="endpointId")
    now = utcnow()
    delivery = WebhookDelivery(
        organization_id=organization_id,
        endpoint_id=endpoint.id,
        event_type=validated,
        payload=_test_payload(WebhookEventType(validated), now=now),
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )
    await WebhookDeliveryRepository(session, organization_id).add(delivery)
    defer_deliver(session, settings or get_settings(), delivery.id, attempt_count=0)
    return delivery


async def replay_delivery(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    delivery_id: uuid.UUID,
    settings: Settings | None = None,
) -> DeliveryView:
    """Send a delivery again (same payload, same ``webhook-id``), whatever its outcome was.

    It becomes pending with a fresh schedule of retries; new attempts are added
    to its history. A disabled endpoint answers InvalidInput.
    """
    delivery = await WebhookDeliveryRepository(session, organization_id).lock(delivery_id)
    if delivery is None:
        raise NotFound("webhook delivery not found")
    endpoint = await _get_endpoint(session, organization_id, delivery.endpoint_id)
    if not endpoint.enabled:
        raise InvalidInput("the endpoint is disabled; enable it first", field="id")
    now = utcnow()
    delivery.status = WebhookDeliveryStatus.PENDING
    delivery.next_attempt_at = now
    delivery.schedule_start = delivery.attempt_count
    delivery.updated_at = now
    await session.flush()
    defer_deliver(
        session, settings or get_settings(), delivery.id, attempt_count=delivery.attempt_count
    )
    attempts = await WebhookAttemptRepository(session, organization_id).for_deliveries(
        [delivery.id]
    )
    return DeliveryView(delivery, attempts[delivery.id])


# --- reads ----------------------------------------------------------------------------------------


@dataclass
class DeliveryView:
    delivery: WebhookDelivery
    attempts: list[WebhookAttempt] = field(default_factory=list)


@dataclass
class EndpointView:
    endpoint: WebhookEndpoint
    deliveries: list[DeliveryView] = field(default_factory=list)


async def list_endpoints(
    session: AsyncSession, *, organization_id: uuid.UUID, deliveries_per_endpoint: int = 20
) -> list[EndpointView]:
    """The organization's endpoints, each with its newest deliveries and their attempts.

    Three statements whatever the number of endpoints and deliveries.
    """
    endpoints = await WebhookEndpointRepository(session, organization_id).list_newest_first()
    deliveries = await WebhookDeliveryRepository(session, organization_id).recent_per_endpoint(
        [endpoint.id for endpoint in endpoints], limit=deliveries_per_endpoint
    )
    attempts = await WebhookAttemptRepository(session, organization_id).for_deliveries(
        [delivery.id for rows in deliveries.values() for delivery in rows]
    )
    return [
        EndpointView(
            endpoint,
            [DeliveryView(delivery, attempts[delivery.id]) for delivery in deliveries[endpoint.id]],
        )
        for endpoint in endpoints
    ]


async def get_delivery(
    session: AsyncSession, *, organization_id: uuid.UUID, delivery_id: uuid.UUID
) -> DeliveryView:
    delivery = await WebhookDeliveryRepository(session, organization_id).get(delivery_id)
    if delivery is None:
        raise NotFound("webhook delivery not found")
    attempts = await WebhookAttemptRepository(session, organization_id).for_deliveries(
        [delivery.id]
    )
    return DeliveryView(delivery, attempts[delivery.id])


# --- delivering (the webhooks.deliver job) --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignedRequest:
    url: str
    body: bytes
    headers: dict[str, str]


def active_secrets(endpoint: WebhookEndpoint, *, now: datetime) -> list[str]:
    """The secrets that sign now: the current one, and the previous during its grace period."""
    found = [endpoint.secret]
    if (
        endpoint.previous_secret
        and endpoint.previous_secret_expires_at is not None
        and endpoint.previous_secret_expires_at > now
    ):
        found.append(endpoint.previous_secret)
    return found


def sign_request(
    endpoint: WebhookEndpoint, delivery: WebhookDelivery, *, now: datetime
) -> SignedRequest:
    """The request for one attempt: the JSON body and the Standard Webhooks headers."""
    body = orjson.dumps(delivery.payload)
    message_id = str(delivery.id)
    signatures = " ".join(
        Webhook(secret).sign(message_id, now, body.decode())
        for secret in active_secrets(endpoint, now=now)
    )
    return SignedRequest(
        url=endpoint.url,
        body=body,
        headers={
            "content-type": "application/json",
            "user-agent": "mensajero-webhooks/1",
            "webhook-id": message_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signatures,
        },
    )


@dataclass(frozen=True, slots=True)
class AttemptResult:
    response_status: int | None
    response_body: str | None
    error: str | None
    duration_ms: int

    @property
    def succeeded(self) -> bool:
        return self.response_status is not None and 200 <= self.response_status < 300


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    status: str  # the delivery's status after the attempt
    retry_in_seconds: float | None
    endpoint_disabled: bool


async def claim_attempt(
    session: AsyncSession,
    *,
    delivery_id: uuid.UUID,
    attempt_count: int,
    settings: Settings,
    now: datetime | None = None,
) -> tuple[WebhookDelivery, WebhookEndpoint] | None:
    """Take the next attempt of a pending delivery; None when there is nothing to send.

    Nothing to send: the delivery or its endpoint is gone, the endpoint is
    disabled (the delivery then fails), the delivery is no longer pending, or
    another run already took this attempt. The caller commits before sending,
    and the lease (``next_attempt_at``) tells the reconciler when a claimed
    attempt was lost with its worker.
    """
    now = now or utcnow()
    found = await repository.get_delivery_with_endpoint(session, delivery_id)
    if found is None:
        return None
    delivery, endpoint = found
    if delivery.status != WebhookDeliveryStatus.PENDING or delivery.attempt_count != attempt_count:
        return None
    if not endpoint.enabled:
        delivery.status = WebhookDeliveryStatus.FAILED
        delivery.next_attempt_at = None
        delivery.updated_at = now
        await session.flush()
        return None
    lease = now + timedelta(seconds=settings.webhook_timeout_seconds * 2 + 30)
    if not await repository.claim_attempt(
        session, delivery.id, attempt_count=attempt_count, lease_until=lease, now=now
    ):
        return None
    await session.refresh(delivery)
    return delivery, endpoint


async def record_attempt(
    session: AsyncSession,
    *,
    delivery_id: uuid.UUID,
    result: AttemptResult,
    settings: Settings,
    now: datetime | None = None,
) -> AttemptOutcome | None:
    """Record one attempt's result: success, a retry later, or the final failure.

    The endpoint's health moves with it: a success resets its failure run; a
    delivery that gives up counts one consecutive failure, and the endpoint is
    disabled when that makes ``webhook_disable_after_failures`` of them, or when
    it has been failing without a success for ``webhook_disable_after_hours``.
    """
    now = now or utcnow()
    found = await repository.get_delivery_with_endpoint(session, delivery_id)
    if found is None:
        return None
    delivery, _ = found
    endpoint = await repository.lock_endpoint(session, delivery.endpoint_id)
    if endpoint is None:
        return None
    session.add(
        WebhookAttempt(
            organization_id=delivery.organization_id,
            delivery_id=delivery.id,
            response_status=result.response_status,
            response_body=result.response_body,
            error=result.error,
            duration_ms=result.duration_ms,
            succeeded=result.succeeded,
            created_at=now,
        )
    )
    delivery.updated_at = now
    endpoint.updated_at = now
    if result.succeeded:
        delivery.status = WebhookDeliveryStatus.SUCCEEDED
        delivery.delivered_at = now
        delivery.next_attempt_at = None
        endpoint.consecutive_failures = 0
        endpoint.failing_since = None
        await session.flush()
        return AttemptOutcome(delivery.status, None, False)
    endpoint.failing_since = endpoint.failing_since or now
    delays = settings.webhook_retry_delays_seconds
    # Attempts since the delivery was created or last replayed.
    retries_used = delivery.attempt_count - 1 - delivery.schedule_start
    if retries_used < len(delays):
        retry_in: float | None = max(float(delays[retries_used]), 0.0)
        delivery.next_attempt_at = now + timedelta(seconds=retry_in or 0.0)
        await session.flush()
        defer_deliver(
            session,
            settings,
            delivery.id,
            attempt_count=delivery.attempt_count,
            defer_by=retry_in or None,
        )
        return AttemptOutcome(delivery.status, retry_in, False)
    # The delivery gives up. Only then is the endpoint judged, so that a short
    # outage its retries ride out never disables it, nor does one old failure
    # followed, days later, by a single failed attempt.
    delivery.status = WebhookDeliveryStatus.FAILED
    delivery.next_attempt_at = None
    endpoint.consecutive_failures += 1
    failing_for = now - endpoint.failing_since
    disabled = endpoint.enabled and (
        endpoint.consecutive_failures >= settings.webhook_disable_after_failures
        or failing_for >= timedelta(hours=settings.webhook_disable_after_hours)
    )
    if disabled:
        endpoint.enabled = False
        endpoint.disabled_at = now
        endpoint.disabled_reason = (
            f"disabled after {endpoint.consecutive_failures} failed deliveries in a row"
            f" (failing since {iso_utc(endpoint.failing_since)})"
        )
    await session.flush()
    return AttemptOutcome(delivery.status, None, disabled)
