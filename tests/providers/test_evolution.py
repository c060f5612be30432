"""Evolution WhatsApp client against the fake Evolution over real HTTP; webhook key and parsing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest
import pytest_asyncio
from pydantic import SecretStr

from mensajero.models import Channel, MessageStatus, TimelineEventType
from mensajero.providers.base import (
    InboundReply,
    InvalidSignature,
    OutboundMessage,
    ProviderError,
    ProviderEvent,
)
from mensajero.providers.http import ProviderHTTP
from mensajero.providers.whatsapp.evolution import (
    EvolutionWhatsAppProvider,
    evolution_webhook_key,
    parse_evolution_webhook,
    phone_from_jid,
    verify_evolution_api_key,
)
from mensajero.settings import Settings
from tests.fakes.evolution import FakeEvolution, messages_update, messages_upsert, webhook
from tests.providers.helpers import CLIENT_KINDS, provider_client, wait_for_messages

API_KEY = "B6D711FCDE4D4FD5936544120E713976"


@pytest.fixture(scope="module")
def fake() -> FakeEvolution:
    return FakeEvolution(api_key=API_KEY, instances=("mensajero", "coordinalo-main"))


@pytest.fixture(scope="module")
def base_url(fake: FakeEvolution) -> Iterator[str]:
    with fake.run_in_thread() as url:
        yield url


@pytest.fixture(autouse=True)
def _clean(fake: FakeEvolution) -> None:
    fake.reset()
    fake.latency = 0.0
    fake.not_on_whatsapp.clear()


@pytest_asyncio.fixture(params=CLIENT_KINDS)
async def http(request: pytest.FixtureRequest) -> AsyncIterator[ProviderHTTP]:
    async with provider_client(request.param, timeout=2.0) as client:
        yield client


def settings_for(base_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "evolution_base_url": base_url,
        "evolution_api_key": SecretStr(API_KEY),
        "evolution_instance": "mensajero",
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


def whatsapp(recipient: str = "+573001234567", **overrides: object) -> OutboundMessage:
    values: dict[str, object] = {
        "attempt_id": uuid.uuid4(),
        "organization_id": uuid.uuid4(),
        "channel": Channel.WHATSAPP,
        "recipient": recipient,
        "body": "Hola Juan, tienes una sesión agendada para mañana...",
        **overrides,
    }
    return OutboundMessage(**values)  # type: ignore[arg-type]


async def test_send_text_with_apikey_header(
    fake: FakeEvolution, base_url: str, http: ProviderHTTP
) -> None:
    accepted = await EvolutionWhatsAppProvider(settings_for(base_url), http).send(whatsapp())

    request = fake.requests[-1]
    assert request.path == "/message/sendText/mensajero"
    assert request.headers["apikey"] == API_KEY
    assert request.body == {
        "number": "573001234567",
        "text": "Hola Juan, tienes una sesión agendada para mañana...",
    }
    [sent] = fake.messages
    assert accepted.provider == "evolution"
    assert accepted.external_id == sent["key"]["id"]
    assert accepted.external_id.startswith("3EB0")
    assert accepted.status is MessageStatus.SENT
    assert accepted.raw["status"] == "PENDING"


async def test_instance_from_the_organization_config(
    fake: FakeEvolution, base_url: str, http: ProviderHTTP
) -> None:
    message = whatsapp(metadata={"instanceName": "coordinalo-main"})
    await EvolutionWhatsAppProvider(settings_for(base_url), http).send(message)
    assert fake.requests[-1].path == "/message/sendText/coordinalo-main"


async def test_number_not_on_whatsapp_is_permanent(
    fake: FakeEvolution, base_url: str, http: ProviderHTTP
) -> None:
    fake.not_on_whatsapp.add("573009999999")
    with pytest.raises(ProviderError) as caught:
        await EvolutionWhatsAppProvider(settings_for(base_url), http).send(
            whatsapp("+573009999999")
        )

    assert caught.value.code == "not_on_whatsapp"
    assert caught.value.message == "573009999999 is not on WhatsApp"
    assert caught.value.status_code == 400
    assert caught.value.transient is False
    assert fake.messages == []


async def test_unknown_instance_and_bad_key_are_permanent(
    base_url: str, http: ProviderHTTP
) -> None:
    with pytest.raises(ProviderError) as no_instance:
        await EvolutionWhatsAppProvider(
            settings_for(base_url, evolution_instance="nope"), http
        ).send(whatsapp())
    with pytest.raises(ProviderError) as bad_key:
        await EvolutionWhatsAppProvider(
            settings_for(base_url, evolution_api_key=SecretStr("wrong")), http
        ).send(whatsapp())

    assert no_instance.value.status_code == 404
    assert no_instance.value.code == "not_found"
    assert no_instance.value.message == 'The "nope" instance does not exist'
    assert no_instance.value.transient is False
    assert bad_key.value.status_code == 401
    assert bad_key.value.code == "unauthorized"
    assert bad_key.value.transient is False


async def test_server_error_and_rate_limit_are_transient(
    fake: FakeEvolution, base_url: str, http: ProviderHTTP
) -> None:
    provider = EvolutionWhatsAppProvider(settings_for(base_url), http)
    fake.fail_next(1, 500, message="Connection Closed")
    with pytest.raises(ProviderError) as server:
        await provider.send(whatsapp())
    fake.rate_limit_next(1, retry_after=3)
    with pytest.raises(ProviderError) as limited:
        await provider.send(whatsapp())

    assert server.value.transient is True
    assert server.value.code == "internal_server_error"
    assert server.value.message == "Connection Closed"
    assert limited.value.transient is True
    assert limited.value.retry_after == 3.0


@pytest.mark.parametrize("kind", CLIENT_KINDS)
async def test_timeout_is_transient_and_ambiguous(
    fake: FakeEvolution, base_url: str, kind: str
) -> None:
    fake.latency = 0.5
    async with provider_client(kind, timeout=0.1) as http:
        provider = EvolutionWhatsAppProvider(settings_for(base_url), http)
        with pytest.raises(ProviderError) as caught:
            await provider.send(whatsapp())

    assert caught.value.transient is True
    assert caught.value.ambiguous is True
    assert provider.idempotent is False
    await wait_for_messages(fake, 1)


async def test_recipient_without_digits_is_rejected_before_sending(
    fake: FakeEvolution, base_url: str, http: ProviderHTTP
) -> None:
    with pytest.raises(ProviderError) as caught:
        await EvolutionWhatsAppProvider(settings_for(base_url), http).send(whatsapp("nadie"))
    assert caught.value.transient is False
    assert fake.requests == []


# --- webhook key -------------------------------------------------------------------------------


def test_apikey_in_body_or_header_verifies() -> None:
    payload = messages_update("3EB0AAA", "DELIVERY_ACK", apikey=API_KEY)
    verify_evolution_api_key(payload, {}, API_KEY)
    without = messages_update("3EB0AAA", "DELIVERY_ACK", apikey=None)
    verify_evolution_api_key(without, {"apikey": API_KEY}, API_KEY)
    verify_evolution_api_key(without, {"ApiKey": API_KEY}, API_KEY)


@pytest.mark.parametrize(
    ("body_key", "header_key", "expected"),
    [
        ("wrong", None, API_KEY),
        (None, None, API_KEY),
        (None, "wrong", API_KEY),
        (API_KEY[:-1], None, API_KEY),
        (API_KEY, None, ""),
        ("", "", ""),
    ],
)
def test_wrong_or_missing_apikey_is_rejected(
    body_key: str | None, header_key: str | None, expected: str
) -> None:
    payload = messages_update("3EB0AAA", "DELIVERY_ACK", apikey=body_key)
    headers = {"apikey": header_key} if header_key is not None else {}
    with pytest.raises(InvalidSignature):
        verify_evolution_api_key(payload, headers, expected)


def test_webhook_key_defaults_to_the_api_key() -> None:
    assert evolution_webhook_key(Settings(evolution_api_key=SecretStr("a"))) == "a"
    assert (
        evolution_webhook_key(
            Settings(
                evolution_api_key=SecretStr("a"), evolution_webhook_api_key=SecretStr("instance")
            )
        )
        == "instance"
    )


# --- parsing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("evolution_status", "event", "status"),
    [
        ("SERVER_ACK", TimelineEventType.SENT, MessageStatus.SENT),
        ("DELIVERY_ACK", TimelineEventType.DELIVERED, MessageStatus.DELIVERED),
        ("READ", TimelineEventType.READ, MessageStatus.READ),
        ("PLAYED", TimelineEventType.READ, MessageStatus.READ),
        ("ERROR", TimelineEventType.FAILED, MessageStatus.FAILED),
        ("PENDING", TimelineEventType.SENDING, None),
        (3, TimelineEventType.DELIVERED, MessageStatus.DELIVERED),
    ],
)
def test_messages_update_maps_statuses(
    evolution_status: str | int, event: TimelineEventType, status: MessageStatus | None
) -> None:
    [parsed] = parse_evolution_webhook(messages_update("3EB0C431D28B1B1A", evolution_status))

    assert isinstance(parsed, ProviderEvent)
    assert parsed.provider == "evolution"
    assert parsed.external_id == "3EB0C431D28B1B1A"
    assert parsed.event is event
    assert parsed.status is status
    assert parsed.occurred_at == datetime(2026, 11, 22, 10, 0, 5, tzinfo=UTC)
    assert parsed.metadata["instanceName"] == "mensajero"


def test_error_status_carries_an_error() -> None:
    [parsed] = parse_evolution_webhook(messages_update("3EB0X", "ERROR"))
    assert isinstance(parsed, ProviderEvent)
    assert parsed.error_code == "whatsapp_error"
    assert parsed.error_message


@pytest.mark.parametrize("event_name", ["messages.update", "MESSAGES_UPDATE", "messages-update"])
def test_event_name_casing(event_name: str) -> None:
    payload = messages_update("3EB0Y", "READ")
    payload["event"] = event_name
    [parsed] = parse_evolution_webhook(payload)
    assert isinstance(parsed, ProviderEvent) and parsed.status is MessageStatus.READ


def test_duplicates_share_a_dedup_key_and_statuses_differ() -> None:
    [one] = parse_evolution_webhook(messages_update("3EB0Z", "DELIVERY_ACK"))
    [two] = parse_evolution_webhook(messages_update("3EB0Z", "DELIVERY_ACK"))
    [read] = parse_evolution_webhook(messages_update("3EB0Z", "READ"))
    assert isinstance(one, ProviderEvent) and isinstance(two, ProviderEvent)
    assert isinstance(read, ProviderEvent)
    assert one.dedup_key == two.dedup_key == "evolution:3EB0Z:DELIVERY_ACK"
    assert read.dedup_key != one.dedup_key


def test_v1_shape_with_nested_key() -> None:
    payload = webhook(
        "MESSAGES_UPDATE",
        [
            {
                "key": {"id": "3EB0V1", "remoteJid": "573001234567@s.whatsapp.net", "fromMe": True},
                "status": "DELIVERY_ACK",
            }
        ],
    )
    [parsed] = parse_evolution_webhook(payload)
    assert isinstance(parsed, ProviderEvent) and parsed.external_id == "3EB0V1"


@pytest.mark.parametrize(
    "payload",
    [
        messages_update("3EB0U", "DELETED"),
        messages_update("3EB0U", "SOMETHING_NEW"),
        messages_update("3EB0U", "READ", from_me=False),  # a receipt of a message to us
        webhook("messages.update", {"status": "READ"}),
        webhook("connection.update", {"instance": "mensajero", "state": "open"}),
        webhook("contacts.upsert", [{"remoteJid": "573001234567@s.whatsapp.net"}]),
        webhook("messages.update", "not an object"),
        {},
    ],
)
def test_unknown_events_and_statuses_are_ignored(payload: dict) -> None:
    assert parse_evolution_webhook(payload) == []


def test_inbound_conversation_becomes_a_reply() -> None:
    payload = messages_upsert("573001234567", "Sí, confirmo", message_id="3EB0REPLY")

    [reply] = parse_evolution_webhook(payload)

    assert isinstance(reply, InboundReply)
    assert reply.provider == "evolution"
    assert reply.channel is Channel.WHATSAPP
    assert reply.sender == "+573001234567"
    assert reply.recipient == "+573009876543"
    assert reply.text == "Sí, confirmo"
    assert reply.external_id == "3EB0REPLY"
    assert reply.received_at == datetime.fromtimestamp(1795341606, UTC)
    assert reply.metadata["pushName"] == "Juan Pérez"


def test_inbound_extended_text() -> None:
    payload = messages_upsert("56912345678", "Confirmo mi hora", extended=True)
    payload["event"] = "MESSAGES_UPSERT"
    [reply] = parse_evolution_webhook(payload)
    assert isinstance(reply, InboundReply)
    assert reply.sender == "+56912345678"
    assert reply.text == "Confirmo mi hora"


def test_inbound_with_lid_uses_the_alternate_phone_jid() -> None:
    payload = messages_upsert("573001234567", "hola")
    payload["data"]["key"]["remoteJid"] = "123456789012345@lid"
    payload["data"]["key"]["remoteJidAlt"] = "573001234567@s.whatsapp.net"
    [reply] = parse_evolution_webhook(payload)
    assert isinstance(reply, InboundReply) and reply.sender == "+573001234567"


def test_our_own_echo_is_not_a_reply() -> None:
    payload = messages_upsert("573001234567", "eco de lo que enviamos", from_me=True)
    assert parse_evolution_webhook(payload) == []


def test_group_messages_are_not_replies() -> None:
    payload = messages_upsert("573001234567", "hola a todos")
    payload["data"]["key"]["remoteJid"] = "120363041967849074@g.us"
    assert parse_evolution_webhook(payload) == []


def test_media_without_text_is_ignored() -> None:
    payload = messages_upsert("573001234567", "x")
    payload["data"]["message"] = {"imageMessage": {"mimetype": "image/jpeg"}}
    assert parse_evolution_webhook(payload) == []


def test_phone_from_jid() -> None:
    assert phone_from_jid("573001234567@s.whatsapp.net") == "+573001234567"
    assert phone_from_jid("573001234567:12@s.whatsapp.net") == "+573001234567"
    assert phone_from_jid("120363041967849074@g.us") is None
    assert phone_from_jid("status@broadcast") is None
    assert phone_from_jid(None) is None
