"""The fake provider servers themselves: protocol validation, knobs, ways to run, callbacks."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from pydantic import SecretStr

from mensajero.models import Channel, MessageStatus
from mensajero.providers.base import OutboundMessage, ProviderError
from mensajero.providers.email.resend import (
    ResendEmailProvider,
    parse_resend_event,
    verify_resend_signature,
)
from mensajero.providers.sms.twilio import (
    TwilioSmsProvider,
    parse_twilio_status_callback,
    verify_twilio_signature,
)
from mensajero.providers.whatsapp.evolution import (
    EvolutionWhatsAppProvider,
    parse_evolution_webhook,
    verify_evolution_api_key,
)
from mensajero.settings import Settings
from tests.fakes import FakeEvolution, FakeResend, FakeTwilio
from tests.fakes.process import fake_process
from tests.fakes.resend import new_webhook_secret

SID = "AC" + "0" * 32


def outbound(channel: Channel, recipient: str) -> OutboundMessage:
    return OutboundMessage(
        attempt_id=uuid.uuid4(),
        organization_id=uuid.uuid4(),
        channel=channel,
        recipient=recipient,
        body="Hola",
        subject="Asunto",
    )


# --- protocol validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"From": "+15005550006", "Body": "x"}, 21604),
        ({"To": "+573001234567", "Body": "x"}, 21603),
        ({"To": "+573001234567", "From": "+15005550006"}, 21602),
        ({"To": "573001234567", "From": "+15005550006", "Body": "x"}, 21211),
        ({"To": "+573001234567", "From": "+15005550006", "Body": "x" * 1601}, 21617),
    ],
)
async def test_fake_twilio_rejects_invalid_requests_like_twilio(form: dict, code: int) -> None:
    fake = FakeTwilio()
    async with fake.client() as http:
        response = await http.post(
            f"/2010-04-01/Accounts/{SID}/Messages.json", data=form, auth=(SID, fake.auth_token)
        )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == code
    assert body["status"] == 400
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
    assert fake.messages == []


@pytest.mark.parametrize(
    ("path_sid", "auth"),
    [(SID, None), (SID, (SID, "wrong")), ("AC" + "9" * 32, (SID, "test-auth-token"))],
)
async def test_fake_twilio_requires_the_account_credentials(
    path_sid: str, auth: tuple[str, str] | None
) -> None:
    fake = FakeTwilio()
    async with fake.client() as http:
        response = await http.post(
            f"/2010-04-01/Accounts/{path_sid}/Messages.json",
            data={"To": "+573001234567", "From": "+15005550006", "Body": "x"},
            auth=auth,
        )
    assert response.status_code == 401
    assert response.json()["code"] == 20003


@pytest.mark.parametrize(
    ("payload", "name"),
    [
        ({"to": "a@example.com", "subject": "s", "text": "t"}, "missing_required_field"),
        ({"from": "x@example.com", "subject": "s", "text": "t"}, "missing_required_field"),
        ({"from": "x@example.com", "to": "a@example.com", "text": "t"}, "missing_required_field"),
        ({"from": "x", "to": "a@example.com", "subject": "s", "text": "t"}, "invalid_from_address"),
        ({"from": "x@example.com", "to": "a@", "subject": "s", "text": "t"}, "validation_error"),
        ({"from": "x@example.com", "to": "a@example.com", "subject": "s"}, "validation_error"),
    ],
)
async def test_fake_resend_validates_like_resend(payload: dict, name: str) -> None:
    fake = FakeResend()
    async with fake.client() as http:
        response = await http.post(
            "/emails", json=payload, headers={"Authorization": f"Bearer {fake.api_key}"}
        )
    assert response.status_code == 422
    assert response.json()["name"] == name
    assert response.json()["statusCode"] == 422


async def test_fake_resend_auth_and_idempotency_key_errors() -> None:
    fake = FakeResend()
    email = {"from": "x@example.com", "to": "a@example.com", "subject": "s", "text": "t"}
    async with fake.client() as http:
        missing = await http.post("/emails", json=email)
        long_key = await http.post(
            "/emails",
            json=email,
            headers={"Authorization": f"Bearer {fake.api_key}", "Idempotency-Key": "k" * 257},
        )
    assert (missing.status_code, missing.json()["name"]) == (401, "missing_api_key")
    assert (long_key.status_code, long_key.json()["name"]) == (400, "invalid_idempotency_key")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"number": "573001234567"}, 'instance requires property "text"'),
        ({"text": "hola"}, 'instance requires property "number"'),
    ],
)
async def test_fake_evolution_validates_like_evolution(payload: dict, message: str) -> None:
    fake = FakeEvolution()
    async with fake.client() as http:
        response = await http.post(
            "/message/sendText/mensajero", json=payload, headers={"apikey": fake.api_key}
        )
    assert response.status_code == 400
    assert response.json() == {
        "status": 400,
        "error": "Bad Request",
        "response": {"message": [message]},
    }


# --- knobs over HTTP, and a fake in another process --------------------------------------------


async def test_control_api_over_a_real_port() -> None:
    fake = FakeTwilio()
    with fake.run_in_thread() as base_url:
        settings = Settings(
            twilio_base_url=base_url,
            twilio_account_sid=fake.account_sid,
            twilio_auth_token=SecretStr(fake.auth_token),
            twilio_from_number="+15005550006",
        )
        async with httpx.AsyncClient(base_url=base_url) as http:
            provider = TwilioSmsProvider(settings, http)
            assert (await http.post("/_fake/fail", json={"count": 1, "status": 503})).is_success
            with pytest.raises(ProviderError) as caught:
                await provider.send(outbound(Channel.SMS, "+573001234567"))
            accepted = await provider.send(outbound(Channel.SMS, "+573001234567"))
            listed = (await http.get("/_fake/messages")).json()
            requests = (await http.get("/_fake/requests")).json()
            await http.post("/_fake/reset")
            after_reset = (await http.get("/_fake/messages")).json()

    assert caught.value.transient is True
    assert [m["sid"] for m in listed] == [accepted.external_id]
    assert len(requests) == 2
    assert after_reset == []


async def test_fake_runs_in_another_process() -> None:
    with fake_process("resend", "--api-key", "re_sub", "--latency-ms", "5") as base_url:
        assert base_url.startswith("http://127.0.0.1:")
        settings = Settings(resend_base_url=base_url, resend_api_key=SecretStr("re_sub"))
        async with httpx.AsyncClient(timeout=5) as http:
            message = outbound(Channel.EMAIL, "ana@example.com")
            accepted = await ResendEmailProvider(settings, http).send(message)
            again = await ResendEmailProvider(settings, http).send(message)
            listed = (await http.get(f"{base_url}/_fake/messages")).json()
    assert accepted.external_id == again.external_id
    assert [m["id"] for m in listed] == [accepted.external_id]


# --- callbacks built from what the fakes recorded ----------------------------------------------


async def test_twilio_callbacks_for_a_sent_message_verify_and_parse() -> None:
    fake = FakeTwilio()
    settings = Settings(
        twilio_base_url="http://fake",
        twilio_account_sid=fake.account_sid,
        twilio_auth_token=SecretStr(fake.auth_token),
        twilio_from_number="+15005550006",
        public_base_url="https://api.mensajero.example",
    )
    message = outbound(Channel.SMS, "+573001234567")
    async with fake.client() as http:
        accepted = await TwilioSmsProvider(settings, http).send(message)

    url, form, headers = fake.status_callback(accepted.external_id, "delivered")

    assert verify_twilio_signature(url, form, headers["X-Twilio-Signature"], fake.auth_token)
    event = parse_twilio_status_callback(form, url=url)
    assert event is not None
    assert event.external_id == accepted.external_id
    assert event.status is MessageStatus.DELIVERED
    assert event.attempt_id == message.attempt_id


async def test_resend_events_for_a_sent_email_verify_and_parse() -> None:
    fake = FakeResend()
    secret = new_webhook_secret()
    settings = Settings(resend_base_url="http://fake", resend_api_key=SecretStr(fake.api_key))
    message = outbound(Channel.EMAIL, "ana@example.com")
    async with fake.client() as http:
        accepted = await ResendEmailProvider(settings, http).send(message)

    body, headers = fake.webhook_event(
        accepted.external_id, "email.bounced", secret, bounce={"type": "Permanent"}
    )

    verify_resend_signature(body, headers, secret)
    event = parse_resend_event(json.loads(body), svix_id=headers["svix-id"])
    assert event is not None
    assert event.status is MessageStatus.BOUNCED
    assert event.attempt_id == message.attempt_id


async def test_evolution_webhooks_for_a_sent_message_verify_and_parse() -> None:
    fake = FakeEvolution()
    settings = Settings(evolution_base_url="http://fake", evolution_api_key=SecretStr(fake.api_key))
    async with fake.client() as http:
        accepted = await EvolutionWhatsAppProvider(settings, http).send(
            outbound(Channel.WHATSAPP, "+573001234567")
        )

    payload = fake.status_webhook(accepted.external_id, "READ")

    verify_evolution_api_key(payload, {}, fake.api_key)
    [event] = parse_evolution_webhook(payload)
    assert event.external_id == accepted.external_id
