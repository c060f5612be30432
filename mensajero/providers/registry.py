"""Which provider serves each channel, chosen by the settings enums.

Workers build the providers once in ``on_startup``::

    http = create_provider_http_client(settings)
    providers = build_providers(settings, http, emit=emit_provider_event)
    provider = providers[Channel(log.channel)]
"""

from __future__ import annotations

import random
from collections.abc import Callable

from mensajero.models import Channel
from mensajero.providers.base import ChannelProvider
from mensajero.providers.email.resend import ResendEmailProvider
from mensajero.providers.http import ProviderHTTP, create_provider_http_client
from mensajero.providers.sandbox import EmitEvent, SandboxProvider
from mensajero.providers.sms.twilio import TwilioSmsProvider
from mensajero.providers.whatsapp.evolution import EvolutionWhatsAppProvider
from mensajero.settings import (
    EmailProviderName,
    Settings,
    SmsProviderName,
    WhatsAppProviderName,
)

__all__ = ["build_providers", "create_provider_http_client", "provider_names"]

ProviderFactory = Callable[[Settings, ProviderHTTP, EmitEvent], ChannelProvider]

_SMS: dict[SmsProviderName, ProviderFactory] = {
    SmsProviderName.TWILIO: lambda settings, http, _emit: TwilioSmsProvider(settings, http),
}
_EMAIL: dict[EmailProviderName, ProviderFactory] = {
    EmailProviderName.RESEND: lambda settings, http, _emit: ResendEmailProvider(settings, http),
}
_WHATSAPP: dict[WhatsAppProviderName, ProviderFactory] = {
    WhatsAppProviderName.EVOLUTION: lambda settings, http, _emit: EvolutionWhatsAppProvider(
        settings, http
    ),
}


def provider_names(settings: Settings) -> dict[Channel, str]:
    """The provider name each channel uses (what ``CommunicationLog.provider`` records)."""
    return {
        Channel.SMS: str(settings.sms_provider),
        Channel.EMAIL: str(settings.email_provider),
        Channel.WHATSAPP: str(settings.whatsapp_provider),
    }


def build_providers(
    settings: Settings,
    http: ProviderHTTP,
    *,
    emit: EmitEvent,
    rng: random.Random | None = None,
) -> dict[Channel, ChannelProvider]:
    """One provider per channel; ``sandbox`` channels get a :class:`SandboxProvider`.

    ``emit`` schedules the sandbox's simulated callbacks; ``rng`` makes the
    sandbox's failures reproducible in tests.
    """
    choices: list[tuple[Channel, str, dict]] = [
        (Channel.SMS, settings.sms_provider, _SMS),
        (Channel.EMAIL, settings.email_provider, _EMAIL),
        (Channel.WHATSAPP, settings.whatsapp_provider, _WHATSAPP),
    ]
    providers: dict[Channel, ChannelProvider] = {}
    for channel, name, factories in choices:
        if name == "sandbox":
            providers[channel] = SandboxProvider(channel, settings, emit, rng=rng)
        else:
            providers[channel] = factories[name](settings, http, emit)
    return providers
