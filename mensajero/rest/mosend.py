"""mosend's reports (seed 003) under ``/organizations/:orgId/reports``.

mosend is a NestJS service: answers are ``{"data": ..., "timestamp": ...}``
and errors NestJS's ``{statusCode, message, error}``. A path ``orgId`` that
is not the caller's organization (or not a UUID) answers 404 ``Organization
not found``, never another organization's figures.

The seed shows only placeholder ``data``; the shapes here are ours and are
documented in ``/openapi.json``. As in the seed, ``summary``, ``billing`` and
one customer's detail are objects, ``messaging`` and ``customers`` are lists:
``messaging`` has one item for all channels (``channel: "all"``, with the
daily series) followed by one per channel; ``customers`` is one page, each
item with its ``cursor``, and the ``X-Next-Cursor`` header carries the cursor
of the next page when there is one. Durations are seconds; rates are
percentages with two decimals; ``since``/``until`` take ISO 8601 instants or
calendar days of the organization's time zone (both inclusive).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response

from mensajero.models import ApiKeyScope
from mensajero.rest.common import (
    NEST,
    ApiModel,
    NestError,
    Operation,
    Timestamp,
    json_response,
    parse_query,
)
from mensajero.rest.coordinalo import Blank, InstantOrDay
from mensajero.services import report as report_service
from mensajero.services.auth import Principal
from mensajero.services.errors import NotFound
from mensajero.services.report import (
    MAX_CUSTOMERS_LIMIT,
    AttemptCounts,
    DurationStats,
)

ORGANIZATION_NOT_FOUND = "Organization not found"
CONTACT_NOT_FOUND = "Contact not found"


# --- shapes --------------------------------------------------------------------------


class ConversationTimes(ApiModel):
    responded: int = Field(description="Conversaciones con primera respuesta")
    avg_first_response_seconds: float | None
    median_first_response_seconds: float | None
    resolved: int
    avg_resolution_seconds: float | None
    median_resolution_seconds: float | None

    @classmethod
    def of(cls, times: DurationStats) -> ConversationTimes:
        return cls(**report_service.fields_of(times))


class ConversationMetrics(ApiModel):
    total: int
    open: int
    pending: int
    resolved: int
    unassigned: int
    times: ConversationTimes

    @classmethod
    def of(cls, summary: report_service.ConversationSummary) -> ConversationMetrics:
        return cls(**report_service.fields_of(summary, times=ConversationTimes.of(summary.times)))


class AttemptMetrics(ApiModel):
    """Outbound attempts by what they reached, and the rates over them."""

    total: int
    sent: int
    delivered: int
    opened: int
    clicked: int
    read: int
    bounced: int
    failed: int
    responded: int
    delivery_rate: float = Field(description="delivered / sent, %")
    open_rate: float = Field(description="opened / delivered, %")
    click_rate: float = Field(description="clicked / delivered, %")
    bounce_rate: float = Field(description="bounced / sent, %")
    read_rate: float = Field(description="read / delivered, %")
    response_rate: float = Field(description="responded / delivered, %")

    @classmethod
    def of(cls, counts: AttemptCounts) -> AttemptMetrics:
        return cls(**report_service.attempt_metrics(counts))


class AgentMetrics(ApiModel):
    member_id: str | None = Field(description="null: conversaciones sin asignar")
    name: str | None
    email: str | None
    conversations: int
    open: int
    resolved: int
    times: ConversationTimes


class TagMetrics(ApiModel):
    tag_id: str
    name: str
    color: str | None
    clients: int
    messages: int = Field(description="Mensajes a sus clientes en los últimos 30 días")
    conversations: int = Field(description="Conversaciones abiertas en los últimos 30 días")


class MessageVolume(ApiModel):
    total: int
    outbound: int
    inbound: int


class SummaryData(ApiModel):
    organization_id: str
    name: str
    timezone: str
    balance: int = Field(description="Créditos disponibles")
    clients: int
    messages: MessageVolume = Field(description="Todos los mensajes, desde siempre")
    period_start: Timestamp = Field(description="Inicio de los últimos 30 días locales")
    last_30_days: AttemptMetrics = Field(alias="last30Days")
    conversations: ConversationMetrics
    agents: list[AgentMetrics]
    tags: list[TagMetrics]


class SummaryResponse(ApiModel):
    data: SummaryData
    timestamp: Timestamp


class DayVolume(ApiModel):
    date: str = Field(description="Día local YYYY-MM-DD")
    outbound: int
    inbound: int
    delivered: int
    failed: int = Field(description="Fallidos y rebotados")


class MessagingChannel(ApiModel):
    channel: str = Field(description="all, sms, whatsapp o email")
    since: Timestamp
    outbound: AttemptMetrics
    inbound: int
    by_status: dict[str, int] = Field(description="Mensajes por estado actual")
    response_times: ConversationTimes | None = Field(
        description="Conversaciones abiertas desde `since`"
    )
    conversations: int
    daily: list[DayVolume] | None = Field(description="Sólo en el elemento `all`")


class MessagingResponse(ApiModel):
    data: list[MessagingChannel]
    timestamp: Timestamp


class ChannelConsumptionOut(ApiModel):
    channel: str
    debited: int
    refunded: int
    net: int
    messages: int


class MonthBillingOut(ApiModel):
    month: str = Field(description="Mes local YYYY-MM")
    debited: int
    refunded: int
    topped_up: int
    net_consumption: int
    messages: int


class TopUp(ApiModel):
    id: str
    amount: int
    balance_after: int
    description: str
    created_at: Timestamp


class BillingData(ApiModel):
    balance: int
    topped_up: int
    debited: int
    refunded: int
    adjusted: int
    consumption_by_channel: list[ChannelConsumptionOut]
    months: list[MonthBillingOut] = Field(description="Últimos 12 meses locales, el actual primero")
    topups: list[TopUp] = Field(description="Últimas 20 recargas")


class BillingResponse(ApiModel):
    data: BillingData
    timestamp: Timestamp


class CustomerItem(ApiModel):
    id: str = Field(description="contactId (UUID del cliente)")
    name: str
    email: str | None
    phone: str | None
    conversations: int
    open: int
    resolved: int
    times: ConversationTimes
    first_contact_at: Timestamp
    last_contact_at: Timestamp
    cursor: str = Field(description="Pásalo como `cursor` para seguir tras este elemento")


class CustomersResponse(ApiModel):
    data: list[CustomerItem]
    timestamp: Timestamp


class TimelineItem(ApiModel):
    at: Timestamp
    type: str = Field(
        description=(
            "message_outbound, message_inbound, conversation_opened, first_response, "
            "conversation_resolved"
        )
    )
    channel: str
    message_id: str | None
    conversation_id: str | None
    status: str | None
    text: str | None
    member_id: str | None


class CustomerMetrics(ApiModel):
    conversations: ConversationMetrics
    by_category: dict[str, int]
    by_outcome: dict[str, int]
    outbound: AttemptMetrics
    inbound: int
    first_contact_at: Timestamp | None
    last_contact_at: Timestamp | None


class CustomerDetailData(ApiModel):
    id: str
    name: str
    email: str | None
    phone: str | None
    country: str | None
    created_at: Timestamp
    metrics: CustomerMetrics
    timeline: list[TimelineItem] = Field(description="Los 50 eventos más recientes")


class CustomerDetailResponse(ApiModel):
    data: CustomerDetailData
    timestamp: Timestamp


class MessagingQuery(ApiModel):
    since: Annotated[InstantOrDay, Blank] = Field(
        None, description="Desde (ISO 8601); por defecto los últimos 30 días"
    )


class CustomersQuery(ApiModel):
    since: Annotated[InstantOrDay, Blank] = Field(None, description="Conversaciones desde")
    until: Annotated[InstantOrDay, Blank] = Field(None, description="Conversaciones hasta")
    category: Annotated[str | None, Blank] = Field(None, max_length=100)
    resolution_outcome: Annotated[str | None, Blank] = Field(None, max_length=100)
    q: Annotated[str | None, Blank] = Field(
        None, max_length=200, description="Busca en nombre, email o teléfono"
    )
    limit: Annotated[int, Blank] = Field(20, ge=1, le=MAX_CUSTOMERS_LIMIT)
    cursor: Annotated[str | None, Blank] = Field(None, max_length=200)


def describe_parameter_error(name: str, error_type: str) -> str:
    if name in ("since", "until"):
        return f"{name} debe ser una fecha ISO 8601 (YYYY-MM-DD o fecha y hora)"
    if name == "limit":
        return f"limit debe estar entre 1 y {MAX_CUSTOMERS_LIMIT}"
    return f"{name} no es válido"


# --- routes --------------------------------------------------------------------------


def _envelope(model: type[ApiModel], data: object) -> Response:
    return json_response(model.model_validate({"data": data, "timestamp": datetime.now(UTC)}))


def _not_found(message: str) -> Response:
    return json_response(
        NestError(status_code=404, message=message, error="Not Found"), status_code=404
    )


def _own_organization(request: Request, principal: Principal) -> bool:
    """The path's orgId is the caller's organization (anything else is 404)."""
    principal.require_scope(ApiKeyScope.READ)
    try:
        return uuid.UUID(request.path_params["orgId"]) == principal.organization_id
    except ValueError:
        return False


def _agent(agent: report_service.AgentStats) -> AgentMetrics:
    return AgentMetrics(
        **report_service.fields_of(
            agent,
            member_id=str(agent.member_id) if agent.member_id else None,
            times=ConversationTimes.of(agent.times),
        )
    )


async def get_summary(request: Request, principal: Principal) -> Response:
    if not _own_organization(request, principal):
        return _not_found(ORGANIZATION_NOT_FOUND)
    async with request.app.state.sessionmaker() as session:
        summary = await report_service.report_summary(
            session, organization_id=principal.organization_id
        )
    data = SummaryData(
        organization_id=str(summary.organization_id),
        name=summary.name,
        timezone=summary.timezone,
        balance=summary.balance,
        clients=summary.clients,
        messages=MessageVolume(
            total=summary.messages_total,
            outbound=summary.messages_outbound,
            inbound=summary.messages_inbound,
        ),
        period_start=summary.period_start,
        last_30_days=AttemptMetrics.of(summary.period),
        conversations=ConversationMetrics.of(summary.conversations),
        agents=[_agent(agent) for agent in summary.agents],
        tags=[
            TagMetrics(**report_service.fields_of(tag, tag_id=str(tag.tag_id)))
            for tag in summary.tags
        ],
    )
    return _envelope(SummaryResponse, data)


async def get_messaging(request: Request, principal: Principal) -> Response:
    if not _own_organization(request, principal):
        return _not_found(ORGANIZATION_NOT_FOUND)
    query = parse_query(request, MessagingQuery, describe_parameter_error)
    async with request.app.state.sessionmaker() as session:
        report = await report_service.messaging_report(
            session, organization_id=principal.organization_id, since=query.since
        )
    items = [
        MessagingChannel(
            channel="all",
            since=report.since,
            outbound=AttemptMetrics.of(report.outbound),
            inbound=report.inbound,
            by_status=report.by_status,
            response_times=ConversationTimes.of(report.conversations.times),
            conversations=report.conversations.total,
            daily=[
                DayVolume(
                    date=day.day.isoformat(),
                    outbound=day.outbound,
                    inbound=day.inbound,
                    delivered=day.delivered,
                    failed=day.failed,
                )
                for day in report.by_day
            ],
        )
    ]
    items += [
        MessagingChannel(
            channel=channel.channel,
            since=report.since,
            outbound=AttemptMetrics.of(channel.outbound),
            inbound=channel.inbound,
            by_status=channel.by_status,
            response_times=ConversationTimes.of(channel.times) if channel.times else None,
            conversations=channel.conversations,
            daily=None,
        )
        for channel in report.by_channel
    ]
    return _envelope(MessagingResponse, items)


async def get_billing(request: Request, principal: Principal) -> Response:
    if not _own_organization(request, principal):
        return _not_found(ORGANIZATION_NOT_FOUND)
    async with request.app.state.sessionmaker() as session:
        billing = await report_service.billing_report(
            session, organization_id=principal.organization_id
        )
    data = BillingData(
        **report_service.fields_of(
            billing,
            consumption_by_channel=[
                ChannelConsumptionOut(**report_service.fields_of(c))
                for c in billing.consumption_by_channel
            ],
            months=[
                MonthBillingOut(**report_service.fields_of(m, month=m.month.strftime("%Y-%m")))
                for m in billing.months
            ],
            topups=[
                TopUp(
                    id=str(t.id),
                    amount=t.amount,
                    balance_after=t.balance_after,
                    description=t.description,
                    created_at=t.created_at,
                )
                for t in billing.topups
            ],
        )
    )
    return _envelope(BillingResponse, data)


async def list_customers(request: Request, principal: Principal) -> Response:
    if not _own_organization(request, principal):
        return _not_found(ORGANIZATION_NOT_FOUND)
    query = parse_query(request, CustomersQuery, describe_parameter_error)
    async with request.app.state.sessionmaker() as session:
        page = await report_service.customers_report(
            session,
            organization_id=principal.organization_id,
            query=report_service.CustomerQuery(
                since=query.since,
                until=query.until,
                category=query.category,
                resolution_outcome=query.resolution_outcome,
                search=query.q,
                limit=query.limit,
                cursor=query.cursor,
            ),
        )
    items = [
        CustomerItem(
            id=str(c.client_id),
            name=c.name,
            email=c.email,
            phone=c.phone,
            conversations=c.conversations,
            open=c.open,
            resolved=c.resolved,
            times=ConversationTimes.of(c.times),
            first_contact_at=c.first_contact_at,
            last_contact_at=c.last_contact_at,
            cursor=c.cursor,
        )
        for c in page.customers
    ]
    response = _envelope(CustomersResponse, items)
    if page.next_cursor:
        response.headers["X-Next-Cursor"] = page.next_cursor
    return response


async def get_customer(request: Request, principal: Principal) -> Response:
    if not _own_organization(request, principal):
        return _not_found(ORGANIZATION_NOT_FOUND)
    try:
        contact_id = uuid.UUID(request.path_params["contactId"])
    except ValueError:
        raise NotFound("contact not found") from None
    async with request.app.state.sessionmaker() as session:
        detail = await report_service.customer_report(
            session, organization_id=principal.organization_id, client_id=contact_id
        )
    client = detail.client
    data = CustomerDetailData(
        id=str(client.id),
        name=client.name,
        email=client.email,
        phone=client.phone,
        country=client.country,
        created_at=client.created_at,
        metrics=CustomerMetrics(
            conversations=ConversationMetrics.of(detail.conversations),
            by_category=detail.by_category,
            by_outcome=detail.by_outcome,
            outbound=AttemptMetrics.of(detail.attempts),
            inbound=detail.inbound,
            first_contact_at=detail.first_contact_at,
            last_contact_at=detail.last_contact_at,
        ),
        timeline=[
            TimelineItem(
                at=entry.at,
                type=entry.kind,
                channel=entry.channel,
                message_id=str(entry.message_id) if entry.message_id else None,
                conversation_id=str(entry.conversation_id) if entry.conversation_id else None,
                status=entry.status,
                text=entry.text,
                member_id=str(entry.member_id) if entry.member_id else None,
            )
            for entry in detail.timeline
        ],
    )
    return _envelope(CustomerDetailResponse, data)


_ORG = {"orgId": "Id (UUID) de la organización del llamante; otra responde 404"}
_ORG_404 = (NestError, "La organización no es la del llamante")


def _operation(path: str, handler, summary: str, response, description: str, **extra) -> Operation:  # type: ignore[no-untyped-def]
    return Operation(
        method="GET",
        path=f"/organizations/{{orgId}}/reports{path}",
        handler=handler,
        summary=summary,
        tag="mosend",
        dialect=NEST,
        description=description,
        path_parameters={**_ORG, **extra.pop("path_parameters", {})},
        not_found=extra.pop("not_found", ORGANIZATION_NOT_FOUND),
        responses={200: (response, description), 404: _ORG_404},
        **extra,
    )


OPERATIONS = [
    _operation(
        "/summary",
        get_summary,
        "Resumen general del dashboard de la organización.",
        SummaryResponse,
        "Saldo, clientes, volumen, tasas de los últimos 30 días, conversaciones, agentes y "
        "etiquetas.",
    ),
    _operation(
        "/messaging",
        get_messaging,
        "Métricas de mensajería agregadas desde una fecha.",
        MessagingResponse,
        "Un elemento `all` (con la serie diaria local) y uno por canal: volumen, estados, "
        "tasas de entrega, lectura y respuesta, tiempos de respuesta.",
        query=MessagingQuery,
    ),
    _operation(
        "/billing",
        get_billing,
        "Resumen de facturación y consumo de la organización.",
        BillingResponse,
        "Del libro de créditos: saldo, recargas, consumo por canal y por mes local.",
    ),
    _operation(
        "/customers",
        list_customers,
        "Lista contactos con métricas agregadas de conversaciones (paginado).",
        CustomersResponse,
        "Contacto más reciente primero; paginación por cursor (`cursor` de un elemento, o "
        "la cabecera X-Next-Cursor).",
        query=CustomersQuery,
    ),
    _operation(
        "/customers/{contactId}",
        get_customer,
        "Detalle de un contacto con métricas históricas y timeline.",
        CustomerDetailResponse,
        "Métricas de conversaciones, intentos y tasas, y los eventos más recientes.",
        path_parameters={"contactId": "Id (UUID) del cliente"},
        not_found=CONTACT_NOT_FOUND,
    ),
]
