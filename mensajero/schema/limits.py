"""Caching and abuse limits of the GraphQL endpoint.

Built from strawberry's own extensions (``ParserCache``, ``ValidationCache``,
``MaxTokensLimiter``, and the depth and alias validators of
``QueryDepthLimiter`` / ``MaxAliasesLimiter``). None of them hooks ``resolve``:
they run once per operation, never per field.

Rejections carry a machine-readable ``extensions.code``:

- ``TOO_MANY_TOKENS``: the document has more lexical tokens (comments
  included) than ``graphql_max_tokens``; parsing stops there, so a huge
  document costs no more than a legal one;
- ``QUERY_TOO_DEEP``: an operation nests fields deeper than
  ``graphql_max_depth`` (introspection fields are not counted, so GraphiQL's
  schema query always passes);
- ``TOO_MANY_ALIASES``: more than ``graphql_max_aliases`` aliased fields.

Parsed documents and validation results are kept in LRU caches shared by all
requests, so a client repeating the same operation (the normal case) parses
and validates it once per process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphql import GraphQLError, GraphQLSyntaxError, ValidationContext, ValidationRule
from strawberry.extensions import (
    AddValidationRules,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)
from strawberry.extensions.max_aliases import create_validator as create_alias_validator
from strawberry.extensions.query_depth_limiter import create_validator as create_depth_validator

from mensajero.schema.compiled import CompiledListsExtension
from mensajero.settings import Settings

QUERY_TOO_DEEP = "QUERY_TOO_DEEP"
TOO_MANY_ALIASES = "TOO_MANY_ALIASES"
TOO_MANY_TOKENS = "TOO_MANY_TOKENS"
# Distinct documents kept parsed and validated per process. A client sends a
# few dozen distinct operations; the bound stops unique junk from growing memory.
DOCUMENT_CACHE_SIZE = 1024


class _CodingValidationContext:
    """A ValidationContext whose reported errors get ``extensions.code``."""

    def __init__(self, context: ValidationContext, code: str) -> None:
        self._context = context
        self._code = code

    def report_error(self, error: GraphQLError) -> None:
        error.extensions = {**(error.extensions or {}), "code": self._code}
        self._context.report_error(error)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


def with_code(rule: type[ValidationRule], code: str) -> type[ValidationRule]:
    """Wrap one of strawberry's whole-document validators so its errors carry ``code``.

    Those validators do all their work in ``__init__`` (they walk the document
    themselves instead of visiting it), so running them against a coding
    context is the whole wrapper.
    """

    class CodedRule(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            rule(_CodingValidationContext(context, code))  # type: ignore[arg-type]

    CodedRule.__name__ = CodedRule.__qualname__ = f"{rule.__name__}[{code}]"
    return CodedRule


def limit_rules(*, max_depth: int, max_aliases: int) -> list[type[ValidationRule]]:
    return [
        with_code(create_depth_validator(max_depth, None), QUERY_TOO_DEEP),
        with_code(create_alias_validator(max_aliases), TOO_MANY_ALIASES),
    ]


def schema_extensions(settings: Settings) -> list[Callable[[], SchemaExtension]]:
    """Extension factories for ``strawberry.Schema(extensions=...)``.

    The validation rule classes are built once, here: the validation cache
    keys on the rule classes, so building them per request would never hit.
    """
    rules = limit_rules(
        max_depth=settings.graphql_max_depth, max_aliases=settings.graphql_max_aliases
    )
    max_tokens = settings.graphql_max_tokens
    return [
        # The token limit and the rules join in ``on_operation``, before the
        # cached parse and the cached validation run with them.
        lambda: MaxTokensLimiter(max_token_count=max_tokens),
        lambda: ParserCache(maxsize=DOCUMENT_CACHE_SIZE),
        lambda: AddValidationRules(rules),
        lambda: ValidationCache(maxsize=DOCUMENT_CACHE_SIZE),
        # Last, in on_execute: after every check above (mensajero/schema/compiled.py).
        CompiledListsExtension,
    ]


def code_limit_error(error: GraphQLError) -> None:
    """Give the parser's token-limit error its code (graphql-core raises a bare syntax error)."""
    if (
        isinstance(error, GraphQLSyntaxError)
        and "tokens. Parsing aborted" in error.message
        and not (error.extensions or {}).get("code")
    ):
        error.extensions = {**(error.extensions or {}), "code": TOO_MANY_TOKENS}
