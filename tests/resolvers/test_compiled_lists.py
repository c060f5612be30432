"""The compiled list path answers byte for byte what the executor answers.

Every operation runs twice on the same data: with ``graphql_compiled_lists`` off
(strawberry's executor) and on; the two bodies must be identical bytes, and the
compiled path's counter proves which operations it answered (so a silent
fallback cannot pass for a match). Operations it must not compile are checked
to fall back and still answer, errors included.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette
from strawberry.relay import to_base64

from mensajero.models import Client, Message
from mensajero.schema.compiled import COMPILED_OPERATIONS
from tests.factories import (
    Caller,
    create_caller,
    create_campaign,
    create_client,
    create_message,
    create_tag,
    tag_client,
)

BASE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@dataclass
class Dataset:
    caller: Caller
    messages: list[Message]
    clients: list[Client]
    campaign_ids: list[uuid.UUID]
    stranger_client_id: uuid.UUID
    stranger_campaign_id: uuid.UUID
    deleted_client_id: uuid.UUID


async def build_dataset(session: AsyncSession) -> Dataset:
    caller = await create_caller(session, timezone="America/Bogota")
    org = caller.organization
    ana = await create_client(
        session, org, name="Ana López", metadata_={"vip": True, "nota": "ñandú", "n": [1, 2.5]}
    )
    juan = await create_client(session, org, name="Juan", email=None, phone=None, country=None)
    gone = await create_client(session, org, name="Borrada", deleted_at=BASE)
    promo = await create_campaign(session, org, name="Promo “VIP”", description="línea 1\nlínea 2")
    other = await create_campaign(session, org, name="Otra")
    specs: list[dict[str, Any]] = [
        {"client": ana, "status": "DELIVERED", "sent_at": BASE + timedelta(microseconds=250)},
        {"client": juan, "campaign": promo, "channel": "whatsapp", "status": "READ"},
        {
            "client": ana,
            "channel": "email",
            "content_type": "HTML",
            "body": "<p>Recibo ✓</p>",
            "subject": "Recibo",
            "html": "<p>Recibo ✓</p>",
            "template_id": "receipt-v2",
            "communication_type": "receipt",
            "status": "BOUNCED",
            "error_message": "mailbox full",
        },
        {"client": None, "campaign": promo, "status": "FAILED", "provider": None},
        {"client": gone, "campaign": other, "status": "SENT", "sent_at": BASE},
        {
            "client": None,
            "direction": "inbound",
            "status": "RECEIVED",
            "body": "Sí, confirmo",
            "country_code": None,
            "metadata_": {"sessionId": "s-1", "deep": {"a": [None, True, 1.25e-7]}},
        },
        {"client": juan, "status": "QUEUED", "scheduled_at": BASE + timedelta(days=2)},
        {"client": ana, "campaign": other, "status": "DELIVERED", "queue_id": "q-7"},
        {"client": juan, "status": "DELIVERED", "segments": 3, "cost": 150},
        {"client": ana, "status": "CANCELED", "deleted_at": BASE + timedelta(hours=1)},
        {"client": ana, "status": "SENDING", "queue_id": "q-7"},
        {"client": None, "status": "DELIVERED", "body": "50% off_now\\"},
    ]
    messages = []
    for index, spec in enumerate(specs):
        client = spec.pop("client")
        campaign = spec.pop("campaign", None)
        created = BASE + timedelta(minutes=7 * index, microseconds=index * 1001 if index % 3 else 0)
        messages.append(
            await create_message(
                session,
                org,
                client=client,
                campaign=campaign,
                log=False,
                created_at=created,
                **spec,
            )
        )
    # Another organization's rows: never listed, and their ids filter to nothing.
    stranger = await create_caller(session)
    their_client = await create_client(session, stranger.organization)
    their_campaign = await create_campaign(session, stranger.organization)
    for index in range(2):
        await create_message(
            session,
            stranger.organization,
            client=their_client,
            campaign=their_campaign,
            status="DELIVERED",
            log=False,
            created_at=BASE + timedelta(minutes=3 + index),
        )
    return Dataset(
        caller,
        messages,
        [ana, juan, gone],
        [promo.id, other.id],
        their_client.id,
        their_campaign.id,
        gone.id,
    )


@pytest.fixture
async def dataset(session: AsyncSession) -> Dataset:
    return await build_dataset(session)


def _set_compiled(app: Starlette, on: bool) -> None:
    app.state.settings = app.state.settings.model_copy(update={"graphql_compiled_lists": on})


async def _post(
    http: httpx.AsyncClient, caller: Caller, query: str, variables: dict[str, Any] | None
) -> httpx.Response:
    body: dict[str, Any] = {"query": query}
    if variables is not None:
        body["variables"] = variables
    return await http.post("/graphql", json=body, headers=caller.headers)


def _compiled_count(path: str) -> float:
    return COMPILED_OPERATIONS.labels(path)._value.get()  # type: ignore[no-any-return]


async def compare(
    app: Starlette,
    http: httpx.AsyncClient,
    caller: Caller,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    compiled_expected: bool = True,
    endpoint_expected: bool = True,
) -> dict[str, Any]:
    """Run ``query`` through the executor and the compiled path; the bodies must be equal.

    The compiled path runs twice: the first request of a text goes through strawberry's
    parsing and validation to ``on_execute``; once validated, the HTTP endpoint answers it
    directly. Both answers must be the executor's, headers included.
    """
    _set_compiled(app, False)
    before = {path: _compiled_count(path) for path in ("execute", "endpoint")}
    expected = await _post(http, caller, query, variables)
    assert all(_compiled_count(path) == count for path, count in before.items())
    _set_compiled(app, True)
    for _ in range(2):
        actual = await _post(http, caller, query, variables)
        assert actual.status_code == expected.status_code
        assert dict(actual.headers) == dict(expected.headers)
        assert actual.content == expected.content, (
            f"\nquery: {query}\nvariables: {variables}\n"
            f"executor: {expected.content.decode()}\ncompiled: {actual.content.decode()}"
        )
    ran = {path: _compiled_count(path) - count for path, count in before.items()}
    if compiled_expected:
        # At most one request through the pipeline (none if an earlier test validated
        # the text), the other(s) from the endpoint.
        assert ran["execute"] + ran["endpoint"] == 2, (ran, query)
        assert (ran["endpoint"] >= 1) == endpoint_expected, (ran, query)
    else:
        assert ran == {"execute": 0, "endpoint": 0}, (ran, query)
    return expected.json()  # type: ignore[no-any-return]


MESSAGE_FIELDS = (
    "id uuid body subject html templateId contentType channel type direction status recipient "
    "countryCode provider queueId metadata segments cost errorMessage scheduledAt sentAt "
    "createdAt updatedAt"
)
CLIENT_FIELDS = (
    "id uuid name email phone phoneE164 country metadata createdAt updatedAt deletedAt __typename"
)
CAMPAIGN_FIELDS = "id uuid name description createdAt updatedAt __typename"

EVERYTHING = f"""
query Everything($filter: MessageFilterInput, $first: Int, $after: String, $last: Int,
                 $before: String) {{
  __typename
  messages(filter: $filter, first: $first, after: $after, last: $last, before: $before) {{
    __typename
    totalCount
    pageInfo {{ __typename hasNextPage hasPreviousPage startCursor endCursor }}
    edges {{
      __typename
      cursor
      node {{
        __typename {MESSAGE_FIELDS}
        client {{ {CLIENT_FIELDS} }}
        campaign {{ {CAMPAIGN_FIELDS} }}
      }}
    }}
  }}
}}"""


async def test_every_field_and_relation(
    app: Starlette, http: httpx.AsyncClient, dataset: Dataset
) -> None:
    body = await compare(app, http, dataset.caller, EVERYTHING, {"first": 100})
    connection = body["data"]["messages"]
    # 11 live messages (one is soft-deleted), none of the stranger's.
    assert connection["totalCount"] == 11
    assert len(connection["edges"]) == 11
    nodes = [edge["node"] for edge in connection["edges"]]
    assert nodes[0]["id"] == to_base64("Message", nodes[0]["uuid"])
    assert any(node["client"] is None for node in nodes)
    assert any(node["campaign"] is None for node in nodes)
    # A soft-deleted client is still shown on its messages.
    assert any(
        node["client"] and node["client"]["uuid"] == str(dataset.deleted_client_id)
        for node in nodes
    )


def _filters(d: Dataset) -> list[dict[str, Any]]:
    ana, juan, _ = d.clients
    return [
        {"status": "DELIVERED"},
        {"status": ["DELIVERED", "READ"]},
        {"channel": "EMAIL"},
        {"messageType": ["SMS", "WHATSAPP"]},
        {"type": "RECEIPT"},
        {"direction": "INBOUND"},
        {"contentType": "HTML"},
        {"content": "recibo"},
        {"content": "50% off_"},
        {"recipient": d.messages[0].recipient},
        {"countryCode": "+57"},
        {"providerId": "TWILIO"},
        {"queueId": "q-7"},
        {"campaignId": [str(d.campaign_ids[0])]},
        {"campaignId": [to_base64("Campaign", str(d.campaign_ids[1]))]},
        {"clientId": [str(ana.id), to_base64("Client", str(juan.id))]},
        {"contactId": [str(juan.id)], "clientId": [str(ana.id)]},
        {"clientId": ["not-an-id"]},
        {"clientId": [str(d.stranger_client_id)]},
        {"campaignId": [str(d.stranger_campaign_id)]},
        {"sentAt": (BASE + timedelta(microseconds=900)).isoformat()},
        {"startDate": "2026-03-02", "endDate": "2026-03-02"},
        {"startDate": "2026-03-03"},
        {"createdAfter": (BASE + timedelta(minutes=20)).isoformat()},
        {
            "createdAfter": BASE.isoformat(),
            "createdBefore": (BASE + timedelta(hours=1)).isoformat(),
        },
        {"status": "DELIVERED", "channel": "SMS", "direction": "OUTBOUND"},
    ]


async def test_every_filter(app: Starlette, http: httpx.AsyncClient, dataset: Dataset) -> None:
    for message_filter in _filters(dataset):
        for first in (3, 100):
            await compare(
                app, http, dataset.caller, EVERYTHING, {"filter": message_filter, "first": first}
            )


async def test_another_organizations_ids_answer_empty(
    app: Starlette, http: httpx.AsyncClient, dataset: Dataset
) -> None:
    body = await compare(
        app,
        http,
        dataset.caller,
        EVERYTHING,
        {"filter": {"clientId": [str(dataset.stranger_client_id)]}, "first": 10},
    )
    assert body["data"]["messages"]["edges"] == []
    assert body["data"]["messages"]["totalCount"] == 0


async def test_paging_forward_and_backward_with_cursors(
    app: Starlette, http: httpx.AsyncClient, dataset: Dataset
) -> None:
    for message_filter in ({}, {"status": "DELIVERED"}, {"content": "e"}):
        after = None
        seen: list[str] = []
        while True:
            variables = {"filter": message_filter, "first": 2, "after": after}
            body = await compare(app, http, dataset.caller, EVERYTHING, variables)
            connection = body["data"]["messages"]
            seen += [edge["node"]["uuid"] for edge in connection["edges"]]
            if not connection["pageInfo"]["hasNextPage"]:
                break
            after = connection["pageInfo"]["endCursor"]
        # The page after the last one: empty, with its total.
        await compare(
            app,
            http,
            dataset.caller,
            EVERYTHING,
            {"filter": message_filter, "first": 2, "after": after},
        )
        before = None
        back: list[str] = []
        while True:
            variables = {"filter": message_filter, "last": 3, "before": before}
            body = await compare(app, http, dataset.caller, EVERYTHING, variables)
            connection = body["data"]["messages"]
            back = [edge["node"]["uuid"] for edge in connection["edges"]] + back
            if not connection["pageInfo"]["hasPreviousPage"]:
                break
            before = connection["pageInfo"]["startCursor"]
        assert back == seen
    # Both cursors at once, first/last of zero, a cursor of a soft-deleted row.
    deleted = dataset.messages[9]
    from mensajero.services.listing import Cursor

    deleted_cursor = Cursor(deleted.created_at, deleted.id).encode()
    middle = Cursor(dataset.messages[2].created_at, dataset.messages[2].id).encode()
    for variables in (
        {"first": 0},
        {"last": 0},
        {"first": 5, "after": deleted_cursor},
        {"last": 5, "before": deleted_cursor},
        {"first": 5, "after": deleted_cursor, "before": middle},
        {"last": 1, "after": middle, "before": deleted_cursor},
        {},
    ):
        await compare(app, http, dataset.caller, EVERYTHING, variables)


SHAPES = [
    # Aliases, the same field twice, fragments (named and inline, nested), __typename.
    """
    query {
      a: messages(first: 3) { edges { node { uuid } } }
      b: messages(first: 3, filter: {status: DELIVERED}) {
        t: totalCount total: totalCount
        info: pageInfo { end: endCursor hasNextPage }
        pageInfo { startCursor }
        e: edges { c: cursor n: node { s: status status ...M } }
        edges { node { client { name } } }
      }
      q: __typename
    }
    fragment M on Message { body ... on Message { cost client { ...C } } }
    fragment C on Client { uuid ... { name } }
    """,
    # Fragments on the connection and on Query, and one on the Node interface.
    """
    query { ...Root }
    fragment Root on Query { messages(last: 4) { ...Conn } }
    fragment Conn on MessageConnection { totalCount edges { node { ... on Node { id } uuid } } }
    """,
    # A field merged from two places with different subfields.
    """
    { messages(first: 4) {
        edges { node { client { name } } }
        edges { node { client { uuid } campaign { name } } } } }
    """,
    # Nothing of the page but its total, or its pageInfo.
    "{ messages(filter: {status: DELIVERED}) { totalCount } }",
    "{ messages(first: 2) { pageInfo { hasNextPage endCursor } } }",
    "{ messages { edges { cursor } } }",
    # Literal arguments of every kind.
    """{ messages(first: 5, filter: {status: [DELIVERED, READ], channel: SMS, type: MANUAL,
         startDate: "2026-03-01", createdBefore: "2026-03-02T10:00:00+00:00"}) {
         totalCount edges { node { uuid status } } } }""",
]


async def test_shapes(app: Starlette, http: httpx.AsyncClient, dataset: Dataset) -> None:
    for query in SHAPES:
        await compare(app, http, dataset.caller, query)
    # Two operations and no operation name: strawberry runs the first; the endpoint
    # leaves such requests to strawberry (which operation is strawberry's choice).
    await compare(
        app,
        http,
        dataset.caller,
        "query A { messages { totalCount } } query B { viewer { scopes } }",
        endpoint_expected=False,
    )


DIRECTIVES = """
query($withTotal: Boolean!, $skipClient: Boolean!, $n: Boolean = true) {
  messages(first: 4) {
    totalCount @include(if: $withTotal)
    edges {
      cursor @skip(if: $n)
      node {
        uuid
        client @skip(if: $skipClient) { name }
        ... @include(if: $skipClient) { campaign { name } }
        ...F @skip(if: false)
      }
    }
  }
}
fragment F on Message { body @include(if: $n) }
"""


async def test_include_and_skip(app: Starlette, http: httpx.AsyncClient, dataset: Dataset) -> None:
    for with_total in (True, False):
        for skip_client in (True, False):
            for n in (None, True, False):
                variables: dict[str, Any] = {"withTotal": with_total, "skipClient": skip_client}
                if n is not None:
                    variables["n"] = n
                await compare(app, http, dataset.caller, DIRECTIVES, variables)


FALLBACKS = [
    # Lists and resolvers the compiled path does not know.
    "{ messages(first: 3) { edges { node { uuid logs { status } } } } }",
    "{ messages(first: 3) { edges { node { client { name tags { name } } } } } }",
    # Other root fields next to messages.
    "{ messages(first: 2) { totalCount } viewer { scopes } }",
    "{ clients(first: 2) { totalCount edges { node { name tags { name } } } } }",
    "{ clients(first: 2) { edges { node { messages(first: 1) { totalCount } } } } }",
    # Introspection, unknown (or other) directives, a mutation.
    "{ __schema { queryType { name } } }",
    'mutation { createTag(input: {name: "x"}) { tag { name } } }',
]


async def test_unsupported_operations_fall_back(
    app: Starlette, http: httpx.AsyncClient, dataset: Dataset
) -> None:
    for query in FALLBACKS:
        await compare(app, http, dataset.caller, query, compiled_expected=False)


ERRORS: list[tuple[str, dict[str, Any] | None]] = [
    (EVERYTHING, {"first": 101}),
    (EVERYTHING, {"last": 101}),
    (EVERYTHING, {"first": -1}),
    (EVERYTHING, {"first": 2, "last": 2}),
    (EVERYTHING, {"after": "not a cursor"}),
    (EVERYTHING, {"before": "bm9wZQ"}),
    (EVERYTHING, {"filter": {"status": "NOT_A_STATUS"}}),
    (EVERYTHING, {"filter": {"startDate": "2026-03-05", "endDate": "2026-03-01"}}),
    (EVERYTHING, {"filter": {"sentAt": "yesterday"}}),
    (EVERYTHING, {"first": "ten"}),
    (DIRECTIVES, {"withTotal": True}),
    (DIRECTIVES, {"withTotal": "yes", "skipClient": False}),
    ("{ messages(first: 200) { totalCount } }", None),
    ('{ messages(after: "x") { totalCount } }', None),
    ("{ messages(first: 2) { nope } }", None),
    ("{ messages(first: 2) { edges { node { uuid @deprecated } } } }", None),
]


async def test_errors_answer_exactly_as_before(
    app: Starlette, http: httpx.AsyncClient, dataset: Dataset
) -> None:
    for query, variables in ERRORS:
        body = await compare(app, http, dataset.caller, query, variables, compiled_expected=False)
        assert body.get("errors"), (query, variables)


async def test_operation_name_picks_the_operation(
    app: Starlette, http: httpx.AsyncClient, dataset: Dataset
) -> None:
    query = "query A { messages(first: 1) { totalCount } } query B { viewer { scopes } }"
    for name, compiled_expected in (("A", True), ("B", False)):
        _set_compiled(app, False)
        expected = await http.post(
            "/graphql",
            json={"query": query, "operationName": name},
            headers=dataset.caller.headers,
        )
        _set_compiled(app, True)
        before = _compiled_count("execute") + _compiled_count("endpoint")
        for _ in range(2):
            actual = await http.post(
                "/graphql",
                json={"query": query, "operationName": name},
                headers=dataset.caller.headers,
            )
            assert actual.content == expected.content
        ran = _compiled_count("execute") + _compiled_count("endpoint") - before
        assert ran == 2 * int(compiled_expected)


# --- generated selections ---------------------------------------------------------------

_NODE_FIELDS = [*MESSAGE_FIELDS.split(), "__typename"]
_CLIENT = CLIENT_FIELDS.split()
_CAMPAIGN = CAMPAIGN_FIELDS.split()


class _Generator:
    """Random selections over the fields the compiled path supports: aliases, repeated
    fields, inline fragments and fragment spreads, @include/@skip on variables."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.fragments: list[str] = []
        self.aliases = 0

    def name(self, field: str) -> str:
        if self.random.random() < 0.2:
            self.aliases += 1
            return f"a{self.aliases}: {field}"
        return field

    def directive(self) -> str:
        roll = self.random.random()
        if roll < 0.1:
            return " @include(if: $yes)"
        if roll < 0.2:
            return " @skip(if: $yes)"
        if roll < 0.25:
            return " @include(if: false)"
        return ""

    def wrap(self, type_name: str, selection: str) -> str:
        roll = self.random.random()
        if roll < 0.15:
            return f"... on {type_name}{self.directive()} {{ {selection} }}"
        if roll < 0.25:
            name = f"F{len(self.fragments)}"
            self.fragments.append(f"fragment {name} on {type_name} {{ {selection} }}")
            return f"...{name}"
        return selection

    def leaves(self, type_name: str, fields: list[str]) -> str:
        chosen = self.random.sample(fields, self.random.randint(1, min(6, len(fields))))
        if self.random.random() < 0.2:
            chosen.append(chosen[0])  # the same field twice merges
        return " ".join(
            self.wrap(type_name, self.name(field) + self.directive()) for field in chosen
        )

    def node(self) -> str:
        parts = [self.leaves("Message", _NODE_FIELDS)]
        if self.random.random() < 0.6:
            client = self.leaves("Client", _CLIENT)
            parts.append(
                self.wrap("Message", f"{self.name('client')}{self.directive()} {{ {client} }}")
            )
        if self.random.random() < 0.5:
            campaign = self.leaves("Campaign", _CAMPAIGN)
            parts.append(
                self.wrap("Message", f"{self.name('campaign')}{self.directive()} {{ {campaign} }}")
            )
        self.random.shuffle(parts)
        return " ".join(parts)

    def connection(self) -> str:
        parts = []
        if self.random.random() < 0.5:
            parts.append(self.name("totalCount") + self.directive())
        if self.random.random() < 0.5:
            info = self.leaves(
                "PageInfo",
                ["hasNextPage", "hasPreviousPage", "startCursor", "endCursor", "__typename"],
            )
            parts.append(f"{self.name('pageInfo')} {{ {info} }}")
        edge = []
        if self.random.random() < 0.5:
            edge.append(self.name("cursor") + self.directive())
        if self.random.random() < 0.3:
            edge.append("__typename")
        edge.append(f"{self.name('node')} {{ {self.node()} }}")
        parts.append(f"{self.name('edges')} {{ {' '.join(edge)} }}")
        if self.random.random() < 0.2:
            parts.append("__typename")
        self.random.shuffle(parts)
        return " ".join(self.wrap("MessageConnection", part) for part in parts)

    def operation(self) -> tuple[str, dict[str, Any]]:
        roots = []
        for index in range(self.random.randint(1, 2)):
            arguments = self.random.choice(
                [
                    "first: $first",
                    "last: $first",
                    "first: $first, filter: $filter",
                    "filter: $filter",
                    "first: 2, after: $after",
                ]
            )
            roots.append(f"r{index}: messages({arguments}) {{ {self.connection()} }}")
        if self.random.random() < 0.3:
            roots.append("__typename")
        body = f"{{ {' '.join(roots)} }}\n" + "\n".join(self.fragments)
        declared = {
            "first": "Int",
            "filter": "MessageFilterInput",
            "after": "String",
            "yes": "Boolean!",
        }
        # Only the variables used: an unused one fails validation.
        used = [f"${name}: {type_}" for name, type_ in declared.items() if f"${name}" in body]
        query = f"query({', '.join(used)}) {body}" if used else f"query {body}"
        values = {
            "first": self.random.choice([1, 3, 20]),
            "filter": self.random.choice([None, {"status": "DELIVERED"}, {"content": "a"}]),
            "after": None,
            "yes": self.random.random() < 0.5,
        }
        return query, {name: value for name, value in values.items() if f"${name}" in body}


async def test_generated_selections(
    app: Starlette, http: httpx.AsyncClient, dataset: Dataset
) -> None:
    middle = dataset.messages[5]
    from mensajero.services.listing import Cursor

    cursor = Cursor(middle.created_at, middle.id).encode()
    for seed in range(60):
        query, variables = _Generator(seed).operation()
        if "after" in variables:
            variables["after"] = cursor if seed % 2 else None
        await compare(app, http, dataset.caller, query, variables)


async def test_a_validated_operation_still_needs_a_valid_key(
    app: Starlette, http: httpx.AsyncClient, dataset: Dataset
) -> None:
    await compare(app, http, dataset.caller, EVERYTHING, {"first": 2})
    response = await http.post(
        "/graphql",
        json={"query": EVERYTHING, "variables": {"first": 2}},
        headers={"Authorization": "Bearer not-a-key"},
    )
    assert response.status_code == 401


CLIENTS = f"""
query($filter: ClientFilterInput, $first: Int, $after: String, $last: Int, $before: String) {{
  __typename
  clients(filter: $filter, first: $first, after: $after, last: $last, before: $before) {{
    __typename totalCount
    pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor __typename }}
    edges {{ __typename cursor node {{ {CLIENT_FIELDS} }} }}
  }}
}}"""
# Both connections in one operation.
BOTH = """
{ clients(first: 4) { totalCount edges { node { name } } }
  m: messages(first: 2) { totalCount edges { node { uuid client { name } } } } }"""


async def test_clients(
    app: Starlette, http: httpx.AsyncClient, session: AsyncSession, dataset: Dataset
) -> None:
    org = dataset.caller.organization
    ana, juan, _ = dataset.clients
    vip = await create_tag(session, org, name="VIP")
    late = await create_tag(session, org, name="Moroso")
    await tag_client(session, ana, vip)
    await tag_client(session, ana, late)
    await tag_client(session, juan, vip)
    for index in range(5):
        await create_client(
            session, org, name=f"Cliente extra {index}", phone=None if index % 2 else "300 1"
        )
    their_tag = await create_tag(session, (await create_caller(session)).organization)
    for client_filter in (
        None,
        {"search": "ana"},
        {"search": "%"},
        {"tagIds": [str(vip.id)]},
        {"tagIds": [to_base64("Tag", str(vip.id)), str(late.id)], "tagMatch": "ALL"},
        {"tagIds": [str(vip.id), str(late.id)], "tagMatch": "ANY"},
        {"tagIds": [str(their_tag.id)]},
        {"tagIds": ["nope"]},
        {"hasPhone": True},
        {"hasEmail": False},
    ):
        after = None
        while True:
            variables = {"filter": client_filter, "first": 3, "after": after}
            body = await compare(app, http, dataset.caller, CLIENTS, variables)
            connection = body["data"]["clients"]
            if not connection["pageInfo"]["hasNextPage"]:
                break
            after = connection["pageInfo"]["endCursor"]
        await compare(app, http, dataset.caller, CLIENTS, {"filter": client_filter, "last": 2})
    # Soft-deleted clients are not listed.
    body = await compare(app, http, dataset.caller, CLIENTS, {"first": 100})
    listed = [edge["node"]["uuid"] for edge in body["data"]["clients"]["edges"]]
    assert str(dataset.deleted_client_id) not in listed
    assert body["data"]["clients"]["totalCount"] == len(listed) == 7
    await compare(app, http, dataset.caller, BOTH)
    # (Errors in an operation of one root field: graphql-core cancels the siblings of a
    # failed non-null field, which mid-statement spoils the test's shared connection.)
    for variables in ({"first": 101}, {"after": "bad"}, {"filter": {"tagMatch": "SOME"}}):
        await compare(app, http, dataset.caller, CLIENTS, variables, compiled_expected=False)
