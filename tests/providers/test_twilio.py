"""Twilio SMS client against the fake Twilio over real HTTP; callback signatures and parsing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest
import pytest_asyncio
from pydantic import SecretStr

from mensajero.models import Channel, MessageStatus, TimelineEventType
from mensajero.providers.base import OutboundMessage, ProviderError
from mensajero.providers.http import ProviderHTTP
from mensajero.providers.sms.twilio import (
    TwilioSmsProvider,
    parse_twilio_inbound,
    parse_twilio_status_callback,
    verify_twilio_signature,
)
from mensajero.settings import Settings
from tests.fakes.twilio import FakeTwilio, inbound_sms_params, status_callback_params
from tests.providers.helpers import CLIENT_KINDS, provider_client, wait_for_messages

ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "12345678901234567890123456789012"
CALLBACK_URL = "https://mensajero.example.com/webhooks/twilio/status"


@pytest.fixture(scope="module")
def fake() -> FakeTwilio:
    return FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN)


@pytest.fixture(scope="module")
def base_url(fake: FakeTwilio) -> Iterator[str]:
    with fake.run_in_thread() as url:
        yield url


@pytest.fixture(autouse=True)
def _clean(fake: FakeTwilio) -> None:
    fake.reset()
    fake.latency = 0.0
    fake.honour_idempotency_token = False


def settings_for(base_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "twilio_base_url": base_url,
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": SecretStr(AUTH_TOKEN),
        "twilio_from_number": "+15005550006",
        "twilio_status_callback_url": CALLBACK_URL,
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


@pytest_asyncio.fixture(params=CLIENT_KINDS)
async def http(request: pytest.FixtureRequest) -> AsyncIterator[ProviderHTTP]:
    async with provider_client(request.param, timeout=2.0) as client:
        yield client


def sms(recipient: str = "+573001234567", body: str = "Hola Ana") -> OutboundMessage:
    return OutboundMessage(
        attempt_id=uuid.uuid4(),
        organization_id=uuid.uuid4(),
        channel=Channel.SMS,
        recipient=recipient,
        body=body,
    )


async def test_send_posts_form_with_basic_auth_and_callback(
    fake: FakeTwilio, base_url: str, http: ProviderHTTP
) -> None:
    provider = TwilioSmsProvider(settings_for(base_url), http)
    message = sms()

    accepted = await provider.send(message)

    assert accepted.provider == "twilio"
    assert accepted.status is MessageStatus.SENT
    assert accepted.external_id.startswith("SM") and len(accepted.external_id) == 34
    assert accepted.raw["status"] == "queued"
    [received] = fake.messages
    assert received["sid"] == accepted.external_id
    assert received["to"] == "+573001234567"
    assert received["from"] == "+15005550006"
    assert received["body"] == "Hola Ana"
    assert received["status_callback"] == f"{CALLBACK_URL}?attempt={message.attempt_id}"
    # The attempt id travels as the idempotency token header.
    assert received["idempotency_token"] == str(message.attempt_id)
    request = fake.requests[-1]
    expected_auth = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {expected_auth}"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"


async def test_messaging_service_replaces_from(
    fake: FakeTwilio, base_url: str, http: ProviderHTTP
) -> None:
    settings = settings_for(base_url, twilio_messaging_service_sid="MG" + "2" * 32)
    accepted = await TwilioSmsProvider(settings, http).send(sms())

    body = fake.requests[-1].body
    assert body["MessagingServiceSid"] == "MG" + "2" * 32
    assert "From" not in body
    assert accepted.raw["status"] == "accepted"


async def test_default_callback_url_comes_from_public_base_url(
    fake: FakeTwilio, base_url: str, http: ProviderHTTP
) -> None:
    settings = settings_for(
        base_url, twilio_status_callback_url="", public_base_url="https://api.example.org/"
    )
    message = sms()
    await TwilioSmsProvider(settings, http).send(message)

    assert fake.messages[-1]["status_callback"] == (
        f"https://api.example.org/webhooks/twilio/status?attempt={message.attempt_id}"
    )


async def test_invalid_to_is_permanent_with_twilio_code(base_url: str, http: ProviderHTTP) -> None:
    with pytest.raises(ProviderError) as caught:
        await TwilioSmsProvider(settings_for(base_url), http).send(sms(recipient="3001234567"))

    error = caught.value
    assert error.transient is False
    assert error.code == "21211"
    assert error.message == "The 'To' number 3001234567 is not a valid phone number."
    assert error.status_code == 400
    assert error.provider == "twilio"


async def test_bad_credentials_are_permanent(base_url: str, http: ProviderHTTP) -> None:
    settings = settings_for(base_url, twilio_auth_token=SecretStr("wrong"))
    with pytest.raises(ProviderError) as caught:
        await TwilioSmsProvider(settings, http).send(sms())

    assert caught.value.transient is False
    assert caught.value.code == "20003"
    assert caught.value.status_code == 401


async def test_server_error_is_transient(
    fake: FakeTwilio, base_url: str, http: ProviderHTTP
) -> None:
    fake.fail_next(1, 503)
    with pytest.raises(ProviderError) as caught:
        await TwilioSmsProvider(settings_for(base_url), http).send(sms())

    assert caught.value.transient is True
    assert caught.value.code == "20503"
    assert caught.value.status_code == 503
    assert fake.messages == []
    # The next request goes through.
    await TwilioSmsProvider(settings_for(base_url), http).send(sms())
    assert len(fake.messages) == 1


async def test_rate_limit_is_transient_and_honours_retry_after(
    fake: FakeTwilio, base_url: str, http: ProviderHTTP
) -> None:
    fake.rate_limit_next(1, retry_after=7)
    with pytest.raises(ProviderError) as caught:
        await TwilioSmsProvider(settings_for(base_url), http).send(sms())

    assert caught.value.transient is True
    assert caught.value.code == "20429"
    assert caught.value.retry_after == 7.0


async def test_failure_for_a_recipient_pattern(
    fake: FakeTwilio, base_url: str, http: ProviderHTTP
) -> None:
    fake.fail_recipients(r"^\+57300", 400, code="21610", message="Attempt to send to unsubscribed")
    provider = TwilioSmsProvider(settings_for(base_url), http)

    with pytest.raises(ProviderError) as caught:
        await provider.send(sms(recipient="+573001111111"))
    accepted = await provider.send(sms(recipient="+14155550100"))

    assert caught.value.code == "21610"
    assert caught.value.transient is False
    assert [m["sid"] for m in fake.messages] == [accepted.external_id]


@pytest.mark.parametrize("kind", CLIENT_KINDS)
async def test_timeout_is_transient_and_ambiguous(
    fake: FakeTwilio, base_url: str, kind: str
) -> None:
    fake.latency = 0.5
    async with provider_client(kind, timeout=0.1) as http:
        with pytest.raises(ProviderError) as caught:
            await TwilioSmsProvider(settings_for(base_url), http).send(sms())

    assert caught.value.transient is True
    assert caught.value.code == "timeout"
    # The request left, and indeed the provider created the message.
    assert caught.value.ambiguous is True
    await wait_for_messages(fake, 1)


async def test_connection_refused_is_transient_and_not_ambiguous(http: ProviderHTTP) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ProviderError) as caught:
        await TwilioSmsProvider(settings_for(f"http://127.0.0.1:{port}"), http).send(sms())

    assert caught.value.transient is True
    assert caught.value.code == "connection_error"
    assert caught.value.ambiguous is False


async def test_fake_repeats_requests_like_twilio_unless_told_to_dedup(
    fake: FakeTwilio, base_url: str, http: ProviderHTTP
) -> None:
    provider = TwilioSmsProvider(settings_for(base_url), http)
    message = sms()

    first = await provider.send(message)
    second = await provider.send(message)
    assert first.external_id != second.external_id
    assert len(fake.messages) == 2

    fake.reset()
    fake.honour_idempotency_token = True
    first = await provider.send(message)
    second = await provider.send(message)
    assert first.external_id == second.external_id
    assert len(fake.messages) == 1


async def test_in_process_transport_works_too() -> None:
    fake = FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN)
    async with fake.client() as http:
        accepted = await TwilioSmsProvider(settings_for("http://fake"), http).send(sms())
    assert fake.messages[0]["sid"] == accepted.external_id


# --- signatures --------------------------------------------------------------------------------


def twilio_signature(url: str, params: dict[str, str], token: str) -> str:
    """Built here from Twilio's documented algorithm, independently of the code under test."""
    data = url
    for key in sorted(params):
        data += key + params[key]
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


DOCS_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
DOCS_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675309",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
}


def test_twilio_published_example_signature() -> None:
    # The worked example of Twilio's request validation docs (auth token 12345).
    expected = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert twilio_signature(DOCS_URL, DOCS_PARAMS, "12345") == expected
    assert verify_twilio_signature(DOCS_URL, DOCS_PARAMS, expected, "12345") is True
    assert verify_twilio_signature(DOCS_URL + "&x=1", DOCS_PARAMS, expected, "12345") is False


def test_repeated_parameters_sign_each_distinct_value_in_order() -> None:
    # Twilio's helper libraries' vector for repeated names (distinct values, sorted).
    pairs = [
        ("Sid", "CA123"),
        ("SidAccount", "AC123"),
        ("Digits", "5678"),
        ("Digits", "1234"),
        ("Digits", "1234"),
    ]
    assert verify_twilio_signature(DOCS_URL, pairs, "IK+Dwps556ElfBT0I3Rgjkr1wJU=", "12345")
    as_mapping = {"Sid": "CA123", "SidAccount": "AC123", "Digits": ["5678", "1234"]}
    assert verify_twilio_signature(DOCS_URL, as_mapping, "IK+Dwps556ElfBT0I3Rgjkr1wJU=", "12345")


def test_signature_accepts_a_correctly_signed_callback() -> None:
    url = f"{CALLBACK_URL}?attempt={uuid.uuid4()}"
    params = status_callback_params("SM" + "a" * 32, "delivered")
    signature = twilio_signature(url, params, AUTH_TOKEN)

    assert verify_twilio_signature(url, params, signature, AUTH_TOKEN) is True


@pytest.mark.parametrize(
    "tamper",
    ["param", "extra_param", "url", "token", "signature", "empty"],
)
def test_signature_rejects_forged_or_modified_requests(tamper: str) -> None:
    url = f"{CALLBACK_URL}?attempt=1"
    params = status_callback_params("SM" + "a" * 32, "delivered")
    signature = twilio_signature(url, params, AUTH_TOKEN)
    token = AUTH_TOKEN
    if tamper == "param":
        params = {**params, "MessageStatus": "read"}
    elif tamper == "extra_param":
        params = {**params, "ErrorCode": "30003"}
    elif tamper == "url":
        url = f"{CALLBACK_URL}?attempt=2"
    elif tamper == "token":
        token = "another-token"
    elif tamper == "signature":
        signature = twilio_signature(url, params, "another-token")
    elif tamper == "empty":
        signature = ""

    assert verify_twilio_signature(url, params, signature, token) is False


def test_signature_tolerates_default_port_added_or_removed() -> None:
    params = status_callback_params("SM" + "b" * 32, "sent")
    with_port = "https://mensajero.example.com:443/webhooks/twilio/status"
    signed_with_port = twilio_signature(with_port, params, AUTH_TOKEN)
    assert verify_twilio_signature(CALLBACK_URL, params, signed_with_port, AUTH_TOKEN)
    signed_without = twilio_signature(CALLBACK_URL, params, AUTH_TOKEN)
    assert verify_twilio_signature(with_port, params, signed_without, AUTH_TOKEN)


def test_signature_never_verifies_without_a_token() -> None:
    params = status_callback_params("SM" + "b" * 32, "sent")
    signature = twilio_signature(CALLBACK_URL, params, "")
    assert verify_twilio_signature(CALLBACK_URL, params, signature, "") is False


# --- parsing -----------------------------------------------------------------------------------

SID = "SM" + "c" * 32


@pytest.mark.parametrize(
    ("twilio_status", "event", "status"),
    [
        ("queued", TimelineEventType.QUEUED, None),
        ("accepted", TimelineEventType.QUEUED, None),
        ("sending", TimelineEventType.SENDING, None),
        ("sent", TimelineEventType.SENT, MessageStatus.SENT),
        ("delivered", TimelineEventType.DELIVERED, MessageStatus.DELIVERED),
        ("undelivered", TimelineEventType.UNDELIVERED, MessageStatus.UNDELIVERED),
        ("failed", TimelineEventType.FAILED, MessageStatus.FAILED),
        ("read", TimelineEventType.READ, MessageStatus.READ),
        ("canceled", TimelineEventType.CANCELED, MessageStatus.CANCELED),
    ],
)
def test_status_callbacks_map_to_our_events(
    twilio_status: str, event: TimelineEventType, status: MessageStatus | None
) -> None:
    parsed = parse_twilio_status_callback(status_callback_params(SID, twilio_status))

    assert parsed is not None
    assert parsed.provider == "twilio"
    assert parsed.external_id == SID
    assert parsed.event is event
    assert parsed.status is status
    assert parsed.dedup_key == f"twilio:{SID}:{twilio_status}"


def test_undelivered_carries_the_error_code_and_dlr_time() -> None:
    attempt_id = uuid.uuid4()
    params = status_callback_params(
        SID, "undelivered", error_code="30003", RawDlrDoneDate="2611221005"
    )

    parsed = parse_twilio_status_callback(params, url=f"{CALLBACK_URL}?attempt={attempt_id}")

    assert parsed is not None
    assert parsed.status is MessageStatus.UNDELIVERED
    assert parsed.error_code == "30003"
    assert parsed.error_message == "Twilio error 30003"
    assert parsed.dedup_key == f"twilio:{SID}:undelivered:30003"
    assert parsed.occurred_at == datetime(2026, 11, 22, 10, 5, tzinfo=UTC)
    assert parsed.attempt_id == attempt_id


def test_duplicate_callbacks_share_a_dedup_key() -> None:
    one = parse_twilio_status_callback(status_callback_params(SID, "delivered"))
    two = parse_twilio_status_callback(status_callback_params(SID, "delivered"))
    other = parse_twilio_status_callback(status_callback_params(SID, "sent"))
    assert one is not None and two is not None and other is not None
    assert one.dedup_key == two.dedup_key != other.dedup_key


@pytest.mark.parametrize("unknown", ["receiving", "received", "partially_delivered", "", "weird"])
def test_unknown_or_inbound_statuses_are_ignored(unknown: str) -> None:
    assert parse_twilio_status_callback(status_callback_params(SID, unknown)) is None


def test_callback_without_sid_is_ignored() -> None:
    assert parse_twilio_status_callback({"MessageStatus": "delivered"}) is None


def test_inbound_sms_becomes_a_reply() -> None:
    params = inbound_sms_params("+573001234567", "Sí, confirmo", message_sid="SM" + "d" * 32)

    reply = parse_twilio_inbound(params)

    assert reply is not None
    assert reply.channel is Channel.SMS
    assert reply.sender == "+573001234567"
    assert reply.recipient == "+15005550006"
    assert reply.text == "Sí, confirmo"
    assert reply.external_id == "SM" + "d" * 32
    assert reply.received_at.tzinfo is not None


def test_inbound_without_sender_is_ignored() -> None:
    assert parse_twilio_inbound({"Body": "hola", "MessageSid": SID}) is None
