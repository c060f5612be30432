"""Outbound webhook queries and mutations.

Authorization: everything here needs the ``admin`` scope. Endpoints decide
where the organization's data (clients' emails and phones, replies) is sent,
and deliveries carry that data.
"""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from mensajero.models import ApiKeyScope
from mensajero.schema.common import InvalidInputError, NotFoundError, UserError, write
from mensajero.schema.context import Context
from mensajero.schema.relay import parse_id
from mensajero.schema.webhook import (
    CreateWebhookEndpointInput,
    CreateWebhookEndpointPayload,
    CreateWebhookEndpointResult,
    DeleteWebhookEndpointPayload,
    DeleteWebhookEndpointResult,
    RotateWebhookEndpointSecretPayload,
    RotateWebhookEndpointSecretResult,
    UpdateWebhookEndpointInput,
    UpdateWebhookEndpointPayload,
    UpdateWebhookEndpointResult,
    WebhookDeliveryPayload,
    WebhookDeliveryResult,
    WebhookDeliveryType,
    WebhookEndpointType,
    WebhookEventType,
)
from mensajero.services import webhook as webhook_service
from mensajero.services.errors import NotFound
from mensajero.services.webhook import DeliveryView

ADMIN_NOTE = " Needs the `admin` scope."
MAX_DELIVERIES_PER_ENDPOINT = 100


@strawberry.type
class WebhookQuery:
    @strawberry.field(
        description=(
            "The organization's webhook endpoints, newest first, each with its newest "
            "deliveries and their attempts." + ADMIN_NOTE
        )
    )
    async def webhook_endpoints(
        self, info: Info[Context, None], deliveries_per_endpoint: int = 20
    ) -> list[WebhookEndpointType]:
        principal = info.context.principal
        principal.require_scope(ApiKeyScope.ADMIN)
        limit = min(max(deliveries_per_endpoint, 0), MAX_DELIVERIES_PER_ENDPOINT)
        async with info.context.read() as session:
            views = await webhook_service.list_endpoints(
                session, organization_id=principal.organization_id, deliveries_per_endpoint=limit
            )
        return [WebhookEndpointType.from_view(view) for view in views]

    @strawberry.field(description="One delivery with every attempt; null if unknown." + ADMIN_NOTE)
    async def webhook_delivery(
        self, info: Info[Context, None], id: strawberry.ID
    ) -> WebhookDeliveryType | None:
        principal = info.context.principal
        principal.require_scope(ApiKeyScope.ADMIN)
        delivery_id = parse_id(id, type_name="WebhookDelivery")
        if delivery_id is None:
            return None
        try:
            async with info.context.read() as session:
                view = await webhook_service.get_delivery(
                    session, organization_id=principal.organization_id, delivery_id=delivery_id
                )
        except NotFound:
            return None
        return WebhookDeliveryType.from_view(view)


@strawberry.type
class WebhookMutation:
    @strawberry.mutation(
        description=(
            "Register an endpoint for the organization's events, signed per Standard Webhooks. "
            "The answer carries the signing secret, shown only here." + ADMIN_NOTE
        )
    )
    async def create_webhook_endpoint(
        self, info: Info[Context, None], input: CreateWebhookEndpointInput
    ) -> CreateWebhookEndpointResult:
        principal = info.context.principal
        principal.require_scope(ApiKeyScope.ADMIN)
        endpoint = await write(
            info,
            lambda session: webhook_service.create_endpoint(
                session,
                organization_id=principal.organization_id,
                url=input.url,
                description=input.description,
                event_types=input.event_types,
            ),
            InvalidInputError,
        )
        if isinstance(endpoint, UserError):
            return endpoint  # type: ignore[return-value]
        return CreateWebhookEndpointPayload(
            endpoint=WebhookEndpointType.from_model(endpoint), secret=endpoint.secret
        )

    @strawberry.mutation(description="Change an endpoint; omitted fields are kept." + ADMIN_NOTE)
    async def update_webhook_endpoint(
        self, info: Info[Context, None], input: UpdateWebhookEndpointInput
    ) -> UpdateWebhookEndpointResult:
        principal = info.context.principal
        principal.require_scope(ApiKeyScope.ADMIN)
        endpoint_id = parse_id(input.id, type_name="WebhookEndpoint")
        if endpoint_id is None:
            return NotFoundError.of("webhook endpoint")
        changes = {
            name: value
            for name, value in (
                ("url", input.url),
                ("description", input.description),
                ("event_types", input.event_types),
                ("enabled", input.enabled),
            )
            if value is not strawberry.UNSET
        }
        endpoint = await write(
            info,
            lambda session: webhook_service.update_endpoint(
                session,
                organization_id=principal.organization_id,
                endpoint_id=endpoint_id,
                changes=changes,
            ),
            InvalidInputError,
            NotFoundError,
        )
        if isinstance(endpoint, UserError):
            return endpoint  # type: ignore[return-value]
        return UpdateWebhookEndpointPayload(endpoint=WebhookEndpointType.from_model(endpoint))

    @strawberry.mutation(
        description="Delete an endpoint with its deliveries and attempts." + ADMIN_NOTE
    )
    async def delete_webhook_endpoint(
        self, info: Info[Context, None], id: strawberry.ID
    ) -> DeleteWebhookEndpointResult:
        principal = info.context.principal
        principal.require_scope(ApiKeyScope.ADMIN)
        endpoint_id = parse_id(id, type_name="WebhookEndpoint")
        if endpoint_id is None:
            return NotFoundError.of("webhook endpoint")
        endpoint = await write(
            info,
            lambda session: webhook_service.delete_endpoint(
                session, organization_id=principal.organization_id, endpoint_id=endpoint_id
            ),
            NotFoundError,
        )
        if isinstance(endpoint, UserError):
            return endpoint  # type: ignore[return-value]
        return DeleteWebhookEndpointPayload(deleted_endpoint_id=strawberry.ID(str(endpoint.id)))

    @strawberry.mutation(
        description=(
            "Give an endpoint a new signing secret, shown only in this answer. The previous "
            "secret keeps signing too (a second signature) for a grace period." + ADMIN_NOTE
        )
    )
    async def rotate_webhook_endpoint_secret(
        self, info: Info[Context, None], id: strawberry.ID
    ) -> RotateWebhookEndpointSecretResult:
        principal = info.context.principal
        principal.require_scope(ApiKeyScope.ADMIN)
        endpoint_id = parse_id(id, type_name="WebhookEndpoint")
        if endpoint_id is None:
            return NotFoundError.of("webhook endpoint")
        endpoint = await write(
            info,
            lambda session: webhook_service.rotate_secret(
                session, organization_id=principal.organization_id, endpoint_id=endpoint_id
            ),
            NotFoundError,
        )
        if isinstance(endpoint, UserError):
            return endpoint  # type: ignore[return-value]
        return RotateWebhookEndpointSecretPayload(
            endpoint=WebhookEndpointType.from_model(endpoint), secret=endpoint.secret
        )

    @strawberry.mutation(
        description=(
            'Queue a sample event (with `"test": true`) to one endpoint, whatever events it '
            "is subscribed to." + ADMIN_NOTE
        )
    )
    async def send_test_webhook_event(
        self,
        info: Info[Context, None],
        endpoint_id: strawberry.ID,
        event_type: WebhookEventType,  # type: ignore[valid-type]
    ) -> WebhookDeliveryResult:
        principal = info.context.principal
        principal.require_scope(ApiKeyScope.ADMIN)
        parsed = parse_id(endpoint_id, type_name="WebhookEndpoint")
        if parsed is None:
            return NotFoundError.of("webhook endpoint")
        delivery = await write(
            info,
            lambda session: webhook_service.send_test_event(
                session,
                organization_id=principal.organization_id,
                endpoint_id=parsed,
                event_type=event_type,
            ),
            InvalidInputError,
            NotFoundError,
        )
        if isinstance(delivery, UserError):
            return delivery  # type: ignore[return-value]
        return WebhookDeliveryPayload(
            delivery=WebhookDeliveryType.from_view(DeliveryView(delivery))
        )

    @strawberry.mutation(
        description=(
            "Send a delivery again (same payload, same `webhook-id`), with a fresh schedule of "
            "retries; new attempts are added to its history." + ADMIN_NOTE
        )
    )
    async def replay_webhook_delivery(
        self, info: Info[Context, None], id: strawberry.ID
    ) -> WebhookDeliveryResult:
        principal = info.context.principal
        principal.require_scope(ApiKeyScope.ADMIN)
        delivery_id = parse_id(id, type_name="WebhookDelivery")
        if delivery_id is None:
            return NotFoundError.of("webhook delivery")
        view = await write(
            info,
            lambda session: webhook_service.replay_delivery(
                session, organization_id=principal.organization_id, delivery_id=delivery_id
            ),
            InvalidInputError,
            NotFoundError,
        )
        if isinstance(view, UserError):
            return view  # type: ignore[return-value]
        return WebhookDeliveryPayload(delivery=WebhookDeliveryType.from_view(view))
