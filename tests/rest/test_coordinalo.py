"""Coordinalo's routes (seed 000): logs, detail, client history, config, resend, stats."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mensajero.models import CommunicationLog, LogEvent
from mensajero.services import credits
from mensajero.settings import Settings
from tests.factories import (
    Caller,
    create_caller,
    create_campaign,
    create_client,
    create_log,
    create_message,
)
from tests.resolvers.graphql_helpers import data

# Santiago is UTC-3 in January (summer time).
BASE = datetime(2026, 1, 20, 11, 0, tzinfo=UTC)
QUEUE = Settings().queue_name
UNAUTHORIZED = {"error": "No autorizado", "message": "API key inválida o faltante"}
SESSION = {"id": "sess_001", "startTime": "2026-01-21T13:00:00Z", "service": "Kinesiología"}
PROVIDER = {"id": "prov_001", "name": "María González"}

# The seed's examples, key by key, with their JSON types (optional keys apart).
EMAIL_ITEM = {
    "id": str,
    "clientId": str,
    "client": dict,
    "channel": str,
    "type": str,
    "status": str,
    "content": dict,
    "metadata": dict,
    "sentAt": str,
}


class Dataset:
    caller: Caller
    juan: Any
    ana: Any
    promo: Any
    reminder: CommunicationLog  # email, delivered and opened
    bounce: CommunicationLog  # email, bounced (campaign)
    whatsapp: CommunicationLog  # whatsapp, read with a reply
    pending: CommunicationLog  # whatsapp, queued
    stranger: CommunicationLog


async def build_dataset(session: AsyncSession) -> Dataset:
    d = Dataset()
    d.caller = await create_caller(session, timezone="America/Santiago")
    org = d.caller.organization
    await credits.top_up(session, organization_id=org.id, amount=100)
    d.juan = await create_client(
        session, org, name="Juan Pérez", email="juan@example.com", phone_e164="+56912345678"
    )
    d.ana = await create_client(session, org, name="Ana López", email="ana@example.com")
    d.promo = await create_campaign(session, org, name="Oferta")

    reminder = await create_message(
        session,
        org,
        client=d.juan,
        channel="email",
        log=False,
        communication_type="session_reminder",
        subject="Recordatorio: Tu sesión de kinesiología",
        body="Hola Juan, te recordamos tu sesión...",
        html="<html>...</html>",
        template_id="tpl_session_reminder",
        metadata_={
            "sessionId": "sess_001",
            "session": SESSION,
            "providerId": "prov_001",
            "provider": PROVIDER,
        },
        status="DELIVERED",
        created_at=BASE - timedelta(seconds=5),
    )
    d.reminder = await create_log(
        session,
        reminder,
        external_id="resend_abc123",
        sent_at=BASE,
        delivered_at=BASE + timedelta(seconds=5),
        opened_at=BASE + timedelta(minutes=75),
    )
    session.add(
        LogEvent(
            organization_id=org.id,
            log_id=d.reminder.id,
            event="opened",
            occurred_at=BASE + timedelta(minutes=75),
            metadata_={"userAgent": "Mozilla/5.0...", "ip": "203.0.113.9"},
        )
    )
    bounce = await create_message(
        session,
        org,
        client=d.ana,
        campaign=d.promo,
        channel="email",
        log=False,
        subject="¡Oferta especial para ti!",
        body="Hola Ana...",
        status="BOUNCED",
        created_at=BASE - timedelta(days=5),
    )
    d.bounce = await create_log(
        session,
        bounce,
        external_id="resend_def456",
        sent_at=BASE - timedelta(days=5),
        error_code="bounce_hard",
        error_message="Mailbox does not exist",
        failed_at=BASE - timedelta(days=5) + timedelta(seconds=4),
    )
    whatsapp = await create_message(
        session,
        org,
        client=d.juan,
        channel="whatsapp",
        log=False,
        communication_type="confirmation",
        body="Hola Juan, tienes una sesión agendada para mañana...",
        status="READ",
        created_at=BASE - timedelta(days=1),
    )
    d.whatsapp = await create_log(
        session,
        whatsapp,
        external_id="evolution_xyz789",
        provider_metadata={"instanceName": "coordinalo-main"},
        sent_at=BASE - timedelta(days=1),
        delivered_at=BASE - timedelta(days=1) + timedelta(seconds=2),
        read_at=BASE - timedelta(days=1) + timedelta(minutes=5),
        response_text="Sí, confirmo",
        response_received_at=BASE - timedelta(days=1) + timedelta(minutes=6),
    )
    pending = await create_message(
        session,
        org,
        client=d.ana,
        channel="whatsapp",
        log=False,
        body="Pronto",
        status="QUEUED",
        created_at=BASE - timedelta(hours=1),
    )
    d.pending = await create_log(session, pending)
    stranger = await create_caller(session)
    stranger_message = await create_message(session, stranger.organization, channel="email")
    d.stranger = (
        await session.execute(
            select(CommunicationLog).where(CommunicationLog.message_id == stranger_message.id)
        )
    ).scalar_one()
    await session.flush()
    return d


async def _get(
    http: httpx.AsyncClient, caller: Caller, path: str, params: dict[str, Any] | None = None
) -> httpx.Response:
    return await http.get(path, params=params, headers=caller.headers)


def _assert_types(value: dict[str, Any], expected: dict[str, type]) -> None:
    for key, kind in expected.items():
        assert key in value, key
        assert isinstance(value[key], kind), (key, value[key])


async def test_email_logs_answer_the_seed_shape(
    http: httpx.AsyncClient, session: AsyncSession
) -> None:
    d = await build_dataset(session)

    response = await _get(http, d.caller, "/api/v1/communication/email-logs")

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"data", "pagination", "summary"}
    assert [item["id"] for item in body["data"]] == [str(d.reminder.id), str(d.bounce.id)]
    for item in body["data"]:
        _assert_types(item, EMAIL_ITEM)
    assert body["data"][0] == {
        "id": str(d.reminder.id),
        "clientId": str(d.juan.id),
        "client": {"id": str(d.juan.id), "name": "Juan Pérez", "email": "juan@example.com"},
        "channel": "email",
        "type": "session_reminder",
        "status": "delivered",
        "content": {
            "subject": "Recordatorio: Tu sesión de kinesiología",
            "body": "Hola Juan, te recordamos tu sesión...",
            "templateId": "tpl_session_reminder",
        },
        "metadata": {
            "sessionId": "sess_001",
            "providerId": "prov_001",
            "externalId": "resend_abc123",
        },
        "sentAt": "2026-01-20T11:00:00Z",
        "deliveredAt": "2026-01-20T11:00:05Z",
        "openedAt": "2026-01-20T12:15:00Z",
    }
    bounce = body["data"][1]
    assert bounce["status"] == "bounced" and "deliveredAt" not in bounce
    assert bounce["metadata"] == {"campaignId": str(d.promo.id), "externalId": "resend_def456"}
    assert bounce["error"] == {
        "code": "bounce_hard",
        "message": "Mailbox does not exist",
        "timestamp": "2026-01-15T11:00:04Z",
    }
    assert body["pagination"] == {"total": 2, "page": 1, "limit": 20, "totalPages": 1}
    assert body["summary"] == {"total": 2, "delivered": 1, "opened": 1, "bounced": 1, "failed": 0}


async def test_whatsapp_logs_answer_the_seed_shape(
    http: httpx.AsyncClient, session: AsyncSession
) -> None:
    d = await build_dataset(session)

    body = (await _get(http, d.caller, "/api/v1/communication/whatsapp-logs")).json()

    assert [item["id"] for item in body["data"]] == [str(d.pending.id), str(d.whatsapp.id)]
    read = body["data"][1]
    assert read["client"] == {"id": str(d.juan.id), "name": "Juan Pérez", "phone": "+56912345678"}
    assert read["status"] == "read" and read["type"] == "confirmation"
    assert read["content"] == {"body": "Hola Juan, tienes una sesión agendada para mañana..."}
    assert read["metadata"] == {
        "externalId": "evolution_xyz789",
        "instanceName": "coordinalo-main",
    }
    assert read["readAt"] == "2026-01-19T11:05:00Z"
    assert read["response"] == {"text": "Sí, confirmo", "receivedAt": "2026-01-19T11:06:00Z"}
    assert body["data"][0]["status"] == "pending" and "sentAt" not in body["data"][0]
    assert body["pagination"] == {"total": 2, "page": 1, "limit": 20, "totalPages": 1}
    assert body["summary"] == {"total": 2, "delivered": 1, "read": 1, "failed": 0}


async def test_log_filters(http: httpx.AsyncClient, session: AsyncSession) -> None:
    d = await build_dataset(session)

    async def ids(path: str, params: dict[str, Any]) -> list[str]:
        response = await _get(http, d.caller, f"/api/v1/communication/{path}", params)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["data"]]

    assert await ids("email-logs", {"status": "bounced"}) == [str(d.bounce.id)]
    assert await ids("email-logs", {"status": "DELIVERED"}) == [str(d.reminder.id)]
    assert await ids("whatsapp-logs", {"status": "pending"}) == [str(d.pending.id)]
    assert await ids("email-logs", {"type": "campaign"}) == [str(d.bounce.id)]
    assert await ids("email-logs", {"campaignId": str(d.promo.id)}) == [str(d.bounce.id)]
    assert await ids("whatsapp-logs", {"clientId": str(d.juan.id)}) == [str(d.whatsapp.id)]
    # Days are Santiago's; "to" includes its whole day.
    assert await ids("email-logs", {"from": "2026-01-15", "to": "2026-01-15"}) == [str(d.bounce.id)]
    assert await ids("email-logs", {"from": "2026-01-16"}) == [str(d.reminder.id)]
    # Instants: both ends inclusive.
    created = d.reminder.created_at.isoformat()
    assert await ids("email-logs", {"from": created, "to": created}) == [str(d.reminder.id)]
    paged = await _get(http, d.caller, "/api/v1/communication/email-logs", {"page": 2, "limit": 1})
    assert [item["id"] for item in paged.json()["data"]] == [str(d.bounce.id)]
    assert paged.json()["pagination"] == {"total": 2, "page": 2, "limit": 1, "totalPages": 2}


@pytest.mark.parametrize(
    ("params", "details"),
    [
        ({"limit": "0"}, "El parámetro 'limit' debe estar entre 1 y 100"),
        ({"page": "x"}, "El parámetro 'page' debe ser un número entero mayor o igual a 1"),
        (
            {"status": "lost"},
            "El parámetro 'status' debe ser uno de: pending, sent, "
            "delivered, read, failed, bounced",
        ),
        (
            {"from": "ayer"},
            "El parámetro 'from' debe ser una fecha ISO 8601 (YYYY-MM-DD o fecha y hora)",
        ),
        ({"clientId": "cli_001"}, "El parámetro 'clientId' debe ser un UUID válido"),
    ],
)
async def test_invalid_log_parameters_are_400(
    http: httpx.AsyncClient, session: AsyncSession, params: dict[str, str], details: str
) -> None:
    caller = await create_caller(session)

    response = await _get(http, caller, "/api/v1/communication/email-logs", params)

    assert response.status_code == 400
    assert response.json() == {"error": "Parámetros inválidos", "details": details}


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/communication/email-logs",
        "/api/v1/communication/whatsapp-logs",
        "/api/v1/communication/logs/0194a0b0-0000-7000-8000-000000000000",
        "/api/v1/clients/0194a0b0-0000-7000-8000-000000000000/communication-history",
        "/api/v1/communication/config",
        "/api/v1/communication/stats",
    ],
)
async def test_every_read_route_without_a_key_is_401(http: httpx.AsyncClient, path: str) -> None:
    response = await http.get(path)
    assert response.status_code == 401 and response.json() == UNAUTHORIZED


async def test_log_detail(http: httpx.AsyncClient, session: AsyncSession) -> None:
    d = await build_dataset(session)

    response = await _get(http, d.caller, f"/api/v1/communication/logs/{d.reminder.id}")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["client"] == {
        "id": str(d.juan.id),
        "name": "Juan Pérez",
        "email": "juan@example.com",
        "phone": "+56912345678",
    }
    assert body["content"] == {
        "subject": "Recordatorio: Tu sesión de kinesiología",
        "body": "Hola Juan, te recordamos tu sesión...",
        "templateId": "tpl_session_reminder",
        "html": "<html>...</html>",
    }
    assert body["metadata"] == {
        "sessionId": "sess_001",
        "session": SESSION,
        "providerId": "prov_001",
        "provider": PROVIDER,
        "externalId": "resend_abc123",
    }
    assert [event["event"] for event in body["timeline"]] == [
        "created",
        "queued",
        "sent",
        "delivered",
        "opened",
    ]
    assert body["timeline"][0] == {"event": "created", "timestamp": "2026-01-20T10:59:55Z"}
    assert body["timeline"][-1]["metadata"] == {"userAgent": "Mozilla/5.0...", "ip": "203.0.113.9"}
    assert body["createdAt"] == "2026-01-20T10:59:55Z"
    assert body["status"] == "delivered" and body["openedAt"] == "2026-01-20T12:15:00Z"


@pytest.mark.parametrize("which", ["stranger", "missing", "not-a-uuid"])
async def test_detail_of_another_organization_is_404(
    http: httpx.AsyncClient, session: AsyncSession, which: str
) -> None:
    d = await build_dataset(session)
    log_id = {
        "stranger": str(d.stranger.id),
        "missing": "0194a0b0-0000-7000-8000-000000000000",
        "not-a-uuid": "email_001",
    }[which]

    response = await _get(http, d.caller, f"/api/v1/communication/logs/{log_id}")

    assert response.status_code == 404
    assert response.json() == {"error": "No encontrado", "message": "Comunicación no encontrada"}


async def test_client_history(http: httpx.AsyncClient, session: AsyncSession) -> None:
    d = await build_dataset(session)

    response = await _get(http, d.caller, f"/api/v1/clients/{d.juan.id}/communication-history")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["clientId"] == str(d.juan.id)
    assert body["client"] == {
        "id": str(d.juan.id),
        "name": "Juan Pérez",
        "email": "juan@example.com",
        "phone": "+56912345678",
    }
    assert body["summary"] == {
        "totalCommunications": 2,
        "byChannel": {"email": 1, "whatsapp": 1},
        "byType": {"session_reminder": 1, "confirmation": 1},
        "deliveryRate": 100.0,
        "openRate": 50.0,
    }
    assert body["recent"] == [
        {
            "id": str(d.reminder.id),
            "channel": "email",
            "type": "session_reminder",
            "status": "delivered",
            "subject": "Recordatorio: Tu sesión de kinesiología",
            "sentAt": "2026-01-20T11:00:00Z",
        },
        {
            "id": str(d.whatsapp.id),
            "channel": "whatsapp",
            "type": "confirmation",
            "status": "read",
            "sentAt": "2026-01-19T11:00:00Z",
        },
    ]


async def test_history_of_another_organizations_client_is_404(
    http: httpx.AsyncClient, session: AsyncSession
) -> None:
    d = await build_dataset(session)
    stranger = await create_client(session, (await create_caller(session)).organization)

    response = await _get(http, d.caller, f"/api/v1/clients/{stranger.id}/communication-history")

    assert response.status_code == 404
    assert response.json() == {"error": "No encontrado", "message": "Cliente no encontrado"}


async def test_config_get_and_partial_put(http: httpx.AsyncClient, session: AsyncSession) -> None:
    caller = await create_caller(session, timezone="America/Santiago")

    before = (await _get(http, caller, "/api/v1/communication/config")).json()
    response = await http.put(
        "/api/v1/communication/config",
        headers=caller.headers,
        json={
            "email": {"fromName": "Mi Centro de Salud", "replyTo": "contacto@example.com"},
            "preferences": {
                "defaultChannel": "email",
                "quietHours": {"enabled": True, "start": "21:00", "end": "09:00"},
            },
        },
    )
    after = (await _get(http, caller, "/api/v1/communication/config")).json()

    assert set(before) == {"email", "whatsapp", "preferences"}
    assert set(before["email"]) == {
        "enabled",
        "provider",
        "fromEmail",
        "fromName",
        "replyTo",
        "status",
        "lastCheck",
    }
    assert set(before["whatsapp"]) == {
        "enabled",
        "provider",
        "instanceName",
        "phoneNumber",
        "status",
        "lastCheck",
    }
    assert set(before["preferences"]) == {
        "defaultChannel",
        "fallbackEnabled",
        "fallbackChannel",
        "quietHours",
    }
    assert set(before["preferences"]["quietHours"]) == {"enabled", "start", "end", "timezone"}
    assert response.status_code == 200, response.text
    assert response.json() == after
    assert after["email"]["fromName"] == "Mi Centro de Salud"
    assert after["email"]["replyTo"] == "contacto@example.com"
    assert after["email"]["fromEmail"] == before["email"]["fromEmail"]  # untouched
    assert after["whatsapp"] == before["whatsapp"]
    assert after["preferences"]["defaultChannel"] == "email"
    assert after["preferences"]["quietHours"] == {
        "enabled": True,
        "start": "21:00",
        "end": "09:00",
        "timezone": before["preferences"]["quietHours"]["timezone"],
    }


async def test_config_put_refusals(http: httpx.AsyncClient, session: AsyncSession) -> None:
    caller = await create_caller(session)
    reader = await create_caller(session, scopes=["read"])

    invalid = await http.put(
        "/api/v1/communication/config",
        headers=caller.headers,
        json={"preferences": {"quietHours": {"start": "25:00"}}},
    )
    not_an_object = await http.put(
        "/api/v1/communication/config", headers=caller.headers, json=["x"]
    )
    forbidden = await http.put(
        "/api/v1/communication/config", headers=reader.headers, json={"email": {"fromName": "X"}}
    )

    assert invalid.status_code == 400
    assert invalid.json() == {
        "error": "Parámetros inválidos",
        "details": "preferences.quietHours.start must be a time as HH:MM (00:00 to 23:59)",
    }
    assert not_an_object.status_code == 400
    assert forbidden.status_code == 403 and forbidden.json()["error"] == "Prohibido"


async def test_resend(http: httpx.AsyncClient, session: AsyncSession, redis: ArqRedis) -> None:
    d = await build_dataset(session)

    response = await http.post(
        f"/api/v1/communication/logs/{d.reminder.id}/resend",
        headers=d.caller.headers,
        json={"channel": "whatsapp", "customMessage": "Mensaje alternativo"},
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"originalId", "newId", "channel", "status", "sentAt"}
    assert body["originalId"] == str(d.reminder.id) and body["channel"] == "whatsapp"
    assert body["status"] == "pending"
    new = await session.get(CommunicationLog, uuid.UUID(body["newId"]))
    assert new is not None and new.message_id == d.reminder.message_id
    assert new.recipient == "+56912345678" and new.body_override == "Mensaje alternativo"
    assert await redis.zcard(QUEUE) == 1
    detail = (await _get(http, d.caller, f"/api/v1/communication/logs/{body['newId']}")).json()
    assert detail["content"]["body"] == "Mensaje alternativo" and detail["channel"] == "whatsapp"


async def test_resend_without_body_uses_the_same_channel(
    http: httpx.AsyncClient, session: AsyncSession
) -> None:
    d = await build_dataset(session)

    response = await http.post(
        f"/api/v1/communication/logs/{d.whatsapp.id}/resend", headers=d.caller.headers
    )

    assert response.status_code == 200, response.text
    assert response.json()["channel"] == "whatsapp"


async def test_resend_refusals(http: httpx.AsyncClient, session: AsyncSession) -> None:
    d = await build_dataset(session)
    unaccepted = await create_caller(session, terms_accepted=False)
    broke = await create_caller(session)
    broke_message = await create_message(session, broke.organization, channel="sms")
    broke_log = (
        await session.execute(
            select(CommunicationLog).where(CommunicationLog.message_id == broke_message.id)
        )
    ).scalar_one()

    stranger = await http.post(
        f"/api/v1/communication/logs/{d.stranger.id}/resend", headers=d.caller.headers
    )
    terms = await http.post(
        f"/api/v1/communication/logs/{d.reminder.id}/resend", headers=unaccepted.headers
    )
    no_credits = await http.post(
        f"/api/v1/communication/logs/{broke_log.id}/resend", headers=broke.headers
    )
    bad_channel = await http.post(
        f"/api/v1/communication/logs/{d.reminder.id}/resend",
        headers=d.caller.headers,
        json={"channel": "fax"},
    )

    assert stranger.status_code == 404
    assert stranger.json() == {"error": "No encontrado", "message": "Comunicación no encontrada"}
    assert terms.status_code == 403
    assert terms.json() == {
        "error": "Prohibido",
        "message": "Debes aceptar los términos y condiciones vigentes antes de enviar mensajes",
    }
    assert no_credits.status_code == 402
    assert no_credits.json() == {
        "error": "Créditos insuficientes",
        "message": "Créditos insuficientes: se requieren 1 y hay 0 disponibles",
        "required": 1,
        "available": 0,
    }
    assert bad_channel.status_code == 400
    assert bad_channel.json() == {
        "error": "Parámetros inválidos",
        "details": "El campo 'channel' debe ser uno de: sms, whatsapp, email",
    }
    count = await session.execute(
        select(func.count())
        .select_from(CommunicationLog)
        .where(CommunicationLog.message_id == broke_message.id)
    )
    assert count.scalar_one() == 1


async def test_stats(http: httpx.AsyncClient, session: AsyncSession) -> None:
    d = await build_dataset(session)

    response = await _get(
        http, d.caller, "/api/v1/communication/stats", {"from": "2026-01-01", "to": "2026-01-31"}
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"period", "totals", "rates", "byChannel", "byType", "daily"}
    assert body["period"] == {"from": "2026-01-01", "to": "2026-01-31"}
    # Sent: reminder, bounce, whatsapp (the queued one is pending).
    assert body["totals"] == {
        "sent": 3,
        "delivered": 2,
        "opened": 1,
        "clicked": 0,
        "bounced": 1,
        "failed": 0,
    }
    assert body["rates"] == {
        "deliveryRate": 66.67,
        "openRate": 50.0,
        "clickRate": 0.0,
        "bounceRate": 33.33,
    }
    assert body["byChannel"] == {
        "email": {"sent": 2, "delivered": 1, "opened": 1, "clicked": 0, "bounced": 1, "failed": 0},
        "whatsapp": {"sent": 1, "delivered": 1, "read": 1, "failed": 0},
    }
    assert body["byType"] == {
        "campaign": {"sent": 1, "delivered": 0},
        "confirmation": {"sent": 1, "delivered": 1},
        "manual": {"sent": 0, "delivered": 0},
        "session_reminder": {"sent": 1, "delivered": 1},
    }
    assert len(body["daily"]) == 31
    by_date = {entry["date"]: entry for entry in body["daily"]}
    assert by_date["2026-01-20"] == {"date": "2026-01-20", "sent": 1, "delivered": 1, "opened": 1}
    assert by_date["2026-01-15"] == {"date": "2026-01-15", "sent": 1, "delivered": 0, "opened": 0}
    assert by_date["2026-01-02"] == {"date": "2026-01-02", "sent": 0, "delivered": 0, "opened": 0}

    weekly = (
        await _get(
            http,
            d.caller,
            "/api/v1/communication/stats",
            {"from": "2026-01-01", "to": "2026-01-31", "groupBy": "week"},
        )
    ).json()
    monthly = (
        await _get(
            http,
            d.caller,
            "/api/v1/communication/stats",
            {"from": "2026-01-01", "to": "2026-01-31", "groupBy": "month"},
        )
    ).json()
    assert [entry["date"] for entry in weekly["daily"]][:2] == ["2025-12-29", "2026-01-05"]
    assert {e["date"]: e["sent"] for e in weekly["daily"]}["2026-01-19"] == 2
    assert monthly["daily"] == [{"date": "2026-01-01", "sent": 3, "delivered": 2, "opened": 1}]


async def test_stats_refusals(http: httpx.AsyncClient, session: AsyncSession) -> None:
    caller = await create_caller(session)

    group = await _get(http, caller, "/api/v1/communication/stats", {"groupBy": "year"})
    reversed_period = await _get(
        http, caller, "/api/v1/communication/stats", {"from": "2026-02-01", "to": "2026-01-01"}
    )

    assert group.status_code == 400
    assert group.json() == {
        "error": "Parámetros inválidos",
        "details": "El parámetro 'groupBy' debe ser uno de: day, week, month",
    }
    assert reversed_period.status_code == 400


GRAPHQL_LOGS = """
query($filter: CommunicationLogFilterInput) {
  communicationLogs(filter: $filter, first: 100) {
    totalCount
    summary { total delivered opened read bounced failed }
    edges { node { uuid } }
  }
}"""


@pytest.mark.parametrize(
    ("path", "rest", "graphql"),
    [
        ("email-logs", {}, {"channel": ["EMAIL"]}),
        ("whatsapp-logs", {}, {"channel": ["WHATSAPP"]}),
        ("email-logs", {"status": "bounced"}, {"channel": ["EMAIL"], "status": ["BOUNCED"]}),
        (
            "whatsapp-logs",
            {"type": "confirmation"},
            {"channel": ["WHATSAPP"], "type": ["CONFIRMATION"]},
        ),
    ],
)
async def test_rest_and_graphql_answer_the_same_logs(
    http: httpx.AsyncClient,
    session: AsyncSession,
    path: str,
    rest: dict[str, str],
    graphql: dict[str, Any],
) -> None:
    d = await build_dataset(session)

    body = (await _get(http, d.caller, f"/api/v1/communication/{path}", rest)).json()
    connection = (await data(http, d.caller, GRAPHQL_LOGS, {"filter": graphql}))[
        "communicationLogs"
    ]

    assert [item["id"] for item in body["data"]] == [e["node"]["uuid"] for e in connection["edges"]]
    assert body["pagination"]["total"] == connection["totalCount"]
    for key, value in body["summary"].items():
        assert connection["summary"][key] == value
