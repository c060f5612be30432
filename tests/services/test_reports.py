"""Reports against hand-built datasets whose answers are known, on both backends."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from mensajero.models import (
    Client,
    CommunicationLog,
    CreditLedgerEntry,
    Member,
    Message,
    Organization,
)
from mensajero.repositories.report import (
    ConversationReportRepository,
    ConversationWindow,
    MessageCountReportRepository,
    ReportRepository,
)
from mensajero.services import report as report_service
from mensajero.services.errors import InvalidInput, NotFound
from tests.factories import (
    Caller,
    create_caller,
    create_client,
    create_conversation,
    create_log,
    create_member,
    create_message,
    create_tag,
    tag_client,
)

BASE = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


async def assert_attempt_rollup_exact(session: AsyncSession, organization_id: uuid.UUID) -> None:
    repository = ReportRepository(session, organization_id)
    rolled = await repository.rolled_up_counts(by_hour=True)
    raw = await repository.raw_grouped_counts(by_hour=True)
    key = lambda g: (g.bucket, g.channel, g.communication_type)  # noqa: E731
    assert sorted(rolled, key=key) == sorted(raw, key=key)


async def test_attempt_rollup_follows_every_write(session: AsyncSession) -> None:
    caller = await create_caller(session)
    client = await create_client(session, caller.organization)
    first = await create_message(session, caller.organization, client=client, created_at=BASE)
    second = await create_message(
        session, caller.organization, client=client, channel="email", created_at=BASE
    )
    await create_log(session, second, channel="email", status="SENT", created_at=BASE)
    await assert_attempt_rollup_exact(session, caller.organization.id)

    # The state machine's kinds of change: status, delivery, engagement, reply.
    await session.execute(
        update(CommunicationLog)
        .where(CommunicationLog.message_id == first.id)
        .values(status="DELIVERED", delivered_at=BASE, response_received_at=BASE)
    )
    await session.execute(
        update(CommunicationLog)
        .where(CommunicationLog.message_id == second.id)
        .values(status="DELIVERED", delivered_at=BASE, opened_at=BASE, clicked_at=BASE)
    )
    await assert_attempt_rollup_exact(session, caller.organization.id)
    groups = await ReportRepository(session, caller.organization.id).rolled_up_counts()
    email = next(g.counts for g in groups if g.channel == "email")
    sms = next(g.counts for g in groups if g.channel == "sms")
    assert (email.total, email.sent, email.delivered, email.opened, email.clicked) == (
        2,
        2,
        2,
        2,
        2,
    )
    assert (sms.total, sms.sent, sms.delivered, sms.responded) == (1, 1, 1, 1)

    # A soft-deleted message takes its attempts out; restoring puts them back.
    await session.execute(update(Message).where(Message.id == second.id).values(deleted_at=BASE))
    await assert_attempt_rollup_exact(session, caller.organization.id)
    groups = await ReportRepository(session, caller.organization.id).rolled_up_counts()
    assert [g.channel for g in groups] == ["sms"]
    await session.execute(update(Message).where(Message.id == second.id).values(deleted_at=None))
    await assert_attempt_rollup_exact(session, caller.organization.id)

    await session.execute(delete(CommunicationLog).where(CommunicationLog.message_id == first.id))
    await assert_attempt_rollup_exact(session, caller.organization.id)


# --- a hand-built organization whose reports are known ---------------------------------------

BOGOTA = "America/Bogota"  # UTC-5 all year
DAY = timedelta(days=1)


@dataclass
class Dataset:
    caller: Caller
    other: Caller
    ana: Client
    beto: Client
    carla: Client
    agent_one: Member
    agent_two: Member


async def build_dataset(session: AsyncSession) -> Dataset:
    caller = await create_caller(session, timezone=BOGOTA, credit_balance=955)
    org = caller.organization
    agent_one = await create_member(session, org, name="Agente Uno")
    agent_two = await create_member(session, org, name="Agente Dos")
    ana = await create_client(session, org, name="Ana Pérez", email="ana@example.com")
    beto = await create_client(session, org, name="Beto Ruiz", email="beto@example.com")
    carla = await create_client(session, org, name="Carla Gómez", email="carla@example.com")
    vip = await create_tag(session, org, name="vip")
    await tag_client(session, ana, vip)
    await tag_client(session, beto, vip)
    await create_tag(session, org, name="vacía")
    conversation_rows = (
        # client, opened, first response s, resolution s, category, outcome, agent, last move
        (ana, BASE, 60, 600, "ventas", "sale", agent_one, BASE + timedelta(minutes=10)),
        (ana, BASE + DAY, 180, None, "soporte", None, agent_one, BASE + DAY + timedelta(minutes=5)),
        (beto, BASE + 2 * DAY, 120, 1200, "ventas", "no_sale", agent_two, BASE + 2 * DAY + HOUR),
        (carla, BASE + 3 * DAY, None, None, None, None, None, BASE + 3 * DAY),
    )
    for client, opened, first, resolution, category, outcome, agent, last in conversation_rows:
        await create_conversation(
            session,
            org,
            client,
            opened_at=opened,
            last_message_at=last,
            first_response_seconds=first,
            first_response_at=opened + timedelta(seconds=first) if first else None,
            resolution_seconds=resolution,
            resolved_at=opened + timedelta(seconds=resolution) if resolution else None,
            status="resolved" if resolution else "open",
            category=category,
            resolution_outcome=outcome,
            assigned_member_id=agent.id if agent else None,
        )
    # Attempts around Bogota's midnight of March 10th (05:00 UTC).
    await create_message(
        session, org, client=ana, status="DELIVERED", created_at=at("2026-03-10T03:30")
    )
    await create_message(session, org, client=ana, status="READ", created_at=at("2026-03-10T05:30"))
    await create_message(
        session,
        org,
        client=beto,
        channel="email",
        status="BOUNCED",
        created_at=at("2026-03-10T05:45"),
    )
    await create_message(
        session,
        org,
        client=beto,
        channel="whatsapp",
        direction="inbound",
        status="RECEIVED",
        created_at=at("2026-03-10T06:00"),
    )
    opened = await create_message(
        session,
        org,
        client=carla,
        channel="email",
        status="DELIVERED",
        created_at=at("2026-03-10T06:10"),
    )
    await session.execute(
        update(CommunicationLog)
        .where(CommunicationLog.message_id == opened.id)
        .values(opened_at=at("2026-03-10T07:00"))
    )
    ledger = (
        ("topup", 1000, None, 0, "2026-02-15T15:00"),
        ("debit", -30, "sms", 30, "2026-03-01T15:00"),
        ("debit", -20, "email", 10, "2026-03-05T15:00"),
        ("refund", 5, "sms", 1, "2026-03-06T15:00"),
        # March 31st, 22:00 in Bogota: March's, though April in UTC.
        ("debit", -0, "whatsapp", 0, "2026-04-01T03:00"),
    )
    balance = 0
    for kind, amount, channel, messages, when in ledger:
        balance += amount
        session.add(
            CreditLedgerEntry(
                organization_id=org.id,
                kind=kind,
                amount=amount,
                balance_after=balance,
                channel=channel,
                message_count=messages,
                created_at=at(when),
            )
        )
    # Another organization, busy with the same kinds of rows: never seen above.
    other = await create_caller(session, timezone=BOGOTA)
    stranger = await create_client(session, other.organization, name="Ana Ajena")
    await create_conversation(
        session,
        other.organization,
        stranger,
        opened_at=BASE,
        first_response_seconds=5,
        category="ventas",
        last_message_at=BASE + 4 * DAY,
    )
    await create_message(
        session,
        other.organization,
        client=stranger,
        status="DELIVERED",
        created_at=at("2026-03-10T06:00"),
    )
    session.add(
        CreditLedgerEntry(
            organization_id=other.organization.id,
            kind="topup",
            amount=7,
            balance_after=7,
            created_at=at("2026-03-01T00:00"),
        )
    )
    await session.flush()
    return Dataset(caller, other, ana, beto, carla, agent_one, agent_two)


HOUR = timedelta(hours=1)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


async def test_communication_stats_group_by_local_day_from_the_rollup(
    session: AsyncSession,
) -> None:
    data = await build_dataset(session)
    stats = await report_service.communication_stats(
        session,
        organization_id=data.caller.organization.id,
        start=date(2026, 3, 9),
        end=date(2026, 3, 10),
        group_by="day",
    )
    # 03:30 UTC is still March 9th in Bogota.
    assert [(day.isoformat(), c.sent, c.delivered) for day, c in stats.periods] == [
        ("2026-03-09", 1, 1),
        ("2026-03-10", 3, 2),
    ]
    assert (stats.totals.sent, stats.totals.delivered, stats.totals.bounced) == (4, 3, 1)
    assert stats.rates == report_service.Rates(delivery=75.0, open=33.33, click=0.0, bounce=25.0)
    month = await report_service.communication_stats(
        session,
        organization_id=data.caller.organization.id,
        start=date(2026, 3, 1),
        end=date(2026, 3, 31),
        group_by="week",
    )
    assert [(d.isoformat(), c.sent) for d, c in month.periods if c.sent] == [("2026-03-09", 4)]


async def test_messaging_report(session: AsyncSession) -> None:
    data = await build_dataset(session)
    report = await report_service.messaging_report(
        session,
        organization_id=data.caller.organization.id,
        since=at("2026-03-09T05:00"),  # Bogota's midnight of March 9th
        now=at("2026-03-10T12:00"),
    )
    assert (report.outbound.total, report.outbound.delivered, report.inbound) == (4, 3, 1)
    assert (report.rates.delivery, report.rates.open, report.rates.bounce) == (75.0, 33.33, 25.0)
    assert report.read_rate == 33.33
    assert [
        (d.day.isoformat(), d.outbound, d.inbound, d.delivered, d.failed) for d in report.by_day
    ] == [
        ("2026-03-09", 1, 0, 1, 0),
        ("2026-03-10", 3, 1, 2, 1),
    ]
    assert report.by_status == {"BOUNCED": 1, "DELIVERED": 2, "READ": 1, "RECEIVED": 1}
    channels = {c.channel: c for c in report.by_channel}
    assert (channels["sms"].outbound.total, channels["sms"].rates.delivery) == (2, 100.0)
    assert (channels["email"].outbound.total, channels["email"].rates.delivery) == (2, 50.0)
    assert channels["whatsapp"].inbound == 1
    # Every conversation opened after ``since`` (all on WhatsApp).
    assert report.conversations.total == 4
    assert report.conversations.times.median_resolution_seconds == 900.0
    assert channels["whatsapp"].times is not None
    assert channels["whatsapp"].times.avg_first_response_seconds == 120.0
    assert channels["sms"].times is None
    later = await report_service.messaging_report(
        session,
        organization_id=data.caller.organization.id,
        since=BASE + DAY,
        now=at("2026-03-14T12:00"),
    )
    assert later.conversations.total == 3 and later.outbound.total == 0


async def test_conversation_times_agents_and_tags(session: AsyncSession) -> None:
    data = await build_dataset(session)
    org_id = data.caller.organization.id
    summary = await report_service.report_summary(
        session, organization_id=org_id, now=at("2026-03-10T12:00")
    )
    conversations = summary.conversations
    assert (conversations.total, conversations.open, conversations.resolved) == (4, 2, 2)
    assert conversations.unassigned == 1
    assert conversations.times == report_service.DurationStats(
        responded=3,
        avg_first_response_seconds=120.0,
        median_first_response_seconds=120.0,
        resolved=2,
        avg_resolution_seconds=900.0,
        median_resolution_seconds=900.0,
    )
    assert (summary.balance, summary.clients, summary.messages_total) == (955, 3, 5)
    assert (summary.messages_outbound, summary.messages_inbound) == (4, 1)
    agents = {a.member_id: a for a in summary.agents}
    one = agents[data.agent_one.id]
    assert (one.conversations, one.open, one.resolved, one.name) == (2, 1, 1, "Agente Uno")
    assert one.times.median_first_response_seconds == 120.0  # (60 + 180) / 2
    assert one.times.median_resolution_seconds == 600.0
    assert agents[data.agent_two.id].times.avg_resolution_seconds == 1200.0
    assert agents[None].conversations == 1 and agents[None].times.responded == 0
    assert [a.member_id for a in summary.agents][-1] is None  # busiest first
    tags = {t.name: t for t in summary.tags}
    # Ana's two messages and Beto's two since the window's start (Feb 9th local).
    assert (tags["vip"].clients, tags["vip"].messages, tags["vip"].conversations) == (2, 4, 3)
    assert (tags["vacía"].clients, tags["vacía"].messages) == (0, 0)


async def test_billing_report_by_local_month(session: AsyncSession) -> None:
    data = await build_dataset(session)
    billing = await report_service.billing_report(
        session, organization_id=data.caller.organization.id, now=at("2026-04-01T12:00")
    )
    assert (billing.balance, billing.topped_up, billing.debited, billing.refunded) == (
        955,
        1000,
        50,
        5,
    )
    channels = {c.channel: c for c in billing.consumption_by_channel}
    assert (channels["sms"].debited, channels["sms"].refunded, channels["sms"].net) == (30, 5, 25)
    assert (channels["email"].net, channels["email"].messages) == (20, 10)
    months = [
        (m.month.isoformat(), m.debited, m.refunded, m.topped_up, m.net_consumption)
        for m in billing.months[:3]
    ]
    assert months == [
        ("2026-04-01", 0, 0, 0, 0),
        ("2026-03-01", 50, 5, 0, 45),
        ("2026-02-01", 0, 0, 1000, 0),
    ]
    assert len(billing.months) == 12
    assert [t.amount for t in billing.topups] == [1000]


async def test_customers_pages_filters_and_detail(session: AsyncSession) -> None:
    data = await build_dataset(session)
    org_id = data.caller.organization.id

    async def page(**options: object) -> report_service.CustomerPage:
        return await report_service.customers_report(
            session, organization_id=org_id, query=report_service.CustomerQuery(**options)
        )

    first = await page(limit=2)
    assert [c.client_id for c in first.customers] == [data.carla.id, data.beto.id]
    assert first.next_cursor == first.customers[-1].cursor
    second = await page(limit=2, cursor=first.next_cursor)
    assert [c.client_id for c in second.customers] == [data.ana.id]
    assert second.next_cursor is None
    ana = second.customers[0]
    assert (ana.conversations, ana.open, ana.resolved) == (2, 1, 1)
    assert (ana.times.avg_first_response_seconds, ana.times.median_first_response_seconds) == (
        120.0,
        120.0,
    )
    assert ana.times.avg_resolution_seconds == 600.0
    assert ana.first_contact_at == BASE and ana.last_contact_at == BASE + DAY + timedelta(minutes=5)

    ventas = await page(category="ventas")
    assert [c.client_id for c in ventas.customers] == [data.beto.id, data.ana.id]
    # Within the filter Ana has only the conversation in "ventas".
    assert ventas.customers[1].conversations == 1
    assert [c.client_id for c in (await page(resolution_outcome="sale")).customers] == [data.ana.id]
    assert [c.client_id for c in (await page(search="PÉREZ")).customers] == [data.ana.id]
    assert [c.client_id for c in (await page(search="ana")).customers] == [data.ana.id]
    window = await page(since=BASE + DAY, until=BASE + 3 * DAY)
    assert [c.client_id for c in window.customers] == [data.beto.id, data.ana.id]
    with pytest.raises(InvalidInput):
        await page(cursor="not-a-cursor")
    with pytest.raises(InvalidInput):
        await page(limit=0)

    detail = await report_service.customer_report(
        session, organization_id=org_id, client_id=data.beto.id
    )
    assert (detail.conversations.total, detail.conversations.resolved) == (1, 1)
    assert detail.by_outcome == {"no_sale": 1} and detail.by_category == {"ventas": 1}
    assert (detail.attempts.total, detail.attempts.bounced, detail.inbound) == (1, 1, 1)
    kinds = [entry.kind for entry in detail.timeline]
    assert kinds == [
        "conversation_resolved",
        "first_response",
        "conversation_opened",
        "message_inbound",
        "message_outbound",
    ]
    with pytest.raises(NotFound):
        await report_service.customer_report(
            session, organization_id=data.other.organization.id, client_id=data.beto.id
        )


async def test_local_days_follow_a_change_of_time_zone(session: AsyncSession) -> None:
    data = await build_dataset(session)
    org_id = data.caller.organization.id

    async def days(zone_start: date, zone_end: date) -> list[tuple[str, int]]:
        stats = await report_service.communication_stats(
            session, organization_id=org_id, start=zone_start, end=zone_end, group_by="day"
        )
        return [(day.isoformat(), counts.sent) for day, counts in stats.periods]

    assert await days(date(2026, 3, 9), date(2026, 3, 10)) == [
        ("2026-03-09", 1),
        ("2026-03-10", 3),
    ]
    # In Tokyo (UTC+9) all four attempts fall on March 10th; PostgreSQL's daily rollup
    # is rebuilt by the change, SQLite folds the hourly one.
    await session.execute(
        update(Organization).where(Organization.id == org_id).values(timezone="Asia/Tokyo")
    )
    session.expire_all()
    assert await days(date(2026, 3, 9), date(2026, 3, 10)) == [
        ("2026-03-09", 0),
        ("2026-03-10", 4),
    ]
    # The daily rollup agrees with the raw attempts, hour by hour folded into Tokyo days.
    repository = ReportRepository(session, org_id)
    raw = await repository.raw_grouped_counts(by_hour=True)
    tokyo = ZoneInfo("Asia/Tokyo")
    raw_by_day: dict[date, int] = {}
    for group in raw:
        assert group.bucket is not None
        day = group.bucket.astimezone(tokyo).date()
        raw_by_day[day] = raw_by_day.get(day, 0) + group.counts.total
    rolled = await repository.rolled_up_counts(
        created=report_service.local_days(date(2026, 3, 1), date(2026, 3, 31), tokyo),
        local_days=tokyo,
    )
    rolled_by_day: dict[date, int] = {}
    for group in rolled:
        assert group.bucket is not None
        day = group.bucket.astimezone(tokyo).date()
        rolled_by_day[day] = rolled_by_day.get(day, 0) + group.counts.total
    assert rolled_by_day == raw_by_day


@pytest.mark.parametrize("walk", ["index walk", "whole aggregate"])
async def test_customer_pages_follow_latest_contact_across_batches(
    session: AsyncSession, walk: str
) -> None:
    """Clients with several conversations, ties on the latest contact, and walk batches
    of two conversations: every page holds the right clients, none skipped or repeated,
    whichever plan answers."""
    caller = await create_caller(session)
    organization = caller.organization
    clients = [await create_client(session, organization, name=f"Cliente {n}") for n in range(9)]
    # (client index, minutes after BASE of the last message, category)
    conversations = [
        (0, 50, "ventas"), (0, 10, "soporte"),
        (1, 40, "ventas"), (1, 45, "soporte"), (1, 5, "ventas"),
        (2, 45, "ventas"),  # ties with client 1's latest contact
        (3, 30, "soporte"),
        (4, 20, "ventas"), (4, 60, "soporte"),
        (5, 1, "ventas"),
        (6, 35, "ventas"), (6, 36, "ventas"),
        (7, 15, "soporte"),
        (8, 25, "ventas"), (8, 26, "soporte"), (8, 2, "ventas"),
    ]  # fmt: skip
    for index, minutes, category in conversations:
        at = BASE + timedelta(minutes=minutes)
        await create_conversation(
            session, organization, clients[index], opened_at=at, last_message_at=at,
            category=category,
        )  # fmt: skip
    other = await create_caller(session)
    stranger = await create_client(session, other.organization, name="Cliente 0")
    await create_conversation(
        session, other.organization, stranger, opened_at=BASE, last_message_at=BASE + DAY
    )
    repository = ConversationReportRepository(session, organization.id)
    options = {"walk_rows": 10_000, "walk_batch": 2} if walk == "index walk" else {"walk_rows": 0}

    def expected(category: str | None) -> list[uuid.UUID]:
        latest: dict[int, datetime] = {}
        for index, minutes, kind in conversations:
            if category in (None, kind):
                at = BASE + timedelta(minutes=minutes)
                latest[index] = max(latest.get(index, at), at)
        order = sorted(latest, key=lambda i: (latest[i], clients[i].id), reverse=True)
        return [clients[i].id for i in order]

    for category in (None, "ventas", "soporte"):
        window = ConversationWindow(category=category)
        for limit in (1, 2, 4):
            seen: list[uuid.UUID] = []
            after = None
            while True:
                rows = await repository.customers_page(
                    window, search=None, after=after, limit=limit, **options
                )
                assert len(rows) <= limit
                seen.extend(row.client_id for row in rows)
                if len(rows) < limit:
                    break
                after = (rows[-1].last_contact_at, rows[-1].client_id)
            assert seen == expected(category), (category, limit)
    searched = await repository.customers_page(
        ConversationWindow(), search="cliente 8", after=None, limit=5, **options
    )
    assert [(row.client_id, row.totals.total) for row in searched] == [(clients[8].id, 3)]


async def test_status_counts_since_read_either_side_of_the_rollup(session: AsyncSession) -> None:
    """Messages created since an hour, counted from the hours after it or from the
    all-time totals minus the hours before it (whichever is shorter): the same
    numbers as counting the messages, for every ``since``."""
    caller = await create_caller(session)
    organization = caller.organization
    statuses = ["DELIVERED", "READ", "FAILED", "DELIVERED", "QUEUED", "READ", "DELIVERED"]
    created = [BASE + timedelta(hours=5 * n) for n in range(len(statuses))]
    for when, status in zip(created, statuses, strict=True):
        await create_message(session, organization, created_at=when, status=status, log=False)
    deleted = await create_message(
        session, organization, created_at=created[-1], status="READ", log=False
    )
    deleted.deleted_at = created[-1]
    other = await create_caller(session)
    await create_message(session, other.organization, created_at=BASE, status="READ", log=False)
    await session.flush()
    repository = MessageCountReportRepository(session, organization.id)
    now = created[-1] + timedelta(hours=1)
    for since in [BASE - DAY, *created, created[2] + timedelta(minutes=30), now]:
        expected: dict[str, int] = {}
        for when, status in zip(created, statuses, strict=True):
            if when >= since.replace(minute=0):
                expected[status] = expected.get(status, 0) + 1
        counted = {
            status: count
            for channel, direction, status, count in await repository.by_status(
                since=since, now=now
            )
        }
        assert counted == expected, since
    everything = {status: n for _, _, status, n in await repository.by_status()}
    assert everything == {"DELIVERED": 3, "READ": 2, "FAILED": 1, "QUEUED": 1}
