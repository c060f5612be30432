"""Inbound replies: what a client sends us becomes a message, a response and a conversation.

Which organization a reply belongs to: our sending numbers and WhatsApp
instance are shared by every organization (they come from the settings), so
the reply goes to the organization that most recently wrote to that phone on
that channel (its newest outbound attempt). When nobody wrote to it, a client
with that phone in exactly one organization decides; otherwise the reply is
logged and dropped, since guessing would leak it to the wrong tenant.

A reply then:
* becomes an inbound message (direction inbound, status RECEIVED) with its
  inbound log, whose provider id makes a repeated webhook a no-op;
* fills ``response_text``/``response_received_at`` of the client's last
  outbound log on that channel, once (the first answer is the response; later
  replies still get their own ``response`` timeline entries and events);
* opens a conversation for the client on that channel, or continues the open
  one (``last_message_at``). An agent's outbound message sent afterwards is the
  conversation's first response (recorded by the state machine on SENT).

A reply from a phone with no client in the owning organization creates the
client (name = phone), as inboxes do: the conversation needs someone to belong to.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import phonenumbers
from sqlalchemy.ext.asyncio import AsyncSession

from mensajero import events
from mensajero.models import (
    Client,
    CommunicationLog,
    CommunicationType,
    Conversation,
    Direction,
    LogEvent,
    Message,
    MessageStatus,
    TimelineEventType,
    utcnow,
)
from mensajero.providers.base import InboundReply, ProviderEvent
from mensajero.repositories import delivery as repository
from mensajero.services import delivery as delivery_service
from mensajero.services import webhook as webhook_service

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class InboundOutcome:
    message_id: uuid.UUID
    log_id: uuid.UUID
    conversation_id: uuid.UUID | None
    responded_log_id: uuid.UUID | None  # the outbound log this reply answered
    duplicate: bool = False


def normalize_sender(sender: str) -> str:
    """E.164 when it parses as an international number; as given otherwise."""
    candidate = sender.strip()
    if not candidate.startswith("+"):
        candidate = f"+{candidate}"
    try:
        parsed = phonenumbers.parse(candidate, None)
    except phonenumbers.NumberParseException:
        return sender.strip()
    if not phonenumbers.is_possible_number(parsed):
        return sender.strip()
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


async def record_inbound_reply(
    session: AsyncSession, *, reply: InboundReply, now: datetime | None = None
) -> InboundOutcome | None:
    """Record a client's reply (see the module docstring); None when no organization owns it."""
    now = now or utcnow()
    existing = await repository.find_log_by_external_id(
        session, provider=reply.provider, external_id=reply.external_id
    )
    if existing is not None:
        log = await session.get(CommunicationLog, existing)
        return InboundOutcome(
            message_id=log.message_id if log else existing,
            log_id=existing,
            conversation_id=None,
            responded_log_id=None,
            duplicate=True,
        )
    sender = normalize_sender(reply.sender)
    channel = str(reply.channel)
    owner = await _owner(session, channel=channel, sender=sender)
    if owner is None:
        logger.info("inbound %s reply from an unknown sender dropped", channel)
        return None
    organization_id, client = owner
    if client is None:
        client = Client(
            organization_id=organization_id,
            name=sender,
            phone=sender,
            phone_e164=sender,
            created_at=now,
            updated_at=now,
        )
        session.add(client)
        await session.flush()

    conversation = await repository.open_conversation(
        session, organization_id=organization_id, client_id=client.id, channel=channel
    )
    if conversation is None:
        conversation = Conversation(
            organization_id=organization_id,
            client_id=client.id,
            channel=channel,
            opened_at=reply.received_at,
            last_message_at=reply.received_at,
            created_at=now,
            updated_at=now,
        )
        session.add(conversation)
    else:
        conversation.last_message_at = max(conversation.last_message_at, reply.received_at)
        conversation.updated_at = now

    message = Message(
        organization_id=organization_id,
        client_id=client.id,
        conversation_id=conversation.id,
        direction=Direction.INBOUND,
        channel=channel,
        communication_type=CommunicationType.MANUAL,
        body=reply.text,
        recipient=sender,
        metadata_=dict(reply.metadata),
        segments=1,
        cost=0,
        status=MessageStatus.RECEIVED,
        provider=reply.provider,
        sent_at=reply.received_at,
        created_at=now,
        updated_at=now,
    )
    session.add(message)
    await session.flush()
    log = CommunicationLog(
        organization_id=organization_id,
        message_id=message.id,
        client_id=client.id,
        communication_type=CommunicationType.MANUAL,
        channel=channel,
        direction=Direction.INBOUND,
        recipient=sender,
        provider=reply.provider,
        external_id=reply.external_id,
        status=MessageStatus.RECEIVED,
        sent_at=reply.received_at,
        delivered_at=reply.received_at,
        provider_metadata={"to": reply.recipient} if reply.recipient else {},
        created_at=now,
        updated_at=now,
    )
    session.add(log)
    await session.flush()
    session.add(
        LogEvent(
            organization_id=organization_id,
            log_id=log.id,
            event=TimelineEventType.RECEIVED,
            occurred_at=reply.received_at,
            dedup_key=delivery_service.status_dedup_key(TimelineEventType.RECEIVED),
            created_at=now,
        )
    )
    published = [
        events.StatusEvent.build(
            organization_id=organization_id,
            message_id=message.id,
            log_id=log.id,
            event=TimelineEventType.RECEIVED,
            previous_status=None,
            status=MessageStatus.RECEIVED,
            occurred_at=reply.received_at,
            channel=channel,
            client_id=client.id,
            metadata={"text": reply.text, "direction": Direction.INBOUND.value},
        )
    ]
    responded = await _fill_response(
        session, reply=reply, organization_id=organization_id, client_id=client.id, now=now
    )
    if responded is not None:
        published.append(responded)
    await session.flush()
    events.defer_publish(session, published)
    await webhook_service.fan_out(session, published)  # whatsapp.response
    return InboundOutcome(
        message_id=message.id,
        log_id=log.id,
        conversation_id=conversation.id,
        responded_log_id=None if responded is None else uuid.UUID(responded.log_id),
    )


async def _owner(
    session: AsyncSession, *, channel: str, sender: str
) -> tuple[uuid.UUID, Client | None] | None:
    latest = await repository.latest_outbound_to(session, channel=channel, recipient=sender)
    if latest is not None:
        organization_id, client_id = latest
        client = None if client_id is None else await session.get(Client, client_id)
        if client is None or client.deleted_at is not None:
            client = await repository.client_by_phone(
                session, organization_id=organization_id, phone_e164=sender
            )
        return organization_id, client
    candidates = await repository.organizations_with_client_phone(session, sender)
    if len({organization_id for organization_id, _ in candidates}) != 1:
        return None
    organization_id, client_id = candidates[0]
    return organization_id, await session.get(Client, client_id)


async def _fill_response(
    session: AsyncSession,
    *,
    reply: InboundReply,
    organization_id: uuid.UUID,
    client_id: uuid.UUID,
    now: datetime,
) -> events.StatusEvent | None:
    """The reply answers the client's last outbound log on the channel: record it there."""
    target = await repository.last_outbound_log_to_client(
        session, organization_id=organization_id, client_id=client_id, channel=str(reply.channel)
    )
    if target is None:
        return None
    inserted = await repository.insert_event_once(
        session,
        repository.EventRow(
            organization_id=organization_id,
            log_id=target.id,
            event=TimelineEventType.RESPONSE,
            occurred_at=reply.received_at,
            dedup_key=f"response:{reply.provider}:{reply.external_id}",
            metadata={"text": reply.text},
        ),
        now=now,
    )
    if not inserted:
        return None
    if target.response_text is None:
        target.response_text = reply.text
        target.response_received_at = reply.received_at
        target.updated_at = now
    message = await session.get(Message, target.message_id)
    return events.StatusEvent.build(
        organization_id=organization_id,
        message_id=target.message_id,
        log_id=target.id,
        event=TimelineEventType.RESPONSE,
        previous_status=target.status,
        status=target.status,
        occurred_at=reply.received_at,
        channel=target.channel,
        queue_id=None if message is None else message.queue_id,
        campaign_id=target.campaign_id,
        client_id=target.client_id,
        metadata={"text": reply.text, "receivedAt": reply.received_at.isoformat()},
    )


async def apply_webhook_items(
    session: AsyncSession, *, items: Sequence[ProviderEvent | InboundReply]
) -> int:
    """Apply what one provider webhook carried (status events and replies); how many mattered."""
    applied = 0
    for item in items:
        if isinstance(item, InboundReply):
            outcome = await record_inbound_reply(session, reply=item)
            applied += outcome is not None and not outcome.duplicate
        else:
            transition = await delivery_service.apply_provider_event(session, event=item)
            applied += transition is not None and transition.applied
    return applied
