"""DataLoaders for every relation, created per request in ``info.context.loaders``.

Resolving a field on each node of a page asks its loader for one key; the
loader gathers the keys of the whole page and answers them with one query, so
the number of statements for a page does not grow with its size. Nested
connections (a client's messages) are loaded for all parents of the page at
once, one window-function query per distinct set of page arguments.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Hashable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader
from strawberry.types import Info
from strawberry.types.nodes import SelectedField

from mensajero.models import Campaign, Client, CommunicationLog, LogEvent, Message, Tag
from mensajero.schema.context import Context
from mensajero.services import campaign as campaign_service
from mensajero.services import client_queries as client_service
from mensajero.services import message as message_service
from mensajero.services.listing import KeysetPage, Page

V = TypeVar("V")

# (session, organization_id, keys) -> {key: value}
BatchQuery = Callable[[AsyncSession, uuid.UUID, list[uuid.UUID]], Awaitable[dict[uuid.UUID, Any]]]


def _loader(
    info: Info[Context, None], name: Hashable, query: BatchQuery, default: Callable[[], Any]
) -> DataLoader[uuid.UUID, Any]:
    """The request's loader called ``name``, created on first use."""
    context = info.context
    loader = context.loaders.get(name)  # type: ignore[call-overload]
    if loader is None:
        organization_id = context.principal.organization_id

        async def load(keys: Sequence[uuid.UUID]) -> list[Any]:
            async with context.read() as session:
                found = await query(session, organization_id, list(keys))
            return [found[key] if key in found else default() for key in keys]

        loader = DataLoader(load_fn=load)
        context.loaders[name] = loader  # type: ignore[index]
    return loader


def _none() -> None:
    return None


def _empty_list() -> list[Any]:
    return []


def _zero() -> int:
    return 0


def _empty_page() -> Page[Any]:
    return Page([], has_next=False, has_previous=False)


def client(info: Info[Context, None]) -> DataLoader[uuid.UUID, Client | None]:
    return _loader(
        info,
        "client",
        lambda session, org, ids: client_service.get_clients(
            session, organization_id=org, client_ids=ids
        ),
        _none,
    )


def campaign(info: Info[Context, None]) -> DataLoader[uuid.UUID, Campaign | None]:
    return _loader(
        info,
        "campaign",
        lambda session, org, ids: campaign_service.get_campaigns(
            session, organization_id=org, campaign_ids=ids
        ),
        _none,
    )


def message(info: Info[Context, None]) -> DataLoader[uuid.UUID, Message | None]:
    return _loader(
        info,
        "message",
        lambda session, org, ids: message_service.get_messages(
            session, organization_id=org, message_ids=ids
        ),
        _none,
    )


def log(info: Info[Context, None]) -> DataLoader[uuid.UUID, CommunicationLog | None]:
    return _loader(
        info,
        "log",
        lambda session, org, ids: message_service.get_logs(
            session, organization_id=org, log_ids=ids
        ),
        _none,
    )


def logs_by_message(info: Info[Context, None]) -> DataLoader[uuid.UUID, list[CommunicationLog]]:
    return _loader(
        info,
        "logs_by_message",
        lambda session, org, ids: message_service.logs_for_messages(
            session, organization_id=org, message_ids=ids
        ),
        _empty_list,
    )


def timeline_by_log(info: Info[Context, None]) -> DataLoader[uuid.UUID, list[LogEvent]]:
    return _loader(
        info,
        "timeline_by_log",
        lambda session, org, ids: message_service.timelines_for_logs(
            session, organization_id=org, log_ids=ids
        ),
        _empty_list,
    )


def tags_by_client(info: Info[Context, None]) -> DataLoader[uuid.UUID, list[Tag]]:
    return _loader(
        info,
        "tags_by_client",
        lambda session, org, ids: client_service.tags_for_clients(
            session, organization_id=org, client_ids=ids
        ),
        _empty_list,
    )


def client_count_by_tag(info: Info[Context, None]) -> DataLoader[uuid.UUID, int]:
    return _loader(
        info,
        "client_count_by_tag",
        lambda session, org, ids: client_service.client_counts_for_tags(
            session, organization_id=org, tag_ids=ids
        ),
        _zero,
    )


def clients_by_tag(
    info: Info[Context, None], page: KeysetPage
) -> DataLoader[uuid.UUID, Page[Client]]:
    return _loader(
        info,
        ("clients_by_tag", page),
        lambda session, org, ids: client_service.client_pages_for_tags(
            session, organization_id=org, tag_ids=ids, page=page
        ),
        _empty_page,
    )


def messages_by_client(
    info: Info[Context, None], page: KeysetPage
) -> DataLoader[uuid.UUID, Page[Message]]:
    return _loader(
        info,
        ("messages_by_client", page),
        lambda session, org, ids: message_service.message_pages_for_clients(
            session, organization_id=org, client_ids=ids, page=page
        ),
        _empty_page,
    )


def message_count_by_client(info: Info[Context, None]) -> DataLoader[uuid.UUID, int]:
    return _loader(
        info,
        "message_count_by_client",
        lambda session, org, ids: message_service.message_counts_for_clients(
            session, organization_id=org, client_ids=ids
        ),
        _zero,
    )


def logs_by_client(
    info: Info[Context, None], page: KeysetPage
) -> DataLoader[uuid.UUID, Page[CommunicationLog]]:
    return _loader(
        info,
        ("logs_by_client", page),
        lambda session, org, ids: message_service.log_pages_for_clients(
            session, organization_id=org, client_ids=ids, page=page
        ),
        _empty_page,
    )


def log_count_by_client(info: Info[Context, None]) -> DataLoader[uuid.UUID, int]:
    return _loader(
        info,
        "log_count_by_client",
        lambda session, org, ids: message_service.log_counts_for_clients(
            session, organization_id=org, client_ids=ids
        ),
        _zero,
    )


def resolve_now(
    loader: DataLoader[uuid.UUID, Any], key: uuid.UUID | None, convert: Callable[[Any], V]
) -> V | Awaitable[V | None] | None:
    """The converted value now if the loader already holds it, else an awaitable of it.

    Returning a plain value when a connection prefetched the relation spares
    the executor an awaitable per field (a task and a few event-loop turns
    each), which is most of the cost of a 50-node page.
    """
    if key is None:
        return None
    cached = loader.cache_map.get(key)
    if cached is not None and cached.done() and cached.exception() is None:
        row = cached.result()
        return None if row is None else convert(row)

    async def later() -> V | None:
        row = await loader.load(key)
        return None if row is None else convert(row)

    return later()


async def prefetch(loader: DataLoader[uuid.UUID, Any], keys: Iterable[uuid.UUID | None]) -> None:
    """Load ``keys`` now (one batch), so that fields resolve from the cache."""
    wanted = list(dict.fromkeys(key for key in keys if key is not None))
    if wanted:
        await loader.load_many(wanted)


def prime(
    loader: DataLoader[uuid.UUID, Any],
    found: dict[uuid.UUID, Any],
    wanted: Iterable[uuid.UUID | None],
) -> None:
    """Put rows loaded elsewhere in the loader's cache; wanted ids not found cache None."""
    for key in wanted:
        if key is not None:
            loader.prime(key, found.get(key))


def selects_node_field(info: Info[Any, Any], name: str) -> bool:
    """Whether the connection being resolved selects ``edges { node { <name> } }``."""
    for field in info.selected_fields:
        for edges in _named(field.selections, "edges"):
            for node in _named(edges.selections, "node"):
                if any(True for _ in _named(node.selections, name)):
                    return True
    return False


def _named(selections: list[Any], name: str) -> Iterator[Any]:
    """The selected fields called ``name``, looking inside fragments."""
    for selection in selections:
        if isinstance(selection, SelectedField):
            if selection.name == name:
                yield selection
        else:  # an inline fragment or a fragment spread
            yield from _named(selection.selections, name)
