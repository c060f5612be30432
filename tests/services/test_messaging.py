from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from arq.connections import ArqRedis
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mensajero.db import create_sessionmaker, transaction
from mensajero.events import take_pending
from mensajero.models import (
    Channel,
    CommunicationLog,
    CommunicationType,
    CreditLedgerEntry,
    LedgerEntryKind,
    LogEvent,
    Message,
    MessageStatus,
    Organization,
)
from mensajero.models import base as model_base
from mensajero.outbox import enqueue_jobs, pending_jobs, take_pending_jobs
from mensajero.repositories import credit as credits_repository
from mensajero.services import communication_config, credits, messaging
from mensajero.services.errors import InsufficientCredits, InvalidInput, NotFound
from mensajero.services.segments import SmsEncoding, count_segments
from mensajero.settings import Settings
from tests.conftest import Backend
from tests.factories import create_client, create_organization, create_tag, tag_client

SANTIAGO_23H = datetime(2026, 7, 15, 3, 0, tzinfo=UTC)  # 23:00 in Santiago (UTC-4 in July)


@pytest.mark.parametrize(
    ("text", "encoding", "segments"),
    [
        ("a" * 160, SmsEncoding.GSM7, 1),
        ("a" * 161, SmsEncoding.GSM7, 2),
        ("a" * 306, SmsEncoding.GSM7, 2),
        ("a" * 307, SmsEncoding.GSM7, 3),
        ("€" * 80, SmsEncoding.GSM7, 1),  # extension characters take two septets
        ("€" * 81, SmsEncoding.GSM7, 2),
        ("a" * 152 + "€", SmsEncoding.GSM7, 1),  # 154 septets still fit in one
        ("a" * 159 + "€", SmsEncoding.GSM7, 2),
        ("ó" * 70, SmsEncoding.UCS2, 1),
        ("ó" * 71, SmsEncoding.UCS2, 2),
        ("ó" * 134, SmsEncoding.UCS2, 2),
        ("ó" * 135, SmsEncoding.UCS2, 3),
        ("😀" * 35, SmsEncoding.UCS2, 1),  # a surrogate pair is two code units
        ("😀" * 36, SmsEncoding.UCS2, 2),
        ("¡Oferta! 30% de descuento", SmsEncoding.GSM7, 1),
        ("", SmsEncoding.GSM7, 0),
    ],
)
def test_segments(text: str, encoding: SmsEncoding, segments: int) -> None:
    counted = count_segments(text)
    assert (counted.encoding, counted.segments) == (encoding, segments)


def test_uuid7_strings_are_unique_sorted_version_7() -> None:
    ids = list(messaging.uuid7_strings(1000))
    assert len(set(ids)) == 1000 and ids == sorted(ids)
    assert all(uuid.UUID(value).version == 7 for value in ids)


def test_uuid7_strings_carry_into_the_fourth_group(monkeypatch: pytest.MonkeyPatch) -> None:
    # A random start 3 below a 48-bit boundary: the counter carries into the
    # fourth group after three ids, which is formatted once per run.
    start = (1 << 60) | ((1 << 48) - 3)
    monkeypatch.setattr(model_base.os, "urandom", lambda size: start.to_bytes(size, "big"))
    ids = list(messaging.uuid7_strings(6))
    assert [uuid.UUID(value).int & ((1 << 62) - 1) for value in ids] == [
        start + offset for offset in range(6)
    ]
    assert ids == sorted(ids) and all(str(uuid.UUID(value)) == value for value in ids)
    assert [value[19:23] for value in ids] == ["9000"] * 3 + ["9001"] * 3


async def _funded(session: AsyncSession, credits_amount: int = 1000, **kw: object) -> Organization:
    organization = await create_organization(session, **kw)
    await credits.top_up(session, organization_id=organization.id, amount=credits_amount)
    return organization


async def _count(session: AsyncSession, model: type, organization: Organization) -> int:
    result = await session.execute(
        select(func.count()).select_from(model).where(model.organization_id == organization.id)
    )
    return int(result.scalar_one())


async def test_send_by_tags_dedups_skips_invalid_and_uses_the_country(
    session: AsyncSession,
) -> None:
    organization = await _funded(session)
    vip = await create_tag(session, organization)
    buyers = await create_tag(session, organization)
    other = await create_tag(session, organization)
    both = await create_client(session, organization)  # in two tags: one message
    await tag_client(session, both, vip)
    await tag_client(session, both, buyers)
    same_phone = await create_client(session, organization, phone_e164=both.phone_e164)
    await tag_client(session, same_phone, buyers)  # duplicate recipient: dropped
    local = await create_client(
        session, organization, phone="300 123 4567", phone_e164=None, country=None
    )
    await tag_client(session, local, vip)  # normalized with the request's country
    invalid = await create_client(session, organization, phone="12", phone_e164=None)
    await tag_client(session, invalid, vip)  # skipped silently
    deleted = await create_client(session, organization, deleted_at=datetime.now(UTC))
    await tag_client(session, deleted, vip)
    untagged = await create_client(session, organization)
    await tag_client(session, untagged, other)

    result = await messaging.send_sms_by_tags(
        session,
        organization_id=organization.id,
        message="Hola",
        tag_ids=[vip.id, str(buyers.id)],
        country="co",
    )

    assert result.queue_id.startswith("sms-") and result.channel == Channel.SMS
    assert sorted(m.recipient for m in result.messages) == sorted(
        [both.phone_e164, "+573001234567"]
    )
    assert await _count(session, Message, organization) == 2
    assert await _count(session, CommunicationLog, organization) == 2
    logs = (
        (
            await session.execute(
                select(CommunicationLog).where(CommunicationLog.organization_id == organization.id)
            )
        )
        .scalars()
        .all()
    )
    assert {log.status for log in logs} == {MessageStatus.QUEUED}
    assert {log.cost for log in logs} == {1}
    events = (
        (
            await session.execute(
                select(LogEvent.event).where(LogEvent.log_id.in_([log.id for log in logs]))
            )
        )
        .scalars()
        .all()
    )
    assert sorted(events) == ["created", "created", "queued", "queued"]
    messages = (
        (await session.execute(select(Message).where(Message.queue_id == result.queue_id)))
        .scalars()
        .all()
    )
    assert {str(m.id) for m in messages} == {m.id for m in result.messages}
    assert {m.country_code for m in messages} == {"57"}
    await session.refresh(organization)
    assert organization.credit_balance == 998
    assert await credits.ledger_balance(session, organization_id=organization.id) == 998
    jobs = pending_jobs(session)
    assert [job.job_name for job in jobs] == ["delivery.dispatch"]
    assert sorted(jobs[0].args[0]) == sorted(str(log.id) for log in logs)
    assert {event.status for event in take_pending(session)} == {"QUEUED"}


async def test_send_by_tags_prices_segments_and_batches_jobs(session: AsyncSession) -> None:
    organization = await _funded(session)
    tag = await create_tag(session, organization)
    for _ in range(5):
        await tag_client(session, await create_client(session, organization), tag)
    settings = Settings(dispatch_batch_size=2, price_sms_segment=3)

    result = await messaging.send_sms_by_tags(
        session,
        organization_id=organization.id,
        message="ó" * 71,  # UCS-2, two segments
        tag_ids=[tag.id],
        settings=settings,
    )

    assert result.segments == 2 and result.cost == 5 * 2 * 3
    await session.refresh(organization)
    assert organization.credit_balance == 1000 - 30
    jobs = pending_jobs(session)
    assert [len(job.args[0]) for job in jobs] == [2, 2, 1]
    assert len({job.job_id for job in jobs}) == 3


async def test_nobody_left_means_no_debit_no_rows_no_jobs(session: AsyncSession) -> None:
    organization = await _funded(session, 10)
    tag = await create_tag(session, organization)
    invalid = await create_client(session, organization, phone="abc", phone_e164=None)
    await tag_client(session, invalid, tag)

    result = await messaging.send_sms_by_tags(
        session, organization_id=organization.id, message="Hola", tag_ids=[tag.id]
    )

    assert (result.queue_id, result.messages) == ("", [])
    assert await _count(session, Message, organization) == 0
    assert pending_jobs(session) == []
    await session.refresh(organization)
    assert organization.credit_balance == 10


async def test_insufficient_credits_raise_with_required_and_available(
    session: AsyncSession,
) -> None:
    organization = await _funded(session, 2)
    tag = await create_tag(session, organization)
    for _ in range(3):
        await tag_client(session, await create_client(session, organization), tag)

    with pytest.raises(InsufficientCredits) as raised:
        await messaging.send_sms_by_tags(
            session, organization_id=organization.id, message="Hola", tag_ids=[tag.id]
        )

    assert (raised.value.required, raised.value.available) == (3, 2)
    assert await _count(session, Message, organization) == 0
    assert pending_jobs(session) == []


async def test_unknown_and_foreign_tags_are_named(session: AsyncSession) -> None:
    organization = await _funded(session)
    other = await create_organization(session)
    mine = await create_tag(session, organization)
    foreign = await create_tag(session, other)
    missing = uuid.uuid4()

    with pytest.raises(messaging.UnknownTags) as raised:
        await messaging.send_sms_by_tags(
            session,
            organization_id=organization.id,
            message="Hola",
            tag_ids=[mine.id, foreign.id, missing, "not-a-uuid"],
        )

    assert sorted(raised.value.tag_ids) == sorted(["not-a-uuid", str(foreign.id), str(missing)])


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"message": "  "}, "message"),
        ({"message": "a" * 1531}, "message"),  # 11 segments
        ({"country": "XX"}, "country"),
        ({"tag_ids": []}, "tagIds"),
    ],
)
async def test_send_by_tags_validates(
    session: AsyncSession, kwargs: dict[str, object], field: str
) -> None:
    organization = await _funded(session)
    tag = await create_tag(session, organization)
    arguments: dict[str, object] = {"message": "Hola", "tag_ids": [tag.id]}
    arguments.update(kwargs)
    with pytest.raises(InvalidInput) as raised:
        await messaging.send_sms_by_tags(
            session,
            organization_id=organization.id,
            **arguments,  # type: ignore[arg-type]
        )
    assert raised.value.field == field


async def test_quiet_hours_schedule_a_send_until_the_window_ends(session: AsyncSession) -> None:
    organization = await _funded(session, timezone="UTC")
    await communication_config.update_config(
        session,
        organization_id=organization.id,
        changes={
            "preferences": {
                "quietHours": {
                    "enabled": True,
                    "start": "22:00",
                    "end": "08:00",
                    "timezone": "America/Santiago",
                }
            }
        },
    )
    tag = await create_tag(session, organization)
    await tag_client(session, await create_client(session, organization), tag)

    result = await messaging.send_sms_by_tags(
        session,
        organization_id=organization.id,
        message="Hola",
        tag_ids=[tag.id],
        now=SANTIAGO_23H,
    )

    eight_am_santiago = datetime(2026, 7, 15, 12, 0, tzinfo=UTC)
    assert result.scheduled_until == eight_am_santiago
    log = (
        await session.execute(
            select(CommunicationLog).where(CommunicationLog.organization_id == organization.id)
        )
    ).scalar_one()
    assert log.status == MessageStatus.SCHEDULED and log.not_before == eight_am_santiago
    events = (
        (await session.execute(select(LogEvent.event).where(LogEvent.log_id == log.id)))
        .scalars()
        .all()
    )
    assert sorted(events) == ["created", "scheduled"]
    (job,) = pending_jobs(session)
    assert job.defer_by == 9 * 3600


async def test_receipts_are_not_held_by_quiet_hours(session: AsyncSession) -> None:
    organization = await _funded(session, timezone="America/Santiago")
    await communication_config.update_config(
        session,
        organization_id=organization.id,
        changes={"preferences": {"quietHours": {"enabled": True}}},
    )
    client = await create_client(session, organization)

    sent = await messaging.send_message(
        session,
        organization_id=organization.id,
        client_id=client.id,
        channel=Channel.SMS,
        body="Recibo de pago",
        communication_type=CommunicationType.RECEIPT,
        now=SANTIAGO_23H,
    )

    assert sent.log.status == MessageStatus.QUEUED and sent.log.not_before is None


async def test_send_message_on_each_channel_and_metadata(session: AsyncSession) -> None:
    organization = await _funded(session)
    client = await create_client(session, organization)
    settings = Settings(price_email_message=2, price_whatsapp_message=5)

    email = await messaging.send_message(
        session,
        organization_id=organization.id,
        client_id=client.id,
        channel=Channel.EMAIL,
        body="Hola Juan",
        subject="Recordatorio",
        html="<p>Hola Juan</p>",
        template_id="tpl_session_reminder",
        communication_type=CommunicationType.SESSION_REMINDER,
        metadata={"sessionId": "sess_001", "session": {"id": "sess_001"}},
        settings=settings,
    )
    whatsapp = await messaging.send_message(
        session,
        organization_id=organization.id,
        client_id=client.id,
        channel=Channel.WHATSAPP,
        body="Hola",
        settings=settings,
    )

    assert email.log.recipient == client.email and email.log.cost == 2
    assert email.message.content_type == "HTML"
    assert email.message.metadata_ == {"sessionId": "sess_001", "session": {"id": "sess_001"}}
    assert whatsapp.log.recipient == client.phone_e164 and whatsapp.log.cost == 5
    await session.refresh(organization)
    assert organization.credit_balance == 1000 - 7
    assert [len(job.args[0]) for job in pending_jobs(session)] == [1, 1]


async def test_send_message_to_a_client_without_an_address_names_the_field(
    session: AsyncSession,
) -> None:
    organization = await _funded(session)
    client = await create_client(session, organization, email=None)
    with pytest.raises(InvalidInput) as raised:
        await messaging.send_message(
            session,
            organization_id=organization.id,
            client_id=client.id,
            channel=Channel.EMAIL,
            body="Hola",
            subject="Hola",
        )
    assert raised.value.field == "email"
    with pytest.raises(NotFound):
        await messaging.send_message(
            session,
            organization_id=organization.id,
            client_id=uuid.uuid4(),
            channel=Channel.SMS,
            body="Hola",
        )


async def test_resend_adds_an_attempt_on_another_channel_and_costs_again(
    session: AsyncSession,
) -> None:
    organization = await _funded(session, 10)
    client = await create_client(session, organization)
    sent = await messaging.send_message(
        session,
        organization_id=organization.id,
        client_id=client.id,
        channel=Channel.EMAIL,
        body="Hola",
        subject="Hola",
    )

    result = await messaging.resend(
        session,
        organization_id=organization.id,
        log_id=sent.log.id,
        channel=Channel.WHATSAPP,
        custom_message="Mensaje alternativo",
    )

    assert result.original_id == sent.log.id and result.new_id != sent.log.id
    assert result.channel == Channel.WHATSAPP and result.status == MessageStatus.QUEUED
    assert result.log.message_id == sent.message.id
    assert result.log.attempt_number == 2
    assert result.log.recipient == client.phone_e164
    assert result.log.body_override == "Mensaje alternativo"
    await session.refresh(organization)
    assert organization.credit_balance == 8
    with pytest.raises(NotFound):
        await messaging.resend(session, organization_id=uuid.uuid4(), log_id=sent.log.id)


async def test_deferred_jobs_reach_the_queue_only_when_enqueued_after_commit(
    session: AsyncSession, redis: ArqRedis
) -> None:
    organization = await _funded(session)
    client = await create_client(session, organization)
    settings = Settings()
    await messaging.send_message(
        session,
        organization_id=organization.id,
        client_id=client.id,
        channel=Channel.SMS,
        body="Hola",
        settings=settings,
    )
    assert await redis.zcard(settings.queue_name) == 0

    await enqueue_jobs(redis, take_pending_jobs(session))

    assert await redis.zcard(settings.queue_name) == 1


async def test_ledger_records_the_debit_of_a_batch(session: AsyncSession) -> None:
    organization = await _funded(session)
    tag = await create_tag(session, organization)
    await tag_client(session, await create_client(session, organization), tag)
    result = await messaging.send_sms_by_tags(
        session, organization_id=organization.id, message="Hola", tag_ids=[tag.id]
    )
    entry = (
        await session.execute(
            select(CreditLedgerEntry).where(CreditLedgerEntry.queue_id == result.queue_id)
        )
    ).scalar_one()
    assert (entry.kind, entry.amount, entry.message_count) == (LedgerEntryKind.DEBIT, -1, 1)


async def test_concurrent_sends_never_overdraw_and_balance_equals_the_ledger(
    backend: Backend, redis: ArqRedis
) -> None:
    """20 sends at once, each on its own connection and committing, worth more than the balance."""
    sessionmaker = create_sessionmaker(backend.engine)
    settings = Settings()
    recipients_per_send, initial = 3, 40  # room for 13 of the 20 sends
    async with transaction(sessionmaker) as session:
        organization = await create_organization(session)
        await credits.top_up(session, organization_id=organization.id, amount=initial)
        tag = await create_tag(session, organization)
        for _ in range(recipients_per_send):
            await tag_client(session, await create_client(session, organization), tag)
    organization_id, tag_id = organization.id, tag.id

    async def send() -> bool:
        try:
            async with transaction(sessionmaker, redis=redis) as session:
                await messaging.send_sms_by_tags(
                    session,
                    organization_id=organization_id,
                    message="Hola",
                    tag_ids=[tag_id],
                    settings=settings,
                )
        except InsufficientCredits:
            return False
        return True

    try:
        outcomes = await asyncio.gather(*(send() for _ in range(20)))
        successes = sum(outcomes)
        async with sessionmaker() as session:
            balance = await credits_repository.get_balance(session, organization_id)
            ledger = await credits.ledger_balance(session, organization_id=organization_id)
            messages = await session.scalar(
                select(func.count())
                .select_from(Message)
                .where(Message.organization_id == organization_id)
            )
        assert successes == initial // recipients_per_send
        assert balance is not None and balance >= 0
        assert successes * recipients_per_send + balance == initial
        assert ledger == balance
        assert messages == successes * recipients_per_send
        assert await redis.zcard(settings.queue_name) == successes
    finally:
        async with transaction(sessionmaker) as session:
            await session.execute(delete(Organization).where(Organization.id == organization_id))
