"""Expected failures as data: typed results with a machine-readable code."""

from __future__ import annotations

import strawberry

from mensajero.services.errors import Conflict, DomainError, InvalidInput


@strawberry.interface(description="An expected failure of a mutation.")
class UserError:
    code: str
    message: str


@strawberry.type
class InvalidInputError(UserError):
    field: str | None = None

    @classmethod
    def from_error(cls, error: InvalidInput) -> InvalidInputError:
        return cls(code=error.code, message=error.message, field=error.field)


@strawberry.type
class NotFoundError(UserError):
    ids: list[str] | None = strawberry.field(
        default=None, description="The ids that were not found, when several were asked for."
    )

    @classmethod
    def from_error(cls, error: DomainError) -> NotFoundError:
        ids = error.details.get("ids")
        return cls(
            code=error.code,
            message=error.message,
            ids=[str(value) for value in ids] if ids is not None else None,
        )


@strawberry.type(description="The write would duplicate something unique, such as a tag name.")
class ConflictError(UserError):
    field: str | None = None

    @classmethod
    def from_error(cls, error: Conflict) -> ConflictError:
        return cls(code=error.code, message=error.message, field=error.field)
