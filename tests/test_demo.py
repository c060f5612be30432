"""mensajero.demo on both backends: a SQLite file and a scratch PostgreSQL database.

The demo is generated once per backend (60 clients, 400 messages, seed 1) and every
invariant is then checked with SQL against what was committed. The PostgreSQL variant is
never skipped: if 127.0.0.1:5432 is down the tests fail, since the demo must run on both.
"""

from __future__ import annotations

import math
import secrets
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import phonenumbers
import pytest
from sqlalchemy import Row, Select, Subquery, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

from mensajero.db import create_engine, create_sessionmaker, transaction
from mensajero.demo import create_demo_organization
from mensajero.models import (
    ApiKeyScope,
    Campaign,
    Channel,
    Client,
    ClientTag,
    CommunicationLog,
    CommunicationType,
    Conversation,
    ConversationStatus,
    CreditLedgerEntry,
    Direction,
    LedgerEntryKind,
    LogEvent,
    Member,
    Message,
    MessageStatus,
    Organization,
    Tag,
    TimelineEventType,
)
from mensajero.services.auth import authenticate
from mensajero.settings import get_settings

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USER = "postgres"

CLIENTS = 60
MESSAGES = 400
SEED = 1
# What a seed generates depends on the calendar too (weekdays, what has happened by now):
# anchoring it makes every run of this suite check the very same data.
NOW = datetime(2026, 3, 18, 15, 30, 12, tzinfo=UTC)

Event = TimelineEventType
Status = MessageStatus

# Lifecycle rank of each timeline event: along an attempt's timeline it never decreases.
EVENT_RANK = {
    Event.CREATED: 0,
    Event.QUEUED: 1,
    Event.RECEIVED: 1,
    Event.SENT: 2,
    Event.DELIVERED: 3,
    Event.UNDELIVERED: 3,
    Event.BOUNCED: 3,
    Event.FAILED: 3,
    Event.READ: 4,
    Event.OPENED: 4,
    Event.CLICKED: 5,
    Event.RESPONSE: 6,
}
STATUS_OF_EVENT = {
    Event.CREATED: Status.QUEUED,
    Event.QUEUED: Status.QUEUED,
    Event.SENT: Status.SENT,
    Event.DELIVERED: Status.DELIVERED,
    Event.READ: Status.READ,
    Event.UNDELIVERED: Status.UNDELIVERED,
    Event.BOUNCED: Status.BOUNCED,
    Event.FAILED: Status.FAILED,
    Event.RECEIVED: Status.RECEIVED,
}
# Which log column records the moment of which event.
EVENT_COLUMNS = {
    Event.SENT: "sent_at",
    Event.DELIVERED: "delivered_at",
    Event.READ: "read_at",
    Event.OPENED: "opened_at",
    Event.CLICKED: "clicked_at",
    Event.RESPONSE: "response_received_at",
}
FAILURE_EVENTS = (Event.FAILED, Event.UNDELIVERED, Event.BOUNCED)


@dataclass(frozen=True, slots=True)
class Demo:
    engine: AsyncEngine
    backend: str
    result: dict[str, object]
    organization_id: uuid.UUID
    now: datetime
    seconds: float


# --- databases ------------------------------------------------------------------------------


async def _admin_connection() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(
            host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres", timeout=10
        )
    except (OSError, asyncpg.PostgresError) as error:
        pytest.fail(f"PostgreSQL at {PG_HOST}:{PG_PORT} is unreachable: {error!r}")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
async def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[AsyncEngine]:
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("demo") / "demo.db"
        sqlite_engine = create_engine(f"sqlite+aiosqlite:///{path}")
        try:
            async with sqlite_engine.begin() as connection:
                await connection.run_sync(SQLModel.metadata.create_all)
            yield sqlite_engine
        finally:
            await sqlite_engine.dispose()
        return
    name = f"mensajero_demo_test_{secrets.token_hex(6)}"
    admin = await _admin_connection()
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    pg_engine = create_engine(f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}")
    try:
        async with pg_engine.begin() as connection:
            # The content-search index on messages.body is a trigram index.
            await connection.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            await connection.run_sync(SQLModel.metadata.create_all)
        yield pg_engine
    finally:
        await pg_engine.dispose()
        admin = await _admin_connection()
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def _create_demo(
    engine: AsyncEngine, *, clients: int, messages: int, seed: int | None, now: datetime | None
) -> tuple[dict[str, object], float]:
    started = time.perf_counter()
    async with transaction(create_sessionmaker(engine)) as session:
        result = await create_demo_organization(
            session, clients=clients, messages=messages, seed=seed, now=now
        )
    return result, time.perf_counter() - started


@pytest.fixture(scope="module")
async def demo(engine: AsyncEngine) -> Demo:
    result, seconds = await _create_demo(
        engine, clients=CLIENTS, messages=MESSAGES, seed=SEED, now=NOW
    )
    backend = engine.dialect.name
    print(f"\n[{backend}] demo {CLIENTS} clients / {MESSAGES} messages in {seconds:.2f}s")
    return Demo(
        engine=engine,
        backend=backend,
        result=result,
        organization_id=uuid.UUID(str(result["organizationId"])),
        now=NOW,
        seconds=seconds,
    )


async def _rows(engine: AsyncEngine, statement: Select[Any]) -> Sequence[Row[Any]]:
    async with create_sessionmaker(engine)() as session:
        return (await session.execute(statement)).all()


async def _scalar(engine: AsyncEngine, statement: Select[Any]) -> Any:
    async with create_sessionmaker(engine)() as session:
        return (await session.execute(statement)).scalar_one()


def _count(model: type[SQLModel], organization_id: uuid.UUID, *where: Any) -> Select[Any]:
    return (
        select(func.count())
        .select_from(model)
        .where(model.organization_id == organization_id, *where)  # type: ignore[attr-defined]
    )


def _latest_logs(organization_id: uuid.UUID) -> Subquery:
    """Each message's latest attempt (highest attempt number)."""
    return (
        select(
            CommunicationLog.message_id,
            func.max(CommunicationLog.attempt_number).label("attempt"),
        )
        .where(CommunicationLog.organization_id == organization_id)
        .group_by(CommunicationLog.message_id)
        .subquery()
    )


# --- tests ----------------------------------------------------------------------------------


async def test_result_and_counts(demo: Demo) -> None:
    result, org = demo.result, demo.organization_id
    assert set(result) == {"organizationId", "memberId", "apiKey", "clients", "messages"}
    assert result["clients"] == CLIENTS and result["messages"] == MESSAGES
    assert str(result["apiKey"]).startswith("mk_")
    uuid.UUID(str(result["memberId"]))
    engine = demo.engine
    assert await _scalar(engine, _count(Client, org)) == CLIENTS
    assert await _scalar(engine, _count(Message, org)) == MESSAGES
    assert 8 <= await _scalar(engine, _count(Tag, org)) <= 10
    assert await _scalar(engine, _count(Campaign, org)) == 5
    members = await _rows(
        engine, select(Member.id, Member.email).where(Member.organization_id == org)
    )
    assert [(str(m.id), m.email) for m in members] == [(result["memberId"], "demo@mensajero.local")]
    # Generous bound: it takes a fraction of a second; this only catches a pathology.
    assert demo.seconds < 20


async def test_api_key_authenticates_to_the_demo_organization(demo: Demo) -> None:
    async with transaction(create_sessionmaker(demo.engine)) as session:
        principal = await authenticate(session, str(demo.result["apiKey"]))
    assert principal.organization_id == demo.organization_id
    assert str(principal.member_id) == demo.result["memberId"]
    assert ApiKeyScope.ADMIN in principal.scopes
    assert principal.terms_accepted


async def test_every_message_has_a_log_and_shows_its_latest_attempt(demo: Demo) -> None:
    org, engine = demo.organization_id, demo.engine
    without_log = _count(
        Message,
        org,
        ~select(CommunicationLog.id).where(CommunicationLog.message_id == Message.id).exists(),
    )
    assert await _scalar(engine, without_log) == 0

    latest = _latest_logs(org)
    mirrored = (
        select(Message, CommunicationLog)
        .join(latest, latest.c.message_id == Message.id)
        .join(
            CommunicationLog,
            and_(
                CommunicationLog.message_id == Message.id,
                CommunicationLog.attempt_number == latest.c.attempt,
            ),
        )
        .where(Message.organization_id == org)
    )
    rows = await _rows(engine, mirrored)
    assert len(rows) == MESSAGES
    mismatched = or_(
        Message.status != CommunicationLog.status,
        Message.channel != CommunicationLog.channel,
        Message.recipient != CommunicationLog.recipient,
        Message.provider.is_distinct_from(CommunicationLog.provider),  # type: ignore[union-attr]
        Message.sent_at.is_distinct_from(CommunicationLog.sent_at),  # type: ignore[union-attr]
        Message.direction != CommunicationLog.direction,
        Message.client_id.is_distinct_from(CommunicationLog.client_id),  # type: ignore[union-attr]
    )
    assert (
        await _scalar(
            engine, select(func.count()).select_from(mirrored.where(mismatched).subquery())
        )
        == 0
    )

    # Attempts are numbered 1..n without gaps.
    attempts = (
        select(
            CommunicationLog.message_id,
            func.count().label("n"),
            func.max(CommunicationLog.attempt_number).label("top"),
            func.min(CommunicationLog.attempt_number).label("bottom"),
        )
        .where(CommunicationLog.organization_id == org)
        .group_by(CommunicationLog.message_id)
    )
    for row in await _rows(engine, attempts):
        assert (row.bottom, row.top) == (1, row.n)


async def test_timelines_match_their_attempts(demo: Demo) -> None:
    org, engine = demo.organization_id, demo.engine
    logs = {
        log.id: log
        for (log,) in await _rows(
            engine, select(CommunicationLog).where(CommunicationLog.organization_id == org)
        )
    }
    events: dict[uuid.UUID, list[tuple[datetime, Event, Any]]] = defaultdict(list)
    statement = select(LogEvent.log_id, LogEvent.event, LogEvent.occurred_at, LogEvent.metadata_)
    for log_id, event, occurred_at, metadata in await _rows(
        engine, statement.where(LogEvent.organization_id == org)
    ):
        events[log_id].append((occurred_at, Event(event), metadata))
    assert set(events) == set(logs), "every log has a timeline and every event a log"
    for log_id, log in logs.items():
        timeline = sorted(events[log_id], key=lambda item: (item[0], EVENT_RANK[item[1]]))
        kinds = [kind for _, kind, _ in timeline]
        assert kinds.count(Event.CREATED) == 1
        assert timeline[0][1] == Event.CREATED and timeline[0][0] == log.created_at
        assert len(set(kinds)) == len(kinds), f"duplicate events on {log_id}: {kinds}"
        ranks = [EVENT_RANK[kind] for kind in kinds]
        assert ranks == sorted(ranks), f"events out of order on {log_id}: {kinds}"
        assert all(at <= demo.now for at, _, _ in timeline)
        status = Status.QUEUED
        for _, kind, _ in timeline:
            status = STATUS_OF_EVENT.get(kind, status)
        assert log.status == status, (log.status, kinds)
        moments = {kind: at for at, kind, _ in timeline}
        if log.direction == Direction.INBOUND:
            # An inbound message was sent by the client when we received it.
            moments[Event.SENT] = moments[Event.RECEIVED]
        for kind, column in EVENT_COLUMNS.items():
            assert getattr(log, column) == moments.get(kind), (column, kinds)
        failure = [moments[kind] for kind in FAILURE_EVENTS if kind in moments]
        assert log.failed_at == (failure[0] if failure else None)
        assert log.updated_at == timeline[-1][0]
        if failure:
            assert log.error_code and log.error_message
        if log.status == Status.BOUNCED:
            assert log.error_code in ("bounce_hard", "bounce_soft")
        if Event.OPENED in moments:
            opened = next(meta for _, kind, meta in timeline if kind == Event.OPENED)
            assert set(opened) >= {"userAgent", "ip"}
        if Event.RESPONSE in moments:
            assert log.response_text
        if log.direction == Direction.INBOUND:
            assert kinds == [Event.CREATED, Event.RECEIVED]


async def test_delivery_timestamps_only_move_forward(demo: Demo) -> None:
    org, engine = demo.organization_id, demo.engine
    log = CommunicationLog
    backwards = (
        log.sent_at < log.created_at,
        log.delivered_at < log.sent_at,
        and_(log.delivered_at.is_not(None), log.sent_at.is_(None)),  # type: ignore[union-attr]
        log.read_at < log.delivered_at,
        and_(log.read_at.is_not(None), log.delivered_at.is_(None)),  # type: ignore[union-attr]
        log.opened_at < log.delivered_at,
        log.clicked_at < log.opened_at,
        log.response_received_at < log.read_at,
        log.failed_at < log.created_at,
        log.updated_at < log.created_at,
    )
    for condition in backwards:
        assert await _scalar(engine, _count(log, org, condition)) == 0, str(condition)
    window = (
        Message.created_at < demo.now - timedelta(days=30),
        Message.created_at > demo.now,
        Message.sent_at > demo.now,
        Message.updated_at < Message.created_at,
    )
    for condition in window:
        assert await _scalar(engine, _count(Message, org, condition)) == 0, str(condition)


async def test_statuses_channels_and_content_are_plausible(demo: Demo) -> None:
    org, engine = demo.organization_id, demo.engine
    messages = [
        message
        for (message,) in await _rows(engine, select(Message).where(Message.organization_id == org))
    ]
    outbound = [m for m in messages if m.direction == Direction.OUTBOUND]
    channels = Counter(m.channel for m in outbound)
    assert 0.40 <= channels[Channel.SMS] / len(outbound) <= 0.60
    assert 0.20 <= channels[Channel.WHATSAPP] / len(outbound) <= 0.40
    assert 0.10 <= channels[Channel.EMAIL] / len(outbound) <= 0.30
    statuses = Counter(m.status for m in messages)
    for status in (Status.DELIVERED, Status.READ, Status.SENT, Status.FAILED, Status.BOUNCED):
        assert statuses[status] > 0, status
    assert (statuses[Status.DELIVERED] + statuses[Status.READ]) / len(outbound) > 0.7
    assert statuses[Status.BOUNCED] == sum(
        1 for m in messages if m.status == Status.BOUNCED and m.channel == Channel.EMAIL
    )
    queued = [m for m in messages if m.status == Status.QUEUED]
    assert 1 <= len(queued) <= 10
    assert all(
        m.sent_at is None and m.created_at > demo.now - timedelta(minutes=10) for m in queued
    )
    assert set(Counter(m.communication_type for m in outbound)) == set(CommunicationType)
    prices = get_settings()
    for message in messages:
        if message.channel == Channel.EMAIL:
            assert message.country_code is None and "@" in message.recipient
            if message.direction == Direction.OUTBOUND:
                assert message.subject and message.html and "<html" in message.html
        else:
            parsed = phonenumbers.parse(message.recipient)
            assert message.country_code == str(parsed.country_code)
        if message.direction == Direction.INBOUND:
            assert message.status == Status.RECEIVED and message.cost == 0
            assert message.conversation_id is not None
            continue
        if message.channel == Channel.SMS:
            # Between all-GSM-7 (160/153) and all-UCS-2 (70/67) sizing.
            length = len(message.body)
            assert (1 if length <= 160 else math.ceil(length / 153)) <= message.segments
            assert message.segments <= (1 if length <= 70 else math.ceil(2 * length / 67))
            assert message.cost == message.segments * prices.price_sms_segment
        else:
            assert message.segments == 1
        if message.communication_type == CommunicationType.SESSION_REMINDER:
            metadata = message.metadata_
            assert metadata["sessionId"] == metadata["session"]["id"]
            assert set(metadata["session"]) == {"id", "startTime", "service"}
            assert set(metadata["provider"]) == {"id", "name"}
            assert datetime.fromisoformat(metadata["session"]["startTime"]) > message.created_at
        if message.communication_type in (
            CommunicationType.PAYMENT_REMINDER,
            CommunicationType.RECEIPT,
        ):
            assert message.metadata_["ventaId"].startswith("venta_")
        if message.campaign_id is not None:
            assert message.metadata_["campaignId"] == str(message.campaign_id)
    # Batches: queue ids group several messages of one channel.
    by_queue: dict[str | None, set[str]] = defaultdict(set)
    for message in outbound:
        by_queue[message.queue_id].add(message.channel)
    assert None not in by_queue and all(len(chans) == 1 for chans in by_queue.values())
    assert max(Counter(m.queue_id for m in outbound).values()) >= 5


async def test_resends_replies_and_conversations(demo: Demo) -> None:
    org, engine = demo.organization_id, demo.engine
    resends = await _rows(
        engine,
        select(CommunicationLog.message_id).where(
            CommunicationLog.organization_id == org, CommunicationLog.attempt_number == 2
        ),
    )
    assert resends
    replies = await _scalar(
        engine,
        _count(
            CommunicationLog,
            org,
            CommunicationLog.response_text.is_not(None),  # type: ignore[union-attr]
            CommunicationLog.channel == Channel.WHATSAPP,
        ),
    )
    assert replies >= 1
    conversations = [
        c
        for (c,) in await _rows(
            engine, select(Conversation).where(Conversation.organization_id == org)
        )
    ]
    assert conversations
    resolved = [c for c in conversations if c.status == ConversationStatus.RESOLVED]
    assert resolved
    for conversation in conversations:
        assert conversation.category
        inbound = await _rows(
            engine,
            select(Message.status, Message.body, Message.created_at).where(
                Message.conversation_id == conversation.id,
                Message.direction == Direction.INBOUND,
            ),
        )
        assert len(inbound) == 1 and inbound[0].status == Status.RECEIVED
        assert inbound[0].created_at == conversation.opened_at
        replied = await _scalar(
            engine,
            _count(
                CommunicationLog,
                org,
                CommunicationLog.client_id == conversation.client_id,
                CommunicationLog.response_text == inbound[0].body,
                CommunicationLog.response_received_at == conversation.opened_at,
            ),
        )
        assert replied == 1, "a conversation is opened by a WhatsApp reply"
        if conversation.status == ConversationStatus.OPEN:
            assert conversation.first_response_at is None
            continue
        assert conversation.first_response_seconds == int(
            (conversation.first_response_at - conversation.opened_at).total_seconds()
        )
        assert conversation.assigned_member_id is not None
        if conversation.status == ConversationStatus.RESOLVED:
            assert conversation.resolution_outcome
            assert conversation.resolved_at is not None
            assert conversation.resolution_seconds is not None
            assert conversation.resolution_seconds >= conversation.first_response_seconds > 0


async def test_clients_and_tags(demo: Demo) -> None:
    org, engine = demo.organization_id, demo.engine
    per_client = (
        select(ClientTag.client_id, func.count().label("n"))
        .where(ClientTag.organization_id == org)
        .group_by(ClientTag.client_id)
    )
    counts = [row.n for row in await _rows(engine, per_client)]
    assert counts and max(counts) <= 3
    tags = await _rows(engine, select(Tag.name, Tag.color).where(Tag.organization_id == org))
    assert all(color and color.startswith("#") for _, color in tags)
    assert {"VIP", "Pacientes", "Recordatorios", "Bogotá", "Inactivos"} <= {n for n, _ in tags}
    clients = [
        c for (c,) in await _rows(engine, select(Client).where(Client.organization_id == org))
    ]
    assert {c.country for c in clients} <= {"CO", "CL", "MX", "AR", "PE"}
    assert len({c.country for c in clients}) >= 4
    assert any(c.email is None for c in clients) and any(c.phone is None for c in clients)
    for client in clients:
        if client.phone_e164 is not None:
            parsed = phonenumbers.parse(client.phone_e164)
            assert phonenumbers.is_valid_number(parsed)
            assert phonenumbers.region_code_for_number(parsed) == client.country
            assert client.phone is not None
            # The phone as typed normalizes to the stored E.164.
            typed = phonenumbers.parse(client.phone, client.country)
            assert phonenumbers.format_number(typed, phonenumbers.PhoneNumberFormat.E164) == (
                client.phone_e164
            )
        if client.email is not None:
            assert client.email.count("@") == 1
    assert len({c.email for c in clients if c.email}) == sum(1 for c in clients if c.email)
    # Messages reach the client's own address, never before the client existed.
    own_address = (
        select(Client.id)
        .where(
            Client.id == Message.client_id,
            Client.created_at <= Message.created_at,
            or_(
                and_(Message.channel == Channel.EMAIL, Client.email == Message.recipient),
                and_(Message.channel != Channel.EMAIL, Client.phone_e164 == Message.recipient),
            ),
        )
        .exists()
    )
    assert await _scalar(engine, _count(Message, org, ~own_address)) == 0


async def test_credit_ledger_matches_the_balance(demo: Demo) -> None:
    org, engine = demo.organization_id, demo.engine
    async with create_sessionmaker(engine)() as session:
        organization = await session.get(Organization, org)
        assert organization is not None
        balance = organization.credit_balance
    total = await _scalar(
        engine,
        select(func.coalesce(func.sum(CreditLedgerEntry.amount), 0)).where(
            CreditLedgerEntry.organization_id == org
        ),
    )
    assert balance == total and balance > 0
    entries = await _rows(
        engine,
        select(
            CreditLedgerEntry.kind,
            CreditLedgerEntry.amount,
            CreditLedgerEntry.balance_after,
            CreditLedgerEntry.created_at,
        ).where(CreditLedgerEntry.organization_id == org),
    )
    kinds = Counter(entry.kind for entry in entries)
    assert kinds[LedgerEntryKind.TOPUP] >= 1 and kinds[LedgerEntryKind.DEBIT] >= 3
    running = 0
    for entry in sorted(entries, key=lambda entry: entry.created_at):
        running += entry.amount
        assert entry.balance_after == running
        assert entry.balance_after >= 0
    # Debits pay for every message once and for every resend again; refunds give back
    # attempts that never reached a provider. Each attempt records what it cost.
    debits = -sum(e.amount for e in entries if e.kind == LedgerEntryKind.DEBIT)
    message_cost = await _scalar(
        engine, select(func.sum(Message.cost)).where(Message.organization_id == org)
    )
    resend_cost = await _scalar(
        engine,
        select(func.coalesce(func.sum(Message.cost), 0))
        .join(CommunicationLog, CommunicationLog.message_id == Message.id)
        .where(Message.organization_id == org, CommunicationLog.attempt_number > 1),
    )
    attempts_cost = await _scalar(
        engine,
        select(func.sum(CommunicationLog.cost)).where(CommunicationLog.organization_id == org),
    )
    assert debits == message_cost + resend_cost == attempts_cost
    mispriced = (
        select(func.count())
        .select_from(CommunicationLog)
        .join(Message, Message.id == CommunicationLog.message_id)
        .where(
            CommunicationLog.organization_id == org,
            CommunicationLog.cost != Message.cost,
        )
    )
    assert await _scalar(engine, mispriced) == 0
    refunds = sum(e.amount for e in entries if e.kind == LedgerEntryKind.REFUND)
    refunded_cost = await _scalar(
        engine,
        select(func.coalesce(func.sum(CommunicationLog.cost), 0)).where(
            CommunicationLog.organization_id == org,
            CommunicationLog.refunded.is_(True),  # type: ignore[attr-defined]
        ),
    )
    assert refunds == refunded_cost > 0


async def _fingerprint(engine: AsyncEngine, organization_id: uuid.UUID) -> dict[str, list[str]]:
    """Everything but ids, provider ids and the key, as sorted strings."""
    selections: dict[str, Select[Any]] = {
        "clients": select(
            Client.name, Client.email, Client.phone, Client.phone_e164, Client.country,
            Client.created_at, Client.metadata_,
        ).where(Client.organization_id == organization_id),
        "messages": select(
            Message.created_at, Message.channel, Message.communication_type, Message.status,
            Message.body, Message.subject, Message.recipient, Message.cost, Message.queue_id,
            Message.sent_at, Message.metadata_,
        ).where(Message.organization_id == organization_id),
        "logs": select(
            CommunicationLog.attempt_number, CommunicationLog.status, CommunicationLog.sent_at,
            CommunicationLog.delivered_at, CommunicationLog.read_at, CommunicationLog.opened_at,
            CommunicationLog.clicked_at, CommunicationLog.failed_at, CommunicationLog.error_code,
            CommunicationLog.response_text,
        ).where(CommunicationLog.organization_id == organization_id),
        "events": select(LogEvent.event, LogEvent.occurred_at, LogEvent.metadata_).where(
            LogEvent.organization_id == organization_id
        ),
        "ledger": select(
            CreditLedgerEntry.kind, CreditLedgerEntry.amount, CreditLedgerEntry.balance_after,
            CreditLedgerEntry.created_at, CreditLedgerEntry.queue_id,
        ).where(CreditLedgerEntry.organization_id == organization_id),
        "conversations": select(
            Conversation.status, Conversation.category, Conversation.resolution_outcome,
            Conversation.opened_at, Conversation.first_response_seconds,
            Conversation.resolution_seconds,
        ).where(Conversation.organization_id == organization_id),
    }  # fmt: skip

    def stable(value: Any) -> Any:
        if isinstance(value, dict):  # business metadata may point at row ids
            return {k: v for k, v in value.items() if k not in ("campaignId", "inReplyTo")}
        return value

    return {
        name: sorted(
            repr(tuple(stable(value) for value in row)) for row in await _rows(engine, statement)
        )
        for name, statement in selections.items()
    }


async def test_same_seed_same_demo(engine: AsyncEngine) -> None:
    first, _ = await _create_demo(engine, clients=30, messages=150, seed=7, now=NOW)
    # The same seed twice in one database: nothing unique collides.
    second, _ = await _create_demo(engine, clients=30, messages=150, seed=7, now=NOW)
    other, _ = await _create_demo(engine, clients=30, messages=150, seed=8, now=NOW)
    assert first["organizationId"] != second["organizationId"]
    assert first["apiKey"] != second["apiKey"]
    fingerprints = [
        await _fingerprint(engine, uuid.UUID(str(result["organizationId"])))
        for result in (first, second, other)
    ]
    assert fingerprints[0] == fingerprints[1]
    assert fingerprints[0]["messages"] != fingerprints[2]["messages"]
    assert len(fingerprints[0]["messages"]) == 150


async def test_default_size(engine: AsyncEngine) -> None:
    result, seconds = await _create_demo(engine, clients=300, messages=3000, seed=None, now=None)
    print(f"\n[{engine.dialect.name}] demo 300 clients / 3000 messages in {seconds:.2f}s")
    org = uuid.UUID(str(result["organizationId"]))
    assert await _scalar(engine, _count(Message, org)) == 3000
    assert await _scalar(engine, _count(Client, org)) == 300
    assert seconds < 30
