"""SQL of the communication reports: attempt counts grouped by hour, channel and type.

Counts over a period come from the ``attempt_counts`` rollup
(:mod:`mensajero.models.attempt_count`), a few rows per hour whatever the
volume; one client's counts are read from its attempts (an index range).
"""

from __future__ import annotations

import statistics
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, and_, func, literal, or_, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from mensajero.models import (
    AttemptCount,
    AttemptCountDaily,
    Client,
    ClientTag,
    CommunicationLog,
    Conversation,
    ConversationStatus,
    CreditLedgerEntry,
    Direction,
    Message,
    MessageCount,
    MessageCountTotal,
    MessageStatus,
    Tag,
)
from mensajero.repositories.base import OrganizationScopedRepository
from mensajero.repositories.message import (
    DELIVERED_STATUSES,
    FAILED_STATUSES,
    CommunicationLogRepository,
)
from mensajero.services.listing import TimeRange, escape_like

# Attempts still on their way to a provider (Coordinalo's "pending").
PENDING_STATUSES = (MessageStatus.SCHEDULED, MessageStatus.QUEUED, MessageStatus.SENDING)


@dataclass(slots=True)
class AttemptCounts:
    """Outbound attempts of one group, counted by what happened to them.

    ``sent``: handed to a provider (not pending, not canceled), whatever came
    after; ``delivered``: reached the recipient (DELIVERED, READ, RECEIVED or
    a delivery time); ``opened``/``clicked``/``read``: have those times (READ
    status counts as read); ``bounced``: status BOUNCED; ``failed``: FAILED,
    UNDELIVERED or CANCELED (Coordinalo's failed).
    """

    sent: int = 0
    delivered: int = 0
    opened: int = 0
    clicked: int = 0
    read: int = 0
    bounced: int = 0
    failed: int = 0
    total: int = 0
    # Attempts the recipient answered.
    responded: int = 0

    def add(self, other: AttemptCounts) -> None:
        for name in self.__slots__:  # type: ignore[attr-defined]
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass(frozen=True, slots=True)
class GroupedCounts:
    bucket: datetime | None  # the UTC hour, when grouped by hour
    channel: str
    communication_type: str
    counts: AttemptCounts
    direction: str = Direction.OUTBOUND


async def _scalar(session: AsyncSession, statement: Select[Any]) -> Any:
    return (await session.execute(statement)).scalar_one()


def _count_columns() -> list[ColumnElement[Any]]:
    log = CommunicationLog
    not_sent = (*PENDING_STATUSES, MessageStatus.CANCELED)
    return [
        func.count().filter(log.status.not_in(not_sent)),
        func.count().filter(or_(log.delivered_at.is_not(None), log.status.in_(DELIVERED_STATUSES))),
        func.count().filter(log.opened_at.is_not(None)),
        func.count().filter(log.clicked_at.is_not(None)),
        func.count().filter(or_(log.read_at.is_not(None), log.status == MessageStatus.READ)),
        func.count().filter(log.status == MessageStatus.BOUNCED),
        func.count().filter(log.status.in_(FAILED_STATUSES)),
        func.count(),
        func.count().filter(log.response_received_at.is_not(None)),
    ]


class ReportRepository(CommunicationLogRepository):
    """Aggregates over the live outbound attempts of one organization."""

    def _hour_bucket(self) -> ColumnElement[Any]:
        if self.session.get_bind().dialect.name == "postgresql":
            # Truncated in UTC whatever the session's TimeZone is.
            return func.date_trunc("hour", func.timezone("UTC", CommunicationLog.created_at))
        return func.strftime("%Y-%m-%d %H:00:00", CommunicationLog.created_at)

    async def grouped_counts(
        self,
        *,
        created: TimeRange | None = None,
        client_id: uuid.UUID | None = None,
        by_hour: bool = False,
        local_days: ZoneInfo | None = None,
    ) -> list[GroupedCounts]:
        """Counts per (hour,) channel and type; one statement, one row per group.

        Without a client, from the rollup: a range's bounds are taken to the
        hour (exact for bounds on whole hours, as the local midnights of every
        zone with a whole-hour offset are).
        """
        if client_id is None:
            return await self.rolled_up_counts(
                created=created, by_hour=by_hour, local_days=local_days
            )
        return await self.raw_grouped_counts(
            created=created, client_id=client_id, by_hour=by_hour or local_days is not None
        )

    async def rolled_up_counts(
        self,
        *,
        created: TimeRange | None = None,
        by_hour: bool = False,
        local_days: ZoneInfo | None = None,
        direction: str | None = Direction.OUTBOUND,
        by_type: bool = True,
    ) -> list[GroupedCounts]:
        """Counts from the rollup, of one direction (``None``: both, told apart).

        ``by_type=False`` leaves the communication type out of the groups (their
        ``communication_type`` is then ``""``): a quarter of the rows for callers
        that never look at it.

        ``by_hour``: one group per UTC hour. ``local_days``: the organization's
        own time zone (the one ``attempt_counts_daily`` is keyed by), whose
        calendar days the caller folds the groups into. On PostgreSQL a range of
        whole local days is read from the daily rollup (``bucket`` is then the
        local midnight), any other range folds the hours in SQL; SQLite answers
        by hour.
        """
        if (
            local_days is not None
            and self.session.get_bind().dialect.name == "postgresql"
            and _is_local_midnight(created.start if created else None, local_days)
            and _is_local_midnight(created.end if created else None, local_days)
        ):
            return await self._daily_counts(created, local_days, direction, by_type)
        rollup = AttemptCount
        keys: list[ColumnElement[Any]] = [rollup.direction, rollup.channel]
        if by_type:
            keys.append(rollup.communication_type)
        fold_in_sql = (
            local_days is not None and self.session.get_bind().dialect.name == "postgresql"
        )
        if fold_in_sql:
            assert local_days is not None
            # timezone(zone, timestamptz) is the local wall time; truncated to its day.
            keys.insert(
                0,
                func.date_trunc("day", func.timezone(local_days.key, rollup.bucket)).label(
                    "bucket"
                ),
            )
        elif by_hour or local_days is not None:
            keys.insert(0, rollup.bucket)
        statement = (
            select(
                *keys,
                *(() if by_type else (literal("").label("communication_type"),)),
                *(func.sum(getattr(rollup, name)) for name in _ROLLUP_COUNTERS),
            )
            .where(rollup.organization_id == self.organization_id)
            .group_by(*keys)
        )
        if direction is not None:
            statement = statement.where(rollup.direction == direction)
        if created is not None and created.start is not None:
            statement = statement.where(rollup.bucket >= _hour_floor(created.start))
        if created is not None and created.end is not None:
            statement = statement.where(rollup.bucket < created.end)
        groups = []
        for row in (await self.session.execute(statement)).all():
            values = list(row)
            if fold_in_sql:
                assert local_days is not None
                bucket: datetime | None = values.pop(0).replace(tzinfo=local_days)
            elif by_hour or local_days is not None:
                bucket = _as_utc(values.pop(0))
            else:
                bucket = None
            row_direction, channel, communication_type, *numbers = values
            counts = AttemptCounts(*(int(n or 0) for n in numbers))
            if counts.total:
                groups.append(
                    GroupedCounts(bucket, channel, communication_type, counts, row_direction)
                )
        return groups

    async def _daily_counts(
        self, created: TimeRange | None, zone: ZoneInfo, direction: str | None, by_type: bool
    ) -> list[GroupedCounts]:
        """From ``attempt_counts_daily``: a few dozen rows per local day."""
        daily = AttemptCountDaily
        keys: list[ColumnElement[Any]] = [daily.day, daily.direction, daily.channel]
        if by_type:
            keys.append(daily.communication_type)
        statement = (
            select(
                *keys,
                *(() if by_type else (literal("").label("communication_type"),)),
                *(func.sum(getattr(daily, name)) for name in _ROLLUP_COUNTERS),
            )
            .where(daily.organization_id == self.organization_id)
            .group_by(*keys)
        )
        if direction is not None:
            statement = statement.where(daily.direction == direction)
        if created is not None and created.start is not None:
            statement = statement.where(daily.day >= created.start.astimezone(zone).date())
        if created is not None and created.end is not None:
            statement = statement.where(daily.day < created.end.astimezone(zone).date())
        groups = []
        for day, row_direction, channel, communication_type, *numbers in (
            await self.session.execute(statement)
        ).all():
            counts = AttemptCounts(*(int(n or 0) for n in numbers))
            if counts.total:
                bucket = datetime.combine(day, time(), zone)
                groups.append(
                    GroupedCounts(bucket, channel, communication_type, counts, row_direction)
                )
        return groups

    async def raw_grouped_counts(
        self,
        *,
        created: TimeRange | None = None,
        client_id: uuid.UUID | None = None,
        by_hour: bool = False,
    ) -> list[GroupedCounts]:
        """The same counts read from the attempts themselves (one client's; benchmarks)."""
        log = CommunicationLog
        keys: list[ColumnElement[Any]] = [log.channel, log.communication_type]
        if by_hour:
            keys.insert(0, self._hour_bucket().label("bucket"))
        statement = self.live(*keys, *_count_columns()).where(log.direction == Direction.OUTBOUND)
        if client_id is not None:
            statement = statement.where(log.client_id == client_id)
        if created is not None and created.start is not None:
            statement = statement.where(log.created_at >= created.start)
        if created is not None and created.end is not None:
            statement = statement.where(log.created_at < created.end)
        statement = statement.group_by(*keys)
        groups = []
        for row in (await self.session.execute(statement)).all():
            values = list(row)
            bucket = _as_utc(values.pop(0)) if by_hour else None
            channel, communication_type, *numbers = values
            groups.append(
                GroupedCounts(
                    bucket, channel, communication_type, AttemptCounts(*(int(n) for n in numbers))
                )
            )
        return groups

    async def inbound_count(self, *, client_id: uuid.UUID) -> int:
        """Replies received from one client."""
        statement = self.live(func.count()).where(
            CommunicationLog.client_id == client_id,
            CommunicationLog.direction == Direction.INBOUND,
        )
        return int(await _scalar(self.session, statement))

    async def contact_span(
        self, *, client_id: uuid.UUID
    ) -> tuple[datetime | None, datetime | None]:
        """First and latest message exchanged with one client (through its index)."""
        statement = select(func.min(Message.created_at), func.max(Message.created_at)).where(
            Message.organization_id == self.organization_id,
            Message.client_id == client_id,
            Message.deleted_at.is_(None),
        )
        first, last = (await self.session.execute(statement)).one()
        return (_as_utc(first) if first else None, _as_utc(last) if last else None)


# AttemptCounts' fields in order, as the rollup's columns.
_ROLLUP_COUNTERS = (
    "sent",
    "delivered",
    "opened",
    "clicked",
    "read",
    "bounced",
    "failed",
    "total",
    "responded",
)


def _is_local_midnight(value: datetime | None, zone: ZoneInfo) -> bool:
    return value is None or value.astimezone(zone).time() == time()


def _hour_floor(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _as_utc(value: Any) -> datetime:
    if isinstance(value, str):  # SQLite's strftime
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    if value.tzinfo is None:  # PostgreSQL's timezone('UTC', timestamptz) is a naive UTC time
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


_COUNTERS_SQL = ", ".join(_ROLLUP_COUNTERS)
_ATTEMPT_KEY = "organization_id, bucket, channel, communication_type, direction"
_FOLD_ATTEMPT_COUNTS = f"""
WITH keys AS (
    SELECT {_ATTEMPT_KEY} FROM attempt_counts GROUP BY {_ATTEMPT_KEY}
    HAVING count(*) > 1 OR sum(total) = 0
),
folded AS (
    DELETE FROM attempt_counts AS m USING keys AS k
    WHERE {" AND ".join(f"m.{c} = k.{c}" for c in _ATTEMPT_KEY.split(", "))}
    RETURNING {", ".join(f"m.{c}" for c in (*_ATTEMPT_KEY.split(", "), *_ROLLUP_COUNTERS))}
),
inserted AS (
    INSERT INTO attempt_counts ({_ATTEMPT_KEY}, {_COUNTERS_SQL})
    SELECT {_ATTEMPT_KEY}, {", ".join(f"sum({c})" for c in _ROLLUP_COUNTERS)}
    FROM folded GROUP BY {_ATTEMPT_KEY}
    HAVING {" OR ".join(f"sum({c}) <> 0" for c in _ROLLUP_COUNTERS)}
    RETURNING 1
)
SELECT (SELECT count(*) FROM folded) - (SELECT count(*) FROM inserted)
"""

_FOLD_ATTEMPT_COUNTS_DAILY = _FOLD_ATTEMPT_COUNTS.replace(
    "attempt_counts", "attempt_counts_daily"
).replace("bucket", "day")


async def compact_attempt_counts(session: AsyncSession) -> int:
    """Fold each key's delta rows into one (PostgreSQL; SQLite keeps one row per key).

    Safe next to concurrent writers, like the message-count fold: the DELETE
    takes only rows that exist when it starts. Returns how many rows went away.
    """
    if session.get_bind().dialect.name != "postgresql":
        return 0
    folded = 0
    for sql in (_FOLD_ATTEMPT_COUNTS, _FOLD_ATTEMPT_COUNTS_DAILY):
        folded += int((await session.execute(text(sql))).scalar_one())
    return folded


# --- mosend reports: conversations, ledger, tags --------------------------------------------


@dataclass(frozen=True, slots=True)
class ConversationWindow:
    """Which conversations a report looks at: opened in ``[since, until)``, of a kind."""

    since: datetime | None = None
    until: datetime | None = None
    category: str | None = None
    resolution_outcome: str | None = None


@dataclass(slots=True)
class ConversationTotals:
    total: int = 0
    open: int = 0
    pending: int = 0
    resolved: int = 0
    unassigned: int = 0
    responded: int = 0
    first_response_sum: int = 0
    resolution_sum: int = 0
    resolution_measured: int = 0


# Conversations the customers page reads along the latest-contact index before it
# falls back to aggregating the whole window (a filter that matches few of them).
CUSTOMER_WALK_ROWS = 2_000

# Median first response and resolution seconds; None where nothing was measured.
Medians = tuple[float | None, float | None]
NO_MEDIANS: Medians = (None, None)


@dataclass(frozen=True, slots=True)
class CustomerRow:
    client_id: uuid.UUID
    name: str
    email: str | None
    phone: str | None
    totals: ConversationTotals
    first_contact_at: datetime
    last_contact_at: datetime


def _conversation_totals_columns() -> list[ColumnElement[Any]]:
    c = Conversation
    return [
        func.count(),
        func.count().filter(c.status == ConversationStatus.OPEN),
        func.count().filter(c.status == ConversationStatus.PENDING),
        func.count().filter(c.status == ConversationStatus.RESOLVED),
        func.count().filter(c.assigned_member_id.is_(None)),
        func.count(c.first_response_seconds),
        func.coalesce(func.sum(c.first_response_seconds), 0),
        func.coalesce(func.sum(c.resolution_seconds), 0),
        func.count(c.resolution_seconds),
    ]


def _median(values: list[int]) -> float | None:
    return float(statistics.median(values)) if values else None


def _totals(values: Sequence[Any]) -> ConversationTotals:
    return ConversationTotals(*(int(v or 0) for v in values))


class ConversationReportRepository(OrganizationScopedRepository[Conversation]):
    """Aggregates over an organization's conversations (far fewer rows than messages)."""

    model = Conversation

    def windowed(self, window: ConversationWindow, *columns: Any) -> Select[Any]:
        statement = self.scoped(*columns)
        if window.since is not None:
            statement = statement.where(Conversation.opened_at >= window.since)
        if window.until is not None:
            statement = statement.where(Conversation.opened_at < window.until)
        if window.category is not None:
            statement = statement.where(Conversation.category == window.category)
        if window.resolution_outcome is not None:
            statement = statement.where(
                Conversation.resolution_outcome == window.resolution_outcome
            )
        return statement

    async def totals(
        self, window: ConversationWindow, *, client_id: uuid.UUID | None = None
    ) -> ConversationTotals:
        statement = self.windowed(window, *_conversation_totals_columns())
        if client_id is not None:
            statement = statement.where(Conversation.client_id == client_id)
        return _totals((await self.session.execute(statement)).one())

    async def totals_by(
        self, window: ConversationWindow, column: Any
    ) -> list[tuple[Any, ConversationTotals]]:
        """Totals per value of ``column`` (channel, assigned member, category, ...)."""
        statement = self.windowed(window, column, *_conversation_totals_columns()).group_by(column)
        return [(row[0], _totals(row[1:])) for row in (await self.session.execute(statement)).all()]

    async def durations(
        self,
        window: ConversationWindow,
        *,
        group: Any | None = None,
        group_values: Iterable[Any] | None = None,
        client_id: uuid.UUID | None = None,
    ) -> list[tuple[Any, int | None, int | None]]:
        """(group, first response seconds, resolution seconds) of every measured conversation,
        for medians."""
        key = group if group is not None else literal(None)
        statement = self.windowed(
            window, key, Conversation.first_response_seconds, Conversation.resolution_seconds
        ).where(
            or_(
                Conversation.first_response_seconds.is_not(None),
                Conversation.resolution_seconds.is_not(None),
            )
        )
        if group is not None and group_values is not None:
            statement = statement.where(group.in_(list(group_values)))
        if client_id is not None:
            statement = statement.where(Conversation.client_id == client_id)
        return [tuple(row) for row in (await self.session.execute(statement)).all()]  # type: ignore[misc]

    async def medians(
        self,
        window: ConversationWindow,
        *,
        group: Any | None = None,
        group_values: Iterable[Any] | None = None,
        client_id: uuid.UUID | None = None,
    ) -> dict[Any, tuple[float | None, float | None]]:
        """Median first response and resolution seconds per group (key ``None`` without one).

        PostgreSQL computes them (``percentile_cont(0.5)``: the mean of the two
        middle values of an even count); SQLite has no percentiles, so its
        (small, embedded) sets are read and computed here the same way.
        """
        if self.session.get_bind().dialect.name != "postgresql":
            values: dict[Any, tuple[list[int], list[int]]] = {}
            for key, first, resolution in await self.durations(
                window, group=group, group_values=group_values, client_id=client_id
            ):
                firsts, resolutions = values.setdefault(key, ([], []))
                if first is not None:
                    firsts.append(first)
                if resolution is not None:
                    resolutions.append(resolution)
            return {
                key: (_median(firsts), _median(resolutions))
                for key, (firsts, resolutions) in values.items()
            }
        key = group if group is not None else literal(None)
        statement = self.windowed(
            window,
            key,
            func.percentile_cont(0.5).within_group(Conversation.first_response_seconds),
            func.percentile_cont(0.5).within_group(Conversation.resolution_seconds),
        )
        if group is not None:
            statement = statement.group_by(group)
            if group_values is not None:
                statement = statement.where(group.in_(list(group_values)))
        if client_id is not None:
            statement = statement.where(Conversation.client_id == client_id)
        return {
            row[0]: (
                float(row[1]) if row[1] is not None else None,
                float(row[2]) if row[2] is not None else None,
            )
            for row in (await self.session.execute(statement)).all()
        }

    async def totals_and_medians_by(
        self, window: ConversationWindow, column: Any
    ) -> tuple[dict[Any, tuple[ConversationTotals, Medians]], tuple[ConversationTotals, Medians]]:
        """Totals and medians per value of ``column``, and over the whole window.

        PostgreSQL answers both in one pass over the window
        (``GROUPING SETS ((column), ())``) instead of four: the messaging report
        needs all of them and each pass re-reads every conversation.
        """
        if self.session.get_bind().dialect.name != "postgresql":
            medians = await self.medians(window, group=column)
            groups = {
                key: (totals, medians.get(key, NO_MEDIANS))
                for key, totals in await self.totals_by(window, column)
            }
            overall = await self.totals(window)
            return groups, (overall, (await self.medians(window)).get(None, NO_MEDIANS))
        statement = self.windowed(
            window,
            column,
            func.grouping(column),
            *_conversation_totals_columns(),
            func.percentile_cont(0.5).within_group(Conversation.first_response_seconds),
            func.percentile_cont(0.5).within_group(Conversation.resolution_seconds),
        ).group_by(func.grouping_sets(column, tuple_()))
        groups = {}
        overall = (ConversationTotals(), NO_MEDIANS)
        for key, is_overall, *values in (await self.session.execute(statement)).all():
            first, resolution = values[-2:]
            entry = (
                _totals(values[:-2]),
                (
                    float(first) if first is not None else None,
                    float(resolution) if resolution is not None else None,
                ),
            )
            if is_overall:
                overall = entry
            else:
                groups[key] = entry
        return groups, overall

    async def customers_page(
        self,
        window: ConversationWindow,
        *,
        search: str | None,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
        walk_rows: int = CUSTOMER_WALK_ROWS,
        walk_batch: int | None = None,
    ) -> list[CustomerRow]:
        """Clients with conversations in the window, latest contact first (then id), keyset.

        A client's latest contact is its newest conversation's ``last_message_at``, so
        the page's clients are the first distinct clients met walking the window's
        conversations newest first along ``(organization_id, last_message_at,
        client_id)``: an index range of a few rows per client, then the page's
        aggregates over those clients only. Aggregating every client of the window
        to keep twenty read all of an organization's conversations per page. When a
        sparse filter makes the walk read ``walk_rows`` rows without filling the
        page, the whole aggregate is the cheaper plan and answers instead.
        """
        batch = walk_batch or max(4 * limit, 64)
        page = await self._walk_page_clients(window, search, after, limit, walk_rows, batch)
        if page is None:
            return await self._customer_rows(window, search=search, after=after, limit=limit)
        if not page:
            return []
        rows = await self._customer_rows(window, search=None, after=None, client_ids=page)
        return rows[:limit]

    async def _walk_page_clients(
        self,
        window: ConversationWindow,
        search: str | None,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
        walk_rows: int,
        batch: int,
    ) -> list[uuid.UUID] | None:
        """The first ``limit`` clients past ``after`` in latest-contact order, or None
        when ``walk_rows`` conversations were read without finding them."""
        position = tuple_(Conversation.last_message_at, Conversation.client_id)

        def at(point: tuple[datetime, uuid.UUID]) -> Any:
            # Bound with the columns' types: SQLite compares the stored text form.
            return tuple_(
                literal(point[0], Conversation.last_message_at.type),
                literal(point[1], Conversation.client_id.type),
            )

        walk = self._filtered(window, search, Conversation.client_id, Conversation.last_message_at)
        page: list[uuid.UUID] = []
        seen: set[uuid.UUID] = set()
        resume = after
        read = 0
        while read < walk_rows:
            statement = walk.order_by(
                Conversation.last_message_at.desc(), Conversation.client_id.desc()
            ).limit(batch)
            if resume is not None:
                statement = statement.where(position < at(resume))
            rows = (await self.session.execute(statement)).all()
            read += len(rows)
            fresh = []
            for client_id, _ in rows:
                if client_id not in seen:
                    seen.add(client_id)
                    fresh.append(client_id)
            if after is not None and fresh:
                # A client met past the cursor whose latest contact comes before it
                # was on an earlier page.
                shown = self._filtered(window, search, Conversation.client_id).where(
                    Conversation.client_id.in_(fresh), position >= at(after)
                )
                earlier = set((await self.session.execute(shown.distinct())).scalars())
                fresh = [client_id for client_id in fresh if client_id not in earlier]
            page.extend(fresh)
            if len(page) >= limit or len(rows) < batch:
                return page[:limit]
            last_client, last_at = rows[-1]
            resume = (last_at, last_client)
        return None

    def _filtered(self, window: ConversationWindow, search: str | None, *columns: Any) -> Any:
        statement = (
            self.windowed(window, *columns)
            .join(Client, Client.id == Conversation.client_id)
            .where(Client.organization_id == self.organization_id, Client.deleted_at.is_(None))
        )
        if search:
            pattern = f"%{escape_like(search)}%"
            statement = statement.where(
                or_(
                    Client.name.ilike(pattern, escape="\\"),
                    Client.email.ilike(pattern, escape="\\"),
                    Client.phone.ilike(pattern, escape="\\"),
                    Client.phone_e164.ilike(pattern, escape="\\"),
                )
            )
        return statement

    async def _customer_rows(
        self,
        window: ConversationWindow,
        *,
        search: str | None,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int | None = None,
        client_ids: list[uuid.UUID] | None = None,
    ) -> list[CustomerRow]:
        last_contact = func.max(Conversation.last_message_at)
        statement = (
            self._filtered(
                window,
                search,
                Conversation.client_id,
                Client.name,
                Client.email,
                Client.phone,
                *_conversation_totals_columns(),
                func.min(Conversation.opened_at),
                last_contact,
            )
            .group_by(Conversation.client_id, Client.name, Client.email, Client.phone)
            .order_by(last_contact.desc(), Conversation.client_id.desc())
        )
        if limit is not None:
            statement = statement.limit(limit)
        if client_ids is not None:
            statement = statement.where(Conversation.client_id.in_(client_ids))
        if after is not None:
            at, client_id = after
            statement = statement.having(
                or_(
                    last_contact < at,
                    and_(last_contact == at, Conversation.client_id < client_id),
                )
            )
        rows = []
        for row in (await self.session.execute(statement)).all():
            client_id, name, email, phone, *numbers = row
            first_contact, last = numbers[-2:]
            rows.append(
                CustomerRow(
                    client_id=client_id,
                    name=name,
                    email=email,
                    phone=phone,
                    totals=_totals(numbers[:-2]),
                    first_contact_at=_as_utc(first_contact),
                    last_contact_at=_as_utc(last),
                )
            )
        return rows

    async def contact_span(self, client_id: uuid.UUID) -> tuple[datetime | None, datetime | None]:
        """When the client's first conversation opened and its latest one last moved."""
        statement = self.scoped(
            func.min(Conversation.opened_at), func.max(Conversation.last_message_at)
        ).where(Conversation.client_id == client_id)
        first, last = (await self.session.execute(statement)).one()
        return (_as_utc(first) if first else None, _as_utc(last) if last else None)

    async def of_client(self, client_id: uuid.UUID, *, limit: int) -> list[Conversation]:
        statement = (
            self.scoped()
            .where(Conversation.client_id == client_id)
            .order_by(Conversation.opened_at.desc(), Conversation.id.desc())
            .limit(limit)
        )
        return list((await self.session.execute(statement)).scalars())


@dataclass(frozen=True, slots=True)
class LedgerGroup:
    kind: str
    channel: str | None
    hour: datetime
    amount: int
    messages: int
    entries: int


class LedgerReportRepository(OrganizationScopedRepository[CreditLedgerEntry]):
    """The credit ledger summed by kind, channel and UTC hour.

    The ledger has one entry per send batch, refund or top-up (not one per
    message), so its aggregates stay small.
    """

    model = CreditLedgerEntry

    def _hour(self) -> ColumnElement[Any]:
        column = CreditLedgerEntry.created_at
        if self.session.get_bind().dialect.name == "postgresql":
            return func.date_trunc("hour", func.timezone("UTC", column))
        return func.strftime("%Y-%m-%d %H:00:00", column)

    async def grouped(self, *, since: datetime | None = None) -> list[LedgerGroup]:
        entry = CreditLedgerEntry
        hour = self._hour().label("hour")
        statement = self.scoped(
            entry.kind,
            entry.channel,
            hour,
            func.sum(entry.amount),
            func.sum(entry.message_count),
            func.count(),
        ).group_by(entry.kind, entry.channel, hour)
        if since is not None:
            statement = statement.where(entry.created_at >= since)
        return [
            LedgerGroup(kind, channel, _as_utc(at), int(amount), int(messages or 0), int(count))
            for kind, channel, at, amount, messages, count in (
                await self.session.execute(statement)
            ).all()
        ]

    async def latest(self, *, kinds: Sequence[str], limit: int) -> list[CreditLedgerEntry]:
        statement = (
            self.scoped()
            .where(CreditLedgerEntry.kind.in_(list(kinds)))
            .order_by(CreditLedgerEntry.created_at.desc(), CreditLedgerEntry.id.desc())
            .limit(limit)
        )
        return list((await self.session.execute(statement)).scalars())


@dataclass(frozen=True, slots=True)
class TagRow:
    tag_id: uuid.UUID
    name: str
    color: str | None
    clients: int
    messages: int
    conversations: int


class TagReportRepository(OrganizationScopedRepository[Tag]):
    model = Tag

    async def breakdown(self, *, since: datetime) -> list[TagRow]:
        """Per tag: live clients carrying it, their messages since ``since`` and their
        conversations opened since then (through the clients' indexes)."""
        tagged = (
            select(ClientTag.tag_id, ClientTag.client_id)
            .join(Client, Client.id == ClientTag.client_id)
            .where(ClientTag.organization_id == self.organization_id, Client.deleted_at.is_(None))
            .subquery()
        )
        clients = (
            select(tagged.c.tag_id, func.count().label("n")).group_by(tagged.c.tag_id).subquery()
        )
        messages = (
            select(tagged.c.tag_id, func.count().label("n"))
            .join(Message, Message.client_id == tagged.c.client_id)
            .where(
                Message.organization_id == self.organization_id,
                Message.created_at >= since,
                Message.deleted_at.is_(None),
            )
            .group_by(tagged.c.tag_id)
            .subquery()
        )
        conversations = (
            select(tagged.c.tag_id, func.count().label("n"))
            .join(Conversation, Conversation.client_id == tagged.c.client_id)
            .where(
                Conversation.organization_id == self.organization_id,
                Conversation.opened_at >= since,
            )
            .group_by(tagged.c.tag_id)
            .subquery()
        )
        statement = (
            self.scoped(
                Tag.id,
                Tag.name,
                Tag.color,
                func.coalesce(clients.c.n, 0),
                func.coalesce(messages.c.n, 0),
                func.coalesce(conversations.c.n, 0),
            )
            .outerjoin(clients, clients.c.tag_id == Tag.id)
            .outerjoin(messages, messages.c.tag_id == Tag.id)
            .outerjoin(conversations, conversations.c.tag_id == Tag.id)
            .order_by(Tag.name, Tag.id)
        )
        return [
            TagRow(tag_id, name, color, int(c), int(m), int(v))
            for tag_id, name, color, c, m, v in (await self.session.execute(statement)).all()
        ]


class MessageCountReportRepository:
    """Current statuses of an organization's messages, from the message-count rollup."""

    def __init__(self, session: AsyncSession, organization_id: uuid.UUID) -> None:
        self.session = session
        self.organization_id = organization_id

    async def by_status(
        self, *, since: datetime | None = None, now: datetime | None = None
    ) -> list[tuple[str, str, str, int]]:
        """(channel, direction, status, count) of live messages (created since ``since``).

        Messages created since an hour are the sum of the hourly rows from it on,
        or, the same number, the all-time totals minus the hourly rows before
        it. The hourly rollup has tens of thousands of rows over three months,
        so whichever side of ``since`` is shorter is read: "the last 90 days"
        of an organization that is 100 days old reads 10 days of hours, not 90.
        """
        keys = (MessageCount.channel, MessageCount.direction, MessageCount.status)
        if since is None:
            rows = await self._sum(self._totals(), keys)
        else:
            hour = _hour_floor(since)
            earliest = (
                await self.session.execute(
                    select(func.min(MessageCount.bucket)).where(
                        MessageCount.organization_id == self.organization_id
                    )
                )
            ).scalar_one()
            if earliest is None:
                return []
            after = now or datetime.now(UTC)
            if _as_utc(earliest) >= hour:
                rows = await self._sum(self._totals(), keys)
            elif hour - _as_utc(earliest) < after - hour:
                before = self._hours(MessageCount.bucket < hour, negate=True)
                rows = await self._sum(self._totals().union_all(before), keys)
            else:
                rows = await self._sum(self._hours(MessageCount.bucket >= hour), keys)
        return [(channel, direction, status, int(n)) for channel, direction, status, n in rows if n]

    def _totals(self) -> Select[Any]:
        total = MessageCountTotal
        return select(total.channel, total.direction, total.status, total.count.label("n")).where(
            total.organization_id == self.organization_id
        )

    def _hours(self, condition: ColumnElement[bool], *, negate: bool = False) -> Select[Any]:
        hourly = MessageCount
        count = -hourly.count if negate else hourly.count
        return select(hourly.channel, hourly.direction, hourly.status, count.label("n")).where(
            hourly.organization_id == self.organization_id, condition
        )

    async def _sum(self, rows: Any, keys: Sequence[Any]) -> Sequence[Any]:
        subquery = rows.subquery()
        columns = [subquery.c[key.key] for key in keys]
        statement = select(*columns, func.sum(subquery.c.n)).group_by(*columns)
        return (await self.session.execute(statement)).all()


async def count_live_clients(session: AsyncSession, organization_id: uuid.UUID) -> int:
    statement = select(func.count()).where(
        Client.organization_id == organization_id, Client.deleted_at.is_(None)
    )
    return int((await session.execute(statement)).scalar_one())


async def client_messages(
    session: AsyncSession, organization_id: uuid.UUID, client_id: uuid.UUID, *, limit: int
) -> list[Message]:
    statement = (
        select(Message)
        .where(
            Message.organization_id == organization_id,
            Message.client_id == client_id,
            Message.deleted_at.is_(None),
        )
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(limit)
    )
    return list((await session.execute(statement)).scalars())
