"""SQL for reading messages, their attempts (communication logs), timelines and counts."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from mensajero.models import (
    Campaign,
    Client,
    CommunicationLog,
    LogEvent,
    Message,
    MessageCount,
    MessageCountTotal,
    MessageStatus,
)
from mensajero.repositories.base import OrganizationScopedRepository
from mensajero.repositories.pagination import (
    fetch_page,
    fetch_page_with,
    fetch_pages_per_parent,
)
from mensajero.services.listing import (
    KeysetPage,
    LogFilter,
    LogSummary,
    MessageFilter,
    OffsetPage,
    Page,
    TimeRange,
    escape_like,
)

DELIVERED_STATUSES = (MessageStatus.DELIVERED, MessageStatus.READ, MessageStatus.RECEIVED)
FAILED_STATUSES = (MessageStatus.FAILED, MessageStatus.UNDELIVERED, MessageStatus.CANCELED)


def _created_conditions(column: Any, created: TimeRange | None) -> list[ColumnElement[bool]]:
    if created is None:
        return []
    conditions = []
    if created.start is not None:
        conditions.append(column >= created.start)
    if created.end is not None:
        conditions.append(column < created.end)
    return conditions


def recipient_candidates(value: str) -> list[str]:
    """The stored forms a recipient filter may mean: E.164 with or without "+", e-mail any case."""
    value = value.strip()
    if "@" in value:
        return [value, value.lower()]
    digits = "".join(character for character in value if character.isdigit())
    if not digits:
        return [value]
    return list(dict.fromkeys([value, f"+{digits}", digits]))


class MessageRepository(OrganizationScopedRepository[Message]):
    model = Message

    def live(self) -> Select[Any]:
        return self.scoped().where(Message.deleted_at.is_(None))

    def filtered(self, message_filter: MessageFilter) -> Select[Any]:
        """Live messages of the organization matching every given filter."""
        return self.live().where(*self.conditions(message_filter))

    @staticmethod
    def conditions(f: MessageFilter) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if f.content:
            # ILIKE with a bound pattern: PostgreSQL answers it from the trigram index.
            conditions.append(Message.body.ilike(f"%{escape_like(f.content)}%", escape="\\"))
        if f.content_type is not None:
            conditions.append(Message.content_type == f.content_type)
        if f.statuses is not None:
            conditions.append(Message.status.in_(f.statuses))
        if f.sent_at is not None:
            second = f.sent_at.astimezone(UTC).replace(microsecond=0)
            conditions.append(Message.sent_at >= second)
            conditions.append(Message.sent_at < second + timedelta(seconds=1))
        if f.recipient:
            conditions.append(Message.recipient.in_(recipient_candidates(f.recipient)))
        if f.country_code:
            conditions.append(Message.country_code == f.country_code.strip().lstrip("+"))
        if f.channels is not None:
            conditions.append(Message.channel.in_(f.channels))
        if f.communication_types is not None:
            conditions.append(Message.communication_type.in_(f.communication_types))
        if f.direction is not None:
            conditions.append(Message.direction == f.direction)
        if f.provider:
            conditions.append(func.lower(Message.provider) == f.provider.strip().lower())
        if f.campaign_ids is not None:
            conditions.append(Message.campaign_id.in_(f.campaign_ids))
        if f.client_ids is not None:
            conditions.append(Message.client_id.in_(f.client_ids))
        if f.queue_id:
            conditions.append(Message.queue_id == f.queue_id)
        conditions.extend(_created_conditions(Message.created_at, f.created))
        return conditions

    async def page(self, message_filter: MessageFilter, page: KeysetPage) -> Page[Message]:
        return await fetch_page(self.session, self.filtered(message_filter), Message, page)

    async def page_with_relations(
        self, message_filter: MessageFilter, page: KeysetPage, *, client: bool, campaign: bool
    ) -> tuple[Page[Message], dict[uuid.UUID, Client], dict[uuid.UUID, Campaign]]:
        """A page and, in the same statement, the clients and campaigns of its messages.

        One round trip instead of three: outer joins on the page's rows only
        (the planner joins after the keyset LIMIT), scoped to the organization.
        """
        statement = self.filtered(message_filter)
        if client:
            statement = statement.add_columns(Client).outerjoin(
                Client,
                (Client.id == Message.client_id) & (Client.organization_id == self.organization_id),
            )
        if campaign:
            statement = statement.add_columns(Campaign).outerjoin(
                Campaign,
                (Campaign.id == Message.campaign_id)
                & (Campaign.organization_id == self.organization_id),
            )
        found, rows = await fetch_page_with(self.session, statement, Message, page)
        clients: dict[uuid.UUID, Client] = {}
        campaigns: dict[uuid.UUID, Campaign] = {}
        for row in rows:
            related = list(row[1:])
            loaded_client = related.pop(0) if client else None
            loaded_campaign = related.pop(0) if campaign else None
            if loaded_client is not None:
                clients[loaded_client.id] = loaded_client
            if loaded_campaign is not None:
                campaigns[loaded_campaign.id] = loaded_campaign
        return found, clients, campaigns

    async def offset_page(self, message_filter: MessageFilter, page: OffsetPage) -> list[Message]:
        statement = (
            self.filtered(message_filter)
            .order_by(Message.created_at.desc(), Message.id.desc())
            .offset(page.offset)
            .limit(page.limit)
        )
        return list((await self.session.execute(statement)).scalars())

    async def count(self, message_filter: MessageFilter) -> int:
        statement = (
            self.live().with_only_columns(func.count()).where(*self.conditions(message_filter))
        )
        return int((await self.session.execute(statement)).scalar_one())

    async def pages_for_clients(
        self, client_ids: list[uuid.UUID], page: KeysetPage
    ) -> dict[uuid.UUID, Page[Message]]:
        return await fetch_pages_per_parent(
            self.session, self.live(), Message, Message.client_id, client_ids, page
        )

    async def count_for_clients(self, client_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
        statement = (
            self.live()
            .with_only_columns(Message.client_id, func.count())
            .where(Message.client_id.in_(client_ids))
            .group_by(Message.client_id)
        )
        counts = {key: count for key, count in await self.session.execute(statement)}
        return {client_id: counts.get(client_id, 0) for client_id in client_ids}


class MessageCountRepository(OrganizationScopedRepository[MessageCount]):
    """Sums over the trigger-maintained rollup (see ``models/message_count.py``).

    Without a time range the all-time totals answer (a few dozen rows per
    organization); with one, the hourly rows inside it.
    """

    model = MessageCount

    async def count(
        self,
        *,
        statuses: tuple[str, ...] | None = None,
        channels: tuple[str, ...] | None = None,
        communication_types: tuple[str, ...] | None = None,
        direction: str | None = None,
        created: TimeRange | None = None,
    ) -> int:
        table: Any = MessageCount if created is not None else MessageCountTotal
        statement = select(func.coalesce(func.sum(table.count), 0)).where(
            table.organization_id == self.organization_id
        )
        if statuses is not None:
            statement = statement.where(table.status.in_(statuses))
        if channels is not None:
            statement = statement.where(table.channel.in_(channels))
        if communication_types is not None:
            statement = statement.where(table.communication_type.in_(communication_types))
        if direction is not None:
            statement = statement.where(table.direction == direction)
        if created is not None:
            statement = statement.where(*_created_conditions(MessageCount.bucket, created))
        return int((await self.session.execute(statement)).scalar_one())


_FOLD_SQL = """
WITH keys AS (
    SELECT {key} FROM {table} GROUP BY {key} HAVING count(*) > 1 OR sum(count) = 0
),
folded AS (
    DELETE FROM {table} AS m USING keys AS k
    WHERE {match}
    RETURNING {returning}, m.count
),
inserted AS (
    INSERT INTO {table} ({key}, count)
    SELECT {key}, sum(count) FROM folded GROUP BY {key} HAVING sum(count) <> 0
    RETURNING 1
)
SELECT (SELECT count(*) FROM folded) - (SELECT count(*) FROM inserted)
"""


async def compact_message_counts(session: AsyncSession) -> int:
    """Fold each key's delta rows into one row (PostgreSQL; SQLite keeps one row per key).

    Safe next to concurrent writers: the DELETE takes only rows that exist when
    it starts, and deltas appended meanwhile stay as they are. Returns how
    many delta rows were folded away.
    """
    if session.get_bind().dialect.name != "postgresql":
        return 0
    folded = 0
    for table, key in (
        ("message_counts", _HOURLY_KEY),
        ("message_count_totals", _TOTAL_KEY),
    ):
        columns = [column.strip() for column in key.split(",")]
        sql = _FOLD_SQL.format(
            table=table,
            key=key,
            match=" AND ".join(f"m.{column} = k.{column}" for column in columns),
            returning=", ".join(f"m.{column}" for column in columns),
        )
        folded += int((await session.execute(text(sql))).scalar_one())
    return folded


_HOURLY_KEY = "organization_id, bucket, channel, communication_type, status, direction"
_TOTAL_KEY = "organization_id, channel, communication_type, status, direction"


def _log_conditions(f: LogFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if f.client_ids is not None:
        conditions.append(CommunicationLog.client_id.in_(f.client_ids))
    if f.communication_types is not None:
        conditions.append(CommunicationLog.communication_type.in_(f.communication_types))
    if f.statuses is not None:
        conditions.append(CommunicationLog.status.in_(f.statuses))
    if f.campaign_ids is not None:
        conditions.append(CommunicationLog.campaign_id.in_(f.campaign_ids))
    if f.channels is not None:
        conditions.append(CommunicationLog.channel.in_(f.channels))
    if f.message_ids is not None:
        conditions.append(CommunicationLog.message_id.in_(f.message_ids))
    conditions.extend(_created_conditions(CommunicationLog.created_at, f.created))
    return conditions


class CommunicationLogRepository(OrganizationScopedRepository[CommunicationLog]):
    model = CommunicationLog

    def live(self, *columns: Any) -> Select[Any]:
        """Attempts whose message is not soft-deleted."""
        deleted_message = exists().where(
            Message.id == CommunicationLog.message_id, Message.deleted_at.is_not(None)
        )
        return self.scoped(*columns).where(~deleted_message)

    def filtered(self, log_filter: LogFilter, *columns: Any) -> Select[Any]:
        return self.live(*columns).where(*_log_conditions(log_filter))

    async def page(self, log_filter: LogFilter, page: KeysetPage) -> Page[CommunicationLog]:
        return await fetch_page(self.session, self.filtered(log_filter), CommunicationLog, page)

    async def offset_page(self, log_filter: LogFilter, page: OffsetPage) -> list[CommunicationLog]:
        statement = (
            self.filtered(log_filter)
            .order_by(CommunicationLog.created_at.desc(), CommunicationLog.id.desc())
            .offset(page.offset)
            .limit(page.limit)
        )
        return list((await self.session.execute(statement)).scalars())

    async def count(self, log_filter: LogFilter) -> int:
        statement = self.filtered(log_filter, func.count())
        return int((await self.session.execute(statement)).scalar_one())

    async def summary(self, log_filter: LogFilter) -> LogSummary:
        log = CommunicationLog
        delivered = or_(log.delivered_at.is_not(None), log.status.in_(DELIVERED_STATUSES))
        read = or_(log.read_at.is_not(None), log.status == MessageStatus.READ)
        statement = self.filtered(
            log_filter,
            func.count(),
            func.count().filter(delivered),
            func.count().filter(log.opened_at.is_not(None)),
            func.count().filter(read),
            func.count().filter(log.status == MessageStatus.BOUNCED),
            func.count().filter(log.status.in_(FAILED_STATUSES)),
        )
        row = (await self.session.execute(statement)).one()
        return LogSummary(*(int(value) for value in row))

    async def for_messages(self, message_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Any]]:
        """Every attempt of each message, first attempt first."""
        statement = (
            self.scoped()
            .where(CommunicationLog.message_id.in_(message_ids))
            .order_by(CommunicationLog.created_at, CommunicationLog.id)
        )
        grouped: dict[uuid.UUID, list[Any]] = defaultdict(list)
        for log in (await self.session.execute(statement)).scalars():
            grouped[log.message_id].append(log)
        return grouped

    async def pages_for_clients(
        self, client_ids: list[uuid.UUID], page: KeysetPage
    ) -> dict[uuid.UUID, Page[CommunicationLog]]:
        return await fetch_pages_per_parent(
            self.session,
            self.live(),
            CommunicationLog,
            CommunicationLog.client_id,
            client_ids,
            page,
        )

    async def count_for_clients(self, client_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
        statement = (
            self.live(CommunicationLog.client_id, func.count())
            .where(CommunicationLog.client_id.in_(client_ids))
            .group_by(CommunicationLog.client_id)
        )
        counts = {key: count for key, count in await self.session.execute(statement)}
        return {client_id: counts.get(client_id, 0) for client_id in client_ids}


class LogEventRepository(OrganizationScopedRepository[LogEvent]):
    model = LogEvent

    async def for_logs(self, log_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[LogEvent]]:
        """Each attempt's timeline in the order things happened."""
        statement = (
            self.scoped()
            .where(LogEvent.log_id.in_(log_ids))
            .order_by(LogEvent.occurred_at, LogEvent.created_at, LogEvent.id)
        )
        grouped: dict[uuid.UUID, list[LogEvent]] = defaultdict(list)
        for event in (await self.session.execute(statement)).scalars():
            grouped[event.log_id].append(event)
        return grouped


__all__ = [
    "CommunicationLogRepository",
    "LogEventRepository",
    "MessageCountRepository",
    "MessageRepository",
    "compact_message_counts",
    "recipient_candidates",
]
