"""Expected failures as data: typed results with a machine-readable code."""

from __future__ import annotations

import strawberry

from mensajero.services.errors import DomainError, InvalidInput


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
    @classmethod
    def from_error(cls, error: DomainError) -> NotFoundError:
        return cls(code=error.code, message=error.message)
