"""Resend email client against the fake Resend over real HTTP; Svix signatures and events."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest
import pytest_asyncio
from pydantic import SecretStr

from mensajero.models import Channel, MessageStatus, TimelineEventType
from mensajero.providers.base import InvalidSignature, OutboundMessage, ProviderError
from mensajero.providers.email.resend import (
    ResendEmailProvider,
    parse_resend_event,
    verify_resend_signature,
)
from mensajero.providers.http import ProviderHTTP
from mensajero.settings import Settings
from tests.fakes.resend import FakeResend, event_payload
from tests.providers.helpers import CLIENT_KINDS, provider_client, wait_for_messages

API_KEY = "re_123456789"
# A secret as Resend shows it: "whsec_" + base64 of the key bytes.
SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


@pytest.fixture(scope="module")
def fake() -> FakeResend:
    return FakeResend(api_key=API_KEY)


@pytest.fixture(scope="module")
def base_url(fake: FakeResend) -> Iterator[str]:
    with fake.run_in_thread() as url:
        yield url


@pytest.fixture(autouse=True)
def _clean(fake: FakeResend) -> None:
    fake.reset()
    fake.latency = 0.0


@pytest_asyncio.fixture(params=CLIENT_KINDS)
async def http(request: pytest.FixtureRequest) -> AsyncIterator[ProviderHTTP]:
    async with provider_client(request.param, timeout=2.0) as client:
        yield client


def settings_for(base_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "resend_base_url": base_url,
        "resend_api_key": SecretStr(API_KEY),
        "resend_from_email": "no-reply@mensajero.example.com",
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


def email(**overrides: object) -> OutboundMessage:
    values: dict[str, object] = {
        "attempt_id": uuid.uuid4(),
        "organization_id": uuid.uuid4(),
        "channel": Channel.EMAIL,
        "recipient": "juan@example.com",
        "body": "Hola Juan, te recordamos tu sesión de mañana.",
        "subject": "Recordatorio: Tu sesión de kinesiología",
        "html": "<p>Hola Juan</p>",
        "from_address": "agenda@kine.example.com",
        "from_name": "Centro de Kinesiología",
        "reply_to": "contacto@kine.example.com",
        **overrides,
    }
    return OutboundMessage(**values)  # type: ignore[arg-type]


async def test_send_posts_json_with_bearer_and_idempotency_key(
    fake: FakeResend, base_url: str, http: ProviderHTTP
) -> None:
    message = email()

    accepted = await ResendEmailProvider(settings_for(base_url), http).send(message)

    assert accepted.provider == "resend"
    assert accepted.status is MessageStatus.SENT
    uuid.UUID(accepted.external_id)
    request = fake.requests[-1]
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.headers["idempotency-key"] == str(message.attempt_id)
    assert request.body == {
        "from": "Centro de Kinesiología <agenda@kine.example.com>",
        "to": ["juan@example.com"],
        "subject": "Recordatorio: Tu sesión de kinesiología",
        "text": "Hola Juan, te recordamos tu sesión de mañana.",
        "html": "<p>Hola Juan</p>",
        "reply_to": "contacto@kine.example.com",
        "tags": [
            {"name": "attempt_id", "value": str(message.attempt_id)},
            {"name": "organization_id", "value": str(message.organization_id)},
        ],
    }
    assert fake.messages[0]["id"] == accepted.external_id


async def test_sender_defaults_and_names_that_need_quoting(
    fake: FakeResend, base_url: str, http: ProviderHTTP
) -> None:
    provider = ResendEmailProvider(settings_for(base_url), http)
    await provider.send(email(from_address=None, from_name=None))
    await provider.send(email(from_address=None, from_name="Pérez, Juan"))

    assert fake.requests[0].body["from"] == "no-reply@mensajero.example.com"
    assert fake.requests[1].body["from"] == '"Pérez, Juan" <no-reply@mensajero.example.com>'


async def test_retrying_an_attempt_sends_one_email(
    fake: FakeResend, base_url: str, http: ProviderHTTP
) -> None:
    provider = ResendEmailProvider(settings_for(base_url), http)
    message = email()

    first = await provider.send(message)
    second = await provider.send(message)

    assert first.external_id == second.external_id
    assert len(fake.messages) == 1
    assert provider.idempotent is True


async def test_same_key_with_another_payload_is_permanent(
    base_url: str, http: ProviderHTTP
) -> None:
    provider = ResendEmailProvider(settings_for(base_url), http)
    message = email()
    await provider.send(message)

    with pytest.raises(ProviderError) as caught:
        await provider.send(email(attempt_id=message.attempt_id, body="otro texto"))

    assert caught.value.code == "invalid_idempotent_request"
    assert caught.value.status_code == 409
    assert caught.value.transient is False


async def test_concurrent_retry_of_the_same_key_is_transient(
    fake: FakeResend, base_url: str, http: ProviderHTTP
) -> None:
    fake.latency = 1.0
    provider = ResendEmailProvider(settings_for(base_url), http)
    message = email()

    first = asyncio.create_task(provider.send(message))
    # Wait until the fake holds the first request (it then sleeps for its latency).
    for _ in range(500):
        if fake.requests:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    with pytest.raises(ProviderError) as caught:
        await provider.send(message)
    accepted = await first

    assert caught.value.code == "concurrent_idempotent_requests"
    assert caught.value.transient is True
    assert [m["id"] for m in fake.messages] == [accepted.external_id]


async def test_validation_errors_are_permanent_with_resend_name_and_message(
    base_url: str, http: ProviderHTTP
) -> None:
    provider = ResendEmailProvider(settings_for(base_url), http)

    with pytest.raises(ProviderError) as bad_to:
        await provider.send(email(recipient="not-an-email"))
    with pytest.raises(ProviderError) as bad_from:
        await provider.send(email(from_address="nobody", from_name=None))

    assert bad_to.value.code == "validation_error"
    assert bad_to.value.status_code == 422
    assert bad_to.value.message.startswith("Invalid `to` field.")
    assert bad_to.value.transient is False
    assert bad_from.value.code == "invalid_from_address"
    assert bad_from.value.transient is False


async def test_invalid_api_key_is_permanent(base_url: str, http: ProviderHTTP) -> None:
    settings = settings_for(base_url, resend_api_key=SecretStr("re_wrong"))
    with pytest.raises(ProviderError) as caught:
        await ResendEmailProvider(settings, http).send(email())

    assert caught.value.code == "invalid_api_key"
    assert caught.value.status_code == 403
    assert caught.value.transient is False


async def test_rate_limit_is_transient_with_retry_after(
    fake: FakeResend, base_url: str, http: ProviderHTTP
) -> None:
    fake.rate_limit_next(1, retry_after=2)
    provider = ResendEmailProvider(settings_for(base_url), http)
    message = email()

    with pytest.raises(ProviderError) as caught:
        await provider.send(message)
    # The failed request kept no idempotency record: the retry sends.
    accepted = await provider.send(message)

    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.transient is True
    assert caught.value.retry_after == 2.0
    assert [m["id"] for m in fake.messages] == [accepted.external_id]


async def test_quotas(fake: FakeResend, base_url: str, http: ProviderHTTP) -> None:
    provider = ResendEmailProvider(settings_for(base_url), http)
    fake.fail_next(1, 429, code="daily_quota_exceeded", message="You have reached your daily quota")
    with pytest.raises(ProviderError) as daily:
        await provider.send(email())
    fake.fail_next(1, 429, code="monthly_quota_exceeded", message="Monthly quota reached")
    with pytest.raises(ProviderError) as monthly:
        await provider.send(email())

    assert daily.value.transient is True
    assert daily.value.retry_after == 3600.0
    assert monthly.value.transient is False


async def test_server_error_is_transient(
    fake: FakeResend, base_url: str, http: ProviderHTTP
) -> None:
    fake.fail_next(1, 500)
    with pytest.raises(ProviderError) as caught:
        await ResendEmailProvider(settings_for(base_url), http).send(email())

    assert caught.value.code == "internal_server_error"
    assert caught.value.transient is True
    assert caught.value.status_code == 500


@pytest.mark.parametrize("kind", CLIENT_KINDS)
async def test_retry_after_an_ambiguous_timeout_sends_once(
    fake: FakeResend, base_url: str, kind: str
) -> None:
    fake.latency = 0.5
    message = email()
    async with provider_client(kind, timeout=0.1) as http:
        with pytest.raises(ProviderError) as caught:
            await ResendEmailProvider(settings_for(base_url), http).send(message)

    assert caught.value.code == "timeout"
    assert caught.value.transient is True
    assert caught.value.ambiguous is True
    # Resend did accept it; the retry with the same key returns that email.
    await wait_for_messages(fake, 1)
    fake.latency = 0.0
    async with provider_client(kind, timeout=2.0) as http:
        accepted = await ResendEmailProvider(settings_for(base_url), http).send(message)
    assert [m["id"] for m in fake.messages] == [accepted.external_id]


async def test_recipient_pattern_failure(
    fake: FakeResend, base_url: str, http: ProviderHTTP
) -> None:
    fake.fail_recipients(r"@blocked\.example$", 422, code="validation_error", message="blocked")
    provider = ResendEmailProvider(settings_for(base_url), http)

    with pytest.raises(ProviderError):
        await provider.send(email(recipient="x@blocked.example"))
    await provider.send(email())

    assert [m["to"] for m in fake.messages] == [["juan@example.com"]]


# --- Svix signatures ---------------------------------------------------------------------------


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Built here from the Svix docs: HMAC-SHA256(base64-decoded secret, id.ts.body)."""
    key = base64.b64decode(secret.split("_", 1)[1])
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def delivery(
    payload: dict, *, secret: str = SECRET, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    msg_id = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
    ts = int(time.time()) if timestamp is None else timestamp
    return body, {
        "svix-id": msg_id,
        "svix-timestamp": str(ts),
        "svix-signature": sign(secret, msg_id, ts, body),
    }


def test_svix_signature_accepted() -> None:
    body, headers = delivery(event_payload("email.delivered", "em_1"))
    verify_resend_signature(body, headers, SECRET)


def test_several_signatures_one_of_them_valid() -> None:
    body, headers = delivery(event_payload("email.delivered", "em_1"))
    rotated = sign(
        "whsec_" + base64.b64encode(b"another-secret-another-secret!!").decode(),
        headers["svix-id"],
        int(headers["svix-timestamp"]),
        body,
    )
    headers["svix-signature"] = f"{rotated} v2,ignored {headers['svix-signature']}"
    verify_resend_signature(body, headers, SECRET)


def test_webhook_header_names_are_accepted_too() -> None:
    body, headers = delivery(event_payload("email.delivered", "em_1"))
    renamed = {k.replace("svix-", "webhook-"): v for k, v in headers.items()}
    verify_resend_signature(body, renamed, SECRET)


@pytest.mark.parametrize(
    "tamper",
    ["body", "id", "signature", "secret", "stale", "future", "missing", "garbage", "no_secret"],
)
def test_svix_signature_rejects(tamper: str) -> None:
    timestamp = int(time.time())
    if tamper == "stale":
        timestamp -= 6 * 60
    elif tamper == "future":
        timestamp += 6 * 60
    body, headers = delivery(event_payload("email.delivered", "em_1"), timestamp=timestamp)
    secret = SECRET
    if tamper == "body":
        body = body.replace(b"em_1", b"em_2")
    elif tamper == "id":
        headers["svix-id"] = "msg_other"
    elif tamper == "signature":
        headers["svix-signature"] = "v1," + base64.b64encode(b"x" * 32).decode()
    elif tamper == "secret":
        secret = "whsec_" + base64.b64encode(b"a-different-secret-of-32-bytes!!").decode()
    elif tamper == "missing":
        del headers["svix-signature"]
    elif tamper == "garbage":
        headers["svix-signature"] = "not a signature"
    elif tamper == "no_secret":
        secret = ""

    with pytest.raises(InvalidSignature):
        verify_resend_signature(body, headers, secret)


# --- events ------------------------------------------------------------------------------------


def test_delivered_event() -> None:
    attempt_id = uuid.uuid4()
    payload = event_payload("email.delivered", "em_1", attempt_id=str(attempt_id))

    event = parse_resend_event(payload, svix_id="msg_abc")

    assert event is not None
    assert event.provider == "resend"
    assert event.external_id == "em_1"
    assert event.event is TimelineEventType.DELIVERED
    assert event.status is MessageStatus.DELIVERED
    assert event.occurred_at == datetime(2026, 11, 22, 10, 0, 5, tzinfo=UTC)
    assert event.dedup_key == "resend:msg_abc"
    assert event.attempt_id == attempt_id


def test_hard_bounce_sets_error_fields() -> None:
    payload = event_payload(
        "email.bounced",
        "em_2",
        bounce={
            "type": "Permanent",
            "subType": "General",
            "message": "Mailbox does not exist",
        },
    )

    event = parse_resend_event(payload)

    assert event is not None
    assert event.event is TimelineEventType.BOUNCED
    assert event.status is MessageStatus.BOUNCED
    assert event.error_code == "bounce_hard"
    assert event.error_message == "Mailbox does not exist"
    assert event.metadata["bounceType"] == "hard"
    assert event.metadata["bounceSubType"] == "General"


def test_soft_bounce() -> None:
    payload = event_payload(
        "email.bounced", "em_2", bounce={"type": "Transient", "message": "Mailbox full"}
    )
    event = parse_resend_event(payload)
    assert event is not None
    assert event.error_code == "bounce_soft"
    assert event.metadata["bounceType"] == "soft"


def test_opened_and_clicked_are_engagement_events() -> None:
    opened = parse_resend_event(event_payload("email.opened", "em_3"))
    clicked = parse_resend_event(
        event_payload(
            "email.clicked",
            "em_3",
            click={
                "ipAddress": "122.115.53.11",
                "link": "https://resend.com",
                "timestamp": "2026-11-22T10:15:00.000Z",
                "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)",
            },
        )
    )

    assert opened is not None and clicked is not None
    assert opened.event is TimelineEventType.OPENED
    assert opened.status is None
    assert clicked.event is TimelineEventType.CLICKED
    assert clicked.status is None
    assert clicked.metadata["ip"] == "122.115.53.11"
    assert clicked.metadata["link"] == "https://resend.com"
    assert clicked.metadata["userAgent"].startswith("Mozilla/5.0")
    assert clicked.occurred_at == datetime(2026, 11, 22, 10, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("event_type", "event", "status"),
    [
        ("email.sent", TimelineEventType.SENT, MessageStatus.SENT),
        ("email.delivery_delayed", TimelineEventType.SENDING, None),
        ("email.complained", TimelineEventType.COMPLAINED, None),
        ("email.failed", TimelineEventType.FAILED, MessageStatus.FAILED),
        ("email.suppressed", TimelineEventType.FAILED, MessageStatus.FAILED),
    ],
)
def test_other_email_events(
    event_type: str, event: TimelineEventType, status: MessageStatus | None
) -> None:
    parsed = parse_resend_event(event_payload(event_type, "em_4"))
    assert parsed is not None
    assert parsed.event is event
    assert parsed.status is status


def test_failed_carries_its_reason() -> None:
    parsed = parse_resend_event(
        event_payload("email.failed", "em_5", failed={"reason": "reached_daily_quota"})
    )
    assert parsed is not None
    assert parsed.error_code == "reached_daily_quota"


def test_dedup_key_without_svix_id_is_stable_per_event() -> None:
    one = parse_resend_event(event_payload("email.delivered", "em_6"))
    two = parse_resend_event(event_payload("email.delivered", "em_6"))
    opened = parse_resend_event(event_payload("email.opened", "em_6"))
    assert one is not None and two is not None and opened is not None
    assert one.dedup_key == two.dedup_key != opened.dedup_key
    assert len(one.dedup_key) <= 200


def test_tags_as_a_dict_also_give_the_attempt() -> None:
    attempt_id = uuid.uuid4()
    payload = event_payload("email.sent", "em_7")
    payload["data"]["tags"] = {"attempt_id": str(attempt_id)}
    parsed = parse_resend_event(payload)
    assert parsed is not None and parsed.attempt_id == attempt_id


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "contact.created", "created_at": "2026-11-22T10:00:00Z", "data": {"id": "c1"}},
        {"type": "domain.updated", "data": {"id": "d1", "name": "example.com"}},
        {"type": "email.received", "data": {"email_id": "em_8"}},
        {"type": "email.something_new", "data": {"email_id": "em_8"}},
        {"type": "email.delivered", "data": "not an object"},
        {"type": "email.delivered", "data": {}},
        {},
    ],
)
def test_unknown_or_malformed_events_are_ignored(payload: dict) -> None:
    assert parse_resend_event(payload) is None
