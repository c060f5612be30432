"""Sending: by tags (bulk SMS), to one client on any channel, and new attempts (resend).

Every send follows the same order inside the edge's transaction: validate,
price, debit credits atomically (nothing is written when the balance does not
cover it), write the rows, then *defer* the status events and the dispatch
jobs, which the edge publishes and enqueues only after the commit
(:mod:`mensajero.events`, :mod:`mensajero.outbox`).

New attempts start QUEUED, or SCHEDULED with ``not_before`` at the end of the
quiet hours (:mod:`mensajero.services.communication_config`); their timeline
starts with ``created`` then ``queued`` (or ``scheduled``). Workers take it from
there (``delivery.dispatch``, one positional argument: a list of log ids).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import orjson
import phonenumbers
from sqlalchemy.ext.asyncio import AsyncSession

from mensajero.events import StatusEvent, StatusEventBatch, defer_publish
from mensajero.models import (
    Channel,
    Client,
    CommunicationLog,
    CommunicationType,
    ContentType,
    Direction,
    LogEvent,
    Message,
    MessageStatus,
    Organization,
    TimelineEventType,
    utcnow,
    uuid7_strings,
)
from mensajero.outbox import defer_enqueue
from mensajero.repositories.communication_config import ChannelConfigRepository
from mensajero.repositories.messaging import (
    CampaignLookupRepository,
    CommunicationLogRepository,
    FirstAttemptBatch,
    SendClientRepository,
    TagLookupRepository,
    insert_first_attempts,
)
from mensajero.services import credits
from mensajero.services.client import normalize_country, parse_phone_e164
from mensajero.services.communication_config import (
    config_document,
    is_exempt_from_quiet_hours,
    quiet_hours_deferral,
)
from mensajero.services.errors import DomainError, InvalidInput, NotFound
from mensajero.services.segments import count_segments
from mensajero.settings import Settings, get_settings

DISPATCH_JOB = "delivery.dispatch"
# A longer text is a letter, not an SMS: carriers concatenate up to ~10 parts.
MAX_SMS_SEGMENTS = 10
MAX_BODY_LENGTH = 65_536  # email bodies; WhatsApp allows 4096
MAX_WHATSAPP_LENGTH = 4096
MAX_TAGS_PER_SEND = 100
MAX_METADATA_BYTES = 16_384

# Country calling codes are prefix-free: the first 1-3 digits of an E.164
# number that are one of these are its calling code.
_CALLING_CODES = frozenset(str(code) for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE)


class UnknownTags(DomainError):
    """Some tag ids are not tags of the caller's organization."""

    code = "UNKNOWN_TAGS"

    def __init__(self, tag_ids: Sequence[str]) -> None:
        super().__init__(f"unknown tags: {', '.join(tag_ids)}", tag_ids=list(tag_ids))
        self.tag_ids = list(tag_ids)


# --- ids ---------------------------------------------------------------------------


def new_queue_id(channel: Channel) -> str:
    return f"{channel.value}-{next(uuid7_strings(1)).replace('-', '')}"


def calling_code(e164: str) -> str | None:
    digits = e164.lstrip("+")
    for length in (1, 2, 3):
        if digits[:length] in _CALLING_CODES:
            return digits[:length]
    return None


# --- pricing -----------------------------------------------------------------------


def price_per_message(channel: Channel, body: str, settings: Settings) -> tuple[int, int]:
    """``(segments, credits)`` one message of ``body`` costs on ``channel``."""
    if channel == Channel.SMS:
        segments = count_segments(body).segments
        return segments, segments * settings.price_sms_segment
    if channel == Channel.WHATSAPP:
        return 1, settings.price_whatsapp_message
    return 1, settings.price_email_message


def validate_body(channel: Channel, body: str | None, *, field: str = "message") -> str:
    if body is None or not body.strip():
        raise InvalidInput(f"{field} must not be empty", field=field)
    if channel == Channel.SMS:
        segments = count_segments(body).segments
        if segments > MAX_SMS_SEGMENTS:
            raise InvalidInput(
                f"{field} takes {segments} SMS segments; at most {MAX_SMS_SEGMENTS} are allowed",
                field=field,
            )
    elif channel == Channel.WHATSAPP and len(body) > MAX_WHATSAPP_LENGTH:
        raise InvalidInput(
            f"{field} must be at most {MAX_WHATSAPP_LENGTH} characters on WhatsApp", field=field
        )
    elif len(body) > MAX_BODY_LENGTH:
        raise InvalidInput(f"{field} must be at most {MAX_BODY_LENGTH} characters", field=field)
    return body


# --- quiet hours -------------------------------------------------------------------


async def quiet_hours_not_before(
    session: AsyncSession,
    organization_id: uuid.UUID,
    communication_type: str,
    now: datetime,
) -> datetime | None:
    """When a send of this type made at ``now`` may go out: the quiet window's end, or None.

    For callers of :func:`create_attempt` (a fallback made at night waits too).
    """
    if is_exempt_from_quiet_hours(communication_type):
        return None
    config = await ChannelConfigRepository(session, organization_id).get_for_organization()
    document = config_document(config)
    if not document["preferences"].get("quietHours", {}).get("enabled"):
        return None
    organization = await session.get(Organization, organization_id)
    timezone = organization.timezone if organization is not None else "UTC"
    return quiet_hours_deferral(document, timezone, now)


def _defer_dispatch(
    session: AsyncSession,
    settings: Settings,
    log_ids: Sequence[str],
    *,
    job_key: str,
    not_before: datetime | None,
    now: datetime,
) -> None:
    """Enqueue dispatch after commit, in batches; scheduled attempts wait in arq."""
    defer_by = max((not_before - now).total_seconds(), 0.0) if not_before else None
    size = max(settings.dispatch_batch_size, 1)
    for index, start in enumerate(range(0, len(log_ids), size)):
        defer_enqueue(
            session,
            settings,
            DISPATCH_JOB,
            list(log_ids[start : start + size]),
            job_id=f"{DISPATCH_JOB}:{job_key}:{index}",
            defer_by=defer_by,
        )


# --- one attempt -------------------------------------------------------------------


async def create_attempt(
    session: AsyncSession,
    *,
    message: Message,
    channel: Channel,
    recipient: str,
    body_override: str | None = None,
    attempt_number: int | None = None,
    not_before: datetime | None = None,
    charge: bool = True,
    settings: Settings | None = None,
    now: datetime | None = None,
) -> CommunicationLog:
    """A new attempt of ``message`` on ``channel``: resend, fallback, or a first send.

    Debits the channel's price (``charge=False`` for attempts that must not
    cost again), writes the log with its ``created`` and ``queued`` (or
    ``scheduled`` when ``not_before`` is given) timeline events, makes it the
    message's latest attempt (status, recipient), and defers its QUEUED
    status event and its dispatch job (``defer_by`` until ``not_before``).
    Raises :class:`InsufficientCredits` with nothing written.
    """
    settings = settings or get_settings()
    now = now or utcnow()
    channel = Channel(channel)
    body = body_override if body_override is not None else message.body
    segments, cost = price_per_message(channel, body, settings) if charge else (1, 0)
    if attempt_number is None:
        attempt_number = await CommunicationLogRepository(
            session, message.organization_id
        ).next_attempt_number(message.id)
    status = MessageStatus.SCHEDULED if not_before is not None else MessageStatus.QUEUED
    log = CommunicationLog(
        organization_id=message.organization_id,
        message_id=message.id,
        client_id=message.client_id,
        campaign_id=message.campaign_id,
        communication_type=message.communication_type,
        channel=channel,
        direction=Direction.OUTBOUND,
        attempt_number=attempt_number,
        recipient=recipient,
        body_override=body_override,
        status=status,
        not_before=not_before,
        cost=cost,
        created_at=now,
        updated_at=now,
    )
    if cost:
        await credits.debit(
            session,
            organization_id=message.organization_id,
            amount=cost,
            channel=channel.value,
            queue_id=message.queue_id,
            message_count=1,
            description=f"{channel.value} attempt {attempt_number} of message {message.id}",
            now=now,
        )
    session.add(log)
    await session.flush()
    session.add_all(
        [
            LogEvent(
                organization_id=log.organization_id,
                log_id=log.id,
                event=TimelineEventType.CREATED,
                occurred_at=now,
            ),
            LogEvent(
                organization_id=log.organization_id,
                log_id=log.id,
                event=TimelineEventType.SCHEDULED if not_before else TimelineEventType.QUEUED,
                occurred_at=now,
                metadata_={"notBefore": not_before.isoformat()} if not_before else None,
            ),
        ]
    )
    message.status = status
    message.recipient = recipient
    message.cost = (message.cost or 0) + cost
    message.scheduled_at = not_before
    message.updated_at = now
    if channel == Channel.SMS and attempt_number == 1:
        message.segments = segments
    await session.flush()
    defer_publish(session, [_queued_event(message, log, now)])
    _defer_dispatch(
        session, settings, [str(log.id)], job_key=str(log.id), not_before=not_before, now=now
    )
    return log


def _queued_event(message: Message, log: CommunicationLog, now: datetime) -> StatusEvent:
    return StatusEvent.build(
        organization_id=log.organization_id,
        message_id=message.id,
        log_id=log.id,
        event=TimelineEventType.SCHEDULED if log.not_before else TimelineEventType.QUEUED,
        previous_status=None,
        status=log.status,
        occurred_at=now,
        channel=log.channel,
        queue_id=message.queue_id,
        campaign_id=message.campaign_id,
        client_id=message.client_id,
    )


# --- send by tags ------------------------------------------------------------------


class EnqueuedMessage(NamedTuple):
    # A tuple, not a dataclass: a bulk send answers one per recipient.
    id: str
    recipient: str


@dataclass(frozen=True, slots=True)
class EnqueueResult:
    """sendme123's MessageEnqueueResultDto: empty ``queue_id`` when nobody remained."""

    queue_id: str
    channel: Channel
    messages: list[EnqueuedMessage] = field(default_factory=list)
    segments: int = 0
    cost: int = 0
    scheduled_until: datetime | None = None

    @property
    def enqueued_anything(self) -> bool:
        return bool(self.messages)


def parse_tag_ids(raw_ids: Sequence[Any]) -> tuple[list[uuid.UUID], list[str]]:
    """Split the given ids into UUIDs and the ones that are not UUIDs at all."""
    parsed: list[uuid.UUID] = []
    invalid: list[str] = []
    for raw in raw_ids:
        if isinstance(raw, uuid.UUID):
            parsed.append(raw)
            continue
        try:
            parsed.append(uuid.UUID(str(raw)))
        except ValueError:
            invalid.append(str(raw))
    return parsed, invalid


async def send_sms_by_tags(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    message: str,
    tag_ids: Sequence[uuid.UUID | str],
    country: str | None = None,
    communication_type: CommunicationType = CommunicationType.CAMPAIGN,
    campaign_id: uuid.UUID | None = None,
    author_member_id: uuid.UUID | None = None,
    settings: Settings | None = None,
    now: datetime | None = None,
) -> EnqueueResult:
    """SPEC section 6 / seed 001: one SMS to every client carrying any of the tags.

    Clients are selected once each (one query), phones normalized to E.164
    (stored E.164 first, else the raw phone with ``country``, then the
    client's own country, as the default region), invalid numbers skipped and
    duplicate recipients dropped silently. The whole batch is priced and
    debited atomically before anything is written; with nobody left, nothing
    is debited or written and the result has an empty ``queue_id``.

    ``author_member_id`` is for the rare manual broadcast; a campaign is no
    member's reply, and leaving it empty also spares a foreign-key check per row.
    """
    settings = settings or get_settings()
    now = now or utcnow()
    body = validate_body(Channel.SMS, message)
    default_region = normalize_country(country)
    if not tag_ids:
        raise InvalidInput("tagIds must name at least one tag", field="tagIds")
    if len(tag_ids) > MAX_TAGS_PER_SEND:
        raise InvalidInput(f"at most {MAX_TAGS_PER_SEND} tags per send", field="tagIds")
    parsed_ids, not_uuids = parse_tag_ids(tag_ids)
    unique_ids = list(dict.fromkeys(parsed_ids))
    found = await TagLookupRepository(session, organization_id).existing_ids(unique_ids)
    unknown = not_uuids + [str(tag_id) for tag_id in unique_ids if tag_id not in found]
    if unknown:
        raise UnknownTags(unknown)
    if campaign_id is not None:
        await _require_campaign(session, organization_id, campaign_id)

    clients = await SendClientRepository(session, organization_id).list_tagged(unique_ids)
    recipients: dict[str, uuid.UUID] = {}
    for client in clients:
        e164 = client.phone_e164
        if not e164 and client.phone:
            e164 = parse_phone_e164(client.phone, default_region or client.country)
        if e164 and e164 not in recipients:
            recipients[e164] = client.id
    if not recipients:
        return EnqueueResult(queue_id="", channel=Channel.SMS)

    segments, price = price_per_message(Channel.SMS, body, settings)
    count = len(recipients)
    queue_id = new_queue_id(Channel.SMS)
    await credits.debit(
        session,
        organization_id=organization_id,
        amount=price * count,
        channel=Channel.SMS.value,
        queue_id=queue_id,
        message_count=count,
        description=f"SMS to tags: {count} messages x {segments} segments",
        now=now,
    )
    not_before = await quiet_hours_not_before(session, organization_id, communication_type, now)
    ids = list(uuid7_strings(count * 4))
    batch = FirstAttemptBatch(
        organization_id=organization_id,
        queue_id=queue_id,
        channel=Channel.SMS.value,
        communication_type=CommunicationType(communication_type).value,
        content_type=ContentType.PLAIN_TEXT.value,
        body=body,
        status=(MessageStatus.SCHEDULED if not_before else MessageStatus.QUEUED).value,
        created_at=now,
        segments=segments,
        cost_per_message=price,
        campaign_id=campaign_id,
        author_member_id=author_member_id,
        not_before=not_before,
        message_ids=ids[0::4],
        log_ids=ids[1::4],
        created_event_ids=ids[2::4],
        second_event_ids=ids[3::4],
        client_ids=list(recipients.values()),
        recipients=list(recipients),
        country_codes=[calling_code(e164) for e164 in recipients],
    )
    await insert_first_attempts(session, batch)
    defer_publish(session, _batch_events(batch))
    _defer_dispatch(
        session, settings, batch.log_ids, job_key=queue_id, not_before=not_before, now=now
    )
    return EnqueueResult(
        queue_id=queue_id,
        channel=Channel.SMS,
        messages=list(map(EnqueuedMessage, batch.message_ids, batch.recipients)),
        segments=segments,
        cost=price * count,
        scheduled_until=not_before,
    )


def _batch_events(batch: FirstAttemptBatch) -> StatusEventBatch:
    template = StatusEvent(
        organization_id=str(batch.organization_id),
        message_id="",
        log_id="",
        event=batch.second_event,
        previous_status=None,
        status=batch.status,
        occurred_at=batch.created_at.isoformat(),
        channel=batch.channel,
        queue_id=batch.queue_id,
        campaign_id=None if batch.campaign_id is None else str(batch.campaign_id),
        client_id=None,
    )
    return StatusEventBatch(
        template=template,
        message_ids=batch.message_ids,
        log_ids=batch.log_ids,
        client_ids=batch.client_ids,
    )


async def _require_campaign(
    session: AsyncSession, organization_id: uuid.UUID, campaign_id: uuid.UUID
) -> None:
    if await CampaignLookupRepository(session, organization_id).get(campaign_id) is None:
        raise InvalidInput("campaignId is not a campaign of this organization", field="campaignId")


# --- one message to one client -----------------------------------------------------


def recipient_for(client: Client, channel: Channel) -> str:
    """The client's address on ``channel``, or :class:`InvalidInput` naming the missing field."""
    if channel == Channel.EMAIL:
        if not client.email:
            raise InvalidInput("the client has no email address", field="email")
        return client.email
    e164 = client.phone_e164
    if not e164 and client.phone:
        e164 = parse_phone_e164(client.phone, client.country)
    if not e164:
        raise InvalidInput("the client has no valid phone number", field="phone")
    return e164


def _validate_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise InvalidInput("metadata must be an object", field="metadata")

    if len(orjson.dumps(dict(metadata))) > MAX_METADATA_BYTES:
        raise InvalidInput(f"metadata must be at most {MAX_METADATA_BYTES} bytes", field="metadata")
    return dict(metadata)


@dataclass(frozen=True, slots=True)
class SentMessage:
    message: Message
    log: CommunicationLog


async def send_message(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    client_id: uuid.UUID,
    channel: Channel,
    body: str,
    communication_type: CommunicationType = CommunicationType.MANUAL,
    subject: str | None = None,
    html: str | None = None,
    template_id: str | None = None,
    content_type: ContentType | None = None,
    campaign_id: uuid.UUID | None = None,
    metadata: Mapping[str, Any] | None = None,
    author_member_id: uuid.UUID | None = None,
    settings: Settings | None = None,
    now: datetime | None = None,
) -> SentMessage:
    """One message to one client on any channel, with its first attempt.

    The recipient is the client's address for the channel; business metadata
    (``sessionId``, ``ventaId``, ``session``, ``provider`` ...) is kept on the
    message as given.
    """
    settings = settings or get_settings()
    now = now or utcnow()
    channel = Channel(channel)
    body = validate_body(channel, body, field="body")
    if subject is not None and len(subject) > 998:
        raise InvalidInput("subject must be at most 998 characters", field="subject")
    if channel == Channel.EMAIL and not (subject and subject.strip()):
        raise InvalidInput("an email needs a subject", field="subject")
    if template_id is not None and len(template_id) > 200:
        raise InvalidInput("templateId must be at most 200 characters", field="templateId")
    clean_metadata = _validate_metadata(metadata)
    if campaign_id is not None:
        await _require_campaign(session, organization_id, campaign_id)
    client = await SendClientRepository(session, organization_id).get_live(client_id)
    if client is None:
        raise NotFound("client not found")
    recipient = recipient_for(client, channel)
    if content_type is None:
        content_type = ContentType.HTML if html else ContentType.PLAIN_TEXT
    segments, _ = price_per_message(channel, body, settings)
    message = Message(
        organization_id=organization_id,
        client_id=client.id,
        campaign_id=campaign_id,
        # Only a manual message is a member's own words (an agent's response in
        # the conversation metrics); automated types are sent on nobody's behalf.
        author_member_id=(
            author_member_id if communication_type == CommunicationType.MANUAL else None
        ),
        queue_id=new_queue_id(channel),
        direction=Direction.OUTBOUND,
        channel=channel,
        communication_type=CommunicationType(communication_type),
        content_type=ContentType(content_type),
        body=body,
        subject=subject,
        html=html,
        template_id=template_id,
        recipient=recipient,
        country_code=calling_code(recipient) if channel != Channel.EMAIL else None,
        metadata_=clean_metadata,
        segments=segments,
        cost=0,
        status=MessageStatus.QUEUED,
        created_at=now,
        updated_at=now,
    )
    not_before = await quiet_hours_not_before(
        session, organization_id, message.communication_type, now
    )
    session.add(message)
    await session.flush()
    log = await create_attempt(
        session,
        message=message,
        channel=channel,
        recipient=recipient,
        attempt_number=1,
        not_before=not_before,
        settings=settings,
        now=now,
    )
    return SentMessage(message=message, log=log)


# --- resend ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResendResult:
    """Coordinalo's resend answer; ids are attempt (communication log) ids."""

    original_id: uuid.UUID
    new_id: uuid.UUID
    channel: Channel
    status: MessageStatus
    sent_at: datetime
    log: CommunicationLog


async def resend(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    log_id: uuid.UUID,
    channel: Channel | None = None,
    custom_message: str | None = None,
    settings: Settings | None = None,
    now: datetime | None = None,
) -> ResendResult:
    """A new attempt of the attempt's message, on its channel or ``channel``.

    Another channel picks the client's address for it; ``custom_message``
    replaces the body for this attempt only. Costs the channel's price again.
    ``sent_at`` in the answer is when the resend was accepted (the attempt's
    own ``sentAt`` is set when the provider takes it).
    """
    settings = settings or get_settings()
    now = now or utcnow()
    found = await CommunicationLogRepository(session, organization_id).get_with_message(log_id)
    if found is None:
        raise NotFound("communication log not found")
    original, message = found
    if original.direction == Direction.INBOUND or message.direction == Direction.INBOUND:
        raise InvalidInput("an inbound message cannot be resent", field="id")
    target = Channel(channel) if channel is not None else Channel(original.channel)
    if custom_message is not None:
        custom_message = validate_body(target, custom_message, field="customMessage")
    else:
        validate_body(target, message.body, field="customMessage")
    if target == Channel(original.channel):
        recipient = original.recipient
    else:
        client = None
        if message.client_id is not None:
            client = await SendClientRepository(session, organization_id).get_live(
                message.client_id
            )
        if client is None:
            raise InvalidInput(
                "the message has no client to find an address on another channel", field="channel"
            )
        recipient = recipient_for(client, target)
        if target == Channel.EMAIL and not message.subject:
            raise InvalidInput("an email needs a subject; this message has none", field="channel")
    not_before = await quiet_hours_not_before(
        session, organization_id, message.communication_type, now
    )
    log = await create_attempt(
        session,
        message=message,
        channel=target,
        recipient=recipient,
        body_override=custom_message,
        not_before=not_before,
        settings=settings,
        now=now,
    )
    return ResendResult(
        original_id=original.id,
        new_id=log.id,
        channel=target,
        status=MessageStatus(log.status),
        sent_at=now,
        log=log,
    )
