"""Unexpected-for-the-caller failures as GraphQL errors with ``extensions.code``.

Expected failures of a mutation are union results instead (errors as data);
these cover authentication and authorization, which can hit any field.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError

from mensajero.services.errors import DomainError


def graphql_error(error: DomainError) -> GraphQLError:
    extensions: dict[str, Any] = {"code": error.code}
    if error.details:
        extensions.update(error.details)
    return GraphQLError(error.message, extensions=extensions)
