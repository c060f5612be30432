"""The HTTP surface of the foundation: GraphQL viewer and auth, health, readiness, metrics."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import httpx
import pytest
from graphql import GraphQLError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette
from strawberry.relay import to_base64

from mensajero.models import Client
from mensajero.repositories.base import OrganizationScopedRepository
from mensajero.schema.schema import schema
from tests.factories import create_caller, create_client

VIEWER = "{ viewer { organization { id uuid name creditBalance } member { id email } scopes } }"


class ClientRepository(OrganizationScopedRepository[Client]):
    model = Client


async def graphql(
    http: httpx.AsyncClient, query: str, headers: dict[str, str], **variables: object
) -> httpx.Response:
    return await http.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )


async def test_viewer_answers_with_a_key(http: httpx.AsyncClient, session: AsyncSession) -> None:
    caller = await create_caller(session, credit_balance=250, name="Clínica Andes")
    await session.commit()
    response = await graphql(http, VIEWER, caller.headers)
    assert response.status_code == 200, response.text
    viewer = response.json()["data"]["viewer"]
    assert viewer["organization"]["name"] == "Clínica Andes"
    assert viewer["organization"]["creditBalance"] == 250
    assert viewer["organization"]["uuid"] == str(caller.organization.id)
    assert viewer["organization"]["id"] == to_base64("Organization", caller.organization.id)
    assert viewer["member"]["email"] == caller.member.email
    assert viewer["scopes"] == ["admin", "read", "send"]


@pytest.mark.parametrize("style", ["bearer", "x-api-key", "api-key"])
async def test_every_header_style_authenticates(
    http: httpx.AsyncClient, session: AsyncSession, style: str
) -> None:
    caller = await create_caller(session)
    await session.commit()
    headers = {
        "bearer": {"Authorization": f"Bearer {caller.key}"},
        "x-api-key": {"X-Api-Key": caller.key},
        "api-key": {"api-key": caller.key},
    }[style]
    response = await graphql(http, VIEWER, headers)
    assert response.status_code == 200
    assert response.json()["data"]["viewer"]["member"]["email"] == caller.member.email


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer mk_live_000000000000.nope"}])
async def test_without_a_valid_key_graphql_answers_401(
    http: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await graphql(http, VIEWER, headers)
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "data" not in response.json()


async def test_a_revoked_key_answers_401(http: httpx.AsyncClient, session: AsyncSession) -> None:
    caller = await create_caller(session)
    await session.commit()
    revoke = await graphql(
        http,
        "mutation($id: ID!) { revokeApiKey(id: $id) { __typename "
        "... on RevokeApiKeyPayload { apiKey { revokedAt } } } }",
        caller.headers,
        id=str(caller.api_key.id),
    )
    assert revoke.json()["data"]["revokeApiKey"]["apiKey"]["revokedAt"] is not None
    assert (await graphql(http, VIEWER, caller.headers)).status_code == 401


async def test_a_key_without_admin_scope_cannot_manage_keys(
    http: httpx.AsyncClient, session: AsyncSession
) -> None:
    caller = await create_caller(session, scopes=["read", "send"])
    await session.commit()
    response = await graphql(
        http, 'mutation { createApiKey(name: "x") { __typename } }', caller.headers
    )
    body = response.json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_create_api_key_returns_a_working_key_once(
    http: httpx.AsyncClient, session: AsyncSession
) -> None:
    caller = await create_caller(session)
    await session.commit()
    response = await graphql(
        http,
        'mutation { createApiKey(name: "ci", scopes: ["read"]) { __typename '
        "... on CreateApiKeyPayload { plaintextKey apiKey { scopes prefix } } } }",
        caller.headers,
    )
    payload = response.json()["data"]["createApiKey"]
    assert payload["__typename"] == "CreateApiKeyPayload"
    assert payload["apiKey"]["scopes"] == ["read"]
    assert payload["plaintextKey"].startswith(f"mk_live_{payload['apiKey']['prefix']}.")
    new_key_viewer = await graphql(http, VIEWER, {"X-Api-Key": payload["plaintextKey"]})
    assert new_key_viewer.json()["data"]["viewer"]["scopes"] == ["read"]
    bad_scope = await graphql(
        http,
        'mutation { createApiKey(name: "x", scopes: ["root"]) { __typename '
        "... on InvalidInputError { code field } } }",
        caller.headers,
    )
    assert bad_scope.json()["data"]["createApiKey"] == {
        "__typename": "InvalidInputError",
        "code": "INVALID_INPUT",
        "field": "scopes",
    }


async def test_accept_terms_lets_a_newcomer_accept_the_current_version(
    http: httpx.AsyncClient, session: AsyncSession
) -> None:
    caller = await create_caller(session, terms_accepted=False)
    await session.commit()
    query = (
        "mutation($v: String!) { acceptTerms(version: $v) { __typename "
        "... on AcceptTermsPayload { member { hasAcceptedCurrentTerms } } "
        "... on InvalidInputError { code field } } }"
    )
    wrong = await graphql(http, query, caller.headers, v="1999-01")
    assert wrong.json()["data"]["acceptTerms"]["code"] == "INVALID_INPUT"
    right = await graphql(http, query, caller.headers, v=caller.organization.terms_version)
    assert right.json()["data"]["acceptTerms"]["member"]["hasAcceptedCurrentTerms"] is True


async def test_one_organization_cannot_read_another_organizations_rows(
    http: httpx.AsyncClient, session: AsyncSession
) -> None:
    alice = await create_caller(session)
    bob = await create_caller(session)
    alice_client = await create_client(session, alice.organization)
    await session.commit()

    # Through the one repository base every query uses.
    assert await ClientRepository(session, alice.organization.id).get(alice_client.id) is not None
    assert await ClientRepository(session, bob.organization.id).get(alice_client.id) is None
    assert await ClientRepository(session, bob.organization.id).get_many([alice_client.id]) == {}

    # Through GraphQL: another organization's global ids answer null.
    query = "query($ids: [ID!]!) { nodes(ids: $ids) { id } }"
    ids = [
        to_base64("Member", alice.member.id),
        to_base64("Organization", alice.organization.id),
        to_base64("ApiKey", alice.api_key.id),
    ]
    as_bob = await graphql(http, query, bob.headers, ids=ids)
    assert as_bob.json()["data"]["nodes"] == [None, None, None]
    as_alice = await graphql(http, query, alice.headers, ids=ids)
    assert [node["id"] for node in as_alice.json()["data"]["nodes"]] == ids
    # Nor can Bob revoke Alice's key.
    revoke = await graphql(
        http,
        "mutation($id: ID!) { revokeApiKey(id: $id) { __typename } }",
        bob.headers,
        id=str(alice.api_key.id),
    )
    assert revoke.json()["data"]["revokeApiKey"]["__typename"] == "NotFoundError"


async def test_health_readiness_and_metrics(http: httpx.AsyncClient) -> None:
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    ready = await http.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["database"] == "ok"
    assert ready.json()["redis"] == "ok"
    metrics = await http.get("/metrics")
    assert metrics.status_code == 200
    assert 'mensajero_http_requests_total{method="GET",route="/readyz",status="200"}' in (
        metrics.text
    )


async def test_readiness_fails_when_redis_is_down(http: httpx.AsyncClient, app: Starlette) -> None:
    app.state.redis = _DeadRedis()
    response = await http.get("/readyz")
    assert response.status_code == 503
    assert response.json()["redis"] == "error: ConnectionError"
    assert response.json()["database"] == "ok"


class _DeadRedis:
    """Stands in for a Redis server that went away."""

    async def ping(self) -> None:
        raise ConnectionError("redis is down")


@pytest.mark.parametrize(("tuning", "expected"), [("true", "True"), ("false", "False")])
@pytest.mark.parametrize(
    "process",
    [
        "from mensajero.app import create_served_app; create_served_app()",
        "from mensajero.cli import prepare_worker_process; "
        "from mensajero.settings import Settings; prepare_worker_process(Settings())",
    ],
    ids=["server", "worker"],
)
def test_long_lived_processes_tune_garbage_collection_unless_told_not_to(
    tuning: str, expected: str, process: str
) -> None:
    # In a process of its own: freezing would reach every object of the test run.
    probe = (
        f"import gc; from mensajero.gc_tuning import SERVER_GC_THRESHOLDS; {process}; "
        "print(gc.get_threshold() == SERVER_GC_THRESHOLDS and gc.get_freeze_count() > 0)"
    )
    env = {
        **os.environ,
        "MENSAJERO_SERVER_GC_TUNING": tuning,
        "MENSAJERO_DATABASE_URL": "sqlite+aiosqlite:///:memory:",
        "MENSAJERO_REDIS_URL": "memory://",
    }
    answer = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    assert answer.stdout.strip() == expected, answer.stderr


async def test_caller_errors_are_answered_not_logged_as_server_errors(
    http: httpx.AsyncClient, session: AsyncSession, caplog: pytest.LogCaptureFixture
) -> None:
    caller = await create_caller(session, scopes=["read"])
    await session.commit()
    with caplog.at_level(logging.DEBUG):
        forbidden = await graphql(http, "{ webhookEndpoints { id } }", caller.headers)
        invalid = await graphql(http, "{ viewer { noSuchField } }", caller.headers)
    assert forbidden.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert "noSuchField" in invalid.json()["errors"][0]["message"]
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_unexpected_resolver_failures_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    failure = GraphQLError("boom", original_error=RuntimeError("boom"))
    with caplog.at_level(logging.ERROR):
        schema.process_errors([failure])
    assert any(r.levelno == logging.ERROR and "boom" in r.getMessage() for r in caplog.records)
