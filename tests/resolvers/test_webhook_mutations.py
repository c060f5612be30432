"""Webhook endpoint management over GraphQL, on both backends."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from arq.connections import ArqRedis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks import Webhook

from mensajero.models import (
    MessageStatus,
    TimelineEventType,
    WebhookDelivery,
    WebhookEndpoint,
    utcnow,
)
from mensajero.services import delivery as delivery_service
from mensajero.services import webhook as webhook_service
from mensajero.settings import get_settings
from tests.conftest import Backend
from tests.delivery_support import create_attempt_row, reload
from tests.factories import Caller, create_caller
from tests.resolvers.graphql_helpers import data, execute
from tests.resolvers.test_statement_count import count_statements

ENDPOINT_FIELDS = """
  id url description eventTypes enabled disabledReason consecutiveFailures
  previousSecretExpiresAt
  deliveries { id eventType status attemptCount payload attempts { responseStatus succeeded } }
"""
CREATE = f"""
mutation($input: CreateWebhookEndpointInput!) {{
  createWebhookEndpoint(input: $input) {{
    __typename
    ... on CreateWebhookEndpointPayload {{ secret endpoint {{ {ENDPOINT_FIELDS} }} }}
    ... on InvalidInputError {{ code field message }}
  }}
}}
"""
UPDATE = f"""
mutation($input: UpdateWebhookEndpointInput!) {{
  updateWebhookEndpoint(input: $input) {{
    __typename
    ... on UpdateWebhookEndpointPayload {{ endpoint {{ {ENDPOINT_FIELDS} }} }}
    ... on UserError {{ code message }}
    ... on InvalidInputError {{ field }}
  }}
}}
"""
DELETE = """
mutation($id: ID!) {
  deleteWebhookEndpoint(id: $id) {
    __typename
    ... on DeleteWebhookEndpointPayload { deletedEndpointId }
    ... on UserError { code }
  }
}
"""
ROTATE = """
mutation($id: ID!) {
  rotateWebhookEndpointSecret(id: $id) {
    __typename
    ... on RotateWebhookEndpointSecretPayload { secret endpoint { id previousSecretExpiresAt } }
    ... on UserError { code }
  }
}
"""
SEND_TEST = """
mutation($id: ID!, $type: WebhookEventType!) {
  sendTestWebhookEvent(endpointId: $id, eventType: $type) {
    __typename
    ... on WebhookDeliveryPayload { delivery { id eventType status payload attempts { id } } }
    ... on UserError { code message }
  }
}
"""
REPLAY = """
mutation($id: ID!) {
  replayWebhookDelivery(id: $id) {
    __typename
    ... on WebhookDeliveryPayload { delivery { id status attemptCount attempts { succeeded } } }
    ... on UserError { code message }
  }
}
"""
LIST = f"query {{ webhookEndpoints {{ {ENDPOINT_FIELDS} }} }}"
DELIVERY = """
query($id: ID!) {
  webhookDelivery(id: $id) { id status attemptCount attempts { responseStatus succeeded } }
}
"""


async def _create(
    http: httpx.AsyncClient, caller: Caller, **input: Any
) -> tuple[dict[str, Any], str]:
    input.setdefault("url", "https://hooks.example.com/mensajero")
    result = (await data(http, caller, CREATE, {"input": input}))["createWebhookEndpoint"]
    assert result["__typename"] == "CreateWebhookEndpointPayload", result
    return result["endpoint"], result["secret"]


async def test_create_shows_the_secret_once_and_validates(
    http: httpx.AsyncClient, session: AsyncSession
) -> None:
    caller = await create_caller(session)
    endpoint, secret = await _create(
        http,
        caller,
        description="CRM",
        eventTypes=["COMMUNICATION_BOUNCED", "COMMUNICATION_DELIVERED", "COMMUNICATION_BOUNCED"],
    )
    assert secret.startswith("whsec_")
    Webhook(secret)  # a valid Standard Webhooks secret
    assert endpoint["eventTypes"] == ["COMMUNICATION_DELIVERED", "COMMUNICATION_BOUNCED"]
    assert endpoint["enabled"] is True and endpoint["deliveries"] == []
    row = await reload(session, WebhookEndpoint, uuid.UUID(endpoint["id"]))
    assert row.organization_id == caller.organization.id
    assert row.event_types == ["communication.delivered", "communication.bounced"]

    for url in ("ftp://example.com/x", "not a url", "", "https:///nohost"):
        result = (await data(http, caller, CREATE, {"input": {"url": url}}))[
            "createWebhookEndpoint"
        ]
        assert result["__typename"] == "InvalidInputError", url
        assert result["field"] == "url"
    body = await execute(
        http, caller, CREATE, {"input": {"url": "https://x.example", "eventTypes": ["NOPE"]}}
    )
    assert body.get("errors")


async def test_management_needs_the_admin_scope(
    http: httpx.AsyncClient, session: AsyncSession
) -> None:
    caller = await create_caller(session, scopes=["read", "send"])
    body = await execute(http, caller, CREATE, {"input": {"url": "https://x.example"}})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    body = await execute(http, caller, LIST)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_list_shows_deliveries_and_attempts_and_replay_adds_attempts(
    http: httpx.AsyncClient, session: AsyncSession, redis: ArqRedis
) -> None:
    caller = await create_caller(session)
    endpoint, _ = await _create(http, caller)
    log = await create_attempt_row(session, caller.organization, status=MessageStatus.SENT)
    await delivery_service.apply_transition(
        session,
        log_id=log.id,
        transition=delivery_service.Transition(
            event=TimelineEventType.DELIVERED,
            status=MessageStatus.DELIVERED,
            occurred_at=utcnow(),
            dedup_key="status:delivered",
        ),
    )
    (delivery,) = (
        (
            await session.execute(
                select(WebhookDelivery).where(
                    WebhookDelivery.endpoint_id == uuid.UUID(endpoint["id"])
                )
            )
        )
        .scalars()
        .all()
    )
    # One failed attempt, recorded as the worker would.
    await webhook_service.claim_attempt(
        session, delivery_id=delivery.id, attempt_count=0, settings=get_settings()
    )
    await webhook_service.record_attempt(
        session,
        delivery_id=delivery.id,
        result=webhook_service.AttemptResult(500, "oops", None, 12),
        settings=get_settings(),
    )
    await session.commit()

    (listed,) = (await data(http, caller, LIST))["webhookEndpoints"]
    (shown,) = listed["deliveries"]
    assert shown["id"] == str(delivery.id)
    assert shown["eventType"] == "COMMUNICATION_DELIVERED"
    assert shown["status"] == "PENDING"
    assert shown["payload"]["event"] == "communication.delivered"
    assert shown["payload"]["data"]["logId"] == str(log.id)
    assert shown["attempts"] == [{"responseStatus": 500, "succeeded": False}]
    one = (await data(http, caller, DELIVERY, {"id": str(delivery.id)}))["webhookDelivery"]
    assert one["attemptCount"] == 1 and len(one["attempts"]) == 1

    replayed = (await data(http, caller, REPLAY, {"id": str(delivery.id)}))["replayWebhookDelivery"]
    assert replayed["__typename"] == "WebhookDeliveryPayload"
    assert replayed["delivery"]["status"] == "PENDING"
    assert replayed["delivery"]["attempts"] == [{"succeeded": False}]
    # Enqueued after the mutation's commit, for the next attempt.
    queue = get_settings().queue_name
    assert await redis.zscore(queue, f"{webhook_service.DELIVER_JOB}:{delivery.id}:1") is not None


async def test_update_rotate_test_event_and_delete(
    http: httpx.AsyncClient, session: AsyncSession, redis: ArqRedis
) -> None:
    caller = await create_caller(session)
    endpoint, secret = await _create(http, caller)
    updated = (
        await data(
            http,
            caller,
            UPDATE,
            {
                "input": {
                    "id": endpoint["id"],
                    "eventTypes": ["WHATSAPP_RESPONSE"],
                    "enabled": False,
                }
            },
        )
    )["updateWebhookEndpoint"]
    assert updated["endpoint"]["eventTypes"] == ["WHATSAPP_RESPONSE"]
    assert updated["endpoint"]["enabled"] is False
    assert updated["endpoint"]["disabledReason"]
    assert updated["endpoint"]["url"] == endpoint["url"]  # omitted: kept
    test_on_disabled = (
        await data(http, caller, SEND_TEST, {"id": endpoint["id"], "type": "COMMUNICATION_SENT"})
    )["sendTestWebhookEvent"]
    assert test_on_disabled["__typename"] == "InvalidInputError"
    enabled = (
        await data(http, caller, UPDATE, {"input": {"id": endpoint["id"], "enabled": True}})
    )["updateWebhookEndpoint"]["endpoint"]
    assert enabled["enabled"] is True and enabled["disabledReason"] is None
    bad = (await data(http, caller, UPDATE, {"input": {"id": endpoint["id"], "url": "mailto:x"}}))[
        "updateWebhookEndpoint"
    ]
    assert bad["__typename"] == "InvalidInputError" and bad["field"] == "url"

    rotated = (await data(http, caller, ROTATE, {"id": endpoint["id"]}))[
        "rotateWebhookEndpointSecret"
    ]
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != secret
    assert rotated["endpoint"]["previousSecretExpiresAt"] is not None
    row = await reload(session, WebhookEndpoint, uuid.UUID(endpoint["id"]))
    assert row.secret == rotated["secret"] and row.previous_secret == secret

    # A test event goes even to an endpoint filtered to other events.
    sent = (
        await data(http, caller, SEND_TEST, {"id": endpoint["id"], "type": "COMMUNICATION_BOUNCED"})
    )["sendTestWebhookEvent"]
    assert sent["__typename"] == "WebhookDeliveryPayload"
    delivery = sent["delivery"]
    assert delivery["eventType"] == "COMMUNICATION_BOUNCED" and delivery["status"] == "PENDING"
    assert delivery["payload"]["event"] == "communication.bounced"
    assert delivery["payload"]["test"] is True
    assert delivery["payload"]["data"]["bounceType"] == "hard"
    queue = get_settings().queue_name
    job_id = f"{webhook_service.DELIVER_JOB}:{delivery['id']}:0"
    assert await redis.zscore(queue, job_id) is not None

    deleted = (await data(http, caller, DELETE, {"id": endpoint["id"]}))["deleteWebhookEndpoint"]
    assert deleted == {
        "__typename": "DeleteWebhookEndpointPayload",
        "deletedEndpointId": endpoint["id"],
    }
    assert (await data(http, caller, LIST))["webhookEndpoints"] == []
    again = (await data(http, caller, DELETE, {"id": endpoint["id"]}))["deleteWebhookEndpoint"]
    assert again["__typename"] == "NotFoundError"


async def test_another_organizations_ids_are_not_found(
    http: httpx.AsyncClient, session: AsyncSession
) -> None:
    owner = await create_caller(session)
    intruder = await create_caller(session)
    endpoint, _ = await _create(http, owner)
    sent = (
        await data(http, owner, SEND_TEST, {"id": endpoint["id"], "type": "COMMUNICATION_SENT"})
    )["sendTestWebhookEvent"]
    delivery_id = sent["delivery"]["id"]

    for query, variables, field in (
        (UPDATE, {"input": {"id": endpoint["id"], "url": "https://evil.example"}}, None),
        (DELETE, {"id": endpoint["id"]}, "deleteWebhookEndpoint"),
        (ROTATE, {"id": endpoint["id"]}, "rotateWebhookEndpointSecret"),
        (
            SEND_TEST,
            {"id": endpoint["id"], "type": "COMMUNICATION_SENT"},
            "sendTestWebhookEvent",
        ),
        (REPLAY, {"id": delivery_id}, "replayWebhookDelivery"),
        (REPLAY, {"id": "not-an-id"}, "replayWebhookDelivery"),
    ):
        result = (await data(http, intruder, query, variables))[field or "updateWebhookEndpoint"]
        assert result["__typename"] == "NotFoundError", (query, result)
    assert (await data(http, intruder, LIST))["webhookEndpoints"] == []
    assert (await data(http, intruder, DELIVERY, {"id": delivery_id}))["webhookDelivery"] is None
    row = await reload(session, WebhookEndpoint, uuid.UUID(endpoint["id"]))
    assert row.url == endpoint["url"]


async def test_listing_costs_the_same_statements_for_one_or_many_endpoints(
    http: httpx.AsyncClient, session: AsyncSession, backend: Backend
) -> None:
    async def statements_for(endpoints: int) -> int:
        caller = await create_caller(session)
        for _ in range(endpoints):
            endpoint, _ = await _create(http, caller)
            for event_type in ("COMMUNICATION_SENT", "COMMUNICATION_DELIVERED"):
                await data(http, caller, SEND_TEST, {"id": endpoint["id"], "type": event_type})
        with count_statements(backend) as statements:
            listed = (await data(http, caller, LIST))["webhookEndpoints"]
        assert len(listed) == endpoints
        assert all(len(item["deliveries"]) == 2 for item in listed)
        return len(statements)

    assert await statements_for(1) == await statements_for(4)
