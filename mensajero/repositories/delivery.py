"""SQL of the delivery state machine: claiming attempts, batch transitions, timelines.

Not organization-scoped on purpose: its callers are system actors (the dispatch
worker, provider webhooks, the reconciler) that reach an attempt by its id or by
the provider's external id, never on behalf of a caller's organization. Every
row they touch carries its own ``organization_id``, which the events they
publish keep.

Batch statements have one form per dialect: PostgreSQL gets one statement per
batch (``UPDATE ... FROM unnest(...)``, ``INSERT ... SELECT FROM unnest(...)``,
arrays as parameters), SQLite a statement per row on its in-process connection
(no network round trips, so the loop costs little).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Row, and_, func, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from mensajero.models import (
    ChannelConfig,
    Client,
    CommunicationLog,
    Conversation,
    ConversationStatus,
    Direction,
    LogEvent,
    Message,
    MessageStatus,
    TimelineEventType,
    uuid7,
    uuid7_strings,
)

_logs = CommunicationLog.__table__  # type: ignore[attr-defined]
_messages = Message.__table__  # type: ignore[attr-defined]
_events = LogEvent.__table__  # type: ignore[attr-defined]

CLAIMABLE_STATUSES = (MessageStatus.QUEUED.value, MessageStatus.SCHEDULED.value)


def dialect_name(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


@dataclass(frozen=True, slots=True)
class ClaimedAttempt:
    """An attempt this worker now holds in SENDING, with what sending it needs."""

    id: uuid.UUID
    organization_id: uuid.UUID
    message_id: uuid.UUID
    client_id: uuid.UUID | None
    campaign_id: uuid.UUID | None
    channel: str
    recipient: str
    attempt_number: int
    previous_status: str
    provider_metadata: dict[str, Any]
    body: str
    subject: str | None
    html: str | None
    template_id: str | None
    queue_id: str | None
    communication_type: str
    author_member_id: uuid.UUID | None
    message_metadata: dict[str, Any]

    @property
    def retries(self) -> int:
        return int(self.provider_metadata.get("retries", 0))


@dataclass(frozen=True, slots=True)
class EventRow:
    """One timeline entry to insert (``dedup_key`` None: never deduplicated)."""

    organization_id: uuid.UUID
    log_id: uuid.UUID
    event: str
    occurred_at: datetime
    dedup_key: str | None = None
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class LatestStatusRow:
    """A status to copy onto the message if ``log_id`` is still its latest attempt."""

    message_id: uuid.UUID
    log_id: uuid.UUID
    attempt_number: int
    status: str
    provider: str | None = None
    sent_at: datetime | None = None


# --- claiming ----------------------------------------------------------------------------------


async def claim_attempts(
    session: AsyncSession, log_ids: Sequence[uuid.UUID], *, now: datetime
) -> list[ClaimedAttempt]:
    """Move the due QUEUED/SCHEDULED attempts among ``log_ids`` to SENDING (the dispatch
    worker uses :func:`claim_and_mark_sending` on PostgreSQL).

    PostgreSQL locks the rows with ``FOR UPDATE SKIP LOCKED``: a concurrent
    claimer of the same ids (a job running twice) skips them, and the status
    re-check in the UPDATE makes the claim exclusive either way. SQLite runs one
    writer at a time (BEGIN IMMEDIATE), so the select and the update cannot
    interleave with another claim.
    """
    if not log_ids:
        return []
    statement = (
        _attempt_select()
        .where(
            _logs.c.id.in_(list(log_ids)),
            _logs.c.status.in_(CLAIMABLE_STATUSES),
            or_(_logs.c.not_before.is_(None), _logs.c.not_before <= now),
        )
        .with_for_update(of=_logs, skip_locked=True)
    )
    rows = (await session.execute(statement)).all()
    if not rows:
        return []
    claimed_ids = [row.id for row in rows]
    result = await session.execute(
        update(_logs)
        .where(_logs.c.id.in_(claimed_ids), _logs.c.status.in_(CLAIMABLE_STATUSES))
        .values(status=MessageStatus.SENDING.value, updated_at=now)
        .returning(_logs.c.id)
    )
    updated = set(result.scalars())
    return [_claimed(row) for row in rows if row.id in updated]


def _is_latest_attempt(alias: str, log_id: str = "id") -> str:
    """SQL: attempt ``alias`` (with ``message_id``, ``attempt_number`` and ``log_id``)
    is its message's latest, the one whose status the message shows."""
    return f"""NOT EXISTS (
            SELECT 1 FROM communication_logs AS n
            WHERE n.message_id = {alias}.message_id
              AND (n.attempt_number > {alias}.attempt_number
                   OR (n.attempt_number = {alias}.attempt_number AND n.id > {alias}.{log_id})))"""


# The claim on PostgreSQL, in one statement and one round trip: lock the due rows
# (SKIP LOCKED: a concurrent claimer of the same ids skips them), move them to
# SENDING, append their SENDING timeline entries, copy SENDING onto the messages
# whose latest attempt they are, and return what sending needs. The CTEs share one
# snapshot; each table is written once, so the rollup triggers (statement-level,
# on transition tables) see exactly what the separate statements showed them.
# Timeline ids (uuid7, made in Python) come in aligned with the requested ids.
_CLAIM_SQL = text(
    f"""
    WITH requested AS (
        SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:event_ids AS uuid[]))
            AS r(id, event_id)
    ), claimable AS (
        SELECT l.id, l.status, r.event_id
        FROM communication_logs AS l JOIN requested AS r ON r.id = l.id
        WHERE l.status IN ('QUEUED', 'SCHEDULED')
          AND (l.not_before IS NULL OR l.not_before <= :now)
        FOR UPDATE OF l SKIP LOCKED
    ), claimed AS (
        UPDATE communication_logs AS l
        SET status = 'SENDING', updated_at = :now
        FROM claimable AS c
        WHERE l.id = c.id AND l.status IN ('QUEUED', 'SCHEDULED')
        RETURNING l.id, l.organization_id, l.message_id, l.client_id, l.campaign_id,
                  l.channel, l.recipient, l.attempt_number, c.status AS previous_status,
                  COALESCE(l.provider_metadata, '{{}}'::jsonb) AS provider_metadata,
                  l.body_override, c.event_id
    ), timeline AS (
        INSERT INTO log_events
            (id, created_at, organization_id, log_id, event, occurred_at, dedup_key, metadata)
        SELECT event_id, :now, organization_id, id, :event, :now, NULL,
               CASE WHEN retries > 0 THEN jsonb_build_object('attempt', retries + 1) END
        FROM (SELECT *, COALESCE(trunc((provider_metadata ->> 'retries')::numeric)::int, 0)
                        AS retries
              FROM claimed) AS c
        ON CONFLICT DO NOTHING
    ), latest AS (
        UPDATE messages AS m
        SET status = 'SENDING', updated_at = :now
        FROM claimed AS c
        WHERE m.id = c.message_id
          AND {_is_latest_attempt("c")}
    )
    SELECT c.id, c.organization_id, c.message_id, c.client_id, c.campaign_id, c.channel,
           c.recipient, c.attempt_number, c.previous_status, c.provider_metadata,
           COALESCE(c.body_override, m.body), m.subject, m.html, m.template_id, m.queue_id,
           m.communication_type, m.author_member_id, COALESCE(m.metadata, '{{}}'::jsonb)
    FROM claimed AS c JOIN messages AS m ON m.id = c.message_id
    """
)


async def claim_and_mark_sending(
    session: AsyncSession, log_ids: Sequence[uuid.UUID], *, now: datetime
) -> list[ClaimedAttempt]:
    """PostgreSQL: :func:`claim_attempts` plus the SENDING timeline entries and message
    statuses, in one statement (see ``_CLAIM_SQL``)."""
    if not log_ids:
        return []
    result = await session.execute(
        _CLAIM_SQL,
        {
            "ids": list(log_ids),
            "event_ids": list(uuid7_strings(len(log_ids))),
            "event": TimelineEventType.SENDING.value,
            "now": now,
        },
    )
    # Columns in ClaimedAttempt's field order.
    return [ClaimedAttempt(*row) for row in result]


def _attempt_select() -> Any:
    return select(
        _logs.c.id,
        _logs.c.organization_id,
        _logs.c.message_id,
        _logs.c.client_id,
        _logs.c.campaign_id,
        _logs.c.channel,
        _logs.c.recipient,
        _logs.c.attempt_number,
        _logs.c.status,
        _logs.c.provider_metadata,
        _logs.c.body_override,
        _logs.c.provider,
        _logs.c.external_id,
        _messages.c.body,
        _messages.c.subject,
        _messages.c.html,
        _messages.c.template_id,
        _messages.c.queue_id,
        _messages.c.communication_type,
        _messages.c.author_member_id,
        _messages.c.metadata,
    ).join(_messages, _messages.c.id == _logs.c.message_id)


def _claimed(row: Row[Any]) -> ClaimedAttempt:
    return ClaimedAttempt(
        id=row.id,
        organization_id=row.organization_id,
        message_id=row.message_id,
        client_id=row.client_id,
        campaign_id=row.campaign_id,
        channel=row.channel,
        recipient=row.recipient,
        attempt_number=row.attempt_number,
        previous_status=row.status,
        provider_metadata=dict(row.provider_metadata or {}),
        body=row.body_override if row.body_override is not None else row.body,
        subject=row.subject,
        html=row.html,
        template_id=row.template_id,
        queue_id=row.queue_id,
        communication_type=row.communication_type,
        author_member_id=row.author_member_id,
        message_metadata=dict(row.metadata or {}),
    )


async def channel_configs(
    session: AsyncSession, organization_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, ChannelConfig]:
    if not organization_ids:
        return {}
    result = await session.execute(
        select(ChannelConfig).where(ChannelConfig.organization_id.in_(set(organization_ids)))
    )
    return {config.organization_id: config for config in result.scalars()}


# --- batch transitions -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SentRow:
    log_id: uuid.UUID
    provider: str
    external_id: str
    sent_at: datetime


async def mark_sent(
    session: AsyncSession, rows: Sequence[SentRow], *, now: datetime
) -> set[uuid.UUID]:
    """SENDING -> SENT with the provider's ids, for the attempts still SENDING (SQLite:
    a statement per row; PostgreSQL uses :func:`mark_sent_with_timeline`).

    Returns the ids updated; the others moved meanwhile (a provider callback
    overtook us) and go through the single-attempt path.
    """
    if not rows:
        return set()
    updated: set[uuid.UUID] = set()
    for row in rows:
        result = await session.execute(
            update(_logs)
            .where(_logs.c.id == row.log_id, _logs.c.status == MessageStatus.SENDING.value)
            .values(
                status=MessageStatus.SENT.value,
                provider=row.provider,
                external_id=row.external_id,
                sent_at=row.sent_at,
                updated_at=now,
            )
            .returning(_logs.c.id)
        )
        updated.update(result.scalars())
    return updated


# SENDING -> SENT on PostgreSQL in one statement: the attempts still SENDING take the
# provider's ids, get their SENT timeline entry (ids made in Python, aligned with the
# rows) and copy SENT onto the messages whose latest attempt they are. Returns the
# ids updated. Same trigger reasoning as ``_CLAIM_SQL``.
_MARK_SENT_SQL = text(
    f"""
    WITH v AS (
        SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:providers AS text[]),
                             CAST(:external_ids AS text[]), CAST(:sent_ats AS timestamptz[]),
                             CAST(:event_ids AS uuid[]))
            AS v(id, provider, external_id, sent_at, event_id)
    ), sent AS (
        UPDATE communication_logs AS l
        SET status = 'SENT', provider = v.provider, external_id = v.external_id,
            sent_at = COALESCE(l.sent_at, v.sent_at), updated_at = :now
        FROM v
        WHERE l.id = v.id AND l.status = 'SENDING'
        RETURNING l.id, l.organization_id, l.message_id, l.attempt_number, v.provider,
                  v.external_id, v.sent_at, v.event_id
    ), timeline AS (
        INSERT INTO log_events
            (id, created_at, organization_id, log_id, event, occurred_at, dedup_key, metadata)
        SELECT event_id, :now, organization_id, id, :event, sent_at, :dedup_key,
               jsonb_build_object('provider', provider, 'externalId', external_id)
        FROM sent
        ON CONFLICT DO NOTHING
    ), latest AS (
        UPDATE messages AS m
        SET status = 'SENT', provider = COALESCE(s.provider, m.provider),
            sent_at = COALESCE(m.sent_at, s.sent_at), updated_at = :now
        FROM sent AS s
        WHERE m.id = s.message_id
          AND {_is_latest_attempt("s")}
    )
    SELECT id FROM sent
    """
)


async def mark_sent_with_timeline(
    session: AsyncSession,
    *,
    log_ids: Sequence[uuid.UUID],
    providers: Sequence[str],
    external_ids: Sequence[str],
    sent_ats: Sequence[datetime],
    dedup_key: str,
    now: datetime,
) -> set[uuid.UUID]:
    """PostgreSQL: :func:`mark_sent` plus the SENT timeline entries (``dedup_key``) and
    message statuses, in one statement (see ``_MARK_SENT_SQL``). Columns, not rows:
    they go to PostgreSQL as arrays."""
    if not log_ids:
        return set()
    result = await session.execute(
        _MARK_SENT_SQL,
        {
            "ids": log_ids,
            "providers": providers,
            "external_ids": external_ids,
            "sent_ats": sent_ats,
            "event_ids": list(uuid7_strings(len(log_ids))),
            "event": TimelineEventType.SENT.value,
            "dedup_key": dedup_key,
            "now": now,
        },
    )
    return set(result.scalars())


async def requeue(
    session: AsyncSession,
    log_id: uuid.UUID,
    *,
    provider_metadata: dict[str, Any],
    not_before: datetime | None,
    now: datetime,
) -> bool:
    """SENDING -> QUEUED: give a claim back (retry later, or recover a dead worker's claim)."""
    result = await session.execute(
        update(_logs)
        .where(_logs.c.id == log_id, _logs.c.status == MessageStatus.SENDING.value)
        .values(
            status=MessageStatus.QUEUED.value,
            provider_metadata=provider_metadata,
            not_before=not_before,
            updated_at=now,
        )
        .returning(_logs.c.id)
    )
    return result.scalar_one_or_none() is not None


async def copy_status_to_latest_messages(
    session: AsyncSession, rows: Sequence[LatestStatusRow], *, now: datetime
) -> None:
    """A message shows its latest attempt's status: copy it where ``log_id`` is the latest."""
    if not rows:
        return
    if dialect_name(session) == "postgresql":
        await session.execute(
            text(
                f"""
                UPDATE messages AS m
                SET status = v.status, provider = COALESCE(v.provider, m.provider),
                    sent_at = COALESCE(m.sent_at, v.sent_at), updated_at = :now
                FROM unnest(CAST(:message_ids AS uuid[]), CAST(:log_ids AS uuid[]),
                            CAST(:attempt_numbers AS int[]), CAST(:statuses AS text[]),
                            CAST(:providers AS text[]), CAST(:sent_ats AS timestamptz[]))
                     AS v(message_id, log_id, attempt_number, status, provider, sent_at)
                WHERE m.id = v.message_id
                  AND {_is_latest_attempt("v", "log_id")}
                """
            ),
            {
                "message_ids": [row.message_id for row in rows],
                "log_ids": [row.log_id for row in rows],
                "attempt_numbers": [row.attempt_number for row in rows],
                "statuses": [row.status for row in rows],
                "providers": [row.provider for row in rows],
                "sent_ats": [row.sent_at for row in rows],
                "now": now,
            },
        )
        return
    for row in rows:
        await copy_status_to_message(session, row, now=now)


async def copy_status_to_message(
    session: AsyncSession,
    row: LatestStatusRow,
    *,
    now: datetime,
    error_message: str | None = None,
) -> bool:
    newer = aliased(CommunicationLog)
    is_latest = ~(
        select(newer.id)
        .where(
            newer.message_id == row.message_id,
            or_(
                newer.attempt_number > row.attempt_number,
                and_(newer.attempt_number == row.attempt_number, newer.id > row.log_id),
            ),
        )
        .exists()
    )
    values: dict[str, Any] = {"status": row.status, "updated_at": now}
    if row.provider is not None:
        values["provider"] = row.provider
    if row.sent_at is not None:
        values["sent_at"] = func.coalesce(_messages.c.sent_at, row.sent_at)
    if error_message is not None:
        values["error_message"] = error_message
    result = await session.execute(
        update(_messages)
        .where(_messages.c.id == row.message_id, is_latest)
        .values(**values)
        .returning(_messages.c.id)
    )
    return result.scalar_one_or_none() is not None


# --- timeline ----------------------------------------------------------------------------------


async def insert_events(session: AsyncSession, rows: Sequence[EventRow], *, now: datetime) -> None:
    """Append timeline entries; an entry whose (log, dedup_key) exists is skipped."""
    if not rows:
        return
    if dialect_name(session) == "postgresql":
        await session.execute(
            text(
                """
                INSERT INTO log_events
                    (id, created_at, organization_id, log_id, event, occurred_at, dedup_key,
                     metadata)
                SELECT v.id, :now, v.organization_id, v.log_id, v.event, v.occurred_at,
                       v.dedup_key, CAST(v.metadata AS jsonb)
                FROM unnest(CAST(:ids AS uuid[]), CAST(:organization_ids AS uuid[]),
                            CAST(:log_ids AS uuid[]), CAST(:events AS text[]),
                            CAST(:occurred_ats AS timestamptz[]), CAST(:dedup_keys AS text[]),
                            CAST(:metadata AS text[]))
                     AS v(id, organization_id, log_id, event, occurred_at, dedup_key, metadata)
                ON CONFLICT DO NOTHING
                """
            ),
            {
                "ids": [uuid7() for _ in rows],
                "organization_ids": [row.organization_id for row in rows],
                "log_ids": [row.log_id for row in rows],
                "events": [row.event for row in rows],
                "occurred_ats": [row.occurred_at for row in rows],
                "dedup_keys": [row.dedup_key for row in rows],
                "metadata": [
                    None if row.metadata is None else orjson.dumps(row.metadata).decode()
                    for row in rows
                ],
                "now": now,
            },
        )
        return
    await session.execute(
        sqlite.insert(_events).on_conflict_do_nothing(),
        [_event_values(row, now=now) for row in rows],
    )


async def insert_event_once(session: AsyncSession, row: EventRow, *, now: datetime) -> bool:
    """Append one timeline entry; False when its (log, dedup_key) was already recorded."""
    insert = postgresql.insert if dialect_name(session) == "postgresql" else sqlite.insert
    result = await session.execute(
        insert(_events)
        .values(**_event_values(row, now=now))
        .on_conflict_do_nothing()
        .returning(_events.c.id)
    )
    return result.scalar_one_or_none() is not None


def _event_values(row: EventRow, *, now: datetime) -> dict[str, Any]:
    return {
        "id": uuid7(),
        "created_at": now,
        "organization_id": row.organization_id,
        "log_id": row.log_id,
        "event": row.event,
        "occurred_at": row.occurred_at,
        "dedup_key": row.dedup_key,
        "metadata": row.metadata,
    }


# --- single attempts ---------------------------------------------------------------------------


async def lock_attempt(
    session: AsyncSession, log_id: uuid.UUID
) -> tuple[CommunicationLog, Message] | None:
    """The attempt and its message, the attempt's row locked until the transaction ends."""
    result = await session.execute(
        select(CommunicationLog, Message)
        .join(Message, Message.id == CommunicationLog.message_id)
        .where(CommunicationLog.id == log_id)
        .with_for_update(of=CommunicationLog)
        .execution_options(populate_existing=True)
    )
    row = result.first()
    return None if row is None else (row[0], row[1])


async def find_attempt_id(
    session: AsyncSession,
    *,
    provider: str,
    external_id: str,
    attempt_id: uuid.UUID | None = None,
) -> uuid.UUID | None:
    """The attempt a provider callback is about: by the provider's id, else by our id.

    The attempt id (echoed by providers that carry it) finds attempts whose
    external id was never saved (the worker died between the send and the save),
    but only if the attempt is not bound to a different provider message already.
    """
    result = await session.execute(
        select(_logs.c.id).where(_logs.c.provider == provider, _logs.c.external_id == external_id)
    )
    found = result.scalar_one_or_none()
    if found is not None or attempt_id is None:
        return found
    result = await session.execute(
        select(_logs.c.id).where(
            _logs.c.id == attempt_id,
            _logs.c.direction == Direction.OUTBOUND.value,
            or_(_logs.c.external_id.is_(None), _logs.c.provider != provider),
        )
    )
    return result.scalar_one_or_none()


async def is_latest_attempt(session: AsyncSession, log: CommunicationLog) -> bool:
    newer = aliased(CommunicationLog)
    result = await session.execute(
        select(newer.id)
        .where(
            newer.message_id == log.message_id,
            or_(
                newer.attempt_number > log.attempt_number,
                and_(newer.attempt_number == log.attempt_number, newer.id > log.id),
            ),
        )
        .limit(1)
    )
    return result.scalar_one_or_none() is None


async def get_client(session: AsyncSession, client_id: uuid.UUID) -> Client | None:
    return await session.get(Client, client_id)


# --- conversations: first response -------------------------------------------------------------


async def conversations_awaiting_first_response(
    session: AsyncSession, *, organization_id: uuid.UUID, client_id: uuid.UUID, before: datetime
) -> list[Conversation]:
    """Unresolved conversations of a client opened before ``before`` with no response yet."""
    result = await session.execute(
        select(Conversation)
        .where(
            Conversation.organization_id == organization_id,
            Conversation.client_id == client_id,
            Conversation.status != ConversationStatus.RESOLVED.value,
            Conversation.first_response_at.is_(None),
            Conversation.opened_at <= before,
        )
        .with_for_update()
    )
    return list(result.scalars())


# --- reconciler --------------------------------------------------------------------------------


async def find_lost_queued(
    session: AsyncSession, *, stale_before: datetime, limit: int
) -> list[uuid.UUID]:
    """QUEUED/SCHEDULED attempts due for longer than the threshold: their job was lost."""
    result = await session.execute(
        select(_logs.c.id)
        .where(
            _logs.c.status.in_(CLAIMABLE_STATUSES),
            _logs.c.updated_at < stale_before,
            or_(_logs.c.not_before.is_(None), _logs.c.not_before < stale_before),
        )
        .order_by(_logs.c.updated_at)
        .limit(limit)
    )
    return list(result.scalars())


async def find_stuck_sending(
    session: AsyncSession, *, stale_before: datetime, limit: int
) -> list[tuple[ClaimedAttempt, str | None, str | None]]:
    """Claims older than the threshold, locked: (attempt, external id, provider)."""
    result = await session.execute(
        _attempt_select()
        .where(_logs.c.status == MessageStatus.SENDING.value, _logs.c.updated_at < stale_before)
        .order_by(_logs.c.updated_at)
        .limit(limit)
        .with_for_update(of=_logs, skip_locked=True)
    )
    return [(_claimed(row), row.external_id, row.provider) for row in result]


# --- inbound replies ---------------------------------------------------------------------------


async def find_log_by_external_id(
    session: AsyncSession, *, provider: str, external_id: str
) -> uuid.UUID | None:
    result = await session.execute(
        select(_logs.c.id).where(_logs.c.provider == provider, _logs.c.external_id == external_id)
    )
    return result.scalar_one_or_none()


async def latest_outbound_to(
    session: AsyncSession, *, channel: str, recipient: str
) -> tuple[uuid.UUID, uuid.UUID | None] | None:
    """(organization_id, client_id) of the newest outbound attempt to ``recipient``, any org."""
    result = await session.execute(
        select(_logs.c.organization_id, _logs.c.client_id)
        .where(
            _logs.c.channel == channel,
            _logs.c.recipient == recipient,
            _logs.c.direction == Direction.OUTBOUND.value,
        )
        .order_by(_logs.c.created_at.desc())
        .limit(1)
    )
    row = result.first()
    return None if row is None else (row.organization_id, row.client_id)


async def organizations_with_client_phone(
    session: AsyncSession, phone_e164: str, *, limit: int = 2
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(organization_id, client_id) of live clients with this phone, across organizations."""
    result = await session.execute(
        select(Client.organization_id, Client.id)
        .where(Client.phone_e164 == phone_e164, Client.deleted_at.is_(None))
        .order_by(Client.created_at.desc())
        .limit(limit)
    )
    return [(row[0], row[1]) for row in result]


async def client_by_phone(
    session: AsyncSession, *, organization_id: uuid.UUID, phone_e164: str
) -> Client | None:
    result = await session.execute(
        select(Client)
        .where(
            Client.organization_id == organization_id,
            Client.phone_e164 == phone_e164,
            Client.deleted_at.is_(None),
        )
        .order_by(Client.created_at.desc())
        .limit(1)
    )
    return result.scalar_one_or_none()


async def last_outbound_log_to_client(
    session: AsyncSession, *, organization_id: uuid.UUID, client_id: uuid.UUID, channel: str
) -> CommunicationLog | None:
    result = await session.execute(
        select(CommunicationLog)
        .where(
            CommunicationLog.organization_id == organization_id,
            CommunicationLog.client_id == client_id,
            CommunicationLog.channel == channel,
            CommunicationLog.direction == Direction.OUTBOUND.value,
        )
        .order_by(CommunicationLog.created_at.desc(), CommunicationLog.id.desc())
        .limit(1)
        .with_for_update()
    )
    return result.scalar_one_or_none()


async def open_conversation(
    session: AsyncSession, *, organization_id: uuid.UUID, client_id: uuid.UUID, channel: str
) -> Conversation | None:
    result = await session.execute(
        select(Conversation)
        .where(
            Conversation.organization_id == organization_id,
            Conversation.client_id == client_id,
            Conversation.channel == channel,
            Conversation.status != ConversationStatus.RESOLVED.value,
        )
        .order_by(Conversation.opened_at.desc())
        .limit(1)
        .with_for_update()
    )
    return result.scalar_one_or_none()


async def renew_claims(
    session: AsyncSession, log_ids: Sequence[uuid.UUID], *, now: datetime
) -> None:
    """Keep a live worker's claims fresh, so the reconciler never takes them for abandoned."""
    if log_ids:
        await session.execute(
            update(_logs)
            .where(_logs.c.id.in_(list(log_ids)), _logs.c.status == MessageStatus.SENDING.value)
            .values(updated_at=now)
        )
