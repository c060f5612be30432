"""SQL for clients, tags and their link."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice, product
from typing import Any

from sqlalchemy import delete, func
from sqlalchemy.dialects import postgresql, sqlite

from mensajero.models import Client, ClientTag, Tag, utcnow, uuid7
from mensajero.repositories.base import OrganizationScopedRepository

# Rows per multi-row INSERT of client_tags (5 parameters each): well under the
# parameter limits of SQLite (32766) and PostgreSQL (32767).
LINK_INSERT_CHUNK = 1000
# Ids per IN (...) list in deletes.
ID_LIST_CHUNK = 1000


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """``itertools.batched`` of Python 3.12, as lists."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


class ClientRepository(OrganizationScopedRepository[Client]):
    model = Client

    async def get_not_deleted(self, client_id: uuid.UUID) -> Client | None:
        result = await self.session.execute(
            self.scoped().where(Client.id == client_id, Client.deleted_at.is_(None))
        )
        return result.scalar_one_or_none()

    async def get_many_not_deleted(self, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Client]:
        """The clients among ``ids`` that exist in the organization and are not deleted."""
        wanted = list(set(ids))
        found: dict[uuid.UUID, Client] = {}
        for chunk in batched(wanted, ID_LIST_CHUNK):
            result = await self.session.execute(
                self.scoped().where(Client.id.in_(chunk), Client.deleted_at.is_(None))
            )
            found.update((client.id, client) for client in result.scalars())
        return found


class TagRepository(OrganizationScopedRepository[Tag]):
    model = Tag

    async def get_by_name_ignoring_case(
        self, name: str, *, excluding_id: uuid.UUID | None = None
    ) -> Tag | None:
        statement = self.scoped().where(func.lower(Tag.name) == name.lower())
        if excluding_id is not None:
            statement = statement.where(Tag.id != excluding_id)
        result = await self.session.execute(statement.limit(1))
        return result.scalar_one_or_none()

    async def delete(self, tag: Tag) -> None:
        """Delete the tag; its client links go with it (ON DELETE CASCADE)."""
        if tag.organization_id != self.organization_id:
            raise ValueError("row belongs to another organization")
        await self.session.delete(tag)
        await self.session.flush()


class ClientTagRepository(OrganizationScopedRepository[ClientTag]):
    model = ClientTag

    async def link(self, client_ids: Sequence[uuid.UUID], tag_ids: Sequence[uuid.UUID]) -> int:
        """Give every client every tag; links that already exist are left alone.

        One multi-row ``INSERT ... ON CONFLICT DO NOTHING`` per thousand links,
        so tagging a whole list costs a handful of statements, not one per row.
        The ids must already be known to belong to this organization.
        Returns how many links were new.
        """
        now = utcnow()
        rows: list[dict[str, Any]] = [
            {
                "id": uuid7(),
                "organization_id": self.organization_id,
                "client_id": client_id,
                "tag_id": tag_id,
                "created_at": now,
            }
            for client_id, tag_id in product(dict.fromkeys(client_ids), dict.fromkeys(tag_ids))
        ]
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        created = 0
        for chunk in batched(rows, LINK_INSERT_CHUNK):
            statement = (
                insert(ClientTag)
                .values(chunk)
                .on_conflict_do_nothing(index_elements=["client_id", "tag_id"])
            )
            result = await self.session.execute(statement)
            created += max(result.rowcount, 0)  # type: ignore[attr-defined]
        return created

    async def unlink(self, client_ids: Sequence[uuid.UUID], tag_ids: Sequence[uuid.UUID]) -> int:
        """Remove the links between these clients and these tags; returns how many went."""
        removed = 0
        wanted_tags = list(set(tag_ids))
        if not wanted_tags:
            return 0
        for chunk in batched(set(client_ids), ID_LIST_CHUNK):
            result = await self.session.execute(
                delete(ClientTag).where(
                    ClientTag.organization_id == self.organization_id,
                    ClientTag.client_id.in_(chunk),
                    ClientTag.tag_id.in_(wanted_tags),
                )
            )
            removed += max(result.rowcount, 0)  # type: ignore[attr-defined]
        return removed

    async def unlink_client(self, client_id: uuid.UUID) -> int:
        """Remove every tag of one client."""
        result = await self.session.execute(
            delete(ClientTag).where(
                ClientTag.organization_id == self.organization_id,
                ClientTag.client_id == client_id,
            )
        )
        return max(result.rowcount, 0)  # type: ignore[attr-defined]
