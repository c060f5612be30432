"""The sandbox provider: simulated callbacks per channel, failure rate, reproducibility."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

import pytest

from mensajero.models import Channel, MessageStatus, TimelineEventType
from mensajero.providers.base import (
    ChannelProvider,
    OutboundMessage,
    ProviderError,
    ProviderEvent,
    is_idempotent,
)
from mensajero.providers.sandbox import SandboxProvider
from mensajero.settings import Settings


class Recorder:
    """The ``emit`` callback: records what the sandbox schedules and when."""

    def __init__(self) -> None:
        self.scheduled: list[tuple[ProviderEvent, float]] = []

    async def __call__(self, event: ProviderEvent, delay: float) -> None:
        self.scheduled.append((event, delay))


def message(channel: Channel) -> OutboundMessage:
    recipient = "ana@example.com" if channel is Channel.EMAIL else "+573001234567"
    return OutboundMessage(
        attempt_id=uuid.uuid4(),
        organization_id=uuid.uuid4(),
        channel=channel,
        recipient=recipient,
        body="Hola",
    )


def sandbox(
    channel: Channel, recorder: Recorder, *, failure_rate: float = 0.0, seed: int = 7
) -> SandboxProvider:
    settings = Settings(sandbox_delay_seconds=0.25, sandbox_failure_rate=failure_rate)
    return SandboxProvider(channel, settings, recorder, rng=random.Random(seed))


@pytest.mark.parametrize(
    ("channel", "expected"),
    [
        (Channel.SMS, [(TimelineEventType.DELIVERED, MessageStatus.DELIVERED, 0.25)]),
        (
            Channel.WHATSAPP,
            [
                (TimelineEventType.DELIVERED, MessageStatus.DELIVERED, 0.25),
                (TimelineEventType.READ, MessageStatus.READ, 0.5),
            ],
        ),
        (
            Channel.EMAIL,
            [
                (TimelineEventType.DELIVERED, MessageStatus.DELIVERED, 0.25),
                (TimelineEventType.OPENED, None, 0.5),
            ],
        ),
    ],
)
async def test_success_schedules_the_channel_lifecycle(
    channel: Channel, expected: list[tuple[TimelineEventType, MessageStatus | None, float]]
) -> None:
    recorder = Recorder()
    outbound = message(channel)

    accepted = await sandbox(channel, recorder).send(outbound)

    assert accepted.provider == "sandbox"
    assert accepted.status is MessageStatus.SENT
    assert accepted.external_id.startswith("sbx_")
    assert [(e.event, e.status, delay) for e, delay in recorder.scheduled] == expected
    first_time = recorder.scheduled[0][0].occurred_at
    for event, delay in recorder.scheduled:
        assert event.provider == "sandbox"
        assert event.external_id == accepted.external_id
        assert event.attempt_id == outbound.attempt_id
        assert event.dedup_key == f"sandbox:{accepted.external_id}:{event.event}"
        assert event.occurred_at - first_time == timedelta(seconds=delay - 0.25)


@pytest.mark.parametrize(
    ("channel", "late_event", "late_status", "code"),
    [
        (Channel.SMS, TimelineEventType.UNDELIVERED, MessageStatus.UNDELIVERED, "30003"),
        (Channel.WHATSAPP, TimelineEventType.FAILED, MessageStatus.FAILED, "whatsapp_error"),
        (Channel.EMAIL, TimelineEventType.BOUNCED, MessageStatus.BOUNCED, "bounce_hard"),
    ],
)
async def test_failures_are_realistic_per_channel(
    channel: Channel, late_event: TimelineEventType, late_status: MessageStatus, code: str
) -> None:
    recorder = Recorder()
    provider = sandbox(channel, recorder, failure_rate=1.0, seed=1)
    rejected = 0
    late = 0
    for _ in range(40):
        before = len(recorder.scheduled)
        try:
            await provider.send(message(channel))
        except ProviderError as error:
            assert error.transient is False
            assert error.provider == "sandbox"
            assert len(recorder.scheduled) == before  # nothing scheduled
            rejected += 1
        else:
            [(event, delay)] = recorder.scheduled[before:]
            assert event.event is late_event
            assert event.status is late_status
            assert event.error_code == code
            assert event.error_message
            assert delay == 0.25
            late += 1
    # Both ways of failing happen.
    assert rejected > 0 and late > 0


async def test_failure_rate_is_roughly_honoured_and_reproducible() -> None:
    async def outcomes(seed: int) -> list[str]:
        recorder = Recorder()
        provider = sandbox(Channel.SMS, recorder, failure_rate=0.2, seed=seed)
        results = []
        for _ in range(500):
            before = len(recorder.scheduled)
            try:
                await provider.send(message(Channel.SMS))
            except ProviderError:
                results.append("rejected")
                continue
            [(event, _delay)] = recorder.scheduled[before:]
            results.append(str(event.event))
        return results

    first = await outcomes(42)
    assert first == await outcomes(42)
    failures = sum(1 for outcome in first if outcome != "delivered")
    assert 60 <= failures <= 140  # 20 % of 500, with generous room


async def test_sandbox_conforms_to_the_protocol() -> None:
    provider = sandbox(Channel.SMS, Recorder())
    assert isinstance(provider, ChannelProvider)
    assert provider.channel is Channel.SMS
    assert is_idempotent(provider) is True
