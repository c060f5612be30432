"""Clients (contacts): validation, phone normalization, soft delete.

Phones are stored twice: as the caller gave them (``phone``) and in E.164
(``phone_e164``), normalized here with ``phonenumbers`` using the client's
``country`` as the default region for numbers written without ``+``. A phone
that is not a valid number is rejected with an error naming the field, so
bad data never reaches a send.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import phonenumbers
from sqlalchemy.ext.asyncio import AsyncSession

from mensajero.models import Client, Tag, utcnow
from mensajero.repositories.client import ClientRepository, ClientTagRepository, TagRepository
from mensajero.services.errors import InvalidInput, NotFound

MAX_NAME_LENGTH = 200
MAX_EMAIL_LENGTH = 320
MAX_PHONE_LENGTH = 64
# Deliberately simple: one "@", no spaces, a dot in the domain. Deliverability
# is the email provider's job; this only catches typos and swapped fields.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
UPDATABLE_FIELDS = frozenset({"name", "email", "phone", "country", "metadata"})


def normalize_country(raw: str | None) -> str | None:
    """An ISO 3166-1 alpha-2 code in upper case, or None when not given.

    Validated against the regions ``phonenumbers`` knows: every inhabited
    ISO country, which is what a default region for phone numbers needs.
    """
    if raw is None or not raw.strip():
        return None
    country = raw.strip().upper()
    if country not in phonenumbers.SUPPORTED_REGIONS:
        raise InvalidInput(f"'{raw}' is not an ISO 3166-1 alpha-2 country code", field="country")
    return country


def parse_phone_e164(raw: str, default_region: str | None) -> str | None:
    """The number in E.164, or None when it is not a valid phone number.

    For callers that skip bad numbers silently (sending by tags); writes use
    :func:`normalize_phone`, which explains the failure instead.
    """
    try:
        parsed = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalize_phone(raw: str, *, country: str | None, field: str = "phone") -> str:
    """``raw`` in E.164, or :class:`InvalidInput` naming ``field``."""
    if len(raw) > MAX_PHONE_LENGTH:
        raise InvalidInput(f"phone must be at most {MAX_PHONE_LENGTH} characters", field=field)
    e164 = parse_phone_e164(raw, country)
    if e164 is not None:
        return e164
    if country is None and not raw.lstrip().startswith("+"):
        raise InvalidInput(
            f"'{raw}' has no international prefix: write it as +<country code><number> "
            "or give the client's country",
            field=field,
        )
    where = f" in {country}" if country and not raw.lstrip().startswith("+") else ""
    raise InvalidInput(f"'{raw}' is not a valid phone number{where}", field=field)


def normalize_email(raw: str | None) -> str | None:
    if raw is None or not raw.strip():
        return None
    email = raw.strip()
    if len(email) > MAX_EMAIL_LENGTH or not _EMAIL.match(email):
        raise InvalidInput(f"'{raw}' is not an email address", field="email")
    local, _, domain = email.rpartition("@")
    # Domains are case-insensitive; local parts technically are not.
    return f"{local}@{domain.lower()}"


def normalize_name(raw: str | None) -> str:
    name = (raw or "").strip()
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(f"name must be at most {MAX_NAME_LENGTH} characters", field="name")
    return name


def normalize_metadata(raw: Any) -> dict[str, Any]:
    """A JSON object (a copy); None is the empty object."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise InvalidInput("metadata must be a JSON object", field="metadata")
    return dict(raw)


def _require_contact_point(client: Client) -> None:
    if client.phone_e164 is None and client.email is None:
        raise InvalidInput("a client needs a phone or an email", field="phone")


async def get_clients_or_raise(
    session: AsyncSession, *, organization_id: uuid.UUID, client_ids: Sequence[uuid.UUID]
) -> list[Client]:
    """The clients in the asked order (once each); NotFound lists any unknown or deleted id."""
    wanted = list(dict.fromkeys(client_ids))
    found = await ClientRepository(session, organization_id).get_many_not_deleted(wanted)
    missing = [client_id for client_id in wanted if client_id not in found]
    if missing:
        raise NotFound(f"{len(missing)} client(s) not found", ids=missing)
    return [found[client_id] for client_id in wanted]


async def get_tags_or_raise(
    session: AsyncSession, *, organization_id: uuid.UUID, tag_ids: Sequence[uuid.UUID]
) -> list[Tag]:
    """The tags in the asked order (once each); NotFound lists any unknown id."""
    wanted = list(dict.fromkeys(tag_ids))
    found = await TagRepository(session, organization_id).get_many(wanted)
    missing = [tag_id for tag_id in wanted if tag_id not in found]
    if missing:
        raise NotFound(f"{len(missing)} tag(s) not found", ids=missing)
    return [found[tag_id] for tag_id in wanted]


async def create_client(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    name: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    country: str | None = None,
    metadata: Any = None,
    tag_ids: Iterable[uuid.UUID] = (),
) -> Client:
    """A new client, optionally tagged at once; needs a phone or an email."""
    normalized_country = normalize_country(country)
    raw_phone = phone.strip() if phone and phone.strip() else None
    client = Client(
        organization_id=organization_id,
        name=normalize_name(name),
        email=normalize_email(email),
        phone=raw_phone,
        phone_e164=(normalize_phone(raw_phone, country=normalized_country) if raw_phone else None),
        country=normalized_country,
        metadata_=normalize_metadata(metadata),
    )
    _require_contact_point(client)
    tags = await get_tags_or_raise(session, organization_id=organization_id, tag_ids=list(tag_ids))
    await ClientRepository(session, organization_id).add(client)
    if tags:
        await ClientTagRepository(session, organization_id).link(
            [client.id], [tag.id for tag in tags]
        )
    return client


async def update_client(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    client_id: uuid.UUID,
    changes: Mapping[str, Any],
) -> Client:
    """Apply ``changes``: a key present means "set" (None clears), a key absent means "keep".

    Changing the country re-normalizes a phone written without ``+``.
    """
    unknown = set(changes) - UPDATABLE_FIELDS
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    client = await ClientRepository(session, organization_id).get_not_deleted(client_id)
    if client is None:
        raise NotFound("client not found")
    if "name" in changes:
        client.name = normalize_name(changes["name"])
    if "email" in changes:
        client.email = normalize_email(changes["email"])
    if "metadata" in changes:
        client.metadata_ = normalize_metadata(changes["metadata"])
    if "country" in changes:
        client.country = normalize_country(changes["country"])
    if "phone" in changes:
        raw_phone = changes["phone"]
        client.phone = raw_phone.strip() if raw_phone and raw_phone.strip() else None
    if ("phone" in changes or "country" in changes) and client.phone is not None:
        # Blame the field the caller touched: a new country can invalidate
        # the phone the client already had.
        field = "phone" if "phone" in changes else "country"
        client.phone_e164 = normalize_phone(client.phone, country=client.country, field=field)
    elif client.phone is None:
        client.phone_e164 = None
    _require_contact_point(client)
    client.updated_at = utcnow()
    await session.flush()
    return client


async def delete_client(
    session: AsyncSession, *, organization_id: uuid.UUID, client_id: uuid.UUID
) -> Client:
    """Soft delete: the row stays for the messages that reference it.

    The client also leaves every tag, so no send by tags can reach it and no
    tag-based query has to remember to skip deleted clients.
    """
    client = await ClientRepository(session, organization_id).get_not_deleted(client_id)
    if client is None:
        raise NotFound("client not found")
    now = utcnow()
    client.deleted_at = now
    client.updated_at = now
    await ClientTagRepository(session, organization_id).unlink_client(client.id)
    await session.flush()
    return client
