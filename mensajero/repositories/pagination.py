"""Keyset pagination over ``(created_at, id)``, for one list or for many parents at once."""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any, TypeVar

from sqlalchemy import Select, func, literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from mensajero.services.listing import Cursor, KeysetPage, Page, page_from_rows

T = TypeVar("T")


def _key(model: Any) -> Any:
    return tuple_(model.created_at, model.id)


def _cursor_value(model: Any, cursor: Cursor) -> Any:
    # Typed binds, so SQLite compares with the stored text form of the datetime.
    return tuple_(
        literal(cursor.created_at, model.created_at.type), literal(cursor.id, model.id.type)
    )


def keyset_conditions(model: Any, page: KeysetPage) -> list[Any]:
    conditions = []
    if page.after is not None:
        conditions.append(_key(model) < _cursor_value(model, page.after))
    if page.before is not None:
        conditions.append(_key(model) > _cursor_value(model, page.before))
    return conditions


def keyset_order(model: Any, page: KeysetPage) -> list[Any]:
    if page.backward:
        return [model.created_at.asc(), model.id.asc()]
    return [model.created_at.desc(), model.id.desc()]


def apply_keyset(statement: Select[Any], model: Any, page: KeysetPage) -> Select[Any]:
    """Restrict ``statement`` to one page plus one row (which says whether there is more)."""
    return (
        statement.where(*keyset_conditions(model, page))
        .order_by(*keyset_order(model, page))
        .limit(page.size + 1)
    )


async def fetch_page(
    session: AsyncSession, statement: Select[Any], model: Any, page: KeysetPage
) -> Page[Any]:
    if page.size == 0:
        return Page([], has_next=False, has_previous=False)
    rows = (await session.execute(apply_keyset(statement, model, page))).scalars().all()
    return page_from_rows(rows, page)


async def fetch_page_with(
    session: AsyncSession, statement: Select[Any], model: Any, page: KeysetPage
) -> tuple[Page[Any], list[Any]]:
    """Like :func:`fetch_page` for a statement selecting ``model`` and more columns:
    the page of ``model`` rows and, for each row kept, the whole result row."""
    if page.size == 0:
        return Page([], has_next=False, has_previous=False), []
    rows = (await session.execute(apply_keyset(statement, model, page))).all()
    kept = page_from_rows(rows, page)
    return Page([row[0] for row in kept.rows], kept.has_next, kept.has_previous), kept.rows


async def fetch_pages_per_parent(
    session: AsyncSession,
    statement: Select[Any],
    model: Any,
    parent_column: Any,
    parent_ids: list[uuid.UUID],
    page: KeysetPage,
) -> dict[uuid.UUID, Page[Any]]:
    """The same page of a child list for many parents, in one statement.

    ``ROW_NUMBER() OVER (PARTITION BY parent ORDER BY created_at, id)`` numbers
    each parent's rows past the cursor; keeping rows numbered up to size + 1
    gives every parent its page and its "more" row.
    """
    pages: dict[uuid.UUID, Page[Any]] = {}
    if page.size == 0 or not parent_ids:
        return {parent: Page([], False, False) for parent in parent_ids}
    row_number = (
        func.row_number()
        .over(partition_by=parent_column, order_by=keyset_order(model, page))
        .label("row_number")
    )
    numbered = (
        statement.add_columns(parent_column.label("parent_id"), row_number)
        .where(parent_column.in_(parent_ids), *keyset_conditions(model, page))
        .subquery()
    )
    row_alias = aliased(model, numbered)
    result = await session.execute(
        select(row_alias, numbered.c.parent_id)
        .where(numbered.c.row_number <= page.size + 1)
        .order_by(numbered.c.parent_id, numbered.c.row_number)
    )
    by_parent: dict[uuid.UUID, list[Any]] = defaultdict(list)
    for row, parent in result:
        by_parent[parent].append(row)
    for parent in parent_ids:
        pages[parent] = page_from_rows(by_parent.get(parent, []), page)
    return pages
