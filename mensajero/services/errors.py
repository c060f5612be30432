"""Expected failures of the domain, each with a stable machine-readable code.

Doors translate them: GraphQL into typed results or errors with
``extensions.code``, REST into the seed's status code and body.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    code: str = "ERROR"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"


class Forbidden(DomainError):
    code = "FORBIDDEN"


class TermsNotAccepted(Forbidden):
    code = "TERMS_NOT_ACCEPTED"


class NotFound(DomainError):
    code = "NOT_FOUND"


class Conflict(DomainError):
    """The write would duplicate something that must be unique (a tag name, ...)."""

    code = "CONFLICT"

    def __init__(self, message: str, *, field: str | None = None, **details: Any) -> None:
        super().__init__(message, **details)
        self.field = field


class InvalidInput(DomainError):
    code = "INVALID_INPUT"

    def __init__(self, message: str, *, field: str | None = None, **details: Any) -> None:
        super().__init__(message, **details)
        self.field = field


class InsufficientCredits(DomainError):
    code = "INSUFFICIENT_CREDITS"

    def __init__(self, *, required: int, available: int) -> None:
        super().__init__(
            f"insufficient credits: {required} required, {available} available",
            required=required,
            available=available,
        )
        self.required = required
        self.available = available
