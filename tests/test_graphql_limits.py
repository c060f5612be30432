"""Depth, alias and token limits; parse and validation caches."""

from __future__ import annotations

from typing import Any

import httpx
import strawberry
from graphql import get_introspection_query
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.extensions.parser_cache import _get_parse_cache
from strawberry.extensions.validation_cache import _get_validate_cache

from mensajero.schema.limits import DOCUMENT_CACHE_SIZE, schema_extensions
from mensajero.settings import get_settings
from tests.factories import Caller, create_caller


async def post(http: httpx.AsyncClient, caller: Caller, query: str) -> dict[str, Any]:
    response = await http.post("/graphql", json={"query": query}, headers=caller.headers)
    assert response.status_code == 200, response.text
    return response.json()


def codes(body: dict[str, Any]) -> list[str | None]:
    return [(error.get("extensions") or {}).get("code") for error in body.get("errors", [])]


async def test_too_deep_queries_are_rejected_before_execution(
    http: httpx.AsyncClient, session: AsyncSession
) -> None:
    caller = await create_caller(session)
    await session.commit()
    depth = get_settings().graphql_max_depth + 2
    query = "{ " + "viewer { " * depth + "scopes" + " }" * depth + " }"
    body = await post(http, caller, query)
    assert body["data"] is None
    assert "QUERY_TOO_DEEP" in codes(body)
    message = next(e["message"] for e in body["errors"] if "depth" in e["message"])
    assert f"maximum operation depth of {get_settings().graphql_max_depth}" in message


@strawberry.type
class Tree:
    name: str = "node"

    @strawberry.field
    def child(self) -> Tree:
        return Tree()


@strawberry.type
class TreeQuery:
    @strawberry.field
    def tree(self) -> Tree:
        return Tree()


async def test_a_valid_document_over_the_depth_limit_is_rejected() -> None:
    """The same extensions on a recursive schema: valid documents are judged by depth alone."""
    settings = get_settings().model_copy(update={"graphql_max_depth": 3})
    strict = strawberry.Schema(query=TreeQuery, extensions=schema_extensions(settings))
    at_limit = await strict.execute("{ tree { child { child { name } } } }")
    assert at_limit.errors is None
    assert at_limit.data == {"tree": {"child": {"child": {"name": "node"}}}}
    over = await strict.execute("{ tree { child { child { child { name } } } } }")
    assert over.data is None
    assert over.errors is not None
    assert [error.extensions for error in over.errors] == [{"code": "QUERY_TOO_DEEP"}]


async def test_too_many_aliases_are_rejected_and_the_limit_itself_passes(
    http: httpx.AsyncClient, session: AsyncSession
) -> None:
    caller = await create_caller(session)
    await session.commit()
    limit = get_settings().graphql_max_aliases
    at_limit = "{ " + " ".join(f"a{i}: viewer {{ scopes }}" for i in range(limit)) + " }"
    body = await post(http, caller, at_limit)
    assert "errors" not in body, body
    assert len(body["data"]) == limit

    over = "{ " + " ".join(f"a{i}: viewer {{ scopes }}" for i in range(limit + 1)) + " }"
    body = await post(http, caller, over)
    assert body["data"] is None
    assert codes(body) == ["TOO_MANY_ALIASES"]
    assert f"Allowed: {limit}" in body["errors"][0]["message"]


async def test_too_many_tokens_are_rejected_comments_included(
    http: httpx.AsyncClient, session: AsyncSession
) -> None:
    caller = await create_caller(session)
    await session.commit()
    limit = get_settings().graphql_max_tokens
    fields = "{ viewer { " + "scopes " * limit + "} }"
    comments = "\n".join("# padding" for _ in range(limit)) + "\n{ viewer { scopes } }"
    for query in (fields, comments):
        body = await post(http, caller, query)
        assert body["data"] is None
        assert codes(body) == ["TOO_MANY_TOKENS"]
        assert f"more than {limit} tokens" in body["errors"][0]["message"]


async def test_graphiql_introspection_passes_every_limit(
    http: httpx.AsyncClient, session: AsyncSession
) -> None:
    caller = await create_caller(session)
    await session.commit()
    query = get_introspection_query(
        descriptions=True,
        specified_by_url=True,
        directive_is_repeatable=True,
        schema_description=True,
        input_value_deprecation=True,
    )
    body = await post(http, caller, query)
    assert "errors" not in body, body["errors"][:3]
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"


async def test_parsed_and_validated_documents_are_cached(
    http: httpx.AsyncClient, session: AsyncSession
) -> None:
    caller = await create_caller(session)
    await session.commit()
    parse_cache = _get_parse_cache(DOCUMENT_CACHE_SIZE)
    validate_cache = _get_validate_cache(DOCUMENT_CACHE_SIZE)
    query = "query CacheProbe { viewer { scopes member { email } } }"
    first = await post(http, caller, query)
    parse_hits = parse_cache.cache_info().hits
    validate_hits = validate_cache.cache_info().hits
    second = await post(http, caller, query)
    assert first == second
    assert parse_cache.cache_info().hits == parse_hits + 1
    assert validate_cache.cache_info().hits == validate_hits + 1


def test_no_extension_hooks_field_resolution() -> None:
    """STYLE: a per-field ``resolve`` hook would multiply the cost of every field."""
    extensions = [factory() for factory in schema_extensions(get_settings())]
    assert extensions
    for extension in extensions:
        assert not extension._implements_resolve(), type(extension).__name__
