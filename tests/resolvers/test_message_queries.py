"""messages and communicationLogs: fields, every filter, keyset pages, totals and tenancy."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.relay import to_base64

from mensajero.models import Message
from tests.factories import (
    Caller,
    create_caller,
    create_campaign,
    create_client,
    create_log,
    create_message,
)
from tests.resolvers.graphql_helpers import data, execute, node_uuids

BASE = datetime(2026, 1, 20, 8, 0, tzinfo=UTC)

MESSAGES = """
query($filter: MessageFilterInput, $first: Int, $after: String, $last: Int, $before: String) {
  messages(filter: $filter, first: $first, after: $after, last: $last, before: $before) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { uuid } }
  }
}"""


class Dataset:
    caller: Caller
    messages: list[Message]
    ana: Any
    juan: Any
    promo: Any


async def build_dataset(session: AsyncSession) -> Dataset:
    """Six messages of one organization (Bogotá time), one soft-deleted, and a stranger's."""
    d = Dataset()
    d.caller = await create_caller(session, timezone="America/Bogota")
    org = d.caller.organization
    d.ana = await create_client(
        session, org, name="Ana López", email="ana@example.com", phone_e164="+573001112233"
    )
    d.juan = await create_client(
        session, org, name="Juan Pérez", email="juan@example.com", phone_e164="+525512345678"
    )
    d.promo = await create_campaign(session, org, name="Promo VIP")
    specs: list[dict[str, Any]] = [
        {
            "client": d.ana,
            "body": "Hola Ana, te recordamos tu cita",
            "status": "DELIVERED",
            "communication_type": "session_reminder",
            "sent_at": BASE + timedelta(seconds=30, microseconds=250_000),
            "queue_id": "q-1",
        },
        {
            "client": d.juan,
            "campaign": d.promo,
            "channel": "whatsapp",
            "body": "Oferta ESPECIAL para ti",
            "status": "READ",
            "queue_id": "q-2",
        },
        {
            "client": d.ana,
            "channel": "email",
            "content_type": "HTML",
            "body": "<p>Tu recibo</p>",
            "subject": "Recibo",
            "status": "BOUNCED",
            "communication_type": "receipt",
        },
        {
            "client": d.juan,
            "body": "Pago pendiente",
            "status": "FAILED",
            "country_code": "52",
            "communication_type": "payment_reminder",
        },
        {
            "client": d.ana,
            "channel": "whatsapp",
            "direction": "inbound",
            "body": "Sí, confirmo 100% mi_cita",
            "status": "RECEIVED",
        },
        {"client": d.ana, "body": "Hola Ana, borrado", "deleted_at": BASE},
    ]
    d.messages = []
    for index, spec in enumerate(specs):
        client = spec.pop("client")
        campaign = spec.pop("campaign", None)
        message = await create_message(
            session,
            org,
            client=client,
            campaign=campaign,
            created_at=BASE + timedelta(hours=6 * index),
            **spec,
        )
        d.messages.append(message)
    stranger = await create_caller(session)
    stranger_client = await create_client(session, stranger.organization, name="Ana Ajena")
    await create_message(
        session, stranger.organization, client=stranger_client, body="Hola Ana", status="DELIVERED"
    )
    return d


async def list_uuids(
    http: httpx.AsyncClient, caller: Caller, message_filter: dict[str, Any], **page: Any
) -> tuple[list[str], int]:
    result = await data(http, caller, MESSAGES, {"filter": message_filter, **page})
    return node_uuids(result["messages"]), result["messages"]["totalCount"]


def global_id(type_name: str, row_id: uuid.UUID) -> str:
    return to_base64(type_name, str(row_id))


async def test_every_message_filter_with_its_total(
    http: httpx.AsyncClient, session: AsyncSession
) -> None:
    d = await build_dataset(session)
    m = [str(message.id) for message in d.messages]
    cases: list[tuple[dict[str, Any], list[int]]] = [
        ({}, [4, 3, 2, 1, 0]),
        ({"content": "hola ana"}, [0]),
        ({"content": "especial"}, [1]),
        ({"content": "100%"}, [4]),  # % is a literal, not a wildcard
        ({"content": "i_c"}, [4]),  # so is _
        ({"contentType": "HTML"}, [2]),
        ({"status": "DELIVERED"}, [0]),
        ({"status": ["DELIVERED", "READ"]}, [1, 0]),
        ({"sentAt": "2026-01-20T08:00:30Z"}, [0]),
        ({"sentAt": "2026-01-20T08:00:31Z"}, []),
        ({"recipient": "573001112233"}, [4, 0]),
        ({"recipient": "+573001112233"}, [4, 0]),
        ({"recipient": "ANA@example.com"}, [2]),
        ({"countryCode": "+52"}, [3]),
        ({"countryCode": "57"}, [4, 1, 0]),
        ({"channel": "WHATSAPP"}, [4, 1]),
        ({"channel": ["SMS", "EMAIL"]}, [3, 2, 0]),
        ({"messageType": "WHATSAPP"}, [4, 1]),
        ({"messageType": ["WHATSAPP", "SMS"], "channel": "SMS"}, [3, 0]),
        ({"type": "CAMPAIGN"}, [1]),
        ({"type": ["RECEIPT", "PAYMENT_REMINDER"]}, [3, 2]),
        ({"direction": "INBOUND"}, [4]),
        ({"providerId": "Twilio"}, [3, 0]),
        ({"campaignId": str(d.promo.id)}, [1]),
        ({"campaignId": global_id("Campaign", d.promo.id)}, [1]),
        ({"clientId": str(d.ana.id)}, [4, 2, 0]),
        ({"clientId": global_id("Client", d.ana.id)}, [4, 2, 0]),
        ({"contactId": str(d.juan.id)}, [3, 1]),
        ({"contactId": str(d.juan.id), "clientId": str(d.ana.id)}, []),
        ({"queueId": "q-1"}, [0]),
        # Bogotá days: message 3 was created on Jan 21 UTC but Jan 20 in Bogotá.
        ({"startDate": "2026-01-20", "endDate": "2026-01-20"}, [3, 2, 1, 0]),
        ({"startDate": "2026-01-21"}, [4]),
        ({"endDate": "2026-01-19"}, []),
        ({"startDate": "2026-01-20", "status": ["FAILED", "RECEIVED"]}, [4, 3]),
        ({"createdAfter": "2026-01-20T14:00:00Z", "createdBefore": "2026-01-21T02:00:00Z"}, [2, 1]),
        ({"createdAfter": "2026-01-20T14:30:00Z"}, [4, 3, 2]),
        ({"status": "DELIVERED", "channel": "WHATSAPP"}, []),
        ({"clientId": str(d.ana.id), "status": "BOUNCED"}, [2]),
    ]
    for message_filter, expected in cases:
        uuids, total = await list_uuids(http, d.caller, message_filter)
        assert uuids == [m[index] for index in expected], message_filter
        assert total == len(expected), message_filter


async def test_message_fields_and_relations(http: httpx.AsyncClient, session: AsyncSession) -> None:
    d = await build_dataset(session)
    second = d.messages[1]
    retry = await create_log(
        session,
        second,
        channel="email",
        recipient="juan@example.com",
        status="DELIVERED",
        attempt_number=2,
        created_at=second.created_at + timedelta(minutes=5),
        error_code=None,
        response_text="Sí, confirmo",
        response_received_at=second.created_at + timedelta(minutes=9),
    )
    query = """
    query($id: ID!) {
      message(id: $id) {
        id uuid body subject contentType channel type direction status recipient countryCode
        provider queueId createdAt
        client { uuid name }
        campaign { uuid name }
        logs {
          uuid channel status attemptNumber recipient response { text }
          message { uuid }
          timeline { event timestamp }
        }
      }
    }"""
    result = await data(http, d.caller, query, {"id": str(second.id)})
    message = result["message"]
    assert message["uuid"] == str(second.id)
    assert message["id"] == global_id("Message", second.id)
    assert message["channel"] == "WHATSAPP"
    assert message["type"] == "CAMPAIGN"
    assert message["status"] == "READ"
    assert message["contentType"] == "PLAIN_TEXT"
    assert message["direction"] == "OUTBOUND"
    assert message["queueId"] == "q-2"
    assert message["client"] == {"uuid": str(d.juan.id), "name": "Juan Pérez"}
    assert message["campaign"] == {"uuid": str(d.promo.id), "name": "Promo VIP"}
    first_log, second_log = message["logs"]
    assert first_log["attemptNumber"] == 1 and first_log["status"] == "READ"
    assert [e["event"] for e in first_log["timeline"]] == [
        "CREATED",
        "QUEUED",
        "SENT",
        "DELIVERED",
        "READ",
    ]
    assert second_log["uuid"] == str(retry.id)
    assert second_log["channel"] == "EMAIL"
    assert second_log["response"] == {"text": "Sí, confirmo"}
    assert second_log["message"] == {"uuid": str(second.id)}

    # The same message by its global id, and through node().
    by_global = await data(http, d.caller, query, {"id": message["id"]})
    assert by_global["message"]["uuid"] == str(second.id)
    node = await data(
        http,
        d.caller,
        "query($id: ID!) { node(id: $id) { ... on Message { uuid } } }",
        {"id": message["id"]},
    )
    assert node["node"] == {"uuid": str(second.id)}


async def test_pages_forward_and_backward_without_skips_or_repeats(
    http: httpx.AsyncClient, session: AsyncSession
) -> None:
    caller = await create_caller(session)
    client = await create_client(session, caller.organization)
    created = []
    # Groups of equal created_at: the id breaks ties.
    for index in range(11):
        moment = BASE + timedelta(minutes=index // 3)
        message = await create_message(
            session, caller.organization, client=client, created_at=moment, log=False
        )
        created.append(message)
    expected = [
        str(m.id) for m in sorted(created, key=lambda m: (m.created_at, m.id), reverse=True)
    ]

    seen: list[str] = []
    after = None
    pages = 0
    while True:
        result = (await data(http, caller, MESSAGES, {"first": 3, "after": after}))["messages"]
        seen.extend(node_uuids(result))
        pages += 1
        assert result["pageInfo"]["hasPreviousPage"] is (after is not None)
        assert result["totalCount"] == 11
        if not result["pageInfo"]["hasNextPage"]:
            break
        after = result["pageInfo"]["endCursor"]
    assert seen == expected
    assert pages == 4

    backward: list[str] = []
    before = None
    while True:
        result = (await data(http, caller, MESSAGES, {"last": 4, "before": before}))["messages"]
        backward = node_uuids(result) + backward
        assert result["pageInfo"]["hasNextPage"] is (before is not None)
        if not result["pageInfo"]["hasPreviousPage"]:
            break
        before = result["pageInfo"]["startCursor"]
    assert backward == expected

    # A cursor from the middle: after it and before it split the list exactly.
    middle = (await data(http, caller, MESSAGES, {"first": 5}))["messages"]["edges"][4]["cursor"]
    tail = (await data(http, caller, MESSAGES, {"first": 100, "after": middle}))["messages"]
    head = (await data(http, caller, MESSAGES, {"last": 100, "before": middle}))["messages"]
    assert [*node_uuids(head), expected[4], *node_uuids(tail)] == expected
    empty = (await data(http, caller, MESSAGES, {"first": 0}))["messages"]
    assert empty["edges"] == [] and empty["totalCount"] == 11


async def test_page_size_limits_and_bad_cursors_are_clear_errors(
    http: httpx.AsyncClient, session: AsyncSession
) -> None:
    caller = await create_caller(session)
    for variables, field in (
        ({"first": 101}, "first"),
        ({"last": 101}, "last"),
        ({"first": -1}, "first"),
        ({"first": 1, "last": 1}, "first"),
        ({"after": "not-a-cursor"}, "after"),
    ):
        body = await execute(http, caller, MESSAGES, variables)
        assert body["data"] is None
        (error,) = body["errors"]
        assert error["extensions"]["code"] == "INVALID_INPUT", variables
        assert field in error["message"]
    body = await execute(http, caller, MESSAGES, {"first": 101})
    assert "between 0 and 100" in body["errors"][0]["message"]
    ok = await data(http, caller, MESSAGES, {"first": 100})
    assert ok["messages"]["edges"] == []


async def test_other_organizations_ids_answer_null_or_empty(
    http: httpx.AsyncClient, session: AsyncSession
) -> None:
    d = await build_dataset(session)
    stranger = await create_caller(session)
    ours = d.messages[0]
    # The stranger sees nothing of ours, by any id or filter.
    for query, variables in (
        ("query($id: ID!) { message(id: $id) { uuid } }", {"id": str(ours.id)}),
        ("query($id: ID!) { message(id: $id) { uuid } }", {"id": global_id("Message", ours.id)}),
        ("query($id: ID!) { node(id: $id) { id } }", {"id": global_id("Message", ours.id)}),
        ("query($id: ID!) { client(id: $id) { uuid } }", {"id": str(d.ana.id)}),
        ("query($id: ID!) { campaign(id: $id) { uuid } }", {"id": str(d.promo.id)}),
        ("query($id: ID!) { message(id: $id) { uuid } }", {"id": "garbage"}),
        ("query($id: ID!) { message(id: $id) { uuid } }", {"id": global_id("Tag", ours.id)}),
    ):
        result = await data(http, stranger, query, variables)
        assert list(result.values()) == [None], (query, variables)
    for message_filter in (
        {"clientId": str(d.ana.id)},
        {"campaignId": str(d.promo.id)},
        {"clientId": "not-an-id"},
        {"campaignId": global_id("Client", d.promo.id)},  # a global id of the wrong type
    ):
        uuids, total = await list_uuids(http, stranger, message_filter)
        assert (uuids, total) == ([], 0)
        uuids, total = await list_uuids(http, d.caller, message_filter | {"status": "READ"})
        assert len(uuids) == total
    # Our own garbage ids match nothing rather than everything.
    assert await list_uuids(http, d.caller, {"clientId": ["nope"]}) == ([], 0)
    nodes = await data(
        http,
        d.caller,
        "query($ids: [ID!]!) { nodes(ids: $ids) { ... on Message { uuid } } }",
        {"ids": [global_id("Message", ours.id), global_id("Message", uuid.uuid4())]},
    )
    assert nodes["nodes"] == [{"uuid": str(ours.id)}, None]


async def test_soft_deleted_and_removed_messages_leave_lists_and_totals(
    http: httpx.AsyncClient, session: AsyncSession
) -> None:
    d = await build_dataset(session)
    deleted = d.messages[5]
    result = await data(
        http, d.caller, "query($id: ID!) { message(id: $id) { uuid } }", {"id": str(deleted.id)}
    )
    assert result["message"] is None
    assert (await list_uuids(http, d.caller, {"content": "borrado"})) == ([], 0)

    # Writes after the fact keep the totals exact (the rollup's triggers).
    await session.execute(
        update(Message).where(Message.id == d.messages[0].id).values(deleted_at=BASE)
    )
    await session.execute(
        update(Message).where(Message.id == d.messages[3].id).values(status="DELIVERED")
    )
    await session.execute(
        update(Message).where(Message.id == deleted.id).values(deleted_at=None, status="SENT")
    )
    await session.execute(delete(Message).where(Message.id == d.messages[2].id))
    assert (await list_uuids(http, d.caller, {"status": "DELIVERED"}))[1] == 1
    assert (await list_uuids(http, d.caller, {"status": "SENT"}))[1] == 1
    uuids, total = await list_uuids(http, d.caller, {})
    assert total == len(uuids) == 4


LOGS = """
query($filter: CommunicationLogFilterInput, $first: Int, $after: String) {
  communicationLogs(filter: $filter, first: $first, after: $after) {
    totalCount
    summary { total delivered opened read bounced failed }
    pageInfo { hasNextPage endCursor }
    edges { node { uuid status channel type client { name } campaign { name } } }
  }
}"""


async def test_communication_logs_filters_and_summary(
    http: httpx.AsyncClient, session: AsyncSession
) -> None:
    d = await build_dataset(session)
    org = d.caller.organization
    first = d.messages[2]  # bounced e-mail to Ana
    resend = await create_log(
        session,
        first,
        channel="whatsapp",
        status="READ",
        attempt_number=2,
        created_at=first.created_at + timedelta(hours=1),
        delivered_at=first.created_at + timedelta(hours=1, seconds=3),
        read_at=first.created_at + timedelta(hours=1, minutes=2),
    )
    opened = await create_message(
        session,
        org,
        client=d.juan,
        channel="email",
        status="DELIVERED",
        created_at=BASE + timedelta(days=3),
    )
    from sqlalchemy import select

    from mensajero.models import CommunicationLog

    opened_log = (
        await session.execute(
            select(CommunicationLog).where(CommunicationLog.message_id == opened.id)
        )
    ).scalar_one()
    opened_log.opened_at = opened.created_at + timedelta(minutes=5)
    opened_log.delivered_at = opened.created_at + timedelta(seconds=2)
    await session.flush()

    async def logs(log_filter: dict[str, Any]) -> dict[str, Any]:
        return (await data(http, d.caller, LOGS, {"filter": log_filter}))["communicationLogs"]

    everything = await logs({})
    # Five live first attempts + the resend + the new e-mail; the deleted message's log is out.
    assert everything["totalCount"] == 7
    assert everything["summary"] == {
        "total": 7,
        "delivered": 5,  # DELIVERED, READ (x2), RECEIVED, delivered e-mail
        "opened": 1,
        "read": 2,
        "bounced": 1,
        "failed": 1,
    }
    assert everything["edges"][0]["node"]["uuid"] == str(opened_log.id)

    cases: list[tuple[dict[str, Any], set[str]]] = [
        ({"channel": "EMAIL"}, {str(opened_log.id), _first_log_id(first)}),
        ({"channel": "EMAIL", "status": "BOUNCED"}, {_first_log_id(first)}),
        ({"type": "RECEIPT"}, {_first_log_id(first), str(resend.id)}),
        ({"clientId": str(d.juan.id), "channel": "EMAIL"}, {str(opened_log.id)}),
        ({"campaignId": global_id("Campaign", d.promo.id)}, {_first_log_id(d.messages[1])}),
        (
            {"from": "2026-01-21T08:00:00Z", "to": "2026-01-21T09:00:00Z"},
            {_first_log_id(d.messages[4])},
        ),
        ({"messageId": str(first.id)}, {_first_log_id(first), str(resend.id)}),
        ({"clientId": "garbage"}, set()),
    ]
    for log_filter, expected in cases:
        result = await logs(log_filter)
        assert {edge["node"]["uuid"] for edge in result["edges"]} == expected, log_filter
        assert result["totalCount"] == result["summary"]["total"] == len(expected)
    summary = (await logs({"channel": "EMAIL"}))["summary"]
    assert summary == {
        "total": 2,
        "delivered": 1,
        "opened": 1,
        "read": 0,
        "bounced": 1,
        "failed": 0,
    }

    stranger = await create_caller(session)
    foreign = (await data(http, stranger, LOGS, {"filter": {"clientId": str(d.ana.id)}}))[
        "communicationLogs"
    ]
    assert foreign["edges"] == [] and foreign["summary"]["total"] == 0
    node = await data(
        http,
        stranger,
        "query($id: ID!) { communicationLog(id: $id) { uuid } }",
        {"id": str(resend.id)},
    )
    assert node["communicationLog"] is None


_LOG_IDS: dict[uuid.UUID, str] = {}


def _first_log_id(message: Message) -> str:
    return _LOG_IDS[message.id]


@pytest.fixture(autouse=True)
def _record_first_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remember each message's first attempt as the factory creates it."""
    import tests.factories as factories

    original = factories.create_log

    async def recording(session: AsyncSession, message: Message, **kwargs: Any) -> Any:
        log = await original(session, message, **kwargs)
        _LOG_IDS.setdefault(message.id, str(log.id))
        return log

    monkeypatch.setattr(factories, "create_log", recording)
