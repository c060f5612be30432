"""Inputs, payloads and result unions of the client and tag mutations.

In update inputs an omitted field keeps its value and an explicit ``null``
clears it (strawberry's UNSET tells the two apart).
"""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from mensajero.schema.client import ClientType, TagType
from mensajero.schema.common import ConflictError, InvalidInputError, NotFoundError


@strawberry.input(description="A new client; it needs a phone or an email.")
class CreateClientInput:
    name: str | None = None
    email: str | None = None
    phone: str | None = strawberry.field(
        default=None,
        description=(
            "Any common format; stored as given and in E.164. Without a leading `+` the "
            "client's `country` is the default region."
        ),
    )
    country: str | None = strawberry.field(
        default=None, description="ISO 3166-1 alpha-2, e.g. `CO`."
    )
    metadata: JSON | None = strawberry.field(
        default=None, description="Free-form JSON object of your own."
    )
    tag_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Tags to give the client at once (global ids or UUIDs)."
    )


@strawberry.input(description="Changes to a client: omitted fields are kept, `null` clears.")
class UpdateClientInput:
    id: strawberry.ID = strawberry.field(description="Global id or UUID of the client.")
    name: str | None = strawberry.UNSET
    email: str | None = strawberry.UNSET
    phone: str | None = strawberry.UNSET
    country: str | None = strawberry.UNSET
    metadata: JSON | None = strawberry.field(
        default=strawberry.UNSET, description="Replaces the whole metadata object."
    )


@strawberry.input
class CreateTagInput:
    name: str = strawberry.field(description="Unique in the organization, ignoring case.")
    color: str | None = strawberry.field(default=None, description="Hex color, e.g. `#1e90ff`.")


@strawberry.input(description="Changes to a tag: omitted fields are kept, `null` clears.")
class UpdateTagInput:
    id: strawberry.ID
    name: str | None = strawberry.UNSET
    color: str | None = strawberry.UNSET


@strawberry.input(description="Clients and tags to link or unlink (every client x every tag).")
class TagClientsInput:
    client_ids: list[strawberry.ID] = strawberry.field(
        description="Up to 1000 clients (global ids or UUIDs)."
    )
    tag_ids: list[strawberry.ID] = strawberry.field(
        description="Up to 100 tags (global ids or UUIDs)."
    )


@strawberry.type
class CreateClientPayload:
    client: ClientType


@strawberry.type
class UpdateClientPayload:
    client: ClientType


@strawberry.type
class DeleteClientPayload:
    client: ClientType = strawberry.field(description="The client, now with `deletedAt` set.")
    deleted_client_id: strawberry.ID = strawberry.field(
        description="Its global id, for clients that remove it from their cache."
    )


@strawberry.type
class CreateTagPayload:
    tag: TagType


@strawberry.type
class UpdateTagPayload:
    tag: TagType


@strawberry.type
class DeleteTagPayload:
    tag: TagType = strawberry.field(description="The tag as it was before deletion.")
    deleted_tag_id: strawberry.ID = strawberry.field(
        description="Its global id, for clients that remove it from their cache."
    )


@strawberry.type
class TagClientsPayload:
    clients: list[ClientType]
    tags: list[TagType]
    linked_count: int = strawberry.field(
        description="Links created by this call; links that already existed are not counted."
    )


@strawberry.type
class UntagClientsPayload:
    clients: list[ClientType]
    tags: list[TagType]
    unlinked_count: int = strawberry.field(
        description="Links removed by this call; pairs that were not linked are not counted."
    )


CreateClientResult = Annotated[
    CreateClientPayload | InvalidInputError | NotFoundError,
    strawberry.union("CreateClientResult"),
]
UpdateClientResult = Annotated[
    UpdateClientPayload | InvalidInputError | NotFoundError,
    strawberry.union("UpdateClientResult"),
]
DeleteClientResult = Annotated[
    DeleteClientPayload | NotFoundError, strawberry.union("DeleteClientResult")
]
CreateTagResult = Annotated[
    CreateTagPayload | InvalidInputError | ConflictError, strawberry.union("CreateTagResult")
]
UpdateTagResult = Annotated[
    UpdateTagPayload | InvalidInputError | NotFoundError | ConflictError,
    strawberry.union("UpdateTagResult"),
]
DeleteTagResult = Annotated[DeleteTagPayload | NotFoundError, strawberry.union("DeleteTagResult")]
TagClientsResult = Annotated[
    TagClientsPayload | InvalidInputError | NotFoundError, strawberry.union("TagClientsResult")
]
UntagClientsResult = Annotated[
    UntagClientsPayload | InvalidInputError | NotFoundError,
    strawberry.union("UntagClientsResult"),
]
