"""Posting GraphQL operations in tests."""

from __future__ import annotations

from typing import Any

import httpx

from tests.factories import Caller


async def execute(
    http: httpx.AsyncClient, caller: Caller, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The whole response body (``data`` and ``errors``)."""
    response = await http.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=caller.headers
    )
    assert response.status_code == 200, response.text
    return response.json()


async def data(
    http: httpx.AsyncClient, caller: Caller, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``data`` of an operation that must not fail."""
    body = await execute(http, caller, query, variables)
    assert "errors" not in body, body["errors"]
    return body["data"]


def node_uuids(connection: dict[str, Any]) -> list[str]:
    return [edge["node"]["uuid"] for edge in connection["edges"]]
