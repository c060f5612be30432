"""clients, tags, campaigns and conversations: filters, nested relations and tenancy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.relay import to_base64

from tests.factories import (
    create_caller,
    create_campaign,
    create_client,
    create_conversation,
    create_message,
    create_tag,
    tag_client,
)
from tests.resolvers.graphql_helpers import data, node_uuids

BASE = datetime(2026, 3, 1, tzinfo=UTC)

CLIENTS = """
query($filter: ClientFilterInput, $first: Int, $after: String) {
  clients(filter: $filter, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node { uuid name } }
  }
}"""


async def test_client_filters(http: httpx.AsyncClient, session: AsyncSession) -> None:
    caller = await create_caller(session)
    org = caller.organization
    vip = await create_tag(session, org, name="VIP")
    bogota = await create_tag(session, org, name="Bogotá")
    clients = [
        await create_client(
            session,
            org,
            name="María Gómez",
            email="maria@gmail.com",
            phone="300 111 2233",
            created_at=BASE,
        ),
        await create_client(
            session, org, name="Juan Pérez", email=None, phone="+52 55 1234", created_at=BASE
        ),
        await create_client(
            session,
            org,
            name="Ana Díaz",
            email="ana@hotmail.com",
            phone=None,
            phone_e164=None,
            created_at=BASE + timedelta(hours=1),
        ),
        await create_client(session, org, name="Borrada", deleted_at=BASE),
    ]
    await tag_client(session, clients[0], vip)
    await tag_client(session, clients[0], bogota)
    await tag_client(session, clients[1], vip)
    await tag_client(session, clients[2], bogota)
    await tag_client(session, clients[3], vip)
    ids = [str(client.id) for client in clients]
    newest_first = [ids[2], *sorted(ids[:2], reverse=True)]

    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({}, newest_first),
        ({"search": "MARÍA"}, [ids[0]]),
        ({"search": "hotmail"}, [ids[2]]),
        ({"search": "111 22"}, [ids[0]]),
        ({"search": "%"}, []),
        ({"tagIds": [str(vip.id)]}, sorted(ids[:2], reverse=True)),
        ({"tagIds": [str(vip.id), to_base64("Tag", str(bogota.id))]}, newest_first),
        ({"tagIds": [str(vip.id), str(bogota.id)], "tagMatch": "ALL"}, [ids[0]]),
        ({"tagIds": ["garbage"]}, []),
        ({"hasPhone": True}, sorted(ids[:2], reverse=True)),
        ({"hasPhone": False}, [ids[2]]),
        ({"hasEmail": False}, [ids[1]]),
        ({"hasEmail": True, "tagIds": [str(bogota.id)]}, [ids[2], ids[0]]),
    ]
    for client_filter, expected in cases:
        result = (await data(http, caller, CLIENTS, {"filter": client_filter}))["clients"]
        assert node_uuids(result) == expected, client_filter
        assert result["totalCount"] == len(expected), client_filter

    # Pages of one client each walk the whole list once.
    seen: list[str] = []
    after = None
    while True:
        result = (await data(http, caller, CLIENTS, {"first": 1, "after": after}))["clients"]
        seen.extend(node_uuids(result))
        if not result["pageInfo"]["hasNextPage"]:
            break
        after = result["pageInfo"]["endCursor"]
    assert seen == newest_first

    # A deleted client is not found by id either; another organization sees nothing.
    query = "query($id: ID!) { client(id: $id) { uuid } }"
    assert (await data(http, caller, query, {"id": ids[3]}))["client"] is None
    assert (await data(http, caller, query, {"id": ids[0]}))["client"] == {"uuid": ids[0]}
    stranger = await create_caller(session)
    assert (await data(http, stranger, query, {"id": ids[0]}))["client"] is None
    foreign = await data(http, stranger, CLIENTS, {"filter": {"tagIds": [str(vip.id)]}})
    assert foreign["clients"]["edges"] == [] and foreign["clients"]["totalCount"] == 0


async def test_nested_relations_of_clients_and_tags(
    http: httpx.AsyncClient, session: AsyncSession
) -> None:
    caller = await create_caller(session)
    org = caller.organization
    vip = await create_tag(session, org, name="VIP", color="#eab308")
    nuevo = await create_tag(session, org, name="Nuevo")
    ana = await create_client(session, org, name="Ana", created_at=BASE)
    luis = await create_client(session, org, name="Luis", created_at=BASE + timedelta(hours=1))
    gone = await create_client(session, org, name="Gone", deleted_at=BASE)
    for client in (ana, luis, gone):
        await tag_client(session, client, vip)
    await tag_client(session, ana, nuevo)
    promo = await create_campaign(session, org, name="Promo")
    messages = [
        await create_message(
            session,
            org,
            client=ana,
            campaign=promo if index == 0 else None,
            created_at=BASE + timedelta(minutes=index),
            status="DELIVERED",
        )
        for index in range(5)
    ]
    await create_message(session, org, client=ana, deleted_at=BASE, created_at=BASE)

    query = """
    query($id: ID!, $after: String) {
      client(id: $id) {
        name
        tags { name color }
        messages(first: 2, after: $after) {
          totalCount
          pageInfo { hasNextPage hasPreviousPage endCursor }
          edges { node { uuid campaign { name } client { name } } }
        }
        communicationLogs(last: 1) {
          totalCount
          summary { total delivered failed }
          edges { node { status message { uuid } client { name } timeline { event } } }
        }
      }
    }"""
    result = (await data(http, caller, query, {"id": str(ana.id)}))["client"]
    assert result["name"] == "Ana"
    assert result["tags"] == [{"name": "Nuevo", "color": None}, {"name": "VIP", "color": "#eab308"}]
    page = result["messages"]
    assert page["totalCount"] == 5
    assert node_uuids(page) == [str(messages[4].id), str(messages[3].id)]
    assert page["pageInfo"]["hasNextPage"] is True
    assert page["edges"][0]["node"]["client"] == {"name": "Ana"}
    logs = result["communicationLogs"]
    assert logs["totalCount"] == 5
    assert logs["summary"] == {"total": 5, "delivered": 5, "failed": 0}
    (oldest,) = logs["edges"]
    assert oldest["node"]["message"] == {"uuid": str(messages[0].id)}
    assert [event["event"] for event in oldest["node"]["timeline"]] == [
        "CREATED",
        "QUEUED",
        "SENT",
        "DELIVERED",
    ]
    after = page["pageInfo"]["endCursor"]
    rest = (await data(http, caller, query, {"id": str(ana.id), "after": after}))["client"]
    assert node_uuids(rest["messages"]) == [str(messages[2].id), str(messages[1].id)]
    assert rest["messages"]["pageInfo"]["hasPreviousPage"] is True

    tags_query = """
    query($search: String) {
      tags(search: $search) {
        totalCount
        edges {
          node { uuid name clientCount clients(first: 5) { totalCount edges { node { name } } } }
        }
      }
    }"""
    tags = (await data(http, caller, tags_query, {"search": "vi"}))["tags"]
    assert tags["totalCount"] == 1
    (node,) = [edge["node"] for edge in tags["edges"]]
    assert node["uuid"] == str(vip.id)
    assert node["clientCount"] == 2  # the deleted client is not counted
    assert node["clients"]["totalCount"] == 2
    assert [edge["node"]["name"] for edge in node["clients"]["edges"]] == ["Luis", "Ana"]
    all_tags = (await data(http, caller, tags_query, {"search": None}))["tags"]
    assert [edge["node"]["name"] for edge in all_tags["edges"]] == ["Nuevo", "VIP"]

    stranger = await create_caller(session)
    assert (await data(http, stranger, tags_query, {"search": None}))["tags"]["totalCount"] == 0
    tag_by_id = "query($id: ID!) { tag(id: $id) { name } }"
    assert (await data(http, stranger, tag_by_id, {"id": str(vip.id)}))["tag"] is None
    assert (await data(http, caller, tag_by_id, {"id": str(vip.id)}))["tag"] == {"name": "VIP"}


async def test_campaigns_and_conversations(http: httpx.AsyncClient, session: AsyncSession) -> None:
    caller = await create_caller(session)
    org = caller.organization
    first = await create_campaign(session, org, name="Día de la Madre", created_at=BASE)
    second = await create_campaign(
        session, org, name="Cyber Day", created_at=BASE + timedelta(days=1)
    )
    campaigns_query = """
    query($search: String) {
      campaigns(search: $search) { totalCount edges { node { uuid id name } } }
    }"""
    result = (await data(http, caller, campaigns_query, {"search": None}))["campaigns"]
    assert node_uuids(result) == [str(second.id), str(first.id)]
    assert result["totalCount"] == 2
    result = (await data(http, caller, campaigns_query, {"search": "madre"}))["campaigns"]
    assert node_uuids(result) == [str(first.id)]
    by_id = "query($id: ID!) { campaign(id: $id) { name } }"
    global_id = to_base64("Campaign", str(first.id))
    assert (await data(http, caller, by_id, {"id": global_id}))["campaign"] == {
        "name": "Día de la Madre"
    }

    ana = await create_client(session, org, name="Ana")
    open_one = await create_conversation(
        session, org, ana, category="soporte", created_at=BASE, opened_at=BASE
    )
    resolved = await create_conversation(
        session,
        org,
        ana,
        channel="sms",
        status="resolved",
        resolution_outcome="resuelto",
        created_at=BASE + timedelta(hours=1),
    )
    conversations_query = """
    query($filter: ConversationFilterInput) {
      conversations(filter: $filter) {
        totalCount
        edges { node { uuid status channel category resolutionOutcome client { name } } }
      }
    }"""
    everything = (await data(http, caller, conversations_query, {"filter": None}))["conversations"]
    assert node_uuids(everything) == [str(resolved.id), str(open_one.id)]
    assert everything["edges"][1]["node"]["client"] == {"name": "Ana"}
    assert everything["edges"][0]["node"]["status"] == "RESOLVED"
    for conversation_filter, expected in (
        ({"status": "OPEN"}, [open_one]),
        ({"channel": "SMS"}, [resolved]),
        ({"category": "soporte"}, [open_one]),
        ({"resolutionOutcome": "resuelto"}, [resolved]),
        ({"clientId": str(ana.id)}, [resolved, open_one]),
        ({"clientId": "nope"}, []),
    ):
        result = (await data(http, caller, conversations_query, {"filter": conversation_filter}))[
            "conversations"
        ]
        assert node_uuids(result) == [str(c.id) for c in expected], conversation_filter
        assert result["totalCount"] == len(expected)

    stranger = await create_caller(session)
    assert (await data(http, stranger, by_id, {"id": str(first.id)}))["campaign"] is None
    assert (await data(http, stranger, campaigns_query, {"search": None}))["campaigns"][
        "totalCount"
    ] == 0
    conversation_by_id = "query($id: ID!) { conversation(id: $id) { uuid } }"
    assert (await data(http, stranger, conversation_by_id, {"id": str(open_one.id)}))[
        "conversation"
    ] is None
    assert (await data(http, caller, conversation_by_id, {"id": str(open_one.id)}))[
        "conversation"
    ] == {"uuid": str(open_one.id)}


async def test_node_answers_null_for_a_soft_deleted_client(
    http: httpx.AsyncClient, session: AsyncSession
) -> None:
    caller = await create_caller(session)
    live = await create_client(session, caller.organization, name="Viva")
    gone = await create_client(session, caller.organization, name="Borrada", deleted_at=BASE)
    await session.commit()
    ids = [to_base64("Client", live.id), to_base64("Client", gone.id)]
    answer = await data(
        http,
        caller,
        "query($ids: [ID!]!) { nodes(ids: $ids) { ... on Client { name } } }",
        {"ids": ids},
    )
    assert answer["nodes"] == [{"name": "Viva"}, None]
