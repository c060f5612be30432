"""The shim's OpenAPI 3.1 document, built from the routes' own declarations and models.

Every :class:`mensajero.rest.common.Operation` names the pydantic models of its
query, body and answers; their JSON Schemas (pydantic's, draft 2020-12, which
OpenAPI 3.1 uses as is) go under ``components/schemas`` and the operations
refer to them. The document is served at ``/openapi.json`` and rendered by a
small self-contained page at ``/docs`` (no CDN: it works offline).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from mensajero.rest.common import Operation, raw_json_response

try:
    VERSION = version("mensajero")
except PackageNotFoundError:  # running from a source tree that was never installed
    VERSION = "0.0.0"

REF_TEMPLATE = "#/components/schemas/{model}"
DOCS_PAGE = Path(__file__).with_name("docs.html")
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <key>"},
    "xApiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "api-key"},
}


def _models(operations: Sequence[Operation]) -> list[tuple[type[BaseModel], str]]:
    wanted: dict[tuple[type[BaseModel], str], None] = {}
    for operation in operations:
        if operation.query is not None:
            wanted[(operation.query, "validation")] = None
        if operation.body is not None:
            wanted[(operation.body, "validation")] = None
        for model, _ in {**operation.dialect.responses(), **operation.responses}.values():
            if model is not None:
                wanted[(model, "serialization")] = None
    return list(wanted)


def _query_parameters(model: type[BaseModel], schema: dict[str, Any]) -> list[dict[str, Any]]:
    parameters = []
    required = set(schema.get("required", []))
    for name, property_schema in schema.get("properties", {}).items():
        property_schema = _without_null(dict(property_schema))
        description = property_schema.pop("description", None)
        property_schema.pop("title", None)
        parameter: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": property_schema,
        }
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent or a string: ``X | None`` is documented as X."""
    branches = schema.get("anyOf")
    if branches is not None:
        kept = [branch for branch in branches if branch.get("type") != "null"]
        rest = {key: value for key, value in schema.items() if key != "anyOf"}
        schema = {**rest, **kept[0]} if len(kept) == 1 else {**rest, "anyOf": kept}
    if schema.get("default", ...) is None:
        del schema["default"]
    return schema


def _inline(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    """A component schema for use in place (query parameters are listed one by one)."""
    ref = schema.get("$ref")
    if ref is None:
        return schema
    return components[ref.rsplit("/", 1)[-1]]


def build_openapi(operations: Sequence[Operation]) -> dict[str, Any]:
    models = _models(operations)
    keys, definitions = models_json_schema(models, ref_template=REF_TEMPLATE)
    components: dict[str, Any] = definitions.get("$defs", {})
    paths: dict[str, dict[str, Any]] = {}
    inlined: set[str] = set()
    for operation in operations:
        entry: dict[str, Any] = {
            "operationId": operation.operation_id,
            "summary": operation.summary,
            "tags": [operation.tag],
            "security": [{"bearer": []}, {"xApiKey": []}, {"apiKey": []}],
        }
        if operation.description:
            entry["description"] = operation.description
        parameters = [
            {
                "name": name,
                "in": "path",
                "required": True,
                "description": description,
                "schema": {"type": "string"},
            }
            for name, description in operation.path_parameters.items()
        ]
        if operation.query is not None:
            query_ref = keys[(operation.query, "validation")]
            query_schema = _inline(query_ref, components)
            inlined.add(query_ref.get("$ref", "").rsplit("/", 1)[-1])
            parameters.extend(_query_parameters(operation.query, query_schema))
        if parameters:
            entry["parameters"] = parameters
        if operation.body is not None:
            entry["requestBody"] = {
                "required": operation.body_required,
                "content": {"application/json": {"schema": keys[(operation.body, "validation")]}},
            }
        responses: dict[str, Any] = {}
        for status, (model, description) in sorted(
            {**operation.dialect.responses(), **operation.responses}.items()
        ):
            response: dict[str, Any] = {"description": description}
            if model is not None:
                response["content"] = {
                    "application/json": {"schema": keys[(model, "serialization")]}
                }
            responses[str(status)] = response
        entry["responses"] = responses
        paths.setdefault(operation.path, {})[operation.method.lower()] = entry
    for name in inlined:  # listed parameter by parameter instead
        components.pop(name, None)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "mensajero REST shim",
            "version": VERSION,
            "description": (
                "Rutas compatibles con las APIs de Coordinalo (/api/v1/...) y sendme123 "
                "(/api/messages...). Autenticación: una API key en `Authorization: Bearer`, "
                "`X-Api-Key` o `api-key`. La API principal es GraphQL, en /graphql."
            ),
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": SECURITY_SCHEMES},
    }


@cache
def shim_openapi() -> dict[str, Any]:
    from mensajero.rest import OPERATIONS

    return build_openapi(OPERATIONS)


async def openapi_json(_request: Request) -> Response:
    return raw_json_response(shim_openapi(), status_code=200)


# Inline script and style only; nothing is fetched but /openapi.json.
DOCS_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; img-src 'self' data:"
)


async def docs_page(_request: Request) -> Response:
    return HTMLResponse(
        DOCS_PAGE.read_text(encoding="utf-8"),
        headers={"Content-Security-Policy": DOCS_CONTENT_SECURITY_POLICY},
    )
