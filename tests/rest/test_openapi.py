"""The shim's OpenAPI document: served, offline docs, and a schemathesis run against the app.

Schemathesis generates requests from ``/openapi.json`` (valid ones, and
invalid ones for every parameter and body) and we send them to the real
application in-process with a valid key, over the test's database; every
answer must be a documented status with a body matching its schema, and
never a 5xx.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.ext.asyncio import AsyncSession

from mensajero.rest import OPERATIONS
from mensajero.services import credits
from tests.factories import create_caller, create_client, create_message, create_tag, tag_client

# Per operation and generation mode; 10 operations x 2 modes x 12 = 240 requests per backend.
MAX_EXAMPLES = 12
AUTH_HEADERS = {"authorization", "x-api-key", "api-key"}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


async def test_openapi_document_lists_every_route(http: httpx.AsyncClient) -> None:
    response = await http.get("/openapi.json")

    assert response.status_code == 200
    document = response.json()
    assert document["openapi"] == "3.1.0"
    listed = {
        (method.upper(), path) for path, methods in document["paths"].items() for method in methods
    }
    assert listed == {(operation.method, operation.path) for operation in OPERATIONS}
    messages = document["paths"]["/api/messages"]["get"]
    assert {parameter["name"] for parameter in messages["parameters"]} == {
        "page", "limit", "content", "contentType", "status", "sentAt", "recipientDetails",
        "countryCode", "messageType", "providerId", "campaignId", "contactId", "startDate",
        "endDate",
    }  # fmt: skip
    item = document["components"]["schemas"]["MessageItem"]
    assert "recipientDetails" in item["properties"] and "organizationId" in item["required"]
    assert set(document["components"]["securitySchemes"]) == {"bearer", "xApiKey", "apiKey"}


async def test_docs_page_is_served_without_anything_external(http: httpx.AsyncClient) -> None:
    response = await http.get("/docs")

    assert response.status_code == 200
    assert "/openapi.json" in response.text
    assert "http://" not in response.text and "https://" not in response.text
    assert "default-src 'none'" in response.headers["content-security-policy"]


def _cases(document: dict[str, Any]) -> list[Any]:
    """Requests generated for every operation, reproducibly (derandomized)."""
    schema = schemathesis.openapi.from_dict(document)
    cases: list[Any] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=MAX_EXAMPLES,
                derandomize=True,
                database=None,
                deadline=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(operation.as_strategy(generation_mode=mode))
            def collect(case: Any) -> None:
                cases.append(case)

            collect()
    return cases


@pytest.mark.parametrize("scope", ["all", "read"])
async def test_schemathesis_finds_no_server_error_and_no_undocumented_answer(
    http: httpx.AsyncClient, session: AsyncSession, scope: str
) -> None:
    caller = await create_caller(
        session, scopes=None if scope == "all" else ["read"], timezone="America/Bogota"
    )
    await credits.top_up(session, organization_id=caller.organization.id, amount=1000)
    tag = await create_tag(session, caller.organization)
    for channel in ("sms", "email", "whatsapp"):
        client = await create_client(session, caller.organization)
        await tag_client(session, client, tag)
        await create_message(session, caller.organization, client=client, channel=channel)
    document = (await http.get("/openapi.json")).json()

    failures: list[str] = []
    for case in _cases(document):
        kwargs = case.as_transport_kwargs(base_url=str(http.base_url).rstrip("/"))
        headers = {
            name: value
            for name, value in kwargs["headers"].items()
            if name.lower() not in AUTH_HEADERS
        }
        headers["Authorization"] = f"Bearer {caller.key}"
        response = await http.request(
            kwargs["method"],
            kwargs["url"],
            params=kwargs.get("params"),
            headers=headers,
            json=kwargs.get("json"),
            content=kwargs.get("data"),
        )
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as error:
            failures.append(f"{case.method} {case.formatted_path} {kwargs.get('params')}: {error}")
    assert not failures, "\n\n".join(failures[:5])
