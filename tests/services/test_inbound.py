from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mensajero.models import (
    Channel,
    Client,
    CommunicationLog,
    Conversation,
    Message,
    MessageStatus,
    utcnow,
)
from mensajero.providers.base import InboundReply
from mensajero.repositories.delivery import ClaimedAttempt
from mensajero.services import delivery
from mensajero.services.inbound import record_inbound_reply
from tests.delivery_support import create_attempt_row, reload, timeline
from tests.factories import create_client, create_member, create_organization

S = MessageStatus


def _reply(sender: str, text: str, external_id: str, *, minutes: int = 0) -> InboundReply:
    return InboundReply(
        provider="evolution",
        channel=Channel.WHATSAPP,
        sender=sender,
        text=text,
        external_id=external_id,
        received_at=utcnow() + timedelta(minutes=minutes),
    )


async def test_a_reply_fills_the_response_and_opens_a_conversation(session: AsyncSession) -> None:
    organization = await create_organization(session)
    client = await create_client(session, organization)
    older = await create_attempt_row(session, organization, client, channel="whatsapp")
    latest = await create_attempt_row(session, organization, client, channel="whatsapp")
    first = await record_inbound_reply(
        session, reply=_reply(client.phone_e164, "Sí, confirmo", "IN-1")
    )
    second = await record_inbound_reply(
        session, reply=_reply(client.phone_e164, "¿A qué hora?", "IN-2", minutes=1)
    )
    duplicate = await record_inbound_reply(
        session, reply=_reply(client.phone_e164, "Sí, confirmo", "IN-1")
    )
    assert first is not None and second is not None and duplicate is not None
    assert duplicate.duplicate and duplicate.log_id == first.log_id
    assert first.responded_log_id == latest.id
    latest = await reload(session, CommunicationLog, latest.id)
    assert latest.response_text == "Sí, confirmo"  # the first answer is the response
    assert await timeline(session, latest.id) == ["response", "response"]
    assert (await reload(session, CommunicationLog, older.id)).response_text is None
    assert first.conversation_id == second.conversation_id
    conversation = await reload(session, Conversation, first.conversation_id)
    assert conversation.client_id == client.id and conversation.channel == "whatsapp"
    assert conversation.last_message_at > conversation.opened_at
    inbound = await reload(session, Message, first.message_id)
    assert (inbound.direction, inbound.status, inbound.body) == (
        "inbound",
        S.RECEIVED,
        "Sí, confirmo",
    )
    assert await timeline(session, first.log_id) == ["received"]


async def test_the_reply_goes_to_the_organization_that_last_wrote_to_the_phone(
    session: AsyncSession,
) -> None:
    phone = "+573009990001"
    first_org = await create_organization(session)
    second_org = await create_organization(session)
    await create_client(session, first_org, phone_e164=phone)
    second_client = await create_client(session, second_org, phone_e164=phone)
    await create_attempt_row(session, first_org, channel="whatsapp", recipient=phone)
    await create_attempt_row(session, second_org, second_client, channel="whatsapp")
    outcome = await record_inbound_reply(session, reply=_reply(phone, "Hola", "IN-3"))
    assert outcome is not None
    inbound = await reload(session, Message, outcome.message_id)
    assert (inbound.organization_id, inbound.client_id) == (second_org.id, second_client.id)


async def test_a_reply_from_nobody_we_know_is_dropped(session: AsyncSession) -> None:
    assert await record_inbound_reply(session, reply=_reply("+573009990099", "?", "IN-4")) is None


async def test_an_agent_message_sent_after_the_reply_is_the_first_response(
    session: AsyncSession,
) -> None:
    organization = await create_organization(session)
    member = await create_member(session, organization)
    client = await create_client(session, organization)
    await create_attempt_row(session, organization, client, channel="whatsapp")
    outcome = await record_inbound_reply(
        session, reply=_reply(client.phone_e164, "Necesito ayuda", "IN-5", minutes=-10)
    )
    assert outcome is not None
    answer = await create_attempt_row(
        session, organization, client, channel="whatsapp", author_member_id=member.id
    )
    answer.status = S.SENDING
    await session.flush()
    claimed = ClaimedAttempt(
        id=answer.id,
        organization_id=organization.id,
        message_id=answer.message_id,
        client_id=client.id,
        campaign_id=None,
        channel="whatsapp",
        recipient=answer.recipient,
        attempt_number=1,
        previous_status=S.QUEUED,
        provider_metadata={},
        body="Claro, cuéntame",
        subject=None,
        html=None,
        template_id=None,
        queue_id=None,
        communication_type="manual",
        author_member_id=member.id,
        message_metadata={},
    )
    from mensajero.providers.base import ProviderAccepted

    sent_at = utcnow()
    await delivery.record_sent(
        session,
        accepted=[(claimed, ProviderAccepted(provider="evolution", external_id="WA-A"), sent_at)],
    )
    conversation = await reload(session, Conversation, outcome.conversation_id)
    assert conversation.first_response_at == sent_at
    assert conversation.first_response_seconds is not None
    assert conversation.first_response_seconds >= 600 - 5
    clients = (
        (await session.execute(select(Client).where(Client.organization_id == organization.id)))
        .scalars()
        .all()
    )
    assert len(clients) == 1
