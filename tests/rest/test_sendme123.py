"""sendme123's routes: GET /api/messages (seed 002) and POST /api/messages/sms/tags (seed 001)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mensajero.models import CommunicationLog, Message, Organization
from mensajero.rest.sendme123 import MessageList
from mensajero.services import credits
from mensajero.settings import Settings
from tests.factories import (
    Caller,
    create_caller,
    create_campaign,
    create_client,
    create_message,
    create_tag,
    tag_client,
)
from tests.resolvers.graphql_helpers import data

BASE = datetime(2026, 1, 20, 15, 0, tzinfo=UTC)
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
QUEUE = Settings().queue_name

# Seed 002's example item and meta: every key, with its JSON type.
SEED_ITEM_TYPES: dict[str, tuple[type, ...]] = {
    "id": (str,),
    "content": (str,),
    "contentType": (str,),
    "status": (str,),
    "sentAt": (str, type(None)),
    "errorMessage": (str, type(None)),
    "recipientDetails": (str,),
    "countryCode": (str, type(None)),
    "messageType": (str,),
    "provider": (str, type(None)),
    "campaign": (dict, type(None)),
    "contact": (dict, type(None)),
    "organizationId": (str,),
    "createdAt": (str,),
    "updatedAt": (str,),
    "deletedAt": (str, type(None)),
}
SEED_META_TYPES = {
    "totalRecords": int,
    "totalPages": int,
    "currentPage": int,
    "limit": int,
    "hasNextPage": bool,
    "hasPreviousPage": bool,
}
INVALID_LIMIT = {
    "error": "Parámetros inválidos",
    "details": "El parámetro 'limit' debe estar entre 1 y 100",
}
UNAUTHORIZED = {"error": "No autorizado", "message": "API key inválida o faltante"}


class Dataset:
    caller: Caller
    juan: Any
    ana: Any
    promo: Any
    delivered: Message
    bounced: Message
    whatsapp: Message
    old: Message
    stranger: Message


async def build_dataset(session: AsyncSession) -> Dataset:
    """Four live messages of a Bogotá organization, one soft-deleted, and a stranger's."""
    d = Dataset()
    d.caller = await create_caller(session, timezone="America/Bogota")
    org = d.caller.organization
    d.juan = await create_client(
        session, org, name="Juan Pérez", email="juan@example.com", phone_e164="+573001234567"
    )
    d.ana = await create_client(session, org, name="Ana López", email="ana@example.com")
    d.promo = await create_campaign(session, org, name="Campaña de bienvenida")
    d.delivered = await create_message(
        session,
        org,
        client=d.juan,
        campaign=d.promo,
        body="Hola, este es un mensaje de prueba",
        status="DELIVERED",
        sent_at=BASE + timedelta(seconds=1, microseconds=500_000),
        created_at=BASE,
        updated_at=BASE + timedelta(minutes=1),
    )
    d.bounced = await create_message(
        session,
        org,
        client=d.ana,
        channel="email",
        subject="Recibo",
        content_type="HTML",
        body="<p>Tu recibo</p>",
        status="BOUNCED",
        error_message="Mailbox does not exist",
        created_at=BASE - timedelta(hours=1),
    )
    d.whatsapp = await create_message(
        session,
        org,
        client=d.juan,
        channel="whatsapp",
        body="Confirma tu cita",
        status="READ",
        created_at=BASE - timedelta(hours=2),
    )
    # 2026-01-19 23:30 in Bogotá, 2026-01-20 04:30 UTC: the 19th for the organization.
    d.old = await create_message(
        session,
        org,
        client=d.ana,
        body="Mensaje de anoche",
        status="FAILED",
        created_at=datetime(2026, 1, 20, 4, 30, tzinfo=UTC),
    )
    await create_message(
        session,
        org,
        client=d.ana,
        status="DELIVERED",
        created_at=BASE - timedelta(hours=3),
        deleted_at=BASE,
    )
    stranger = await create_caller(session)
    d.stranger = await create_message(
        session, stranger.organization, status="DELIVERED", created_at=BASE
    )
    return d


async def _get(
    http: httpx.AsyncClient, caller: Caller, params: dict[str, Any] | None = None
) -> httpx.Response:
    return await http.get("/api/messages", params=params, headers={"api-key": caller.key})


async def _ids(http: httpx.AsyncClient, caller: Caller, params: dict[str, Any]) -> list[str]:
    response = await _get(http, caller, params)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["data"]]


async def test_list_body_is_exactly_what_the_response_models_write(
    http: httpx.AsyncClient, session: AsyncSession
) -> None:
    """The page is shaped as plain dicts for speed; MessageList (the OpenAPI schema) must
    validate it and write it back byte for byte: same keys, order and value formats."""
    d = await build_dataset(session)
    # A message without client or campaign, with an unknown provider and a foreign number.
    await create_message(
        session,
        d.caller.organization,
        body="Sin contacto",
        recipient="+4915112345678",
        country_code=None,
        provider="acme",
        status="SENT",
        sent_at=BASE + timedelta(minutes=5, microseconds=999_999),
        created_at=BASE + timedelta(minutes=5),
    )

    for params in ({}, {"limit": 2, "page": 2}, {"status": "UNDELIVERED"}, {"page": 99}):
        response = await _get(http, d.caller, params)

        assert response.status_code == 200, response.text
        assert MessageList.model_validate_json(response.content).model_dump_json().encode() == (
            response.content
        )
    assert len((await _get(http, d.caller)).json()["data"]) == 5


async def test_list_answers_every_key_of_the_seed(
    http: httpx.AsyncClient, session: AsyncSession
) -> None:
    d = await build_dataset(session)

    response = await _get(http, d.caller)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"data", "meta"}
    assert [item["id"] for item in body["data"]] == [
        str(d.delivered.id),
        str(d.bounced.id),
        str(d.whatsapp.id),
        str(d.old.id),
    ]
    for item in body["data"]:
        assert set(item) == set(SEED_ITEM_TYPES)
        for key, types in SEED_ITEM_TYPES.items():
            assert isinstance(item[key], types), (key, item[key])
        for key in ("createdAt", "updatedAt"):
            assert TIMESTAMP.match(item[key]), item[key]
    assert body["data"][0] == {
        "id": str(d.delivered.id),
        "content": "Hola, este es un mensaje de prueba",
        "contentType": "PLAIN_TEXT",
        "status": "DELIVERED",
        "sentAt": "2026-01-20T15:00:01.500Z",
        "errorMessage": None,
        "recipientDetails": "3001234567",
        "countryCode": "57",
        "messageType": "SMS",
        "provider": "Twilio",
        "campaign": {"id": str(d.promo.id), "name": "Campaña de bienvenida"},
        "contact": {"id": str(d.juan.id), "name": "Juan Pérez"},
        "organizationId": str(d.caller.organization.id),
        "createdAt": "2026-01-20T15:00:00.000Z",
        "updatedAt": "2026-01-20T15:01:00.000Z",
        "deletedAt": None,
    }
    bounced = body["data"][1]
    assert bounced["status"] == "UNDELIVERED"  # BOUNCED in sendme123's vocabulary
    assert bounced["messageType"] == "EMAIL" and bounced["provider"] == "Resend"
    assert bounced["recipientDetails"] == "ana@example.com" and bounced["countryCode"] is None
    assert bounced["errorMessage"] == "Mailbox does not exist"
    assert bounced["contentType"] == "HTML" and bounced["campaign"] is None
    assert (
        body["data"][2]["messageType"] == "WHATSAPP" and body["data"][2]["provider"] == "Evolution"
    )
    assert body["meta"] == {
        "totalRecords": 4,
        "totalPages": 1,
        "currentPage": 1,
        "limit": 10,
        "hasNextPage": False,
        "hasPreviousPage": False,
    }
    for key, kind in SEED_META_TYPES.items():
        assert type(body["meta"][key]) is kind


async def test_pages_and_meta(http: httpx.AsyncClient, session: AsyncSession) -> None:
    d = await build_dataset(session)

    first = (await _get(http, d.caller, {"page": 1, "limit": 3})).json()
    second = (await _get(http, d.caller, {"page": "2", "limit": "3"})).json()
    beyond = (await _get(http, d.caller, {"page": 9, "limit": 3})).json()

    assert len(first["data"]) == 3 and [i["id"] for i in second["data"]] == [str(d.old.id)]
    assert first["meta"] == {
        "totalRecords": 4,
        "totalPages": 2,
        "currentPage": 1,
        "limit": 3,
        "hasNextPage": True,
        "hasPreviousPage": False,
    }
    assert second["meta"]["hasNextPage"] is False and second["meta"]["hasPreviousPage"] is True
    assert beyond["data"] == [] and beyond["meta"]["totalRecords"] == 4


async def test_every_filter(http: httpx.AsyncClient, session: AsyncSession) -> None:
    d = await build_dataset(session)
    c = d.caller

    assert await _ids(http, c, {"status": "DELIVERED"}) == [str(d.delivered.id)]
    assert await _ids(http, c, {"status": "undelivered"}) == [str(d.bounced.id)]
    assert await _ids(http, c, {"status": "READ"}) == [str(d.whatsapp.id)]
    assert await _ids(http, c, {"messageType": "WhatsApp"}) == [str(d.whatsapp.id)]
    assert await _ids(http, c, {"messageType": "email"}) == [str(d.bounced.id)]
    assert await _ids(http, c, {"contentType": "HTML"}) == [str(d.bounced.id)]
    assert await _ids(http, c, {"content": "MENSAJE DE PRUEBA"}) == [str(d.delivered.id)]
    assert await _ids(http, c, {"campaignId": str(d.promo.id)}) == [str(d.delivered.id)]
    assert await _ids(http, c, {"contactId": str(d.juan.id)}) == [
        str(d.delivered.id),
        str(d.whatsapp.id),
    ]
    assert await _ids(http, c, {"providerId": "Twilio", "contactId": str(d.juan.id)}) == [
        str(d.delivered.id)
    ]
    assert await _ids(http, c, {"recipientDetails": "3001234567", "countryCode": "57"}) == [
        str(d.delivered.id),
        str(d.whatsapp.id),
    ]
    assert await _ids(http, c, {"recipientDetails": "+573001234567", "messageType": "SMS"}) == [
        str(d.delivered.id)
    ]
    assert await _ids(http, c, {"sentAt": "2026-01-20T15:00:01Z"}) == [str(d.delivered.id)]
    # Days are the organization's (Bogotá): 04:30 UTC on the 20th is the 19th there.
    assert await _ids(http, c, {"startDate": "2026-01-19", "endDate": "2026-01-19"}) == [
        str(d.old.id)
    ]
    assert await _ids(http, c, {"startDate": "2026-01-20"}) == [
        str(d.delivered.id),
        str(d.bounced.id),
        str(d.whatsapp.id),
    ]
    # Another organization's campaign or contact is simply not found in ours.
    stranger_campaign = await create_campaign(session, (await create_caller(session)).organization)
    assert await _ids(http, c, {"campaignId": str(stranger_campaign.id)}) == []


@pytest.mark.parametrize(
    ("params", "details"),
    [
        ({"limit": "0"}, "El parámetro 'limit' debe estar entre 1 y 100"),
        ({"limit": "101"}, "El parámetro 'limit' debe estar entre 1 y 100"),
        ({"limit": "diez"}, "El parámetro 'limit' debe estar entre 1 y 100"),
        ({"page": "0"}, "El parámetro 'page' debe ser un número entero mayor o igual a 1"),
        (
            {"status": "LOST"},
            "El parámetro 'status' debe ser uno de: QUEUED, SENDING, SENT, "
            "DELIVERED, UNDELIVERED, FAILED, RECEIVED, SCHEDULED, CANCELED, READ",
        ),
        ({"campaignId": "campaign-uuid"}, "El parámetro 'campaignId' debe ser un UUID válido"),
        (
            {"startDate": "20/01/2026"},
            "El parámetro 'startDate' debe ser una fecha con formato YYYY-MM-DD",
        ),
        (
            {"messageType": "FAX"},
            "El parámetro 'messageType' debe ser uno de: SMS, WHATSAPP, EMAIL",
        ),
    ],
)
async def test_invalid_parameters_answer_the_seed_400(
    http: httpx.AsyncClient, session: AsyncSession, params: dict[str, str], details: str
) -> None:
    caller = await create_caller(session)

    response = await _get(http, caller, params)

    assert response.status_code == 400
    assert response.json() == {"error": "Parámetros inválidos", "details": details}


async def test_the_seed_400_word_for_word(http: httpx.AsyncClient, session: AsyncSession) -> None:
    caller = await create_caller(session)
    response = await _get(http, caller, {"limit": "500"})
    assert response.status_code == 400 and response.json() == INVALID_LIMIT


async def test_missing_or_bad_key_answers_the_seed_401(http: httpx.AsyncClient) -> None:
    for headers in ({}, {"api-key": "nope"}, {"Authorization": "Bearer mk_live_000000000000.x"}):
        response = await http.get("/api/messages", headers=headers)
        assert response.status_code == 401
        assert response.json() == UNAUTHORIZED


async def test_head_is_answered_like_get(http: httpx.AsyncClient, session: AsyncSession) -> None:
    caller = await create_caller(session)

    response = await http.head("/api/messages", headers=caller.headers)

    assert response.status_code == 200 and response.content == b""


async def test_every_key_header_style_is_accepted(
    http: httpx.AsyncClient, session: AsyncSession
) -> None:
    caller = await create_caller(session)
    for headers in (
        {"Authorization": f"Bearer {caller.key}"},
        {"X-Api-Key": caller.key},
        {"api-key": caller.key},
    ):
        assert (await http.get("/api/messages", headers=headers)).status_code == 200


GRAPHQL_MESSAGES = """
query($filter: MessageFilterInput) {
  messages(filter: $filter, first: 100) { totalCount edges { node { uuid } } }
}"""


@pytest.mark.parametrize(
    ("rest", "graphql"),
    [
        ({}, {}),
        ({"status": "DELIVERED"}, {"status": ["DELIVERED"]}),
        ({"messageType": "SMS"}, {"channel": ["SMS"]}),
        ({"content": "mensaje"}, {"content": "mensaje"}),
        (
            {"startDate": "2026-01-20", "endDate": "2026-01-20"},
            {"startDate": "2026-01-20", "endDate": "2026-01-20"},
        ),
    ],
)
async def test_rest_and_graphql_answer_the_same(
    http: httpx.AsyncClient,
    session: AsyncSession,
    rest: dict[str, str],
    graphql: dict[str, Any],
) -> None:
    d = await build_dataset(session)
    d.caller.headers  # noqa: B018

    response = (await _get(http, d.caller, {**rest, "limit": 100})).json()
    connection = (await data(http, d.caller, GRAPHQL_MESSAGES, {"filter": graphql}))["messages"]

    assert [item["id"] for item in response["data"]] == [
        edge["node"]["uuid"] for edge in connection["edges"]
    ]
    assert response["meta"]["totalRecords"] == connection["totalCount"]


# --- POST /api/messages/sms/tags -------------------------------------------------------


async def _funded_caller(session: AsyncSession, amount: int = 100, **kw: Any) -> Caller:
    caller = await create_caller(session, **kw)
    await credits.top_up(session, organization_id=caller.organization.id, amount=amount)
    return caller


async def _count(session: AsyncSession, model: type, organization: Organization) -> int:
    result = await session.execute(
        select(func.count()).select_from(model).where(model.organization_id == organization.id)
    )
    return int(result.scalar_one())


async def _send(
    http: httpx.AsyncClient, caller: Caller, body: Any, *, raw: bytes | None = None
) -> httpx.Response:
    if raw is not None:
        return await http.post(
            "/api/messages/sms/tags",
            content=raw,
            headers={**caller.headers, "Content-Type": "application/json"},
        )
    return await http.post("/api/messages/sms/tags", json=body, headers=caller.headers)


async def test_send_by_tags_answers_201_with_the_dto(
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
    twin = await create_client(session, caller.organization, phone_e164=both.phone_e164)
    await tag_client(session, twin, buyers)

    response = await _send(
        http,
        caller,
        {
            "message": "¡Oferta exclusiva para clientes VIP!",
            "tagIds": [str(vip.id), str(buyers.id)],
            "type": "SMS",
            "country": "CO",
        },
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"queueId", "channel", "messages"}
    assert body["channel"] == "sms" and body["queueId"].startswith("sms-")
    assert sorted(m["recipient"] for m in body["messages"]) == sorted(
        [both.phone_e164, "+573009876543"]
    )
    for message in body["messages"]:
        assert set(message) == {"id", "recipient"} and uuid.UUID(message["id"])
    assert await _count(session, Message, caller.organization) == 2
    assert await redis.zcard(QUEUE) == 1


async def test_nobody_to_send_to_answers_200_with_an_empty_queue_id(
    http: httpx.AsyncClient, session: AsyncSession, redis: ArqRedis
) -> None:
    caller = await _funded_caller(session)
    tag = await create_tag(session, caller.organization)

    response = await _send(http, caller, {"message": "Hola", "tagIds": [str(tag.id)]})

    assert response.status_code == 200
    assert response.json() == {"queueId": "", "channel": "sms", "messages": []}
    assert await redis.zcard(QUEUE) == 0


async def test_terms_not_accepted_is_403(http: httpx.AsyncClient, session: AsyncSession) -> None:
    caller = await _funded_caller(session, terms_accepted=False)
    tag = await create_tag(session, caller.organization)
    await tag_client(session, await create_client(session, caller.organization), tag)

    response = await _send(http, caller, {"message": "Hola", "tagIds": [str(tag.id)]})

    assert response.status_code == 403
    assert response.json() == {
        "statusCode": 403,
        "message": "Debes aceptar los términos y condiciones vigentes antes de enviar mensajes",
        "error": "Forbidden",
    }
    assert await _count(session, Message, caller.organization) == 0


async def test_insufficient_credits_is_402_and_nothing_is_enqueued(
    http: httpx.AsyncClient, session: AsyncSession, redis: ArqRedis
) -> None:
    caller = await _funded_caller(session, 1)
    tag = await create_tag(session, caller.organization)
    for _ in range(2):
        await tag_client(session, await create_client(session, caller.organization), tag)

    response = await _send(http, caller, {"message": "Hola", "tagIds": [str(tag.id)]})

    assert response.status_code == 402
    assert response.json() == {
        "statusCode": 402,
        "message": "Créditos insuficientes: se requieren 2 y hay 1 disponibles",
        "error": "Payment Required",
        "required": 2,
        "available": 1,
    }
    assert await _count(session, Message, caller.organization) == 0
    assert await _count(session, CommunicationLog, caller.organization) == 0
    assert await redis.zcard(QUEUE) == 0
    await session.refresh(caller.organization)
    assert caller.organization.credit_balance == 1


@pytest.mark.parametrize(
    ("body", "messages"),
    [
        ({}, ["message must be a string", "tagIds must be an array"]),
        (
            {"message": "", "tagIds": []},
            ["message should not be empty", "tagIds should not be empty"],
        ),
        ({"message": "Hola", "tagIds": ["tag-uuid-1"]}, ["each value in tagIds must be a UUID"]),
        (
            {"message": "Hola", "tagIds": [str(uuid.uuid4())], "type": "EMAIL", "country": "COL"},
            [
                "type must be one of the following values: SMS",
                "country must be a valid ISO31661 Alpha2 code",
            ],
        ),
        ([1, 2], ["message must be a string", "tagIds must be an array", "body must be an object"]),
    ],
)
async def test_invalid_bodies_answer_nestjs_400(
    http: httpx.AsyncClient, session: AsyncSession, body: Any, messages: list[str]
) -> None:
    caller = await _funded_caller(session)

    response = await _send(http, caller, body)

    assert response.status_code == 400
    assert response.json() == {"statusCode": 400, "message": messages, "error": "Bad Request"}


async def test_malformed_json_and_unknown_tags_are_400(
    http: httpx.AsyncClient, session: AsyncSession
) -> None:
    caller = await _funded_caller(session)
    foreign = await create_tag(session, (await create_caller(session)).organization)

    malformed = await _send(http, caller, None, raw=b"{not json")
    unknown = await _send(http, caller, {"message": "Hola", "tagIds": [str(foreign.id)]})

    assert malformed.status_code == 400 and malformed.json()["error"] == "Bad Request"
    assert unknown.status_code == 400
    assert unknown.json()["message"] == [
        f"each value in tagIds must be a tag of the organization: {foreign.id}"
    ]


async def test_send_without_key_is_401(http: httpx.AsyncClient) -> None:
    response = await http.post("/api/messages/sms/tags", json={"message": "Hola", "tagIds": []})
    assert response.status_code == 401 and response.json() == UNAUTHORIZED


async def test_send_needs_the_send_scope(http: httpx.AsyncClient, session: AsyncSession) -> None:
    caller = await _funded_caller(session, scopes=["read"])
    tag = await create_tag(session, caller.organization)

    response = await _send(http, caller, {"message": "Hola", "tagIds": [str(tag.id)]})

    assert response.status_code == 403 and response.json()["error"] == "Forbidden"
