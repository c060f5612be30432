"""Coordinalo's communication routes (seed 000) under ``/api/v1``.

Ids are our UUIDs. Statuses are Coordinalo's (pending, sent, delivered, read,
failed, bounced; :mod:`mensajero.services.status_vocabulary`), in answers and
in the ``status`` filter. Optional keys that have no value are left out, as
in the seed's examples (a bounced e-mail has no ``deliveredAt``).

The seed gives no error bodies for these routes; they answer with the shapes
of sendme123's seed: 400 ``{"error": "Parámetros inválidos", "details": ...}``,
401 ``{"error": "No autorizado", "message": "API key inválida o faltante"}``,
403/404 ``{"error": ..., "message": ...}``. An id of another organization is
404, like an id that does not exist.

``from``/``to`` take an ISO 8601 instant or a calendar day (YYYY-MM-DD, in the
organization's time zone; ``to`` includes the whole day); both are inclusive.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, WithJsonSchema
from starlette.requests import Request
from starlette.responses import Response

from mensajero.db import transaction
from mensajero.models import ApiKeyScope, Channel, CommunicationType
from mensajero.rest.common import (
    ApiError,
    ApiModel,
    CoordinaloTimestamp,
    LegacyInsufficientCreditsError,
    MessageError,
    Operation,
    json_response,
    parse_query,
    read_json_body,
)
from mensajero.services import communication as communication_service
from mensajero.services import communication_config as config_service
from mensajero.services import messaging as messaging_service
from mensajero.services import report as report_service
from mensajero.services.auth import Principal
from mensajero.services.communication import LogView
from mensajero.services.errors import NotFound
from mensajero.services.listing import LogFilter, OffsetPage
from mensajero.services.status_vocabulary import (
    COORDINALO_STATUSES,
    from_coordinalo,
    to_coordinalo,
)

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
# OFFSET pages beyond this are refused rather than scanned (and overflow SQLite's integers).
MAX_PAGE = 1_000_000
TYPES = tuple(t.value for t in CommunicationType)
CHANNELS = tuple(c.value for c in Channel)


# --- parameters ----------------------------------------------------------------------


def _blank_is_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _instant_or_day(value: Any) -> Any:
    """``YYYY-MM-DD`` -> a date; an ISO 8601 instant -> an aware datetime (naive = UTC)."""
    if not isinstance(value, str) or not value.strip():
        return _blank_is_none(value)
    text = value.strip()
    if len(text) == 10:
        return date.fromisoformat(text)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


Blank = BeforeValidator(_blank_is_none)
Lower = BeforeValidator(_lower)
InstantOrDay = Annotated[
    Any,
    BeforeValidator(_instant_or_day),
    WithJsonSchema({"type": "string", "description": "ISO 8601: YYYY-MM-DD o fecha y hora"}),
]


class LogListQuery(ApiModel):
    """Query parameters of the email-logs and whatsapp-logs routes."""

    from_: InstantOrDay = Field(None, alias="from", description="Fecha inicio (ISO 8601)")
    to: InstantOrDay = Field(None, description="Fecha fin (ISO 8601), inclusive")
    client_id: Annotated[uuid.UUID | None, Blank] = Field(None, description="Filtrar por cliente")
    type: Annotated[
        Literal[
            "session_reminder",
            "payment_reminder",
            "campaign",
            "manual",
            "confirmation",
            "reactivation",
            "receipt",
        ]
        | None,
        Lower,
        Blank,
    ] = Field(None, description="Tipo de comunicación")
    status: Annotated[
        Literal["pending", "sent", "delivered", "read", "failed", "bounced"] | None, Lower, Blank
    ] = Field(None, description="Estado del envío")
    campaign_id: Annotated[uuid.UUID | None, Blank] = Field(None, description="Filtrar por campaña")
    page: Annotated[int, Blank] = Field(1, ge=1, le=MAX_PAGE, description="Página (default: 1)")
    limit: Annotated[int, Blank] = Field(
        DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Resultados por página (default: 20)"
    )


class StatsQuery(ApiModel):
    from_: Annotated[date | None, Blank] = Field(
        None, alias="from", description="Fecha inicio (YYYY-MM-DD); por defecto hace 30 días"
    )
    to: Annotated[date | None, Blank] = Field(
        None, description="Fecha fin (YYYY-MM-DD), inclusive; por defecto hoy"
    )
    group_by: Annotated[Literal["day", "week", "month"], Lower, Blank] = Field(
        "day", description="day, week, month"
    )


_PARAMETER_ERRORS = {
    "from": "debe ser una fecha ISO 8601 (YYYY-MM-DD o fecha y hora)",
    "to": "debe ser una fecha ISO 8601 (YYYY-MM-DD o fecha y hora)",
    "clientId": "debe ser un UUID válido",
    "campaignId": "debe ser un UUID válido",
    "type": f"debe ser uno de: {', '.join(TYPES)}",
    "status": f"debe ser uno de: {', '.join(COORDINALO_STATUSES)}",
    "page": "debe ser un número entero mayor o igual a 1",
    "limit": f"debe estar entre 1 y {MAX_LIMIT}",
    "groupBy": "debe ser uno de: day, week, month",
}


def describe_parameter_error(name: str, error_type: str) -> str:
    if name == "page" and error_type == "less_than_equal":
        return f"El parámetro 'page' debe ser como máximo {MAX_PAGE}"
    return f"El parámetro '{name}' {_PARAMETER_ERRORS.get(name, 'no es válido')}"


def _path_uuid(request: Request, name: str) -> uuid.UUID:
    """A path id that is not a UUID names nothing of the caller's: 404."""
    try:
        return uuid.UUID(request.path_params[name])
    except ValueError:
        raise NotFound(f"{name} not found") from None


# --- answers -------------------------------------------------------------------------


class ClientRef(ApiModel):
    id: str
    name: str
    email: str | None = None
    phone: str | None = None


class Content(ApiModel):
    subject: str | None = None
    body: str
    template_id: str | None = None
    html: str | None = None


class LogMetadata(ApiModel):
    """Business metadata of the message (sessionId, ventaId, ...) and the provider's ids."""

    model_config = ConfigDict(extra="allow")

    session_id: str | None = None
    venta_id: str | None = None
    campaign_id: str | None = None
    provider_id: str | None = Field(None, description="Profesional que atiende (Coordinalo)")
    external_id: str | None = Field(None, description="Id del envío en Resend/Evolution")
    instance_name: str | None = Field(None, description="Instancia de Evolution (WhatsApp)")
    session: dict[str, Any] | None = Field(None, description="Sólo en el detalle")
    provider: dict[str, Any] | None = Field(None, description="Sólo en el detalle")


class LogError(ApiModel):
    code: str | None = None
    message: str | None = None
    timestamp: CoordinaloTimestamp | None = None


class LogResponse(ApiModel):
    text: str
    received_at: CoordinaloTimestamp | None = None


CoordinaloStatus = Literal["pending", "sent", "delivered", "read", "failed", "bounced"]


class CommunicationLogItem(ApiModel):
    id: str
    client_id: str | None = None
    client: ClientRef | None = None
    channel: str
    type: str
    status: CoordinaloStatus
    content: Content
    metadata: LogMetadata
    sent_at: CoordinaloTimestamp | None = None
    delivered_at: CoordinaloTimestamp | None = None
    read_at: CoordinaloTimestamp | None = None
    opened_at: CoordinaloTimestamp | None = None
    clicked_at: CoordinaloTimestamp | None = None
    error: LogError | None = None
    response: LogResponse | None = None


class TimelineEntry(ApiModel):
    event: str
    timestamp: CoordinaloTimestamp
    metadata: dict[str, Any] | None = None


class CommunicationLogDetail(CommunicationLogItem):
    timeline: list[TimelineEntry]
    created_at: CoordinaloTimestamp


class Pagination(ApiModel):
    total: int
    page: int
    limit: int
    total_pages: int


class EmailLogSummary(ApiModel):
    total: int
    delivered: int
    opened: int
    bounced: int
    failed: int


class WhatsAppLogSummary(ApiModel):
    total: int
    delivered: int
    read: int
    failed: int


class EmailLogList(ApiModel):
    data: list[CommunicationLogItem]
    pagination: Pagination
    summary: EmailLogSummary


class WhatsAppLogList(ApiModel):
    data: list[CommunicationLogItem]
    pagination: Pagination
    summary: WhatsAppLogSummary


_ID_KEYS = ("sessionId", "ventaId", "campaignId", "providerId", "externalId", "instanceName")


def _metadata(view: LogView | communication_service.LogDetail, *, detail: bool) -> LogMetadata:
    values: dict[str, Any] = dict(view.message.metadata_ or {})
    if view.log.campaign_id is not None:
        values["campaignId"] = str(view.log.campaign_id)
    if view.log.external_id:
        values["externalId"] = view.log.external_id
    instance = (view.log.provider_metadata or {}).get("instanceName")
    if instance:
        values["instanceName"] = instance
    for key in _ID_KEYS:  # ids are strings on the wire, whatever was stored
        if values.get(key) is not None and not isinstance(values[key], str):
            values[key] = str(values[key])
    for key in ("session", "provider"):
        if not detail or not isinstance(values.get(key), dict):
            values.pop(key, None)
    return LogMetadata.model_validate(values)


def _client_ref(view: LogView | communication_service.LogDetail, *, email: bool, phone: bool):
    client = view.client
    if client is None:
        return None
    return ClientRef(
        id=str(client.id),
        name=client.name,
        email=client.email if email else None,
        phone=(client.phone_e164 or client.phone) if phone else None,
    )


def _item_fields(view: LogView | communication_service.LogDetail, *, detail: bool) -> dict:
    log, message = view.log, view.message
    channel = log.channel
    error = None
    if log.error_code is not None or log.error_message is not None:
        error = LogError(code=log.error_code, message=log.error_message, timestamp=log.failed_at)
    response = None
    if log.response_text is not None:
        response = LogResponse(text=log.response_text, received_at=log.response_received_at)
    return {
        "id": str(log.id),
        "client_id": str(log.client_id) if log.client_id else None,
        "client": _client_ref(
            view,
            email=detail or channel == Channel.EMAIL,
            phone=detail or channel != Channel.EMAIL,
        ),
        "channel": channel,
        "type": log.communication_type,
        "status": to_coordinalo(log.status),
        "content": Content(
            subject=message.subject,
            body=log.body_override or message.body,
            template_id=message.template_id,
            html=message.html if detail else None,
        ),
        "metadata": _metadata(view, detail=detail),
        "sent_at": log.sent_at,
        "delivered_at": log.delivered_at,
        "read_at": log.read_at,
        "opened_at": log.opened_at,
        "clicked_at": log.clicked_at,
        "error": error,
        "response": response,
    }


def log_item(view: LogView) -> CommunicationLogItem:
    return CommunicationLogItem(**_item_fields(view, detail=False))


def log_detail(detail: communication_service.LogDetail) -> CommunicationLogDetail:
    return CommunicationLogDetail(
        **_item_fields(detail, detail=True),
        timeline=[
            TimelineEntry(event=e.event, timestamp=e.occurred_at, metadata=e.metadata_ or None)
            for e in detail.timeline
        ],
        created_at=detail.log.created_at,
    )


# --- log lists -----------------------------------------------------------------------


async def _log_page(request: Request, principal: Principal, channel: Channel) -> tuple:
    principal.require_scope(ApiKeyScope.READ)
    query = parse_query(request, LogListQuery, describe_parameter_error)
    log_filter = LogFilter(
        client_ids=(query.client_id,) if query.client_id else None,
        communication_types=(query.type,) if query.type else None,
        statuses=from_coordinalo(query.status) if query.status else None,
        campaign_ids=(query.campaign_id,) if query.campaign_id else None,
        channels=(channel.value,),
    )
    async with request.app.state.sessionmaker() as session:
        views, summary = await communication_service.list_log_views_by_offset(
            session,
            organization_id=principal.organization_id,
            log_filter=log_filter,
            page=OffsetPage(page=query.page, limit=query.limit),
            start=query.from_,
            end=query.to,
        )
    pagination = Pagination(
        total=summary.total,
        page=query.page,
        limit=query.limit,
        total_pages=math.ceil(summary.total / query.limit),
    )
    return [log_item(view) for view in views], pagination, summary


async def list_email_logs(request: Request, principal: Principal) -> Response:
    data, pagination, summary = await _log_page(request, principal, Channel.EMAIL)
    body = EmailLogList(
        data=data,
        pagination=pagination,
        summary=EmailLogSummary(
            total=summary.total,
            delivered=summary.delivered,
            opened=summary.opened,
            bounced=summary.bounced,
            failed=summary.failed,
        ),
    )
    return json_response(body, exclude_none=True)


async def list_whatsapp_logs(request: Request, principal: Principal) -> Response:
    data, pagination, summary = await _log_page(request, principal, Channel.WHATSAPP)
    body = WhatsAppLogList(
        data=data,
        pagination=pagination,
        summary=WhatsAppLogSummary(
            total=summary.total,
            delivered=summary.delivered,
            read=summary.read,
            failed=summary.failed,
        ),
    )
    return json_response(body, exclude_none=True)


async def get_communication_log(request: Request, principal: Principal) -> Response:
    principal.require_scope(ApiKeyScope.READ)
    log_id = _path_uuid(request, "id")
    async with request.app.state.sessionmaker() as session:
        detail = await communication_service.get_log_detail(
            session, organization_id=principal.organization_id, log_id=log_id
        )
    return json_response(log_detail(detail), exclude_none=True)


# --- client history ------------------------------------------------------------------


class HistorySummary(ApiModel):
    total_communications: int
    by_channel: dict[str, int]
    by_type: dict[str, int]
    delivery_rate: float = Field(description="delivered / sent, en %")
    open_rate: float = Field(description="opened / delivered, en %")


class RecentCommunication(ApiModel):
    id: str
    channel: str
    type: str
    status: CoordinaloStatus
    subject: str | None = None
    sent_at: CoordinaloTimestamp | None = None


class ClientCommunicationHistory(ApiModel):
    client_id: str
    client: ClientRef
    summary: HistorySummary
    recent: list[RecentCommunication]


async def get_client_communication_history(request: Request, principal: Principal) -> Response:
    principal.require_scope(ApiKeyScope.READ)
    client_id = _path_uuid(request, "clientId")
    async with request.app.state.sessionmaker() as session:
        history = await report_service.client_communication_history(
            session, organization_id=principal.organization_id, client_id=client_id
        )
    client = history.client
    return json_response(
        ClientCommunicationHistory(
            client_id=str(client.id),
            client=ClientRef(
                id=str(client.id),
                name=client.name,
                email=client.email,
                phone=client.phone_e164 or client.phone,
            ),
            summary=HistorySummary(
                total_communications=history.total,
                by_channel=history.by_channel,
                by_type=history.by_type,
                delivery_rate=history.rates.delivery,
                open_rate=history.rates.open,
            ),
            recent=[
                RecentCommunication(
                    id=str(item.log.id),
                    channel=item.log.channel,
                    type=item.log.communication_type,
                    status=to_coordinalo(item.log.status),  # type: ignore[arg-type]
                    subject=item.message.subject if item.message else None,
                    sent_at=item.log.sent_at,
                )
                for item in history.recent
            ],
        ),
        exclude_none=True,
    )


# --- configuration -------------------------------------------------------------------


class EmailConfig(ApiModel):
    enabled: bool
    provider: str
    from_email: str | None = None
    from_name: str | None = None
    reply_to: str | None = None
    status: str | None = None
    last_check: str | None = None


class WhatsAppConfig(ApiModel):
    enabled: bool
    provider: str
    instance_name: str | None = None
    phone_number: str | None = None
    status: str | None = None
    last_check: str | None = None


class QuietHours(ApiModel):
    enabled: bool
    start: str
    end: str
    timezone: str | None = None


class Preferences(ApiModel):
    default_channel: str
    fallback_enabled: bool
    fallback_channel: str
    quiet_hours: QuietHours


class CommunicationConfig(ApiModel):
    email: EmailConfig
    whatsapp: WhatsAppConfig
    preferences: Preferences


class EmailConfigChanges(ApiModel):
    enabled: bool | None = None
    provider: Literal["resend", "sandbox"] | None = None
    from_email: str | None = None
    from_name: str | None = None
    reply_to: str | None = None


class WhatsAppConfigChanges(ApiModel):
    enabled: bool | None = None
    provider: Literal["evolution", "sandbox"] | None = None
    instance_name: str | None = None
    phone_number: str | None = None


class QuietHoursChanges(ApiModel):
    enabled: bool | None = None
    start: str | None = Field(None, pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    end: str | None = Field(None, pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    timezone: str | None = None


class PreferencesChanges(ApiModel):
    default_channel: Literal["sms", "whatsapp", "email"] | None = None
    fallback_enabled: bool | None = None
    fallback_channel: Literal["sms", "whatsapp", "email"] | None = None
    quiet_hours: QuietHoursChanges | None = None


class CommunicationConfigChanges(ApiModel):
    """A partial document: only the keys given change (nested objects merge too)."""

    email: EmailConfigChanges | None = None
    whatsapp: WhatsAppConfigChanges | None = None
    preferences: PreferencesChanges | None = None


def _config(document: dict[str, Any]) -> CommunicationConfig:
    return CommunicationConfig.model_validate(document)


async def get_communication_config(request: Request, principal: Principal) -> Response:
    principal.require_scope(ApiKeyScope.READ)
    async with request.app.state.sessionmaker() as session:
        document = await config_service.get_config(
            session, organization_id=principal.organization_id
        )
    return json_response(_config(document))


async def update_communication_config(request: Request, principal: Principal) -> Response:
    principal.require_scope(ApiKeyScope.ADMIN)
    changes = await read_json_body(request)
    if not isinstance(changes, dict):
        raise ApiError(400, ["El cuerpo debe ser un objeto JSON"])
    async with transaction(request.app.state.sessionmaker) as session:
        document = await config_service.update_config(
            session, organization_id=principal.organization_id, changes=changes
        )
    return json_response(_config(document))


# --- resend --------------------------------------------------------------------------


class ResendBody(ApiModel):
    channel: Literal["email", "whatsapp", "sms"] | None = Field(
        None, description="Otro canal (por defecto, el del envío original)"
    )
    custom_message: str | None = Field(None, description="Texto alternativo para este envío")


class ResendResult(ApiModel):
    original_id: str
    new_id: str
    channel: str
    status: CoordinaloStatus
    sent_at: CoordinaloTimestamp


def _resend_options(body: Any) -> tuple[Channel | None, str | None]:
    if body is None:
        return None, None
    if not isinstance(body, dict):
        raise ApiError(400, ["El cuerpo debe ser un objeto JSON"])
    channel = body.get("channel")
    if channel is not None and (not isinstance(channel, str) or channel.lower() not in CHANNELS):
        raise ApiError(400, [f"El campo 'channel' debe ser uno de: {', '.join(CHANNELS)}"])
    custom_message = body.get("customMessage")
    if custom_message is not None and not isinstance(custom_message, str):
        raise ApiError(400, ["El campo 'customMessage' debe ser un texto"])
    return (Channel(channel.lower()) if channel else None), custom_message


async def resend_communication(request: Request, principal: Principal) -> Response:
    principal.require_scope(ApiKeyScope.SEND)
    principal.require_terms()
    log_id = _path_uuid(request, "id")
    channel, custom_message = _resend_options(await read_json_body(request, optional=True))
    async with transaction(
        request.app.state.sessionmaker, redis=request.app.state.redis
    ) as session:
        result = await messaging_service.resend(
            session,
            organization_id=principal.organization_id,
            log_id=log_id,
            channel=channel,
            custom_message=custom_message,
            settings=request.app.state.settings,
        )
    return json_response(
        ResendResult(
            original_id=str(result.original_id),
            new_id=str(result.new_id),
            channel=result.channel.value,
            status=to_coordinalo(result.status),  # type: ignore[arg-type]
            sent_at=result.sent_at,
        )
    )


# --- stats ---------------------------------------------------------------------------


class Period(ApiModel):
    from_: str = Field(alias="from", description="YYYY-MM-DD")
    to: str = Field(description="YYYY-MM-DD")


class Totals(ApiModel):
    sent: int
    delivered: int
    opened: int
    clicked: int
    bounced: int
    failed: int


class Rates(ApiModel):
    delivery_rate: float = Field(description="delivered / sent, en %")
    open_rate: float = Field(description="opened / delivered, en %")
    click_rate: float = Field(description="clicked / delivered, en %")
    bounce_rate: float = Field(description="bounced / sent, en %")


class EmailStats(ApiModel):
    sent: int
    delivered: int
    opened: int
    clicked: int
    bounced: int
    failed: int


class WhatsAppStats(ApiModel):
    sent: int
    delivered: int
    read: int
    failed: int


class SmsStats(ApiModel):
    sent: int
    delivered: int
    failed: int


class ChannelStats(ApiModel):
    email: EmailStats
    whatsapp: WhatsAppStats
    sms: SmsStats | None = Field(None, description="Sólo si hubo SMS en el período")


class TypeStats(ApiModel):
    sent: int
    delivered: int


class PeriodStats(ApiModel):
    date: str = Field(description="Primer día del período (día, lunes de la semana, día 1)")
    sent: int
    delivered: int
    opened: int


class CommunicationStatsOut(ApiModel):
    period: Period
    totals: Totals
    rates: Rates
    by_channel: ChannelStats
    by_type: dict[str, TypeStats]
    daily: list[PeriodStats]


def _counts(stats: report_service.CommunicationStats, channel: Channel):
    from mensajero.repositories.report import AttemptCounts

    return stats.by_channel.get(channel.value, AttemptCounts())


async def get_communication_stats(request: Request, principal: Principal) -> Response:
    principal.require_scope(ApiKeyScope.READ)
    query = parse_query(request, StatsQuery, describe_parameter_error)
    async with request.app.state.sessionmaker() as session:
        stats = await report_service.communication_stats(
            session,
            organization_id=principal.organization_id,
            start=query.from_,
            end=query.to,
            group_by=query.group_by,
        )
    totals = stats.totals
    email = _counts(stats, Channel.EMAIL)
    whatsapp = _counts(stats, Channel.WHATSAPP)
    sms = stats.by_channel.get(Channel.SMS.value)
    body = CommunicationStatsOut(
        period=Period.model_validate(
            {"from": stats.start.isoformat(), "to": stats.end.isoformat()}
        ),
        totals=Totals(
            sent=totals.sent,
            delivered=totals.delivered,
            opened=totals.opened,
            clicked=totals.clicked,
            bounced=totals.bounced,
            failed=totals.failed,
        ),
        rates=Rates(
            delivery_rate=stats.rates.delivery,
            open_rate=stats.rates.open,
            click_rate=stats.rates.click,
            bounce_rate=stats.rates.bounce,
        ),
        by_channel=ChannelStats(
            email=EmailStats(
                sent=email.sent,
                delivered=email.delivered,
                opened=email.opened,
                clicked=email.clicked,
                bounced=email.bounced,
                failed=email.failed,
            ),
            whatsapp=WhatsAppStats(
                sent=whatsapp.sent,
                delivered=whatsapp.delivered,
                read=whatsapp.read,
                failed=whatsapp.failed,
            ),
            sms=(
                SmsStats(sent=sms.sent, delivered=sms.delivered, failed=sms.failed) if sms else None
            ),
        ),
        by_type={
            kind: TypeStats(sent=counts.sent, delivered=counts.delivered)
            for kind, counts in sorted(stats.by_type.items(), key=lambda item: -item[1].sent)
        },
        daily=[
            PeriodStats(
                date=start.isoformat(),
                sent=counts.sent,
                delivered=counts.delivered,
                opened=counts.opened,
            )
            for start, counts in stats.periods
        ],
    )
    return json_response(body, exclude_none=True)


_LOG_NOT_FOUND = "Comunicación no encontrada"
_LOG_QUERY_DOC = (
    "Filtros from, to (ISO 8601: día YYYY-MM-DD en la zona horaria de la organización o "
    "instante; ambos inclusive), clientId, type, status (pending, sent, delivered, read, "
    "failed, bounced), campaignId; page (1) y limit (20, máximo 100)."
)

OPERATIONS = [
    Operation(
        method="GET",
        path="/api/v1/communication/email-logs",
        handler=list_email_logs,
        summary="Listar logs de email",
        tag="coordinalo",
        description=_LOG_QUERY_DOC,
        query=LogListQuery,
        responses={200: (EmailLogList, "Logs de email con paginación y resumen")},
    ),
    Operation(
        method="GET",
        path="/api/v1/communication/whatsapp-logs",
        handler=list_whatsapp_logs,
        summary="Listar logs de WhatsApp",
        tag="coordinalo",
        description=_LOG_QUERY_DOC,
        query=LogListQuery,
        responses={200: (WhatsAppLogList, "Logs de WhatsApp con paginación y resumen")},
    ),
    Operation(
        method="GET",
        path="/api/v1/communication/logs/{id}",
        handler=get_communication_log,
        summary="Detalle de comunicación",
        tag="coordinalo",
        path_parameters={"id": "Id (UUID) del log de comunicación"},
        not_found=_LOG_NOT_FOUND,
        responses={
            200: (CommunicationLogDetail, "El envío con contenido, metadata y timeline"),
            404: (MessageError, "No existe o es de otra organización"),
        },
    ),
    Operation(
        method="GET",
        path="/api/v1/clients/{clientId}/communication-history",
        handler=get_client_communication_history,
        summary="Historial por cliente",
        tag="coordinalo",
        path_parameters={"clientId": "Id (UUID) del cliente"},
        not_found="Cliente no encontrado",
        responses={
            200: (ClientCommunicationHistory, "Resumen y comunicaciones recientes"),
            404: (MessageError, "No existe o es de otra organización"),
        },
    ),
    Operation(
        method="GET",
        path="/api/v1/communication/config",
        handler=get_communication_config,
        summary="Obtener configuración",
        tag="coordinalo",
        responses={200: (CommunicationConfig, "Configuración de canales")},
    ),
    Operation(
        method="PUT",
        path="/api/v1/communication/config",
        handler=update_communication_config,
        summary="Actualizar configuración",
        tag="coordinalo",
        description="Mezcla parcial: sólo cambian las claves enviadas. Requiere scope admin.",
        body=CommunicationConfigChanges,
        responses={
            200: (CommunicationConfig, "La configuración completa tras el cambio"),
            403: (MessageError, "La API key no tiene scope admin"),
        },
    ),
    Operation(
        method="POST",
        path="/api/v1/communication/logs/{id}/resend",
        handler=resend_communication,
        summary="Reenviar comunicación",
        tag="coordinalo",
        description="Un nuevo intento del mismo mensaje, en el mismo canal u otro. Cobra créditos.",
        path_parameters={"id": "Id (UUID) del log de comunicación"},
        body=ResendBody,
        body_required=False,
        not_found=_LOG_NOT_FOUND,
        responses={
            200: (ResendResult, "El nuevo intento"),
            402: (LegacyInsufficientCreditsError, "Créditos insuficientes"),
            403: (MessageError, "Términos no aceptados o API key sin permiso de envío"),
            404: (MessageError, "No existe o es de otra organización"),
        },
    ),
    Operation(
        method="GET",
        path="/api/v1/communication/stats",
        handler=get_communication_stats,
        summary="Estadísticas de comunicación",
        tag="coordinalo",
        description=(
            "Intentos salientes del período (días de la zona horaria de la organización, "
            "ambos inclusive; por defecto los últimos 30). Tasas en % con dos decimales: "
            "delivery = delivered/sent, open = opened/delivered, click = clicked/delivered, "
            "bounce = bounced/sent. `daily` tiene un elemento por período de groupBy."
        ),
        query=StatsQuery,
        responses={200: (CommunicationStatsOut, "Totales, tasas y desgloses")},
    ),
]
