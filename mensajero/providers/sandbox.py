"""A provider per channel that delivers nowhere but behaves like the real ones.

The default in embedded mode: ``send`` accepts the attempt (``sbx_<uuid>``), then
schedules the callbacks a real provider would send, through ``emit(event,
delay_seconds)``, which the delivery layer implements by enqueuing a deferred job
that applies the event through the same state machine as a real webhook:

- sms: DELIVERED after ``sandbox_delay_seconds`` (SMS has no read receipts);
- whatsapp: DELIVERED, then READ one more delay later;
- email: DELIVERED, then OPENED (an engagement event) one more delay later.

With probability ``sandbox_failure_rate`` the attempt fails the way it fails on
that channel: half of the failures are rejected at send time (a permanent
:class:`ProviderError`, like an invalid number), the other half are accepted and
fail later (SMS undelivered, email hard bounce, WhatsApp error). A seeded
``random.Random`` makes the outcome reproducible.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from mensajero.models import Channel, MessageStatus, TimelineEventType
from mensajero.providers.base import (
    OutboundMessage,
    ProviderAccepted,
    ProviderError,
    ProviderEvent,
)
from mensajero.settings import Settings

PROVIDER = "sandbox"
EXTERNAL_ID_PREFIX = "sbx_"

# Schedules ``event`` to be applied ``delay_seconds`` from now.
EmitEvent = Callable[[ProviderEvent, float], Awaitable[None]]

# What a rejected send looks like on each channel (code, message).
_REJECTIONS: dict[Channel, tuple[str, str]] = {
    Channel.SMS: ("21211", "The 'To' number is not a valid phone number (sandbox)"),
    Channel.WHATSAPP: ("not_on_whatsapp", "The number is not on WhatsApp (sandbox)"),
    Channel.EMAIL: ("validation_error", "Invalid `to` field (sandbox)"),
}
# What a failure after acceptance looks like on each channel.
_LATE_FAILURES: dict[Channel, tuple[TimelineEventType, MessageStatus, str, str]] = {
    Channel.SMS: (
        TimelineEventType.UNDELIVERED,
        MessageStatus.UNDELIVERED,
        "30003",
        "Unreachable destination handset (sandbox)",
    ),
    Channel.WHATSAPP: (
        TimelineEventType.FAILED,
        MessageStatus.FAILED,
        "whatsapp_error",
        "WhatsApp reported an error delivering the message (sandbox)",
    ),
    Channel.EMAIL: (
        TimelineEventType.BOUNCED,
        MessageStatus.BOUNCED,
        "bounce_hard",
        "Mailbox does not exist (sandbox)",
    ),
}
# The engagement that follows delivery, if the channel has one.
_AFTER_DELIVERY: dict[Channel, tuple[TimelineEventType, MessageStatus | None]] = {
    Channel.WHATSAPP: (TimelineEventType.READ, MessageStatus.READ),
    Channel.EMAIL: (TimelineEventType.OPENED, None),
}


class SandboxProvider:
    """Simulates a provider on one channel; see the module docstring."""

    name = PROVIDER
    idempotent = True  # nothing leaves the process: a second send harms no one

    def __init__(
        self,
        channel: Channel,
        settings: Settings,
        emit: EmitEvent,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.channel = channel
        self._emit = emit
        self._delay = max(settings.sandbox_delay_seconds, 0.0)
        self._latency = max(settings.sandbox_latency_seconds, 0.0)
        self._failure_rate = min(max(settings.sandbox_failure_rate, 0.0), 1.0)
        self._rng = rng or random.Random()

    async def send(self, message: OutboundMessage) -> ProviderAccepted:
        if self._latency:
            await asyncio.sleep(self._latency)
        fails = self._rng.random() < self._failure_rate
        if fails and self._rng.random() < 0.5:
            code, text = _REJECTIONS[self.channel]
            raise ProviderError(code, text, transient=False, provider=PROVIDER, status_code=400)
        external_id = f"{EXTERNAL_ID_PREFIX}{uuid.uuid4().hex}"
        now = datetime.now(UTC)
        if fails:
            event, status, code, text = _LATE_FAILURES[self.channel]
            await self._schedule(
                external_id,
                message,
                event,
                status,
                now,
                self._delay,
                error=(code, text),
                metadata={"bounceType": "hard"} if status is MessageStatus.BOUNCED else None,
            )
        else:
            await self._schedule(
                external_id,
                message,
                TimelineEventType.DELIVERED,
                MessageStatus.DELIVERED,
                now,
                self._delay,
            )
            follow_up = _AFTER_DELIVERY.get(self.channel)
            if follow_up is not None:
                event, status = follow_up
                await self._schedule(external_id, message, event, status, now, 2 * self._delay)
        return ProviderAccepted(
            provider=PROVIDER,
            external_id=external_id,
            status=MessageStatus.SENT,
            raw={"sandbox": True, "channel": str(self.channel)},
        )

    async def _schedule(
        self,
        external_id: str,
        message: OutboundMessage,
        event: TimelineEventType,
        status: MessageStatus | None,
        now: datetime,
        delay: float,
        *,
        error: tuple[str, str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        provider_event = ProviderEvent(
            provider=PROVIDER,
            external_id=external_id,
            event=event,
            status=status,
            occurred_at=now + timedelta(seconds=delay),
            dedup_key=f"sandbox:{external_id}:{event}",
            error_code=error[0] if error else None,
            error_message=error[1] if error else None,
            metadata={"sandbox": True, **(metadata or {})},
            attempt_id=message.attempt_id,
        )
        await self._emit(provider_event, delay)
