"""sendme123's routes: ``GET /api/messages`` (seed 002) and ``POST /api/messages/sms/tags`` (001).

``GET /api/messages`` reads through the same filters and totals as GraphQL's
``messages`` (:class:`mensajero.services.listing.MessageFilter`; totals from
the ``message_counts`` rollup whenever the filter allows). Its page numbers
are OFFSET pages: ``page=500&limit=20`` reads and skips 9,980 rows first.

Parameters (all optional; the first invalid one answers 400 with the seed's
body, ``{"error": "Parámetros inválidos", "details": "El parámetro 'limit'
debe estar entre 1 y 100"}``):

- ``page`` >= 1 (default 1), ``limit`` 1..100 (default 10, as the seed's ``meta``);
- ``status``: the seed's vocabulary; ``UNDELIVERED`` includes bounced e-mails;
- ``messageType``: SMS, WHATSAPP (or WhatsApp) or EMAIL, any case;
- ``recipientDetails``: the national number shown in answers together with
  ``countryCode`` ("3001234567" + "57"), or a full international number / e-mail;
- ``startDate``/``endDate``: calendar days (YYYY-MM-DD) in the organization's
  time zone, both inclusive;
- ``sentAt``: an ISO 8601 instant, matched to the second;
- ``providerId``: twilio, resend, evolution, sandbox (any case).
"""

from __future__ import annotations

import math
import re
import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

import phonenumbers
from pydantic import BeforeValidator, Field
from starlette.requests import Request
from starlette.responses import Response

from mensajero.db import transaction
from mensajero.models import ApiKeyScope, Channel
from mensajero.rest.common import (
    NEST,
    ApiError,
    ApiModel,
    NestError,
    NestInsufficientCreditsError,
    Operation,
    Timestamp,
    iso_utc,
    json_response,
    parse_query,
    raw_json_response,
    read_json_body,
)
from mensajero.services import message as message_service
from mensajero.services import messaging as messaging_service
from mensajero.services.auth import Principal
from mensajero.services.listing import MessageFilter, OffsetPage
from mensajero.services.message import ListedMessage
from mensajero.services.status_vocabulary import (
    SENDME123_STATUSES,
    from_sendme123,
    to_sendme123,
)

DEFAULT_LIMIT = 10
MAX_LIMIT = 100
# OFFSET pages beyond this are refused rather than scanned (and overflow SQLite's integers).
MAX_PAGE = 1_000_000

PROVIDER_NAMES = {
    "twilio": "Twilio",
    "resend": "Resend",
    "evolution": "Evolution",
    "sandbox": "Sandbox",
}
MESSAGE_TYPES = {"SMS": Channel.SMS, "WHATSAPP": Channel.WHATSAPP, "EMAIL": Channel.EMAIL}


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


def _blank_is_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


def _utc_instant(value: Any) -> Any:
    if isinstance(value, str) and value.strip():
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return _blank_is_none(value)


Upper = BeforeValidator(_upper)
Blank = BeforeValidator(_blank_is_none)


class MessageListQuery(ApiModel):
    """Query parameters of ``GET /api/messages``."""

    page: Annotated[int, Blank] = Field(1, ge=1, le=MAX_PAGE, description="Número de página (≥ 1)")
    limit: Annotated[int, Blank] = Field(
        DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Elementos por página (1-100)"
    )
    content: Annotated[str | None, Blank] = Field(
        None, max_length=500, description="Filtrar por contenido del mensaje (contiene)"
    )
    content_type: Annotated[Literal["PLAIN_TEXT", "HTML"] | None, Upper, Blank] = Field(
        None, description="Tipo: PLAIN_TEXT, HTML"
    )
    status: Annotated[
        Literal[
            "QUEUED",
            "SENDING",
            "SENT",
            "DELIVERED",
            "UNDELIVERED",
            "FAILED",
            "RECEIVED",
            "SCHEDULED",
            "CANCELED",
            "READ",
        ]
        | None,
        Upper,
        Blank,
    ] = Field(None, description=f"Estado: {', '.join(SENDME123_STATUSES)}")
    sent_at: Annotated[datetime | None, BeforeValidator(_utc_instant)] = Field(
        None, description="Fecha y hora de envío (ISO 8601), al segundo"
    )
    recipient_details: Annotated[str | None, Blank] = Field(
        None, max_length=320, description="Número de teléfono del destinatario (o e-mail)"
    )
    country_code: Annotated[str | None, Blank] = Field(
        None, pattern=r"^\+?[0-9]{1,3}$", description="Código de país del destinatario (57)"
    )
    message_type: Annotated[Literal["SMS", "WHATSAPP", "EMAIL"] | None, Upper, Blank] = Field(
        None, description="Tipo de mensaje: SMS, WhatsApp o EMAIL"
    )
    provider_id: Annotated[str | None, Blank] = Field(
        None, max_length=32, description="ID del proveedor: twilio, resend, evolution, sandbox"
    )
    campaign_id: Annotated[uuid.UUID | None, Blank] = Field(None, description="ID de la campaña")
    contact_id: Annotated[uuid.UUID | None, Blank] = Field(None, description="ID del contacto")
    start_date: Annotated[date | None, Blank] = Field(
        None, description="Fecha de inicio (YYYY-MM-DD), zona horaria de la organización"
    )
    end_date: Annotated[date | None, Blank] = Field(
        None, description="Fecha de fin (YYYY-MM-DD), inclusive"
    )


_PARAMETER_ERRORS = {
    "page": "debe ser un número entero mayor o igual a 1",
    "limit": f"debe estar entre 1 y {MAX_LIMIT}",
    "content": "debe ser un texto de como máximo 500 caracteres",
    "contentType": "debe ser uno de: PLAIN_TEXT, HTML",
    "status": f"debe ser uno de: {', '.join(SENDME123_STATUSES)}",
    "sentAt": "debe ser una fecha y hora ISO 8601",
    "recipientDetails": "debe ser un número de teléfono o e-mail",
    "countryCode": "debe ser un código de país numérico (por ejemplo 57)",
    "messageType": "debe ser uno de: SMS, WHATSAPP, EMAIL",
    "providerId": "no es un proveedor válido",
    "campaignId": "debe ser un UUID válido",
    "contactId": "debe ser un UUID válido",
    "startDate": "debe ser una fecha con formato YYYY-MM-DD",
    "endDate": "debe ser una fecha con formato YYYY-MM-DD",
}


def describe_parameter_error(name: str, error_type: str) -> str:
    if name == "page" and error_type == "less_than_equal":
        return f"El parámetro 'page' debe ser como máximo {MAX_PAGE}"
    return f"El parámetro '{name}' {_PARAMETER_ERRORS.get(name, 'no es válido')}"


def _recipient(query: MessageListQuery) -> str | None:
    """The stored (E.164 or e-mail) form of ``recipientDetails``."""
    value = query.recipient_details
    if value is None:
        return None
    value = value.strip()
    if "@" in value or value.startswith("+"):
        return value
    digits = re.sub(r"\D", "", value)
    if query.country_code:
        return f"+{query.country_code.lstrip('+')}{digits}"
    return f"+{digits}" if digits else value


def message_filter_from_query(query: MessageListQuery) -> MessageFilter:
    if query.start_date and query.end_date and query.start_date > query.end_date:
        raise ApiError(400, ["El parámetro 'startDate' no puede ser posterior a 'endDate'"])
    return MessageFilter(
        content=query.content or None,
        content_type=query.content_type,
        statuses=from_sendme123(query.status) if query.status else None,
        sent_at=query.sent_at,
        recipient=_recipient(query),
        country_code=query.country_code,
        channels=(MESSAGE_TYPES[query.message_type].value,) if query.message_type else None,
        provider=query.provider_id,
        campaign_ids=(query.campaign_id,) if query.campaign_id else None,
        client_ids=(query.contact_id,) if query.contact_id else None,
        start_date=query.start_date,
        end_date=query.end_date,
    )


# --- answers -------------------------------------------------------------------------


class CampaignRef(ApiModel):
    id: str
    name: str


class ContactRef(ApiModel):
    id: str
    name: str


class MessageItem(ApiModel):
    """One message as sendme123 lists it."""

    id: str
    content: str
    content_type: Literal["PLAIN_TEXT", "HTML"]
    status: str = Field(description="Vocabulario de sendme123 (BOUNCED se muestra UNDELIVERED)")
    sent_at: Timestamp | None
    error_message: str | None
    recipient_details: str = Field(description="Número nacional (o e-mail)")
    country_code: str | None = Field(description="Código de llamada del país (57)")
    message_type: Literal["SMS", "WHATSAPP", "EMAIL"]
    provider: str | None = Field(description="Nombre del proveedor: Twilio, Resend, Evolution")
    campaign: CampaignRef | None
    contact: ContactRef | None
    organization_id: str
    created_at: Timestamp
    updated_at: Timestamp
    deleted_at: Timestamp | None


class ListMeta(ApiModel):
    total_records: int
    total_pages: int
    current_page: int
    limit: int
    has_next_page: bool
    has_previous_page: bool


class MessageList(ApiModel):
    data: list[MessageItem]
    meta: ListMeta


def national_number(recipient: str, country_code: str | None) -> str:
    if not recipient.startswith("+"):
        return recipient
    if country_code and recipient.startswith(f"+{country_code}"):
        return recipient[len(country_code) + 1 :]
    try:
        return phonenumbers.national_significant_number(phonenumbers.parse(recipient, None))
    except phonenumbers.NumberParseException:
        return recipient.lstrip("+")


def _timestamp(value: datetime | None) -> str | None:
    return None if value is None else iso_utc(value)


def message_item(row: ListedMessage) -> dict[str, Any]:
    """One listed message as :class:`MessageItem` writes it.

    Built as a plain dict for orjson: validating and serializing 20 pydantic
    models per page cost more than the rest of the request. The keys, their
    order and every value's format are :class:`MessageItem`'s, which stays the
    schema of the OpenAPI document; tests compare the two on every field.
    """
    provider = row.provider
    return {
        "id": str(row.id),
        "content": row.body,
        "contentType": row.content_type,
        "status": to_sendme123(row.status),
        "sentAt": _timestamp(row.sent_at),
        "errorMessage": row.error_message,
        "recipientDetails": national_number(row.recipient, row.country_code),
        "countryCode": row.country_code,
        "messageType": row.channel.upper(),
        "provider": PROVIDER_NAMES.get(provider, provider.title()) if provider else None,
        "campaign": (
            {"id": str(row.campaign_id), "name": row.campaign_name}
            if row.campaign_id is not None
            else None
        ),
        "contact": (
            {"id": str(row.client_id), "name": row.client_name}
            if row.client_id is not None
            else None
        ),
        "organizationId": str(row.organization_id),
        "createdAt": iso_utc(row.created_at),
        "updatedAt": iso_utc(row.updated_at),
        "deletedAt": _timestamp(row.deleted_at),
    }


async def list_messages(request: Request, principal: Principal) -> Response:
    principal.require_scope(ApiKeyScope.READ)
    query = parse_query(request, MessageListQuery, describe_parameter_error)
    message_filter = message_filter_from_query(query)
    async with request.app.state.read_sessionmaker() as session:
        rows, total = await message_service.list_messages_by_offset(
            session,
            organization_id=principal.organization_id,
            message_filter=message_filter,
            page=OffsetPage(page=query.page, limit=query.limit),
        )
    total_pages = math.ceil(total / query.limit)
    # MessageList's shape (see message_item), without a model per row.
    return raw_json_response(
        {
            "data": [message_item(row) for row in rows],
            "meta": {
                "totalRecords": total,
                "totalPages": total_pages,
                "currentPage": query.page,
                "limit": query.limit,
                "hasNextPage": query.page < total_pages,
                "hasPreviousPage": query.page > 1,
            },
        },
        status_code=200,
    )


# --- POST /api/messages/sms/tags ------------------------------------------------------


class SmsTagsMessagePayload(ApiModel):
    """The body of ``POST /api/messages/sms/tags`` (seed 001)."""

    message: str = Field(min_length=1, description="Cuerpo del texto (hasta 10 segmentos)")
    tag_ids: list[uuid.UUID] = Field(min_length=1, description="UUID de las etiquetas")
    type: Literal["SMS"] = Field("SMS", description="Tipo de mensaje (por defecto SMS)")
    country: str | None = Field(
        None, pattern="^[A-Za-z]{2}$", description="Código ISO 3166-1 alpha-2"
    )


class EnqueuedMessage(ApiModel):
    id: str = Field(description="UUID del mensaje persistido")
    recipient: str = Field(description="Número normalizado (E.164)")


class MessageEnqueueResultDto(ApiModel):
    queue_id: str = Field(description='Identificador del lote; "" cuando no se encoló nada')
    channel: Literal["sms"]
    messages: list[EnqueuedMessage]


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return isinstance(value, str)


def validate_sms_tags_body(body: Any) -> tuple[str, list[str], str | None]:
    """class-validator's checks and messages, all of them at once, as NestJS answers."""
    if not isinstance(body, dict):
        raise ApiError(
            400, ["message must be a string", "tagIds must be an array", "body must be an object"]
        )
    errors: list[str] = []
    message = body.get("message")
    if not isinstance(message, str):
        errors.append("message must be a string")
    elif not message.strip():
        errors.append("message should not be empty")
    tag_ids = body.get("tagIds")
    if not isinstance(tag_ids, list):
        errors.append("tagIds must be an array")
    elif not tag_ids:
        errors.append("tagIds should not be empty")
    elif not all(_is_uuid(tag_id) for tag_id in tag_ids):
        errors.append("each value in tagIds must be a UUID")
    message_type = body.get("type")
    if message_type is not None and (
        not isinstance(message_type, str) or message_type.upper() != "SMS"
    ):
        errors.append("type must be one of the following values: SMS")
    country = body.get("country")
    if country is not None and (
        not isinstance(country, str) or not re.fullmatch(r"[A-Za-z]{2}", country)
    ):
        errors.append("country must be a valid ISO31661 Alpha2 code")
    if errors:
        raise ApiError(400, errors)
    return message, tag_ids, country  # type: ignore[return-value]


async def send_sms_by_tags(request: Request, principal: Principal) -> Response:
    # NestJS runs guards (auth, terms) before validation pipes: 403 before 400.
    principal.require_scope(ApiKeyScope.SEND)
    principal.require_terms()
    message, tag_ids, country = validate_sms_tags_body(await read_json_body(request))
    try:
        async with transaction(
            request.app.state.sessionmaker, redis=request.app.state.redis
        ) as session:
            result = await messaging_service.send_sms_by_tags(
                session,
                organization_id=principal.organization_id,
                message=message,
                tag_ids=tag_ids,
                country=country,
                author_member_id=principal.member_id,
                settings=request.app.state.settings,
            )
    except messaging_service.UnknownTags as error:
        raise ApiError(
            400,
            [f"each value in tagIds must be a tag of the organization: {', '.join(error.tag_ids)}"],
        ) from None
    return json_response(
        MessageEnqueueResultDto(
            queue_id=result.queue_id,
            channel="sms",
            messages=[EnqueuedMessage(id=m.id, recipient=m.recipient) for m in result.messages],
        ),
        status_code=201 if result.enqueued_anything else 200,
    )


OPERATIONS = [
    Operation(
        method="GET",
        path="/api/messages",
        handler=list_messages,
        summary="Listar mensajes",
        tag="sendme123",
        description=__doc__ or "",
        query=MessageListQuery,
        responses={200: (MessageList, "Página de mensajes con su bloque meta")},
    ),
    Operation(
        method="POST",
        path="/api/messages/sms/tags",
        handler=send_sms_by_tags,
        summary="Enviar SMS por etiquetas",
        tag="sendme123",
        description=(
            "Encola un SMS para cada contacto con alguna de las etiquetas (una vez por "
            'número, números inválidos omitidos). 201 con el lote; 200 con queueId "" y '
            "messages [] cuando no queda ningún destinatario; 402 sin saldo suficiente "
            "(nada se encola); 403 si el miembro no aceptó los términos vigentes."
        ),
        body=SmsTagsMessagePayload,
        dialect=NEST,
        responses={
            201: (MessageEnqueueResultDto, "Mensajes encolados"),
            200: (MessageEnqueueResultDto, "Sin destinatarios válidos"),
            402: (NestInsufficientCreditsError, "Créditos insuficientes; nada encolado"),
            403: (NestError, "Términos no aceptados o API key sin permiso de envío"),
        },
    ),
]
