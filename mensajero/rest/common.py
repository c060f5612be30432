"""What every REST shim route shares: auth, error bodies, parameter parsing, JSON answers.

A route is declared once as an :class:`Operation` (path, method, handler, the
pydantic models of its query, body and answers); the same declaration builds
the Starlette route and its entry in the OpenAPI document
(:mod:`mensajero.rest.openapi`), so the document cannot drift from the code.

Handlers are thin: they get the authenticated :class:`Principal`, parse their
input into the shared filters (:mod:`mensajero.services.listing`), call one
service and shape its answer with a response model. Expected failures are
raised (domain errors or :class:`ApiError`) and turned into the seed's error
body by the route's :class:`ErrorDialect`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, PlainSerializer, ValidationError, WithJsonSchema
from pydantic.alias_generators import to_camel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mensajero.services.auth import Principal, authenticate_request_key, extract_api_key
from mensajero.services.errors import (
    DomainError,
    Forbidden,
    InsufficientCredits,
    NotFound,
    Unauthenticated,
)

logger = logging.getLogger(__name__)

ModelT = TypeVar("ModelT", bound=BaseModel)


# --- response models ---------------------------------------------------------------


class ApiModel(BaseModel):
    """camelCase keys on the wire, snake_case in Python."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )


def iso_utc(value: datetime) -> str:
    """``2026-01-20T08:00:00.000Z``: UTC with milliseconds, as the seeds write times."""
    # Cut from isoformat (a C call, unlike strftime): a list page formats 60 timestamps.
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    text = value.isoformat()  # 2026-01-20T08:00:00.123456+00:00, no fraction when zero
    return f"{text[:23]}Z" if value.microsecond else f"{text[:19]}.000Z"


def iso_utc_seconds(value: datetime) -> str:
    """``2026-01-20T08:00:00Z`` (Coordinalo's style); milliseconds only when there are some."""
    value = value.astimezone(UTC)
    if value.microsecond // 1000:
        return iso_utc(value)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


_DATE_TIME_SCHEMA = WithJsonSchema({"type": "string", "format": "date-time"})
# Timestamps as sendme123 writes them (always milliseconds) and as Coordinalo does.
Timestamp = Annotated[
    datetime, PlainSerializer(iso_utc, return_type=str, when_used="json"), _DATE_TIME_SCHEMA
]
CoordinaloTimestamp = Annotated[
    datetime,
    PlainSerializer(iso_utc_seconds, return_type=str, when_used="json"),
    _DATE_TIME_SCHEMA,
]


def json_response(
    model: BaseModel, *, status_code: int = 200, exclude_none: bool = False
) -> Response:
    return Response(
        model.model_dump_json(exclude_none=exclude_none),
        status_code=status_code,
        media_type="application/json",
    )


def raw_json_response(body: Any, *, status_code: int) -> Response:
    return Response(orjson.dumps(body), status_code=status_code, media_type="application/json")


# --- error bodies --------------------------------------------------------------------


class InvalidParametersError(ApiModel):
    """400 of sendme123's ``GET /api/messages`` (seed 002), used by every Coordinalo route too."""

    error: str = "Parámetros inválidos"
    details: str


class UnauthorizedError(ApiModel):
    """401 of seed 002, word for word."""

    error: str = "No autorizado"
    message: str = "API key inválida o faltante"


class MessageError(ApiModel):
    """403 and 404 in the shape of the seed's 401."""

    error: str
    message: str


class LegacyInsufficientCreditsError(ApiModel):
    error: str = "Créditos insuficientes"
    message: str
    required: int
    available: int


class NestError(ApiModel):
    """NestJS's default HTTP exception body (sendme123's send service runs on NestJS)."""

    status_code: int
    message: str | list[str]
    error: str


class NestInsufficientCreditsError(NestError):
    required: int
    available: int


class ApiError(Exception):
    """An expected failure found by the door itself (a malformed parameter or body)."""

    def __init__(self, status_code: int, messages: Sequence[str]) -> None:
        super().__init__("; ".join(messages))
        self.status_code = status_code
        self.messages = list(messages)


UNAUTHORIZED = UnauthorizedError()

# Spanish texts of the domain's expected failures, for the legacy bodies.
TERMS_NOT_ACCEPTED_MESSAGE = (
    "Debes aceptar los términos y condiciones vigentes antes de enviar mensajes"
)
FORBIDDEN_MESSAGE = "La API key no tiene permiso para esta operación"
NOT_FOUND_MESSAGE = "Recurso no encontrado"


def credits_message(error: InsufficientCredits) -> str:
    return (
        f"Créditos insuficientes: se requieren {error.required} y hay {error.available} disponibles"
    )


def _forbidden_message(error: Forbidden) -> str:
    if error.code == "TERMS_NOT_ACCEPTED" or error.details.get("reason") == "TERMS_NOT_ACCEPTED":
        return TERMS_NOT_ACCEPTED_MESSAGE
    return FORBIDDEN_MESSAGE


@dataclass(frozen=True, slots=True)
class ErrorDialect:
    """How one API writes its errors; ``responses`` documents them in OpenAPI."""

    name: str

    def render(self, error: Exception, *, not_found: str) -> Response:
        raise NotImplementedError

    def responses(self) -> dict[int, tuple[type[BaseModel], str]]:
        raise NotImplementedError


class LegacyDialect(ErrorDialect):
    """Seed 002's bodies: ``{error, details}`` for 400, ``{error, message}`` otherwise."""

    def render(self, error: Exception, *, not_found: str) -> Response:
        if isinstance(error, ApiError):
            if error.status_code == 400:
                body: BaseModel = InvalidParametersError(details="; ".join(error.messages))
            else:
                body = MessageError(error="Error", message="; ".join(error.messages))
            return json_response(body, status_code=error.status_code)
        if isinstance(error, Unauthenticated):
            return json_response(UNAUTHORIZED, status_code=401)
        if isinstance(error, Forbidden):
            return json_response(
                MessageError(error="Prohibido", message=_forbidden_message(error)), status_code=403
            )
        if isinstance(error, NotFound):
            return json_response(
                MessageError(error="No encontrado", message=not_found), status_code=404
            )
        if isinstance(error, InsufficientCredits):
            return json_response(
                LegacyInsufficientCreditsError(
                    message=credits_message(error),
                    required=error.required,
                    available=error.available,
                ),
                status_code=402,
            )
        if isinstance(error, DomainError):  # InvalidInput and the send's other refusals
            return json_response(InvalidParametersError(details=error.message), status_code=400)
        raise error

    def responses(self) -> dict[int, tuple[type[BaseModel], str]]:
        return {
            400: (InvalidParametersError, "Parámetros inválidos"),
            401: (UnauthorizedError, "API key inválida o faltante"),
        }


class NestDialect(ErrorDialect):
    """NestJS's ``{statusCode, message, error}`` bodies; 401 as the rest of sendme123."""

    def render(self, error: Exception, *, not_found: str) -> Response:
        if isinstance(error, ApiError):
            reason = {400: "Bad Request", 404: "Not Found"}.get(error.status_code, "Error")
            body: BaseModel = NestError(
                status_code=error.status_code, message=error.messages, error=reason
            )
            return json_response(body, status_code=error.status_code)
        if isinstance(error, Unauthenticated):
            return json_response(UNAUTHORIZED, status_code=401)
        if isinstance(error, Forbidden):
            return json_response(
                NestError(status_code=403, message=_forbidden_message(error), error="Forbidden"),
                status_code=403,
            )
        if isinstance(error, NotFound):
            return json_response(
                NestError(status_code=404, message=not_found, error="Not Found"), status_code=404
            )
        if isinstance(error, InsufficientCredits):
            return json_response(
                NestInsufficientCreditsError(
                    status_code=402,
                    message=credits_message(error),
                    error="Payment Required",
                    required=error.required,
                    available=error.available,
                ),
                status_code=402,
            )
        if isinstance(error, DomainError):
            return json_response(
                NestError(status_code=400, message=[error.message], error="Bad Request"),
                status_code=400,
            )
        raise error

    def responses(self) -> dict[int, tuple[type[BaseModel], str]]:
        return {
            400: (NestError, "Bad Request: every invalid field in `message`"),
            401: (UnauthorizedError, "API key inválida o faltante"),
        }


LEGACY = LegacyDialect("legacy")
NEST = NestDialect("nest")


# --- operations ----------------------------------------------------------------------

Handler = Callable[[Request, Principal], Awaitable[Response]]


@dataclass(frozen=True)
class Operation:
    """One route of the shim, and everything its OpenAPI entry says."""

    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    responses: Mapping[int, tuple[type[BaseModel] | None, str]]
    dialect: ErrorDialect = LEGACY
    description: str = ""
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    body_required: bool = True
    # Path parameters: name -> description (all strings).
    path_parameters: Mapping[str, str] = field(default_factory=dict)
    not_found: str = NOT_FOUND_MESSAGE

    @property
    def operation_id(self) -> str:
        return self.handler.__name__

    async def __call__(self, request: Request) -> Response:
        try:
            principal = await authenticate_request(request)
            return await self.handler(request, principal)
        except (ApiError, DomainError) as error:
            return self.dialect.render(error, not_found=self.not_found)


async def authenticate_request(request: Request) -> Principal:
    """The caller behind any of the three key headers (Bearer, X-Api-Key, api-key)."""
    return await authenticate_request_key(
        request.app.state.sessionmaker,
        extract_api_key(request.headers),
        ttl_seconds=request.app.state.settings.auth_cache_seconds,
    )


def build_routes(operations: Sequence[Operation]) -> list[BaseRoute]:
    """One Starlette route per path, dispatching on the method."""
    by_path: dict[str, dict[str, Operation]] = {}
    for operation in operations:
        by_path.setdefault(operation.path, {})[operation.method] = operation
    routes: list[BaseRoute] = []
    for path, methods in by_path.items():

        async def endpoint(request: Request, methods: dict[str, Operation] = methods) -> Response:
            # Starlette answers HEAD on GET routes (the body is dropped on the way out).
            method = "GET" if request.method == "HEAD" else request.method
            return await methods[method](request)

        routes.append(Route(path, endpoint, methods=list(methods), name=path))
    return routes


# --- input parsing -------------------------------------------------------------------


def _field_name(model: type[BaseModel], location: tuple[Any, ...]) -> str:
    if not location:
        return "body"
    name = location[0]
    info = model.model_fields.get(str(name))
    if info is not None and info.alias:
        return info.alias
    return str(name)


def parse_query(
    request: Request, model: type[ModelT], describe: Callable[[str, str], str]
) -> ModelT:
    """The query string as ``model``; the first invalid parameter answers 400.

    ``describe(parameter, error_type)`` words the error as the API does.
    Parameters given twice take their last value; unknown ones are ignored.
    """
    try:
        return model.model_validate(dict(request.query_params))
    except ValidationError as error:
        first = error.errors()[0]
        name = _field_name(model, tuple(first["loc"]))
        raise ApiError(400, [describe(name, first["type"])]) from None


async def read_json_body(request: Request, *, optional: bool = False) -> Any:
    raw = await request.body()
    if not raw.strip():
        if optional:
            return None
        raise ApiError(400, ["El cuerpo de la petición es obligatorio"])
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(400, ["El cuerpo de la petición no es JSON válido"]) from None
