"""No N+1: the statements a page costs do not grow with the page's size."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import Backend
from tests.factories import (
    create_caller,
    create_campaign,
    create_client,
    create_message,
    create_tag,
    tag_client,
)
from tests.resolvers.graphql_helpers import data

PAGE = """
query($first: Int!) {
  messages(first: $first) {
    totalCount
    edges {
      node {
        uuid
        client { name tags { name } }
        campaign { name }
        logs { status timeline { event } }
      }
    }
  }
}"""

NESTED = """
query($first: Int!) {
  clients(first: $first) {
    edges {
      node {
        name
        tags { name clientCount }
        messages(first: 2) { totalCount edges { node { body campaign { name } } } }
        communicationLogs(first: 2) { totalCount edges { node { status message { uuid } } } }
      }
    }
  }
}"""

TAGS = """
query($first: Int!) {
  tags(first: $first) {
    edges { node { name clientCount clients(first: 3) { totalCount edges { node { name } } } } }
  }
}"""


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


def _queries(statements: list[str]) -> list[str]:
    # Savepoints of the test's rolled-back transaction are not the page's work.
    return [s for s in statements if not s.upper().startswith(("SAVEPOINT", "RELEASE"))]


async def test_statements_per_page_do_not_grow_with_its_size(
    http: httpx.AsyncClient, session: AsyncSession, backend: Backend
) -> None:
    caller = await create_caller(session)
    org = caller.organization
    tags = [await create_tag(session, org, name=f"tag {index}") for index in range(4)]
    campaigns = [await create_campaign(session, org) for _ in range(5)]
    clients = []
    for index in range(40):
        client = await create_client(session, org)
        for tag in tags[: index % 4]:
            await tag_client(session, client, tag)
        clients.append(client)
    start = datetime(2026, 2, 1, tzinfo=UTC)
    for index in range(110):
        await create_message(
            session,
            org,
            client=clients[index % 40],
            campaign=campaigns[index % 5] if index % 3 else None,
            status=("DELIVERED", "READ", "FAILED", "SENT")[index % 4],
            created_at=start + timedelta(minutes=index),
        )
    # Authenticate once, so the key's last-used write does not land in one count only.
    await data(http, caller, "{ viewer { scopes } }")

    counts = {}
    for first in (5, 100):
        with count_statements(backend) as statements:
            result = await data(http, caller, PAGE, {"first": first})
        edges = result["messages"]["edges"]
        assert len(edges) == first
        assert all(edge["node"]["client"]["name"] for edge in edges)
        assert any(edge["node"]["campaign"] for edge in edges)
        assert all(edge["node"]["logs"][0]["timeline"] for edge in edges)
        assert any(edge["node"]["client"]["tags"] for edge in edges)
        counts[first] = len(_queries(statements))
    assert counts[5] == counts[100], counts
    # auth, page, total, clients, campaigns, logs, tags, timelines
    assert counts[100] <= 9, counts

    nested = {}
    for first in (3, 40):
        with count_statements(backend) as statements:
            result = await data(http, caller, NESTED, {"first": first})
        nodes = [edge["node"] for edge in result["clients"]["edges"]]
        assert len(nodes) == first
        assert all(node["messages"]["totalCount"] >= 2 for node in nodes)
        assert all(len(node["messages"]["edges"]) == 2 for node in nodes)
        nested[first] = len(_queries(statements))
    assert nested[3] == nested[40], nested

    per_tag = {}
    for first in (1, 4):
        with count_statements(backend) as statements:
            result = await data(http, caller, TAGS, {"first": first})
        assert len(result["tags"]["edges"]) == first
        per_tag[first] = len(_queries(statements))
    assert per_tag[1] == per_tag[4], per_tag
