"""THE delivery state machine: every status change of an attempt goes through here.

Each transition persists the attempt's status and timestamps (and the
message's, when the attempt is the message's latest), appends a timeline event
and defers a :class:`~mensajero.events.StatusEvent`, published after the commit.

Status rules (SPEC section 4)
-----------------------------
* The positive chain only moves forward:
  ``SCHEDULED < QUEUED < SENDING < SENT < DELIVERED < READ``. A late ``delivered``
  after ``read`` is recorded on the timeline (and fills ``delivered_at`` with its
  real, earlier time) but the status stays READ. ``read`` implies delivered:
  it fills ``delivered_at`` (and ``sent_at``) when they are missing.
* Failures ``UNDELIVERED``, ``BOUNCED``, ``FAILED``, ``CANCELED`` and the inbound
  ``RECEIVED`` are terminal: nothing moves an attempt out of them. A late
  ``delivered`` after ``undelivered`` is recorded on the timeline only: a
  provider cannot un-fail a message, and reports must not count it twice.
* A failure after ``DELIVERED``/``READ`` is recorded, not applied (the
  recipient has the message). ``CANCELED`` applies only before sending
  (SCHEDULED/QUEUED).
* The one step back is the worker's own: a claim (SENDING) that never reached
  a provider is given back to QUEUED (transient error to retry, or a dead
  worker's claim recovered) by :func:`requeue_attempt`. Provider events can
  never move an attempt to SCHEDULED/QUEUED/SENDING.
* Engagement (``opened``, ``clicked``) and informational events (a provider's
  own "queued") set their timestamps and go on the timeline without changing
  the status; their published event has ``previous_status == status``.

Idempotency: each status event has one key per attempt (``status:<event>``),
each engagement event the provider's own key; the unique (log_id, dedup_key)
index makes a repeated event insert nothing, and then nothing else changes and
nothing is published.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mensajero import events
from mensajero.models import (
    Channel,
    CommunicationLog,
    CommunicationType,
    Direction,
    Message,
    MessageStatus,
    TimelineEventType,
    utcnow,
)
from mensajero.providers.base import ProviderAccepted, ProviderError, ProviderEvent
from mensajero.repositories import delivery as repository
from mensajero.repositories.delivery import ClaimedAttempt, EventRow, LatestStatusRow, SentRow
from mensajero.services import webhook as webhook_service
from mensajero.services.errors import InsufficientCredits

logger = logging.getLogger(__name__)

POSITIVE_RANK: dict[str, int] = {
    MessageStatus.SCHEDULED: 0,
    MessageStatus.QUEUED: 1,
    MessageStatus.SENDING: 2,
    MessageStatus.SENT: 3,
    MessageStatus.DELIVERED: 4,
    MessageStatus.READ: 5,
}
FAILURE_STATUSES: frozenset[str] = frozenset(
    {
        MessageStatus.UNDELIVERED,
        MessageStatus.BOUNCED,
        MessageStatus.FAILED,
        MessageStatus.CANCELED,
    }
)
TERMINAL_STATUSES: frozenset[str] = FAILURE_STATUSES | {MessageStatus.RECEIVED}
_CANCELABLE: frozenset[str] = frozenset({MessageStatus.SCHEDULED, MessageStatus.QUEUED})
_DELIVERED_OR_BETTER: frozenset[str] = frozenset({MessageStatus.DELIVERED, MessageStatus.READ})
# WhatsApp failures that make the organization's fallback channel try instead.
_FALLBACK_TRIGGERS: frozenset[str] = frozenset({MessageStatus.FAILED, MessageStatus.UNDELIVERED})

# The timeline event that records reaching each status.
STATUS_EVENT: dict[str, TimelineEventType] = {
    MessageStatus.SCHEDULED: TimelineEventType.SCHEDULED,
    MessageStatus.QUEUED: TimelineEventType.QUEUED,
    MessageStatus.SENDING: TimelineEventType.SENDING,
    MessageStatus.SENT: TimelineEventType.SENT,
    MessageStatus.DELIVERED: TimelineEventType.DELIVERED,
    MessageStatus.READ: TimelineEventType.READ,
    MessageStatus.UNDELIVERED: TimelineEventType.UNDELIVERED,
    MessageStatus.BOUNCED: TimelineEventType.BOUNCED,
    MessageStatus.FAILED: TimelineEventType.FAILED,
    MessageStatus.CANCELED: TimelineEventType.CANCELED,
    MessageStatus.RECEIVED: TimelineEventType.RECEIVED,
}


def resolve_status(current: str, target: str | None) -> str:
    """The status after an event asking for ``target``: the rules of the module docstring."""
    if target is None or target == current or current in TERMINAL_STATUSES:
        return current
    if target in FAILURE_STATUSES:
        if current in _DELIVERED_OR_BETTER:
            return current
        if target == MessageStatus.CANCELED and current not in _CANCELABLE:
            return current
        return target
    if target not in POSITIVE_RANK:  # RECEIVED is only ever an inbound attempt's first status
        return current
    return target if POSITIVE_RANK[target] > POSITIVE_RANK.get(current, -1) else current


def status_dedup_key(event: TimelineEventType | str) -> str:
    """Reaching a status is recorded once per attempt, whoever reports it."""
    return f"status:{event}"


@dataclass(frozen=True, slots=True)
class Transition:
    """An event about one attempt: a status to reach (or None) and what it brings."""

    event: TimelineEventType
    status: MessageStatus | None
    occurred_at: datetime
    dedup_key: str | None = None
    provider: str | None = None
    external_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_provider_event(cls, event: ProviderEvent) -> Transition:
        status = event.status
        if status is not None and status not in FAILURE_STATUSES and status not in POSITIVE_RANK:
            status = None
        if status is not None and POSITIVE_RANK.get(status, 99) < POSITIVE_RANK[MessageStatus.SENT]:
            status = None  # providers cannot move an attempt back into our own queue
        metadata = dict(event.metadata)
        metadata.setdefault("provider", event.provider)
        return cls(
            event=event.event,
            status=status,
            occurred_at=event.occurred_at,
            dedup_key=status_dedup_key(event.event) if status is not None else event.dedup_key,
            provider=event.provider,
            external_id=event.external_id,
            error_code=event.error_code,
            error_message=event.error_message,
            metadata=metadata,
        )


@dataclass(frozen=True, slots=True)
class TransitionOutcome:
    log_id: uuid.UUID
    applied: bool  # False: a duplicate, nothing changed
    previous_status: str
    status: str

    @property
    def status_changed(self) -> bool:
        return self.applied and self.previous_status != self.status


# --- one attempt -------------------------------------------------------------------------------


async def apply_transition(
    session: AsyncSession,
    *,
    log_id: uuid.UUID,
    transition: Transition,
    now: datetime | None = None,
) -> TransitionOutcome | None:
    """Apply one event to one attempt; None if the attempt does not exist.

    The attempt's row stays locked until the transaction ends, so concurrent
    callbacks about the same attempt apply one after the other.
    """
    now = now or utcnow()
    locked = await repository.lock_attempt(session, log_id)
    if locked is None:
        return None
    log, message = locked
    # The provider's id is worth keeping even from a duplicate event: it may be
    # the first time we hear it (the worker died before saving it).
    if transition.external_id and log.external_id is None:
        log.external_id = transition.external_id
        log.provider = transition.provider or log.provider
    inserted = await repository.insert_event_once(
        session,
        EventRow(
            organization_id=log.organization_id,
            log_id=log.id,
            event=transition.event,
            occurred_at=transition.occurred_at,
            dedup_key=transition.dedup_key,
            metadata=transition.metadata or None,
        ),
        now=now,
    )
    previous = log.status
    if not inserted:
        log.updated_at = now if session.is_modified(log) else log.updated_at
        await session.flush()
        return TransitionOutcome(log.id, False, previous, previous)
    status = resolve_status(previous, transition.status)
    _apply_timestamps(log, transition, status)
    if status != previous:
        log.status = status
        if status in FAILURE_STATUSES:
            log.failed_at = log.failed_at or transition.occurred_at
            log.error_code = (transition.error_code or log.error_code or status.lower())[:64]
            log.error_message = transition.error_message or log.error_message
    log.updated_at = now
    await session.flush()
    if status != previous and await repository.is_latest_attempt(session, log):
        # A message shows its latest attempt's status.
        message.status = log.status
        message.provider = log.provider or message.provider
        message.sent_at = message.sent_at or log.sent_at
        if status in FAILURE_STATUSES:
            message.error_message = log.error_message
        message.updated_at = now
        await session.flush()
    await _defer_events(
        session,
        [
            _status_event(
                log,
                message,
                event=transition.event,
                previous_status=previous,
                occurred_at=transition.occurred_at,
                metadata=_event_metadata(transition),
            )
        ],
    )
    if status != previous:
        await _after_status_change(session, log=log, message=message, now=now)
    return TransitionOutcome(log.id, True, previous, status)


async def apply_provider_event(
    session: AsyncSession, *, event: ProviderEvent, now: datetime | None = None
) -> TransitionOutcome | None:
    """Apply a provider callback; None when it is about an attempt we do not know."""
    log_id = await repository.find_attempt_id(
        session,
        provider=event.provider,
        external_id=event.external_id,
        attempt_id=event.attempt_id,
    )
    if log_id is None:
        logger.info(
            "provider event for an unknown attempt ignored",
            extra={"provider": event.provider, "external_id": event.external_id},
        )
        return None
    return await apply_transition(
        session, log_id=log_id, transition=Transition.from_provider_event(event), now=now
    )


def _apply_timestamps(log: CommunicationLog, transition: Transition, status: str) -> None:
    """Fill the attempt's timestamps with the earliest time each fact is known."""
    at = transition.occurred_at
    event = transition.event
    positive = status not in FAILURE_STATUSES
    if event == TimelineEventType.OPENED:
        log.opened_at = _earliest(log.opened_at, at)
    elif event == TimelineEventType.CLICKED:
        log.clicked_at = _earliest(log.clicked_at, at)
        log.opened_at = log.opened_at or at  # a click implies the email was opened
    if not positive or transition.status is None:
        return
    if transition.status == MessageStatus.SENT:
        log.sent_at = _earliest(log.sent_at, at)
    elif transition.status == MessageStatus.DELIVERED:
        log.delivered_at = _earliest(log.delivered_at, at)
        log.sent_at = log.sent_at or at
    elif transition.status == MessageStatus.READ:
        log.read_at = _earliest(log.read_at, at)
        log.delivered_at = log.delivered_at or at
        log.sent_at = log.sent_at or at


def _earliest(current: datetime | None, candidate: datetime) -> datetime:
    return candidate if current is None or candidate < current else current


def _event_metadata(transition: Transition) -> dict[str, Any]:
    metadata = dict(transition.metadata)
    if transition.error_code:
        metadata["errorCode"] = transition.error_code
    if transition.error_message:
        metadata["errorMessage"] = transition.error_message
    return metadata


async def _defer_events(session: AsyncSession, status_events: list[events.StatusEvent]) -> None:
    """Publish after commit, and in the same transaction queue the outbound webhooks they make."""
    events.defer_publish(session, status_events)
    await webhook_service.fan_out(session, status_events)


def _status_event(
    log: CommunicationLog,
    message: Message,
    *,
    event: str,
    previous_status: str | None,
    occurred_at: datetime,
    metadata: dict[str, Any] | None = None,
) -> events.StatusEvent:
    return events.StatusEvent.build(
        organization_id=log.organization_id,
        message_id=log.message_id,
        log_id=log.id,
        event=event,
        previous_status=previous_status,
        status=log.status,
        occurred_at=occurred_at,
        channel=log.channel,
        queue_id=message.queue_id,
        campaign_id=log.campaign_id,
        client_id=log.client_id,
        metadata=metadata,
    )


async def _after_status_change(
    session: AsyncSession, *, log: CommunicationLog, message: Message, now: datetime
) -> None:
    if log.direction != Direction.OUTBOUND:
        return
    if log.status == MessageStatus.SENT and log.sent_at is not None and _is_agent_reply(message):
        await _record_first_response(
            session,
            organization_id=log.organization_id,
            client_id=log.client_id,
            sent_at=log.sent_at,
            now=now,
        )
    if log.channel == Channel.WHATSAPP and log.status in _FALLBACK_TRIGGERS:
        await _fall_back(session, log=log, message=message)


def _is_agent_reply(message: Message | ClaimedAttempt) -> bool:
    """A message a member wrote by hand (not a campaign or a reminder) answers the client."""
    return message.author_member_id is not None or (
        message.communication_type == CommunicationType.MANUAL and message.queue_id is None
    )


async def _record_first_response(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    client_id: uuid.UUID | None,
    sent_at: datetime,
    now: datetime,
) -> None:
    if client_id is None:
        return
    conversations = await repository.conversations_awaiting_first_response(
        session, organization_id=organization_id, client_id=client_id, before=sent_at
    )
    for conversation in conversations:
        conversation.first_response_at = sent_at
        conversation.first_response_seconds = max(
            int((sent_at - conversation.opened_at).total_seconds()), 0
        )
        conversation.updated_at = now
    if conversations:
        await session.flush()


async def _fall_back(session: AsyncSession, *, log: CommunicationLog, message: Message) -> None:
    """When a WhatsApp attempt fails, try the organization's fallback channel once.

    Only for the message's latest attempt (a failed attempt that was already
    resent or fallen back from does not fall back again), only when the
    organization enabled it (``preferences.fallbackEnabled``/``fallbackChannel``,
    email by default) and only if the client has an address on that channel.
    """
    if not await repository.is_latest_attempt(session, log):
        return
    configs = await repository.channel_configs(session, [log.organization_id])
    config = configs.get(log.organization_id)
    preferences = config.preferences if config is not None else {}
    if not preferences.get("fallbackEnabled"):
        return
    try:
        channel = Channel(preferences.get("fallbackChannel") or Channel.EMAIL)
    except ValueError:
        logger.warning("unknown fallback channel %r", preferences.get("fallbackChannel"))
        return
    if channel == Channel.WHATSAPP:
        return
    client = None if log.client_id is None else await repository.get_client(session, log.client_id)
    if client is None or client.deleted_at is not None:
        return
    recipient = client.email if channel == Channel.EMAIL else client.phone_e164
    if not recipient:
        logger.info("no %s address for fallback of attempt %s", channel, log.id)
        return
    # Imported here: the send services import this state machine.
    from mensajero.services.messaging import create_attempt

    try:
        await create_attempt(session, message=message, channel=channel, recipient=recipient)
    except InsufficientCredits:
        # The debit wrote nothing; the failure stands without a fallback.
        logger.warning("no credits for the %s fallback of attempt %s", channel, log.id)


# --- batches (the dispatch worker) -------------------------------------------------------------


async def claim_for_dispatch(
    session: AsyncSession, *, log_ids: Sequence[uuid.UUID], now: datetime | None = None
) -> list[ClaimedAttempt]:
    """QUEUED/SCHEDULED -> SENDING for the due attempts among ``log_ids``, in a few statements.

    The caller commits before sending anything: a committed claim is what keeps
    a second run of the same job (or a second worker) from sending again.
    """
    now = now or utcnow()
    if repository.dialect_name(session) == "postgresql":
        # Claim, timeline and message statuses in one statement.
        claimed = await repository.claim_and_mark_sending(session, log_ids, now=now)
        if not claimed:
            return []
    else:
        claimed = await repository.claim_attempts(session, log_ids, now=now)
        if not claimed:
            return []
        await _record_claim(session, claimed, now=now)
    occurred_at = now.isoformat()
    events.defer_publish(
        session,
        _batch_events(
            [(attempt, occurred_at, None) for attempt in claimed],
            event=TimelineEventType.SENDING,
            status=MessageStatus.SENDING,
        ),
    )
    return claimed


async def _record_claim(
    session: AsyncSession, claimed: Sequence[ClaimedAttempt], *, now: datetime
) -> None:
    """SENDING timeline entries and message statuses, statement by statement (SQLite)."""
    await repository.insert_events(
        session,
        [
            EventRow(
                organization_id=attempt.organization_id,
                log_id=attempt.id,
                event=TimelineEventType.SENDING,
                occurred_at=now,
                metadata={"attempt": attempt.retries + 1} if attempt.retries else None,
            )
            for attempt in claimed
        ],
        now=now,
    )
    await repository.copy_status_to_latest_messages(
        session,
        [
            LatestStatusRow(
                message_id=attempt.message_id,
                log_id=attempt.id,
                attempt_number=attempt.attempt_number,
                status=MessageStatus.SENDING,
            )
            for attempt in claimed
        ],
        now=now,
    )


async def record_sent(
    session: AsyncSession,
    *,
    accepted: Sequence[tuple[ClaimedAttempt, ProviderAccepted, datetime]],
    now: datetime | None = None,
) -> None:
    """SENDING -> SENT for a batch the providers accepted, in a few statements.

    Attempts a provider callback already moved (it can overtake us) go through
    :func:`apply_transition`, which keeps them from moving backwards and still
    saves the provider's id.
    """
    now = now or utcnow()
    if repository.dialect_name(session) == "postgresql":
        # Status, timeline and message statuses in one statement.
        updated = await repository.mark_sent_with_timeline(
            session,
            log_ids=[attempt.id for attempt, _, _ in accepted],
            providers=[result.provider for _, result, _ in accepted],
            external_ids=[result.external_id for _, result, _ in accepted],
            sent_ats=[sent_at for _, _, sent_at in accepted],
            dedup_key=status_dedup_key(TimelineEventType.SENT),
            now=now,
        )
        batch = [item for item in accepted if item[0].id in updated]
    else:
        rows = [
            SentRow(
                log_id=attempt.id,
                provider=result.provider,
                external_id=result.external_id,
                sent_at=sent_at,
            )
            for attempt, result, sent_at in accepted
        ]
        updated = await repository.mark_sent(session, rows, now=now)
        batch = [item for item in accepted if item[0].id in updated]
        await _record_sent_rows(session, batch, now=now)
    await _defer_events(
        session,
        _batch_events(
            [
                (
                    attempt,
                    sent_at.isoformat(),
                    {"provider": result.provider, "externalId": result.external_id},
                )
                for attempt, result, sent_at in batch
            ],
            event=TimelineEventType.SENT,
            status=MessageStatus.SENT,
            previous_status=MessageStatus.SENDING,
        ),
    )
    for attempt, _result, sent_at in batch:
        if _is_agent_reply(attempt):
            await _record_first_response(
                session,
                organization_id=attempt.organization_id,
                client_id=attempt.client_id,
                sent_at=sent_at,
                now=now,
            )
    for attempt, result, sent_at in accepted:
        if attempt.id in updated:
            continue
        await apply_transition(
            session,
            log_id=attempt.id,
            transition=Transition(
                event=TimelineEventType.SENT,
                status=MessageStatus.SENT,
                occurred_at=sent_at,
                dedup_key=status_dedup_key(TimelineEventType.SENT),
                provider=result.provider,
                external_id=result.external_id,
                metadata={"provider": result.provider, "externalId": result.external_id},
            ),
            now=now,
        )


async def _record_sent_rows(
    session: AsyncSession,
    batch: Sequence[tuple[ClaimedAttempt, ProviderAccepted, datetime]],
    *,
    now: datetime,
) -> None:
    """SENT timeline entries and message statuses, statement by statement (SQLite)."""
    await repository.insert_events(
        session,
        [
            EventRow(
                organization_id=attempt.organization_id,
                log_id=attempt.id,
                event=TimelineEventType.SENT,
                occurred_at=sent_at,
                dedup_key=status_dedup_key(TimelineEventType.SENT),
                metadata={"provider": result.provider, "externalId": result.external_id},
            )
            for attempt, result, sent_at in batch
        ],
        now=now,
    )
    await repository.copy_status_to_latest_messages(
        session,
        [
            LatestStatusRow(
                message_id=attempt.message_id,
                log_id=attempt.id,
                attempt_number=attempt.attempt_number,
                status=MessageStatus.SENT,
                provider=result.provider,
                sent_at=sent_at,
            )
            for attempt, result, sent_at in batch
        ],
        now=now,
    )


async def record_failure(
    session: AsyncSession,
    *,
    log_id: uuid.UUID,
    error: ProviderError,
    occurred_at: datetime | None = None,
    now: datetime | None = None,
) -> TransitionOutcome | None:
    """An attempt the provider refused for good: FAILED with the provider's code and message.

    The caller refunds it (it never reached a provider); the WhatsApp fallback
    happens here, inside the transition.
    """
    now = now or utcnow()
    metadata: dict[str, Any] = {}
    if error.provider:
        metadata["provider"] = error.provider
    if error.status_code is not None:
        metadata["httpStatus"] = error.status_code
    return await apply_transition(
        session,
        log_id=log_id,
        transition=Transition(
            event=TimelineEventType.FAILED,
            status=MessageStatus.FAILED,
            occurred_at=occurred_at or now,
            dedup_key=status_dedup_key(TimelineEventType.FAILED),
            provider=error.provider,
            error_code=error.code,
            error_message=error.message,
            metadata=metadata,
        ),
        now=now,
    )


async def requeue_attempt(
    session: AsyncSession,
    *,
    attempt: ClaimedAttempt,
    reason: str,
    not_before: datetime | None,
    provider_metadata: dict[str, Any],
    now: datetime | None = None,
    error: ProviderError | None = None,
) -> bool:
    """SENDING -> QUEUED: the claim is given back to be sent again after ``not_before``.

    The one backwards step, taken only by the worker for claims that did not
    reach a provider (or, for idempotent providers, whose outcome is unknown and
    safe to repeat). False if the attempt was no longer SENDING.
    """
    now = now or utcnow()
    if not await repository.requeue(
        session,
        attempt.id,
        provider_metadata=provider_metadata,
        not_before=not_before,
        now=now,
    ):
        return False
    metadata: dict[str, Any] = {"reason": reason, "retries": provider_metadata.get("retries", 0)}
    if not_before is not None:
        metadata["notBefore"] = not_before.isoformat()
    if error is not None:
        metadata["errorCode"] = error.code
        metadata["errorMessage"] = error.message
    await repository.insert_events(
        session,
        [
            EventRow(
                organization_id=attempt.organization_id,
                log_id=attempt.id,
                event=TimelineEventType.QUEUED,
                occurred_at=now,
                metadata=metadata,
            )
        ],
        now=now,
    )
    await repository.copy_status_to_latest_messages(
        session,
        [
            LatestStatusRow(
                message_id=attempt.message_id,
                log_id=attempt.id,
                attempt_number=attempt.attempt_number,
                status=MessageStatus.QUEUED,
            )
        ],
        now=now,
    )
    events.defer_publish(
        session,
        [
            _claimed_event(
                attempt,
                event=TimelineEventType.QUEUED,
                previous_status=MessageStatus.SENDING,
                status=MessageStatus.QUEUED,
                occurred_at=now,
                metadata=metadata,
            )
        ],
    )
    return True


def _batch_events(
    items: Sequence[tuple[ClaimedAttempt, str, dict[str, Any] | None]],
    *,
    event: str,
    status: str,
    previous_status: str | None = None,
) -> list[events.StatusEvent]:
    """:func:`_claimed_event` for a batch of (attempt, ISO time, metadata): the same
    events, each organization's id turned to text once (a bulk send is one or a few
    organizations) and no per-event keyword shuffling through ``StatusEvent.build``.

    ``previous_status`` None: each attempt's own (a claim moves QUEUED and SCHEDULED).
    """
    event, status = str(event), str(status)
    organizations: dict[uuid.UUID, str] = {}
    built = []
    for attempt, occurred_at, metadata in items:
        organization = organizations.get(attempt.organization_id)
        if organization is None:
            organization = organizations[attempt.organization_id] = str(attempt.organization_id)
        built.append(
            events.StatusEvent(
                organization_id=organization,
                message_id=str(attempt.message_id),
                log_id=str(attempt.id),
                event=event,
                previous_status=str(
                    attempt.previous_status if previous_status is None else previous_status
                ),
                status=status,
                occurred_at=occurred_at,
                channel=str(attempt.channel),
                queue_id=attempt.queue_id,
                campaign_id=None if attempt.campaign_id is None else str(attempt.campaign_id),
                client_id=None if attempt.client_id is None else str(attempt.client_id),
                metadata=metadata or {},
            )
        )
    return built


def _claimed_event(
    attempt: ClaimedAttempt,
    *,
    event: str,
    previous_status: str,
    status: str,
    occurred_at: datetime,
    metadata: dict[str, Any] | None = None,
) -> events.StatusEvent:
    return events.StatusEvent.build(
        organization_id=attempt.organization_id,
        message_id=attempt.message_id,
        log_id=attempt.id,
        event=event,
        previous_status=previous_status,
        status=status,
        occurred_at=occurred_at,
        channel=attempt.channel,
        queue_id=attempt.queue_id,
        campaign_id=attempt.campaign_id,
        client_id=attempt.client_id,
        metadata=metadata,
    )
