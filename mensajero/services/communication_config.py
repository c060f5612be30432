"""An organization's communication configuration (Coordinalo's ``/communication/config``).

The document has three parts, in the seed's shape: ``email`` (Resend sender),
``whatsapp`` (Evolution instance) and ``preferences`` (default channel,
fallback, quiet hours). Updates are partial merges, like the seed's PUT: only
the keys given change, nested objects included (``preferences.quietHours``).
``status`` and ``lastCheck`` are written by provider health checks, never by
callers.

Quiet hours defer, never drop: a send inside the window is created SCHEDULED
with ``not_before`` at the window's end, in the configured time zone (the
organization's when the config names none). Receipts are exempt: a receipt
answers something the client just did, so it is expected right away; every
other type (reminders, confirmations, campaigns, manual messages,
reactivations) waits for the morning.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import flag_modified

from mensajero.models import Channel, ChannelConfig, CommunicationType, utcnow
from mensajero.repositories.communication_config import ChannelConfigRepository
from mensajero.services.errors import InvalidInput
from mensajero.settings import EmailProviderName, WhatsAppProviderName, get_settings

# Types that are sent even inside quiet hours (see the module docstring).
QUIET_HOURS_EXEMPT_TYPES: frozenset[str] = frozenset({CommunicationType.RECEIPT})

_HH_MM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
SECTIONS = ("email", "whatsapp", "preferences")


def default_config_document() -> dict[str, dict[str, Any]]:
    settings = get_settings()
    return {
        "email": {
            "enabled": True,
            "provider": settings.email_provider.value,
            "fromEmail": settings.resend_from_email,
            "fromName": "",
            "replyTo": None,
            "status": None,
            "lastCheck": None,
        },
        "whatsapp": {
            "enabled": True,
            "provider": settings.whatsapp_provider.value,
            "instanceName": settings.evolution_instance,
            "phoneNumber": None,
            "status": None,
            "lastCheck": None,
        },
        "preferences": {
            "defaultChannel": Channel.WHATSAPP.value,
            "fallbackEnabled": False,
            "fallbackChannel": Channel.EMAIL.value,
            "quietHours": {"enabled": False, "start": "22:00", "end": "08:00", "timezone": None},
        },
    }


def _merged(defaults: dict[str, Any], stored: Mapping[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(defaults)
    for key, value in stored.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), dict):
            result[key] = _merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def config_document(config: ChannelConfig | None) -> dict[str, dict[str, Any]]:
    """The full document: stored values over defaults, so every key is present."""
    defaults = default_config_document()
    if config is None:
        return defaults
    return {
        section: _merged(defaults[section], getattr(config, section) or {}) for section in SECTIONS
    }


async def get_config(
    session: AsyncSession, *, organization_id: uuid.UUID
) -> dict[str, dict[str, Any]]:
    config = await ChannelConfigRepository(session, organization_id).get_for_organization()
    return config_document(config)


# --- validation of a partial update -------------------------------------------------


def _bool(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"{field} must be true or false", field=field)
    return value


def _text(value: Any, field: str, *, max_length: int = 200, nullable: bool = False) -> str | None:
    if value is None and nullable:
        return None
    if not isinstance(value, str) or len(value) > max_length:
        raise InvalidInput(
            f"{field} must be a text of at most {max_length} characters", field=field
        )
    return value.strip()


def _email(value: Any, field: str, *, nullable: bool) -> str | None:
    if value is None or (nullable and value == ""):
        if nullable:
            return None
        raise InvalidInput(f"{field} is required", field=field)
    if not isinstance(value, str) or not _EMAIL.match(value.strip()) or len(value) > 320:
        raise InvalidInput(f"{field} must be an email address", field=field)
    return value.strip().lower()


def _choice(value: Any, field: str, choices: frozenset[str]) -> str:
    if not isinstance(value, str) or value.lower() not in choices:
        raise InvalidInput(f"{field} must be one of {', '.join(sorted(choices))}", field=field)
    return value.lower()


def _phone(value: Any, field: str) -> str | None:
    if value is None or value == "":
        return None
    try:
        parsed = phonenumbers.parse(str(value), None)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is None or not phonenumbers.is_valid_number(parsed):
        raise InvalidInput(f"{field} must be a phone number in E.164 (+56912345678)", field=field)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def validate_time_zone(value: Any, field: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be an IANA time zone name", field=field)
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # "Chile" is a directory
        raise InvalidInput(
            f"'{value}' is not an IANA time zone (e.g. America/Santiago)", field=field
        ) from None
    return value


def _hh_mm(value: Any, field: str) -> str:
    if not isinstance(value, str) or not _HH_MM.match(value):
        raise InvalidInput(f"{field} must be a time as HH:MM (00:00 to 23:59)", field=field)
    return value


_CHANNELS = frozenset(channel.value for channel in Channel)
_VALIDATORS: dict[str, dict[str, Any]] = {
    "email": {
        "enabled": _bool,
        "provider": lambda v, f: _choice(v, f, frozenset(p.value for p in EmailProviderName)),
        "fromEmail": lambda v, f: _email(v, f, nullable=False),
        "fromName": lambda v, f: _text(v, f, nullable=True),
        "replyTo": lambda v, f: _email(v, f, nullable=True),
    },
    "whatsapp": {
        "enabled": _bool,
        "provider": lambda v, f: _choice(v, f, frozenset(p.value for p in WhatsAppProviderName)),
        "instanceName": lambda v, f: _text(v, f, max_length=100),
        "phoneNumber": _phone,
    },
    "preferences": {
        "defaultChannel": lambda v, f: _choice(v, f, _CHANNELS),
        "fallbackEnabled": _bool,
        "fallbackChannel": lambda v, f: _choice(v, f, _CHANNELS),
        "quietHours": {
            "enabled": _bool,
            "start": _hh_mm,
            "end": _hh_mm,
            "timezone": validate_time_zone,
        },
    },
}


def _validate(changes: Any, validators: Mapping[str, Any], path: str) -> dict[str, Any]:
    if not isinstance(changes, Mapping):
        raise InvalidInput(f"{path or 'config'} must be an object", field=path or None)
    clean: dict[str, Any] = {}
    for key, value in changes.items():
        field = f"{path}.{key}" if path else key
        validator = validators.get(key)
        if validator is None:
            raise InvalidInput(f"{field} cannot be changed", field=field)
        if isinstance(validator, Mapping):
            clean[key] = _validate(value, validator, field)
        else:
            clean[key] = validator(value, field)
    return clean


async def update_config(
    session: AsyncSession, *, organization_id: uuid.UUID, changes: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """Merge ``changes`` (a partial document) into the configuration; returns the whole of it."""
    clean = _validate(changes, _VALIDATORS, "")
    repository = ChannelConfigRepository(session, organization_id)
    config = await repository.get_for_organization()
    if config is None:
        config = await repository.add(ChannelConfig(organization_id=organization_id))
    document = config_document(config)
    merged = _merged(document, clean)
    preferences = merged["preferences"]
    if preferences["fallbackEnabled"] and preferences["fallbackChannel"] == Channel.WHATSAPP:
        raise InvalidInput(
            "the fallback channel must differ from WhatsApp, whose failures it covers",
            field="preferences.fallbackChannel",
        )
    for section in SECTIONS:
        setattr(config, section, merged[section])
        flag_modified(config, section)
    config.updated_at = utcnow()
    await session.flush()
    return merged


# --- quiet hours -------------------------------------------------------------------


def _parse_hh_mm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def quiet_hours_deferral(
    config: Mapping[str, Any], organization_timezone: str, now: datetime
) -> datetime | None:
    """When a send made at ``now`` may go out: the end of the quiet window, or None.

    ``config`` is the configuration document (or just its ``preferences``).
    Windows may cross midnight (22:00-08:00). Times are wall-clock times in
    the window's time zone, so the end stays 08:00 local across DST changes
    (zoneinfo does the arithmetic; an end falling in a DST gap is moved past it).
    """
    preferences = config.get("preferences", config)
    quiet_hours = preferences.get("quietHours") or {}
    if not quiet_hours.get("enabled"):
        return None
    start = _parse_hh_mm(quiet_hours.get("start") or "22:00")
    end = _parse_hh_mm(quiet_hours.get("end") or "08:00")
    if start == end:
        return None
    zone = ZoneInfo(quiet_hours.get("timezone") or organization_timezone or "UTC")
    local_now = now.astimezone(zone)
    clock = local_now.time().replace(tzinfo=None)
    today = local_now.date()
    if start < end:
        if not start <= clock < end:
            return None
        end_date = today
    elif clock >= start:
        end_date = today + timedelta(days=1)
    elif clock < end:
        end_date = today
    else:
        return None
    local_end = datetime.combine(end_date, end, tzinfo=zone)
    # Round-trip through UTC: a wall time in a DST gap does not exist, and
    # zoneinfo resolves it to the instant right after the gap.
    return local_end.astimezone(UTC)


def is_exempt_from_quiet_hours(communication_type: str) -> bool:
    return communication_type in QUIET_HOURS_EXEMPT_TYPES
