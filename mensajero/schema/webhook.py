"""GraphQL types, inputs and results of outbound webhooks."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from mensajero import models
from mensajero.schema.common import InvalidInputError, NotFoundError
from mensajero.services import webhook as webhook_service
from mensajero.services.webhook import DeliveryView, EndpointView

WebhookEventType = strawberry.enum(
    webhook_service.WebhookEventType,
    name="WebhookEventType",
    description=(
        "The Coordinalo events: `COMMUNICATION_SENT` is sent as `communication.sent`, ..., "
        "`WHATSAPP_RESPONSE` as `whatsapp.response`."
    ),
)
WebhookDeliveryStatus = strawberry.enum(models.WebhookDeliveryStatus, name="WebhookDeliveryStatus")


@strawberry.type(name="WebhookAttempt", description="One HTTP request of a delivery.")
class WebhookAttemptType:
    id: strawberry.ID
    created_at: datetime
    succeeded: bool = strawberry.field(description="The endpoint answered 2xx.")
    response_status: int | None = strawberry.field(description="None when no answer came.")
    response_body: str | None = strawberry.field(description="The start of the answer's body.")
    error: str | None = strawberry.field(description="Why no answer came (timeout, refused...).")
    duration_ms: int

    @classmethod
    def from_model(cls, attempt: models.WebhookAttempt) -> WebhookAttemptType:
        return cls(
            id=strawberry.ID(str(attempt.id)),
            created_at=attempt.created_at,
            succeeded=attempt.succeeded,
            response_status=attempt.response_status,
            response_body=attempt.response_body,
            error=attempt.error,
            duration_ms=attempt.duration_ms,
        )


@strawberry.type(
    name="WebhookDelivery",
    description=(
        "One event for one endpoint. Its id is the `webhook-id` header of every attempt and "
        "replay, so receivers can deduplicate."
    ),
)
class WebhookDeliveryType:
    id: strawberry.ID
    endpoint_id: strawberry.ID
    event_type: WebhookEventType  # type: ignore[valid-type]
    payload: JSON = strawberry.field(description="The JSON body: `{event, data, timestamp}`.")
    status: WebhookDeliveryStatus  # type: ignore[valid-type]
    attempt_count: int
    next_attempt_at: datetime | None = strawberry.field(
        description="When the next retry is due, while pending."
    )
    delivered_at: datetime | None
    created_at: datetime
    attempts: list[WebhookAttemptType] = strawberry.field(description="Oldest first.")

    @classmethod
    def from_view(cls, view: DeliveryView) -> WebhookDeliveryType:
        delivery = view.delivery
        return cls(
            id=strawberry.ID(str(delivery.id)),
            endpoint_id=strawberry.ID(str(delivery.endpoint_id)),
            event_type=webhook_service.WebhookEventType(delivery.event_type),
            payload=delivery.payload,
            status=models.WebhookDeliveryStatus(delivery.status),
            attempt_count=delivery.attempt_count,
            next_attempt_at=delivery.next_attempt_at,
            delivered_at=delivery.delivered_at,
            created_at=delivery.created_at,
            attempts=[WebhookAttemptType.from_model(attempt) for attempt in view.attempts],
        )


@strawberry.type(name="WebhookEndpoint")
class WebhookEndpointType:
    id: strawberry.ID
    url: str
    description: str
    event_types: list[WebhookEventType] = strawberry.field(  # type: ignore[valid-type]
        description="The events it receives; empty means every event."
    )
    enabled: bool
    disabled_reason: str | None
    disabled_at: datetime | None
    consecutive_failures: int = strawberry.field(
        description="Deliveries that failed in a row (every retry spent)."
    )
    failing_since: datetime | None = strawberry.field(
        description="First failed attempt since the last success."
    )
    previous_secret_expires_at: datetime | None = strawberry.field(
        description="After a rotation, the old secret also signs until then."
    )
    created_at: datetime
    updated_at: datetime
    deliveries: list[WebhookDeliveryType] = strawberry.field(
        description="The newest deliveries, with their attempts."
    )

    @classmethod
    def from_view(cls, view: EndpointView) -> WebhookEndpointType:
        endpoint = view.endpoint
        return cls(
            id=strawberry.ID(str(endpoint.id)),
            url=endpoint.url,
            description=endpoint.description,
            event_types=[webhook_service.WebhookEventType(value) for value in endpoint.event_types],
            enabled=endpoint.enabled,
            disabled_reason=endpoint.disabled_reason,
            disabled_at=endpoint.disabled_at,
            consecutive_failures=endpoint.consecutive_failures,
            failing_since=endpoint.failing_since,
            previous_secret_expires_at=endpoint.previous_secret_expires_at,
            created_at=endpoint.created_at,
            updated_at=endpoint.updated_at,
            deliveries=[WebhookDeliveryType.from_view(delivery) for delivery in view.deliveries],
        )

    @classmethod
    def from_model(cls, endpoint: models.WebhookEndpoint) -> WebhookEndpointType:
        return cls.from_view(EndpointView(endpoint))


@strawberry.input
class CreateWebhookEndpointInput:
    url: str = strawberry.field(description="An absolute http(s) URL.")
    description: str | None = None
    event_types: list[WebhookEventType] | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="Omitted or empty: every event."
    )


@strawberry.input(description="Changes to an endpoint: omitted fields are kept.")
class UpdateWebhookEndpointInput:
    id: strawberry.ID
    url: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    event_types: list[WebhookEventType] | None = strawberry.field(  # type: ignore[valid-type]
        default=strawberry.UNSET, description="Empty: every event."
    )
    enabled: bool | None = strawberry.field(
        default=strawberry.UNSET,
        description="Enabling a disabled endpoint clears its failure record.",
    )


@strawberry.type
class CreateWebhookEndpointPayload:
    endpoint: WebhookEndpointType
    secret: str = strawberry.field(
        description="The signing secret (`whsec_...`): shown now and never again."
    )


@strawberry.type
class UpdateWebhookEndpointPayload:
    endpoint: WebhookEndpointType


@strawberry.type
class DeleteWebhookEndpointPayload:
    deleted_endpoint_id: strawberry.ID


@strawberry.type
class RotateWebhookEndpointSecretPayload:
    endpoint: WebhookEndpointType
    secret: str = strawberry.field(description="The new signing secret: shown now and never again.")


@strawberry.type
class WebhookDeliveryPayload:
    delivery: WebhookDeliveryType


CreateWebhookEndpointResult = Annotated[
    CreateWebhookEndpointPayload | InvalidInputError,
    strawberry.union("CreateWebhookEndpointResult"),
]
UpdateWebhookEndpointResult = Annotated[
    UpdateWebhookEndpointPayload | InvalidInputError | NotFoundError,
    strawberry.union("UpdateWebhookEndpointResult"),
]
DeleteWebhookEndpointResult = Annotated[
    DeleteWebhookEndpointPayload | NotFoundError,
    strawberry.union("DeleteWebhookEndpointResult"),
]
RotateWebhookEndpointSecretResult = Annotated[
    RotateWebhookEndpointSecretPayload | NotFoundError,
    strawberry.union("RotateWebhookEndpointSecretResult"),
]
WebhookDeliveryResult = Annotated[
    WebhookDeliveryPayload | InvalidInputError | NotFoundError,
    strawberry.union("WebhookDeliveryResult"),
]
