"""sendSmsByTags, sendMessage, resend and the communication config over HTTP, both backends."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from arq.connections import ArqRedis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry import relay

from mensajero.models import CommunicationLog, Message, Organization
from mensajero.services import credits
from mensajero.settings import Settings
from tests.factories import Caller, create_caller, create_client, create_tag, tag_client

SEND_BY_TAGS = """
mutation Send($input: SendSmsByTagsInput!) {
  sendSmsByTags(input: $input) {
    __typename
    ... on MessageEnqueueResult { queueId channel messages { id recipient } segments cost }
    ... on InsufficientCreditsError { code message required available }
    ... on UnknownTagsError { code tagIds }
    ... on InvalidInputError { code field }
  }
}
"""
SEND_MESSAGE = """
mutation Send($input: SendMessageInput!) {
  sendMessage(input: $input) {
    __typename
    ... on SendMessagePayload { messageId logId queueId channel recipient status cost }
    ... on InvalidInputError { code field }
    ... on NotFoundError { code }
  }
}
"""
RESEND = """
mutation Resend($id: ID!, $channel: Channel, $customMessage: String) {
  resend(id: $id, channel: $channel, customMessage: $customMessage) {
    __typename
    ... on ResendPayload { originalId newId channel status sentAt }
    ... on NotFoundError { code }
    ... on InsufficientCreditsError { required available }
  }
}
"""
CONFIG_FIELDS = """
  email { enabled provider fromEmail fromName replyTo status lastCheck }
  whatsapp { enabled provider instanceName phoneNumber status lastCheck }
  preferences {
    defaultChannel fallbackEnabled fallbackChannel
    quietHours { enabled start end timezone }
  }
"""
QUEUE = Settings().queue_name


async def _post(
    http: httpx.AsyncClient, caller: Caller, query: str, variables: dict[str, Any]
) -> dict[str, Any]:
    response = await http.post(
        "/graphql", json={"query": query, "variables": variables}, headers=caller.headers
    )
    assert response.status_code == 200, response.text
    return response.json()


async def _funded_caller(session: AsyncSession, amount: int = 100, **kw: Any) -> Caller:
    caller = await create_caller(session, **kw)
    await credits.top_up(session, organization_id=caller.organization.id, amount=amount)
    return caller


async def _count(session: AsyncSession, model: type, organization: Organization) -> int:
    result = await session.execute(
        select(func.count()).select_from(model).where(model.organization_id == organization.id)
    )
    return int(result.scalar_one())


async def test_send_by_tags_answers_the_seed_shape_and_enqueues_after_commit(
    http: httpx.AsyncClient, session: AsyncSession, redis: ArqRedis
) -> None:
    caller = await _funded_caller(session)
    vip = await create_tag(session, caller.organization)
    buyers = await create_tag(session, caller.organization)
    both = await create_client(session, caller.organization)
    await tag_client(session, both, vip)
    await tag_client(session, both, buyers)
    local = await create_client(session, caller.organization, phone="3009876543", phone_e164=None)
    await tag_client(session, local, buyers)
    bad = await create_client(session, caller.organization, phone="000", phone_e164=None)
    await tag_client(session, bad, buyers)

    body = await _post(
        http,
        caller,
        SEND_BY_TAGS,
        {
            "input": {
                "message": "¡Oferta exclusiva para clientes VIP!",
                # a Relay global id and a plain UUID are both accepted
                "tagIds": [str(relay.GlobalID("Tag", str(vip.id))), str(buyers.id)],
                "type": "SMS",
                "country": "CO",
            }
        },
    )

    result = body["data"]["sendSmsByTags"]
    assert result["__typename"] == "MessageEnqueueResult"
    assert result["channel"] == "SMS" and result["queueId"].startswith("sms-")
    assert sorted(m["recipient"] for m in result["messages"]) == sorted(
        [both.phone_e164, "+573009876543"]
    )
    assert all(uuid.UUID(m["id"]) for m in result["messages"])
    assert await _count(session, Message, caller.organization) == 2
    assert await redis.zcard(QUEUE) == 1  # one dispatch job for the batch


async def test_nobody_to_send_to_answers_an_empty_queue_id(
    http: httpx.AsyncClient, session: AsyncSession, redis: ArqRedis
) -> None:
    caller = await _funded_caller(session)
    tag = await create_tag(session, caller.organization)

    body = await _post(
        http, caller, SEND_BY_TAGS, {"input": {"message": "Hola", "tagIds": [str(tag.id)]}}
    )

    assert body["data"]["sendSmsByTags"] == {
        "__typename": "MessageEnqueueResult",
        "queueId": "",
        "channel": "SMS",
        "messages": [],
        "segments": 0,
        "cost": 0,
    }
    assert await redis.zcard(QUEUE) == 0


async def test_insufficient_credits_is_typed_and_nothing_is_enqueued(
    http: httpx.AsyncClient, session: AsyncSession, redis: ArqRedis
) -> None:
    caller = await _funded_caller(session, 1)
    tag = await create_tag(session, caller.organization)
    for _ in range(2):
        await tag_client(session, await create_client(session, caller.organization), tag)

    body = await _post(
        http, caller, SEND_BY_TAGS, {"input": {"message": "Hola", "tagIds": [str(tag.id)]}}
    )

    assert body["data"]["sendSmsByTags"] == {
        "__typename": "InsufficientCreditsError",
        "code": "INSUFFICIENT_CREDITS",
        "message": "insufficient credits: 2 required, 1 available",
        "required": 2,
        "available": 1,
    }
    assert await _count(session, Message, caller.organization) == 0
    assert await _count(session, CommunicationLog, caller.organization) == 0
    assert await redis.zcard(QUEUE) == 0
    assert [key async for key in redis.scan_iter(match="arq:job:*")] == []


async def test_foreign_tags_are_unknown(http: httpx.AsyncClient, session: AsyncSession) -> None:
    caller = await _funded_caller(session)
    other = await create_caller(session)
    foreign = await create_tag(session, other.organization)

    body = await _post(
        http,
        caller,
        SEND_BY_TAGS,
        {"input": {"message": "Hola", "tagIds": [str(foreign.id), "nope"]}},
    )

    result = body["data"]["sendSmsByTags"]
    assert result["__typename"] == "UnknownTagsError" and result["code"] == "UNKNOWN_TAGS"
    assert sorted(result["tagIds"]) == sorted([str(foreign.id), "nope"])


async def test_invalid_country_and_other_channels_are_invalid_input(
    http: httpx.AsyncClient, session: AsyncSession
) -> None:
    caller = await _funded_caller(session)
    tag = await create_tag(session, caller.organization)
    for extra, field in (({"country": "Colombia"}, "country"), ({"type": "EMAIL"}, "type")):
        body = await _post(
            http,
            caller,
            SEND_BY_TAGS,
            {"input": {"message": "Hola", "tagIds": [str(tag.id)], **extra}},
        )
        assert body["data"]["sendSmsByTags"] == {
            "__typename": "InvalidInputError",
            "code": "INVALID_INPUT",
            "field": field,
        }


async def test_terms_not_accepted_and_missing_scope_are_forbidden(
    http: httpx.AsyncClient, session: AsyncSession, redis: ArqRedis
) -> None:
    no_terms = await _funded_caller(session, terms_accepted=False)
    read_only = await _funded_caller(session, scopes=["read"])
    for caller, reason in ((no_terms, "TERMS_NOT_ACCEPTED"), (read_only, None)):
        tag = await create_tag(session, caller.organization)
        await tag_client(session, await create_client(session, caller.organization), tag)
        body = await _post(
            http, caller, SEND_BY_TAGS, {"input": {"message": "Hola", "tagIds": [str(tag.id)]}}
        )
        assert body["data"] is None
        (error,) = body["errors"]
        assert error["extensions"]["code"] == "FORBIDDEN"
        assert error["extensions"].get("reason") == reason
        assert await _count(session, Message, caller.organization) == 0
    assert await redis.zcard(QUEUE) == 0


async def test_send_message_and_resend_answer_the_seed_shape(
    http: httpx.AsyncClient, session: AsyncSession, redis: ArqRedis
) -> None:
    caller = await _funded_caller(session, 10)
    client = await create_client(session, caller.organization)

    sent = (
        await _post(
            http,
            caller,
            SEND_MESSAGE,
            {
                "input": {
                    "clientId": str(relay.GlobalID("Client", str(client.id))),
                    "channel": "EMAIL",
                    "type": "SESSION_REMINDER",
                    "body": "Hola Juan",
                    "subject": "Recordatorio",
                    "templateId": "tpl_session_reminder",
                    "metadata": {"sessionId": "sess_001", "ventaId": "v_9"},
                }
            },
        )
    )["data"]["sendMessage"]
    assert sent["__typename"] == "SendMessagePayload"
    assert (sent["channel"], sent["recipient"], sent["status"], sent["cost"]) == (
        "EMAIL",
        client.email,
        "QUEUED",
        1,
    )
    message = await session.get(Message, uuid.UUID(sent["messageId"]))
    assert message is not None and message.metadata_ == {"sessionId": "sess_001", "ventaId": "v_9"}

    resent = (
        await _post(
            http,
            caller,
            RESEND,
            {"id": sent["logId"], "channel": "WHATSAPP", "customMessage": "Mensaje alternativo"},
        )
    )["data"]["resend"]

    assert set(resent) == {"__typename", "originalId", "newId", "channel", "status", "sentAt"}
    assert resent["originalId"] == sent["logId"] and resent["newId"] != sent["logId"]
    assert (resent["channel"], resent["status"]) == ("WHATSAPP", "QUEUED")
    new_log = await session.get(CommunicationLog, uuid.UUID(resent["newId"]))
    assert new_log is not None and new_log.message_id == message.id
    assert new_log.recipient == client.phone_e164
    assert await redis.zcard(QUEUE) == 2
    await session.refresh(caller.organization)
    assert caller.organization.credit_balance == 8

    missing = (await _post(http, caller, RESEND, {"id": str(uuid.uuid4())}))["data"]["resend"]
    assert missing == {"__typename": "NotFoundError", "code": "NOT_FOUND"}


async def test_send_message_to_a_client_without_phone_names_the_field(
    http: httpx.AsyncClient, session: AsyncSession
) -> None:
    caller = await _funded_caller(session)
    client = await create_client(session, caller.organization, phone=None, phone_e164=None)
    body = await _post(
        http,
        caller,
        SEND_MESSAGE,
        {"input": {"clientId": str(client.id), "channel": "WHATSAPP", "body": "Hola"}},
    )
    assert body["data"]["sendMessage"] == {
        "__typename": "InvalidInputError",
        "code": "INVALID_INPUT",
        "field": "phone",
    }


async def test_communication_config_reads_and_merges_partially(
    http: httpx.AsyncClient, session: AsyncSession
) -> None:
    caller = await _funded_caller(session)
    before = (await _post(http, caller, f"{{ communicationConfig {{ {CONFIG_FIELDS} }} }}", {}))[
        "data"
    ]["communicationConfig"]
    assert before["preferences"]["quietHours"]["enabled"] is False

    update = f"""
    mutation Update($input: UpdateCommunicationConfigInput!) {{
      updateCommunicationConfig(input: $input) {{
        __typename
        ... on UpdateCommunicationConfigPayload {{ config {{ {CONFIG_FIELDS} }} }}
        ... on InvalidInputError {{ code field message }}
      }}
    }}
    """
    body = await _post(
        http,
        caller,
        update,
        {
            "input": {
                "email": {"fromName": "Mi Centro de Salud", "replyTo": "contacto@centro.cl"},
                "preferences": {
                    "defaultChannel": "EMAIL",
                    "quietHours": {"enabled": True, "start": "21:00", "end": "09:00"},
                },
            }
        },
    )
    config = body["data"]["updateCommunicationConfig"]["config"]
    assert config["email"] == {
        **before["email"],
        "fromName": "Mi Centro de Salud",
        "replyTo": "contacto@centro.cl",
    }
    assert config["whatsapp"] == before["whatsapp"]
    assert config["preferences"] == {
        **before["preferences"],
        "defaultChannel": "EMAIL",
        "quietHours": {"enabled": True, "start": "21:00", "end": "09:00", "timezone": None},
    }

    invalid = await _post(
        http,
        caller,
        update,
        {"input": {"preferences": {"quietHours": {"timezone": "Mars/Olympus"}}}},
    )
    result = invalid["data"]["updateCommunicationConfig"]
    assert (result["__typename"], result["field"]) == (
        "InvalidInputError",
        "preferences.quietHours.timezone",
    )
    bad_time = await _post(
        http, caller, update, {"input": {"preferences": {"quietHours": {"start": "25:00"}}}}
    )
    assert bad_time["data"]["updateCommunicationConfig"]["field"] == "preferences.quietHours.start"
