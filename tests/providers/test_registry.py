"""Provider registry, the pooled HTTP client, and Retry-After parsing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mensajero.models import Channel
from mensajero.providers.base import ProviderEvent, is_idempotent
from mensajero.providers.email.resend import ResendEmailProvider
from mensajero.providers.http import LeanProviderClient, PooledProviderClient, parse_retry_after
from mensajero.providers.registry import (
    build_providers,
    create_provider_http_client,
    provider_names,
)
from mensajero.providers.sandbox import SandboxProvider
from mensajero.providers.sms.twilio import TwilioSmsProvider
from mensajero.providers.whatsapp.evolution import EvolutionWhatsAppProvider
from mensajero.settings import ProviderHTTPClientName, Settings


async def _emit(event: ProviderEvent, delay: float) -> None:
    raise AssertionError("not expected")


async def test_sandbox_everywhere_by_default() -> None:
    settings = Settings()
    async with create_provider_http_client(settings) as http:
        providers = build_providers(settings, http, emit=_emit)

    assert set(providers) == {Channel.SMS, Channel.EMAIL, Channel.WHATSAPP}
    for channel, provider in providers.items():
        assert isinstance(provider, SandboxProvider)
        assert provider.channel is channel
    assert provider_names(settings) == {
        Channel.SMS: "sandbox",
        Channel.EMAIL: "sandbox",
        Channel.WHATSAPP: "sandbox",
    }


async def test_real_providers_by_setting() -> None:
    settings = Settings(
        sms_provider="twilio", email_provider="resend", whatsapp_provider="evolution"
    )
    async with create_provider_http_client(settings) as http:
        providers = build_providers(settings, http, emit=_emit)

    assert isinstance(providers[Channel.SMS], TwilioSmsProvider)
    assert isinstance(providers[Channel.EMAIL], ResendEmailProvider)
    assert isinstance(providers[Channel.WHATSAPP], EvolutionWhatsAppProvider)
    assert [is_idempotent(providers[c]) for c in Channel] == [False, False, True]
    assert provider_names(settings) == {
        Channel.SMS: "twilio",
        Channel.EMAIL: "resend",
        Channel.WHATSAPP: "evolution",
    }


async def test_mixed_sandbox_and_real() -> None:
    settings = Settings(email_provider="resend")
    async with create_provider_http_client(settings) as http:
        providers = build_providers(settings, http, emit=_emit)
    assert isinstance(providers[Channel.EMAIL], ResendEmailProvider)
    assert isinstance(providers[Channel.SMS], SandboxProvider)


async def test_pooled_client_limits_and_timeouts() -> None:
    settings = Settings(
        provider_timeout_seconds=7.5,
        provider_connect_timeout_seconds=2.0,
        provider_max_connections=32,
        provider_http_client=ProviderHTTPClientName.AIOHTTP,
    )
    async with create_provider_http_client(settings) as http:
        assert isinstance(http, PooledProviderClient)
        session = http._open()
        assert session.timeout.sock_read == 7.5
        assert session.timeout.connect == 7.5  # a free connection, connecting included
        assert session.timeout.sock_connect == 2.0
        assert session.timeout.total is None
        assert session.connector is not None and session.connector.limit == 32
        assert session.headers["User-Agent"].startswith("mensajero/")
    assert session.closed


async def test_lean_client_is_the_default_with_the_settings_limits() -> None:
    settings = Settings(
        provider_timeout_seconds=7.5,
        provider_connect_timeout_seconds=2.0,
        provider_max_connections=32,
    )
    async with create_provider_http_client(settings) as http:
        assert isinstance(http, LeanProviderClient)
        assert http._http.timeout == 7.5
        assert http._http.connect_timeout == 2.0
        assert http._http.max_connections == 32
        assert http._http.user_agent.startswith("mensajero/")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        (" 2.5 ", 2.5),
        ("0", 0.0),
        ("-3", 0.0),
        ("Sun, 22 Nov 2026 10:00:30 GMT", 30.0),
        ("Sun, 22 Nov 2026 09:59:00 GMT", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
        ("nan", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    now = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)
    assert parse_retry_after(value, now=now) == expected
