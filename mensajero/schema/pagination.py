"""Relay connections: ``edges { cursor node }``, ``pageInfo`` and an on-demand ``totalCount``.

Cursors are opaque (base64 of the row's ``(created_at, id)``); pages are
keyset seeks, so the 10,000th page costs what the first does. ``totalCount``
is a resolver: the count query runs only when a caller selects the field.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import strawberry
from strawberry import relay
from strawberry.types import Info

from mensajero.schema.context import Context
from mensajero.services.listing import Cursor, KeysetPage, Page
from mensajero.settings import get_settings

NodeT = TypeVar("NodeT")
RowT = TypeVar("RowT")

Counter = Callable[[], Awaitable[int]]


@strawberry.type(description="An edge of a connection: a node and where it sits.")
class Edge(Generic[NodeT]):
    cursor: str = strawberry.field(description="Pass as `after` or `before` to page from here.")
    node: NodeT


@strawberry.type(description="One page of a list, newest first.")
class Connection(Generic[NodeT]):
    edges: list[Edge[NodeT]]
    page_info: relay.PageInfo
    count: strawberry.Private[Counter]

    @strawberry.field(description="How many items match, on every page (counted only if asked).")
    async def total_count(self) -> int:
        return await self.count()

    @classmethod
    def build(
        cls, page: Page[Any], convert: Callable[[Any], NodeT], count: Counter, **extra: Any
    ) -> Any:
        edges = [Edge(cursor=_cursor(row), node=convert(row)) for row in page.rows]
        return cls(
            edges=edges,
            page_info=relay.PageInfo(
                has_next_page=page.has_next,
                has_previous_page=page.has_previous,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
            count=count,
            **extra,
        )


def _cursor(row: Any) -> str:
    return Cursor.of(row).encode()


def keyset_page(
    info: Info[Context, None],
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
) -> KeysetPage:
    """Validated connection arguments; ``first``/``last`` above the maximum are refused."""
    settings = getattr(info.context.request.app.state, "settings", None) or get_settings()
    return KeysetPage.from_arguments(
        first=first,
        after=after,
        last=last,
        before=before,
        max_size=settings.graphql_max_page_size,
    )


def counter(info: Info[Context, None], count: Callable[[Any], Awaitable[int]]) -> Counter:
    """A deferred count that runs in the request's session when ``totalCount`` is resolved."""

    async def run() -> int:
        async with info.context.read() as session:
            return await count(session)

    return run


def constant(value: int) -> Counter:
    async def run() -> int:
        return value

    return run


PAGE_ARGUMENTS_HELP = (
    "Newest first. `first`/`after` page forward, `last`/`before` backward; at most "
    "`graphql_max_page_size` (100) items per page."
)
