"""Expected failures as data: typed results with a machine-readable code."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from mensajero.services.errors import Conflict, DomainError, InvalidInput, NotFound

if TYPE_CHECKING:
    from mensajero.schema.context import Context

Answer = TypeVar("Answer")


@strawberry.interface(description="An expected failure of a mutation.")
class UserError:
    code: str
    message: str

    # The domain failure this result stands for (see ``write``).
    domain_error: ClassVar[type[DomainError]] = DomainError

    @classmethod
    def from_error(cls, error: Any) -> UserError:
        return cls(code=error.code, message=error.message)


@strawberry.type
class InvalidInputError(UserError):
    field: str | None = None

    domain_error: ClassVar[type[DomainError]] = InvalidInput

    @classmethod
    def from_error(cls, error: InvalidInput) -> InvalidInputError:
        return cls(code=error.code, message=error.message, field=error.field)


@strawberry.type
class NotFoundError(UserError):
    ids: list[str] | None = strawberry.field(
        default=None, description="The ids that were not found, when several were asked for."
    )

    domain_error: ClassVar[type[DomainError]] = NotFound

    @classmethod
    def of(cls, what: str, ids: list[str] | None = None) -> NotFoundError:
        """An id that does not parse: the answer an unknown one gets."""
        return cls(code=NotFound.code, message=f"{what} not found", ids=ids)

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

    domain_error: ClassVar[type[DomainError]] = Conflict

    @classmethod
    def from_error(cls, error: Conflict) -> ConflictError:
        return cls(code=error.code, message=error.message, field=error.field)


async def write(
    info: Info[Context, None],
    work: Callable[[AsyncSession], Awaitable[Answer]],
    *failures: type[UserError],
) -> Answer | UserError:
    """Run ``work`` in one unit of work; the listed expected failures come back as data.

    Each mutation names the failures its result union carries. Any other domain
    error propagates, and becomes a GraphQL error with its code, as before.
    """
    try:
        async with info.context.unit_of_work() as session:
            return await work(session)
    except DomainError as error:
        for failure in failures:
            if isinstance(error, failure.domain_error):
                return failure.from_error(error)
        raise
