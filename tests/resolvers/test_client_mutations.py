"""Client and tag mutations over HTTP: results as data, scopes, tenancy, bounded SQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.relay import to_base64

from mensajero.models import Client, ClientTag, Tag
from tests.conftest import Backend
from tests.factories import create_caller, create_client, create_tag, tag_client

CLIENT_FIELDS = "id uuid name email phone phoneE164 country metadata deletedAt"
ERROR_FIELDS = {
    "InvalidInputError": "field",
    "NotFoundError": "ids",
    "ConflictError": "field",
}


def errors(*types: str) -> str:
    """Selections for the error members of a result union (only possible ones may be spread)."""
    specific = " ".join(f"... on {name} {{ {ERROR_FIELDS[name]} }}" for name in types)
    return f"... on UserError {{ code message }} {specific}"


CREATE_CLIENT = f"""
mutation($input: CreateClientInput!) {{
  createClient(input: $input) {{
    __typename
    ... on CreateClientPayload {{ client {{ {CLIENT_FIELDS} }} }}
    {errors("InvalidInputError", "NotFoundError")}
  }}
}}"""
UPDATE_CLIENT = f"""
mutation($input: UpdateClientInput!) {{
  updateClient(input: $input) {{
    __typename
    ... on UpdateClientPayload {{ client {{ {CLIENT_FIELDS} }} }}
    {errors("InvalidInputError", "NotFoundError")}
  }}
}}"""
DELETE_CLIENT = f"""
mutation($id: ID!) {{
  deleteClient(id: $id) {{
    __typename
    ... on DeleteClientPayload {{ deletedClientId client {{ {CLIENT_FIELDS} }} }}
    {errors("NotFoundError")}
  }}
}}"""
CREATE_TAG = f"""
mutation($input: CreateTagInput!) {{
  createTag(input: $input) {{
    __typename
    ... on CreateTagPayload {{ tag {{ id uuid name color }} }}
    {errors("InvalidInputError", "ConflictError")}
  }}
}}"""
UPDATE_TAG = f"""
mutation($input: UpdateTagInput!) {{
  updateTag(input: $input) {{
    __typename
    ... on UpdateTagPayload {{ tag {{ id uuid name color }} }}
    {errors("InvalidInputError", "NotFoundError", "ConflictError")}
  }}
}}"""
DELETE_TAG = f"""
mutation($id: ID!) {{
  deleteTag(id: $id) {{
    __typename
    ... on DeleteTagPayload {{ deletedTagId tag {{ uuid name }} }}
    {errors("NotFoundError")}
  }}
}}"""
TAG_CLIENTS = f"""
mutation($input: TagClientsInput!) {{
  tagClients(input: $input) {{
    __typename
    ... on TagClientsPayload {{ linkedCount clients {{ uuid }} tags {{ uuid }} }}
    {errors("InvalidInputError", "NotFoundError")}
  }}
}}"""
UNTAG_CLIENTS = f"""
mutation($input: TagClientsInput!) {{
  untagClients(input: $input) {{
    __typename
    ... on UntagClientsPayload {{ unlinkedCount clients {{ uuid }} tags {{ uuid }} }}
    {errors("InvalidInputError", "NotFoundError")}
  }}
}}"""


async def gql(
    http: httpx.AsyncClient, query: str, headers: dict[str, str], **variables: Any
) -> dict[str, Any]:
    response = await http.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    (result,) = body["data"].values()
    return result


async def _links(session: AsyncSession, organization_id: uuid.UUID) -> set[tuple[str, str]]:
    rows = await session.execute(
        select(ClientTag.client_id, ClientTag.tag_id).where(
            ClientTag.organization_id == organization_id
        )
    )
    return {(str(row[0]), str(row[1])) for row in rows}


@contextmanager
def count_statements(backend: Backend) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(backend.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(backend.engine.sync_engine, "before_cursor_execute", record)


# --- clients -----------------------------------------------------------------------------


async def test_create_client_normalizes_the_phone_and_tags(
    http: httpx.AsyncClient, session: AsyncSession
) -> None:
    caller = await create_caller(session)
    vip = await create_tag(session, caller.organization, name="VIP")
    debt = await create_tag(session, caller.organization, name="Mora")
    await session.commit()
    result = await gql(
        http,
        CREATE_CLIENT,
        caller.headers,
        input={
            "name": "Juan Pérez",
            "email": "juan@example.com",
            "phone": "300 123 4567",
            "country": "co",
            "metadata": {"ventaId": "v-9"},
            # A Relay global id and a plain UUID are both accepted.
            "tagIds": [to_base64("Tag", vip.id), str(debt.id)],
        },
    )
    assert result["__typename"] == "CreateClientPayload"
    client = result["client"]
    assert client["phone"] == "300 123 4567"
    assert client["phoneE164"] == "+573001234567"
    assert client["country"] == "CO"
    assert client["metadata"] == {"ventaId": "v-9"}
    assert client["id"] == to_base64("Client", client["uuid"])
    links = await _links(session, caller.organization.id)
    assert links == {(client["uuid"], str(vip.id)), (client["uuid"], str(debt.id))}


@pytest.mark.parametrize(
    ("input", "field"),
    [
        ({"name": "Sin país", "phone": "3001234567"}, "phone"),
        ({"phone": "12345", "country": "CO"}, "phone"),
        ({"phone": "+573001234567", "country": "Colombia"}, "country"),
        ({"email": "nope"}, "email"),
        ({"email": "a@example.com", "metadata": [1, 2]}, "metadata"),
    ],
)
async def test_create_client_invalid_input_names_the_field(
    http: httpx.AsyncClient, session: AsyncSession, input: dict[str, Any], field: str
) -> None:
    caller = await create_caller(session)
    await session.commit()
    result = await gql(http, CREATE_CLIENT, caller.headers, input=input)
    assert result["__typename"] == "InvalidInputError"
    assert result["code"] == "INVALID_INPUT"
    assert result["field"] == field
    assert result["message"]
    count = await session.execute(
        select(func.count())
        .select_from(Client)
        .where(Client.organization_id == caller.organization.id)
    )
    assert count.scalar_one() == 0


async def test_create_client_with_unknown_tags_lists_them(
    http: httpx.AsyncClient, session: AsyncSession
) -> None:
    caller = await create_caller(session)
    other = await create_caller(session)
    their_tag = await create_tag(session, other.organization)
    await session.commit()
    missing = str(uuid.uuid4())
    result = await gql(
        http,
        CREATE_CLIENT,
        caller.headers,
        input={"email": "a@example.com", "tagIds": [str(their_tag.id), missing]},
    )
    assert result["__typename"] == "NotFoundError"
    assert result["ids"] == [str(their_tag.id), missing]
    garbage = await gql(
        http,
        CREATE_CLIENT,
        caller.headers,
        input={"email": "a@example.com", "tagIds": ["not-an-id"]},
    )
    assert garbage["__typename"] == "NotFoundError"
    assert garbage["ids"] == ["not-an-id"]


async def test_update_client_omitted_keeps_null_clears(
    http: httpx.AsyncClient, session: AsyncSession
) -> None:
    caller = await create_caller(session)
    client = await create_client(session, caller.organization, name="Ana", metadata_={"a": 1})
    await session.commit()
    result = await gql(
        http,
        UPDATE_CLIENT,
        caller.headers,
        input={"id": to_base64("Client", client.id), "name": "Ana María", "phone": None},
    )
    assert result["__typename"] == "UpdateClientPayload"
    updated = result["client"]
    assert updated["name"] == "Ana María"
    assert updated["phone"] is None and updated["phoneE164"] is None
    assert updated["email"] == client.email
    assert updated["metadata"] == {"a": 1}

    renumbered = await gql(
        http,
        UPDATE_CLIENT,
        caller.headers,
        input={"id": str(client.id), "phone": "+1 415 555 2671"},
    )
    assert renumbered["client"]["phoneE164"] == "+14155552671"

    invalid = await gql(
        http, UPDATE_CLIENT, caller.headers, input={"id": str(client.id), "phone": "12"}
    )
    assert invalid["__typename"] == "InvalidInputError"
    assert invalid["field"] == "phone"
    await session.refresh(client)
    assert client.phone_e164 == "+14155552671"


async def test_delete_client_is_soft_and_answers_not_found_the_second_time(
    http: httpx.AsyncClient, session: AsyncSession
) -> None:
    caller = await create_caller(session)
    client = await create_client(session, caller.organization)
    tag = await create_tag(session, caller.organization)
    await tag_client(session, client, tag)
    await session.commit()
    result = await gql(http, DELETE_CLIENT, caller.headers, id=str(client.id))
    assert result["__typename"] == "DeleteClientPayload"
    assert result["deletedClientId"] == to_base64("Client", client.id)
    assert result["client"]["deletedAt"] is not None
    assert await _links(session, caller.organization.id) == set()
    again = await gql(http, DELETE_CLIENT, caller.headers, id=str(client.id))
    assert again["__typename"] == "NotFoundError"
    assert again["code"] == "NOT_FOUND"
    update = await gql(
        http, UPDATE_CLIENT, caller.headers, input={"id": str(client.id), "name": "x"}
    )
    assert update["__typename"] == "NotFoundError"


async def test_another_organizations_ids_are_not_found_and_nothing_changes(
    http: httpx.AsyncClient, session: AsyncSession
) -> None:
    caller = await create_caller(session)
    other = await create_caller(session)
    mine_client = await create_client(session, caller.organization)
    mine_tag = await create_tag(session, caller.organization)
    their_client = await create_client(session, other.organization, name="Theirs")
    their_tag = await create_tag(session, other.organization, name="Their tag", color="#000000")
    await tag_client(session, their_client, their_tag)
    await session.commit()

    for query, variables in [
        (UPDATE_CLIENT, {"input": {"id": str(their_client.id), "name": "Hacked"}}),
        (DELETE_CLIENT, {"id": to_base64("Client", their_client.id)}),
        (UPDATE_TAG, {"input": {"id": str(their_tag.id), "name": "Hacked"}}),
        (DELETE_TAG, {"id": to_base64("Tag", their_tag.id)}),
    ]:
        result = await gql(http, query, caller.headers, **variables)
        assert result["__typename"] == "NotFoundError", (query, result)
    for query in (TAG_CLIENTS, UNTAG_CLIENTS):
        mixed_clients = await gql(
            http,
            query,
            caller.headers,
            input={
                "clientIds": [str(mine_client.id), str(their_client.id)],
                "tagIds": [str(mine_tag.id)],
            },
        )
        assert mixed_clients["__typename"] == "NotFoundError"
        assert mixed_clients["ids"] == [str(their_client.id)]
        mixed_tags = await gql(
            http,
            query,
            caller.headers,
            input={
                "clientIds": [str(mine_client.id)],
                "tagIds": [str(mine_tag.id), to_base64("Tag", their_tag.id)],
            },
        )
        assert mixed_tags["__typename"] == "NotFoundError"
        assert mixed_tags["ids"] == [to_base64("Tag", their_tag.id)]

    await session.refresh(their_client)
    await session.refresh(their_tag)
    assert their_client.name == "Theirs" and their_client.deleted_at is None
    assert (their_tag.name, their_tag.color) == ("Their tag", "#000000")
    assert await _links(session, caller.organization.id) == set()
    assert await _links(session, other.organization.id) == {
        (str(their_client.id), str(their_tag.id))
    }


async def test_a_client_id_of_the_wrong_type_is_not_found(
    http: httpx.AsyncClient, session: AsyncSession
) -> None:
    caller = await create_caller(session)
    tag = await create_tag(session, caller.organization)
    await session.commit()
    result = await gql(http, DELETE_CLIENT, caller.headers, id=to_base64("Tag", tag.id))
    assert result["__typename"] == "NotFoundError"
    assert await session.get(Tag, tag.id) is not None


# --- tags ----------------------------------------------------------------------------------


async def test_tag_lifecycle(http: httpx.AsyncClient, session: AsyncSession) -> None:
    caller = await create_caller(session)
    client = await create_client(session, caller.organization)
    await session.commit()
    created = await gql(
        http, CREATE_TAG, caller.headers, input={"name": " Clientes VIP ", "color": "#1E90FF"}
    )
    assert created["__typename"] == "CreateTagPayload"
    tag = created["tag"]
    assert (tag["name"], tag["color"]) == ("Clientes VIP", "#1e90ff")

    duplicate = await gql(http, CREATE_TAG, caller.headers, input={"name": "clientes vip"})
    assert duplicate["__typename"] == "ConflictError"
    assert (duplicate["code"], duplicate["field"]) == ("CONFLICT", "name")

    empty = await gql(http, CREATE_TAG, caller.headers, input={"name": "  "})
    assert (empty["__typename"], empty["field"]) == ("InvalidInputError", "name")

    recolored = await gql(http, UPDATE_TAG, caller.headers, input={"id": tag["id"], "color": None})
    assert recolored["tag"] == {**tag, "color": None}

    other = await gql(http, CREATE_TAG, caller.headers, input={"name": "Mora"})
    clash = await gql(
        http, UPDATE_TAG, caller.headers, input={"id": other["tag"]["uuid"], "name": "CLIENTES VIP"}
    )
    assert clash["__typename"] == "ConflictError"

    tagged = await gql(
        http,
        TAG_CLIENTS,
        caller.headers,
        input={"clientIds": [str(client.id)], "tagIds": [tag["id"]]},
    )
    assert tagged["linkedCount"] == 1

    deleted = await gql(http, DELETE_TAG, caller.headers, id=tag["uuid"])
    assert deleted["__typename"] == "DeleteTagPayload"
    assert deleted["deletedTagId"] == tag["id"]
    assert deleted["tag"]["name"] == "Clientes VIP"
    assert await _links(session, caller.organization.id) == set()
    assert await session.get(Client, client.id) is not None
    gone = await gql(http, DELETE_TAG, caller.headers, id=tag["uuid"])
    assert gone["__typename"] == "NotFoundError"


async def test_tag_and_untag_clients(http: httpx.AsyncClient, session: AsyncSession) -> None:
    caller = await create_caller(session)
    clients = [await create_client(session, caller.organization) for _ in range(3)]
    tags = [await create_tag(session, caller.organization) for _ in range(2)]
    await session.commit()
    input = {
        "clientIds": [to_base64("Client", client.id) for client in clients],
        "tagIds": [str(tag.id) for tag in tags],
    }
    tagged = await gql(http, TAG_CLIENTS, caller.headers, input=input)
    assert tagged["__typename"] == "TagClientsPayload"
    assert tagged["linkedCount"] == 6
    assert [c["uuid"] for c in tagged["clients"]] == [str(c.id) for c in clients]
    assert [t["uuid"] for t in tagged["tags"]] == [str(t.id) for t in tags]
    repeated = await gql(http, TAG_CLIENTS, caller.headers, input=input)
    assert repeated["linkedCount"] == 0

    untagged = await gql(
        http,
        UNTAG_CLIENTS,
        caller.headers,
        input={"clientIds": [str(clients[0].id)], "tagIds": [str(tags[0].id)]},
    )
    assert untagged["__typename"] == "UntagClientsPayload"
    assert untagged["unlinkedCount"] == 1
    assert len(await _links(session, caller.organization.id)) == 5

    too_many = await gql(
        http,
        TAG_CLIENTS,
        caller.headers,
        input={"clientIds": [str(uuid.uuid4()) for _ in range(1001)], "tagIds": [str(tags[0].id)]},
    )
    assert (too_many["__typename"], too_many["field"]) == ("InvalidInputError", "clientIds")


async def test_tagging_500_clients_takes_as_many_statements_as_tagging_5(
    http: httpx.AsyncClient, session: AsyncSession, backend: Backend
) -> None:
    caller = await create_caller(session)
    many = [
        Client(organization_id=caller.organization.id, name=f"c{i}", email=f"c{i}@example.com")
        for i in range(500)
    ]
    session.add_all(many)
    few_tag = await create_tag(session, caller.organization)
    many_tag = await create_tag(session, caller.organization)
    await session.flush()
    few = many[:5]
    await session.commit()

    async def tag(clients: list[Client], tag: Tag) -> list[str]:
        with count_statements(backend) as statements:
            result = await gql(
                http,
                TAG_CLIENTS,
                caller.headers,
                input={"clientIds": [str(c.id) for c in clients], "tagIds": [str(tag.id)]},
            )
        assert result["linkedCount"] == len(clients)
        return statements

    # The key's first use records last_used_at; get that out of the way.
    await http.post("/graphql", json={"query": "{ viewer { scopes } }"}, headers=caller.headers)
    small = await tag(few, few_tag)
    large = await tag(many, many_tag)
    assert len(large) == len(small), (small, large)
    assert len(large) <= 12, large
    inserts = [s for s in large if s.lstrip().upper().startswith("INSERT INTO CLIENT_TAGS")]
    assert len(inserts) == 1


# --- authorization -------------------------------------------------------------------------


async def test_a_read_only_key_cannot_write_clients_or_tags(
    http: httpx.AsyncClient, session: AsyncSession
) -> None:
    caller = await create_caller(session, scopes=["read"])
    client = await create_client(session, caller.organization, name="Keep")
    await session.commit()
    for query, variables in [
        (CREATE_CLIENT, {"input": {"email": "a@example.com"}}),
        (UPDATE_CLIENT, {"input": {"id": str(client.id), "name": "x"}}),
        (DELETE_CLIENT, {"id": str(client.id)}),
        (CREATE_TAG, {"input": {"name": "x"}}),
    ]:
        response = await http.post(
            "/graphql", json={"query": query, "variables": variables}, headers=caller.headers
        )
        body = response.json()
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    await session.refresh(client)
    assert client.name == "Keep" and client.deleted_at is None


async def test_a_send_key_can_write_clients(http: httpx.AsyncClient, session: AsyncSession) -> None:
    caller = await create_caller(session, scopes=["send"])
    await session.commit()
    result = await gql(http, CREATE_CLIENT, caller.headers, input={"email": "a@example.com"})
    assert result["__typename"] == "CreateClientPayload"


async def test_without_a_key_mutations_answer_401(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/graphql", json={"query": CREATE_TAG, "variables": {"input": {"name": "x"}}}
    )
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
