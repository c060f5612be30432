"""Relay helpers: node resolution scoped to the caller's organization, id parsing."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from sqlalchemy import select
from strawberry import relay
from strawberry.types import Info

from mensajero.schema.context import Context

T = TypeVar("T")


def parse_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return None


def parse_id(value: str | relay.GlobalID, *, type_name: str | None = None) -> uuid.UUID | None:
    """Accept a Relay global id or the plain UUID the REST routes use (SPEC section 8)."""
    if isinstance(value, relay.GlobalID):
        if type_name is not None and value.type_name != type_name:
            return None
        return parse_uuid(value.node_id)
    plain = parse_uuid(value)
    if plain is not None:
        return plain
    try:
        global_id = relay.GlobalID.from_id(value)
    except Exception:  # not base64 or not "Type:id": simply not an id of ours
        return None
    return parse_id(global_id, type_name=type_name)


async def resolve_scoped_nodes(
    info: Info[Context, None],
    model: type[Any],
    node_ids: Iterable[str],
    convert: Callable[[Any], T],
    *,
    required: bool = False,
) -> list[T | None]:
    """Load nodes of ``model`` by id within the caller's organization, in the asked order.

    Ids of another organization resolve to None exactly like ids that do not exist.
    """
    principal = info.context.principal
    ids = [parse_uuid(node_id) for node_id in node_ids]
    wanted = [node_id for node_id in ids if node_id is not None]
    found: dict[uuid.UUID, Any] = {}
    if wanted:
        # Organization rows are scoped by their own id.
        organization_column = getattr(model, "organization_id", model.id)
        async with info.context.read() as session:
            rows = await session.execute(
                select(model).where(
                    model.id.in_(wanted), organization_column == principal.organization_id
                )
            )
            found = {row.id: row for row in rows.scalars()}
    nodes = [convert(found[node_id]) if node_id in found else None for node_id in ids]
    if required and any(node is None for node in nodes):
        raise ValueError("some nodes were not found")
    return nodes
