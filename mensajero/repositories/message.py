"""SQL for reading messages, their attempts (communication logs), timelines and counts."""

from __future__ import annotations

import functools
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Integer,
    ScalarSelect,
    Select,
    bindparam,
    exists,
    func,
    literal_column,
    or_,
    select,
    text,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

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
    page_from_rows,
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


# --- message filters as named bound parameters --------------------------------------
#
# A filter becomes a dict of bound values whose keys say which conditions apply
# (its "shape"). The conditions name their parameters after those keys, so a
# statement built once per shape is executed again with new values: list pages
# skip building and compiling SQL on every request (see ``_cached``).

_MESSAGES = Message.__table__  # type: ignore[attr-defined]
_CLIENTS = Client.__table__  # type: ignore[attr-defined]
_CAMPAIGNS = Campaign.__table__  # type: ignore[attr-defined]
_UNSET: Any = object()


def _bind(
    name: str, column: Any, value: Any = _UNSET, *, expanding: bool = False, type_: Any = None
) -> Any:
    """``:name`` typed as ``column``: holding ``value``, or a placeholder given at execution."""
    type_ = type_ if type_ is not None else column.type
    if value is _UNSET:
        return bindparam(name, type_=type_, expanding=expanding, required=True)
    return bindparam(name, value, type_=type_, expanding=expanding)


def _one_of(
    column: Any, name: str, value: Any = _UNSET, *, spread: Mapping[str, int] | None = None
) -> Any:
    """``column IN (:name)``, the list expanded at execution; with ``spread`` (name -> how
    many items) one parameter per item, ``:name_0``, ``:name_1``..., fixed in the SQL text.

    PostgreSQL plans ``IN ($2)`` as ``= $2`` and uses the index that also orders the page;
    an array parameter (``= ANY($2)``) of unknown length would not.
    """
    if spread is not None:
        return column.in_([_bind(f"{name}_{index}", column) for index in range(spread[name])])
    return column.in_(_bind(name, column, value, expanding=True))


def spread_lists(values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, int]]:
    """``values`` with each list given item by item (see :func:`_one_of`), and the lengths."""
    spread: dict[str, Any] = {}
    lengths: dict[str, int] = {}
    for name, value in values.items():
        if isinstance(value, list):
            lengths[name] = len(value)
            spread.update((f"{name}_{index}", item) for index, item in enumerate(value))
        else:
            spread[name] = value
    return spread, lengths


def message_filter_parameters(f: MessageFilter) -> dict[str, Any]:
    """The bound values of ``f``'s conditions, keyed by parameter name (see ``_message_condition``).

    ``start_date``/``end_date`` must have been resolved into ``created`` already.
    """
    values: dict[str, Any] = {}
    if f.content:
        values["content_pattern"] = f"%{escape_like(f.content)}%"
    if f.content_type is not None:
        values["content_type"] = f.content_type
    if f.statuses is not None:
        values["statuses"] = list(f.statuses)
    if f.sent_at is not None:
        second = f.sent_at.astimezone(UTC).replace(microsecond=0)
        values["sent_from"] = second
        values["sent_until"] = second + timedelta(seconds=1)
    if f.recipient:
        values["recipients"] = recipient_candidates(f.recipient)
    if f.country_code:
        values["country_code"] = f.country_code.strip().lstrip("+")
    if f.channels is not None:
        values["channels"] = list(f.channels)
    if f.communication_types is not None:
        values["communication_types"] = list(f.communication_types)
    if f.direction is not None:
        values["direction"] = f.direction
    if f.provider:
        values["provider"] = f.provider.strip().lower()
    if f.campaign_ids is not None:
        values["campaign_ids"] = list(f.campaign_ids)
    if f.client_ids is not None:
        values["client_ids"] = list(f.client_ids)
    if f.queue_id:
        values["queue_id"] = f.queue_id
    if f.created is not None:
        if f.created.start is not None:
            values["created_from"] = f.created.start
        if f.created.end is not None:
            values["created_until"] = f.created.end
    return values


# Filter parameters holding a list of values, and the column each one matches.
_LIST_PARAMETER_COLUMNS = {
    "statuses": "status",
    "channels": "channel",
    "communication_types": "communication_type",
    "recipients": "recipient",
    "campaign_ids": "campaign_id",
    "client_ids": "client_id",
}


def _message_condition(
    name: str, value: Any = _UNSET, *, spread: Mapping[str, int] | None = None
) -> ColumnElement[bool]:
    """The condition parameter ``name`` stands for (holding ``value``, or a placeholder).

    ``spread``: lists given item by item (see :func:`_one_of`).
    """
    m = _MESSAGES.c
    match name:
        case "content_pattern":
            # ILIKE with a bound pattern: PostgreSQL answers it from the trigram index.
            return m.body.ilike(_bind(name, m.body, value), escape="\\")
        case "content_type" | "country_code" | "direction" | "queue_id":
            return m[name] == _bind(name, m[name], value)
        case list_parameter if list_parameter in _LIST_PARAMETER_COLUMNS:
            column = m[_LIST_PARAMETER_COLUMNS[list_parameter]]
            return _one_of(column, name, value, spread=spread)
        case "provider":
            return func.lower(m.provider) == _bind(name, m.provider, value)
        case "sent_from":
            return m.sent_at >= _bind(name, m.sent_at, value)
        case "sent_until":
            return m.sent_at < _bind(name, m.sent_at, value)
        case "created_from":
            return m.created_at >= _bind(name, m.created_at, value)
        case "created_until":
            return m.created_at < _bind(name, m.created_at, value)
    raise ValueError(f"unknown message filter parameter {name!r}")


def _rollup_condition(
    table: Any, name: str, value: Any = _UNSET, *, spread: Mapping[str, int] | None = None
) -> ColumnElement[bool]:
    """The rollup's version of the conditions it can answer (same parameter names)."""
    c = table.c
    match name:
        case "statuses":
            return _one_of(c.status, name, value, spread=spread)
        case "channels":
            return _one_of(c.channel, name, value, spread=spread)
        case "communication_types":
            return _one_of(c.communication_type, name, value, spread=spread)
        case "direction":
            return c.direction == _bind(name, c.direction, value)
        case "created_from":
            return c.bucket >= _bind(name, c.bucket, value)
        case "created_until":
            return c.bucket < _bind(name, c.bucket, value)
    raise ValueError(f"the rollup cannot answer the filter parameter {name!r}")


def _organization(table: Any) -> ColumnElement[bool]:
    return table.c.organization_id == _bind("organization_id", table.c.organization_id)


def _rollup_total(
    names: tuple[str, ...], *, spread: Mapping[str, int] | None = None
) -> Select[Any]:
    """Sum of the rollup: all-time totals, or hourly rows when a creation range is given."""
    ranged = "created_from" in names or "created_until" in names
    table = (MessageCount if ranged else MessageCountTotal).__table__  # type: ignore[attr-defined]
    return select(func.coalesce(func.sum(table.c.count), 0)).where(
        _organization(table), *(_rollup_condition(table, name, spread=spread) for name in names)
    )


def _exact_total(names: tuple[str, ...], *, spread: Mapping[str, int] | None = None) -> Select[Any]:
    return select(func.count()).where(
        _organization(_MESSAGES),
        _MESSAGES.c.deleted_at.is_(None),
        *(_message_condition(name, spread=spread) for name in names),
    )


_statements: dict[tuple[Any, ...], Any] = {}
_MAX_CACHED_STATEMENTS = 512


def _cached(key: tuple[Any, ...], build: Any) -> Any:
    """The statement (or compiled statement) for ``key``, built once (placeholders only,
    never values)."""
    statement = _statements.get(key)
    if statement is None:
        if len(_statements) >= _MAX_CACHED_STATEMENTS:
            _statements.clear()  # filter shapes are few; this bounds odd traffic
        statement = _statements[key] = build()
    return statement


async def _fetch_compiled(
    connection: AsyncConnection,
    key: tuple[Any, ...],
    build: Callable[[], Select[Any]],
    values: dict[str, Any],
) -> list[Any]:
    """Rows of a statement run straight on asyncpg, compiled once per ``key``.

    For the hottest reads (a list page per request): SQLAlchemy's execution
    (cache key, parameter processing, result wrapping) cost more CPU than the
    query. The statement must bind only values asyncpg encodes as they are
    (UUIDs, strings, aware datetimes: lists spread item by item, see :func:`spread_lists`).
    It runs on the session's connection, so inside its transaction if any.
    """
    compiled = _cached(key, lambda: build().compile(dialect=connection.dialect))
    parameters = compiled.construct_params(values)  # adds the statement's own literals
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    try:
        return await driver.fetch(
            compiled.string, *(parameters[name] for name in compiled.positiontup or ())
        )
    except BaseException:
        # SQLAlchemy did not see the failure: a lost connection must not go back to the pool.
        if driver.is_closed():
            await connection.invalidate()
        raise


class ListedMessage(NamedTuple):
    """A message as list pages show it: the columns they use (not the metadata, HTML body
    or other internals), and its client's and campaign's id and name (None without one)."""

    id: uuid.UUID
    organization_id: uuid.UUID
    channel: str
    content_type: str
    body: str
    recipient: str
    country_code: str | None
    status: str
    provider: str | None
    error_message: str | None
    sent_at: datetime | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    client_id: uuid.UUID | None
    client_name: str | None
    campaign_id: uuid.UUID | None
    campaign_name: str | None


_LISTED_MESSAGE_COLUMNS = ListedMessage._fields[:14]


def _offset_page_with_total(
    names: tuple[str, ...],
    total_from_rollup: bool,
    *,
    baked: OffsetPage | None = None,
    spread: Mapping[str, int] | None = None,
) -> Select[Any]:
    """One statement: a page of live messages as :class:`ListedMessage` columns (client and
    campaign joined after the LIMIT, soft-deleted clients included: a message still names
    whom it went to), then the filtered total, in every row.

    LIMIT and OFFSET are written into the SQL: with them as parameters PostgreSQL cannot
    cost a generic plan and plans every execution anew (0.35 ms, twice the execution).
    Without ``baked`` they are given at execution (``limit``/``offset``, rendered then);
    with ``baked`` (a page) they are part of the statement, which, with lists ``spread``,
    then has no parameter to render at execution (see ``_fetch_compiled``).
    """
    m = _MESSAGES.c
    limit: Any = (
        literal_column(str(int(baked.limit)))
        if baked is not None
        else bindparam("limit", type_=Integer, required=True, literal_execute=True)
    )
    offset: Any = (
        literal_column(str(int(baked.offset)))
        if baked is not None
        else bindparam("offset", type_=Integer, required=True, literal_execute=True)
    )
    page = (
        select(*(m[name] for name in _LISTED_MESSAGE_COLUMNS), m.client_id, m.campaign_id)
        .where(_organization(_MESSAGES), m.deleted_at.is_(None))
        .where(*(_message_condition(name, spread=spread) for name in names))
        .order_by(m.created_at.desc(), m.id.desc())
        .limit(limit)
        .offset(offset)
        .subquery("page")
    )
    total: ScalarSelect[Any] = (
        _rollup_total(names, spread=spread)
        if total_from_rollup
        else _exact_total(names, spread=spread)
    ).scalar_subquery()
    clients, campaigns = _CLIENTS.c, _CAMPAIGNS.c
    return (
        select(
            *(page.c[name] for name in _LISTED_MESSAGE_COLUMNS),
            clients.id,
            clients.name,
            campaigns.id,
            campaigns.name,
            total,
        )
        .select_from(
            page.outerjoin(
                _CLIENTS,
                (clients.id == page.c.client_id) & _organization(_CLIENTS),
            ).outerjoin(
                _CAMPAIGNS,
                (campaigns.id == page.c.campaign_id) & _organization(_CAMPAIGNS),
            )
        )
        .order_by(page.c.created_at.desc(), page.c.id.desc())
    )


def _keyset_listing(
    names: tuple[str, ...],
    columns: ListingColumns,
    total: str | None,
    *,
    backward: bool,
    after: bool,
    before: bool,
    limit: int,
    spread: Mapping[str, int] | None = None,
) -> Select[Any]:
    """One statement: a keyset page of live messages (``limit`` rows, the extra one
    included), only ``columns``, their client's and campaign's columns when asked (joined
    after the LIMIT, scoped to the organization, soft-deleted clients included, as the
    GraphQL resolvers join them), and the filtered total in every row when ``total`` is
    ``"rollup"`` or ``"exact"``.

    Cursor values are the named parameters ``after_created_at``/``after_id`` and
    ``before_created_at``/``before_id``; the LIMIT is written into the SQL (see
    :func:`_offset_page_with_total`).
    """
    m = _MESSAGES.c
    keyset: list[ColumnElement[bool]] = []
    if after:
        keyset.append(
            tuple_(m.created_at, m.id)
            < tuple_(_bind("after_created_at", m.created_at), _bind("after_id", m.id))
        )
    if before:
        keyset.append(
            tuple_(m.created_at, m.id)
            > tuple_(_bind("before_created_at", m.created_at), _bind("before_id", m.id))
        )
    order = [m.created_at.asc(), m.id.asc()] if backward else [m.created_at.desc(), m.id.desc()]
    related = [m.client_id] if columns.client is not None else []
    related += [m.campaign_id] if columns.campaign is not None else []
    page = (
        select(*(m[name] for name in columns.message), *related)
        .where(_organization(_MESSAGES), m.deleted_at.is_(None))
        .where(*(_message_condition(name, spread=spread) for name in names), *keyset)
        .order_by(*order)
        .limit(literal_column(str(int(limit))))
        .subquery("page")
    )
    selected: list[Any] = [page.c[name] for name in columns.message]
    joined: Any = page
    if columns.client is not None:
        clients = _CLIENTS.c
        selected += [clients[name] for name in columns.client]
        joined = joined.outerjoin(
            _CLIENTS, (clients.id == page.c.client_id) & _organization(_CLIENTS)
        )
    if columns.campaign is not None:
        campaigns = _CAMPAIGNS.c
        selected += [campaigns[name] for name in columns.campaign]
        joined = joined.outerjoin(
            _CAMPAIGNS, (campaigns.id == page.c.campaign_id) & _organization(_CAMPAIGNS)
        )
    if total is not None:
        counted = _rollup_total if total == "rollup" else _exact_total
        selected.append(counted(names, spread=spread).scalar_subquery())
    outer_order = (
        [page.c.created_at.asc(), page.c.id.asc()]
        if backward
        else [page.c.created_at.desc(), page.c.id.desc()]
    )
    return select(*selected).select_from(joined).order_by(*outer_order)


class ListingColumns(NamedTuple):
    """Which columns a listing reads: of the message (``id`` and ``created_at`` first, the
    cursor's), and of its client and campaign (``id`` first; None: not joined)."""

    message: tuple[str, ...]
    client: tuple[str, ...] | None = None
    campaign: tuple[str, ...] | None = None


class MessageRepository(OrganizationScopedRepository[Message]):
    model = Message

    def live(self) -> Select[Any]:
        return self.scoped().where(Message.deleted_at.is_(None))

    def filtered(self, message_filter: MessageFilter) -> Select[Any]:
        """Live messages of the organization matching every given filter."""
        return self.live().where(*self.conditions(message_filter))

    @staticmethod
    def conditions(f: MessageFilter) -> list[ColumnElement[bool]]:
        return [
            _message_condition(name, value) for name, value in message_filter_parameters(f).items()
        ]

    async def listed_offset_page_with_total(
        self, message_filter: MessageFilter, page: OffsetPage, *, total_from_rollup: bool
    ) -> tuple[list[ListedMessage], int]:
        """A ``page``/``limit`` page as :class:`ListedMessage` rows, and the filtered total.

        Total from the rollup (``total_from_rollup``: the filter must only use what it
        counts) or an exact count. One round trip, on a statement built once per filter
        shape; rows are plain tuples, not ORM objects (no identity map, no change tracking).
        """
        values = message_filter_parameters(message_filter)
        names = tuple(values)
        values["organization_id"] = self.organization_id
        connection = await self.session.connection()
        rows: Sequence[Any]
        if connection.dialect.driver == "asyncpg":
            spread_values, lengths = spread_lists(values)
            shape = (names, tuple(lengths.items()), total_from_rollup, page.limit, page.offset)
            rows = await _fetch_compiled(
                connection,
                ("asyncpg offset page", *shape),
                lambda: _offset_page_with_total(
                    names, total_from_rollup, baked=page, spread=lengths
                ),
                spread_values,
            )
        else:
            statement = _cached(
                ("offset page", names, total_from_rollup),
                lambda: _offset_page_with_total(names, total_from_rollup),
            )
            parameters = {**values, "limit": page.limit, "offset": page.offset}
            rows = (await connection.execute(statement, parameters)).all()
        if rows:
            return [ListedMessage._make(row[:-1]) for row in rows], int(rows[0][-1])
        # Past the last page (or nothing matches): the total alone.
        total_statement = _cached(
            ("total", names, total_from_rollup),
            lambda: _rollup_total(names) if total_from_rollup else _exact_total(names),
        )
        return [], int((await connection.execute(total_statement, values)).scalar_one())

    async def keyset_listing(
        self,
        message_filter: MessageFilter,
        page: KeysetPage,
        columns: ListingColumns,
        *,
        total: str | None,
    ) -> tuple[Page[Sequence[Any]], int | None]:
        """A keyset page as plain rows of ``columns`` (see :func:`_keyset_listing`), and
        the filtered total when ``total`` says how to count it (``"rollup"``/``"exact"``).

        The GraphQL connections' compiled path (``mensajero.schema.compiled``): one round
        trip on a statement built once per shape, on asyncpg directly on PostgreSQL.
        The total needs a statement of its own only when the page holds no row.
        """
        if page.size == 0:
            found: Page[Sequence[Any]] = Page([], has_next=False, has_previous=False)
            return found, (await self._total(message_filter, total) if total else None)
        values = message_filter_parameters(message_filter)
        names = tuple(values)
        values["organization_id"] = self.organization_id
        if page.after is not None:
            values["after_created_at"] = page.after.created_at
            values["after_id"] = page.after.id
        if page.before is not None:
            values["before_created_at"] = page.before.created_at
            values["before_id"] = page.before.id
        shape = (
            names,
            columns,
            total,
            page.backward,
            page.after is not None,
            page.before is not None,
            page.size + 1,
        )
        listing = functools.partial(
            _keyset_listing,
            names,
            columns,
            total,
            backward=page.backward,
            after=page.after is not None,
            before=page.before is not None,
            limit=page.size + 1,
        )
        connection = await self.session.connection()
        rows: Sequence[Any]
        if connection.dialect.driver == "asyncpg":
            spread_values, lengths = spread_lists(values)
            rows = await _fetch_compiled(
                connection,
                ("asyncpg keyset listing", *shape, tuple(lengths.items())),
                lambda: listing(spread=lengths),
                spread_values,
            )
        else:
            statement = _cached(("keyset listing", *shape), listing)
            rows = (await connection.execute(statement, values)).all()
        found = page_from_rows(rows, page)
        if total is None:
            return found, None
        if rows:
            return found, int(rows[0][-1])
        return found, await self._total(message_filter, total)

    async def _total(self, message_filter: MessageFilter, total: str) -> int:
        values = message_filter_parameters(message_filter)
        names = tuple(values)
        statement = _cached(
            ("total", names, total == "rollup"),
            lambda: _rollup_total(names) if total == "rollup" else _exact_total(names),
        )
        values["organization_id"] = self.organization_id
        connection = await self.session.connection()
        return int((await connection.execute(statement, values)).scalar_one())

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

    async def count(self, message_filter: MessageFilter) -> int:
        """Messages matching ``message_filter``, which must only filter on what the rollup
        counts (statuses, channels, communication types, direction, hour-aligned range)."""
        values = message_filter_parameters(message_filter)
        names = tuple(values)
        statement = _cached(("total", names, True), lambda: _rollup_total(names))
        values["organization_id"] = self.organization_id
        return int((await self.session.execute(statement, values)).scalar_one())


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
    "ListedMessage",
    "LogEventRepository",
    "MessageCountRepository",
    "MessageRepository",
    "compact_message_counts",
    "recipient_candidates",
]
