"""What every provider speaks: the outbound request, its answer, errors and inbound events.

Vendor specifics stay inside each implementation; the rest of the system sees
only these types (fief: services/email/base.py).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from mensajero.models import Channel, MessageStatus, TimelineEventType


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One attempt to deliver; ``attempt_id`` (the communication log id) is the idempotency key."""

    attempt_id: uuid.UUID
    organization_id: uuid.UUID
    channel: Channel
    recipient: str  # E.164 phone or email address
    body: str
    subject: str | None = None
    html: str | None = None
    template_id: str | None = None
    from_address: str | None = None  # sender number/email when the organization sets one
    from_name: str | None = None
    reply_to: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ProviderAccepted:
    """The provider took the message; ``external_id`` identifies it in its callbacks."""

    provider: str
    external_id: str
    status: MessageStatus = MessageStatus.SENT
    raw: dict[str, Any] = field(default_factory=dict)


class ProviderError(Exception):
    """A vendor failure in our terms.

    ``transient`` errors (5xx, timeouts, 429) are retried with backoff, honouring
    ``retry_after`` seconds when the provider gives it; permanent ones fail the
    attempt with the provider's ``code`` and ``message`` and refund it.

    ``ambiguous`` marks failures after the request left us (read timeout, dropped
    connection): the provider may have accepted the message. Retrying is safe only
    when the provider is idempotent (:attr:`ChannelProvider.idempotent`).
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        transient: bool,
        retry_after: float | None = None,
        provider: str | None = None,
        status_code: int | None = None,
        ambiguous: bool = False,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.transient = transient
        self.retry_after = retry_after
        self.provider = provider
        self.status_code = status_code
        self.ambiguous = ambiguous


class InvalidSignature(Exception):
    """An inbound webhook whose signature does not verify: answered 401, nothing changes."""


@dataclass(frozen=True, slots=True)
class ProviderEvent:
    """A normalized status or engagement callback about an attempt we sent.

    ``dedup_key`` identifies the provider event itself (not the attempt) so the
    same callback applied twice changes nothing.
    """

    provider: str
    external_id: str
    event: TimelineEventType
    status: MessageStatus | None  # None for engagement events (opened, clicked)
    occurred_at: datetime
    dedup_key: str
    error_code: str | None = None
    error_message: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    # Our attempt id when the provider echoes it back (Twilio's callback URL,
    # Resend's tags): finds the attempt even if its external id was never saved.
    attempt_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class InboundReply:
    """A message a client sent us (WhatsApp or SMS reply)."""

    provider: str
    channel: Channel
    sender: str  # E.164 phone
    text: str
    external_id: str
    received_at: datetime
    recipient: str | None = None  # our number / instance
    metadata: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class ChannelProvider(Protocol):
    """Sends on one channel. Implementations: a sandbox and a real HTTP client per channel."""

    name: str
    channel: Channel

    async def send(self, message: OutboundMessage) -> ProviderAccepted:
        """Deliver or raise :class:`ProviderError`; never retries by itself."""
        ...


def is_idempotent(provider: ChannelProvider) -> bool:
    """Whether the provider delivers an attempt once even if it is sent twice.

    Implementations say so with a class attribute ``idempotent`` (an idempotency
    key the provider honours); it is not part of the protocol so that minimal
    providers written for tests still conform. Unknown means no.
    """
    return bool(getattr(provider, "idempotent", False))
