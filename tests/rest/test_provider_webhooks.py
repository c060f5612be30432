"""Provider webhooks over HTTP: signatures, duplicates, out-of-order callbacks, replies."""

from __future__ import annotations

from typing import Any

import httpx
import pytest_asyncio
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette

from mensajero.models import (
    CommunicationLog,
    Conversation,
    LogEvent,
    Message,
    MessageStatus,
    utcnow,
)
from mensajero.settings import Settings
from tests.conftest import Backend
from tests.delivery_support import create_attempt_row, reload, timeline
from tests.factories import create_client, create_organization
from tests.fakes import evolution as fake_evolution
from tests.fakes import resend as fake_resend
from tests.fakes.twilio import inbound_sms_params, sign, status_callback_params

S = MessageStatus
TWILIO_TOKEN = "webhook-test-token"
EVOLUTION_KEY = "evolution-test-key"
RESEND_SECRET = fake_resend.new_webhook_secret()
PUBLIC = "https://api.mensajero.example"


@pytest_asyncio.fixture
async def settings(app: Starlette, backend: Backend) -> Settings:
    settings = backend.settings(
        public_base_url=PUBLIC,
        twilio_auth_token=TWILIO_TOKEN,
        resend_webhook_secret=RESEND_SECRET,
        evolution_api_key=EVOLUTION_KEY,
    )
    app.state.settings = settings
    return settings


async def _attempt(
    session: AsyncSession, *, channel: str, provider: str, external_id: str, status: str = S.SENT
) -> CommunicationLog:
    organization = await create_organization(session)
    client = await create_client(session, organization)
    log = await create_attempt_row(session, organization, client, channel=channel, status=status)
    log.provider = provider
    log.external_id = external_id
    log.sent_at = utcnow()
    await session.flush()
    return log


async def _post_twilio(
    http: httpx.AsyncClient,
    path: str,
    params: dict[str, str],
    *,
    query: str = "",
    token: str = TWILIO_TOKEN,
) -> httpx.Response:
    url = f"{PUBLIC}{path}{'?' + query if query else ''}"
    return await http.post(
        f"{path}{'?' + query if query else ''}",
        data=params,
        headers={"X-Twilio-Signature": sign(url, params, token)},
    )


async def _event_count(session: AsyncSession) -> int:
    return (await session.execute(select(func.count()).select_from(LogEvent))).scalar_one()


async def test_twilio_callbacks_out_of_order_and_duplicated_end_right(
    http: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    log = await _attempt(session, channel="sms", provider="twilio", external_id="SM1")
    for status in ("read", "delivered", "delivered", "sent", "read"):
        response = await _post_twilio(
            http, "/webhooks/twilio/status", status_callback_params("SM1", status)
        )
        assert response.status_code == 200
    log = await reload(session, CommunicationLog, log.id)
    assert log.status == S.READ
    assert await timeline(session, log.id) == ["read", "delivered", "sent"]


async def test_twilio_forged_signature_is_rejected_and_changes_nothing(
    http: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    log = await _attempt(session, channel="sms", provider="twilio", external_id="SM2")
    events_before = await _event_count(session)
    params = status_callback_params("SM2", "delivered")
    forged = await _post_twilio(http, "/webhooks/twilio/status", params, token="not-the-token")
    tampered = await http.post(
        "/webhooks/twilio/status",
        data={**params, "MessageStatus": "failed"},
        headers={
            "X-Twilio-Signature": sign(f"{PUBLIC}/webhooks/twilio/status", params, TWILIO_TOKEN)
        },
    )
    unsigned = await http.post("/webhooks/twilio/status", data=params)
    for response in (forged, tampered, unsigned):
        assert response.status_code == 401
        assert response.json() == {"error": "invalid signature"}
    assert (await reload(session, CommunicationLog, log.id)).status == S.SENT
    assert await _event_count(session) == events_before


async def test_twilio_callback_binds_the_sid_through_the_attempt_id_in_the_url(
    http: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    organization = await create_organization(session)
    log = await create_attempt_row(session, organization, status=S.SENDING)
    response = await _post_twilio(
        http,
        "/webhooks/twilio/status",
        status_callback_params("SMlost", "sent"),
        query=f"attempt={log.id}",
    )
    assert response.json() == {"received": True, "applied": True}
    log = await reload(session, CommunicationLog, log.id)
    assert (log.status, log.external_id) == (S.SENT, "SMlost")


async def test_unknown_message_ids_are_acknowledged(
    http: httpx.AsyncClient, settings: Settings
) -> None:
    response = await _post_twilio(
        http, "/webhooks/twilio/status", status_callback_params("SMunknown", "delivered")
    )
    assert response.status_code == 200
    assert response.json() == {"received": True, "applied": False}


async def test_resend_events_verified_and_applied(
    http: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    log = await _attempt(session, channel="email", provider="resend", external_id="re_1")
    body, headers = fake_resend.signed_event(
        fake_resend.event_payload("email.delivered", "re_1"), RESEND_SECRET
    )
    response = await http.post("/webhooks/resend", content=body, headers=headers)
    assert response.status_code == 200
    again = await http.post("/webhooks/resend", content=body, headers=headers)
    assert again.json()["applied"] is False
    opened_body, opened_headers = fake_resend.signed_event(
        fake_resend.event_payload("email.opened", "re_1"), RESEND_SECRET
    )
    await http.post("/webhooks/resend", content=opened_body, headers=opened_headers)
    log = await reload(session, CommunicationLog, log.id)
    assert log.status == S.DELIVERED and log.opened_at is not None
    assert await timeline(session, log.id) == ["delivered", "opened"]


async def test_resend_forged_signature_is_rejected(
    http: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    log = await _attempt(session, channel="email", provider="resend", external_id="re_2")
    events_before = await _event_count(session)
    payload = fake_resend.event_payload("email.bounced", "re_2")
    forged_body, forged_headers = fake_resend.signed_event(
        payload, fake_resend.new_webhook_secret()
    )
    body, headers = fake_resend.signed_event(payload, RESEND_SECRET)
    tampered = body.replace(b"email.bounced", b"email.opened_")
    for content, sent_headers in ((forged_body, forged_headers), (tampered, headers)):
        response = await http.post("/webhooks/resend", content=content, headers=sent_headers)
        assert response.status_code == 401
        assert response.json() == {"error": "invalid signature"}
    assert (await reload(session, CommunicationLog, log.id)).status == S.SENT
    assert await _event_count(session) == events_before


async def test_evolution_updates_verified_and_applied(
    http: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    log = await _attempt(session, channel="whatsapp", provider="evolution", external_id="WA1")
    for status in ("READ", "DELIVERY_ACK", "READ"):
        response = await http.post(
            "/webhooks/evolution",
            json=fake_evolution.messages_update("WA1", status, apikey=EVOLUTION_KEY),
        )
        assert response.status_code == 200
    log = await reload(session, CommunicationLog, log.id)
    assert log.status == S.READ
    assert await timeline(session, log.id) == ["read", "delivered"]


async def test_evolution_forged_apikey_is_rejected(
    http: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    log = await _attempt(session, channel="whatsapp", provider="evolution", external_id="WA2")
    events_before = await _event_count(session)
    for payload, headers in (
        (fake_evolution.messages_update("WA2", "READ", apikey="wrong"), {}),
        (fake_evolution.messages_update("WA2", "READ", apikey=None), {"apikey": "wrong"}),
        (fake_evolution.messages_update("WA2", "READ", apikey=None), {}),
    ):
        response = await http.post("/webhooks/evolution", json=payload, headers=headers)
        assert response.status_code == 401
    assert (await reload(session, CommunicationLog, log.id)).status == S.SENT
    assert await _event_count(session) == events_before


async def test_evolution_reply_becomes_an_inbound_message_and_a_response(
    http: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    log = await _attempt(session, channel="whatsapp", provider="evolution", external_id="WA3")
    digits = log.recipient.lstrip("+")
    payload: dict[str, Any] = fake_evolution.messages_upsert(
        digits, "Sí, confirmo", message_id="IN1", apikey=EVOLUTION_KEY
    )
    for _ in range(2):  # the duplicate is a no-op
        response = await http.post("/webhooks/evolution", json=payload)
        assert response.status_code == 200
    log = await reload(session, CommunicationLog, log.id)
    assert log.response_text == "Sí, confirmo" and log.response_received_at is not None
    assert await timeline(session, log.id) == ["response"]
    inbound = (
        (
            await session.execute(
                select(Message).where(
                    Message.client_id == log.client_id, Message.direction == "inbound"
                )
            )
        )
        .scalars()
        .all()
    )
    assert [(m.body, m.status) for m in inbound] == [("Sí, confirmo", S.RECEIVED)]
    conversations = (
        (await session.execute(select(Conversation).where(Conversation.client_id == log.client_id)))
        .scalars()
        .all()
    )
    assert len(conversations) == 1 and inbound[0].conversation_id == conversations[0].id


async def test_twilio_inbound_sms_signed_and_forged(
    http: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    log = await _attempt(session, channel="sms", provider="twilio", external_id="SM9")
    params = inbound_sms_params(log.recipient, "Gracias")
    forged = await _post_twilio(http, "/webhooks/twilio/inbound", params, token="nope")
    assert forged.status_code == 401
    assert (await reload(session, CommunicationLog, log.id)).response_text is None
    response = await _post_twilio(http, "/webhooks/twilio/inbound", params)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    assert (await reload(session, CommunicationLog, log.id)).response_text == "Gracias"
