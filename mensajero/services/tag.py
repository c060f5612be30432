"""Tags and tagging: unique names per organization (ignoring case), bulk (un)tagging."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mensajero.models import Client, Tag, utcnow
from mensajero.repositories.client import ClientTagRepository, TagRepository
from mensajero.services.client import get_clients_or_raise, get_tags_or_raise
from mensajero.services.errors import Conflict, InvalidInput, NotFound

MAX_TAG_NAME_LENGTH = 100
# Bounds of one (un)tagging call: enough to sync a list page by page, small
# enough that one request stays one short transaction.
MAX_CLIENTS_PER_CALL = 1000
MAX_TAGS_PER_CALL = 100
_HEX_COLOR = re.compile(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
UPDATABLE_FIELDS = frozenset({"name", "color"})


@dataclass(frozen=True, slots=True)
class TaggingResult:
    clients: list[Client]
    tags: list[Tag]
    # Links created (tagging) or removed (untagging); existing links and
    # missing links are not errors, so calls can be repeated safely.
    changed: int


def normalize_tag_name(raw: str | None) -> str:
    name = " ".join((raw or "").split())
    if not name:
        raise InvalidInput("tag name must not be empty", field="name")
    if len(name) > MAX_TAG_NAME_LENGTH:
        raise InvalidInput(
            f"tag name must be at most {MAX_TAG_NAME_LENGTH} characters", field="name"
        )
    return name


def normalize_color(raw: str | None) -> str | None:
    """``#rrggbb`` (or ``#rgb``) in lower case; None clears the color."""
    if raw is None or not raw.strip():
        return None
    match = _HEX_COLOR.match(raw.strip())
    if match is None:
        raise InvalidInput(f"'{raw}' is not a hex color like #1e90ff", field="color")
    return f"#{match.group(1).lower()}"


async def _ensure_name_is_free(
    repository: TagRepository, name: str, *, excluding_id: uuid.UUID | None = None
) -> None:
    existing = await repository.get_by_name_ignoring_case(name, excluding_id=excluding_id)
    if existing is not None:
        raise Conflict(
            f"a tag named '{existing.name}' already exists", field="name", tag_id=existing.id
        )


async def _write_or_conflict(session: AsyncSession, tag: Tag, values: Mapping[str, Any]) -> None:
    """Set ``values`` on ``tag`` and flush it inside a savepoint.

    Two requests can pass the name check at the same time; the unique
    constraint settles it and the loser gets the same Conflict, with its
    transaction still usable. The changes are made inside the savepoint
    because opening one flushes whatever is pending first.
    """
    try:
        async with session.begin_nested():
            for name, value in values.items():
                setattr(tag, name, value)
            session.add(tag)
            await session.flush()
    except IntegrityError as error:
        raise Conflict(f"a tag named '{tag.name}' already exists", field="name") from error


async def create_tag(
    session: AsyncSession, *, organization_id: uuid.UUID, name: str, color: str | None = None
) -> Tag:
    repository = TagRepository(session, organization_id)
    normalized_name = normalize_tag_name(name)
    normalized_color = normalize_color(color)
    await _ensure_name_is_free(repository, normalized_name)
    tag = Tag(organization_id=organization_id, name="", color=None)
    await _write_or_conflict(session, tag, {"name": normalized_name, "color": normalized_color})
    return tag


async def update_tag(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    tag_id: uuid.UUID,
    changes: Mapping[str, Any],
) -> Tag:
    """Apply ``changes`` (a present key means "set"); renaming keeps names unique."""
    unknown = set(changes) - UPDATABLE_FIELDS
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    repository = TagRepository(session, organization_id)
    tag = await repository.get(tag_id)
    if tag is None:
        raise NotFound("tag not found")
    values: dict[str, Any] = {"updated_at": utcnow()}
    if "name" in changes:
        values["name"] = normalize_tag_name(changes["name"])
        await _ensure_name_is_free(repository, values["name"], excluding_id=tag.id)
    if "color" in changes:
        values["color"] = normalize_color(changes["color"])
    await _write_or_conflict(session, tag, values)
    return tag


async def delete_tag(
    session: AsyncSession, *, organization_id: uuid.UUID, tag_id: uuid.UUID
) -> Tag:
    """Delete the tag and its links (clients keep existing); returns the tag as it was."""
    repository = TagRepository(session, organization_id)
    tag = await repository.get(tag_id)
    if tag is None:
        raise NotFound("tag not found")
    await repository.delete(tag)
    return tag


def _check_batch(client_ids: Sequence[uuid.UUID], tag_ids: Sequence[uuid.UUID]) -> None:
    if len(set(client_ids)) > MAX_CLIENTS_PER_CALL:
        raise InvalidInput(f"at most {MAX_CLIENTS_PER_CALL} clients per call", field="clientIds")
    if len(set(tag_ids)) > MAX_TAGS_PER_CALL:
        raise InvalidInput(f"at most {MAX_TAGS_PER_CALL} tags per call", field="tagIds")


async def tag_clients(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    client_ids: Sequence[uuid.UUID],
    tag_ids: Sequence[uuid.UUID],
) -> TaggingResult:
    """Give every client every tag, all or nothing: one unknown id changes nothing."""
    _check_batch(client_ids, tag_ids)
    tags = await get_tags_or_raise(session, organization_id=organization_id, tag_ids=tag_ids)
    clients = await get_clients_or_raise(
        session, organization_id=organization_id, client_ids=client_ids
    )
    changed = 0
    if clients and tags:
        changed = await ClientTagRepository(session, organization_id).link(
            [client.id for client in clients], [tag.id for tag in tags]
        )
    return TaggingResult(clients=clients, tags=tags, changed=changed)


async def untag_clients(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    client_ids: Sequence[uuid.UUID],
    tag_ids: Sequence[uuid.UUID],
) -> TaggingResult:
    """Take these tags away from these clients, all or nothing."""
    _check_batch(client_ids, tag_ids)
    tags = await get_tags_or_raise(session, organization_id=organization_id, tag_ids=tag_ids)
    clients = await get_clients_or_raise(
        session, organization_id=organization_id, client_ids=client_ids
    )
    changed = 0
    if clients and tags:
        changed = await ClientTagRepository(session, organization_id).unlink(
            [client.id for client in clients], [tag.id for tag in tags]
        )
    return TaggingResult(clients=clients, tags=tags, changed=changed)
