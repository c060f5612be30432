from __future__ import annotations

from datetime import timedelta

import pytest
from arq.connections import ArqRedis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mensajero.events import commit_and_publish
from mensajero.models import (
    ChannelConfig,
    CommunicationLog,
    Message,
    MessageStatus,
    TimelineEventType,
    utcnow,
)
from mensajero.providers.base import ProviderError, ProviderEvent
from mensajero.services import delivery
from mensajero.services.delivery import resolve_status
from tests.delivery_support import create_attempt_row, listen, reload, timeline
from tests.factories import create_client, create_organization

S = MessageStatus


@pytest.mark.parametrize(
    ("current", "target", "expected"),
    [
        (S.QUEUED, S.SENDING, S.SENDING),
        (S.SENDING, S.SENT, S.SENT),
        (S.SENT, S.DELIVERED, S.DELIVERED),
        (S.SENT, S.READ, S.READ),
        (S.READ, S.DELIVERED, S.READ),  # late delivered after read
        (S.DELIVERED, S.SENT, S.DELIVERED),
        (S.SENT, S.QUEUED, S.SENT),  # never backwards
        (S.SENT, S.UNDELIVERED, S.UNDELIVERED),
        (S.SENDING, S.FAILED, S.FAILED),
        (S.DELIVERED, S.FAILED, S.DELIVERED),  # a failure after delivery is not applied
        (S.READ, S.BOUNCED, S.READ),
        (S.UNDELIVERED, S.DELIVERED, S.UNDELIVERED),  # providers cannot un-fail
        (S.FAILED, S.READ, S.FAILED),
        (S.BOUNCED, S.FAILED, S.BOUNCED),
        (S.QUEUED, S.CANCELED, S.CANCELED),
        (S.SENT, S.CANCELED, S.SENT),
        (S.RECEIVED, S.READ, S.RECEIVED),
        (S.SENT, None, S.SENT),
    ],
)
def test_statuses_only_move_forward_and_terminal_ones_stay(
    current: str, target: str | None, expected: str
) -> None:
    assert resolve_status(current, target) == expected


def _event(
    external_id: str,
    event: TimelineEventType,
    status: MessageStatus | None,
    *,
    key: str | None = None,
    minutes: int = 0,
    **kwargs: object,
) -> ProviderEvent:
    return ProviderEvent(
        provider="twilio",
        external_id=external_id,
        event=event,
        status=status,
        occurred_at=utcnow() + timedelta(minutes=minutes),
        dedup_key=key or f"twilio:{external_id}:{event}",
        **kwargs,  # type: ignore[arg-type]
    )


async def _sent_attempt(session: AsyncSession, external_id: str, **kwargs: object):
    organization = await create_organization(session)
    client = await create_client(session, organization)
    log = await create_attempt_row(session, organization, client, status=S.SENT, **kwargs)
    log.provider = "twilio"
    log.external_id = external_id
    log.sent_at = utcnow()
    await session.flush()
    return organization, log


async def test_the_same_provider_event_twice_changes_and_publishes_once(
    session: AsyncSession, redis: ArqRedis
) -> None:
    organization, log = await _sent_attempt(session, "SMdup")
    async with listen(redis, organization.id) as bus:
        first = await delivery.apply_provider_event(
            session, event=_event("SMdup", TimelineEventType.DELIVERED, S.DELIVERED)
        )
        await commit_and_publish(session, redis)
        second = await delivery.apply_provider_event(
            session, event=_event("SMdup", TimelineEventType.DELIVERED, S.DELIVERED)
        )
        await commit_and_publish(session, redis)
        published = await bus.settle()
    assert first is not None and first.status_changed
    assert second is not None and not second.applied
    assert await timeline(session, log.id) == ["delivered"]
    assert [(e.event, e.previous_status, e.status) for e in published] == [
        ("delivered", "SENT", "DELIVERED")
    ]
    message = await reload(session, Message, log.message_id)
    assert message.status == S.DELIVERED


async def test_read_before_delivered_ends_read_with_both_events(session: AsyncSession) -> None:
    _, log = await _sent_attempt(session, "SMooo")
    read = await delivery.apply_provider_event(
        session, event=_event("SMooo", TimelineEventType.READ, S.READ, minutes=5)
    )
    late = await delivery.apply_provider_event(
        session, event=_event("SMooo", TimelineEventType.DELIVERED, S.DELIVERED, minutes=1)
    )
    assert read is not None and read.status == S.READ
    assert late is not None and late.applied and not late.status_changed
    log = await reload(session, CommunicationLog, log.id)
    assert log.status == S.READ
    assert await timeline(session, log.id) == ["read", "delivered"]
    # The real delivery time replaces the one read implied.
    assert log.delivered_at is not None and log.read_at is not None
    assert log.delivered_at < log.read_at


async def test_delivered_then_read_then_duplicate_delivered(session: AsyncSession) -> None:
    _, log = await _sent_attempt(session, "SMfwd")
    for event, status in (
        (TimelineEventType.DELIVERED, S.DELIVERED),
        (TimelineEventType.READ, S.READ),
        (TimelineEventType.DELIVERED, S.DELIVERED),
    ):
        await delivery.apply_provider_event(session, event=_event("SMfwd", event, status))
    log = await reload(session, CommunicationLog, log.id)
    assert log.status == S.READ
    assert await timeline(session, log.id) == ["delivered", "read"]


async def test_late_delivered_after_undelivered_keeps_the_failure(session: AsyncSession) -> None:
    _, log = await _sent_attempt(session, "SMfail")
    await delivery.apply_provider_event(
        session,
        event=_event(
            "SMfail",
            TimelineEventType.UNDELIVERED,
            S.UNDELIVERED,
            error_code="30003",
            error_message="Unreachable destination handset",
        ),
    )
    late = await delivery.apply_provider_event(
        session, event=_event("SMfail", TimelineEventType.DELIVERED, S.DELIVERED)
    )
    assert late is not None and late.applied and not late.status_changed
    log = await reload(session, CommunicationLog, log.id)
    assert (log.status, log.error_code, log.delivered_at) == (S.UNDELIVERED, "30003", None)
    assert log.failed_at is not None
    assert await timeline(session, log.id) == ["undelivered", "delivered"]
    message = await reload(session, Message, log.message_id)
    assert message.status == S.UNDELIVERED
    assert message.error_message == "Unreachable destination handset"


async def test_failure_after_delivery_is_recorded_not_applied(session: AsyncSession) -> None:
    _, log = await _sent_attempt(session, "SMlate")
    await delivery.apply_provider_event(
        session, event=_event("SMlate", TimelineEventType.DELIVERED, S.DELIVERED)
    )
    await delivery.apply_provider_event(
        session, event=_event("SMlate", TimelineEventType.FAILED, S.FAILED, error_code="30008")
    )
    log = await reload(session, CommunicationLog, log.id)
    assert (log.status, log.error_code) == (S.DELIVERED, None)
    assert await timeline(session, log.id) == ["delivered", "failed"]


async def test_engagement_events_set_timestamps_without_changing_status(
    session: AsyncSession, redis: ArqRedis
) -> None:
    organization, log = await _sent_attempt(session, "re_1", channel="email")
    async with listen(redis, organization.id) as bus:
        for key in ("svix-1", "svix-2", "svix-1"):  # the second open is another event
            await delivery.apply_provider_event(
                session, event=_event("re_1", TimelineEventType.OPENED, None, key=key)
            )
        await commit_and_publish(session, redis)
        published = await bus.settle()
    log = await reload(session, CommunicationLog, log.id)
    assert log.status == S.SENT and log.opened_at is not None
    assert await timeline(session, log.id) == ["opened", "opened"]
    assert [(e.event, e.previous_status, e.status) for e in published] == [
        ("opened", "SENT", "SENT"),
        ("opened", "SENT", "SENT"),
    ]


async def test_unknown_external_ids_are_ignored(session: AsyncSession) -> None:
    outcome = await delivery.apply_provider_event(
        session, event=_event("SMnobody", TimelineEventType.DELIVERED, S.DELIVERED)
    )
    assert outcome is None


async def test_an_event_finds_its_attempt_by_attempt_id_when_the_sid_was_never_saved(
    session: AsyncSession,
) -> None:
    organization = await create_organization(session)
    log = await create_attempt_row(session, organization, status=S.SENDING)
    outcome = await delivery.apply_provider_event(
        session,
        event=_event("SMnew", TimelineEventType.SENT, S.SENT, attempt_id=log.id),
    )
    assert outcome is not None and outcome.status == S.SENT
    log = await reload(session, CommunicationLog, log.id)
    assert (log.external_id, log.provider) == ("SMnew", "twilio")


async def test_whatsapp_failure_falls_back_to_email(session: AsyncSession) -> None:
    organization = await create_organization(session, credit_balance=10)
    session.add(
        ChannelConfig(
            organization_id=organization.id,
            preferences={"fallbackEnabled": True, "fallbackChannel": "email"},
        )
    )
    client = await create_client(session, organization)
    log = await create_attempt_row(session, organization, client, channel="whatsapp")
    log.status = S.SENDING
    await session.flush()
    await delivery.record_failure(
        session,
        log_id=log.id,
        error=ProviderError("not_on_whatsapp", "no WhatsApp", transient=False, provider="x"),
    )
    attempts = (
        (
            await session.execute(
                select(CommunicationLog)
                .where(CommunicationLog.message_id == log.message_id)
                .order_by(CommunicationLog.attempt_number)
            )
        )
        .scalars()
        .all()
    )
    assert [(a.channel, a.status, a.attempt_number) for a in attempts] == [
        ("whatsapp", S.FAILED, 1),
        ("email", S.QUEUED, 2),
    ]
    assert attempts[1].recipient == client.email
    message = await reload(session, Message, log.message_id)
    assert (message.status, message.recipient) == (S.QUEUED, client.email)
    # A later event about the failed WhatsApp attempt does not fall back again.
    await delivery.apply_transition(
        session,
        log_id=log.id,
        transition=delivery.Transition(
            event=TimelineEventType.UNDELIVERED,
            status=S.UNDELIVERED,
            occurred_at=utcnow(),
            dedup_key="x",
        ),
    )
    count = await session.execute(
        select(CommunicationLog.id).where(CommunicationLog.message_id == log.message_id)
    )
    assert len(count.all()) == 2


async def test_no_fallback_unless_enabled(session: AsyncSession) -> None:
    organization = await create_organization(session, credit_balance=10)
    client = await create_client(session, organization)
    log = await create_attempt_row(session, organization, client, channel="whatsapp")
    await delivery.record_failure(
        session, log_id=log.id, error=ProviderError("x", "y", transient=False)
    )
    count = await session.execute(
        select(CommunicationLog.id).where(CommunicationLog.message_id == log.message_id)
    )
    assert len(count.all()) == 1
