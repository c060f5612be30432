"""Send mutations and the communication configuration.

Authorization: sending (``sendSmsByTags``, ``sendMessage``, ``resend``) needs
the ``send`` scope and a member who accepted the organization's current
terms; both failures are GraphQL errors with ``extensions.code = "FORBIDDEN"``
(the terms case adds ``reason: "TERMS_NOT_ACCEPTED"``), like every other
authorization failure, while the send's own expected failures (credits, tags,
input) are typed results. Reading the configuration needs ``read``; changing
it needs ``admin``.
"""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from mensajero.models import ApiKeyScope, Channel
from mensajero.schema.common import InvalidInputError, NotFoundError, UserError, write
from mensajero.schema.context import Context
from mensajero.schema.enums import Channel as ChannelEnum
from mensajero.schema.messaging import (
    CommunicationConfig,
    InsufficientCreditsError,
    MessageEnqueueResult,
    ResendPayload,
    ResendResultType,
    SendMessageInput,
    SendMessagePayload,
    SendMessageResult,
    SendSmsByTagsInput,
    SendSmsByTagsResult,
    UnknownTagsError,
    UpdateCommunicationConfigInput,
    UpdateCommunicationConfigPayload,
    UpdateCommunicationConfigResult,
    changes_from_input,
)
from mensajero.schema.relay import parse_id
from mensajero.services import communication_config as config_service
from mensajero.services import messaging as messaging_service
from mensajero.services.auth import Principal
from mensajero.services.errors import (
    Forbidden,
    InvalidInput,
    TermsNotAccepted,
)
from mensajero.settings import Settings


def _require_sender(principal: Principal) -> None:
    principal.require_scope(ApiKeyScope.SEND)
    try:
        principal.require_terms()
    except TermsNotAccepted as error:
        raise Forbidden(error.message, reason=error.code) from error


def _settings(info: Info[Context, None]) -> Settings:
    return info.context.request.app.state.settings


@strawberry.type
class MessagingQuery:
    @strawberry.field(description="The organization's channel configuration (read scope).")
    async def communication_config(self, info: Info[Context, None]) -> CommunicationConfig:
        principal = info.context.principal
        principal.require_scope(ApiKeyScope.READ)
        async with info.context.read() as session:
            document = await config_service.get_config(
                session, organization_id=principal.organization_id
            )
        return CommunicationConfig.from_document(document)


@strawberry.type
class MessagingMutation:
    @strawberry.mutation(
        description="One SMS to every client carrying any of the tags (seed 001). "
        'With nobody to send to: queueId "" and no messages. Needs `send` and accepted terms.'
    )
    async def send_sms_by_tags(
        self, info: Info[Context, None], input: SendSmsByTagsInput
    ) -> SendSmsByTagsResult:
        principal = info.context.principal
        _require_sender(principal)
        if input.type != Channel.SMS:
            return InvalidInputError(
                code=InvalidInput.code,
                message="sendSmsByTags sends SMS only; use sendMessage for other channels",
                field="type",
            )
        campaign_id = None
        if input.campaign_id is not None:
            campaign_id = parse_id(input.campaign_id, type_name="Campaign")
            if campaign_id is None:
                return InvalidInputError(
                    code=InvalidInput.code, message="campaignId is not an id", field="campaignId"
                )
        # Relay global ids become UUIDs; anything else is passed on as given so
        # that the service names it among the unknown tags.
        tag_ids = [parse_id(tag_id, type_name="Tag") or str(tag_id) for tag_id in input.tag_ids]
        result = await write(
            info,
            lambda session: messaging_service.send_sms_by_tags(
                session,
                organization_id=principal.organization_id,
                message=input.message,
                tag_ids=tag_ids,
                country=input.country,
                communication_type=input.communication_type,
                campaign_id=campaign_id,
                settings=_settings(info),
            ),
            InsufficientCreditsError,
            UnknownTagsError,
            InvalidInputError,
        )
        if isinstance(result, UserError):
            return result  # type: ignore[return-value]
        return MessageEnqueueResult.from_result(result)

    @strawberry.mutation(
        description="One message to one client on any channel, with business metadata. "
        "Needs `send` and accepted terms."
    )
    async def send_message(
        self, info: Info[Context, None], input: SendMessageInput
    ) -> SendMessageResult:
        principal = info.context.principal
        _require_sender(principal)
        client_id = parse_id(input.client_id, type_name="Client")
        if client_id is None:
            return NotFoundError.of("client")
        campaign_id = None
        if input.campaign_id is not None:
            campaign_id = parse_id(input.campaign_id, type_name="Campaign")
            if campaign_id is None:
                return InvalidInputError(
                    code=InvalidInput.code, message="campaignId is not an id", field="campaignId"
                )
        sent = await write(
            info,
            lambda session: messaging_service.send_message(
                session,
                organization_id=principal.organization_id,
                client_id=client_id,
                channel=input.channel,
                body=input.body,
                communication_type=input.type,
                subject=input.subject,
                html=input.html,
                template_id=input.template_id,
                content_type=input.content_type,
                campaign_id=campaign_id,
                metadata=input.metadata,
                author_member_id=principal.member_id,
                settings=_settings(info),
            ),
            InsufficientCreditsError,
            InvalidInputError,
            NotFoundError,
        )
        if isinstance(sent, UserError):
            return sent  # type: ignore[return-value]
        return SendMessagePayload.from_result(sent)

    @strawberry.mutation(
        description="A new attempt of a communication log's message, on the same or another "
        "channel, optionally with another text (Coordinalo's resend). Costs credits again."
    )
    async def resend(
        self,
        info: Info[Context, None],
        id: strawberry.ID,
        channel: ChannelEnum | None = None,
        custom_message: str | None = None,
    ) -> ResendResultType:
        principal = info.context.principal
        _require_sender(principal)
        log_id = parse_id(id, type_name="CommunicationLog")
        if log_id is None:
            return NotFoundError.of("communication log")
        result = await write(
            info,
            lambda session: messaging_service.resend(
                session,
                organization_id=principal.organization_id,
                log_id=log_id,
                channel=channel,
                custom_message=custom_message,
                settings=_settings(info),
            ),
            InsufficientCreditsError,
            InvalidInputError,
            NotFoundError,
        )
        if isinstance(result, UserError):
            return result  # type: ignore[return-value]
        return ResendPayload.from_result(result)

    @strawberry.mutation(
        description="Change the channel configuration: only the fields given change (admin)."
    )
    async def update_communication_config(
        self, info: Info[Context, None], input: UpdateCommunicationConfigInput
    ) -> UpdateCommunicationConfigResult:
        principal = info.context.principal
        principal.require_scope(ApiKeyScope.ADMIN)
        document = await write(
            info,
            lambda session: config_service.update_config(
                session,
                organization_id=principal.organization_id,
                changes=changes_from_input(input),
            ),
            InvalidInputError,
        )
        if isinstance(document, UserError):
            return document  # type: ignore[return-value]
        return UpdateCommunicationConfigPayload(config=CommunicationConfig.from_document(document))
