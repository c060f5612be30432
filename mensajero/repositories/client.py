"""SQL for clients, tags and their link."""

from __future__ import annotations

from mensajero.models import Client, ClientTag, Tag
from mensajero.repositories.base import OrganizationScopedRepository


class ClientRepository(OrganizationScopedRepository[Client]):
    model = Client


class TagRepository(OrganizationScopedRepository[Tag]):
    model = Tag


class ClientTagRepository(OrganizationScopedRepository[ClientTag]):
    model = ClientTag
