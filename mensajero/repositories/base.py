"""The one way every query is scoped to the caller's organization."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel

ModelT = TypeVar("ModelT", bound=SQLModel)


class OrganizationScopedRepository(Generic[ModelT]):
    """Base for repositories of tables that carry ``organization_id``.

    Every select a subclass builds starts from :meth:`scoped`, so a row of
    another organization can never be read or changed through it: an id of
    another organization simply is not found.
    """

    model: ClassVar[type[Any]]

    def __init__(self, session: AsyncSession, organization_id: uuid.UUID) -> None:
        self.session = session
        self.organization_id = organization_id

    def scoped(self, *columns: Any) -> Select[Any]:
        statement = select(*columns) if columns else select(self.model)
        return statement.where(self.model.organization_id == self.organization_id)

    async def get(self, id: uuid.UUID) -> ModelT | None:
        result = await self.session.execute(self.scoped().where(self.model.id == id))
        return result.scalar_one_or_none()

    async def get_many(self, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, ModelT]:
        wanted = list(set(ids))
        if not wanted:
            return {}
        result = await self.session.execute(self.scoped().where(self.model.id.in_(wanted)))
        return {row.id: row for row in result.scalars()}

    async def add(self, row: ModelT) -> ModelT:
        if row.organization_id != self.organization_id:  # type: ignore[attr-defined]
            raise ValueError("row belongs to another organization")
        self.session.add(row)
        await self.session.flush()
        return row
