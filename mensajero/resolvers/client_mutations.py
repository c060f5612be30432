"""Client and tag mutations.

Authorization: writing clients and tags needs the ``send`` scope (or
``admin``, which implies every scope). A key that sends messages is usually
the one that keeps the contact list in sync (a CRM integration), while a
``read`` key stays read-only; managing API keys stays ``admin`` only. Writes
do not require accepted terms: only sending does.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import strawberry
from strawberry import relay
from strawberry.types import Info

from mensajero.models import ApiKeyScope
from mensajero.schema.client import ClientType, TagType
from mensajero.schema.client_inputs import (
    CreateClientInput,
    CreateClientPayload,
    CreateClientResult,
    CreateTagInput,
    CreateTagPayload,
    CreateTagResult,
    DeleteClientPayload,
    DeleteClientResult,
    DeleteTagPayload,
    DeleteTagResult,
    TagClientsInput,
    TagClientsPayload,
    TagClientsResult,
    UntagClientsPayload,
    UntagClientsResult,
    UpdateClientInput,
    UpdateClientPayload,
    UpdateClientResult,
    UpdateTagInput,
    UpdateTagPayload,
    UpdateTagResult,
)
from mensajero.schema.common import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    UserError,
    write,
)
from mensajero.schema.context import Context
from mensajero.schema.relay import parse_id
from mensajero.services import client as client_service
from mensajero.services import tag as tag_service
from mensajero.services.errors import NotFound

WRITE_SCOPE_NOTE = " Needs the `send` or `admin` scope."


class _UnparsableIds(Exception):
    def __init__(self, field: str, ids: list[str]) -> None:
        self.field = field
        self.ids = ids


def _parse_ids(
    values: Iterable[strawberry.ID], *, type_name: str, field: str
) -> tuple[list[uuid.UUID], dict[uuid.UUID, str]]:
    """UUIDs of the given ids, and each UUID's id as the caller wrote it."""
    parsed: list[uuid.UUID] = []
    given: dict[uuid.UUID, str] = {}
    unparsable: list[str] = []
    for value in values:
        row_id = parse_id(value, type_name=type_name)
        if row_id is None:
            unparsable.append(str(value))
            continue
        parsed.append(row_id)
        given.setdefault(row_id, str(value))
    if unparsable:
        raise _UnparsableIds(field, unparsable)
    return parsed, given


def _as_given(outcome: Any, given: Mapping[uuid.UUID, str]) -> Any:
    """A NotFoundError's ids written back the way the caller sent them."""
    if isinstance(outcome, NotFoundError) and outcome.ids is not None:
        spelled = {str(row_id): value for row_id, value in given.items()}
        outcome.ids = [spelled.get(row_id, row_id) for row_id in outcome.ids]
    return outcome


def _unparsable(error: _UnparsableIds, what: str) -> NotFoundError:
    return NotFoundError(
        code=NotFound.code, message=f"{len(error.ids)} {what}(s) not found", ids=error.ids
    )


def _changes(input: object, fields: Iterable[str]) -> dict[str, Any]:
    """The fields the caller set, explicit nulls included; omitted fields are left out."""
    return {
        name: getattr(input, name)
        for name in fields
        if getattr(input, name) is not strawberry.UNSET
    }


@strawberry.type
class ClientMutation:
    @strawberry.mutation(
        description="Create a client (contact), optionally with tags." + WRITE_SCOPE_NOTE
    )
    async def create_client(
        self, info: Info[Context, None], input: CreateClientInput
    ) -> CreateClientResult:
        principal = info.context.principal
        principal.require_scope(ApiKeyScope.SEND)
        try:
            tag_ids, given = _parse_ids(input.tag_ids or [], type_name="Tag", field="tagIds")
        except _UnparsableIds as error:
            return _unparsable(error, "tag")
        client = await write(
            info,
            lambda session: client_service.create_client(
                session,
                organization_id=principal.organization_id,
                name=input.name,
                email=input.email,
                phone=input.phone,
                country=input.country,
                metadata=input.metadata,
                tag_ids=tag_ids,
            ),
            InvalidInputError,
            NotFoundError,
        )
        if isinstance(client, UserError):
            return _as_given(client, given)  # type: ignore[no-any-return]
        return CreateClientPayload(client=ClientType.from_model(client))

    @strawberry.mutation(
        description=(
            "Change a client: omitted fields are kept, `null` clears. Changing the phone or "
            "the country normalizes the phone again." + WRITE_SCOPE_NOTE
        )
    )
    async def update_client(
        self, info: Info[Context, None], input: UpdateClientInput
    ) -> UpdateClientResult:
        principal = info.context.principal
        principal.require_scope(ApiKeyScope.SEND)
        client_id = parse_id(input.id, type_name="Client")
        if client_id is None:
            return NotFoundError.of("client")
        client = await write(
            info,
            lambda session: client_service.update_client(
                session,
                organization_id=principal.organization_id,
                client_id=client_id,
                changes=_changes(input, client_service.UPDATABLE_FIELDS),
            ),
            InvalidInputError,
            NotFoundError,
        )
        if isinstance(client, UserError):
            return client  # type: ignore[return-value]
        return UpdateClientPayload(client=ClientType.from_model(client))

    @strawberry.mutation(
        description=(
            "Delete a client (soft: kept for its message history, removed from every tag and "
            "from lists). Deleting it again answers NotFoundError." + WRITE_SCOPE_NOTE
        )
    )
    async def delete_client(
        self, info: Info[Context, None], id: strawberry.ID
    ) -> DeleteClientResult:
        principal = info.context.principal
        principal.require_scope(ApiKeyScope.SEND)
        client_id = parse_id(id, type_name="Client")
        if client_id is None:
            return NotFoundError.of("client")
        client = await write(
            info,
            lambda session: client_service.delete_client(
                session, organization_id=principal.organization_id, client_id=client_id
            ),
            NotFoundError,
        )
        if isinstance(client, UserError):
            return client  # type: ignore[return-value]
        return DeleteClientPayload(
            client=ClientType.from_model(client),
            deleted_client_id=strawberry.ID(relay.to_base64("Client", client.id)),
        )

    @strawberry.mutation(
        description="Create a tag; names are unique ignoring case." + WRITE_SCOPE_NOTE
    )
    async def create_tag(self, info: Info[Context, None], input: CreateTagInput) -> CreateTagResult:
        principal = info.context.principal
        principal.require_scope(ApiKeyScope.SEND)
        tag = await write(
            info,
            lambda session: tag_service.create_tag(
                session,
                organization_id=principal.organization_id,
                name=input.name,
                color=input.color,
            ),
            InvalidInputError,
            ConflictError,
        )
        if isinstance(tag, UserError):
            return tag  # type: ignore[return-value]
        return CreateTagPayload(tag=TagType.from_model(tag))

    @strawberry.mutation(
        description="Rename or recolor a tag: omitted fields are kept." + WRITE_SCOPE_NOTE
    )
    async def update_tag(self, info: Info[Context, None], input: UpdateTagInput) -> UpdateTagResult:
        principal = info.context.principal
        principal.require_scope(ApiKeyScope.SEND)
        tag_id = parse_id(input.id, type_name="Tag")
        if tag_id is None:
            return NotFoundError.of("tag")
        tag = await write(
            info,
            lambda session: tag_service.update_tag(
                session,
                organization_id=principal.organization_id,
                tag_id=tag_id,
                changes=_changes(input, tag_service.UPDATABLE_FIELDS),
            ),
            InvalidInputError,
            NotFoundError,
            ConflictError,
        )
        if isinstance(tag, UserError):
            return tag  # type: ignore[return-value]
        return UpdateTagPayload(tag=TagType.from_model(tag))

    @strawberry.mutation(
        description="Delete a tag; its clients lose it and stay otherwise unchanged."
        + WRITE_SCOPE_NOTE
    )
    async def delete_tag(self, info: Info[Context, None], id: strawberry.ID) -> DeleteTagResult:
        principal = info.context.principal
        principal.require_scope(ApiKeyScope.SEND)
        tag_id = parse_id(id, type_name="Tag")
        if tag_id is None:
            return NotFoundError.of("tag")
        tag = await write(
            info,
            lambda session: tag_service.delete_tag(
                session, organization_id=principal.organization_id, tag_id=tag_id
            ),
            NotFoundError,
        )
        if isinstance(tag, UserError):
            return tag  # type: ignore[return-value]
        return DeleteTagPayload(
            tag=TagType.from_model(tag),
            deleted_tag_id=strawberry.ID(relay.to_base64("Tag", tag.id)),
        )

    @strawberry.mutation(
        description=(
            "Give every listed client every listed tag, in a few statements whatever the "
            "size. All or nothing: an unknown or deleted id answers NotFoundError with the "
            "ids and changes nothing. Existing links are kept, so repeating is safe."
            + WRITE_SCOPE_NOTE
        )
    )
    async def tag_clients(
        self, info: Info[Context, None], input: TagClientsInput
    ) -> TagClientsResult:
        result = await _retag(info, input, tag_service.tag_clients)
        if isinstance(result, UserError):
            return result  # type: ignore[return-value]
        clients, tags, changed = result
        return TagClientsPayload(clients=clients, tags=tags, linked_count=changed)

    @strawberry.mutation(
        description=(
            "Take the listed tags away from the listed clients. All or nothing, like "
            "tagClients; pairs that were not linked are ignored." + WRITE_SCOPE_NOTE
        )
    )
    async def untag_clients(
        self, info: Info[Context, None], input: TagClientsInput
    ) -> UntagClientsResult:
        result = await _retag(info, input, tag_service.untag_clients)
        if isinstance(result, UserError):
            return result  # type: ignore[return-value]
        clients, tags, changed = result
        return UntagClientsPayload(clients=clients, tags=tags, unlinked_count=changed)


async def _retag(
    info: Info[Context, None],
    input: TagClientsInput,
    change: Callable[..., Awaitable[tag_service.TaggingResult]],
) -> tuple[list[ClientType], list[TagType], int] | UserError:
    """Authorize, parse the ids, link or unlink in one unit of work; ids answered as given."""
    principal = info.context.principal
    principal.require_scope(ApiKeyScope.SEND)
    parsed = _parse_tagging_input(input)
    if isinstance(parsed, NotFoundError):
        return parsed
    client_ids, tag_ids, given = parsed
    result = await write(
        info,
        lambda session: change(
            session,
            organization_id=principal.organization_id,
            client_ids=client_ids,
            tag_ids=tag_ids,
        ),
        InvalidInputError,
        NotFoundError,
    )
    if isinstance(result, UserError):
        return _as_given(result, given)  # type: ignore[no-any-return]
    return (
        [ClientType.from_model(client) for client in result.clients],
        [TagType.from_model(tag) for tag in result.tags],
        result.changed,
    )


def _parse_tagging_input(
    input: TagClientsInput,
) -> tuple[list[uuid.UUID], list[uuid.UUID], dict[uuid.UUID, str]] | NotFoundError:
    try:
        client_ids, given_clients = _parse_ids(
            input.client_ids, type_name="Client", field="clientIds"
        )
        tag_ids, given_tags = _parse_ids(input.tag_ids, type_name="Tag", field="tagIds")
    except _UnparsableIds as error:
        return _unparsable(error, "client" if error.field == "clientIds" else "tag")
    return client_ids, tag_ids, {**given_clients, **given_tags}
